//! One client connection: lighttpd's state machine (read head → read body →
//! handle → write → keep-alive or close), pipelining in order, lingering close.
//!
//! An idle connection holds no heap: bytes are read into the worker's shared
//! buffer, and a connection gets its own [`State`] only while a request is partial,
//! a body is being read, or a response waits for the socket.

use crate::body::{Body, Taken};
use crate::ctx::Ctx;
use crate::h1;
pub use crate::handler::Want;
use crate::handler::{Client, Handler, Step};
use crate::pipeline::{self, Outcome};
use crate::request::{self, Head, ParseError, Version};
use crate::response::Out;
use crate::transport::Transport;
use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Reading (and discarding) a request body; the response is held until done.
    Body,
    /// Writing a response the socket did not take at once.
    Write,
    /// Response sent, write side shut: reading until the client closes.
    Linger,
    /// A handler answers the request over several loop turns (handler.rs): a CGI
    /// script, a deferred directory listing.
    Handler,
    /// The connection speaks HTTP/2 (h2/): `State::h2` has it.
    H2,
}

/// What a connection owns only while it is busy.
#[derive(Default)]
pub struct State {
    /// Received bytes not yet consumed (a partial head, pipelined requests).
    pub input: Vec<u8>,
    /// How far `input` was already searched for the end of the head.
    pub scanned: usize,
    /// The request body still to read (body.rs).
    pub body: Option<Body>,
    /// The response to send once the body is read.
    pub held: Option<Out>,
    /// A response being written.
    pub out: Option<Out>,
    /// What answers the current request over several turns (Phase::Handler).
    pub handler: Option<Box<dyn Handler>>,
    /// Monotonic second the partial head in `input` began (max-read-idle bounds
    /// the whole head, not each byte).
    pub head_since: u64,
    /// An HTTP/2 connection's streams and protocol state (Phase::H2).
    pub h2: Option<Box<crate::h2::H2>>,
}

bitflags::bitflags! {
    /// What a connection knows beyond its phase (one byte: an idle connection
    /// stays small).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Flags: u8 {
        /// Answer what was asked, then close.
        const CLOSE_AFTER = 1;
        /// The last read emptied the socket's receive queue (cleared by a readable
        /// event: server.rs).
        const DRAINED = 2;
        /// Input was thrown away (or a body left unread): close with lingering.
        const DIRTY = 4;
        /// TCP_NOTSENT_LOWAT is set (the connection has carried a large body).
        const PACED = 8;
        /// The client half-closed (EPOLLRDHUP came with an event): after the data
        /// it sent, a read returns 0, so a short read is not the end of the work.
        const PEER_FIN = 16;
        /// The blank line allowed before a request line was skipped (a second is
        /// a 400, as in lighttpd).
        const BLANK_SKIPPED = 32;
        /// A read returned 0 while a handler answered: the client half-closed
        /// after its request, nothing more will come.
        const EOF = 64;
        /// This is an HTTP/2 stream's exchange (h2/): its one request is served
        /// as HTTP/2.0, then it ends.
        const H2_STREAM = 128;
    }
}

pub struct Conn {
    /// The byte stream (transport.rs).
    pub io: Transport,
    pub peer: IpAddr,
    /// The peer's TCP port (0 for a unix socket or a pipe).
    pub peer_port: u16,
    pub listener: u16,
    pub phase: Phase,
    /// Interest registered with the poller (empty: not registered yet).
    pub registered: Want,
    pub flags: Flags,
    pub requests: u32,
    /// Monotonic second of the last progress (timeouts).
    pub since: u64,
    pub st: Option<Box<State>>,
}

pub enum Next {
    Keep,
    Close,
    /// More to do, but other connections get their turn first.
    Again,
}

/// Bytes written for one connection before the others get their turn.
const WRITE_SLICE: u64 = 256 << 10;

/// Largest response backlog built from pipelined requests before writing.
const OUT_HIGH: usize = 256 * 1024;
/// Bytes a lingering connection may still send us.
const LINGER_MAX: usize = 1 << 20;

impl Conn {
    pub fn new(fd: OwnedFd, peer: (IpAddr, u16), listener: u16, is_socket: bool, now: u64) -> Conn {
        Conn {
            io: Transport::new(fd, is_socket),
            peer: peer.0,
            peer_port: peer.1,
            listener,
            phase: Phase::Head,
            registered: Want::empty(),
            flags: Flags::empty(),
            requests: 0,
            since: now,
            st: None,
        }
    }

    /// An HTTP/2 stream's exchange over `io` (h2/pipe.rs).
    pub fn new_stream(io: Transport, peer: (IpAddr, u16), listener: u16, now: u64) -> Conn {
        Conn {
            io,
            peer: peer.0,
            peer_port: peer.1,
            listener,
            phase: Phase::Head,
            registered: Want::empty(),
            flags: Flags::H2_STREAM,
            requests: 0,
            since: now,
            st: None,
        }
    }

    fn h2(&self) -> Option<&crate::h2::H2> {
        self.st.as_ref().and_then(|s| s.h2.as_deref())
    }

    fn h2_mut(&mut self) -> Option<&mut crate::h2::H2> {
        self.st.as_mut().and_then(|s| s.h2.as_deref_mut())
    }

    /// New request bytes wait in an HTTP/2 stream's pipe: read them.
    pub fn input_arrived(&mut self) {
        self.flags.remove(Flags::DRAINED);
    }

    /// Interest derived from the state (never toggled by hand).
    pub fn interest(&self) -> Want {
        if let Some(h2) = self.h2() {
            return h2.interest(&self.io);
        }
        let http = match self.phase {
            Phase::Write => Want::WRITE,
            Phase::Handler => self.handler().map_or(Want::READ, |h| h.want()),
            _ => Want::READ,
        };
        // TLS records of ours (handshake, a response's tail) wait for the socket.
        if self.io.wants_write() {
            http | Want::WRITE
        } else {
            http
        }
    }

    fn state(&mut self) -> &mut State {
        self.st.get_or_insert_with(Default::default)
    }

    /// Drop the busy-state box once it holds nothing.
    fn tidy(&mut self) {
        if let Some(st) = &self.st {
            if st.input.is_empty()
                && st.body.is_none()
                && st.held.is_none()
                && st.out.is_none()
                && st.handler.is_none()
                && st.h2.is_none()
            {
                self.st = None;
            }
        }
    }

    /// Idle between requests (may be closed on drain or keep-alive timeout).
    pub fn is_idle(&self) -> bool {
        if let Some(h2) = self.h2() {
            return h2.is_idle();
        }
        self.phase == Phase::Head && self.st.as_ref().is_none_or(|s| s.input.is_empty())
    }

    /// A time limit has passed: silence, a head that takes too long, a body below
    /// server.min-request-body-rate. `since` values are whole seconds, so a limit
    /// of N is passed only when more than N seconds separate them: never early.
    pub fn expired(&self, ctx: &Ctx, now: u64) -> bool {
        if now.saturating_sub(self.since) > self.timeout(ctx) {
            return true;
        }
        let Some(st) = self.st.as_deref() else {
            return false;
        };
        if self.phase == Phase::Head && !st.input.is_empty() {
            return now.saturating_sub(st.head_since) > ctx.site.read_idle;
        }
        let (rate, grace) = (ctx.site.min_body_rate, ctx.site.read_idle);
        st.body
            .as_ref()
            .is_some_and(|b| b.too_slow(now, rate, grace))
    }

    /// A time limit passed while the client still owed us part of its request:
    /// answer 408 when no response has begun (best effort, the connection closes).
    pub fn timed_out(&mut self, ctx: &mut Ctx) {
        let owed = match self.phase {
            Phase::Head => self.st.as_ref().is_some_and(|s| !s.input.is_empty()),
            Phase::Body => true,
            Phase::Handler => {
                self.st.as_ref().is_some_and(|s| s.body.is_some())
                    && self.handler().is_some_and(|h| !h.started())
            }
            Phase::H2 => {
                if let Some(mut h2) = self.st.as_mut().and_then(|s| s.h2.take()) {
                    h2.timed_out(&mut self.io);
                    self.state().h2 = Some(h2);
                }
                false
            }
            _ => false,
        };
        if !owed {
            return;
        }
        let head = match self.phase {
            Phase::Head => self.st.as_mut().map(|s| std::mem::take(&mut s.input)),
            _ => None,
        };
        if let Some(st) = self.st.as_mut() {
            st.held = None;
        }
        ctx.out.clear();
        let why = if self.phase == Phase::Head {
            "request head not in within server.max-read-idle"
        } else {
            "request body too slow (server.max-read-idle, server.min-request-body-rate)"
        };
        self.refuse(
            ctx,
            Version::Http11,
            408,
            why,
            head.as_deref().unwrap_or(&[]),
        );
        let _ = ctx.out.flush(&mut self.io, true);
        ctx.out.clear();
    }

    /// The timeout (seconds) that applies now.
    pub fn timeout(&self, ctx: &Ctx) -> u64 {
        match self.phase {
            Phase::Head if self.is_idle() && self.requests > 0 => ctx.site.keep_alive_idle,
            Phase::Head | Phase::Body => ctx.site.read_idle,
            Phase::Write => ctx.site.write_idle,
            Phase::Linger => crate::site::LINGER_SECS,
            Phase::Handler => self.handler().map_or(ctx.site.write_idle, |h| {
                let t = h.timeout(ctx.site.write_idle);
                if h.reading_body() {
                    t.min(ctx.site.read_idle)
                } else {
                    t
                }
            }),
            Phase::H2 => self.h2().map_or(ctx.site.read_idle, |h| h.timeout(ctx)),
        }
    }

    /// Make progress after a readiness event (or right after accept).
    /// `rbuf`: the worker's shared read buffer (bytes that stay go to `State`).
    pub fn drive(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Next {
        if self.io.tls_accepting() {
            if let Some(next) = self.tls_hello(ctx) {
                return next;
            }
        }
        // At most 64 rounds, then the other connections get their turn.
        for _ in 0..64 {
            let stop = match self.phase {
                Phase::H2 => Some(self.drive_h2(ctx, rbuf)),
                Phase::Write => self.write_turn(ctx),
                Phase::Linger => Some(self.linger(rbuf)),
                Phase::Handler => self.drive_handler(ctx, rbuf),
                Phase::Head | Phase::Body if self.has_unprocessed() => self.feed_buffered(ctx),
                Phase::Head | Phase::Body => self.read_turn(ctx, rbuf),
            };
            if let Some(next) = stop {
                return next;
            }
        }
        Next::Again
    }

    /// A TLS connection's ClientHello: its SNI picks the configuration (tls/).
    /// None: the handshake goes on in the phases' reads and writes.
    fn tls_hello(&mut self, ctx: &mut Ctx) -> Option<Next> {
        use crate::tls::session::Hello;
        let fd = self.io.fd();
        let session = self.io.tls.as_deref_mut()?;
        let accepted = match session.hello(fd) {
            Hello::Need => return Some(Next::Keep),
            Hello::Closed => return Some(Next::Close),
            Hello::PlainHttp => {
                // Logged as lighttpd logs it.
                ctx.log.push(format!("SSL: http request ({})", self.peer));
                return Some(Next::Close);
            }
            Hello::Failed(why) => {
                // Other refused hellos only with debug.log-ssl-noise.
                if ctx.tls.as_ref().is_some_and(|t| t.log_noise) {
                    ctx.log.push(format!("SSL: {why} ({})", self.peer));
                }
                return Some(Next::Close);
            }
            Hello::Ready(a) => a,
        };
        self.since = ctx.clock.mono;
        let sni = accepted.client_hello().server_name().map(str::to_string);
        let tls = ctx.tls.as_mut()?;
        let chosen = tls.choose(&ctx.site.compiled, self.listener, sni.as_deref(), self.peer);
        let profile = match chosen {
            Ok(p) => p,
            Err(e) => {
                ctx.log
                    .push(format!("SSL: no configuration for {sni:?}: {e}"));
                return Some(Next::Close);
            }
        };
        let acme = &profile.settings.acme_tls_1;
        if !acme.is_empty() && crate::tls::acme::is_challenge(&accepted.client_hello()) {
            let cfg = crate::tls::acme::config(acme, sni.as_deref().unwrap_or(""));
            let cfg = match cfg {
                Ok(c) => c,
                Err(e) => {
                    ctx.log.push(format!("SSL: {e} ({})", self.peer));
                    return Some(Next::Close);
                }
            };
            let challenge = std::rc::Rc::new(crate::tls::Profile {
                config: cfg,
                settings: profile.settings.clone(),
                verifier: None,
            });
            // The validation needs the handshake only: then the connection ends.
            self.flags |= Flags::CLOSE_AFTER;
            return match session.start(*accepted, challenge, fd) {
                Ok(()) => None,
                Err(_) => Some(Next::Close),
            };
        }
        if let Err(e) = session.start(*accepted, profile, fd) {
            if tls.log_noise {
                ctx.log.push(format!("SSL: {e} ({})", self.peer));
            }
            return Some(Next::Close);
        }
        None
    }

    /// Write what waits (one budget's worth). None: all out, go on in the phase
    /// after the write.
    fn write_turn(&mut self, ctx: &mut Ctx) -> Option<Next> {
        let closing = self.closes_after_output();
        let Some(out) = self.st.as_mut().and_then(|s| s.out.as_mut()) else {
            self.phase = Phase::Head;
            return None;
        };
        let before = out.remaining();
        self.pace(before);
        let out = self.st.as_mut().and_then(|s| s.out.as_mut())?;
        out.budget = WRITE_SLICE;
        let r = out.flush(&mut self.io, closing);
        let yielded = out.yielded;
        if out.remaining() < before {
            // max-write-idle counts from the last progress.
            self.since = ctx.clock.mono;
        }
        match r {
            Ok(true) => {
                if let Some(st) = self.st.as_mut() {
                    st.out = None;
                }
                self.after_write()
            }
            Ok(false) if yielded => Some(Next::Again),
            Ok(false) => Some(Next::Keep),
            Err(e) => {
                log_write_error(ctx, &e, self.peer);
                Some(Next::Close)
            }
        }
    }

    /// Requests (or the rest of a body) already in our buffer, before the socket.
    fn feed_buffered(&mut self, ctx: &mut Ctx) -> Option<Next> {
        let st = self.st.as_mut()?;
        let input = std::mem::take(&mut st.input);
        let used = self.feed(ctx, &input, true);
        let junk = self.rest_is_junk();
        if let Some(st) = self.st.as_mut() {
            if used < input.len() && st.input.is_empty() {
                let mut input = input;
                input.drain(..used);
                st.input = input;
                if junk {
                    self.flags |= Flags::DIRTY;
                    st.input.clear();
                    st.scanned = 0;
                }
            }
        }
        self.flush(ctx)
    }

    /// Read the socket and serve what came. None: go round again.
    fn read_turn(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Option<Next> {
        if self.flags.contains(Flags::CLOSE_AFTER) && self.phase == Phase::Head {
            // Answered and closing: nothing more to read as a request.
            return Some(self.close_now(ctx, rbuf));
        }
        if self.flags.contains(Flags::DRAINED) && !self.flags.contains(Flags::PEER_FIN) {
            // Known empty since the last read (a handler's answer came by its own
            // events): the next request comes with a readable edge.
            self.tidy();
            return Some(Next::Keep);
        }
        let n = match self.io.read(rbuf) {
            Ok(0) => return Some(Next::Close),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(Next::Keep),
            Err(e) => {
                if self.io.tls.is_some() {
                    crate::tls::log_failure(ctx, &e, self.peer);
                }
                return Some(Next::Close);
            }
        };
        ctx.activity = true;
        self.since = ctx.clock.mono;
        self.flags.set(Flags::DRAINED, n < rbuf.len());
        if self.io.peer_closed {
            // TLS: the close came with the data; read again after it for the 0.
            self.flags |= Flags::PEER_FIN;
        }
        if let Some(st) = self.st.as_mut().filter(|s| !s.input.is_empty()) {
            // Append to the partial request and go round again.
            st.input.extend_from_slice(&rbuf[..n]);
            return None;
        }
        let used = self.feed(ctx, &rbuf[..n], false);
        if used < n && !self.rest_is_junk() {
            // A body that came with its head (a CGI's), pipelined requests.
            let st = self.state();
            st.input.extend_from_slice(&rbuf[used..n]);
        } else if used < n {
            self.flags |= Flags::DIRTY;
        }
        if let Some(n) = self.flush(ctx) {
            return Some(n);
        }
        // A handler that took the request goes on at once (its body may be in our
        // buffer); after a FIN the next read says so. HTTP/2 starts on what came.
        if self.flags.contains(Flags::DRAINED)
            && !self.flags.contains(Flags::PEER_FIN)
            && !self.has_unprocessed()
            && self.phase != Phase::Write
            && self.phase != Phase::Handler
            && self.phase != Phase::H2
        {
            // The socket is empty: wait for the next edge.
            self.tidy();
            if self.flags.contains(Flags::CLOSE_AFTER) && self.phase == Phase::Head {
                return Some(self.close_now(ctx, rbuf));
            }
            return Some(Next::Keep);
        }
        None
    }

    /// Bytes after what `feed` used are junk only after the last request of a
    /// closing connection; otherwise they are a body or the next request.
    fn rest_is_junk(&self) -> bool {
        self.flags.contains(Flags::CLOSE_AFTER) && self.phase == Phase::Head
    }

    fn has_unprocessed(&self) -> bool {
        self.st
            .as_ref()
            .is_some_and(|s| !s.input.is_empty() && s.scanned < s.input.len())
    }

    /// Before a body that takes more than one write turn (`remaining` bytes to
    /// send), once per connection: let the socket hold
    /// only NOTSENT_LOWAT unsent bytes beyond those in flight. With its whole
    /// buffer queued ahead (up to tcp_wmem's 4 MiB), most of it leaves later,
    /// clocked by ACKs, in whichever context handles them: on loopback, the
    /// client's. Kept short, it leaves in our own sendfile calls, and a slow
    /// client pins no megabytes of kernel memory. (10 MiB files, 4 connections,
    /// 2 workers on 2 cores: 2.8 -> 4.4-5.8 GB/s.)
    fn pace(&mut self, remaining: u64) {
        if remaining <= WRITE_SLICE || self.flags.contains(Flags::PACED) {
            return;
        }
        self.flags |= Flags::PACED;
        self.io.limit_unsent();
    }

    /// The output now queued is the last on this connection: nothing more to read
    /// or answer after it (a request body still to come could be waiting on it,
    /// as after `100 Continue`).
    fn closes_after_output(&self) -> bool {
        self.flags.contains(Flags::CLOSE_AFTER)
            && self
                .st
                .as_ref()
                .is_none_or(|s| s.body.is_none() && s.held.is_none())
    }

    /// A response finished writing: continue with the next request, or close.
    fn after_write(&mut self) -> Option<Next> {
        if self.st.as_ref().is_some_and(|s| s.body.is_some()) {
            self.phase = Phase::Body;
            return None;
        }
        self.phase = Phase::Head;
        self.tidy();
        None
    }

    /// Send what the worker's output buffer holds for this connection.
    fn flush(&mut self, ctx: &mut Ctx) -> Option<Next> {
        if ctx.out.is_empty() {
            ctx.out.clear();
            return None;
        }
        self.pace(ctx.out.remaining());
        ctx.out.budget = WRITE_SLICE;
        let closing = self.phase == Phase::Head && self.closes_after_output();
        let r = ctx.out.flush(&mut self.io, closing);
        let yielded = ctx.out.yielded;
        ctx.out.budget = 0;
        match r {
            Ok(true) => {
                ctx.out.clear();
                None
            }
            Ok(false) => {
                let rest = ctx.out.take_rest();
                let st = self.state();
                st.out = Some(rest);
                self.phase = Phase::Write;
                yielded.then_some(Next::Again)
            }
            Err(e) => {
                log_write_error(ctx, &e, self.peer);
                ctx.out.clear();
                Some(Next::Close)
            }
        }
    }

    /// Close after a complete response: at once when the client has nothing more in
    /// flight, else half-close and read until it closes (lingering close).
    fn close_now(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Next {
        if !self.flags.contains(Flags::DIRTY) && self.flags.contains(Flags::DRAINED) {
            self.io.close_notify();
            return Next::Close;
        }
        if !self.io.shutdown_write() {
            return Next::Close;
        }
        self.phase = Phase::Linger;
        self.since = ctx.clock.mono;
        if let Some(st) = self.st.as_mut() {
            st.input = Vec::new();
            st.body = None;
            st.held = None;
        }
        self.linger(rbuf)
    }

    fn linger(&mut self, rbuf: &mut [u8]) -> Next {
        let mut total = 0;
        loop {
            match self.io.read(rbuf) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    total += n;
                    if total > LINGER_MAX {
                        return Next::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(_) => return Next::Close,
            }
        }
    }

    /// Consume requests (and bodies) from `data`; responses go to `ctx.out`.
    /// Returns how many bytes were used. `from_input`: `data` is this connection's
    /// own buffer (so `scanned` applies).
    fn feed(&mut self, ctx: &mut Ctx, data: &[u8], from_input: bool) -> usize {
        let mut off = 0;
        while off < data.len() {
            let used = match self.phase {
                Phase::Head if self.flags.contains(Flags::CLOSE_AFTER) => return off,
                Phase::Head if ctx.out.buf.len() > OUT_HIGH => return off,
                Phase::Head => self.feed_head(ctx, data, off, from_input),
                Phase::Body => self.feed_body(ctx, &data[off..]),
                Phase::Write | Phase::Linger | Phase::Handler | Phase::H2 => return off,
            };
            let (n, more) = used;
            off += n;
            if !more {
                return off;
            }
        }
        off
    }

    /// Body bytes of a request whose response waits: (bytes used, whether the
    /// body ended: input after it is the next request). A refused body uses all.
    fn feed_body(&mut self, ctx: &mut Ctx, d: &[u8]) -> (usize, bool) {
        match self.consume_body(ctx, d) {
            Ok(used_done) => used_done,
            Err(status) => {
                if ctx.site.log_refused {
                    ctx.log.push(format!(
                        "{} -> {status}",
                        match status {
                            413 => "request body larger than server.max-request-size",
                            431 => "request trailers larger than server.max-request-field-size",
                            _ => "malformed chunked request body or trailers",
                        }
                    ));
                }
                // Bad chunked body or too large: drop the held response.
                if let Some(st) = self.st.as_mut() {
                    st.held = None;
                    st.body = None;
                }
                self.phase = Phase::Head;
                ctx.error_response(Version::Http11, status);
                self.flags |= Flags::CLOSE_AFTER | Flags::DIRTY;
                (d.len(), true)
            }
        }
    }

    /// The next head in `data[off..]`: (bytes used, whether to go on: false
    /// while the head is incomplete).
    fn feed_head(
        &mut self,
        ctx: &mut Ctx,
        data: &[u8],
        off: usize,
        from_input: bool,
    ) -> (usize, bool) {
        let d = &data[off..];
        if self.requests == 0 && off == 0 && self.h2_allowed(ctx, d) {
            if d.len() < crate::h2::engine::PREFACE.len() {
                // The rest of the preface is on its way.
                return (0, false);
            }
            self.phase = Phase::H2;
            self.state().h2 = Some(crate::h2::H2::new(d));
            return (d.len(), false);
        }
        let scanned = match from_input {
            true => self
                .st
                .as_ref()
                .map_or(0, |s| s.scanned)
                .saturating_sub(off),
            false => 0,
        };
        let blank_skipped = self.flags.contains(Flags::BLANK_SKIPPED);
        match h1::scan(d, scanned, ctx.site.field_limit, blank_skipped) {
            h1::Scan::Partial { scanned: new } => {
                if scanned == 0 {
                    // The first look at this head: its time starts.
                    self.state().head_since = ctx.clock.mono;
                }
                if from_input || new > 0 {
                    self.state().scanned = new;
                }
                (0, false)
            }
            h1::Scan::Blank(n) => {
                self.flags |= Flags::BLANK_SKIPPED;
                (n, true)
            }
            h1::Scan::Bad(e) => {
                self.parse_error(ctx, e, d);
                (d.len(), true)
            }
            h1::Scan::Head(n) => {
                self.flags.remove(Flags::BLANK_SKIPPED);
                if let Some(st) = self.st.as_mut() {
                    st.scanned = 0;
                }
                let head_bytes = &d[..n];
                let mut fields = std::mem::take(&mut ctx.fields);
                let used = match request::parse(head_bytes, &mut fields) {
                    Ok(head) if self.h2_upgrade(ctx, head_bytes, &head, &fields, &d[n..]) => {
                        d.len()
                    }
                    Ok(head) => {
                        let rest_empty = off + n == data.len();
                        self.request(ctx, head_bytes, &head, &fields, rest_empty);
                        n
                    }
                    Err(e) => {
                        self.parse_error(ctx, e, head_bytes);
                        d.len()
                    }
                };
                ctx.fields = fields;
                (used, true)
            }
        }
    }

    /// Does the client begin HTTP/2 here: ALPN "h2" on TLS, the preface on
    /// cleartext where server.h2c allows it (h2c prior knowledge)?
    fn h2_allowed(&self, ctx: &Ctx, d: &[u8]) -> bool {
        if self.flags.contains(Flags::H2_STREAM) || !ctx.site.h2proto {
            return false;
        }
        let tls = self.io.tls.as_deref();
        let alpn_h2 = tls
            .and_then(|t| t.connection())
            .is_some_and(|(c, _)| c.alpn_protocol() == Some(b"h2"));
        crate::h2::starts(d, tls.is_some(), alpn_h2, ctx.site.h2c)
    }

    /// A cleartext request asking for `Upgrade: h2c` (with HTTP2-Settings and
    /// no body, as lighttpd wants it): 101, then HTTP/2 with the request as
    /// stream 1. `rest`: what the client sent after the head.
    fn h2_upgrade(
        &mut self,
        ctx: &Ctx,
        buf: &[u8],
        head: &Head,
        fields: &[request::Field],
        rest: &[u8],
    ) -> bool {
        if self.requests > 0
            || self.io.tls.is_some()
            || self.flags.contains(Flags::H2_STREAM)
            || !ctx.site.h2c
            || head.version != Version::Http11
            || head.body != request::BodyKind::None
        {
            return false;
        }
        let Some(settings) = crate::h2::upgrade_settings(buf, fields) else {
            return false;
        };
        match crate::h2::H2::upgraded(self, buf, fields, &settings, rest, ctx.clock.mono) {
            Some(h2) => {
                self.requests += 1;
                self.phase = Phase::H2;
                self.state().h2 = Some(h2);
                true
            }
            None => false,
        }
    }

    /// Phase::H2: the HTTP/2 connection takes over (h2/).
    fn drive_h2(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Next {
        let Some(mut h2) = self.st.as_mut().and_then(|s| s.h2.take()) else {
            return Next::Close;
        };
        let next = h2.drive(self, ctx, rbuf);
        self.state().h2 = Some(h2);
        next
    }

    fn parse_error(&mut self, ctx: &mut Ctx, e: ParseError, head: &[u8]) {
        self.requests += 1;
        self.refuse(ctx, e.version, e.status, e.reason, head);
    }

    /// Answer a request refused as malformed and close; with
    /// debug.log-request-header-on-error, log why and the head. mod_accesslog
    /// logs it too, as lighttpd's does.
    fn refuse(&mut self, ctx: &mut Ctx, v: Version, status: u16, why: &str, head: &[u8]) {
        if ctx.site.log_refused {
            ctx.log.push(format!("{why} -> {status}"));
            ctx.log
                .push(format!("request-header:\n{}", h1::printable(head, 4096)));
        }
        let at = ctx.out.buf.len();
        ctx.error_response(v, status);
        let method = head.split(|&c| c == b' ').next().unwrap_or_default();
        let started = crate::mods::status::count::Started::new(method, ctx.clock.at);
        crate::mods::status::count::request(started, status, ctx.clock.at);
        self.flags |= Flags::CLOSE_AFTER | Flags::DIRTY;
        let refused = crate::mods::accesslog::Refused {
            remote: self.peer,
            remote_port: self.peer_port,
            listener: self.listener as usize,
            head,
            status,
            resp: ctx.out.buf.get(at..).unwrap_or_default(),
            requests: self.requests,
        };
        if let Some(a) = ctx.site.mods.accesslog.as_deref() {
            crate::mods::accesslog::refused(a, &ctx.site.compiled, &refused);
        }
    }

    /// Body bytes: (used, finished).
    fn consume_body(&mut self, ctx: &mut Ctx, d: &[u8]) -> Result<(usize, bool), u16> {
        let Some(st) = self.st.as_mut() else {
            return Ok((0, true));
        };
        let (used, done) = match st.body.as_mut() {
            None => (0, true),
            // Read and dropped: the static handler does not take a body (its
            // trailers are still checked, as lighttpd does).
            Some(b) => {
                let t = b.take(d, |_| {}, ctx.site.field_limit, &[])?;
                (t.used, t.done.is_some())
            }
        };
        if done {
            st.body = None;
            if let Some(held) = st.held.take() {
                ctx.out.append(&held);
            }
            self.phase = Phase::Head;
        }
        Ok((used, done))
    }

    /// One parsed request: decide keep-alive, run it through the pipeline
    /// (pipeline.rs), and go on as its outcome says.
    fn request(
        &mut self,
        ctx: &mut Ctx,
        buf: &[u8],
        head: &Head,
        fields: &[request::Field],
        rest_empty: bool,
    ) {
        self.requests += 1;
        let stream_head;
        let head = if self.flags.contains(Flags::H2_STREAM) {
            // One request per HTTP/2 stream, served as HTTP/2.0.
            stream_head = Head {
                version: Version::Http2,
                keep_alive: false,
                ..*head
            };
            &stream_head
        } else {
            head
        };
        let keep_alive = h1::keep_alive(head, &ctx.site, ctx.draining, self.requests);
        let r = pipeline::Request {
            buf,
            head,
            fields,
            peer: self.peer,
            peer_port: self.peer_port,
            listener: self.listener,
            fd: self.io.fd(),
            requests: self.requests,
            keep_alive,
            wants_continue: h1::wants_continue(head, rest_empty),
            tls: self.io.tls.as_deref(),
        };
        let outcome = pipeline::run(ctx, &r);
        if !keep_alive {
            self.flags |= Flags::CLOSE_AFTER;
        }
        match outcome {
            Outcome::Refused { status, why } => self.refuse(ctx, head.version, status, why, buf),
            Outcome::Answered { mark, body, close } => {
                if close {
                    self.flags |= Flags::CLOSE_AFTER;
                }
                if let Some(body) = body {
                    self.expect_body(body, &mut ctx.out, mark);
                }
            }
            Outcome::Handler { handler, body } => {
                self.install(handler);
                if body.is_some() {
                    self.state().body = body;
                }
            }
            Outcome::Internal { ir, body } => {
                let mark = ctx.out.mark();
                self.internal_request(ctx, *ir);
                match body {
                    // The handler's answer waits for the body, as any other.
                    Some(b) if self.phase == Phase::Head => self.expect_body(b, &mut ctx.out, mark),
                    // A script handles it: the body is not read for it.
                    Some(_) => self.flags |= Flags::CLOSE_AFTER | Flags::DIRTY,
                    None => {}
                }
            }
        }
    }

    /// The request has a body: it is read (and dropped) while the response, from
    /// `mark` in `out`, waits.
    fn expect_body(&mut self, body: Body, out: &mut Out, mark: (usize, usize)) {
        let held = out.split_off(mark);
        let st = self.state();
        st.held = Some(held);
        st.body = Some(body);
        self.phase = Phase::Body;
    }
}

/// Phase::Handler: the connection's side of the handler contract (handler.rs).
impl Conn {
    fn handler(&self) -> Option<&dyn Handler> {
        self.st.as_ref().and_then(|s| s.handler.as_deref())
    }

    /// The handler of the current request, to step from now on.
    fn install(&mut self, h: Box<dyn Handler>) {
        let st = self.state();
        st.handler = Some(h);
        st.held = None;
        self.phase = Phase::Handler;
    }

    /// The CGI job of this connection, if it is job `id` (the spawner's answers).
    pub fn cgi_job(&mut self, id: u64) -> Option<&mut crate::cgi::Job> {
        if self.phase == Phase::H2 {
            return self.h2_mut()?.cgi_job(id);
        }
        let h = self.st.as_mut()?.handler.as_mut()?;
        let job = h.as_any().downcast_mut::<crate::cgi::Job>()?;
        (job.id() == id).then_some(job)
    }

    /// When the handler wants to be stepped next, sooner than a second (park.rs).
    pub fn wake_at(&self) -> Option<std::time::Instant> {
        match self.phase {
            Phase::Handler => self.handler().and_then(|h| h.wake_at()),
            Phase::H2 => self.h2().and_then(|h| h.wake_at()),
            _ => None,
        }
    }

    /// Once a second: the handler's own timers. True: drive the connection.
    pub fn tick_handler(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        if let Some(h2) = self.h2_mut() {
            return h2.tick(ctx, now);
        }
        let h = self.st.as_mut().and_then(|s| s.handler.as_mut());
        h.is_some_and(|h| h.tick(ctx, now))
    }

    /// The connection is being closed: its handler lets go of what it holds.
    pub fn abandon(&mut self, ctx: &mut Ctx) {
        if let Some(h2) = self.h2_mut() {
            h2.abandon(ctx);
        }
        if let Some(mut h) = self.st.as_mut().and_then(|s| s.handler.take()) {
            h.abort(ctx, None);
        }
    }

    /// Step the handler until it waits, yields or ends. None: it ended and the
    /// connection goes on in the phase set; Some(next): stop here.
    fn drive_handler(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Option<Next> {
        let Some(mut h) = self.st.as_mut().and_then(|s| s.handler.take()) else {
            self.phase = Phase::Head;
            return None;
        };
        match self.run_handler(ctx, &mut *h, rbuf) {
            Step::Wait => {
                self.state().handler = Some(h);
                Some(Next::Keep)
            }
            Step::Progress | Step::Yield => {
                self.state().handler = Some(h);
                Some(Next::Again)
            }
            Step::Close | Step::Refuse(_) => {
                h.abort(ctx, None);
                Some(Next::Close)
            }
            Step::Done { out, keep_alive } => {
                self.handler_done(out, keep_alive);
                None
            }
            Step::Redirect(ir) => {
                if self.st.as_mut().is_some_and(|s| s.body.take().is_some()) {
                    // The body went to the first script; the rest is not read.
                    self.flags |= Flags::CLOSE_AFTER | Flags::DIRTY;
                }
                self.phase = Phase::Head;
                self.redispatch(ctx, *ir);
                // (an authorizer's grant, if any, was that run's alone)
                ctx.grant = None;
                None
            }
            Step::Rerun(head) => {
                self.phase = Phase::Head;
                self.rerun(ctx, &head);
                ctx.grant = None;
                None
            }
        }
    }

    /// Alternate the body service and the handler's steps, at most 64 rounds.
    fn run_handler(&mut self, ctx: &mut Ctx, h: &mut dyn Handler, rbuf: &mut [u8]) -> Step {
        for _ in 0..64 {
            let fed = match self.feed_handler(ctx, h, rbuf) {
                Ok(fed) => fed,
                Err(status) => {
                    self.refuse_body(ctx, h, status);
                    Fed::Some
                }
            };
            if fed == Fed::Gone {
                return Step::Close;
            }
            let mut client = Client::new(&mut self.io, &mut self.since);
            match h.step(ctx, &mut client, rbuf) {
                Step::Progress => {}
                Step::Wait if fed == Fed::Some => {}
                Step::Refuse(status) => self.refuse_body(ctx, h, status),
                other => return other,
            }
        }
        Step::Yield
    }

    /// Stop reading a request body the handler refused (or that was malformed):
    /// the connection closes after the answer the handler gives.
    fn refuse_body(&mut self, ctx: &mut Ctx, h: &mut dyn Handler, status: u16) {
        if let Some(st) = self.st.as_mut() {
            st.body = None;
            st.input.clear();
        }
        self.flags |= Flags::CLOSE_AFTER | Flags::DIRTY;
        h.abort(ctx, Some(status));
    }

    /// The body service: what the client sent, buffered first and then from the
    /// socket, decoded into the room the handler offers; after the body, the
    /// client's end (or the next pipelined request) is watched for. Err: the body
    /// is refused with that status.
    fn feed_handler(
        &mut self,
        ctx: &mut Ctx,
        h: &mut dyn Handler,
        rbuf: &mut [u8],
    ) -> Result<Fed, u16> {
        if h.tunnel() {
            return Ok(self.feed_tunnel(ctx, h, rbuf));
        }
        let now = ctx.clock.mono;
        let mut fed = Fed::Nothing;
        let st = self.st.get_or_insert_with(Default::default);
        if st.body.is_some() && !st.input.is_empty() {
            if let Some(room) = h.body_room() {
                let input = std::mem::take(&mut st.input);
                let t = take_body(&mut st.body, &input, room, &ctx.site)?;
                st.input.extend_from_slice(&input[t.used..]);
                if let Some(trailers) = t.done {
                    h.body_done(ctx, trailers);
                }
                fed = Fed::Some;
            }
        }
        let body_open = st.body.is_some();
        let has_room = body_open && h.body_room().is_some();
        let want_read = if body_open {
            has_room
        } else {
            // Watching for the next request or the FIN: not while the socket is
            // known empty (the next bytes come with a readable event, which clears
            // DRAINED); a handler's own events step it without a read each time.
            st.input.len() < ctx.site.field_limit
                && !self.flags.contains(Flags::EOF)
                && (!self.flags.contains(Flags::DRAINED) || self.flags.contains(Flags::PEER_FIN))
        };
        if body_open && !has_room {
            // The handler holds the body back, not the client: its rate starts over.
            if let Some(b) = st.body.as_mut() {
                b.restart_rate(now);
            }
        }
        if !want_read {
            return Ok(fed);
        }
        match self.io.read(rbuf) {
            Ok(0) if body_open => return Ok(Fed::Gone),
            Ok(0) => {
                // Half-closed after its request, as scripted clients do: the
                // response still goes out, then the close.
                // Requests already buffered behind this one are still answered;
                // the read of 0 after them closes the connection.
                self.flags |= Flags::EOF;
                h.client_fin(ctx);
                fed = Fed::Some;
            }
            Ok(n) => {
                self.since = now;
                ctx.activity = true;
                self.flags.set(Flags::DRAINED, n < rbuf.len());
                let st = self.st.get_or_insert_with(Default::default);
                match h.body_room() {
                    Some(room) if st.body.is_some() => {
                        let t = take_body(&mut st.body, &rbuf[..n], room, &ctx.site)?;
                        st.input.extend_from_slice(&rbuf[t.used..n]);
                        if let Some(trailers) = t.done {
                            h.body_done(ctx, trailers);
                        }
                    }
                    _ => st.input.extend_from_slice(&rbuf[..n]),
                }
                fed = Fed::Some;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.flags |= Flags::DRAINED,
            Err(_) => return Ok(Fed::Gone),
        }
        Ok(fed)
    }

    /// A tunnel (handler.rs `tunnel`): what the client sent after its request,
    /// then the socket, as it comes, while the handler has room; the client's FIN
    /// to `client_fin`, after which the connection is not read again.
    fn feed_tunnel(&mut self, ctx: &mut Ctx, h: &mut dyn Handler, rbuf: &mut [u8]) -> Fed {
        let mut fed = Fed::Nothing;
        let st = self.st.get_or_insert_with(Default::default);
        if !st.input.is_empty() {
            if let Some(room) = h.body_room() {
                room.extend_from_slice(&st.input);
                st.input = Vec::new();
                st.scanned = 0;
                fed = Fed::Some;
            }
        }
        let drained = self.flags.contains(Flags::DRAINED) && !self.flags.contains(Flags::PEER_FIN);
        if self.flags.contains(Flags::EOF) || drained || h.body_room().is_none() {
            return fed;
        }
        match self.io.read(rbuf) {
            Ok(0) => {
                self.flags |= Flags::EOF;
                h.client_fin(ctx);
                Fed::Some
            }
            Ok(n) => {
                self.since = ctx.clock.mono;
                ctx.activity = true;
                self.flags.set(Flags::DRAINED, n < rbuf.len());
                if let Some(room) = h.body_room() {
                    room.extend_from_slice(&rbuf[..n]);
                }
                Fed::Some
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.flags |= Flags::DRAINED;
                fed
            }
            Err(_) => Fed::Gone,
        }
    }

    /// The handler is done: its unsent output continues as an ordinary response
    /// write, and the connection goes on with keep-alive (or closes).
    fn handler_done(&mut self, out: Out, keep_alive: bool) {
        let st = self.state();
        let mut keep_alive = keep_alive;
        if st.body.take().is_some() {
            // The handler did not take the whole body: the rest is not read.
            keep_alive = false;
            self.flags |= Flags::DIRTY;
        }
        if !keep_alive {
            self.flags |= Flags::CLOSE_AFTER;
            if let Some(st) = self.st.as_mut() {
                st.input.clear();
            }
        }
        if out.is_empty() {
            self.phase = Phase::Head;
        } else {
            self.state().out = Some(out);
            self.phase = Phase::Write;
        }
    }
}

/// What the body service did for a handler this round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fed {
    Nothing,
    Some,
    /// The client is gone (or went before its body was in).
    Gone,
}

/// Body bytes from `d` into `room`; once the body ended (the trailers kept are
/// in `done`), `body` ends too.
fn take_body(
    body: &mut Option<Body>,
    d: &[u8],
    room: &mut Vec<u8>,
    site: &crate::site::Site,
) -> Result<Taken, u16> {
    let Some(b) = body.as_mut() else {
        return Ok(Taken {
            used: 0,
            done: None,
        });
    };
    let t = b.take(
        d,
        |x| room.extend_from_slice(x),
        site.field_limit,
        &site.trailer_whitelist,
    )?;
    if t.done.is_some() {
        *body = None;
    }
    Ok(t)
}

impl Conn {
    /// Run `ir` as a request of this connection (a CGI's local redirect, an error
    /// handler that is a CGI script): the saved head again with another target (and
    /// method), without its body.
    pub(crate) fn internal_request(&mut self, ctx: &mut Ctx, ir: crate::internal::Internal) {
        let sv = &ir.saved;
        let buf = h1::internal_head(&sv.buf, &sv.head, &sv.fields, &ir.target, ir.method_get);
        let mut fields = Vec::new();
        match request::parse(&buf, &mut fields) {
            Ok(head) => {
                ctx.internal = Some(ir.info);
                // Not a request of the client's: keep-alive counting is unchanged.
                self.requests = self.requests.saturating_sub(1);
                self.request(ctx, &buf, &head, &fields, true);
                ctx.internal = None;
            }
            Err(_) => {
                ctx.cgi.log.push(format!(
                    "mod_cgi: cannot run {} as an internal request",
                    String::from_utf8_lossy(&ir.target)
                ));
                ctx.error_response(sv.head.version, 500);
                self.flags |= Flags::CLOSE_AFTER;
            }
        }
    }

    /// A request a module parked (park.rs): the same head again, from the top, as
    /// the same request of the connection; its body, if any, follows in `input`.
    fn rerun(&mut self, ctx: &mut Ctx, buf: &[u8]) {
        let mut fields = std::mem::take(&mut ctx.fields);
        if let Ok(head) = request::parse(buf, &mut fields) {
            self.requests = self.requests.saturating_sub(1);
            let rest_empty = self.st.as_ref().is_none_or(|s| s.input.is_empty());
            self.request(ctx, buf, &head, &fields, rest_empty);
        } else {
            // It parsed when it came; not reachable, but never a request unanswered.
            ctx.error_response(Version::Http11, 500);
            self.flags |= Flags::CLOSE_AFTER;
        }
        ctx.fields = fields;
        if self.phase != Phase::Handler {
            let _ = self.flush(ctx);
        }
    }

    /// A CGI's local redirect: run it and queue what it answered.
    fn redispatch(&mut self, ctx: &mut Ctx, ir: crate::internal::Internal) {
        self.internal_request(ctx, ir);
        if self.phase != Phase::Handler {
            let _ = self.flush(ctx);
        }
    }
}

/// A response cut short by us, not by the peer: a file that shrank under
/// sendfile (its promised length cannot be kept). A peer that went away is
/// not an error worth a line, as in lighttpd.
fn log_write_error(ctx: &mut Ctx, e: &io::Error, peer: IpAddr) {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        ctx.log.push(format!(
            "a file shrank while being sent to {peer}: connection closed"
        ));
    }
}

#[cfg(test)]
mod tests {
    /// Idle keep-alive connections are the slab entry and nothing else: keep it
    /// small (scenario f of the benchmark: at most 1 KiB per idle connection).
    #[test]
    fn idle_connection_is_small() {
        let n = std::mem::size_of::<super::Conn>();
        assert!(n <= 80, "Conn grew to {n} bytes");
    }
}
