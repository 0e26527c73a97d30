//! The worker's event loop: one mio poll over the shared listening sockets
//! (EPOLLEXCLUSIVE, so one connection wakes one worker), the master's channel and
//! the connections; once-a-second maintenance (timeouts, drain, activity).

use crate::conn::{Conn, Next, Want};
pub use crate::ctx::Ctx;

use crate::site::Site;
use crate::sys;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use wick_proto::{ChildEnd, FromWorker, ToWorker};

const CHANNEL: Token = Token(usize::MAX - 1);
const LISTENER_BASE: usize = 1 << 40;
/// Shared read buffer size.
const RBUF: usize = 64 * 1024;
/// Accepts in a row after which a listener is re-armed, so that the kernel's
/// exclusive wake-up moves on to the other workers (nginx does the same).
const REARM_EVERY: u32 = 16;
/// Accepts per wake-up, so a burst does not starve the connections we hold.
const ACCEPT_BATCH: usize = 32;

/// Seconds a keep-alive connection must have been idle before a drain closes it.
const DRAIN_IDLE: u64 = 2;

/// Where the worker's own log lines go.
pub enum Logger {
    File(wick_proto::log::ErrorLog),
    /// Over the channel, for the master to write (syslog, stderr).
    Channel,
}

struct Listener {
    fd: OwnedFd,
    armed: bool,
    accepts: u32,
}

pub struct Server {
    poll: Poll,
    ctx: Ctx,
    /// The read buffer every connection reads into (its own, apart from `ctx`, so a
    /// connection can read into it and hand the bytes to code that takes `ctx`).
    rbuf: Box<[u8]>,
    conns: Slab<Conn>,
    listeners: Vec<Listener>,
    channel: ChildEnd,
    log: Logger,
    /// Connections to drive again without waiting for an event.
    again: Vec<usize>,
    /// Connections to drive at a time (a parked request, park.rs), earliest first.
    /// An entry may outlive its request: driving a connection early is harmless.
    wakeups: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Accepting paused until this monotonic second (EMFILE), or for max-connections.
    paused_until: u64,
    drain_deadline: Option<u64>,
    oneshot: bool,
    report_activity: bool,
    last_tick: u64,
}

/// What the setup delivered besides the config: its fds, split.
pub struct Start {
    pub listeners: Vec<OwnedFd>,
    pub log: Logger,
    /// `wickd -1`: the connection (and a separate write side).
    pub oneshot: Option<(OwnedFd, Option<OwnedFd>)>,
    pub report_activity: bool,
    /// The channel to the gateway-spawner, when the config loads mod_cgi.
    pub spawner: Option<OwnedFd>,
    /// TLS state, when a listener has ssl.engine.
    pub tls: Option<crate::tls::TlsSite>,
}

impl Server {
    pub fn new(site: Site, channel: ChildEnd, start: Start) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut ctx = Ctx::new(site);
        ctx.tls = start.tls;
        if ctx.site.mods.connects_backends() {
            ctx.registry = Some(poll.registry().try_clone()?);
        }
        channel.set_nonblocking(true)?;
        poll.registry().register(
            &mut SourceFd(&channel.as_raw_fd()),
            CHANNEL,
            Interest::READABLE,
        )?;
        let mut s = Server {
            poll,
            ctx,
            rbuf: vec![0u8; RBUF].into_boxed_slice(),
            conns: Slab::new(),
            listeners: start
                .listeners
                .into_iter()
                .map(|fd| Listener {
                    fd,
                    armed: false,
                    accepts: 0,
                })
                .collect(),
            channel,
            log: start.log,
            again: Vec::new(),
            wakeups: BinaryHeap::new(),
            paused_until: 0,
            drain_deadline: None,
            oneshot: false,
            report_activity: start.report_activity,
            last_tick: 0,
        };
        for l in &s.listeners {
            sys::set_nonblocking(l.fd.as_raw_fd());
        }
        if let Some(fd) = start.spawner {
            s.ctx.cgi.set_channel(fd, s.poll.registry())?;
        }
        if let Some((fd, out)) = start.oneshot {
            s.oneshot = true;
            s.add_oneshot(fd, out)?;
        }
        s.last_tick = s.ctx.clock.mono;
        Ok(s)
    }

    pub fn site(&self) -> &Site {
        &self.ctx.site
    }

    /// Start-up failed: tell the master why.
    pub fn failed(&mut self, reason: String) {
        let _ = self.channel.set_nonblocking(false);
        let _ = self.channel.send(&FromWorker::Failed { reason }, &[]);
    }

    /// Tell the master we are sandboxed and accepting.
    pub fn ready(&mut self) {
        let _ = self.channel.send(
            &FromWorker::Ready {
                pid: std::process::id(),
            },
            &[],
        );
    }

    pub fn log(&mut self, msg: std::fmt::Arguments<'_>) {
        match &mut self.log {
            Logger::File(l) => l.write(msg),
            Logger::Channel => {
                let line = msg.to_string();
                let _ = self.channel.send(
                    &FromWorker::Log {
                        level: wick_proto::Level::Error,
                        line,
                    },
                    &[],
                );
            }
        }
    }

    fn add_oneshot(&mut self, fd: OwnedFd, out: Option<OwnedFd>) -> io::Result<()> {
        sys::set_nonblocking(fd.as_raw_fd());
        let is_socket = out.is_none() && sys::is_socket(fd.as_raw_fd());
        let now = self.ctx.clock.mono;
        let mut conn = Conn::new(fd, (crate::site::unspecified(), 0), 0, is_socket, now);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let reg = self.poll.registry();
        reg.register(&mut SourceFd(&conn.io.fd()), Token(key), Interest::READABLE)?;
        if let Some(w) = &out {
            sys::set_nonblocking(w.as_raw_fd());
            conn.io.write_to(w.as_raw_fd());
            reg.register(
                &mut SourceFd(&w.as_raw_fd()),
                Token(key),
                Interest::WRITABLE,
            )?;
            // Both directions stay registered; the write fd lives as long as the worker.
            std::mem::forget(out);
        } else {
            reg.reregister(
                &mut SourceFd(&conn.io.fd()),
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        conn.registered = Want::READ | Want::WRITE;
        entry.insert(conn);
        self.again.push(key);
        Ok(())
    }

    /// Register (or drop) the listeners with EPOLLEXCLUSIVE; mio cannot set it.
    fn arm_listeners(&mut self, on: bool) {
        let ep = self.poll.as_raw_fd();
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if l.armed == on {
                continue;
            }
            let r = if on {
                sys::epoll_add_exclusive(ep, l.fd.as_raw_fd(), LISTENER_BASE + i)
            } else {
                sys::epoll_del(ep, l.fd.as_raw_fd())
            };
            if r.is_ok() {
                l.armed = on;
            }
        }
    }

    /// Serve until drained, terminated, or the master goes away. Returns the exit code.
    pub fn run(&mut self) -> i32 {
        let code = self.serve();
        // Nothing a module gathered (access-log lines) is lost at exit.
        self.trigger();
        code
    }

    /// The modules' trigger hooks; syslog lines go to the master.
    fn trigger(&mut self) {
        let t = self.ctx.site.mods.trigger();
        if !t.syslog.is_empty() {
            let _ = self
                .channel
                .send(&FromWorker::AccessLogSyslog { lines: t.syslog }, &[]);
        }
        for e in t.errors {
            self.log(format_args!("{e}"));
        }
    }

    fn serve(&mut self) -> i32 {
        let mut events = Events::with_capacity(512);
        // Accept from the first poll on: Ready is sent, and the generation this one
        // replaces stops accepting as soon as the master hears it.
        if !self.oneshot {
            self.arm_listeners(true);
        }
        // The last turn had events.
        let mut busy = false;
        loop {
            let mut timeout = if !self.again.is_empty() {
                Duration::ZERO
            } else if let Some(Reverse((at, _))) = self.wakeups.peek() {
                // Rounded up: a wake-up a little late, never a busy turn early.
                let d = at.saturating_duration_since(Instant::now());
                Duration::from_millis(d.as_nanos().div_ceil(1_000_000).min(1000) as u64)
            } else {
                Duration::from_millis(1000)
            };
            if busy && !timeout.is_zero() {
                // A busy turn ends with a yield and a look that does not wait:
                // the clients and backends (FastCGI, proxied servers) that share
                // the CPUs often make our next events with the time given up, and
                // a sleep would cost a wakeup (the waker's, and our switch back)
                // and leave a smaller batch. With nothing else to run the yield
                // returns at once; finding nothing, the next poll sleeps.
                crate::sys::yield_now();
                timeout = Duration::ZERO;
            }
            if !timeout.is_zero() {
                // About to sleep: no backend stays held by a kept connection.
                self.ctx.idle_backends.close_all();
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.log(format_args!("poll: {e}"));
                    return 1;
                }
            }
            self.ctx.clock.tick();
            busy = !events.is_empty();
            for ev in events.iter() {
                let t = ev.token();
                if t == CHANNEL {
                    if let Some(code) = self.channel_event() {
                        return code;
                    }
                } else if t == crate::cgi::SPAWNER {
                    self.spawner_event();
                } else if t.0 >= crate::cgi::TOKEN_BASE {
                    self.drive(crate::cgi::token_key(t));
                } else if t.0 >= LISTENER_BASE {
                    self.accept(t.0 - LISTENER_BASE);
                } else {
                    if let Some(c) = self.conns.get_mut(t.0) {
                        if ev.is_read_closed() {
                            // Edge-triggered: this event is the only news of the FIN.
                            c.flags |= crate::conn::Flags::PEER_FIN;
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            // New bytes (or an end): the socket is worth a read.
                            c.flags.remove(crate::conn::Flags::DRAINED);
                        }
                    }
                    self.drive(t.0);
                }
            }
            if !self.again.is_empty() {
                let again = std::mem::take(&mut self.again);
                for key in again {
                    self.drive(key);
                }
            }
            if !self.wakeups.is_empty() {
                self.wake_due();
            }
            if !self.ctx.cgi.log.is_empty() || !self.ctx.log.is_empty() {
                let mut lines = std::mem::take(&mut self.ctx.log);
                lines.append(&mut self.ctx.cgi.log);
                for line in lines {
                    self.log(format_args!("{line}"));
                }
            }
            if self.ctx.clock.mono != self.last_tick {
                self.last_tick = self.ctx.clock.mono;
                if let Some(code) = self.tick() {
                    return code;
                }
            }
            crate::mods::status::count::turn_end(self.ctx.clock.at);
            if !self.ctx.draining && !self.oneshot {
                let room = self.conns.len() < self.ctx.site.max_conns;
                let want = room && self.ctx.clock.mono >= self.paused_until;
                self.arm_listeners(want);
            }
            if self.finished() {
                return 0;
            }
        }
    }

    fn finished(&mut self) -> bool {
        if self.oneshot && self.conns.is_empty() {
            return true;
        }
        if self.ctx.draining && self.conns.is_empty() {
            let _ = self.channel.send(&FromWorker::Drained, &[]);
            return true;
        }
        false
    }

    /// Once a second: timeouts, drain deadline, activity report.
    fn tick(&mut self) -> Option<i32> {
        self.trigger();
        for line in wick_conf::pattern::take_reports() {
            self.log(format_args!("{line}"));
        }
        let now = self.ctx.clock.mono;
        let mut expired = Vec::new();
        for (key, c) in self.conns.iter() {
            let idle = now.saturating_sub(c.since);
            let drained = self.ctx.draining && c.is_idle() && c.requests > 0 && idle >= DRAIN_IDLE;
            if drained {
                expired.push((key, false));
            } else if c.expired(&self.ctx, now) {
                expired.push((key, true));
            }
        }
        for (key, timed_out) in expired {
            if timed_out {
                if let Some(c) = self.conns.get_mut(key) {
                    c.timed_out(&mut self.ctx);
                }
            }
            self.close(key);
        }
        let mut due = Vec::new();
        for (key, c) in self.conns.iter_mut() {
            if c.tick_handler(&mut self.ctx, now) {
                due.push(key);
            }
        }
        for key in due {
            self.drive(key);
        }
        crate::mods::status::count::census(self.conns.iter().map(|(_, c)| c));
        if let Some(d) = self.drain_deadline {
            if now >= d {
                let _ = self.channel.send(&FromWorker::Drained, &[]);
                return Some(0);
            }
        }
        if self.report_activity && self.ctx.activity {
            self.ctx.activity = false;
            let _ = self.channel.send(&FromWorker::Active, &[]);
        }
        None
    }

    fn channel_event(&mut self) -> Option<i32> {
        loop {
            match self.channel.recv() {
                Ok(Some((msg, mut fds))) => match msg {
                    ToWorker::Drain { timeout_ms } => self.start_drain(timeout_ms),
                    ToWorker::Terminate => return Some(0),
                    ToWorker::ReopenLog => {
                        if let Some(fd) = fds.pop() {
                            match &mut self.log {
                                Logger::File(l) => l.set_fd(fd),
                                Logger::Channel => {
                                    self.log =
                                        Logger::File(wick_proto::log::ErrorLog::file(fd, "worker"))
                                }
                            }
                        }
                    }
                    ToWorker::SpawnerChannel { .. } => {
                        if let Some(fd) = fds.pop() {
                            if let Err(e) = self.ctx.cgi.set_channel(fd, self.poll.registry()) {
                                self.log(format_args!("mod_cgi: the new spawner channel: {e}"));
                            }
                        }
                    }
                    ToWorker::TicketKeys(t) => {
                        if let Some(tls) = &self.ctx.tls {
                            tls.ticket_keys(&t);
                        }
                    }
                    ToWorker::Stapling { path, ocsp } => {
                        if let Some(tls) = &mut self.ctx.tls {
                            tls.stapling(&path, ocsp);
                        }
                    }
                    ToWorker::AccessLogs { .. } => {
                        if let Some(a) = &self.ctx.site.mods.accesslog {
                            a.deliver(fds);
                        }
                    }
                    // A second setup, or the spawner's: the master's mistake.
                    ToWorker::WorkerSetup(_) | ToWorker::SpawnerSetup(_) => self.log(format_args!(
                        "unexpected message from the master: {}",
                        msg.name()
                    )),
                },
                Ok(None) => return Some(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => {
                    self.log(format_args!("channel: {e}"));
                    return Some(1);
                }
            }
        }
    }

    fn start_drain(&mut self, timeout_ms: u64) {
        if self.ctx.draining {
            return;
        }
        self.ctx.draining = true;
        self.arm_listeners(false);
        // The master keeps the listening sockets; ours go, so nothing more queues here.
        self.listeners.clear();
        self.drain_deadline = if timeout_ms == 0 {
            None
        } else {
            Some(self.ctx.clock.mono + timeout_ms.div_ceil(1000).max(1))
        };
        // Keep-alive connections are not closed here: one that looks idle may have
        // a request on its way. tick() closes those idle for DRAIN_IDLE seconds;
        // the others get `Connection: close` on their next response.
    }

    fn accept(&mut self, i: usize) {
        for _ in 0..ACCEPT_BATCH {
            if self.conns.len() >= self.ctx.site.max_conns {
                // Excess connections wait in the kernel queue.
                self.arm_listeners(false);
                return;
            }
            let Some(l) = self.listeners.get_mut(i) else {
                return;
            };
            match sys::accept4(l.fd.as_raw_fd()) {
                Ok((fd, peer)) => {
                    l.accepts += 1;
                    if l.accepts >= REARM_EVERY {
                        l.accepts = 0;
                        let ep = self.poll.as_raw_fd();
                        let lfd = l.fd.as_raw_fd();
                        if sys::epoll_del(ep, lfd).is_ok()
                            && sys::epoll_add_exclusive(ep, lfd, LISTENER_BASE + i).is_err()
                        {
                            l.armed = false;
                        }
                    }
                    self.ctx.activity = true;
                    self.add_conn(fd, peer, i as u16);
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR) | Some(libc::ECONNABORTED) | Some(libc::EPROTO) => continue,
                    Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS)
                    | Some(libc::ENOMEM) => {
                        self.log(format_args!("accept: {e}; not accepting for a second"));
                        self.paused_until = self.ctx.clock.mono + 1;
                        self.arm_listeners(false);
                        return;
                    }
                    _ => {
                        self.log(format_args!("accept: {e}"));
                        return;
                    }
                },
            }
        }
    }

    fn add_conn(&mut self, fd: OwnedFd, peer: (IpAddr, u16), listener: u16) {
        crate::mods::status::count::opened();
        let now = self.ctx.clock.mono;
        let mut conn = Conn::new(fd, peer, listener, true, now);
        if self.ctx.tls.as_ref().is_some_and(|t| t.is_tls(listener)) {
            conn.io.tls = Some(Box::default());
        }
        let key = self.conns.insert(conn);
        // The request usually arrives with the connection: try it before
        // registering, so that a connection answered and closed at once costs no
        // epoll_ctl. The edge-triggered registration afterwards still reports
        // data that came in between.
        self.drive(key);
    }

    fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        self.ctx.cgi.current = key;
        let next = conn.drive(&mut self.ctx, &mut self.rbuf);
        if matches!(next, Next::Close) {
            self.close(key);
            return;
        }
        if matches!(next, Next::Again) {
            self.again.push(key);
        }
        if let Some(at) = conn.wake_at() {
            self.wakeups.push(Reverse((at, key)));
        }
        // Edge-triggered: a direction still registered but no longer needed costs
        // at most a spurious wake-up, never a lost one; keeping it saves two
        // epoll_ctl per blocked write. (mod_cgi's phase sets its own, exactly.)
        let mut want = conn.interest();
        if !conn.registered.is_empty() && !matches!(conn.phase, crate::conn::Phase::Handler) {
            want |= conn.registered;
        }
        if !self.oneshot && want != conn.registered {
            let i = match (want.contains(Want::READ), want.contains(Want::WRITE)) {
                (true, true) => Interest::READABLE | Interest::WRITABLE,
                (false, true) => Interest::WRITABLE,
                _ => Interest::READABLE,
            };
            let fd = conn.io.fd();
            let reg = self.poll.registry();
            let r = if conn.registered.is_empty() {
                reg.register(&mut SourceFd(&fd), Token(key), i)
            } else {
                reg.reregister(&mut SourceFd(&fd), Token(key), i)
            };
            if r.is_err() {
                self.close(key);
                return;
            }
            conn.registered = want;
        }
    }

    /// Drive the connections whose time has come.
    fn wake_due(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, key))) = self.wakeups.peek() {
            if at > now {
                break;
            }
            self.wakeups.pop();
            self.drive(key);
        }
    }

    fn close(&mut self, key: usize) {
        if self.conns.contains(key) {
            // Closing the fd also removes it from the epoll set.
            let mut c = self.conns.remove(key);
            c.abandon(&mut self.ctx);
            crate::mods::status::count::closed();
        }
    }

    /// The gateway-spawner answered (or its channel can take more).
    fn spawner_event(&mut self) {
        let keys = crate::cgi::spawner_event(
            &mut ConnJobs(&mut self.conns),
            &mut self.ctx,
            self.poll.registry(),
        );
        for key in keys {
            self.drive(key);
        }
    }
}

/// The CGI jobs of the connections, for the spawner's answers.
struct ConnJobs<'a>(&'a mut Slab<Conn>);

impl crate::cgi::Jobs for ConnJobs<'_> {
    fn job(&mut self, key: usize, id: u64) -> Option<&mut crate::cgi::Job> {
        self.0.get_mut(key)?.cgi_job(id)
    }
}
