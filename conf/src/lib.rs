//! wick-conf: the lighttpd.conf language (lexer, parser, evaluator) into a typed,
//! serde-serializable [`Config`], and the per-request evaluation of its conditionals.
//!
//! Layers, one file each:
//! - `lexer`, `eval`: text → blocks of settings, evaluated as read (variables, `+=`,
//!   includes, include_shell, conditions), with file:line:column on everything;
//! - `load`: blocks → [`Config`]: typed [`ServerOptions`], one [`Patch`] per block,
//!   listeners (host names resolved later, by [`resolve_listeners`]), start-up
//!   warnings;
//! - [`keys`]: every key lighttpd knows, its module and scope; lighttpd's modules;
//! - [`options`]: typed options (server-wide [`ServerOptions`], per-request
//!   [`Patch`]es and the [`View`] a request sees);
//! - [`cond`]: per-request evaluation of the condition blocks (compiled once);
//! - [`print`](mod@print): the normalised form printed by `wickd -p`;
//! - [`support`]: what wickd does with each key: acts on it, warns that it does
//!   not, or refuses to start because ignoring it would open access;
//! - [`preflight`]: the checks of `wickd -tt`;
//! - [`spawn`]: the gateway backends wickd starts (bin-path hosts);
//! - [`mime`]: the built-in mimetype table.
//!
//! # Use
//!
//! ```no_run
//! use std::path::Path;
//! use wick_conf::cond::{CondState, Compiled, Facts};
//!
//! // Master: load (errors are file:line:column + the line + a caret), warn, check.
//! let mut config = wick_conf::load_file(Path::new("/etc/lighttpd/lighttpd.conf"))
//!     .map_err(|e| e.to_string())?;
//! for w in &config.warnings {
//!     eprintln!("{w}");
//! }
//! let compiled = Compiled::new(&config).map_err(|e| e.to_string())?; // bad regex: fail here
//! print!("{}", wick_conf::print::normalized(&config)); // wickd -p
//! wick_conf::support::check(&config)?; // -tt and start-up: keys that would open access
//! wick_conf::resolve_listeners(&mut config)?; // host names: only when binding (and -tt)
//! for w in wick_conf::preflight::warnings(&config) {
//!     eprintln!("{w}"); // -tt and start-up: document roots that do not exist
//! }
//! wick_conf::preflight::check(&config)?; // wickd -tt
//!
//! // Worker: one CondState per connection, evaluate per request.
//! let mut state = CondState::new(&compiled);
//! let header = |name: &str| -> Option<&str> { (name == "User-Agent").then_some("curl") };
//! let facts = Facts {
//!     host: "Example.org:8080",
//!     url_path: "/index.html",
//!     query: "",
//!     remote_ip: "192.0.2.1".parse().map_err(|_| "ip")?,
//!     scheme: "http",
//!     method: "GET",
//!     listener: 0,
//!     header: &header,
//! };
//! let view = compiled.evaluate(&facts, &mut state);
//! println!("document root: {}", view.document_root);
//! // %1 of the block that set url.rewrite, when it came from a `=~` block:
//! let _block = compiled.winning_block(&state, |p| p.document_root().is_some());
//! # Ok::<(), String>(())
//! ```
//!
//! Defaults: [`RequestOptions::default`] holds lighttpd's defaults, including the
//! built-in mimetype table (used when no block sets `mimetype.assign`); block 0's
//! patch and then each true block's patch apply over it.

// Configuration code has no business with raw memory.
#![forbid(unsafe_code)]

pub mod cond;
pub mod error;
mod eval;
pub mod keys;
mod lexer;
mod load;
pub mod mime;
pub mod model;
pub mod options;
pub mod parseopts;
pub mod pattern;
pub mod preflight;
pub mod print;
pub mod spawn;
pub mod support;

pub use error::ConfError;
pub use load::{load_file, load_str, resolve_listeners};
pub use model::{
    Block, BlockId, Cond, CondField, CondOp, Config, ListenerIndex, Loc, Setting, Value,
};
pub use options::{
    ListenAddr, Listener, Patch, PatchValue, RequestOptions, ServerOptions, SocketOptions, View,
};
