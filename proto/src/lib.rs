//! wick-proto: every message that crosses a wick process boundary, and the channel
//! that carries them (postcard over SOCK_SEQPACKET, fds by SCM_RIGHTS).
//!
//! Reading this file tells what the processes can say to each other. postcard is
//! positional: enums here are append-only, and [`PROTO_VERSION`] is checked in the
//! first message of every channel.

pub mod channel;
pub mod log;
pub mod spawner;

pub use channel::{Channel, Link};

/// The master's end of a child's channel (a worker or the gateway-spawner).
pub type MasterEnd = Link<ToWorker, FromWorker>;
/// A child's end of its channel to the master.
pub type ChildEnd = Link<FromWorker, ToWorker>;
/// A worker's end of its channel to the gateway-spawner.
pub type WorkerEnd = Link<spawner::FromWorkerToSpawner, spawner::SpawnerToWorker>;
/// The gateway-spawner's end of a worker's channel.
pub type SpawnerEnd = Link<spawner::SpawnerToWorker, spawner::FromWorkerToSpawner>;

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change; checked in `Hello`.
pub const PROTO_VERSION: u32 = 1;

/// Environment variable that tells a re-executed wickd which role it plays
/// (`worker`, `gateway-spawner`); its IPC socket is on fd [`ROLE_IPC_FD`].
pub const ROLE_ENV: &str = "WICKD_ROLE";
/// The fd number on which a child finds its channel to the master.
pub const ROLE_IPC_FD: i32 = 3;

/// Severity of a log line, as lighttpd's error log distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

/// Master → worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// First message: protocol check and identity.
    Hello {
        proto: u32,
        generation: u64,
        worker_id: u32,
    },
    /// The whole evaluated config (sent in chunks by the channel when large).
    Config(Box<wick_conf::Config>),
    /// Listening sockets, in `Config::listeners` order; fds ride along with this message.
    Listeners { count: u32 },
    /// The error log fd (rides along), or none: then log lines go over the channel.
    ErrorLog { has_fd: bool },
    /// Everything sent: sandbox yourself, then start accepting.
    Start,
    /// Graceful stop: stop accepting, finish in-flight requests, answer the next
    /// request on keep-alive connections with `Connection: close`, exit by the deadline.
    /// `timeout_ms == 0` means no deadline (lighttpd's graceful-shutdown-timeout 0).
    /// The worker closes its copies of the listening fds at once: the master (and the
    /// next generation, on reload) keeps them open, so no queued connection is lost.
    Drain { timeout_ms: u64 },
    /// Immediate stop.
    Terminate,
    /// A reopened error log fd (SIGHUP), riding along.
    ReopenLog,
    /// `wickd -1` (inetd style), optional, before `Start`: serve the one connection
    /// whose fd rides along (plus a separate write-side fd when `has_out`, for a pipe
    /// pair as inetd passes on stdin/stdout), then exit. `Listeners { count: 0 }` is sent.
    OneShot { has_out: bool },
    /// `wickd -i SECS`, optional, before `Start`: send [`FromWorker::Active`] at most
    /// once a second while the worker sees network activity (accept, read, write).
    ReportActivity,
    /// One end of a worker ⇄ gateway-spawner socketpair rides along. To a worker (before
    /// `Start`, or later when the spawner was restarted): its channel to the spawner,
    /// replacing any earlier one. To the spawner: the channel of worker `worker_id`.
    /// The spawner's control channel speaks this same enum (Hello, Config, ErrorLog,
    /// Start, Drain, Terminate, ReopenLog) and answers with [`FromWorker`].
    SpawnerChannel { worker_id: u32 },
    /// The access log targets (mod_accesslog), their fds riding along in the order
    /// of `wick_worker::mods::accesslog::targets`: files opened for appending and the
    /// write ends of piped loggers. Before `Start`, and again after SIGHUP reopened
    /// the files (the worker writes what it gathered to the old ones first).
    AccessLogs { count: u32 },
}

/// Worker → master.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// Sandboxed and accepting.
    Ready { pid: u32 },
    /// A log line for the master to write (syslog, or before the log fd is set).
    Log { level: Level, line: String },
    /// Start-up failed; the reason is for the error log and for `wickd`'s exit message.
    Failed { reason: String },
    /// Drain finished, about to exit.
    Drained,
    /// Network activity since the last report (only after `ToWorker::ReportActivity`).
    Active,
    /// Access log lines for syslog (accesslog.use-syslog), with their syslog
    /// levels; a batch at most once a second (and before the worker exits).
    AccessLogSyslog { lines: Vec<(u8, String)> },
}
