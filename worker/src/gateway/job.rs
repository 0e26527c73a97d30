//! One request to a backend the worker connects to itself (mod_fastcgi, mod_scgi,
//! mod_proxy): [`GatewayJob`], the handler the connection steps. It picks a
//! backend, connects without blocking (a refused or timed-out connect disables
//! the host for its disable-time and the next live one is tried; none left: 503),
//! writes the request in the backend's [`Wire`] format — FastCGI records
//! (BEGIN_REQUEST, PARAMS, the body as STDIN), an SCGI or uwsgi head and the body
//! as it is, or an HTTP/1.1 head (made once connected: it may name the host) and
//! the body — and reads the response back: FastCGI's STDOUT records, or the plain
//! stream up to the backend's close, into the CGI job's response (head, framing,
//! X-Sendfile); FastCGI's STDERR lines to the error log, END_REQUEST as the end;
//! an HTTP response through its exchange (proxy/), ending with its body.
//! The backend is not read while the client's output is full. Failures are logged
//! with the module and the backend named: 502 for a connection that died before
//! its response or a malformed head, 504 for read-timeout and write-timeout.
//!
//! mod_wstunnel's job answers the WebSocket handshake once connected (wstunnel.rs)
//! and is a tunnel from then on, with frames on the client's side.
//!
//! A proxied 101, or the 200 to a CONNECT (proxy.header "connect": the backend
//! connected is the tunnel's other end, as lighttpd's), makes the job a tunnel:
//! the connection hands it every byte the client sends (`Handler::tunnel`), both
//! directions move as the other side takes them, and each side's FIN is passed
//! on once what preceded it was written; the job ends when both directions have
//! ended.

use super::authorizer::{Authorizing, Fed};
use super::{Backend, Balance, Pick, Pool};
use crate::cgi::{self, Framing, Job, Stage};
use crate::ctx::Ctx;
use crate::fastcgi::record::{self, Reader, Record};
use crate::handler::{Step, Want};
use std::io;
use std::rc::Rc;
use wick_proto::cgienv::EnvBuf;

/// The head that opens a tunnel (a 101, or the 200 to a CONNECT), its fields
/// in `head` (made at `job.out.buf[mark..]`'s start): the module hooks run on
/// it, it goes out, and the job is a tunnel from then on (no framing, no
/// compression, the connection closes at its end).
pub(super) fn send_switch(
    head: &mut crate::resp_head::ResponseHead,
    clock: &crate::date::Clock,
    job: &mut Job,
    mark: usize,
    status: u16,
) {
    job.hooks.run(head, clock);
    head.write(&mut job.out);
    job.status = status;
    job.started = true;
    if let Some(l) = &mut job.log {
        l.head(status, &job.out.buf[mark..]);
    }
    job.hooks.deflate = None;
    job.framing = Framing::UntilClose;
    job.keep_alive = false;
}

/// How the request and its response travel on the backend's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// FastCGI records, the response ending with END_REQUEST.
    FastCgi,
    /// An SCGI netstring head, then the body; the response until the close.
    Scgi,
    /// A uwsgi packet head, then the body; the response until the close.
    Uwsgi,
    /// An HTTP/1.1 request (mod_proxy), the response by its own framing.
    Http,
    /// Nothing but the bytes of the client's WebSocket frames, both ways
    /// (mod_wstunnel).
    WebSocket,
}

/// What the module hands to [`GatewayJob::new`].
pub(super) struct Start {
    pub wire: Wire,
    pub job: Box<Job>,
    pub pool: Rc<Pool>,
    pub pick: Pick,
    pub balance: Balance,
    pub hkey: Vec<u8>,
    /// The CGI environment (CONTENT_LENGTH filled in later for a chunked body).
    pub env: EnvBuf,
    /// The connection's key (the backend socket's token).
    pub key: usize,
    pub now: u64,
    /// mod_proxy's exchange (Wire::Http).
    pub http: Option<Box<super::proxy::Exchange>>,
    /// mod_wstunnel's WebSocket (Wire::WebSocket).
    pub ws: Option<Box<super::wstunnel::Ws>>,
    /// Seconds a tunnel may be silent both ways (server.max-read-idle).
    pub idle: u64,
}

/// Where the socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// Not asked for yet (a chunked body is being collected), or failed over.
    None,
    Connecting,
    Up,
    /// The backend closed, or the request ended.
    Closed,
}

pub struct GatewayJob {
    wire: Wire,
    job: Box<Job>,
    pool: Option<Rc<Pool>>,
    /// The host in use (counted in its load until released).
    pick: Option<Pick>,
    balance: Balance,
    hkey: Vec<u8>,
    /// Hosts whose connect failed for this request.
    tried: Vec<usize>,
    sock: Option<Backend>,
    /// A released connection, closed once this step has sent what it answered
    /// (the client hears first; lighttpd also closes after the write).
    closing: Option<Backend>,
    conn: Conn,
    key: usize,
    /// The environment until the body's length is known (chunked request body).
    env: Option<EnvBuf>,
    /// Records for the backend: `wbuf[wpos..]` not written yet.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Bytes went to the backend: a failure now cannot be retried elsewhere.
    wrote: bool,
    /// The last write met a full socket: wait for it to be writable.
    blocked: bool,
    /// Something came from the backend (before that, a read right after our own
    /// write would only find the socket empty: its readable edge says when).
    heard: bool,
    /// The end of the body is queued (FastCGI's empty STDIN record), or, on the
    /// other wires, the body is all written.
    stdin_end: bool,
    reader: Reader,
    connect_ts: u64,
    /// When the connect began, while mod_status counts (the backend's latency).
    since: Option<std::time::Instant>,
    /// mod_proxy's exchange (Wire::Http).
    http: Option<Box<super::proxy::Exchange>>,
    /// mod_wstunnel's WebSocket (Wire::WebSocket).
    ws: Option<Box<super::wstunnel::Ws>>,
    /// The client sent its FIN (a tunnel passes it on).
    client_eof: bool,
    /// A tunnel: the backend's write side is shut (the client's FIN passed on).
    up_shut: bool,
    /// A tunnel: the backend sent its FIN.
    down_eof: bool,
    /// A tunnel: the client's write side is shut (the backend's FIN passed on).
    down_shut: bool,
    idle: u64,
    /// A FastCGI authorizer's request (authorizer.rs): no body, its 200 held.
    auth: Option<Box<Authorizing>>,
    /// The socket is a FastCGI connection kept from an earlier request
    /// (socket.rs `Idle`): `wbuf` keeps the whole request until something is
    /// heard, and a connection the backend closed before any answer has it
    /// written again on a new one (`replay`).
    reused: bool,
    /// Connect anew, not to a kept connection (after a replay).
    fresh: bool,
}

/// A kept connection carries only a request that fits this (held whole for a
/// replay); a larger one connects anew.
const REPLAY_MAX: usize = 32 << 10;

impl GatewayJob {
    pub(super) fn new(s: Start) -> GatewayJob {
        let params = s.env.text_len() + 8 * s.env.len() + 48;
        let mut j = GatewayJob {
            wire: s.wire,
            job: s.job,
            pool: Some(s.pool),
            pick: None,
            balance: s.balance,
            hkey: s.hkey,
            tried: Vec::new(),
            sock: None,
            closing: None,
            conn: Conn::None,
            key: s.key,
            env: Some(s.env),
            // Sized for the head: below 1 KiB, as it mostly is, glibc's malloc
            // takes the fast path (a larger request first consolidates its free
            // lists). An HTTP head is made later, and small.
            wbuf: Vec::with_capacity(match s.wire {
                Wire::Http => 1000,
                // name and value, up to 8 bytes of lengths each; 3 records' headers
                // and padding around the PARAMS
                _ => params,
            }),
            wpos: 0,
            wrote: false,
            blocked: false,
            heard: false,
            stdin_end: false,
            reader: Reader::default(),
            connect_ts: s.now,
            since: None,
            http: s.http,
            ws: s.ws,
            client_eof: false,
            up_shut: false,
            down_eof: false,
            down_shut: false,
            idle: s.idle,
            auth: None,
            reused: false,
            fresh: false,
        };
        if let Some(pool) = &j.pool {
            pool.begin(s.pick.host);
        }
        j.pick = Some(s.pick);
        j.job.stage = if j.job.body_open && j.job.whole {
            Stage::Collecting
        } else {
            Stage::Running
        };
        j
    }

    /// A job already answered (an error page): stepping sends it.
    pub(super) fn failed(job: Box<Job>) -> GatewayJob {
        GatewayJob {
            wire: Wire::FastCgi,
            job,
            pool: None,
            pick: None,
            balance: Balance::LeastConnection,
            hkey: Vec::new(),
            tried: Vec::new(),
            sock: None,
            closing: None,
            conn: Conn::Closed,
            key: 0,
            env: None,
            wbuf: Vec::new(),
            wpos: 0,
            wrote: false,
            blocked: false,
            heard: false,
            stdin_end: true,
            reader: Reader::default(),
            connect_ts: 0,
            since: None,
            http: None,
            ws: None,
            client_eof: false,
            up_shut: false,
            down_eof: false,
            down_shut: false,
            idle: 0,
            auth: None,
            reused: false,
            fresh: false,
        }
    }

    /// Ask as an authorizer (role AUTHORIZER): the body is neither read nor
    /// sent; `docroot`: the host's; `internal`: the internal request this is.
    pub(super) fn authorizer(
        mut self,
        docroot: &str,
        internal: Option<crate::internal::InternalInfo>,
    ) -> GatewayJob {
        self.auth = Some(Box::new(Authorizing::new(docroot, internal)));
        self.job.body_open = false;
        self.job.stage = Stage::Running;
        self.stdin_end = true;
        self
    }

    /// Bytes pass both ways as they come (mod_proxy after a 101, mod_wstunnel
    /// after its own).
    fn tunnelling(&self) -> bool {
        self.http.as_ref().is_some_and(|x| x.tunnel())
            || self.ws.as_ref().is_some_and(|w| w.switched)
    }

    fn chunked(&self) -> bool {
        self.job.saved.head.body == crate::request::BodyKind::Chunked
    }

    fn host_name(&self) -> String {
        match (&self.pool, self.pick) {
            (Some(p), Some(k)) => p.host(k.host).name.clone(),
            _ => String::new(),
        }
    }

    /// The host no longer carries this request.
    fn release(&mut self) {
        if let (Some(pool), Some(p)) = (&self.pool, self.pick.take()) {
            pool.end(p.host);
        }
        if let Some(s) = self.sock.take() {
            self.closing = Some(s);
        }
        if self.conn != Conn::None {
            self.conn = Conn::Closed;
        }
    }

    /// End the request with an error page (or, with the response under way, the
    /// connection closing after what was sent).
    fn fail(&mut self, ctx: &mut Ctx, status: u16) {
        self.release();
        self.conn = Conn::Closed;
        cgi::fail(&mut self.job, &ctx.clock, &ctx.pages, status);
    }

    /// The environment in the wire's format, once the body's length is known.
    /// A uwsgi head over 64 KiB cannot be sent: 431, as lighttpd answers.
    fn queue_params(&mut self, ctx: &mut Ctx) {
        let Some(mut env) = self.env.take() else {
            return;
        };
        if self.chunked() && self.auth.is_none() {
            env.set("CONTENT_LENGTH", &self.job.collected_len().to_string());
        }
        let pairs = env.iter();
        match self.wire {
            Wire::FastCgi => {
                let role = match self.auth {
                    Some(_) => record::AUTHORIZER,
                    None => record::RESPONDER,
                };
                // FCGI_KEEP_CONN: the connection may serve the next request of
                // this loop turn (socket.rs `Idle`).
                record::begin(&mut self.wbuf, role, true);
                record::params(&mut self.wbuf, pairs);
            }
            Wire::Scgi => crate::scgi::scgi_head(&mut self.wbuf, pairs),
            Wire::Http if self.http.as_ref().is_some_and(|x| x.connect()) => {
                // CONNECT: nothing goes before the client's bytes; it hears 200.
                if let Some(x) = self.http.as_mut() {
                    x.open_tunnel(ctx, &mut self.job);
                }
            }
            Wire::Http => {
                let body = match self.job.saved.head.body {
                    crate::request::BodyKind::None => None,
                    crate::request::BodyKind::Length(n) => Some(n),
                    crate::request::BodyKind::Chunked => Some(self.job.inbuf.len() as u64),
                };
                let host = self.pick.map_or(0, |p| p.host);
                if let Some(x) = self.http.as_mut() {
                    x.request_head(body, host, &mut self.wbuf);
                }
            }
            Wire::WebSocket => {
                // Nothing goes before the frames' bytes: the client hears its 101.
                if let Some(ws) = self.ws.as_mut() {
                    ws.switch(ctx, &mut self.job);
                }
            }
            Wire::Uwsgi => {
                if crate::scgi::uwsgi_head(&mut self.wbuf, pairs).is_err() {
                    ctx.log.push(format!(
                        "{}: {}: the uwsgi head is over 64 KiB",
                        self.job.module, self.job.script
                    ));
                    self.fail(ctx, 431);
                }
            }
        }
    }

    /// Start a connect to the chosen host; a failure that shows at once fails
    /// over like a late one.
    fn connect(&mut self, ctx: &mut Ctx) {
        let (Some(pool), Some(pick)) = (self.pool.clone(), self.pick) else {
            return;
        };
        let Some(reg) = ctx.registry.as_ref() else {
            self.fail(ctx, 500);
            return;
        };
        let token = cgi::pipe_token(self.key, cgi::BACKEND);
        let addr = &pool.host(pick.host).addr;
        if self.wire == Wire::FastCgi && !self.fresh && self.replay_fits() {
            // (one closed before this request was written to it is no loss)
            if let Some(mut s) = ctx.idle_backends.take(addr) {
                if s.may_carry() && s.retoken(reg, token).is_ok() {
                    self.reused = true;
                    self.attach(ctx, s);
                    return;
                }
            }
        }
        match Backend::connect(addr, reg, token) {
            Ok(mut s) => {
                if self.wire == Wire::FastCgi {
                    // (kept for a next request: see socket.rs)
                    s.peek_reads();
                }
                self.attach(ctx, s);
            }
            Err(e) => self.connect_failed(ctx, &e.to_string()),
        }
    }

    /// `s` is the request's connection from now on, new or kept; the
    /// timeouts count from here.
    fn attach(&mut self, ctx: &Ctx, s: Backend) {
        self.conn = if s.connecting {
            Conn::Connecting
        } else {
            Conn::Up
        };
        self.sock = Some(s);
        self.connect_ts = ctx.clock.mono;
        self.since = crate::mods::status::count::now();
        self.job.read_ts = ctx.clock.mono;
        self.job.write_ts = ctx.clock.mono;
    }

    /// The connect failed: the host is disabled and the next live one tried;
    /// none left: 503.
    fn connect_failed(&mut self, ctx: &mut Ctx, why: &str) {
        let Some(pool) = self.pool.clone() else {
            return;
        };
        let Some(pick) = self.pick else {
            return;
        };
        let host = pool.host(pick.host);
        ctx.log.push(format!(
            "{}: connect to backend {} failed: {why}; disabled for {} s",
            self.job.module,
            host.name,
            host.disable_time.max(1)
        ));
        pool.disable(pick.host, ctx.clock.mono);
        self.tried.push(pick.host);
        self.release();
        self.conn = Conn::None;
        match pool.pick(
            pick.ext,
            self.balance,
            &self.hkey,
            ctx.clock.mono,
            &self.tried,
        ) {
            Some(next) => {
                pool.begin(next.host);
                self.pick = Some(next);
            }
            None => {
                ctx.log.push(format!(
                    "{}: {}: no backend left to try",
                    self.job.module, self.job.script
                ));
                self.fail(ctx, 503);
            }
        }
    }

    /// Request body bytes the connection decoded → STDIN records (FastCGI), or as
    /// they are; FastCGI's empty STDIN record when the body is all in.
    fn stdin(&mut self) -> bool {
        let job = &mut self.job;
        let mut progress = false;
        if job.stage == Stage::Done || self.conn == Conn::Closed || self.up_shut {
            // Nobody reads it any more: dropped so the client can be read on.
            job.inbuf.clear();
            job.spool = None;
            job.intake.clear();
            return false;
        }
        if job.stage == Stage::Collecting || self.env.is_some() {
            // A body received whole is collected first (a chunked one's length
            // goes into the head), and no body byte goes before the head.
            return false;
        }
        if !job.inbuf.is_empty() && self.wbuf.len() - self.wpos < cgi::IN_HIGH {
            match self.wire {
                Wire::FastCgi => record::stream(&mut self.wbuf, record::STDIN, &job.inbuf),
                Wire::Scgi | Wire::Uwsgi | Wire::Http => self.wbuf.extend_from_slice(&job.inbuf),
                Wire::WebSocket => {
                    if let Some(ws) = self.ws.as_mut() {
                        let mut answers = Vec::new();
                        // (its end, a close or a broken frame, is the decoder's
                        // `ended`, acted on in `pump`)
                        ws.decoder.feed(&job.inbuf, &mut self.wbuf, &mut answers);
                        cgi::body_bytes_raw(job, &answers);
                    }
                }
            }
            job.inbuf.clear();
            progress = true;
        }
        if !job.body_more() && job.inbuf.is_empty() && !self.stdin_end {
            if self.wire == Wire::FastCgi {
                record::stream(&mut self.wbuf, record::STDIN, &[]);
            }
            self.stdin_end = true;
            progress = true;
        }
        progress
    }

    fn write(&mut self, ctx: &mut Ctx) -> bool {
        let Some(s) = &mut self.sock else {
            return false;
        };
        let mut progress = false;
        self.blocked = false;
        while self.wpos < self.wbuf.len() {
            match s.write(&self.wbuf[self.wpos..]) {
                Ok(0) => break,
                Ok(n) => {
                    self.wpos += n;
                    self.wrote = true;
                    self.job.write_ts = ctx.clock.mono;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.replayable() => {
                    self.replay();
                    return true;
                }
                Err(e) => {
                    // The backend stopped reading (it may have answered already):
                    // the rest of the body is dropped, its response still read.
                    if self.job.framing == Framing::Head && !self.job.started {
                        ctx.log.push(format!(
                            "{}: write to backend {} failed: {e}",
                            self.job.module,
                            self.host_name()
                        ));
                    }
                    self.wbuf.clear();
                    self.wpos = 0;
                    self.stdin_end = true;
                    self.job.body_open = false;
                    // A tunnel's backend reads no more: the client's bytes are dropped.
                    self.up_shut = self.tunnelling();
                    self.job.spool = None;
                    self.job.intake.clear();
                    return true;
                }
            }
        }
        // (a request on a kept connection is held for a replay: `replay_fits`
        // bounds it)
        if self.wpos == self.wbuf.len() && !self.replayable() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        progress
    }

    /// The request can be held whole for a replay: a kept connection may
    /// carry it (a larger body goes on a new connection).
    fn replay_fits(&self) -> bool {
        let body = match self.job.saved.head.body {
            crate::request::BodyKind::None => 0,
            crate::request::BodyKind::Length(n) => n,
            crate::request::BodyKind::Chunked => u64::MAX,
        };
        body.saturating_add(self.wbuf.len() as u64) <= REPLAY_MAX as u64
    }

    /// A kept connection that the backend closed before answering (it may not
    /// keep connections, or closed an idle one): the whole request is still here.
    fn replayable(&self) -> bool {
        self.reused && !self.heard
    }

    /// GET, HEAD, OPTIONS: a request that may run twice.
    fn idempotent(&self) -> bool {
        use crate::request::Method;
        matches!(
            self.job.saved.head.method,
            Method::Get | Method::Head | Method::Options
        )
    }

    /// Write the request again, on a new connection.
    fn replay(&mut self) {
        self.sock = None;
        self.reused = false;
        self.fresh = true;
        self.conn = Conn::None;
        self.wpos = 0;
        self.wrote = false;
        self.blocked = false;
    }

    /// The request ended whole (END_REQUEST, all of it written, nothing after
    /// it): its connection is kept for a next request of this loop turn.
    fn park(&mut self, ctx: &mut Ctx) {
        if self.wire != Wire::FastCgi
            || self.reader.pending() > 0
            || self.wpos < self.wbuf.len()
            || !self.stdin_end
            || self.down_eof
        {
            return;
        }
        if let (Some(pool), Some(p), Some(s)) = (&self.pool, self.pick, self.sock.take()) {
            ctx.idle_backends.park(&pool.host(p.host).addr, s);
        }
    }

    /// Records from the backend while the client's output has room.
    fn read(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Result<bool, Step> {
        let mut progress = false;
        loop {
            let full = self.job.out_full(ctx)
                || self
                    .job
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.body.len() >= cgi::OUT_HIGH);
            if full || self.conn != Conn::Up || self.down_eof {
                return Ok(progress);
            }
            let Some(s) = &mut self.sock else {
                return Ok(progress);
            };
            let n = match s.read(rbuf) {
                Ok(0) if self.ws.is_some() => {
                    // The client hears a close frame (1001), then the close.
                    self.backend_eof(ctx);
                    return Ok(true);
                }
                Ok(0) if self.replayable() && self.idempotent() => {
                    // (the backend may have read it: only a request that may run
                    // twice is sent again)
                    self.replay();
                    return Ok(true);
                }
                Ok(0) if self.tunnelling() => {
                    // Passed on to the client once what came before is sent.
                    self.down_eof = true;
                    return Ok(true);
                }
                Ok(0) => {
                    self.backend_eof(ctx);
                    return Ok(true);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A reset: the backend closed with the request unread.
                Err(e)
                    if self.replayable()
                        && (e.kind() == io::ErrorKind::ConnectionReset || self.idempotent()) =>
                {
                    self.replay();
                    return Ok(true);
                }
                Err(e) => {
                    ctx.log.push(format!(
                        "{}: read from backend {} failed: {e}",
                        self.job.module,
                        self.host_name()
                    ));
                    self.backend_eof(ctx);
                    return Ok(true);
                }
            };
            progress = true;
            self.heard = true;
            self.job.read_ts = ctx.clock.mono;
            if self.wire == Wire::FastCgi {
                self.reader.extend(&rbuf[..n]);
                self.records(ctx)?;
            } else if self.wire == Wire::Http {
                if self.http_data(ctx, &rbuf[..n]) {
                    return Ok(true);
                }
            } else if let Some(ws) = self.ws.as_ref() {
                ws.backend_bytes(&mut self.job, &rbuf[..n]);
            } else if self.job.stage != Stage::Done
                && cgi::stdout_data(ctx, &mut self.job, &rbuf[..n]).is_some()
            {
                // Answered already (a malformed head, X-Sendfile).
                self.release();
                return Ok(true);
            }
        }
    }

    /// Complete records to the job.
    fn records(&mut self, ctx: &mut Ctx) -> Result<(), Step> {
        loop {
            let rec = match self.reader.take() {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(bad) => {
                    ctx.log.push(format!(
                        "{}: backend {} for {}: not a FastCGI record (version byte {})",
                        self.job.module,
                        self.host_name(),
                        self.job.script,
                        bad.0
                    ));
                    self.fail(ctx, 502);
                    return Ok(());
                }
            };
            match rec {
                Record::Stdout(d) => {
                    if d.is_empty() || self.job.stage == Stage::Done {
                        continue;
                    }
                    let mut d = std::borrow::Cow::Borrowed(d);
                    if let Some(a) = self.auth.as_mut() {
                        match a.feed(&d) {
                            Fed::Kept => continue,
                            Fed::Pass => {}
                            // The authorizer's answer is the response.
                            Fed::Deny(head) => d = head.into(),
                        }
                    }
                    if cgi::stdout_data(ctx, &mut self.job, &d).is_some() {
                        // Answered already (a malformed head, X-Sendfile): the
                        // backend's connection is not needed any more.
                        self.release();
                        return Ok(());
                    }
                }
                Record::Stderr(d) => {
                    self.job.errbuf.extend_from_slice(d);
                    cgi::flush_err(ctx, &mut self.job, false);
                }
                Record::End { .. } => {
                    if let (Some(pool), Some(p)) = (&self.pool, self.pick) {
                        pool.answered(p.host, self.since);
                    }
                    self.park(ctx);
                    self.release();
                    if let Some(a) = self.auth.as_mut().filter(|a| a.granted()) {
                        // Granted: the request runs again once what is queued
                        // for earlier requests is out (`pump`).
                        a.ended = true;
                        return Ok(());
                    }
                    if self.job.stage != Stage::Done {
                        cgi::stdout_eof(ctx, &mut self.job);
                    }
                    return Ok(());
                }
                Record::Other => {}
            }
        }
    }

    /// Response bytes through mod_proxy's exchange. True: the backend is done
    /// with (the response is whole, or answered otherwise).
    fn http_data(&mut self, ctx: &mut Ctx, d: &[u8]) -> bool {
        let Some(mut x) = self.http.take() else {
            return false;
        };
        let got = x.data(ctx, &mut self.job, d);
        self.http = Some(x);
        match got {
            super::proxy::Got::More | super::proxy::Got::Tunnel => false,
            super::proxy::Got::Complete => {
                if let (Some(pool), Some(p)) = (&self.pool, self.pick) {
                    pool.answered(p.host, self.since);
                }
                self.release();
                true
            }
            super::proxy::Got::Answered => {
                self.release();
                true
            }
        }
    }

    /// The backend closed its connection. SCGI and uwsgi end a response so, once
    /// something came; FastCGI's is broken before END_REQUEST (502 if none was
    /// sent, else the client's connection closes), as is a close with no answer;
    /// an HTTP response by its framing (proxy/).
    fn backend_eof(&mut self, ctx: &mut Ctx) {
        let name = self.host_name();
        self.release();
        if self.job.stage == Stage::Done {
            return;
        }
        if self.tunnelling() {
            // A tunnel whose backend failed: what came goes out, then the close
            // (a WebSocket's with a close frame, 1001, unless the client's came).
            if let Some(ws) = self.ws.as_ref().filter(|w| !w.decoder.ended) {
                ws.close(&mut self.job, super::wstunnel::GOING_AWAY);
            }
            self.job.keep_alive = false;
            self.job.stage = Stage::Done;
            return;
        }
        if let Some(mut x) = self.http.take() {
            x.eof(ctx, &mut self.job, self.heard);
            self.http = Some(x);
            return;
        }
        if self.wire != Wire::FastCgi && self.heard {
            cgi::stdout_eof(ctx, &mut self.job);
            return;
        }
        ctx.log.push(format!(
            "{}: backend {name} closed the connection before the end of the response for {} (did it die?)",
            self.job.module, self.job.script
        ));
        if self.job.started {
            self.job.keep_alive = false;
            cgi::fail(&mut self.job, &ctx.clock, &ctx.pages, 502);
        } else if self.job.framing == Framing::Pending {
            // A head and part of a body: what came is sent, then the close.
            self.job.keep_alive = false;
            cgi::commit_head(ctx, &mut self.job, false);
            self.job.stage = Stage::Done;
            self.job.framing = Framing::Discard;
        } else {
            cgi::fail(&mut self.job, &ctx.clock, &ctx.pages, 502);
        }
    }

    fn pump(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
        rbuf: &mut [u8],
    ) -> Step {
        let mut progress = false;
        if let Err(status) = self.job.take_ahead(ctx) {
            return Step::Refuse(status);
        }
        if self.job.stage == Stage::Collecting {
            if let Err(status) = self.job.collect(ctx) {
                return Step::Refuse(status);
            }
            if !self.job.body_open {
                self.job.stage = Stage::Running;
            }
        }
        // Steps that lead on to the next within this pump ask for no second round;
        // a failed-over connect (a next host to try) does.
        // (mod_proxy's head is made once connected: it may name the host.)
        let after_connect = matches!(self.wire, Wire::Http | Wire::WebSocket);
        if self.env.is_some() && self.job.stage == Stage::Running && !after_connect {
            self.queue_params(ctx);
        }
        if self.conn == Conn::None && self.job.stage == Stage::Running {
            self.connect(ctx);
            progress |= self.conn == Conn::None && self.job.stage == Stage::Running;
        }
        if self.conn == Conn::Connecting {
            match self.sock.as_mut().map(Backend::check_connected) {
                Some(Ok(true)) => {
                    self.conn = Conn::Up;
                    self.job.read_ts = ctx.clock.mono;
                    self.job.write_ts = ctx.clock.mono;
                }
                Some(Err(e)) => {
                    self.connect_failed(ctx, &e.to_string());
                    progress = true;
                }
                _ => {}
            }
        }
        if self.env.is_some() && self.conn == Conn::Up && self.job.stage == Stage::Running {
            self.queue_params(ctx);
        }
        // A spooled body's next part, once the last went into the records.
        if self.job.stage == Stage::Running
            && self.env.is_none()
            && self.job.inbuf.is_empty()
            && self.wbuf.len() - self.wpos < cgi::IN_HIGH
        {
            if let Err(status) = self.job.refill(ctx) {
                return Step::Refuse(status);
            }
        }
        // Body bytes moved on make room for more from the client (or the spool).
        if self.stdin() && self.job.body_more() {
            progress = true;
        }
        if self.conn == Conn::Up {
            // Writes alone need no second round: what follows waits for an
            // event, except a body held back for room that the write made.
            let wrote = self.write(ctx);
            if wrote && self.job.body_more() {
                progress = true;
            }
            if self.heard || !wrote {
                match self.read(ctx, rbuf) {
                    Ok(p) => progress |= p,
                    Err(s) => return s,
                }
            }
            // A kept connection found closed: the replay connects next round.
            progress |= self.conn == Conn::None && self.job.stage == Stage::Running;
        }
        if let (Some(sock), Some(reg)) = (self.sock.as_mut(), ctx.registry.as_ref()) {
            if sock.sync(reg, self.blocked).is_err() {
                ctx.log.push(format!(
                    "{}: backend {}: epoll_ctl failed",
                    self.job.module,
                    self.host_name()
                ));
                self.fail(ctx, 502);
            }
        }
        if self.ws.as_ref().is_some_and(|w| w.decoder.ended) && self.job.stage != Stage::Done {
            // The client's close (answered) or a broken frame: the tunnel ends.
            if let Some(why) = self.ws.as_ref().and_then(|w| w.decoder.broken) {
                ctx.log.push(format!(
                    "{}: {}: closing the WebSocket: the client sent {why}",
                    self.job.module, self.job.script
                ));
            }
            self.release();
            self.job.keep_alive = false;
            self.job.stage = Stage::Done;
        }
        let sent = self.job.send_out(ctx, client);
        self.closing = None;
        match sent {
            Ok(p) => progress |= p,
            Err(_) => return Step::Close,
        }
        if self.tunnelling() {
            self.tunnel_fins(client);
        }
        if let Some(a) = self.auth.as_mut().filter(|a| a.ended) {
            if self.job.out.is_empty() {
                return a.finish(ctx, &self.job.saved);
            }
        }
        if self.job.stage == Stage::Done && self.sock.is_none() {
            self.release();
            self.job.complete(ctx, rbuf);
            return Step::Done {
                out: std::mem::take(&mut self.job.out),
                keep_alive: self.job.keep_alive,
            };
        }
        if progress {
            Step::Progress
        } else {
            Step::Wait
        }
    }
}

impl GatewayJob {
    /// A tunnel passes each side's FIN on once what came before it is written;
    /// both passed, it ends.
    fn tunnel_fins(&mut self, client: &mut crate::handler::Client) {
        let up_flushed = self.wpos == self.wbuf.len() && self.job.inbuf.is_empty();
        if self.client_eof && !self.up_shut && up_flushed {
            if let Some(s) = &self.sock {
                s.shutdown_write();
            }
            self.up_shut = true;
        }
        if self.down_eof && !self.down_shut && self.job.out.is_empty() {
            client.shutdown_write();
            self.down_shut = true;
        }
        if self.up_shut && self.down_shut {
            self.release();
            self.job.stage = Stage::Done;
        }
    }
}

impl crate::handler::Handler for GatewayJob {
    fn body_room(&mut self) -> Option<&mut Vec<u8>> {
        if self.auth.is_some() {
            // Not the authorizer's: it stays unread for whoever serves the
            // request next (or the connection closes after a denial).
            return None;
        }
        let job = &mut self.job;
        if job.read_ahead && job.stage != Stage::Done {
            return (job.intake.len() < crate::spool::SPILL).then_some(&mut job.intake);
        }
        let room = job.stage == Stage::Collecting
            || job.stage == Stage::Done
            || (job.inbuf.len() < cgi::IN_HIGH && self.wbuf.len() - self.wpos < cgi::IN_HIGH);
        room.then_some(&mut job.inbuf)
    }

    fn body_done(&mut self, _ctx: &mut Ctx, trailers: Vec<(String, String)>) {
        self.job.body_open = false;
        // Whitelisted trailers of a collected body reach the backend as HTTP_*.
        if let Some(env) = self.env.as_mut() {
            for (k, v) in trailers {
                let name = wick_proto::cgienv::encode_name("HTTP_", &k);
                if env.get(&name).is_none() {
                    env.push(&name, &v);
                }
            }
        }
    }

    fn client_fin(&mut self, _ctx: &mut Ctx) {
        self.job.keep_alive = false;
        self.client_eof = true;
    }

    fn tunnel(&self) -> bool {
        self.tunnelling()
    }

    fn step(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
        rbuf: &mut [u8],
    ) -> Step {
        self.pump(ctx, client, rbuf)
    }

    fn abort(&mut self, ctx: &mut Ctx, status: Option<u16>) {
        match status {
            None => self.release(),
            Some(status) => {
                self.job.body_open = false;
                self.job.keep_alive = false;
                self.fail(ctx, status);
            }
        }
    }

    fn want(&self) -> Want {
        if self.job.out.is_empty() {
            Want::READ
        } else {
            Want::READ | Want::WRITE
        }
    }

    fn timeout(&self, write_idle: u64) -> u64 {
        if !self.job.out.is_empty() {
            write_idle
        } else if self.tunnelling() {
            // Silent both ways (the connection's progress counts either).
            self.idle
        } else {
            u64::MAX
        }
    }

    /// connect-timeout (fails over like a refused connect), read-timeout and
    /// write-timeout (504), and a held head that streams after a second.
    fn tick(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        if self.job.pending.as_ref().is_some_and(|p| now > p.since + 1) {
            cgi::commit_head(ctx, &mut self.job, false);
            return true;
        }
        let (Some(pool), Some(pick)) = (self.pool.clone(), self.pick) else {
            return false;
        };
        if let Some(ws) = self.ws.as_mut() {
            if ws.ping_due(&mut self.job, now) {
                return true;
            }
        }
        if self.tunnelling() {
            // Its idle limit is the connection's (`timeout`).
            return false;
        }
        let host = pool.host(pick.host);
        match self.conn {
            Conn::Connecting => {
                let t = host.connect_timeout;
                if t > 0 && now.saturating_sub(self.connect_ts) > t {
                    self.connect_failed(ctx, "connect timeout");
                    return true;
                }
                false
            }
            Conn::Up => {
                if !self.job.out.is_empty() {
                    // Waiting for the client, not the backend.
                    self.job.read_ts = now;
                }
                let what = if host.write_timeout > 0
                    && self.wpos < self.wbuf.len()
                    && now.saturating_sub(self.job.write_ts) > host.write_timeout
                {
                    "write"
                } else if host.read_timeout > 0
                    && now.saturating_sub(self.job.read_ts) > host.read_timeout
                {
                    "read"
                } else {
                    return false;
                };
                ctx.log.push(format!(
                    "{}: {what} timeout on backend {} for {}",
                    self.job.module, host.name, self.job.script
                ));
                self.fail(ctx, 504);
                true
            }
            Conn::None | Conn::Closed => false,
        }
    }

    fn reading_body(&self) -> bool {
        self.job.stage == Stage::Collecting && self.job.body_open
    }

    fn started(&self) -> bool {
        self.job.started
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Drop for GatewayJob {
    fn drop(&mut self) {
        self.release();
    }
}
