//! wick-worker: one sandboxed mio event loop per process, serving HTTP on the
//! listening sockets it receives from the master.
//!
//! Start-up order (DESIGN.md): receive Hello, Config, listener fds and the error log
//! fd from the master; compile the config; [`sandbox::enter`]; tell the master Ready;
//! serve.

pub mod sandbox;
