//! mod_proxy on the gateway layer: an HTTP/1.1 exchange with the backend over
//! the job's socket, one connection per request (`Connection: close`, as
//! lighttpd). [`Exchange`] makes the request head (`request.rs`, with
//! proxy.header's remapping, `remap.rs`, and proxy.forwarded, `opts.rs`) and
//! reads the response back (`response.rs`): its head, remapped, goes to the CGI
//! job's response path (framing for the client, mod_deflate, the response_start
//! hooks); its body by its own framing (Content-Length, chunked, or up to the
//! close), so the exchange ends when the body does; a 101 to a request that
//! asked to upgrade turns the job into a tunnel (the job moves the bytes), as
//! does a CONNECT once its backend is connected (no request is sent).

mod opts;
mod remap;
mod request;
mod response;

pub use opts::{forwarded, fwd, header, Header};
pub use remap::Remap;
pub use request::Request;

use crate::cgi::{self, resp::RespHead, Framing, Job, Stage};
use crate::chunked::Decoder;
use crate::ctx::Ctx;

/// Where the backend's response is.
#[derive(Debug)]
enum State {
    Head,
    /// Body bytes still to come.
    Length(u64),
    Chunked(Box<Decoder>),
    /// Until the backend closes.
    Close,
    /// Switched protocols: bytes pass as they are.
    Tunnel,
    Done,
}

/// What the bytes read did.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// Read on.
    More,
    /// The response is whole: the backend is not needed any more.
    Complete,
    /// Answered otherwise (an error page, X-Sendfile): the backend is not needed.
    Answered,
    /// 101 Switching Protocols was relayed: the connection is a tunnel now.
    Tunnel,
}

/// One request's exchange with its backend.
#[derive(Debug)]
pub struct Exchange {
    req: Request,
    remap: Remap,
    /// The request asked to upgrade (Upgrade passed on): a 101 tunnels.
    upgrading: bool,
    state: State,
    /// The response head until it is whole.
    head: Vec<u8>,
}

impl Exchange {
    pub fn new(req: Request, remap: Remap) -> Exchange {
        Exchange {
            req,
            remap,
            upgrading: false,
            state: State::Head,
            head: Vec::new(),
        }
    }

    /// The request head for host number `host` of the pool, with `body` bytes of
    /// body to follow (None: no body).
    pub fn request_head(&mut self, body: Option<u64>, host: usize, out: &mut Vec<u8>) {
        self.upgrading = request::build(&self.req, body, host, &mut self.remap, out);
    }

    pub fn tunnel(&self) -> bool {
        matches!(self.state, State::Tunnel)
    }

    /// A CONNECT (claimed only with proxy.header "connect"): no request goes
    /// to the backend; the connection to it is the tunnel.
    pub fn connect(&self) -> bool {
        self.req.method == "CONNECT"
    }

    /// The backend is connected: 200 to the CONNECT, then bytes as they come,
    /// both ways (lighttpd's head: no length, `Connection: close`).
    pub fn open_tunnel(&mut self, ctx: &mut Ctx, job: &mut Job) {
        self.state = State::Tunnel;
        let mark = job.out.buf.len();
        let head = ctx.resp.begin(job.version, 200);
        head.add(b"Connection", b"close");
        head.date(&ctx.clock);
        head.server(job.tag.as_bytes());
        super::job::send_switch(head, &ctx.clock, job, mark, 200);
    }

    /// Bytes from the backend.
    pub fn data(&mut self, ctx: &mut Ctx, job: &mut Job, d: &[u8]) -> Got {
        if !matches!(self.state, State::Head) {
            return self.body(ctx, job, d);
        }
        if self.head.is_empty() {
            // The usual case, the whole head in one read: parsed where it is.
            return self.parse_head(ctx, job, d);
        }
        let mut buf = std::mem::take(&mut self.head);
        buf.extend_from_slice(d);
        self.parse_head(ctx, job, &buf)
    }

    /// The head at the start of `buf` (what came so far); a partial one is kept.
    fn parse_head(&mut self, ctx: &mut Ctx, job: &mut Job, mut buf: &[u8]) -> Got {
        loop {
            let h = match response::parse(buf) {
                response::Parsed::Partial => {
                    self.head.extend_from_slice(buf);
                    return Got::More;
                }
                response::Parsed::Bad(why) => {
                    self.state = State::Done;
                    cgi::malformed(ctx, job, &why, 502);
                    return Got::Answered;
                }
                response::Parsed::Head(h) => h,
            };
            let rest = &buf[h.len..];
            if h.status < 200 && h.status != 101 {
                // 100, 102, 103: not relayed; the final head follows.
                buf = rest;
                continue;
            }
            if h.status == 101 {
                if !self.upgrading || h.upgrade.is_none() {
                    self.state = State::Done;
                    let why = "101 Switching Protocols to a request that did not ask to upgrade";
                    cgi::malformed(ctx, job, why, 502);
                    return Got::Answered;
                }
                self.switch(ctx, job, h);
                job.out.put(rest);
                return Got::Tunnel;
            }
            let status = h.status;
            let no_body = job.head_only || status == 204 || status == 304;
            self.state = if no_body {
                State::Done
            } else if h.chunked {
                State::Chunked(Box::default())
            } else if let Some(n) = h.content_length {
                State::Length(n)
            } else {
                State::Close
            };
            let rh = self.client_head(h);
            if job.xsendfile {
                if let Some(f) = rh.get("x-sendfile").map(str::to_string) {
                    self.state = State::Done;
                    if cgi::x_sendfile(ctx, job, rh, &f).is_none() {
                        cgi::stdout_eof(ctx, job);
                    }
                    return Got::Answered;
                }
            }
            cgi::start_response(ctx, job, rh, status);
            if matches!(self.state, State::Done) {
                return self.complete(ctx, job);
            }
            return self.body(ctx, job, rest);
        }
    }

    /// The head for the client: the backend's fields, Location,
    /// Content-Location and Set-Cookie remapped.
    fn client_head(&mut self, h: response::Head) -> RespHead {
        let mut fields = h.fields;
        if self.remap.header().remaps_response() {
            for (k, v) in fields.iter_mut() {
                let new = if k.eq_ignore_ascii_case("location")
                    || k.eq_ignore_ascii_case("content-location")
                {
                    self.remap.uri(v, false)
                } else if k.eq_ignore_ascii_case("set-cookie") {
                    self.remap.set_cookie(v)
                } else {
                    None
                };
                if let Some(n) = new {
                    *v = n;
                }
            }
        }
        RespHead {
            status: Some(h.status),
            nph: true,
            fields,
            content_length: h.content_length,
            ..RespHead::default()
        }
    }

    /// 101 to the client (the backend's fields, Upgrade, `Connection: upgrade`),
    /// then bytes as they come, both ways.
    fn switch(&mut self, ctx: &mut Ctx, job: &mut Job, h: response::Head) {
        self.state = State::Tunnel;
        let mark = job.out.buf.len();
        let head = ctx.resp.begin(job.version, 101);
        let mut server = false;
        let mut date = false;
        for (k, v) in &h.fields {
            server |= k.eq_ignore_ascii_case("server");
            date |= k.eq_ignore_ascii_case("date");
            head.add(k.as_bytes(), v.as_bytes());
        }
        head.add(b"Upgrade", h.upgrade.as_deref().unwrap_or("").as_bytes());
        head.add(b"Connection", b"upgrade");
        if !date {
            head.date(&ctx.clock);
        }
        if !server {
            head.server(job.tag.as_bytes());
        }
        super::job::send_switch(head, &ctx.clock, job, mark, 101);
    }

    /// Body bytes by the backend's framing.
    fn body(&mut self, ctx: &mut Ctx, job: &mut Job, d: &[u8]) -> Got {
        match &mut self.state {
            State::Length(n) => {
                let k = (*n).min(d.len() as u64);
                cgi::body_bytes_raw(job, &d[..k as usize]);
                *n -= k;
                if *n == 0 {
                    return self.complete(ctx, job);
                }
            }
            State::Chunked(dec) => {
                let r = dec.decode(d, |b| cgi::body_bytes_raw(job, b));
                if r.is_err() {
                    self.cut(ctx, job, "sent a malformed chunked body");
                    return Got::Complete;
                }
                if dec.is_done() {
                    return self.complete(ctx, job);
                }
            }
            State::Close | State::Tunnel => cgi::body_bytes_raw(job, d),
            State::Head | State::Done => {}
        }
        Got::More
    }

    /// The body is whole: the client's framing ends (chunked: with the backend's
    /// trailers).
    fn complete(&mut self, ctx: &mut Ctx, job: &mut Job) -> Got {
        if let State::Chunked(dec) = std::mem::replace(&mut self.state, State::Done) {
            job.dechunk = Some(*dec);
        }
        cgi::stdout_eof(ctx, job);
        Got::Complete
    }

    /// The backend's response broke off: what came goes out, then the client's
    /// connection closes (a client that counts bytes or chunks sees the cut).
    fn cut(&mut self, ctx: &mut Ctx, job: &mut Job, why: &str) {
        self.state = State::Done;
        ctx.log.push(format!(
            "{}: backend {} {why} for {}",
            job.module, job.backend, job.script
        ));
        job.keep_alive = false;
        if job.framing == Framing::Pending {
            cgi::commit_head(ctx, job, false);
        }
        job.stage = Stage::Done;
        job.framing = Framing::Discard;
    }

    /// The backend closed its side. `heard`: something came before.
    pub fn eof(&mut self, ctx: &mut Ctx, job: &mut Job, heard: bool) {
        match self.state {
            State::Close => {
                self.complete(ctx, job);
            }
            State::Length(_) | State::Chunked(_) => self.cut(
                ctx,
                job,
                "closed the connection before the end of the response",
            ),
            State::Head => {
                self.state = State::Done;
                let why = if heard {
                    "closed the connection within the response head"
                } else {
                    "closed the connection without a response"
                };
                ctx.log.push(format!(
                    "{}: backend {} {why} for {}",
                    job.module, job.backend, job.script
                ));
                cgi::fail(job, &ctx.clock, &ctx.pages, 502);
            }
            State::Tunnel | State::Done => {}
        }
    }
}
