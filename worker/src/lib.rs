//! wick-worker: one sandboxed mio event loop per process, serving HTTP on the
//! listening sockets it receives from the master.
//!
//! Start-up order (DESIGN.md): receive the setup from the master (config, listener,
//! log and spawner fds in one message); compile the config; plan the sandbox, drop the raw blocks
//! (`Site::shed`); [`sandbox::enter_with`]; tell
//! the master Ready; serve.

// Unsafe code lives where the OS demands it: system calls (sys), the file
// opens beneath a root (stat_cache), the sandbox; not in HTTP, modules, handlers.
#![deny(unsafe_code)]

pub mod body;
pub mod cgi;
pub mod chunked;
pub mod conn;
#[cfg(test)]
mod conn_tests;
pub mod ctx;
pub mod date;
pub mod errors;
pub mod fastcgi;
pub mod gateway;
pub mod h1;
pub mod h2;
pub mod handler;
pub mod internal;
pub mod mime;
pub mod mods;
pub mod park;
pub mod parseopts;
pub mod path;
pub mod pipeline;
pub mod request;
pub mod resp_head;
pub mod response;
#[allow(unsafe_code)]
pub mod sandbox;
pub mod scgi;
pub mod server;
pub mod site;
pub mod spool;
#[allow(unsafe_code)]
pub mod stat_cache;
pub mod static_file;
#[allow(unsafe_code)]
pub mod sys;
pub mod tls;
pub mod trailer;
pub mod transport;

use server::{Logger, Server, Start};
use wick_proto::setup::WorkerFds;
use wick_proto::{Channel, ChildEnd, FromWorker, ToWorker, PROTO_VERSION};

/// The worker's main: the setup from the master, the sandbox, then
/// the event loop. Returns the process exit code.
pub fn run(channel: Channel) -> i32 {
    let mut channel = ChildEnd::new(channel);
    wick_proto::log::init_timezone();
    sys::ignore_signals();
    let fail = |ch: &ChildEnd, reason: String| {
        let _ = ch.send(&FromWorker::Failed { reason }, &[]);
        1
    };
    // The setup comes first and alone; the setup implies the start.
    let (msg, fds) = match channel.recv() {
        Ok(Some(m)) => m,
        Ok(None) => return 0,
        Err(e) => return fail(&channel, format!("worker: reading the setup: {e}")),
    };
    let setup = match msg {
        ToWorker::WorkerSetup(s) => *s,
        ToWorker::SpawnerSetup(_) => {
            return fail(&channel, "worker: got the gateway-spawner's setup".into())
        }
        ToWorker::Drain { .. }
        | ToWorker::Terminate
        | ToWorker::ReopenLog
        | ToWorker::SpawnerChannel { .. }
        | ToWorker::AccessLogs { .. }
        | ToWorker::TicketKeys(_)
        | ToWorker::Stapling { .. } => {
            let reason = format!("worker: expected the setup first, got {}", msg.name());
            return fail(&channel, reason);
        }
    };
    if setup.proto != PROTO_VERSION {
        let reason = format!("worker: protocol {}, expected {PROTO_VERSION}", setup.proto);
        return fail(&channel, reason);
    }
    let fds = match WorkerFds::from_vec(&setup.fds, fds) {
        Ok(f) => f,
        Err(e) => return fail(&channel, format!("worker: {e}")),
    };
    let log = match fds.error_log {
        Some(fd) => Logger::File(wick_proto::log::ErrorLog::file(fd, "worker")),
        None => Logger::Channel,
    };
    let config = setup.config;
    // The counter page: mapped now (no mmap of a new fd after the sandbox). The
    // SIGSYS handler notes a seccomp kill's syscall in the slot for the master.
    let slot = match (fds.counters.as_ref(), setup.counter_slot) {
        (Some(fd), Some(i)) => match wick_proto::counters::Board::map(fd) {
            Ok(b) => b.slot(i as usize).map(|s| (b, s)),
            Err(e) => return fail(&channel, format!("worker: {e}")),
        },
        _ => None,
    };
    drop(fds.counters);
    if let Some((_, s)) = slot {
        sandbox::sigsys::install(s.sigsys.atomic());
    }
    let mut site = match site::Site::new(config) {
        Ok(s) => s,
        Err(e) => return fail(&channel, format!("worker: {e}")),
    };
    if let (Some((b, s)), true) = (slot, site.mods.loaded("mod_status")) {
        mods::status::count::enable(b, s, site.max_conns);
    }
    // TLS configurations are built now, before the sandbox: aws-lc's RNG set-up
    // maps memory and probes files on first use.
    let tls = match tls::TlsSite::new(&site.cfg, &site.compiled, setup.tls.unwrap_or_default()) {
        Ok(t) => t,
        Err(e) => return fail(&channel, format!("worker: TLS: {e}")),
    };
    if !fds.access_logs.is_empty() {
        if let Some(a) = &site.mods.accesslog {
            a.deliver(fds.access_logs);
        }
    }
    // The last reader of the blocks' raw settings is the sandbox plan.
    let plan = sandbox::plan::Plan::from_config(&site.cfg);
    site.shed();
    // Everything that needs a syscall the sandbox forbids happens before it: the
    // poller, the buffers.
    let start = Start {
        listeners: fds.listeners,
        log,
        oneshot: fds.one_shot,
        report_activity: setup.report_activity,
        spawner: fds.spawner,
        tls,
    };
    let mut server = match Server::new(site, channel, start) {
        Ok(s) => s,
        Err(e) => {
            // The channel moved into the failed server; the master sees us exit.
            eprintln!("wickd worker: {e}");
            return 1;
        }
    };
    let report = match sandbox::enter_with(&plan) {
        Ok(r) => r,
        Err(e) => {
            server.failed(format!("worker: sandbox: {e}"));
            return 1;
        }
    };
    // One line per worker: what each layer did.
    server.log(format_args!("sandbox: {}", report.join("; ")));
    server.ready();
    server.run()
}
