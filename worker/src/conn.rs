//! One client connection: lighttpd's state machine (read head → read body →
//! handle → write → keep-alive or close), pipelining in order, lingering close.
//!
//! An idle connection holds no heap: bytes are read into the worker's shared
//! buffer, and a connection gets its own [`State`] only while a request is partial,
//! a body is being read, or a response waits for the socket.

use crate::body::{Body, Taken};
use crate::ctx::Ctx;
pub use crate::handler::Want;
use crate::handler::{Client, Handler, Step};
use crate::request::{self, BodyKind, Head, ParseError, Version};
use crate::response::Out;
use crate::static_file::{self, Env, Req};
use crate::transport::Transport;
use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use wick_conf::cond::Facts;

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
}

bitflags::bitflags! {
    /// What a connection knows beyond its phase (one byte: an idle connection
    /// stays small).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Flags: u8 {
        /// Answer what was asked, then close.
        const CLOSE_AFTER = 1;
        /// The last read emptied the socket's receive queue.
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

    /// Interest derived from the state (never toggled by hand).
    pub fn interest(&self) -> Want {
        match self.phase {
            Phase::Write => Want::WRITE,
            Phase::Handler => self.handler().map_or(Want::READ, |h| h.want()),
            _ => Want::READ,
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
            {
                self.st = None;
            }
        }
    }

    /// Idle between requests (may be closed on drain or keep-alive timeout).
    pub fn is_idle(&self) -> bool {
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
        let _ = ctx.out.flush(&self.io, true);
        ctx.out.clear();
    }

    /// The timeout (seconds) that applies now.
    pub fn timeout(&self, ctx: &Ctx) -> u64 {
        match self.phase {
            Phase::Head if self.is_idle() && self.requests > 0 => ctx.site.keep_alive_idle,
            Phase::Head | Phase::Body => ctx.site.read_idle,
            Phase::Write => ctx.site.write_idle,
            Phase::Linger => crate::site::LINGER_SECS,
            Phase::Handler => self
                .handler()
                .map_or(ctx.site.write_idle, |h| h.timeout(ctx.site.write_idle)),
        }
    }

    /// Make progress after a readiness event (or right after accept).
    /// `rbuf`: the worker's shared read buffer (bytes that stay go to `State`).
    pub fn drive(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Next {
        // At most 64 rounds, then the other connections get their turn.
        for _ in 0..64 {
            let stop = match self.phase {
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
        let r = out.flush(&self.io, closing);
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
        let n = match self.io.read(rbuf) {
            Ok(0) => return Some(Next::Close),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(Next::Keep),
            Err(_) => return Some(Next::Close),
        };
        ctx.activity = true;
        self.since = ctx.clock.mono;
        self.flags.set(Flags::DRAINED, n < rbuf.len());
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
        // buffer); after a FIN the next read says so.
        if self.flags.contains(Flags::DRAINED)
            && !self.flags.contains(Flags::PEER_FIN)
            && !self.has_unprocessed()
            && self.phase != Phase::Write
            && self.phase != Phase::Handler
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
        let r = ctx.out.flush(&self.io, closing);
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
        if !self.flags.contains(Flags::DIRTY) && self.flags.contains(Flags::DRAINED)
            || !self.io.shutdown_write()
        {
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
            if self.flags.contains(Flags::CLOSE_AFTER) && self.phase == Phase::Head {
                return off;
            }
            match self.phase {
                Phase::Body => {
                    match self.consume_body(ctx, &data[off..]) {
                        Ok((used, done)) => {
                            off += used;
                            if !done {
                                return off;
                            }
                        }
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
                            return data.len();
                        }
                    }
                }
                Phase::Head => {
                    if ctx.out.buf.len() > OUT_HIGH {
                        return off;
                    }
                    let d = &data[off..];
                    let skip = request::leading_crlf(d);
                    if skip > 0 {
                        if skip > 2 || self.flags.contains(Flags::BLANK_SKIPPED) {
                            let e = ParseError {
                                status: 400,
                                version: Version::Http10,
                                reason: "more than one blank line before the request line",
                            };
                            self.parse_error(ctx, e, d);
                            return data.len();
                        }
                        self.flags |= Flags::BLANK_SKIPPED;
                        off += skip;
                        continue;
                    }
                    let mut scanned = if from_input {
                        self.st.as_ref().map_or(0, |s| s.scanned)
                    } else {
                        0
                    };
                    scanned = scanned.saturating_sub(off).min(d.len());
                    let mut new_scanned = 0;
                    match request::find_end(d, scanned, ctx.site.field_limit, &mut new_scanned) {
                        Ok(None) => {
                            if scanned == 0 {
                                // The first look at this head: its time starts.
                                self.state().head_since = ctx.clock.mono;
                            }
                            if from_input || new_scanned > 0 {
                                let st = self.state();
                                st.scanned = new_scanned;
                            }
                            return off;
                        }
                        Err(e) => {
                            self.parse_error(ctx, e, d);
                            return data.len();
                        }
                        Ok(Some(n)) => {
                            self.flags.remove(Flags::BLANK_SKIPPED);
                            if let Some(st) = self.st.as_mut() {
                                st.scanned = 0;
                            }
                            let head_bytes = &d[..n];
                            let mut fields = std::mem::take(&mut ctx.fields);
                            let parsed = request::parse(head_bytes, &mut fields);
                            let r = match parsed {
                                Ok(head) => {
                                    off += n;
                                    let rest_empty = off == data.len();
                                    self.request(ctx, head_bytes, &head, &fields, rest_empty);
                                    None
                                }
                                Err(e) => Some(e),
                            };
                            ctx.fields = fields;
                            if let Some(e) = r {
                                self.parse_error(ctx, e, head_bytes);
                                return data.len();
                            }
                        }
                    }
                }
                Phase::Write | Phase::Linger | Phase::Handler => return off,
            }
        }
        off
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
                .push(format!("request-header:\n{}", printable(head, 4096)));
        }
        let at = ctx.out.buf.len();
        ctx.error_response(v, status);
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

    /// One parsed request: decide keep-alive, run the handler, set up the body.
    fn request(
        &mut self,
        ctx: &mut Ctx,
        buf: &[u8],
        head: &Head,
        fields: &[request::Field],
        rest_empty: bool,
    ) {
        self.requests += 1;
        let keep_alive = head.keep_alive
            && !ctx.draining
            && ctx.site.keep_alive_enabled()
            && self.requests < ctx.site.keep_alive_requests;

        let (raw_path, query) = crate::path::split_target(head.path.of(buf));
        let mut path = std::mem::take(&mut ctx.path);
        let opts = ctx.site.parseopts;
        let admitted = match crate::parseopts::admit(buf, head, raw_path, query, opts, &mut path) {
            Ok(a) => a,
            Err(why) => {
                ctx.path = path;
                self.refuse(ctx, head.version, 400, why, buf);
                return;
            }
        };
        let query: &[u8] = &admitted.query;

        let Ctx {
            site,
            cond,
            out,
            clock,
            cache,
            pages,
            roots,
            scratch,
            etag,
            resp,
            cgi,
            rq,
            log,
            ..
        } = ctx;
        // The Host as server.http-parseopts normalised it (conditions see this one).
        let raw_host = head.host.map(|h| h.of(buf)).unwrap_or(b"");
        let mut host = admitted.host.as_deref().unwrap_or(raw_host);
        // Modules (mods/): extforward, rewrite, redirect, access, alias, ... decide
        // the facts, the view, the physical path, or answer at once (`early`).
        let mods = &site.mods;
        let base = crate::mods::Base {
            buf,
            head,
            fields,
            peer: self.peer,
            peer_port: self.peer_port,
            listener: self.listener as usize,
            port: mods.port(self.listener as usize),
        };
        let (mut early, mut pre, mut raw_path, mut query) = (None, None, raw_path, query);
        if mods.active {
            rq.start(raw_path, query, &path, host, self.peer);
            let fs = crate::mods::Fs {
                cache: &mut *cache,
                roots: &mut *roots,
                clock,
            };
            let (v, e) = mods.prepare(&site.compiled, cond, &base, rq, fs);
            (early, pre) = (e, Some(v));
            path.clear();
            path.extend_from_slice(&rq.path);
            (host, raw_path, query) = (&rq.host, rq.target_path(), &rq.query);
        }
        let rel: &[u8] = if mods.active { &rq.rel } else { &path };
        let path_s = String::from_utf8_lossy(&path);
        let query_s = String::from_utf8_lossy(query);
        let host_s = String::from_utf8_lossy(host);
        let method_s = std::str::from_utf8(head.method_span.of(buf)).unwrap_or("");
        let lookup = |name: &str| -> Option<&str> {
            request::header(buf, fields, name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
        };
        let facts = Facts {
            host: &host_s,
            url_path: &path_s,
            query: &query_s,
            remote_ip: if mods.active { rq.remote_ip } else { self.peer },
            scheme: if mods.active { rq.scheme } else { "http" },
            method: method_s,
            listener: self.listener as usize,
            header: &lookup,
        };
        let view = match pre {
            Some(v) => mods.handler_view(&v, rq),
            None => mods.plain_view(site.view(&facts, cond)),
        };

        // Body: refuse an oversized one before reading it (413), else read it after
        // the handler ran and send the response once it is in.
        let limit = view.max_request_size.saturating_mul(1024);
        if let BodyKind::Length(n) = head.body {
            if limit > 0 && n > limit {
                ctx.path = path;
                let why = "Content-Length larger than server.max-request-size";
                self.refuse(ctx, head.version, 413, why, buf);
                return;
            }
        }
        if !keep_alive {
            self.flags |= Flags::CLOSE_AFTER;
        }
        let has_body = head.body != BodyKind::None;
        if has_body && rest_empty && head.expect_continue && head.version == Version::Http11 {
            out.put(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        // mod_cgi (cgi/): a script answers; its response comes later, from its pipes.
        let internal = if cgi.enabled {
            cgi.internal.take()
        } else {
            None
        };
        let mut cgi_handler = [false; 2];
        let mut hview = view;
        if cgi.enabled && early.is_none() {
            if let Some(sel) = crate::cgi::select(roots, cache, clock.mono, &view, rel) {
                let (listener, fd) = (self.listener, self.io.fd());
                let (peer, peer_port) = match mods.active {
                    true if rq.remote_ip != self.peer => (rq.remote_ip, 0),
                    _ => (self.peer, self.peer_port),
                };
                let set_headers: &[(String, String, bool)] =
                    if mods.active { &rq.req_headers } else { &[] };
                let blocks = cond.matched().map(|b| b as u32).collect();
                // mod_accesslog: the line is written when the script's response ends.
                let log = match mods.accesslog.as_deref() {
                    Some(a) if mods.active && mods.logs() && internal.is_none() => {
                        crate::mods::accesslog::capture(
                            a,
                            &crate::mods::DoneCx {
                                view: &view,
                                base: &base,
                                rq,
                                status: 0,
                                bytes_out: 0,
                                clock,
                                compiled: &site.compiled,
                                cond,
                                resp: &[],
                                requests: self.requests,
                            },
                        )
                    }
                    _ => None,
                };
                let parts = crate::cgi::Parts {
                    cgi,
                    out,
                    clock,
                    pages,
                    cfg: &site.cfg,
                };
                let begin = crate::cgi::Begin {
                    buf,
                    head,
                    fields,
                    path: sel.path.as_deref().unwrap_or(&path),
                    script_len: sel.script_len,
                    query,
                    keep_alive,
                    peer,
                    peer_port,
                    set_headers,
                    listener,
                    fd,
                    blocks,
                    internal,
                    log,
                };
                let job = crate::cgi::begin(parts, &view, begin);
                self.install(job);
                if has_body {
                    let st = self.state();
                    let names = request::header(buf, fields, b"trailer");
                    st.body = Some(Body::new(head.body, limit, clock.mono, names));
                }
                ctx.path = path;
                return;
            }
            // Error handlers that are CGI scripts run as internal requests (below):
            // the static handler must not serve their source. Only once per request.
            if internal.as_ref().is_none_or(|i| i.error.is_none()) {
                for (i, h) in [view.error_handler_404, view.error_handler]
                    .iter()
                    .enumerate()
                {
                    cgi_handler[i] = !h.is_empty()
                        && crate::cgi::probe(
                            site,
                            &mut cgi.cond2,
                            &facts,
                            h,
                            roots,
                            cache,
                            clock.mono,
                        );
                }
                if cgi_handler[0] {
                    hview.error_handler_404 = &NO_HANDLER;
                }
                if cgi_handler[1] {
                    hview.error_handler = &NO_HANDLER;
                }
            }
        }
        let mark = out.mark();
        let req = Req {
            buf,
            head,
            path: rel,
            raw_path,
            query,
            keep_alive,
        };
        let hooks = match mods.active {
            true => mods.hooks(&site.compiled, cond, &view, &base, rq, clock),
            false => None,
        };
        let mut env = Env {
            out,
            head: resp,
            hooks: hooks.as_ref(),
            cache,
            clock,
            pages,
            roots,
            scratch,
            etag,
            log,
        };
        let status = match early {
            Some(s) => mods.answer(s, &req, &hview, &mut env, rq),
            None if mods.active => mods.handle(&req, &hview, &mut env, &base, rq),
            None => static_file::handle(&req, &hview, &mut env),
        };
        if mods.active {
            let job = mods.finish(
                out,
                mark,
                &site.compiled,
                cond,
                &view,
                &base,
                rq,
                clock,
                status,
                self.requests,
            );
            if let Some(j) = job {
                self.install(j);
            }
        }
        let handler = if status == 404 && !view.error_handler_404.is_empty() {
            Some((0, view.error_handler_404, false))
        } else if status >= 400 && !view.error_handler.is_empty() {
            Some((1, view.error_handler, true))
        } else {
            None
        };
        if let Some((_, target, keep_status)) = handler.filter(|h| cgi_handler[h.0]) {
            drop(out.split_off(mark));
            if has_body {
                self.flags |= Flags::CLOSE_AFTER | Flags::DIRTY;
            }
            let ir = error_handler_request(buf, head, fields, target, (status, keep_status));
            ctx.path = path;
            self.internal_request(ctx, ir);
            return;
        }
        if has_body {
            let names = request::header(buf, fields, b"trailer");
            let body = Body::new(head.body, limit, clock.mono, names);
            self.expect_body(body, out, mark);
        }
        ctx.path = path;
    }

    /// The request has a body: a handler takes it; else it is read (and dropped)
    /// while the response, from `mark` in `out`, waits.
    fn expect_body(&mut self, body: Body, out: &mut Out, mark: (usize, usize)) {
        if self.phase == Phase::Handler {
            // A deferred response: the body goes to its handler (and is dropped).
            self.state().body = Some(body);
        } else {
            let held = out.split_off(mark);
            let st = self.state();
            st.held = Some(held);
            st.body = Some(body);
            self.phase = Phase::Body;
        }
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
        let h = self.st.as_mut()?.handler.as_mut()?;
        let job = h.as_any().downcast_mut::<crate::cgi::Job>()?;
        (job.id() == id).then_some(job)
    }

    /// Once a second: the handler's own timers. True: drive the connection.
    pub fn tick_handler(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        let h = self.st.as_mut().and_then(|s| s.handler.as_mut());
        h.is_some_and(|h| h.tick(ctx, now))
    }

    /// The connection is being closed: its handler lets go of what it holds.
    pub fn abandon(&mut self, ctx: &mut Ctx) {
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
            let mut client = Client::new(&self.io, &mut self.since);
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
            st.input.len() < ctx.site.field_limit && !self.flags.contains(Flags::EOF)
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
                self.flags |= Flags::EOF | Flags::CLOSE_AFTER;
                h.client_fin(ctx);
                fed = Fed::Some;
            }
            Ok(n) => {
                self.since = now;
                ctx.activity = true;
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
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Ok(Fed::Gone),
        }
        Ok(fed)
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
    pub(crate) fn internal_request(&mut self, ctx: &mut Ctx, ir: crate::cgi::Internal) {
        let sv = &ir.saved;
        let mut buf = Vec::with_capacity(sv.buf.len() + ir.target.len() + 16);
        if ir.method_get {
            buf.extend_from_slice(b"GET");
        } else {
            buf.extend_from_slice(sv.head.method_span.of(&sv.buf));
        }
        buf.push(b' ');
        buf.extend_from_slice(&ir.target);
        buf.extend_from_slice(match sv.head.version {
            Version::Http10 => b" HTTP/1.0\r\n",
            Version::Http11 => b" HTTP/1.1\r\n",
        });
        for f in &sv.fields {
            use request::Known;
            if matches!(
                f.known,
                Known::ContentLength | Known::TransferEncoding | Known::Expect
            ) {
                continue;
            }
            buf.extend_from_slice(f.name.of(&sv.buf));
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(f.value.of(&sv.buf));
            buf.extend_from_slice(b"\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        let mut fields = Vec::new();
        match request::parse(&buf, &mut fields) {
            Ok(head) => {
                ctx.cgi.internal = Some(ir.info);
                // Not a request of the client's: keep-alive counting is unchanged.
                self.requests = self.requests.saturating_sub(1);
                self.request(ctx, &buf, &head, &fields, true);
                ctx.cgi.internal = None;
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

    /// A CGI's local redirect: run it and queue what it answered.
    fn redispatch(&mut self, ctx: &mut Ctx, ir: crate::cgi::Internal) {
        self.internal_request(ctx, ir);
        if self.phase != Phase::Handler {
            let _ = self.flush(ctx);
        }
    }
}

/// server.error-handler(-404) that is a CGI script: the request again, for its
/// target, as an internal request that keeps the original status (`error`).
fn error_handler_request(
    buf: &[u8],
    head: &Head,
    fields: &[request::Field],
    target: &str,
    error: (u16, bool),
) -> crate::cgi::Internal {
    crate::cgi::Internal {
        saved: crate::cgi::Saved {
            buf: buf.to_vec(),
            head: head.clone(),
            fields: fields.to_vec(),
        },
        target: target.as_bytes().to_vec(),
        method_get: false,
        info: crate::cgi::InternalInfo {
            orig_target: String::from_utf8_lossy(head.target.of(buf)).into_owned(),
            new_target: target.to_string(),
            loops: 0,
            error: Some(error),
        },
    }
}

/// An error handler that runs as a CGI script is taken out of the static handler's
/// view.
static NO_HANDLER: String = String::new();

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

/// `b` (at most `max` bytes) for a log line: CRLF as a line break, other
/// control and non-ASCII bytes as \xNN, so a request cannot forge log lines.
fn printable(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    let mut s = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                s.push('\n');
                i += 1;
            }
            c @ (b' '..=b'~' | b'\t') => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
        i += 1;
    }
    s.truncate(s.trim_end().len());
    s
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
