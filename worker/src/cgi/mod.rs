//! mod_cgi in the worker. The worker never forks: it asks the gateway-spawner to run
//! the script ([`Client`]: the worker's channel to it, one [`Job`] per request), gets
//! the script's stdin, stdout and stderr back as fds, and moves bytes between them and
//! the client in its event loop: the request body streamed to stdin (reading from the
//! client pauses while the script does not read), the response head parsed
//! ([`resp`]), the body framed for the client (as the script's Content-Length says,
//! else chunked to HTTP/1.1 clients, else until close), stderr lines to the error log.
//! The spawner re-checks everything; the worker's own checks only decide which
//! handler a request goes to.
//!
//! Files: `module.rs` (the module's claim), `select.rs` (is it a script?),
//! `begin.rs` (the request for the spawner), `client.rs` (the spawner channel),
//! `job.rs` (the handler), `reply.rs` (the script's output), `resp.rs` (its head).

mod begin;
mod client;
mod collect;
mod job;
mod module;
mod reply;
pub mod resp;
mod respool;
mod select;

pub use begin::{begin, begin_socket, Begin, Parts};
pub use client::{spawner_event, Client, Jobs};
pub use job::Job;
pub(crate) use module::with_begin;
pub use module::ModCgi;
pub use select::{select, select_with, Selected};
// The files share their items: each child sees the others through `super::*`.
pub(crate) use begin::merge_header;
pub(crate) use job::{fail, job_finish, Framing, PendingHead, Pump, Stage};
pub(crate) use reply::*;

use mio::Token;

/// Poll token of the channel to the spawner.
pub const SPAWNER: Token = Token(usize::MAX - 2);
/// Pipe tokens: base + connection key * 4 + which pipe (3: a gateway backend's
/// socket, mod_fastcgi).
pub const TOKEN_BASE: usize = 1 << 42;
const STDIN: usize = 0;
const STDOUT: usize = 1;
const STDERR: usize = 2;
/// The fourth token of a connection: its gateway backend's socket.
pub const BACKEND: usize = 3;

/// Request body bytes held for a script's stdin before reading from the client pauses.
pub(crate) const IN_HIGH: usize = 64 * 1024;
/// Response bytes queued for the client before reading from the script pauses.
pub(crate) const OUT_HIGH: usize = 256 * 1024;
/// Bytes of one stderr line kept for the log.
const ERR_LINE: usize = 4096;

pub fn pipe_token(key: usize, pipe: usize) -> Token {
    Token(TOKEN_BASE + key * 4 + pipe)
}

/// The connection a pipe token belongs to.
pub fn token_key(t: Token) -> usize {
    (t.0 - TOKEN_BASE) / 4
}
