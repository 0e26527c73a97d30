//! wick-proto: every message that crosses a wick process boundary, and the channel
//! that carries them (postcard over SOCK_SEQPACKET, fds by SCM_RIGHTS).
//!
//! Reading this file (and `setup.rs`, each child's start-up) tells what the
//! processes can say to each other. postcard is positional: enums here are
//! append-only between versions, and [`PROTO_VERSION`] is checked in the setup, the
//! first message on a child's channel to the master.

pub mod cgienv;
pub mod channel;
pub mod counters;
pub mod log;
pub mod setup;
pub mod spawner;
pub mod tls;

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

/// Bumped on any incompatible change; checked in each child's setup.
/// 2: one setup message per role instead of Hello, Config, ..., Start.
/// 4: the counter page (`counters`) and the worker's slot in its setup.
pub const PROTO_VERSION: u32 = 4;

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

/// Master → child (a worker or the gateway-spawner). A child's first message is
/// its setup, and only that; the rest may come at any time after it. Each side
/// matches every variant by name, so a new one must be decided on, and a message
/// for the other role is an error with a log line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// A worker's start-up, its fds riding along in [`setup::WorkerFds`] order.
    WorkerSetup(Box<setup::WorkerSetup>),
    /// The gateway-spawner's start-up, its fds in [`setup::SpawnerFds`] order.
    SpawnerSetup(Box<setup::SpawnerSetup>),
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
    /// One end of a worker ⇄ gateway-spawner socketpair rides along. To the spawner:
    /// the channel of worker `worker_id`, for each worker of its generation. To a
    /// worker, after its setup (which carries the first one): a channel to a
    /// restarted spawner, replacing the earlier one.
    SpawnerChannel { worker_id: u32 },
    /// Worker only, after SIGHUP reopened the files: the access log targets again,
    /// fds riding along as in the setup (the worker writes what it gathered to the
    /// old ones first).
    AccessLogs { count: u32 },
    /// Worker only: new session-ticket keys (the master rotates them, or
    /// ssl.stek-file changed).
    TicketKeys(tls::TicketKeys),
    /// Worker only: ssl.stapling-file `path` changed; its new OCSP response.
    Stapling { path: String, ocsp: Vec<u8> },
}

impl ToWorker {
    /// The variant's name, for a log line (a setup's config is no line's business).
    pub fn name(&self) -> &'static str {
        match self {
            ToWorker::WorkerSetup(_) => "WorkerSetup",
            ToWorker::SpawnerSetup(_) => "SpawnerSetup",
            ToWorker::Drain { .. } => "Drain",
            ToWorker::Terminate => "Terminate",
            ToWorker::ReopenLog => "ReopenLog",
            ToWorker::SpawnerChannel { .. } => "SpawnerChannel",
            ToWorker::AccessLogs { .. } => "AccessLogs",
            ToWorker::TicketKeys(_) => "TicketKeys",
            ToWorker::Stapling { .. } => "Stapling",
        }
    }
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
    /// Network activity since the last report (only with `WorkerSetup::report_activity`).
    Active,
    /// Access log lines for syslog (accesslog.use-syslog), with their syslog
    /// levels; a batch at most once a second (and before the worker exits).
    AccessLogSyslog { lines: Vec<(u8, String)> },
}
