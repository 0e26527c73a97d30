//! The supervisor: one thread, one poll loop. It starts generations of workers,
//! waits until each is ready, drains the one it replaces, restarts children
//! that die (with backoff), and turns signals into shutdown, reload and log
//! reopening. It never reads a request.

use crate::config::Source;
use crate::daemon::{PidFile, Readiness};
use crate::elog;
use crate::errlog::{ErrLog, Target};
use crate::listen::ListenerSet;
use crate::sdnotify::Notify;
use crate::signals::{self, Signals};
use crate::spawn::{self, Role};
use crate::spawner_launch;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};
use wick_conf::{Config, ListenAddr};
use wick_proto::setup::{WorkerFds, WorkerSetup};
use wick_proto::{FromWorker, MasterEnd, ToWorker, PROTO_VERSION};

const SIGNAL: Token = Token(0);

/// How long a new generation may take to report Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// After an immediate stop (or a drain deadline), how long children get before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// A child that lived longer than this was not crash-looping: its backoff resets.
const STABLE: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GenState {
    /// Workers are being started; not serving yet (unless they already accept).
    Starting { deadline: Instant },
    /// The generation that serves.
    Active,
    /// Told to finish in-flight requests and exit; SIGKILL at `kill_at`.
    Draining { kill_at: Option<Instant> },
    /// Never became ready; its children are being killed.
    Failed,
}

struct Slot {
    child: Option<u64>,
    quick_deaths: u32,
    restart_at: Option<Instant>,
}

struct Generation {
    id: u64,
    config: Rc<Config>,
    /// Its TLS files, read and checked (tls.rs), when a listener has ssl.engine.
    tls: Option<Rc<Vec<wick_proto::tls::TlsFile>>>,
    /// Workers it runs (the spawner, if any, has the slot after them).
    workers: u32,
    state: GenState,
    slots: Vec<Slot>,
    /// A log target this generation's config changed to; the master switches to it
    /// when the generation becomes active.
    log: Option<ErrLog>,
}

struct Child {
    pid: Pid,
    role: Role,
    gen: u64,
    /// None after the child closed it.
    channel: Option<MasterEnd>,
    ready: bool,
    started: Instant,
    failed: Option<String>,
    /// We asked it to go (drain, terminate, kill): its exit is no accident.
    leaving: bool,
    /// A worker's slot in the counter page.
    counter_slot: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping {
        graceful: bool,
        kill_at: Option<Instant>,
    },
}

/// Why the master stops, for the last log line.
#[derive(Clone, Copy)]
enum StopCause {
    Signal(Option<(u32, i32)>),
    Idle,
    StartFailed,
    OneShotDone,
}

/// Everything start-up prepared, handed to the loop.
pub struct Setup {
    pub source: Source,
    pub listeners: ListenerSet,
    pub log: ErrLog,
    pub readiness: Option<Readiness>,
    pub pidfile: Option<PidFile>,
    pub notify: Option<Notify>,
    /// `-i SECS`
    pub idle: Option<Duration>,
    /// `-1`: the connection (and a separate write side) to hand to the one worker.
    pub oneshot: Option<Vec<OwnedFd>>,
    /// In the foreground, start-up failures are also printed on stderr.
    pub foreground: bool,
}

pub struct Master {
    poll: Poll,
    signals: Signals,
    source: Source,
    listeners: ListenerSet,
    log: ErrLog,
    gens: Vec<Generation>,
    next_gen: u64,
    children: HashMap<u64, Child>,
    by_pid: HashMap<i32, u64>,
    next_child: u64,
    phase: Phase,
    cause: StopCause,
    reload_pending: bool,
    started: bool,
    readiness: Option<Readiness>,
    pidfile: Option<PidFile>,
    notify: Option<Notify>,
    idle: Option<Duration>,
    last_active: Instant,
    oneshot: Option<Vec<OwnedFd>>,
    foreground: bool,
    exit_code: i32,
    /// Why the first generation did not start, for the daemon's parent.
    start_failure: Option<String>,
    /// mod_accesslog's files and piped loggers (accesslog.rs).
    accesslog: crate::accesslog::AccessLogs,
    /// Session-ticket keys every worker shares (tls.rs).
    tickets: crate::tls::Tickets,
    /// ssl.stapling-file of the newest generation, looked at each minute.
    stapling: crate::tls::Stapling,
    /// The counter page mod_status reads (counters.rs); None if it could not
    /// be made (then nothing is counted, and a seccomp kill is not named).
    counters: Option<crate::counters::Counters>,
    /// Why there is no counter page, for the log once it is open.
    counters_failed: Option<String>,
    /// The CPUs workers are bound to, one each (affinity.rs).
    cpus: crate::affinity::Cpus,
}

/// "exited with status 3", "killed by signal 9 (SIGKILL)", with a word on SIGSYS.
pub fn describe_status(st: &WaitStatus) -> String {
    describe_exit(st, None)
}

/// As [`describe_status`], with the system call a worker's SIGSYS handler noted
/// (the seccomp filter refused it).
pub fn describe_exit(st: &WaitStatus, syscall: Option<u64>) -> String {
    match (st, syscall) {
        (WaitStatus::Signaled(_, Signal::SIGSYS, _), Some(nr)) => format!(
            "killed by signal {} (SIGSYS): the seccomp sandbox refused system call {nr} ({})",
            Signal::SIGSYS as i32,
            crate::syscalls::name(nr).unwrap_or("unknown")
        ),
        (WaitStatus::Exited(_, code), _) => format!("exited with status {code}"),
        (WaitStatus::Signaled(_, Signal::SIGSYS, _), None) => format!(
            "killed by signal {} (SIGSYS): the seccomp sandbox stopped a system call outside \
             its allowlist (the kernel audit log names it)",
            Signal::SIGSYS as i32
        ),
        (WaitStatus::Signaled(_, sig, core), _) => format!(
            "killed by signal {} ({}){}",
            *sig as i32,
            sig.as_str(),
            if *core { ", core dumped" } else { "" }
        ),
        (other, _) => format!("ended ({other:?})"),
    }
}

/// Why a child ended, for the restart counters.
fn cause_of(st: &WaitStatus, syscall: Option<u64>) -> crate::counters::Cause {
    use crate::counters::Cause;
    match (st, syscall) {
        (WaitStatus::Signaled(_, Signal::SIGSYS, _), Some(_)) => Cause::Seccomp,
        (WaitStatus::Signaled(..), _) => Cause::Signal,
        _ => Cause::Exit,
    }
}

fn backoff(quick_deaths: u32) -> Duration {
    if quick_deaths == 0 {
        return Duration::ZERO;
    }
    let shift = (quick_deaths - 1).min(16);
    (BACKOFF_MIN * (1u32 << shift)).min(BACKOFF_MAX)
}

/// Workers to run: server.max-worker, at least one (lighttpd's 0 and 1 both mean one
/// serving process).
fn worker_count(c: &Config) -> u32 {
    c.server.max_worker.max(1)
}

/// RLIMIT_NOFILE for the children: server.max-fds when set, else the hard limit.
/// Inherited across exec, so set before each generation starts.
fn apply_rlimits(c: &Config) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let root = nix::unistd::geteuid().is_root();
    let want = u64::from(c.server.max_fds);
    let (soft, hard) = if want == 0 {
        (hard.min(1 << 20), hard)
    } else if root {
        (want, want.max(hard))
    } else {
        (want.min(hard), hard)
    };
    let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
}

impl Master {
    pub fn new(setup: Setup) -> io::Result<Master> {
        let poll = Poll::new()?;
        let signals = Signals::new(poll.registry(), SIGNAL)?;
        let (counters, counters_failed) = match crate::counters::Counters::new() {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(Master {
            counters,
            counters_failed,
            poll,
            signals,
            source: setup.source,
            listeners: setup.listeners,
            log: setup.log,
            gens: Vec::new(),
            next_gen: 1,
            children: HashMap::new(),
            by_pid: HashMap::new(),
            next_child: 1,
            phase: Phase::Running,
            cause: StopCause::Signal(None),
            reload_pending: false,
            started: false,
            readiness: setup.readiness,
            pidfile: setup.pidfile,
            notify: setup.notify,
            idle: setup.idle,
            last_active: Instant::now(),
            oneshot: setup.oneshot,
            foreground: setup.foreground,
            exit_code: 0,
            start_failure: None,
            accesslog: Default::default(),
            tickets: crate::tls::Tickets::new(),
            stapling: Default::default(),
            cpus: crate::affinity::Cpus::ours(),
        })
    }

    /// Serve until told to stop; returns the exit status.
    pub fn run(mut self, config: Config, tls: Option<Vec<wick_proto::tls::TlsFile>>) -> i32 {
        if let Err(e) = self.tickets.configure(&config) {
            elog!(self.log, "{e}; tickets use keys of wickd's own");
        }
        if let Some(e) = self.counters_failed.take() {
            elog!(
                self.log,
                "{e}: mod_status counts nothing, seccomp kills are not named"
            );
        }
        self.start_generation(config, None, tls);
        let mut events = Events::with_capacity(64);
        while !self.finished() {
            let now = Instant::now();
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue; // a signal landed during epoll_wait
                }
                elog!(self.log, "poll failed: {e}");
                self.stop(false);
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL => self.on_signals(),
                    Token(k) => self.on_child_readable(k as u64),
                }
            }
            self.on_timers(Instant::now());
        }
        self.finish()
    }

    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. }) && self.children.is_empty()
    }

    fn finish(mut self) -> i32 {
        self.listeners.close_all();
        if let Some(p) = &self.pidfile {
            p.remove();
        }
        if let Some(r) = self.readiness.take() {
            let reason = self.start_failure.take();
            r.failed(reason.as_deref().unwrap_or("stopped before it was ready"));
        }
        match self.cause {
            StopCause::Idle => elog!(self.log, "server stopped after idle timeout"),
            StopCause::Signal(Some((uid, pid))) => {
                elog!(self.log, "server stopped by UID = {uid} PID = {pid}")
            }
            StopCause::Signal(None) => elog!(self.log, "server stopped"),
            StopCause::StartFailed | StopCause::OneShotDone => {}
        }
        self.exit_code
    }

    // ---- generations -------------------------------------------------------

    fn gen_index(&self, id: u64) -> Option<usize> {
        self.gens.iter().position(|g| g.id == id)
    }

    fn start_generation(
        &mut self,
        mut config: Config,
        log: Option<ErrLog>,
        tls: Option<Vec<wick_proto::tls::TlsFile>>,
    ) {
        if self.oneshot.is_some() {
            config.listeners.clear();
        }
        apply_rlimits(&config);
        let id = self.next_gen;
        self.next_gen += 1;
        // `-1` serves one connection: one worker.
        let n = if self.oneshot.is_some() {
            1
        } else {
            worker_count(&config)
        };
        let order = spawner_launch::start_order(&config, n);
        // With backends to start, the workers start once the spawner is Ready
        // (`start_waiting_workers`).
        let wait = spawner_launch::workers_wait(&config);
        let slots = (0..spawner_launch::slot_count(&config, n))
            .map(|_| Slot {
                child: None,
                quick_deaths: 0,
                restart_at: None,
            })
            .collect();
        self.gens.push(Generation {
            id,
            config: Rc::new(config),
            tls: tls.map(|f| {
                self.stapling.watch(&f);
                Rc::new(f)
            }),
            workers: n,
            state: GenState::Starting {
                deadline: Instant::now() + READY_TIMEOUT,
            },
            slots,
            log,
        });
        if let Some(g) = self.gens.last() {
            let config = Rc::clone(&g.config);
            if let Err(e) = self.accesslog.prepare(&config) {
                self.fail_generation(id, &e);
                return;
            }
        }
        for slot in order {
            if wait && slot < n as usize {
                continue;
            }
            if let Err(e) = self.spawn_worker(id, slot) {
                self.fail_generation(id, &e);
                return;
            }
        }
        // Reading, checking and sending a configuration of thousands of sites
        // leaves megabytes freed between what the master keeps.
        wick_worker::sys::release_free_memory();
    }

    /// The spawner of a starting generation is ready: start the workers that
    /// waited for it.
    fn start_waiting_workers(&mut self, gen: u64) {
        let Some(gi) = self.gen_index(gen) else {
            return;
        };
        if !matches!(self.gens[gi].state, GenState::Starting { .. }) {
            return;
        }
        let waiting: Vec<usize> = (0..self.gens[gi].workers as usize)
            .filter(|&s| self.gens[gi].slots[s].child.is_none())
            .collect();
        for slot in waiting {
            if let Err(e) = self.spawn_worker(gen, slot) {
                self.fail_generation(gen, &e);
                return;
            }
        }
    }

    /// Start worker `slot + 1` of generation `gen` and send it everything it needs.
    /// Err only when no process was started; a child that fails later is handled
    /// when it exits.
    fn spawn_worker(&mut self, gen: u64, slot: usize) -> Result<(), String> {
        let Some(gi) = self.gen_index(gen) else {
            return Err("generation gone".into());
        };
        let g = &self.gens[gi];
        let role = spawner_launch::role_of(&g.config, g.workers, slot);
        let cpu = match role {
            Role::Worker { id } => self.cpus.for_worker(id, g.workers),
            _ => None,
        };
        let sp = spawn::spawn(role, cpu)
            .map_err(|e| format!("starting {} failed: {e}", role.describe()))?;
        if let Some(cpu) = cpu.filter(|&c| !crate::affinity::bound(sp.pid, c)) {
            elog!(
                self.log,
                "{} could not be bound to CPU {cpu}: the scheduler places it",
                role.describe()
            );
        }
        let key = self.next_child;
        self.next_child += 1;
        let counter_slot = match (role, self.counters.as_mut()) {
            (Role::Worker { id }, Some(c)) => {
                let slot = c.take(gen, id);
                if slot.is_none() {
                    elog!(
                        self.log,
                        "worker {id} of generation {gen}: the counter page has no free slot \
                         ({} workers alive): it counts nothing for mod_status",
                        wick_proto::counters::SLOTS
                    );
                }
                slot
            }
            _ => None,
        };
        if let (Some(i), Some(c)) = (counter_slot, &self.counters) {
            c.started(i, sp.pid.as_raw());
        }
        let mut child = Child {
            pid: sp.pid,
            role,
            gen,
            channel: None,
            ready: false,
            started: Instant::now(),
            failed: None,
            leaving: false,
            counter_slot,
        };
        let reg = self.poll.registry().register(
            &mut SourceFd(&sp.channel.as_raw_fd()),
            Token(key as usize),
            Interest::READABLE,
        );
        let config = Rc::clone(&self.gens[gi].config);
        let log_fd = match &self.gens[gi].log {
            Some(l) => l.worker_fd(),
            None => self.log.worker_fd(),
        };
        let sent = reg.map_err(|e| e.to_string()).and_then(|()| {
            self.send_start(&sp.channel, gen, role, &config, log_fd, counter_slot)
                .map_err(|e| e.to_string())
        });
        child.channel = Some(sp.channel);
        if let Err(e) = sent {
            child.failed = Some(format!("sending the configuration failed: {e}"));
            child.leaving = true;
            let _ = kill(sp.pid, Signal::SIGKILL);
        }
        self.by_pid.insert(sp.pid.as_raw(), key);
        self.children.insert(key, child);
        let g = &mut self.gens[gi];
        g.slots[slot].child = Some(key);
        g.slots[slot].restart_at = None;
        Ok(())
    }

    /// A worker's setup: its config, and every fd it starts with in one message
    /// (`wick_proto::setup::WorkerFds` declares their order). The spawner gets
    /// its end of the worker's channel first.
    fn send_start(
        &self,
        ch: &MasterEnd,
        gen: u64,
        role: Role,
        config: &Config,
        log_fd: Option<OwnedFd>,
        counter_slot: Option<usize>,
    ) -> io::Result<()> {
        let Role::Worker { id } = role else {
            return self.start_spawner(ch, gen, config, log_fd);
        };
        let spawner = match self.spawner_channel(gen) {
            Some(sp) => Some(spawner_launch::connect_new(sp, id)?),
            None => None,
        };
        let one_shot = match self.oneshot.as_deref() {
            None => None,
            Some([conn]) => Some((conn.as_fd(), None)),
            Some([conn, out]) => Some((conn.as_fd(), Some(out.as_fd()))),
            Some(other) => {
                return Err(io::Error::other(format!(
                    "one-shot connection of {} fds",
                    other.len()
                )))
            }
        };
        let fds = WorkerFds {
            listeners: self.listeners.fds_for(config).map_err(io::Error::other)?,
            error_log: log_fd.as_ref().map(|f| f.as_fd()),
            access_logs: self.accesslog.fds_for(config).map_err(io::Error::other)?,
            one_shot,
            spawner: spawner.as_ref().map(|c| c.as_fd()),
            counters: counter_slot.and(self.counters.as_ref()).map(|c| c.fd()),
        };
        let setup = WorkerSetup {
            proto: PROTO_VERSION,
            generation: gen,
            worker_id: id,
            config: config.for_worker(),
            report_activity: self.idle.is_some(),
            tls: self
                .gen_index(gen)
                .and_then(|gi| self.gens[gi].tls.as_ref())
                .map(|files| wick_proto::tls::TlsMaterial {
                    files: files.as_ref().clone(),
                    tickets: self.tickets.current(),
                }),
            counter_slot: counter_slot.map(|i| i as u32),
            fds: fds.counts(),
        };
        let fds = fds.into_vec().map_err(io::Error::other)?;
        spawn::send(ch, &ToWorker::WorkerSetup(Box::new(setup)), &fds)
    }

    /// The gateway-spawner's start-up; when it replaces one that died, every live
    /// worker of the generation gets a channel to the new one.
    fn start_spawner(
        &self,
        ch: &MasterEnd,
        gen: u64,
        config: &Config,
        log_fd: Option<OwnedFd>,
    ) -> io::Result<()> {
        spawner_launch::send_start(ch, gen, config, log_fd)?;
        for c in self.children.values().filter(|c| c.gen == gen) {
            if let (Role::Worker { id }, Some(w)) = (c.role, &c.channel) {
                let _ = spawner_launch::connect(ch, w, id);
            }
        }
        Ok(())
    }

    /// The channel to generation `gen`'s gateway-spawner, if it has one running.
    fn spawner_channel(&self, gen: u64) -> Option<&MasterEnd> {
        let g = &self.gens[self.gen_index(gen)?];
        let slot = spawner_launch::slot_of(Role::Spawner, g.workers);
        let c = self.children.get(&g.slots.get(slot)?.child?)?;
        (c.role == Role::Spawner)
            .then_some(c.channel.as_ref())
            .flatten()
    }

    /// A starting generation has every worker ready: it serves now, and the one
    /// it replaces drains.
    fn check_ready(&mut self, gen: u64) {
        let Some(gi) = self.gen_index(gen) else {
            return;
        };
        let g = &self.gens[gi];
        if !matches!(g.state, GenState::Starting { .. }) {
            return;
        }
        let all = g.slots.iter().all(|s| {
            s.child
                .and_then(|k| self.children.get(&k))
                .is_some_and(|c| c.ready)
        });
        if !all {
            return;
        }
        self.gens[gi].state = GenState::Active;
        if let Some(l) = self.gens[gi].log.take() {
            self.log = l;
        }
        if let Some(c) = &self.counters {
            c.serving(gen);
            if self.started {
                c.reload(true);
            }
        }
        let old: Vec<u64> = self
            .gens
            .iter()
            .filter(|g| g.id != gen && g.state == GenState::Active)
            .map(|g| g.id)
            .collect();
        for o in &old {
            self.drain_generation(*o);
        }
        if !self.started {
            self.started = true;
            if self.oneshot.is_none() {
                elog!(self.log, "server started ({})", crate::cli::VERSION);
            }
            if let Some(r) = self.readiness.take() {
                r.ready();
            }
        } else {
            elog!(
                self.log,
                "[note] graceful restart: generation {gen} serving{}",
                if old.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", generation {} draining",
                        old.iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
        }
        if let Some(n) = &self.notify {
            n.ready();
            n.status(&format!("serving, generation {gen}"));
        }
        if self.reload_pending {
            self.reload_pending = false;
            self.reload();
        }
    }

    fn drain_generation(&mut self, gen: u64) {
        let Some(gi) = self.gen_index(gen) else {
            return;
        };
        let secs = self.gens[gi].config.server.graceful_shutdown_timeout;
        let kill_at =
            (secs > 0).then(|| Instant::now() + Duration::from_secs(u64::from(secs)) + KILL_GRACE);
        self.gens[gi].state = GenState::Draining { kill_at };
        let keys: Vec<u64> = self.gens[gi]
            .slots
            .iter_mut()
            .filter_map(|s| {
                s.restart_at = None;
                s.child
            })
            .collect();
        for k in keys {
            let Some(c) = self.children.get_mut(&k) else {
                continue;
            };
            c.leaving = true;
            // A worker still starting has served nothing: stop it outright.
            let msg = if c.ready {
                ToWorker::Drain {
                    timeout_ms: u64::from(secs) * 1000,
                }
            } else {
                ToWorker::Terminate
            };
            let ok = c
                .channel
                .as_ref()
                .is_some_and(|ch| spawn::send(ch, &msg, &[]).is_ok());
            if !ok {
                let _ = kill(c.pid, Signal::SIGKILL);
            }
        }
    }

    /// A generation that could not start: kill what it started. The first one
    /// failing ends wickd; a later one leaves the serving generation alone.
    fn fail_generation(&mut self, gen: u64, reason: &str) {
        let Some(gi) = self.gen_index(gen) else {
            return;
        };
        if self.gens[gi].state == GenState::Failed {
            return;
        }
        self.gens[gi].state = GenState::Failed;
        self.gens[gi].log = None;
        let keys: Vec<u64> = self.gens[gi].slots.iter().filter_map(|s| s.child).collect();
        for k in keys {
            if let Some(c) = self.children.get_mut(&k) {
                c.leaving = true;
                let _ = kill(c.pid, Signal::SIGKILL);
            }
        }
        if !self.started {
            elog!(self.log, "start-up failed: {reason}");
            if self.foreground && !matches!(self.log.target(), Target::Stderr) {
                eprintln!("wickd: start-up failed: {reason}");
            }
            // The daemon's parent hears it in finish(), once nothing is left running.
            self.start_failure = Some(reason.to_string());
            self.exit_code = 1;
            self.cause = StopCause::StartFailed;
            self.stop(false);
        } else {
            elog!(
                self.log,
                "graceful restart failed: generation {gen} did not start: {reason}; \
                 the running generation keeps serving"
            );
            if let Some(c) = &self.counters {
                c.reload(false);
            }
            if let Some(n) = &self.notify {
                n.ready();
            }
            self.close_unused_listeners();
            if self.reload_pending && self.phase == Phase::Running {
                self.reload_pending = false;
                self.reload();
            }
        }
        self.gc_generations();
    }

    /// Listeners no live generation uses are closed (after a reload removed them
    /// and the generations that had them have exited).
    fn close_unused_listeners(&mut self) {
        if matches!(self.phase, Phase::Stopping { .. }) {
            return;
        }
        let keep: Vec<&ListenAddr> = self
            .gens
            .iter()
            .filter(|g| g.state != GenState::Failed)
            .flat_map(|g| g.config.listeners.iter().map(|l| &l.addr))
            .collect();
        self.listeners.retain(&keep);
    }

    /// Forget draining and failed generations whose children are all gone.
    fn gc_generations(&mut self) {
        let before = self.gens.len();
        let children = &self.children;
        let mut finished = Vec::new();
        self.gens.retain(|g| {
            let done = matches!(g.state, GenState::Draining { .. } | GenState::Failed)
                && !g
                    .slots
                    .iter()
                    .any(|s| s.child.is_some_and(|k| children.contains_key(&k)));
            if done && matches!(g.state, GenState::Draining { .. }) {
                finished.push(g.id);
            }
            !done
        });
        for id in finished {
            if self.phase == Phase::Running {
                elog!(self.log, "[note] generation {id} finished draining");
            }
        }
        if self.gens.len() != before {
            self.close_unused_listeners();
            let live: Vec<&Config> = self.gens.iter().map(|g| &*g.config).collect();
            self.accesslog.retain(&live);
            // A retired generation's configuration is freed: hand it back.
            wick_worker::sys::release_free_memory();
        }
    }

    /// New session-ticket keys to every worker that speaks TLS.
    fn send_ticket_keys(&mut self) {
        let keys = self.tickets.current();
        self.send_to_tls_workers(&ToWorker::TicketKeys(keys));
    }

    fn send_to_tls_workers(&self, msg: &ToWorker) {
        for c in self.children.values() {
            let tls = self
                .gen_index(c.gen)
                .is_some_and(|gi| self.gens[gi].tls.is_some());
            if !tls || !matches!(c.role, Role::Worker { .. }) {
                continue;
            }
            if let Some(ch) = &c.channel {
                let _ = spawn::send(ch, msg, &[]);
            }
        }
    }

    // ---- reload ------------------------------------------------------------

    /// SIGUSR1: read the config again; if it is good, start a new generation with it.
    fn reload(&mut self) {
        if self.phase != Phase::Running || self.oneshot.is_some() {
            return;
        }
        if self
            .gens
            .iter()
            .any(|g| matches!(g.state, GenState::Starting { .. }))
        {
            self.reload_pending = true;
            return;
        }
        if let Some(n) = &self.notify {
            n.reloading();
        }
        elog!(
            self.log,
            "[note] graceful restart: reading {}",
            self.source.describe()
        );
        let mut config = match self.source.load() {
            Ok(c) => c,
            Err(e) => {
                elog!(
                    self.log,
                    "graceful restart failed, keeping the running configuration: {e}"
                );
                self.count_reload_failed();
                if let Some(n) = &self.notify {
                    n.ready();
                }
                return;
            }
        };
        // Certificates and keys read again: a renewed one is served from now on; a
        // broken one keeps the running generation (and its certificates).
        let tls = match crate::tls::load(&config) {
            Ok(t) => t,
            Err(e) => {
                elog!(
                    self.log,
                    "graceful restart failed, keeping the running configuration: TLS: {e}"
                );
                self.count_reload_failed();
                if let Some(n) = &self.notify {
                    n.ready();
                }
                return;
            }
        };
        if let Err(e) = self.tickets.configure(&config) {
            elog!(self.log, "{e}; keeping the ticket keys in use");
        }
        let (tls, tls_warnings) = match tls {
            Some(t) => (Some(t.files), t.warnings),
            None => (None, Vec::new()),
        };
        for w in config
            .warnings
            .iter()
            .cloned()
            .chain(wick_conf::preflight::warnings(&config))
            .chain(tls_warnings)
        {
            elog!(self.log, "{w}");
        }
        self.listeners.apply_inherited(&mut config);
        let fresh = match self.listeners.ensure(&config) {
            Ok(f) => f,
            Err(e) => {
                elog!(
                    self.log,
                    "graceful restart failed, keeping the running configuration: {e}"
                );
                self.count_reload_failed();
                if let Some(n) = &self.notify {
                    n.ready();
                }
                return;
            }
        };
        let target = Target::of(&config.server);
        let log = if &target == self.log.target() {
            None
        } else {
            match ErrLog::open(target) {
                Ok(l) => Some(l),
                Err(e) => {
                    elog!(
                        self.log,
                        "graceful restart failed, keeping the running configuration: {e}"
                    );
                    self.count_reload_failed();
                    for a in &fresh {
                        self.listeners.close(a);
                    }
                    if let Some(n) = &self.notify {
                        n.ready();
                    }
                    return;
                }
            }
        };
        self.start_generation(config, log, tls);
    }

    /// A reload that did not go into service, for the counters.
    fn count_reload_failed(&self) {
        if let Some(c) = &self.counters {
            c.reload(false);
        }
    }

    // ---- shutdown ----------------------------------------------------------

    /// SIGINT (graceful: drain) or SIGTERM (immediate). A graceful stop asked
    /// for again becomes immediate.
    fn stop(&mut self, graceful: bool) {
        let graceful = match self.phase {
            Phase::Stopping {
                graceful: false, ..
            } => return,
            Phase::Stopping { graceful: true, .. } => false,
            Phase::Running => graceful,
        };
        if let Some(n) = &self.notify {
            n.stopping();
        }
        // New connections are refused from now on; workers close their copies
        // when they drain or exit.
        self.listeners.close_all();
        self.reload_pending = false;
        if graceful {
            elog!(self.log, "[note] graceful shutdown started");
            self.phase = Phase::Stopping {
                graceful: true,
                kill_at: None,
            };
            let ids: Vec<(u64, GenState)> = self.gens.iter().map(|g| (g.id, g.state)).collect();
            for (id, st) in ids {
                match st {
                    GenState::Active => self.drain_generation(id),
                    GenState::Starting { .. } => self.fail_quietly(id),
                    GenState::Draining { .. } | GenState::Failed => {}
                }
            }
        } else {
            self.phase = Phase::Stopping {
                graceful: false,
                kill_at: Some(Instant::now() + KILL_GRACE),
            };
            for g in &mut self.gens {
                for s in &mut g.slots {
                    s.restart_at = None;
                }
                // A generation still starting is not a failure now: we stop it.
                if matches!(g.state, GenState::Starting { .. }) {
                    g.state = GenState::Failed;
                }
            }
            for c in self.children.values_mut() {
                c.leaving = true;
                let ok = c
                    .channel
                    .as_ref()
                    .is_some_and(|ch| spawn::send(ch, &ToWorker::Terminate, &[]).is_ok());
                if !ok {
                    let _ = kill(c.pid, Signal::SIGKILL);
                }
            }
        }
    }

    fn fail_quietly(&mut self, gen: u64) {
        let Some(gi) = self.gen_index(gen) else {
            return;
        };
        self.gens[gi].state = GenState::Failed;
        let keys: Vec<u64> = self.gens[gi].slots.iter().filter_map(|s| s.child).collect();
        for k in keys {
            if let Some(c) = self.children.get_mut(&k) {
                c.leaving = true;
                let _ = kill(c.pid, Signal::SIGKILL);
            }
        }
    }

    // ---- events ------------------------------------------------------------

    fn on_signals(&mut self) {
        for r in self.signals.pending() {
            match r.signal {
                signals::SIGCHLD => self.reap(),
                signals::SIGTERM => {
                    self.cause = StopCause::Signal(r.sender);
                    self.stop(false);
                }
                signals::SIGINT => {
                    self.cause = StopCause::Signal(r.sender);
                    self.stop(true);
                }
                signals::SIGUSR1 => self.reload(),
                signals::SIGHUP => self.reopen_logs(r.sender),
                _ => {}
            }
        }
        // A SIGCHLD may coincide with another signal in one batch; reap anyway.
        self.reap();
    }

    /// SIGHUP: reopen the error log and hand every worker the new fd.
    fn reopen_logs(&mut self, sender: Option<(u32, i32)>) {
        if let Err(e) = self.log.reopen() {
            elog!(self.log, "reopening the error log failed: {e}");
        }
        for c in self.children.values() {
            let (Some(ch), Some(fd)) = (&c.channel, self.log.worker_fd()) else {
                continue;
            };
            let _ = spawn::send(ch, &ToWorker::ReopenLog, &[fd.as_fd()]);
        }
        for e in self.accesslog.reopen() {
            elog!(self.log, "{e}");
        }
        for c in self.children.values() {
            let (Role::Worker { .. }, Some(ch), Some(gi)) =
                (c.role, &c.channel, self.gen_index(c.gen))
            else {
                continue;
            };
            let _ = self.accesslog.send(ch, &self.gens[gi].config);
        }
        let (uid, pid) = sender.unwrap_or((0, 0));
        elog!(self.log, "logfiles cycled UID = {uid} PID = {pid}");
    }

    fn on_child_readable(&mut self, key: u64) {
        loop {
            let Some(c) = self.children.get_mut(&key) else {
                return;
            };
            let Some(ch) = c.channel.as_mut() else { return };
            match ch.recv() {
                Ok(Some((msg, _fds))) => self.on_message(key, msg),
                Ok(None) => {
                    // Closed: the exit itself arrives by SIGCHLD.
                    if let Some(ch) = c.channel.take() {
                        let _ = self
                            .poll
                            .registry()
                            .deregister(&mut SourceFd(&ch.as_raw_fd()));
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    let (pid, what, quiet) = (c.pid, c.role.describe(), c.leaving);
                    c.leaving = true;
                    c.failed
                        .get_or_insert_with(|| format!("bad message on its channel: {e}"));
                    if let Some(ch) = c.channel.take() {
                        let _ = self
                            .poll
                            .registry()
                            .deregister(&mut SourceFd(&ch.as_raw_fd()));
                    }
                    // A child we asked to go may reset its channel on the way out.
                    if !quiet {
                        elog!(
                            self.log,
                            "{what} (pid {pid}): bad message on its channel: {e}; killing it"
                        );
                    }
                    let _ = kill(pid, Signal::SIGKILL);
                    return;
                }
            }
        }
    }

    fn on_message(&mut self, key: u64, msg: FromWorker) {
        let Some(c) = self.children.get_mut(&key) else {
            return;
        };
        match msg {
            FromWorker::Ready { .. } => {
                c.ready = true;
                let (gen, role) = (c.gen, c.role);
                if role == Role::Spawner {
                    self.start_waiting_workers(gen);
                }
                self.check_ready(gen);
            }
            FromWorker::Log { level, line } => self.log.child_line(level, &line),
            FromWorker::Failed { reason } => {
                let (pid, what) = (c.pid, c.role.describe());
                c.failed = Some(reason.clone());
                elog!(self.log, "{what} (pid {pid}) failed to start: {reason}");
            }
            FromWorker::Drained => {}
            FromWorker::Active => self.last_active = Instant::now(),
            FromWorker::AccessLogSyslog { lines } => self.accesslog.syslog(&lines),
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => {
                    let Some(pid) = st.pid() else { continue };
                    if matches!(st, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                        if let Some(key) = self.by_pid.remove(&pid.as_raw()) {
                            self.on_child_exit(key, &st);
                        } else if let Some(l) = self.accesslog.reaped(pid, &describe_status(&st)) {
                            elog!(self.log, "{l}");
                        } else if let Some(l) = self.log.reaped(pid, &describe_status(&st)) {
                            elog!(self.log, "{l}");
                        }
                    }
                }
            }
        }
    }

    fn on_child_exit(&mut self, key: u64, st: &WaitStatus) {
        let Some(mut c) = self.children.remove(&key) else {
            return;
        };
        if let Some(ch) = c.channel.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&ch.as_raw_fd()));
        }
        let syscall = match (c.counter_slot, self.counters.as_mut()) {
            (Some(i), Some(counters)) => counters.give_back(i),
            _ => None,
        };
        let how = describe_exit(st, syscall);
        let what = format!(
            "{} (pid {}, generation {})",
            c.role.describe(),
            c.pid,
            c.gen
        );
        let Some(gi) = self.gen_index(c.gen) else {
            return;
        };
        let slot = spawner_launch::slot_of(c.role, self.gens[gi].workers);
        if let Some(s) = self.gens[gi].slots.get_mut(slot) {
            if s.child == Some(key) {
                s.child = None;
            }
        }
        if self.oneshot.is_some() {
            self.exit_code = i32::from(!matches!(st, WaitStatus::Exited(_, 0)));
            if !self.started {
                let reason = c.failed.clone().unwrap_or_else(|| format!("{what} {how}"));
                self.fail_generation(c.gen, &reason);
            }
            self.cause = StopCause::OneShotDone;
            // The one connection is done: the spawner has nothing left to serve.
            for o in self.children.values().filter(|o| o.role == Role::Spawner) {
                if let Some(ch) = &o.channel {
                    let _ = spawn::send(ch, &ToWorker::Terminate, &[]);
                }
            }
            if self.phase == Phase::Running {
                self.phase = Phase::Stopping {
                    graceful: true,
                    kill_at: None,
                };
            }
            return;
        }
        match self.gens[gi].state {
            GenState::Starting { .. } if self.phase == Phase::Running => {
                let reason = match &c.failed {
                    Some(r) => format!("{what}: {r}"),
                    None => format!("{what} {how} before it was ready"),
                };
                self.fail_generation(c.gen, &reason);
            }
            GenState::Active if self.phase == Phase::Running => {
                let s = &mut self.gens[gi].slots[slot];
                if c.started.elapsed() < STABLE {
                    s.quick_deaths += 1;
                } else {
                    s.quick_deaths = 0;
                }
                let delay = backoff(s.quick_deaths);
                s.restart_at = Some(Instant::now() + delay);
                if let Some(counters) = &self.counters {
                    let kind = match c.role {
                        Role::Spawner => crate::counters::Kind::Spawner,
                        _ => crate::counters::Kind::Worker,
                    };
                    counters.restart(kind, cause_of(st, syscall));
                }
                let why = c
                    .failed
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                elog!(
                    self.log,
                    "{what} {how}{why}; starting a new one in {} ms",
                    delay.as_millis()
                );
            }
            _ => {
                if !c.leaving {
                    elog!(self.log, "{what} {how}");
                }
                self.gc_generations();
            }
        }
    }

    // ---- timers ------------------------------------------------------------

    fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        if let Some(t) = self.accesslog.next_deadline() {
            at(t);
        }
        if let Some(t) = self.log.next_deadline() {
            at(t);
        }
        if self.gens.iter().any(|g| g.tls.is_some()) {
            at(self.tickets.next_deadline());
            if let Some(t) = self.stapling.next_deadline() {
                at(t);
            }
        }
        for g in &self.gens {
            match g.state {
                GenState::Starting { deadline } => at(deadline),
                GenState::Draining { kill_at: Some(k) } => at(k),
                _ => {}
            }
            for s in &g.slots {
                if let Some(r) = s.restart_at {
                    at(r);
                }
            }
        }
        if let Phase::Stopping {
            kill_at: Some(k), ..
        } = self.phase
        {
            at(k);
        }
        if let (Some(idle), Phase::Running, true) = (self.idle, self.phase, self.started) {
            at(self.last_active + idle);
        }
        d
    }

    fn on_timers(&mut self, now: Instant) {
        if self.gens.iter().any(|g| g.tls.is_some()) {
            match self.tickets.on_timer(now) {
                Ok(true) => self.send_ticket_keys(),
                Ok(false) => {}
                Err(e) => elog!(self.log, "{e}; keeping the ticket keys in use"),
            }
            for (path, r) in self.stapling.on_timer(now) {
                match r {
                    Ok(ocsp) => self.send_to_tls_workers(&ToWorker::Stapling { path, ocsp }),
                    Err(e) => elog!(
                        self.log,
                        "ssl.stapling-file \"{path}\": {e}; keeping the response in use"
                    ),
                }
            }
        }
        if let Err(e) = self.log.on_timers(now) {
            elog!(self.log, "{e}");
        }
        for l in self.accesslog.on_timers(now) {
            elog!(self.log, "{l}");
        }
        let mut timed_out = Vec::new();
        let mut to_kill = Vec::new();
        let mut to_restart = Vec::new();
        for g in &mut self.gens {
            match g.state {
                GenState::Starting { deadline } if now >= deadline => timed_out.push(g.id),
                GenState::Draining { kill_at: Some(k) } if now >= k => {
                    g.state = GenState::Draining { kill_at: None };
                    to_kill.extend(g.slots.iter().filter_map(|s| s.child));
                }
                _ => {}
            }
            if g.state == GenState::Active && self.phase == Phase::Running {
                for (i, s) in g.slots.iter_mut().enumerate() {
                    if s.restart_at.is_some_and(|r| now >= r) {
                        s.restart_at = None;
                        to_restart.push((g.id, i));
                    }
                }
            }
        }
        for id in timed_out {
            self.fail_generation(
                id,
                &format!("not ready within {} s", READY_TIMEOUT.as_secs()),
            );
        }
        if !to_kill.is_empty() {
            elog!(self.log, "[note] {} worker(s) still busy after server.graceful-shutdown-timeout: killing them", to_kill.len());
        }
        for k in to_kill {
            if let Some(c) = self.children.get(&k) {
                let _ = kill(c.pid, Signal::SIGKILL);
            }
        }
        for (gen, slot) in to_restart {
            if let Err(e) = self.spawn_worker(gen, slot) {
                elog!(self.log, "{e}");
                if let Some(gi) = self.gen_index(gen) {
                    let s = &mut self.gens[gi].slots[slot];
                    s.quick_deaths += 1;
                    s.restart_at = Some(now + backoff(s.quick_deaths));
                }
            }
        }
        if let Phase::Stopping {
            graceful,
            kill_at: Some(k),
        } = self.phase
        {
            if now >= k {
                self.phase = Phase::Stopping {
                    graceful,
                    kill_at: None,
                };
                for c in self.children.values() {
                    let _ = kill(c.pid, Signal::SIGKILL);
                }
            }
        }
        if let (Some(idle), Phase::Running, true) = (self.idle, self.phase, self.started) {
            if now >= self.last_active + idle {
                elog!(
                    self.log,
                    "[note] idle timeout {}s exceeded, initiating graceful shutdown",
                    idle.as_secs()
                );
                self.cause = StopCause::Idle;
                self.stop(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(8), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn exit_statuses_read_well() {
        let pid = Pid::from_raw(1);
        assert_eq!(
            describe_status(&WaitStatus::Exited(pid, 3)),
            "exited with status 3"
        );
        assert_eq!(
            describe_status(&WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            "killed by signal 9 (SIGKILL)"
        );
        let sys = describe_status(&WaitStatus::Signaled(pid, Signal::SIGSYS, false));
        assert!(
            sys.starts_with("killed by signal 31 (SIGSYS)") && sys.contains("seccomp"),
            "{sys}"
        );
        let named = describe_exit(&WaitStatus::Signaled(pid, Signal::SIGSYS, false), Some(41));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            named,
            "killed by signal 31 (SIGSYS): the seccomp sandbox refused system call 41 (socket)"
        );
        assert!(named.contains("system call 41 ("), "{named}");
    }
}
