//! wick-worker: one sandboxed mio event loop per process, serving HTTP on the
//! listening sockets it receives from the master.
//!
//! Start-up order (DESIGN.md): receive Hello, Config, listener fds and the error log
//! fd from the master; compile the config; [`sandbox::enter`]; tell the master Ready;
//! serve.

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
pub mod handler;
pub mod mime;
pub mod mods;
pub mod parseopts;
pub mod path;
pub mod request;
pub mod resp_head;
pub mod response;
#[allow(unsafe_code)]
pub mod sandbox;
pub mod server;
pub mod site;
#[allow(unsafe_code)]
pub mod stat_cache;
pub mod static_file;
#[allow(unsafe_code)]
pub mod sys;
pub mod trailer;
pub mod transport;

use server::{Logger, Server, Start};
use wick_proto::{Channel, ChildEnd, FromWorker, ToWorker, PROTO_VERSION};

/// The worker's main: the start-up conversation with the master, the sandbox, then
/// the event loop. Returns the process exit code.
pub fn run(channel: Channel) -> i32 {
    let mut channel = ChildEnd::new(channel);
    wick_proto::log::init_timezone();
    sys::ignore_signals();
    let fail = |ch: &ChildEnd, reason: String| {
        let _ = ch.send(&FromWorker::Failed { reason }, &[]);
        1
    };
    let mut config = None;
    let mut listeners = Vec::new();
    let mut log = Logger::Channel;
    let mut oneshot = None;
    let mut report_activity = false;
    let mut spawner = None;
    let mut access_logs = None;
    loop {
        let (msg, mut fds) = match channel.recv() {
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(e) => {
                return fail(
                    &channel,
                    format!("worker: reading the start-up messages: {e}"),
                )
            }
        };
        match msg {
            ToWorker::Hello { proto, .. } if proto != PROTO_VERSION => {
                return fail(
                    &channel,
                    format!("worker: protocol {proto}, expected {PROTO_VERSION}"),
                );
            }
            ToWorker::Hello { .. } => {}
            ToWorker::Config(c) => config = Some(*c),
            ToWorker::Listeners { count } => {
                if fds.len() != count as usize {
                    return fail(
                        &channel,
                        format!(
                            "worker: {count} listeners announced, {} fds came",
                            fds.len()
                        ),
                    );
                }
                listeners = fds;
            }
            ToWorker::ErrorLog { has_fd: true } => {
                if let Some(fd) = fds.pop() {
                    log = Logger::File(wick_proto::log::ErrorLog::file(fd, "worker"));
                }
            }
            ToWorker::ErrorLog { has_fd: false } => {}
            ToWorker::OneShot { has_out } => {
                let mut it = fds.into_iter();
                let (Some(r), w) = (it.next(), it.next()) else {
                    return fail(&channel, "worker: one-shot without its connection".into());
                };
                oneshot = Some((r, if has_out { w } else { None }));
            }
            ToWorker::ReportActivity => report_activity = true,
            ToWorker::SpawnerChannel { .. } => spawner = fds.pop(),
            // Kept until mod_accesslog exists (it is built with the site, below).
            ToWorker::AccessLogs { .. } => access_logs = Some(fds),
            ToWorker::Start => break,
            ToWorker::Drain { .. } | ToWorker::Terminate => return 0,
            // SIGHUP while we start: the fresh fd replaces the one just given.
            ToWorker::ReopenLog => {
                if let Some(fd) = fds.pop() {
                    log = Logger::File(wick_proto::log::ErrorLog::file(fd, "worker"));
                }
            }
        }
    }
    let Some(config) = config else {
        return fail(&channel, "worker: started without a configuration".into());
    };
    let site = match site::Site::new(config) {
        Ok(s) => s,
        Err(e) => return fail(&channel, format!("worker: {e}")),
    };
    if let (Some(fds), Some(a)) = (access_logs, &site.mods.accesslog) {
        a.deliver(fds);
    }
    // Everything that needs a syscall the sandbox forbids happens before it: the
    // poller, the buffers.
    let start = Start {
        listeners,
        log,
        oneshot,
        report_activity,
        spawner,
    };
    let mut server = match Server::new(site, channel, start) {
        Ok(s) => s,
        Err(e) => {
            // The channel moved into the failed server; the master sees us exit.
            eprintln!("wickd worker: {e}");
            return 1;
        }
    };
    let report = match sandbox::enter(&server.site().cfg) {
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
