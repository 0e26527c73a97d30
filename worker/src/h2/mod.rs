//! HTTP/2 on a client connection (lighttpd's h2.c; RFC 9113). The protocol is
//! engine.rs (no I/O); this file moves bytes between it and the socket, and
//! serves each stream's request as an HTTP/1.1 exchange over an in-memory pipe
//! (pipe.rs): a `Conn` of its own, with the whole request path (modules, static
//! files, CGI, FastCGI, error handlers, the access log with "HTTP/2.0") and the
//! handler contract unchanged. The stream's response comes back as HTTP/1.1 bytes
//! and file ranges: its head becomes HEADERS, the rest DATA frames as the
//! client's windows allow, file ranges sent from the file (sendfile, or read
//! into TLS) without a copy through us.
//!
//! Negotiated by ALPN "h2" on TLS, or by the preface on cleartext (h2c prior
//! knowledge); server.h2proto and server.h2c turn them off.

pub mod engine;
pub mod frame;
pub mod pipe;

use crate::conn::{Conn, Flags, Next, Want};
use crate::ctx::Ctx;
use crate::transport::Transport;
use engine::{Engine, Event, RequestHead};
use pipe::Pipe;
use std::io;

/// Frames queued for the socket beyond which the client is not read (a client
/// that does not read what it asked for gets no more work done).
const WIRE_HIGH: u64 = 256 << 10;
/// Bytes written for one connection per turn.
const WRITE_SLICE: u64 = 256 << 10;

/// One stream's request being served.
struct Exchange {
    id: u32,
    /// The HTTP/1.1 side, its pipe in `io.pipe`; kept once it finished, until
    /// its output is framed (then kept for the next stream: `H2::spare`).
    conn: Box<Conn>,
    /// The exchange finished (its `Conn` returned Close and let go).
    ended: bool,
    /// The response head went out as HEADERS.
    head_sent: bool,
    /// The response has no body whatever its fields say (HEAD, 204, 304).
    bodiless: bool,
    /// The request was HEAD.
    head_request: bool,
    /// Content-Length of the response, and body bytes framed so far.
    length: Option<u64>,
    sent: u64,
    /// The request body goes to the exchange chunked (no content-length).
    chunked: bool,
    /// Body bytes given to the exchange, not yet granted back to the client.
    owed: usize,
    /// Timed out: ends at the next turn.
    expired: bool,
}

impl Exchange {
    /// Stream `id`'s request, in `vc`'s pipe, served by `vc` (a `Conn` of its
    /// own: `stream_conn`).
    fn new(id: u32, vc: Box<Conn>, head_request: bool, chunked: bool) -> Exchange {
        Exchange {
            id,
            conn: vc,
            ended: false,
            head_sent: false,
            bodiless: false,
            head_request,
            length: None,
            sent: 0,
            chunked,
            owed: 0,
            expired: false,
        }
    }

    fn pipe(&mut self) -> Option<&mut Pipe> {
        self.conn.io.pipe.as_deref_mut()
    }

    /// The exchange still runs (its `Conn` has not returned Close).
    fn running(&mut self) -> Option<&mut Conn> {
        (!self.ended).then_some(&mut *self.conn)
    }
}

/// The `Conn` that serves a stream of connection `c` (a finished stream's,
/// emptied, when there is one), its pipe empty.
#[allow(clippy::vec_box)] // the boxes pass between exchanges and `H2::spare`
fn stream_conn(spare: &mut Vec<Box<Conn>>, c: &Conn, now: u64) -> Box<Conn> {
    let Some(mut vc) = spare.pop() else {
        let p = Box::<Pipe>::default();
        return Box::new(Conn::new_stream(
            Transport::stream(c.io.fd(), p),
            (c.peer, c.peer_port),
            c.listener,
            now,
        ));
    };
    let p = vc.io.pipe.take().unwrap_or_default();
    *vc = Conn::new_stream(
        Transport::stream(c.io.fd(), p),
        (c.peer, c.peer_port),
        c.listener,
        now,
    );
    vc
}

pub struct H2 {
    engine: Engine,
    /// A frame cut by the end of a read.
    input: Vec<u8>,
    exchanges: Vec<Exchange>,
    /// A connection error was queued (GOAWAY): close once it is written.
    fatal: bool,
    /// The client sent GOAWAY.
    peer_gone: bool,
    /// Where the next round of DATA starts (streams take turns).
    turn: usize,
    /// `Conn`s of finished streams with their pipes emptied, for the next
    /// streams (no allocation per stream; the buffers keep their capacity
    /// until the connection is idle at a tick: `settle`).
    #[allow(clippy::vec_box)] // boxed as the exchanges hold them: moved, not copied
    spare: Vec<Box<Conn>>,
    /// Monotonic second of the last `settle` at a pause in `drive`.
    settled_at: u64,
    /// A response head's fields as spans into its pipe (scan_head), reused.
    head_fields: Vec<[u32; 4]>,
}

impl H2 {
    /// A connection that begins with `first` (the preface and what followed).
    pub fn new(first: &[u8]) -> Box<H2> {
        let mut h = Box::new(H2 {
            engine: Engine::new(),
            input: Vec::new(),
            exchanges: Vec::new(),
            fatal: false,
            peer_gone: false,
            turn: 0,
            spare: Vec::new(),
            settled_at: u64::MAX,
            head_fields: Vec::new(),
        });
        h.input.extend_from_slice(first);
        h
    }

    /// A connection upgraded from HTTP/1.1 (`Upgrade: h2c`): 101 Switching
    /// Protocols goes out first, then our SETTINGS; the request of `buf` is
    /// stream 1 (half closed: it had no body); `rest` came after it. None: the
    /// client's HTTP2-Settings are not acceptable (served as HTTP/1.1).
    pub fn upgraded(
        c: &Conn,
        buf: &[u8],
        fields: &[crate::request::Field],
        settings: &[u8],
        rest: &[u8],
        now: u64,
    ) -> Option<Box<H2>> {
        let mut h = H2::new(rest);
        h.engine.upgraded(settings).ok()?;
        let ours = h.engine.wire.take_rest();
        h.engine.wire.put(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        );
        h.engine.wire.append(&ours);
        // The request again, without what asked for the upgrade.
        let mut vc = stream_conn(&mut h.spare, c, now);
        let p = vc.io.pipe.as_deref_mut()?;
        let line_end = memchr::memmem::find(buf, b"\r\n").map_or(0, |i| i + 2);
        p.input.extend_from_slice(&buf[..line_end]);
        for f in fields {
            let name = f.name.of(buf);
            if name.eq_ignore_ascii_case(b"upgrade")
                || name.eq_ignore_ascii_case(b"http2-settings")
                || name.eq_ignore_ascii_case(b"connection")
            {
                continue;
            }
            p.input.extend_from_slice(name);
            p.input.extend_from_slice(b": ");
            p.input.extend_from_slice(f.value.of(buf));
            p.input.extend_from_slice(b"\r\n");
        }
        p.input.extend_from_slice(b"\r\n");
        p.input_end = true;
        let head_request = buf.starts_with(b"HEAD ");
        h.exchanges.push(Exchange::new(1, vc, head_request, false));
        Some(h)
    }

    /// Nothing under way: no stream, nothing to write.
    pub fn is_idle(&self) -> bool {
        self.exchanges.is_empty() && self.engine.wire.is_empty() && self.input.is_empty()
    }

    pub fn interest(&self, io: &Transport) -> Want {
        let mut w = Want::empty();
        if !self.fatal {
            w |= Want::READ;
        }
        if !self.engine.wire.is_empty() || io.wants_write() {
            w |= Want::WRITE;
        }
        w
    }

    /// The timeout that applies to the connection itself (its streams have
    /// their own: `tick`).
    pub fn timeout(&self, ctx: &Ctx) -> u64 {
        if !self.engine.wire.is_empty() {
            ctx.site.write_idle
        } else if self.exchanges.is_empty() {
            ctx.site.keep_alive_idle
        } else {
            u64::MAX / 2
        }
    }

    pub fn wake_at(&self) -> Option<std::time::Instant> {
        self.exchanges
            .iter()
            .filter(|x| !x.ended)
            .filter_map(|x| x.conn.wake_at())
            .min()
    }

    /// Once a second: each stream's own time limits and handler timers; a
    /// drain asks for GOAWAY. True: drive the connection.
    pub fn tick(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        let mut due = ctx.draining && !self.engine.going_away();
        for x in &mut self.exchanges {
            let Some(c) = x.running() else { continue };
            if c.expired(ctx, now) {
                c.timed_out(ctx);
                x.expired = true;
                due = true;
            } else if c.tick_handler(ctx, now) {
                due = true;
            }
        }
        self.settle();
        due
    }

    /// The connection closes: every stream's handler lets go.
    pub fn abandon(&mut self, ctx: &mut Ctx) {
        for x in &mut self.exchanges {
            if let Some(c) = x.running() {
                c.abandon(ctx);
            }
        }
        self.exchanges.clear();
    }

    /// The CGI job `id` of one of the streams (the spawner's answers).
    pub fn cgi_job(&mut self, id: u64) -> Option<&mut crate::cgi::Job> {
        self.exchanges
            .iter_mut()
            .filter_map(Exchange::running)
            .find_map(|c| c.cgi_job(id))
    }

    /// The connection timed out with nothing under way: say so before closing.
    pub fn timed_out(&mut self, io: &mut Transport) {
        self.engine.goaway();
        let _ = self.engine.wire.flush(io, true);
    }

    /// Make progress after a readiness event: write, read, serve, frame.
    pub fn drive(&mut self, c: &mut Conn, ctx: &mut Ctx, rbuf: &mut [u8]) -> Next {
        if ctx.draining {
            self.engine.goaway();
        }
        for _ in 0..16 {
            let mut moved = false;
            match self.write(c, ctx) {
                Ok(m) => moved |= m,
                Err(()) => return Next::Close,
            }
            if self.fatal {
                if self.engine.wire.is_empty() {
                    c.io.close_notify();
                    return Next::Close;
                }
                return Next::Keep;
            }
            if !self.input.is_empty() {
                moved |= self.feed(c, ctx, rbuf);
            }
            // Not while the socket is known empty: its next bytes come with a
            // readable event, which clears DRAINED (a read per turn saved).
            let drained = c.flags.contains(Flags::DRAINED) && !c.flags.contains(Flags::PEER_FIN);
            if !drained && self.engine.wire.remaining() < WIRE_HIGH && !self.fatal {
                match c.io.read(rbuf) {
                    Ok(0) => return Next::Close,
                    Ok(n) => {
                        // Short: the socket is empty (TLS: unless a close came
                        // with the data, which the next read returns).
                        c.flags
                            .set(Flags::DRAINED, n < rbuf.len() && !c.io.peer_closed);
                        c.since = ctx.clock.mono;
                        ctx.activity = true;
                        // Copied out: the streams served while it is read need
                        // the shared buffer.
                        self.input.extend_from_slice(&rbuf[..n]);
                        self.feed(c, ctx, rbuf);
                        moved = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.flags |= Flags::DRAINED,
                    Err(e) => {
                        if c.io.tls.is_some() {
                            crate::tls::log_failure(ctx, &e, c.peer);
                        }
                        return Next::Close;
                    }
                }
            }
            moved |= self.serve(c, ctx, rbuf);
            moved |= self.frame_output();
            if (self.peer_gone || self.engine.going_away())
                && self.exchanges.is_empty()
                && self.engine.wire.is_empty()
            {
                c.io.close_notify();
                return Next::Close;
            }
            if !moved {
                // The first pause in a second gives the buffers back (an idle
                // connection holds little, and what it frees the next one
                // reuses); a connection that pauses again within the second is
                // busy and keeps them until a tick finds it idle.
                if self.settled_at != ctx.clock.mono && self.settle() {
                    self.settled_at = ctx.clock.mono;
                }
                return Next::Keep;
            }
        }
        Next::Again
    }

    /// Idle: give back what only a busy connection needs (at a tick, or at the
    /// first pause in a second: not at every pause, as a busy connection would
    /// allocate it all again each turn). True: it was idle.
    fn settle(&mut self) -> bool {
        if !self.exchanges.is_empty() || !self.input.is_empty() {
            return false;
        }
        self.input = Vec::new();
        self.exchanges = Vec::new();
        self.spare = Vec::new();
        self.engine.shrink();
        true
    }

    /// A finished stream's `Conn` and pipe, kept for the next stream.
    fn recycle(&mut self, mut x: Exchange) {
        if !x.ended || self.spare.len() >= engine::MAX_CONCURRENT {
            return;
        }
        if let Some(p) = x.conn.io.pipe.as_deref_mut() {
            p.input.clear();
            p.read = 0;
            p.input_end = false;
            p.output.clear();
        }
        self.spare.push(x.conn);
    }

    /// Write queued frames. Ok(true): some left.
    fn write(&mut self, c: &mut Conn, ctx: &mut Ctx) -> Result<bool, ()> {
        let wire = &mut self.engine.wire;
        if wire.is_empty() {
            return Ok(false);
        }
        let before = wire.remaining();
        wire.budget = WRITE_SLICE;
        let r = wire.flush(&mut c.io, false);
        wire.budget = 0;
        let moved = wire.remaining() != before;
        if moved {
            c.since = ctx.clock.mono;
        }
        match r {
            Ok(true) => {
                wire.clear();
                Ok(moved)
            }
            Ok(false) => {
                if wire.pos > 64 << 10 {
                    let rest = wire.take_rest();
                    *wire = rest;
                }
                Ok(moved && wire.yielded)
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    ctx.log.push(format!(
                        "a file shrank while being sent to {}: connection closed",
                        c.peer
                    ));
                }
                Err(())
            }
        }
    }

    /// Frames from the client, from `input` (a frame cut short stays there).
    /// True: some were read.
    fn feed(&mut self, c: &mut Conn, ctx: &mut Ctx, rbuf: &mut [u8]) -> bool {
        let now = ctx.clock.mono;
        let mut data = std::mem::take(&mut self.input);
        let mut off = 0;
        while off < data.len() && !self.fatal {
            match self.engine.next(&data[off..], now) {
                Ok((0, _)) => break,
                Ok((n, ev)) => {
                    if let Some(ev) = ev {
                        self.event(c, ctx, ev, &data[off..off + n], rbuf);
                    }
                    off += n;
                }
                Err(f) => {
                    if ctx.site.log_refused {
                        ctx.log
                            .push(format!("h2: {} ({}): connection closed", f.why, c.peer));
                    }
                    self.fatal = true;
                    return true;
                }
            }
        }
        data.drain(..off);
        self.input = data;
        off > 0
    }

    fn find(&mut self, id: u32) -> Option<usize> {
        self.exchanges.iter().position(|x| x.id == id)
    }

    fn event(&mut self, c: &mut Conn, ctx: &mut Ctx, ev: Event, frame: &[u8], rbuf: &mut [u8]) {
        match ev {
            Event::Request { id, end } => {
                self.open(c, id, end, ctx.clock.mono);
                // Served at once: a static answer is done before the next
                // HEADERS, and its stream does not count against the limit.
                let i = self.exchanges.len() - 1;
                self.serve_one(c, ctx, rbuf, i);
                if let Framed::Finished = self.frame_one(i) {
                    let x = self.exchanges.remove(i);
                    self.recycle(x);
                }
            }
            Event::Data { id, at, len, end } => {
                let Some(i) = self.find(id) else { return };
                let x = &mut self.exchanges[i];
                let chunked = x.chunked;
                x.owed += len;
                let Some(p) = x.pipe() else { return };
                let d = &frame[at..at + len];
                if chunked && !d.is_empty() {
                    p.input
                        .extend_from_slice(format!("{:x}\r\n", d.len()).as_bytes());
                    p.input.extend_from_slice(d);
                    p.input.extend_from_slice(b"\r\n");
                } else {
                    p.input.extend_from_slice(d);
                }
                if end {
                    if chunked {
                        p.input.extend_from_slice(b"0\r\n\r\n");
                    }
                    p.input_end = true;
                }
                if let Some(c) = self.exchanges[i].running() {
                    c.input_arrived();
                }
            }
            Event::Trailers { id } => {
                let Some(i) = self.find(id) else { return };
                let chunked = self.exchanges[i].chunked;
                let req = &self.engine.request;
                let Some(p) = self.exchanges[i].pipe() else {
                    return;
                };
                if chunked {
                    p.input.extend_from_slice(b"0\r\n");
                    for (n, v) in req.fields() {
                        p.input.extend_from_slice(n);
                        p.input.extend_from_slice(b": ");
                        p.input.extend_from_slice(v);
                        p.input.extend_from_slice(b"\r\n");
                    }
                    p.input.extend_from_slice(b"\r\n");
                }
                p.input_end = true;
                if let Some(c) = self.exchanges[i].running() {
                    c.input_arrived();
                }
            }
            Event::TooLarge { id } => {
                let fields: [(&[u8], &[u8]); 1] = [(b"content-length", b"0")];
                self.engine.headers(id, 431, fields.into_iter(), true);
            }
            Event::Reset { id } => {
                if let Some(i) = self.find(id) {
                    let mut x = self.exchanges.remove(i);
                    if let Some(vc) = x.running() {
                        vc.abandon(ctx);
                    }
                }
            }
            Event::GoAway => self.peer_gone = true,
        }
    }

    /// A new stream: its request becomes an HTTP/1.1 head in a fresh pipe.
    fn open(&mut self, c: &mut Conn, id: u32, end: bool, now: u64) {
        let req = &self.engine.request;
        let mut vc = stream_conn(&mut self.spare, c, now);
        let chunked = !end && req.content_length.is_none();
        if let Some(p) = vc.io.pipe.as_deref_mut() {
            request_head(req, end, chunked, &mut p.input);
            p.input_end = end;
        }
        let head_request = req.method == b"HEAD";
        c.requests = c.requests.saturating_add(1);
        self.exchanges
            .push(Exchange::new(id, vc, head_request, chunked));
    }

    /// Run each stream's exchange until it waits. True: something moved.
    fn serve(&mut self, c: &mut Conn, ctx: &mut Ctx, rbuf: &mut [u8]) -> bool {
        let mut moved = false;
        for i in 0..self.exchanges.len() {
            moved |= self.serve_one(c, ctx, rbuf, i);
        }
        moved
    }

    fn serve_one(&mut self, c: &mut Conn, ctx: &mut Ctx, rbuf: &mut [u8], i: usize) -> bool {
        let mut moved = false;
        let x = &mut self.exchanges[i];
        if x.ended {
            return false;
        }
        let vc = &mut *x.conn;
        let next = if x.expired {
            Next::Close
        } else {
            let before = vc.io.pipe.as_ref().map_or(0, |p| p.unread());
            // The exchange sees the connection's TLS session (scheme, the
            // SSL_* variables) while it runs.
            vc.io.tls = c.io.tls.take();
            let next = vc.drive(ctx, rbuf);
            c.io.tls = vc.io.tls.take();
            let after = vc.io.pipe.as_ref().map_or(0, |p| p.unread());
            moved |= after < before;
            next
        };
        // The body the exchange read is granted back to the client.
        let unread = vc.io.pipe.as_ref().map_or(0, |p| p.unread());
        let grant = x.owed.saturating_sub(unread);
        if grant > 0 {
            x.owed -= grant;
            self.engine.taken(x.id, grant);
        }
        match next {
            Next::Close => {
                vc.abandon(ctx);
                x.ended = true;
                moved = true;
            }
            Next::Again => moved = true,
            Next::Keep => {}
        }
        moved
    }

    /// Turn the exchanges' output into frames, streams taking turns, while
    /// windows and the wire allow. True: something was framed.
    fn frame_output(&mut self) -> bool {
        let mut moved = false;
        let n = self.exchanges.len();
        if n == 0 {
            return false;
        }
        let start = self.turn % n;
        let mut finished = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            if self.engine.wire.remaining() >= WIRE_HIGH {
                break;
            }
            match self.frame_one(i) {
                Framed::Nothing => {}
                Framed::Some => moved = true,
                Framed::Finished => {
                    moved = true;
                    finished.push(i);
                }
            }
        }
        self.turn = self.turn.wrapping_add(1);
        finished.sort_unstable();
        for i in finished.into_iter().rev() {
            let x = self.exchanges.remove(i);
            self.recycle(x);
        }
        moved
    }

    fn frame_one(&mut self, i: usize) -> Framed {
        let engine = &mut self.engine;
        let head_fields = &mut self.head_fields;
        let Exchange {
            id,
            conn,
            ended,
            head_sent,
            bodiless,
            head_request,
            length,
            sent,
            ..
        } = &mut self.exchanges[i];
        let id = *id;
        let ended = *ended;
        let Some(p) = conn.io.pipe.as_deref_mut() else {
            return Framed::Nothing;
        };
        let out = &mut p.output;
        let mut moved = false;
        if !*head_sent {
            let start = out.pos.min(out.buf.len());
            let head = &out.buf[start..];
            let Some(resp) = scan_head(head, head_fields) else {
                if ended {
                    // The exchange ended without a response.
                    engine.reset(id, frame::INTERNAL_ERROR);
                    return Framed::Finished;
                }
                return Framed::Nothing;
            };
            let after = start + resp.len;
            if resp.status == 0 {
                engine.reset(id, frame::INTERNAL_ERROR);
                return Framed::Finished;
            }
            if resp.status < 200 {
                // An interim response (100 Continue) is not passed on.
                out.pos = after;
                return Framed::Some;
            }
            *bodiless = *head_request || resp.status == 204 || resp.status == 304;
            *length = resp.length;
            let empty = *bodiless || resp.length == Some(0);
            let nothing_more = ended && after >= out.buf.len() && out.file_idx >= out.files.len();
            let end_stream = empty && nothing_more;
            let span = |a: u32, b: u32| head.get(a as usize..b as usize).unwrap_or_default();
            let fields = head_fields
                .iter()
                .map(|f| (span(f[0], f[1]), span(f[2], f[3])));
            engine.headers(id, resp.status, fields, end_stream);
            out.pos = after;
            *head_sent = true;
            if end_stream {
                return Framed::Finished;
            }
            moved = true;
        }
        if *bodiless {
            // Whatever follows the head of a bodiless response is dropped.
            out.pos = out.buf.len();
            out.file_idx = out.files.len();
        }
        loop {
            if out.is_empty() {
                out.clear();
                if ended {
                    if length.is_some_and(|n| n != *sent) && !*bodiless {
                        // Cut short: the client must not take it as complete.
                        engine.reset(id, frame::INTERNAL_ERROR);
                    } else {
                        engine.data(id, &[], true);
                    }
                    return Framed::Finished;
                }
                break;
            }
            let room = engine.room(id);
            if room == 0 || engine.wire.remaining() >= WIRE_HIGH {
                break;
            }
            let next_file = out.files.get(out.file_idx).map(|(at, _)| *at);
            let mem_end = next_file.unwrap_or(out.buf.len());
            let n;
            let last;
            if out.pos < mem_end {
                n = (mem_end - out.pos).min(room);
                last = ended
                    && out.pos + n == out.buf.len()
                    && next_file.is_none()
                    && length.is_none_or(|l| l == *sent + n as u64);
                engine.data(id, &out.buf[out.pos..out.pos + n], last);
                out.pos += n;
            } else {
                let Some((_, f)) = out.files.get_mut(out.file_idx) else {
                    break;
                };
                n = f.len.min(room as u64) as usize;
                let (fd, off) = (f.fd.clone(), f.off);
                f.off += n as u64;
                f.len -= n as u64;
                if f.len == 0 {
                    out.file_idx += 1;
                }
                last = ended && out.is_empty() && length.is_none_or(|l| l == *sent + n as u64);
                engine.data_file(id, &fd, off, n, last);
            }
            *sent += n as u64;
            moved = true;
            if last {
                return Framed::Finished;
            }
        }
        if moved {
            Framed::Some
        } else {
            Framed::Nothing
        }
    }
}

enum Framed {
    Nothing,
    Some,
    Finished,
}

/// Make the HTTP/1.1 head of a stream's request: request line from the
/// pseudo-header fields, Host from :authority, cookies joined (RFC 9113
/// 8.2.3), and the framing of a body the exchange reads.
fn request_head(req: &RequestHead, end: bool, chunked: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(&req.method);
    out.push(b' ');
    if req.method == b"CONNECT" {
        out.extend_from_slice(&req.authority);
    } else {
        out.extend_from_slice(&req.path);
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let has_authority = !req.authority.is_empty();
    if has_authority {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(&req.authority);
        out.extend_from_slice(b"\r\n");
    }
    let mut cookies = 0;
    for (n, v) in req.fields() {
        if n == b"host" && has_authority {
            continue;
        }
        if n == b"cookie" {
            cookies += 1;
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if cookies > 0 {
        out.extend_from_slice(b"cookie: ");
        let mut first = true;
        for (_, v) in req.fields().filter(|(n, _)| *n == b"cookie") {
            if !first {
                out.extend_from_slice(b"; ");
            }
            first = false;
            out.extend_from_slice(v);
        }
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    } else if end && req.content_length.is_none() && req.method != b"GET" && req.method != b"HEAD" {
        // The body is empty: said so, as HTTP/1.1 wants it for a POST.
        out.extend_from_slice(b"Content-Length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A response head the HTTP/1.1 side wrote (ours: well-formed), read in one
/// pass: status 0 when the status line is not one.
struct ScannedHead {
    status: u16,
    length: Option<u64>,
    /// Bytes up to and with the blank line.
    len: usize,
}

/// Scan the head at the start of `buf`: None until its blank line is there.
/// `fields` gets the spans (name, value) of the fields an HTTP/2 response
/// carries: not the connection-specific ones.
fn scan_head(buf: &[u8], fields: &mut Vec<[u32; 4]>) -> Option<ScannedHead> {
    fields.clear();
    let first = memchr::memchr(b'\n', buf)?;
    let status = match buf.get(9..12) {
        Some(code) if code.iter().all(u8::is_ascii_digit) => {
            code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
        }
        _ => 0,
    };
    let mut length = None;
    let mut pos = first + 1;
    loop {
        let rest = buf.get(pos..)?;
        let end = memchr::memchr(b'\n', rest)?;
        let line = &rest[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Some(ScannedHead {
                status,
                length,
                len: pos + end + 1,
            });
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            let raw = &line[colon + 1..];
            let value = raw.trim_ascii();
            let lead = raw.len() - raw.trim_ascii_start().len();
            let v0 = pos + colon + 1 + lead;
            if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            let hop = matches!(name.len(), 7 | 10 | 16 | 17)
                && (name.eq_ignore_ascii_case(b"connection")
                    || name.eq_ignore_ascii_case(b"keep-alive")
                    || name.eq_ignore_ascii_case(b"upgrade")
                    || name.eq_ignore_ascii_case(b"proxy-connection")
                    || name.eq_ignore_ascii_case(b"transfer-encoding"));
            if !hop {
                fields.push([
                    pos as u32,
                    (pos + colon) as u32,
                    v0 as u32,
                    (v0 + value.len()) as u32,
                ]);
            }
        }
        pos += end + 1;
    }
}

/// The client's settings of an `Upgrade: h2c` request (its HTTP2-Settings,
/// base64url), when the request asks for the upgrade.
pub fn upgrade_settings(buf: &[u8], fields: &[crate::request::Field]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let value = |name: &[u8]| {
        let mut it = fields
            .iter()
            .filter(|f| f.name.of(buf).eq_ignore_ascii_case(name));
        let first = it.next()?;
        it.next().is_none().then(|| first.value.of(buf))
    };
    let upgrade = value(b"upgrade")?;
    let wants_h2c = upgrade
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"h2c"));
    if !wants_h2c {
        return None;
    }
    let settings = value(b"http2-settings")?;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(settings.trim_ascii()).ok()?;
    (bytes.len() % 6 == 0).then_some(bytes)
}

/// Does this connection speak HTTP/2 from its first bytes? `d` begins the
/// connection's input; `alpn_h2`: TLS negotiated "h2".
pub fn starts(d: &[u8], tls: bool, alpn_h2: bool, h2c: bool) -> bool {
    let allowed = if tls { alpn_h2 } else { h2c };
    allowed && d.starts_with(&engine::PREFACE[..16])
}

#[cfg(test)]
mod tests {
    /// An idle HTTP/2 connection is its `State` and `H2` boxes and the HPACK
    /// tables (tools/h2-idle-mem.py: 1.6 KiB against HTTP/1.1's 0.1 KiB, within
    /// the 4 KiB table each side agreed to): keep the boxes from growing.
    #[test]
    fn idle_state_is_small() {
        let h2 = std::mem::size_of::<super::H2>();
        let engine = std::mem::size_of::<super::engine::Engine>();
        let state = std::mem::size_of::<crate::conn::State>();
        eprintln!("H2 {h2} B (Engine {engine} B), State {state} B");
        assert!(h2 + state <= 1200, "H2 {h2} + State {state}");
    }
}
