//! wick-gateway-spawner: the only wick process that may create processes; starts CGI
//! scripts on behalf of workers, after checking each request against its own copy of
//! the config.
//!
//! Life: the master fork+execs `wickd` with WICKD_ROLE=gateway-spawner and the channel
//! on fd 3 and sends it one [`ToWorker::SpawnerSetup`] (its slice of the config,
//! [`policy::slice`], and the error log fd); later Drain, Terminate, ReopenLog and
//! one `ToWorker::SpawnerChannel` per worker; answers are [`FromWorker`]. The
//! spawner resolves the users the config names, confines itself ([`confine`]),
//! starts the bin-path backends of the config ([`backends`], their sockets
//! [`listen`]), answers Ready, then serves one channel per worker in a poll loop:
//! Run → [`policy`] → [`launch`] → pipes back; Finish/Signal → [`children`]; SIGCHLD
//! (signalfd) → reap, tell the worker, or restart a backend.
//!
//! The backends live as long as the spawner's generation: a draining spawner
//! stops them (kill-signal) only once every worker of its generation has gone,
//! so no request of an old worker loses its backend; the new generation's
//! spawner has started its own before its workers start (the master waits for
//! its Ready).

/// The CGI environment, shared with the worker's FastCGI (wick-proto builds it).
pub use wick_proto::cgienv;
pub mod backends;
pub mod children;
pub mod confine;
pub mod launch;
pub mod listen;
pub mod policy;
pub mod users;

use backends::Backends;
use children::{Children, WorkerKey};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use policy::Policy;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};
use wick_proto::log::ErrorLog;
use wick_proto::setup::SpawnerFds;
use wick_proto::spawner::{CgiRequest, FromWorkerToSpawner, SpawnerToWorker};
use wick_proto::{Channel, ChildEnd, FromWorker, Level, SpawnerEnd, ToWorker, PROTO_VERSION};

/// Environment variables of wickd's own that scripts get, as lighttpd passes them.
const PASSTHROUGH: &[&str] = &["LD_PRELOAD", "LD_LIBRARY_PATH"];

/// Error log: the fd from the master, else lines over the channel.
struct Log {
    file: Option<ErrorLog>,
}

impl Log {
    fn write(&mut self, master: &ChildEnd, level: Level, line: &str) {
        match &mut self.file {
            Some(f) => f.write(format_args!("{line}")),
            // Best effort: a full channel drops the line rather than stall the spawner.
            None => {
                let _ = master.send(
                    &FromWorker::Log {
                        level,
                        line: line.to_string(),
                    },
                    &[],
                );
            }
        }
    }
}

/// One worker's channel and what could not be sent to it yet.
struct Worker {
    id: u32,
    chan: SpawnerEnd,
    out: VecDeque<(SpawnerToWorker, Vec<OwnedFd>)>,
}

struct Spawner {
    master: ChildEnd,
    log: Log,
    policy: Policy,
    workers: Vec<Option<Worker>>,
    children: Children,
    sigfd: SignalFd,
    /// Draining: refuse new scripts; exit once no worker is left, or at the deadline.
    drain: Option<Option<Instant>>,
    /// Terminating: exit once every process group is gone (or at the deadline).
    stop_at: Option<Instant>,
    /// The bin-path backends this spawner started.
    backends: Backends,
    /// Drained told to the master.
    drained_sent: bool,
}

/// Entry point of the `gateway-spawner` role. Returns the process exit code.
pub fn run(master: Channel) -> i32 {
    let mut master = ChildEnd::new(master);
    let mut log = Log { file: None };
    let (policy, sigfd, backends) = match start(&mut master, &mut log) {
        Ok(parts) => parts,
        Err(reason) => {
            log.write(&master, Level::Error, &format!("gateway-spawner: {reason}"));
            let _ = master.set_nonblocking(false);
            let _ = master.send(&FromWorker::Failed { reason }, &[]);
            return 1;
        }
    };
    let mut s = Spawner {
        master,
        log,
        policy,
        workers: Vec::new(),
        children: Children::default(),
        sigfd,
        drain: None,
        stop_at: None,
        backends,
        drained_sent: false,
    };
    if let Err(e) = s.master.send(
        &FromWorker::Ready {
            pid: std::process::id(),
        },
        &[],
    ) {
        s.log(
            Level::Error,
            &format!("gateway-spawner: telling master Ready: {e}"),
        );
        return 1;
    }
    s.serve()
}

type Parts = (Policy, SignalFd, Backends);

/// The setup from the master (the first message, and only that), then
/// confinement. Worker channels that arrive meanwhile wait on the channel.
fn start(master: &mut ChildEnd, log: &mut Log) -> Result<Parts, String> {
    let (msg, fds) = match master.recv() {
        Ok(Some(m)) => m,
        Ok(None) => return Err("master closed the channel during start-up".into()),
        Err(e) => return Err(format!("reading the setup from master: {e}")),
    };
    let setup = match msg {
        ToWorker::SpawnerSetup(s) => s,
        ToWorker::WorkerSetup(_) => return Err("got a worker's setup".into()),
        ToWorker::Drain { .. }
        | ToWorker::Terminate
        | ToWorker::ReopenLog
        | ToWorker::SpawnerChannel { .. }
        | ToWorker::AccessLogs { .. }
        | ToWorker::TicketKeys(_)
        | ToWorker::Stapling { .. } => {
            return Err(format!("expected the setup first, got {}", msg.name()))
        }
    };
    if setup.proto != PROTO_VERSION {
        return Err(format!(
            "protocol {}, expected {PROTO_VERSION}",
            setup.proto
        ));
    }
    let setup = *setup;
    let fds = SpawnerFds::from_vec(&setup.fds, fds)?;
    // A copy for the backends' stderr (lighttpd's backends write to its error log).
    let backend_err = fds.error_log.as_ref().and_then(|f| f.try_clone().ok());
    if let Some(fd) = fds.error_log {
        log.file = Some(ErrorLog::file(fd, "gateway-spawner"));
    }
    let config = setup.config;

    // Everything that reads /etc happens before the sandbox.
    let root = nix::unistd::geteuid().is_root();
    let mut cgi_users = Vec::new();
    let mut cgi_groups = Vec::new();
    for p in &config.patches {
        if let Some(u) = p.cgi_user().filter(|u| !u.is_empty()) {
            cgi_users.push(u.clone());
        }
        if let Some(g) = p.cgi_group().filter(|g| !g.is_empty()) {
            cgi_groups.push(g.clone());
        }
    }
    let users = users::Users::resolve(
        config.server.username.as_deref(),
        config.server.groupname.as_deref(),
        &cgi_users,
        &cgi_groups,
        root,
    )?;
    let default_user = users.default.clone();
    let mut backends = Backends::plan(&config, &users)?;
    backends.set_stderr(backend_err);
    let passthrough = PASSTHROUGH
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let policy = Policy::new(config, users, passthrough)?;

    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("sigprocmask: {e}"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;

    let mut report = confine::drop_privileges(default_user.as_ref())?;
    report.push(confine::apply(&confine::filters()?)?);
    master
        .set_nonblocking(true)
        .map_err(|e| format!("channel: {e}"))?;
    for line in &report {
        log.write(master, Level::Info, &format!("gateway-spawner: {line}"));
    }
    // Confined first: the backends inherit the seccomp filter scripts get.
    for line in backends.start()? {
        log.write(master, Level::Info, &format!("gateway-spawner: {line}"));
    }

    Ok((policy, sigfd, backends))
}

impl Spawner {
    fn log(&mut self, level: Level, line: &str) {
        self.log.write(&self.master, level, line);
    }

    fn add_worker(&mut self, id: u32, fd: OwnedFd) {
        let chan = SpawnerEnd::new(Channel::from_fd(fd));
        if let Err(e) = chan.set_nonblocking(true) {
            self.log(
                Level::Error,
                &format!("gateway-spawner: worker {id} channel: {e}"),
            );
            return;
        }
        let w = Worker {
            id,
            chan,
            out: VecDeque::new(),
        };
        match self.workers.iter().position(Option::is_none) {
            Some(i) => self.workers[i] = Some(w),
            None => self.workers.push(Some(w)),
        }
    }

    /// The poll loop; returns the exit code.
    fn serve(&mut self) -> i32 {
        loop {
            let now = Instant::now();
            let next_kill = self.children.tick(now);
            for line in self.backends.tick(now) {
                self.log(Level::Error, &format!("gateway-spawner: {line}"));
            }
            if let Some(code) = self.should_exit(now) {
                return code;
            }
            let next_backend = self.backends.next_deadline();
            let deadline = [next_kill, next_backend, self.drain.flatten(), self.stop_at]
                .into_iter()
                .flatten()
                .min();
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(t) => {
                    let ms = t
                        .saturating_duration_since(now)
                        .as_millis()
                        .clamp(1, 60_000);
                    PollTimeout::try_from(ms as u64).unwrap_or(PollTimeout::MAX)
                }
            };
            let (master_ev, sig_ev, worker_ev) = {
                let mut fds = Vec::with_capacity(2 + self.workers.len());
                fds.push(PollFd::new(self.master.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN));
                let mut keys = Vec::new();
                for (k, w) in self.workers.iter().enumerate() {
                    if let Some(w) = w {
                        let mut ev = PollFlags::POLLIN;
                        if !w.out.is_empty() {
                            ev |= PollFlags::POLLOUT;
                        }
                        fds.push(PollFd::new(w.chan.as_fd(), ev));
                        keys.push(k);
                    }
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        self.log(Level::Error, &format!("gateway-spawner: poll: {e}"));
                        return 1;
                    }
                }
                let ev = |f: &PollFd| f.revents().unwrap_or(PollFlags::empty());
                let workers: Vec<(WorkerKey, PollFlags)> = keys
                    .iter()
                    .zip(&fds[2..])
                    .map(|(k, f)| (*k, ev(f)))
                    .filter(|(_, e)| !e.is_empty())
                    .collect();
                (ev(&fds[0]), ev(&fds[1]), workers)
            };
            if !sig_ev.is_empty() {
                self.on_signals();
            }
            if !master_ev.is_empty() && !self.on_master() {
                return self.terminate_now();
            }
            for (k, ev) in worker_ev {
                if ev.contains(PollFlags::POLLOUT) {
                    self.flush(k);
                }
                if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.on_worker(k);
                }
            }
        }
    }

    fn should_exit(&mut self, now: Instant) -> Option<i32> {
        if let Some(t) = self.stop_at {
            if (self.children.is_empty() && self.backends.idle()) || now >= t {
                self.backends.finish();
                return Some(0);
            }
        }
        if let Some(deadline) = self.drain {
            let no_workers = self.workers.iter().all(Option::is_none);
            if no_workers && self.children.is_empty() {
                // Every worker of the generation is gone: its backends serve
                // nobody now.
                self.backends.stop(now);
                self.stop_at.get_or_insert(now + backends::GRACE * 3);
                self.tell_drained();
                if self.backends.idle() {
                    self.backends.finish();
                    return Some(0);
                }
            } else if deadline.is_some_and(|t| now >= t) && self.stop_at.is_none() {
                self.log(
                    Level::Warning,
                    "gateway-spawner: drain deadline reached, killing remaining CGI scripts and backends",
                );
                self.children.kill_all(now);
                self.backends.stop(now);
                self.stop_at = Some(now + children::GRACE * 2);
                self.tell_drained();
            }
        }
        None
    }

    fn tell_drained(&mut self) {
        if !self.drained_sent {
            self.drained_sent = true;
            let _ = self.master.send(&FromWorker::Drained, &[]);
        }
    }

    /// Master gone: kill every script and backend and leave.
    fn terminate_now(&mut self) -> i32 {
        let now = Instant::now();
        self.children.kill_all(now);
        self.backends.stop(now);
        let end = now + children::GRACE * 2;
        while !(self.children.is_empty() && self.backends.idle()) && Instant::now() < end {
            self.reap();
            self.children.tick(Instant::now());
            self.backends.tick(Instant::now());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.backends.finish();
        0
    }

    /// Reap every exited child: scripts are told to their workers by the
    /// caller's loop below; a backend's death is logged and its restart planned.
    fn reap(&mut self) -> Vec<children::Reaped> {
        let mut others = Vec::new();
        let scripts = self.children.reap_all(&mut others);
        let now = Instant::now();
        for (pid, status) in others {
            if let Some(line) = self.backends.reaped(pid, status, now) {
                self.log(Level::Error, &format!("gateway-spawner: {line}"));
            }
        }
        scripts
    }

    fn on_signals(&mut self) {
        while let Ok(Some(si)) = self.sigfd.read_signal() {
            if si.ssi_signo == libc::SIGTERM as u32 && self.stop_at.is_none() {
                let now = Instant::now();
                self.children.kill_all(now);
                self.backends.stop(now);
                self.stop_at = Some(now + children::GRACE * 2);
            }
            // SIGINT/SIGHUP/SIGUSR1 reach the whole process group from a terminal; the
            // master decides and tells the spawner over the channel.
        }
        for r in self.reap() {
            if r.unexpected_signal {
                if let wick_proto::spawner::ExitStatus::Signaled(sig) = r.status {
                    self.log(
                        Level::Error,
                        &format!("CGI pid {} ({}) died with signal {sig}", r.pid, r.script),
                    );
                }
            }
            self.send(
                r.worker,
                SpawnerToWorker::Exited {
                    id: r.id,
                    status: r.status,
                },
                Vec::new(),
            );
        }
    }

    /// Returns false when the master is gone.
    fn on_master(&mut self) -> bool {
        loop {
            let (msg, mut fds) = match self.master.recv() {
                Ok(Some(m)) => m,
                Ok(None) => return false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    self.log(Level::Error, &format!("gateway-spawner: from master: {e}"));
                    return false;
                }
            };
            match msg {
                ToWorker::SpawnerChannel { worker_id } => match fds.pop() {
                    Some(fd) => self.add_worker(worker_id, fd),
                    None => self.log(Level::Error, "gateway-spawner: worker channel without fd"),
                },
                ToWorker::Drain { timeout_ms } => {
                    let deadline = (timeout_ms > 0)
                        .then(|| Instant::now() + Duration::from_millis(timeout_ms));
                    self.drain = Some(deadline);
                    self.backends.drain();
                }
                ToWorker::Terminate => {
                    let now = Instant::now();
                    self.children.kill_all(now);
                    self.backends.stop(now);
                    self.stop_at = Some(now + children::GRACE * 2);
                }
                ToWorker::ReopenLog => {
                    if let Some(fd) = fds.pop() {
                        // Backends started from now on write to the new file.
                        self.backends.set_stderr(fd.try_clone().ok());
                        match &mut self.log.file {
                            Some(f) => f.set_fd(fd),
                            None => self.log.file = Some(ErrorLog::file(fd, "gateway-spawner")),
                        }
                    }
                }
                // Worker-only, or a second setup: the master's mistake, not ours.
                ToWorker::WorkerSetup(_)
                | ToWorker::SpawnerSetup(_)
                | ToWorker::AccessLogs { .. }
                | ToWorker::TicketKeys(_)
                | ToWorker::Stapling { .. } => {
                    let line = format!(
                        "gateway-spawner: unexpected message from the master: {}",
                        msg.name()
                    );
                    self.log(Level::Error, &line);
                }
            }
        }
    }

    fn on_worker(&mut self, k: WorkerKey) {
        loop {
            let Some(Some(w)) = self.workers.get_mut(k) else {
                return;
            };
            let res = w.chan.recv();
            let wid = w.id;
            match res {
                Ok(Some((msg, fds))) => {
                    if !fds.is_empty() {
                        // Workers never send fds; drop them (closing them) and go on.
                        self.log(
                            Level::Warning,
                            &format!("gateway-spawner: worker {wid} sent fds; closed"),
                        );
                    }
                    self.dispatch(k, wid, msg);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Ok(None) | Err(_) => {
                    if let Err(e) = res {
                        self.log(
                            Level::Error,
                            &format!("gateway-spawner: worker {wid}: {e}; closing its channel"),
                        );
                    }
                    self.workers[k] = None;
                    self.children.worker_gone(k, Instant::now());
                    return;
                }
            }
        }
    }

    fn dispatch(&mut self, k: WorkerKey, wid: u32, msg: FromWorkerToSpawner) {
        match msg {
            FromWorkerToSpawner::Run(req) => self.run_cgi(k, wid, &req),
            FromWorkerToSpawner::Finish { id, reason } => {
                self.children.finish(k, id, reason, Instant::now())
            }
            FromWorkerToSpawner::Signal { id, signal } => self.children.signal(k, id, signal),
        }
    }

    fn run_cgi(&mut self, k: WorkerKey, wid: u32, req: &CgiRequest) {
        if self.drain.is_some() || self.stop_at.is_some() {
            let reason = "server is shutting down".to_string();
            self.send(
                k,
                SpawnerToWorker::Refused {
                    id: req.id,
                    status: 503,
                    reason,
                },
                Vec::new(),
            );
            return;
        }
        let plan = self.policy.plan(req);
        for line in wick_conf::pattern::take_reports() {
            self.log(Level::Error, &format!("gateway-spawner: {line}"));
        }
        let plan = match plan {
            Ok(p) => p,
            Err(r) => {
                let line = format!(
                    "cgi refused (worker {wid}, {} {}): {}",
                    printable(&req.method),
                    printable(&req.path),
                    r.reason
                );
                self.log(Level::Error, &line);
                self.send(
                    k,
                    SpawnerToWorker::Refused {
                        id: req.id,
                        status: r.status,
                        reason: r.reason,
                    },
                    Vec::new(),
                );
                return;
            }
        };
        if let Some(note) = &plan.note {
            let line = format!(
                "gateway-spawner: worker {wid}, {}: {note}",
                printable(&req.path)
            );
            self.log(Level::Warning, &line);
        }
        match launch::start(&plan) {
            Ok(st) => {
                self.children.add(k, req.id, st.pid, plan.script.clone());
                let fds = vec![st.stdin, st.stdout, st.stderr];
                self.send(
                    k,
                    SpawnerToWorker::Started {
                        id: req.id,
                        pid: st.pid as u32,
                    },
                    fds,
                );
            }
            Err(e) => {
                let reason = format!("fork/exec {} failed: {e}", plan.argv.join(" "));
                self.log(Level::Error, &format!("cgi (worker {wid}): {reason}"));
                let status = match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EMFILE) | Some(libc::ENFILE)
                    | Some(libc::ENOMEM) => 503,
                    _ => 500,
                };
                self.send(
                    k,
                    SpawnerToWorker::Refused {
                        id: req.id,
                        status,
                        reason,
                    },
                    Vec::new(),
                );
            }
        }
    }

    /// Send to a worker now, or queue behind what is already waiting.
    fn send(&mut self, k: WorkerKey, msg: SpawnerToWorker, fds: Vec<OwnedFd>) {
        let Some(Some(w)) = self.workers.get_mut(k) else {
            return;
        };
        w.out.push_back((msg, fds));
        self.flush(k);
    }

    fn flush(&mut self, k: WorkerKey) {
        let Some(Some(w)) = self.workers.get_mut(k) else {
            return;
        };
        while let Some((msg, fds)) = w.out.front() {
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            match w.chan.send(msg, &borrowed) {
                Ok(()) => {
                    w.out.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The worker is gone; its channel's EOF cleans up.
                    w.out.clear();
                    return;
                }
            }
        }
    }
}

/// A request string for a log line: control characters escaped.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
