//! wick-conf: the lighttpd.conf language (lexer, parser, evaluator) into a typed,
//! serde-serializable [`Config`], and the per-request evaluation of its conditionals.
//!
//! Layers, one file each:
//! - `lexer`, `parser`: text → statements, with file:line:column on every token;
//! - `eval`: assignments, variables, includes, merging → [`Config`] (blocks of settings);
//! - `options`: typed options (server-wide [`ServerOptions`], per-request [`Patch`]es);
//! - `cond`: per-request evaluation of the condition blocks (compiled once per worker);
//! - `print`: the normalised form printed by `wickd -p`.

pub mod error;
pub mod model;
pub mod options;

pub use error::ConfError;
pub use model::{Block, BlockId, Cond, CondField, CondOp, Config, Loc, Setting, Value};
pub use options::{ListenAddr, Listener, Patch, RequestOptions, ServerOptions, View};
