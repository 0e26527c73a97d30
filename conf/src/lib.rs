//! wick-conf: the lighttpd.conf language (lexer, parser, evaluator) into a typed,
//! serde-serializable [`Config`], and the per-request evaluation of its conditionals.
//!
//! Layers, one file each:
//! - `lexer`, `eval`: text → blocks of settings, evaluated as read (variables, `+=`,
//!   includes, include_shell, conditions), with file:line:column on everything;
//! - `load`: blocks → [`Config`]: typed [`ServerOptions`], one [`Patch`] per block,
//!   listeners, start-up warnings ([`load_file`], [`load_str`]);
//! - `keys`: every key lighttpd knows, its module and scope;
//! - `options`: typed options (server-wide [`ServerOptions`], per-request [`Patch`]es);
//! - `cond`: per-request evaluation of the condition blocks (compiled once per worker);
//! - `print`: the normalised form printed by `wickd -p`;
//! - `preflight`: the checks of `wickd -tt`.

pub mod cond;
pub mod error;
mod eval;
pub mod keys;
mod lexer;
mod load;
pub mod mime;
pub mod model;
pub mod options;
pub mod preflight;
pub mod print;

pub use error::ConfError;
pub use load::{load_file, load_str};
pub use model::{
    Block, BlockId, Cond, CondField, CondOp, Config, ListenerIndex, Loc, Setting, Value,
};
pub use options::{
    ListenAddr, Listener, Patch, RequestOptions, ServerOptions, SocketOptions, View,
};
