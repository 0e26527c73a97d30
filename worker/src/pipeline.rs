//! One request from its parsed head to its answer, as lighttpd's
//! http_response_prepare runs it: the stages below in order, each a small function.
//! A connection (conn.rs; an HTTP/2 stream later) hands in a [`Request`] and acts on
//! the [`Outcome`]; nothing here reads or writes a socket.
//!
//! ```text
//! run → uri         split the target, server.http-parseopts (400)
//!     → prepare     Mods::prepare: uri_raw … physical, conditions (or the plain view)
//!     → body_gate   413 on the announced length, 100 Continue
//!     → handle      a module claims it (mod_cgi: a Handler), or an answer now:
//!                   Mods::answer (a stage's status), Mods::handle, static_file::handle
//!     → error_handler   server.error-handler(-404) that is a script: an internal request
//!     → Mods::finish    response_start, request_done (or a deferred job's Handler)
//! ```

use crate::body::Body;
use crate::ctx::Ctx;
use crate::handler::Handler;
use crate::internal::{Internal, InternalInfo, Saved};
use crate::mods::{Base, Handled, Rq};
use crate::park::{Parked, Then};
use crate::request::{self, BodyKind, Field, Head};
use crate::response::Out;
use crate::static_file::{self, Env, Req};
use std::net::IpAddr;
use std::os::fd::RawFd;
use wick_conf::cond::Facts;
use wick_conf::View;

/// A parsed request and the connection it came on.
pub struct Request<'a> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub fields: &'a [Field],
    pub peer: IpAddr,
    /// The peer's TCP port (0 for a unix socket or a pipe).
    pub peer_port: u16,
    pub listener: u16,
    /// The connection's socket (SERVER_ADDR for a script).
    pub fd: RawFd,
    /// Requests on the connection so far, this one included.
    pub requests: u32,
    /// The connection stays open after this response.
    pub keep_alive: bool,
    /// The client waits for a 100 Continue before its body (h1.rs decides).
    pub wants_continue: bool,
    /// The connection's TLS session (None: plain HTTP).
    pub tls: Option<&'a crate::tls::session::Session>,
}

/// What the connection does next with the request.
pub enum Outcome {
    /// Refused before a handler ran: the status's page, then close.
    Refused { status: u16, why: &'static str },
    /// The response is in `ctx.out` from `mark`; a body, if any, is read (and
    /// dropped) before it goes out.
    Answered {
        mark: (usize, usize),
        body: Option<Body>,
        /// Close after it though the request allowed keep-alive (`Rq::close`).
        close: bool,
    },
    /// A handler answers over later turns; the body, if any, is read for it.
    Handler {
        handler: Box<dyn Handler>,
        body: Option<Body>,
    },
    /// An error handler runs as an internal request (the first answer was
    /// dropped); the client's body, if any, is still to be read (and dropped).
    Internal {
        ir: Box<Internal>,
        body: Option<Body>,
    },
}

/// The target as the handler sees it after the request stages.
struct Target<'a> {
    host: &'a [u8],
    /// Decoded, normalised URL path.
    path: &'a [u8],
    /// The physical path below the document root.
    rel: &'a [u8],
    /// The path as sent (redirects).
    raw_path: &'a [u8],
    query: &'a [u8],
    /// The client and scheme as conditions see them (mod_extforward may change them).
    remote_ip: IpAddr,
    scheme: &'a str,
}

impl Target<'_> {
    /// What the request stages left in `rq`.
    fn of(rq: &Rq) -> Target<'_> {
        Target {
            host: &rq.host,
            path: &rq.path,
            rel: &rq.rel,
            raw_path: rq.target_path(),
            query: &rq.query,
            remote_ip: rq.remote_ip,
            scheme: rq.scheme,
        }
    }
}

/// Run every stage for `r`; the response, if there is one now, goes to `ctx.out`.
pub fn run(ctx: &mut Ctx, r: &Request) -> Outcome {
    // An authorizer's grant is for this run alone, never a later one
    // (gateway/authorizer.rs); every run replaces the last one's.
    ctx.rq.grant = ctx.grant.take();
    let mut path = std::mem::take(&mut ctx.path);
    let o = run_with(ctx, r, &mut path);
    ctx.path = path;
    o
}

fn run_with(ctx: &mut Ctx, r: &Request, path: &mut Vec<u8>) -> Outcome {
    // uri: the target split and checked; `path` gets the decoded path.
    let (raw_path, query) = crate::path::split_target(r.head.path.of(r.buf));
    let opts = ctx.site.parseopts;
    let admitted = match crate::parseopts::admit(r.buf, r.head, raw_path, query, opts, path) {
        Ok(a) => a,
        Err(why) => return Outcome::Refused { status: 400, why },
    };
    let raw_host = r.head.host.map_or(&b""[..], |h| h.of(r.buf));
    let host = admitted.host.as_deref().unwrap_or(raw_host);
    // An internal request logs the client's target (allocates only for those).
    let orig = ctx.internal.as_ref().map(|i| i.orig_target.clone());
    let (w, rq) = Worker::split(ctx);
    let site = w.site;
    let mods = &site.mods;
    let base = Base {
        buf: r.buf,
        head: r.head,
        fields: r.fields,
        peer: r.peer,
        peer_port: r.peer_port,
        listener: usize::from(r.listener),
        port: mods.port(usize::from(r.listener)),
        fd: r.fd,
        tls: r.tls,
        requests: r.requests,
        target_orig: orig
            .as_deref()
            .map_or(r.head.target.of(r.buf), str::as_bytes),
        internal: orig.is_some(),
    };
    let mut early = None;
    if mods.active {
        rq.start(raw_path, &admitted.query, path, host, r.peer);
        if r.tls.is_some() {
            rq.scheme = "https";
        }
        let fs = crate::mods::Fs {
            cache: &mut *w.cache,
            roots: &mut *w.roots,
            clock: w.clock,
        };
        early = Some(mods.prepare(&site.compiled, w.cond, &base, rq, fs));
        if let (Some(at), false) = (rq.later, base.internal) {
            // A module wants it run again later (Flow::Later): the head is kept,
            // its body (not read yet) waits in the connection.
            let then = crate::park::Then::Rerun(r.buf.to_vec());
            let handler = Box::new(crate::park::Parked::new(at, then));
            return Outcome::Handler {
                handler,
                body: None,
            };
        }
        path.clear();
        path.extend_from_slice(&rq.path);
    }
    let rq: &Rq = rq;
    let mut t = match early {
        Some(_) => Target::of(rq),
        None => Target {
            host,
            path,
            rel: path,
            raw_path,
            query: &admitted.query,
            remote_ip: r.peer,
            scheme: if r.tls.is_some() { "https" } else { "http" },
        },
    };
    let (view, status) = match early {
        Some((v, status)) => (mods.handler_view(&v, rq), status),
        None => {
            let view = with_facts(r, &t, |f| mods.plain_view(site.view(f, w.cond)));
            (view, None)
        }
    };
    // An authorizer's docroot (lighttpd's gw_authorizer_ok): the document root,
    // the physical path that root and the URL path.
    let view = match rq.grant.as_ref().and_then(|g| g.docroot.as_ref()) {
        Some(root) => {
            t.rel = t.path;
            View {
                document_root: root,
                ..view
            }
        }
        None => view,
    };
    let limit = view.max_request_size.saturating_mul(1024);
    let body = match body_gate(r, limit, w.clock.mono, w.out) {
        Ok(b) => b,
        Err(why) => return Outcome::Refused { status: 413, why },
    };
    respond(w, r, &base, rq, &t, &view, status, body)
}

/// What [`respond`] borrows of the worker's state.
struct Worker<'c> {
    site: &'c crate::site::Site,
    cond: &'c mut wick_conf::cond::CondState,
    out: &'c mut Out,
    clock: &'c crate::date::Clock,
    cache: &'c mut crate::stat_cache::StatCache,
    pages: &'c crate::errors::Pages,
    roots: &'c mut static_file::Roots,
    scratch: &'c mut Vec<u8>,
    etag: &'c mut Vec<u8>,
    resp: &'c mut crate::resp_head::ResponseHead,
    cgi: &'c mut crate::cgi::Client,
    internal: &'c mut Option<InternalInfo>,
    log: &'c mut Vec<String>,
}

impl<'c> Worker<'c> {
    /// The worker's state taken apart once per request: what the stages use, and
    /// the modules' request state, which the view borrows from then on.
    fn split(ctx: &'c mut Ctx) -> (Worker<'c>, &'c mut Rq) {
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
            internal,
            rq,
            log,
            ..
        } = ctx;
        let w = Worker {
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
            internal,
            log,
        };
        (w, rq)
    }
}

/// handler → error_handler → response_start and request_done: the answer, now
/// or from a handler later. `early`: a request stage's status.
#[allow(clippy::too_many_arguments)]
fn respond(
    w: Worker,
    r: &Request,
    base: &Base,
    rq: &Rq,
    t: &Target,
    view: &View,
    early: Option<u16>,
    body: Option<Body>,
) -> Outcome {
    let Worker {
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
        internal,
        log,
    } = w;
    let cond: &wick_conf::cond::CondState = cond;
    let mods = &site.mods;
    let error_run = internal.as_ref().and_then(|i| i.error);
    // An error handler's answer to a 401 keeps the challenge (no allocation
    // otherwise: an empty Vec).
    let carried: Vec<(&'static [u8], Vec<u8>)> = internal
        .as_ref()
        .map(|i| i.fields.clone())
        .unwrap_or_default();
    let mark = out.mark();
    let keep_alive = r.keep_alive && !(mods.active && rq.close);
    let close = keep_alive != r.keep_alive;
    let req = Req {
        buf: r.buf,
        head: r.head,
        path: t.rel,
        raw_path: t.raw_path,
        query: t.query,
        keep_alive,
        error: error_run,
    };
    // The request's response_start hooks, run when a handler sends its head.
    let hooks = match mods.active {
        true => mods.hooks(&site.compiled, cond, view, base, rq, clock),
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
        fields: match (early, mods.active) {
            (Some(_), true) => &rq.answer_fields,
            _ => &carried,
        },
    };
    let status = match early {
        Some(s) => mods.answer(s, &req, view, &mut env, rq),
        None if mods.active || mods.claims => {
            let gw = crate::mods::Gateways {
                cgi,
                internal,
                cfg: &site.cfg,
                compiled: &site.compiled,
                cond,
                path: t.path,
                remote: match mods.active && rq.remote_ip != r.peer {
                    true => (rq.remote_ip, 0),
                    false => (r.peer, r.peer_port),
                },
                set_headers: if mods.active { &rq.req_headers } else { &[] },
                auth: (mods.active && !rq.auth_type.is_empty())
                    .then_some((rq.remote_user.as_str(), rq.auth_type)),
                accesslog: mods.accesslog.as_deref().filter(|_| mods.logs()),
                scheme: t.scheme,
            };
            match mods.handle(&req, view, &mut env, base, rq, gw) {
                Handled::Status(s) => s,
                Handled::Claimed(handler) => return Outcome::Handler { handler, body },
            }
        }
        None => static_file::handle(&req, view, &mut env),
    };
    // An answer held back (mod_auth after wrong credentials) waits parked.
    let hold = rq.hold.filter(|_| mods.active);
    if error_run.is_none() {
        if let Some(ir) = error_handler(r, view, status, rq, early.is_some() && mods.active) {
            // The first answer is dropped unsent and unlogged: the handler's is
            // the request's.
            drop(out.split_off(mark));
            let ir = Box::new(ir);
            if let Some(at) = hold {
                let handler = Box::new(Parked::new(at, Then::Run(ir)));
                return Outcome::Handler { handler, body };
            }
            return Outcome::Internal { ir, body };
        }
    }
    // mod_status: a response made now is counted now (a handler's when it ends).
    let started = crate::mods::status::count::Started::new(base.method(), clock.at);
    if !mods.active {
        crate::mods::status::count::request(started, status, clock.at);
        return Outcome::Answered { mark, body, close };
    }
    match mods.finish(
        out,
        mark,
        &site.compiled,
        cond,
        view,
        base,
        rq,
        clock,
        status,
    ) {
        Some(handler) => Outcome::Handler { handler, body },
        None => {
            crate::mods::status::count::request(started, status, clock.at);
            match hold {
                // (its access-log line is written now, as the answer is made)
                Some(at) => {
                    let then = Then::Send {
                        out: out.split_off(mark),
                        keep_alive,
                    };
                    let handler = Box::new(Parked::new(at, then));
                    Outcome::Handler { handler, body }
                }
                None => Outcome::Answered { mark, body, close },
            }
        }
    }
}

/// `String::from_utf8_lossy`, by the faster check first (valid UTF-8, the
/// usual case, is borrowed either way).
fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// The facts conditions test, for `t`.
fn with_facts<R>(r: &Request, t: &Target, f: impl FnOnce(&Facts) -> R) -> R {
    let path = lossy(t.path);
    let query = lossy(t.query);
    let host = lossy(t.host);
    let lookup = |name: &str| -> Option<&str> {
        request::header(r.buf, r.fields, name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
    };
    f(&Facts {
        host: &host,
        url_path: &path,
        query: &query,
        remote_ip: t.remote_ip,
        scheme: t.scheme,
        method: std::str::from_utf8(r.head.method_span.of(r.buf)).unwrap_or(""),
        listener: usize::from(r.listener),
        header: &lookup,
    })
}

/// The body's gate: 413 for a Content-Length over server.max-request-size (before
/// reading it), 100 Continue when the client waits for one; then the body to read.
fn body_gate(
    r: &Request,
    limit: u64,
    now: u64,
    out: &mut Out,
) -> Result<Option<Body>, &'static str> {
    let head = r.head;
    if let BodyKind::Length(n) = head.body {
        if limit > 0 && n > limit {
            return Err("Content-Length larger than server.max-request-size");
        }
    }
    if head.body == BodyKind::None {
        return Ok(None);
    }
    if r.wants_continue {
        crate::h1::interim_continue(out);
    }
    let names = request::header(r.buf, r.fields, b"trailer");
    Ok(Some(Body::new(head.body, limit, now, names)))
}

/// server.error-handler-404 / server.error-handler, when the handler answered
/// with an error: the request again for the handler's target, through every stage
/// (its conditions evaluated for that target), as lighttpd's
/// http_response_call_error_handler. The status is kept for server.error-handler
/// (and REDIRECT_STATUS), replaced by the handler's for -404.
fn error_handler(r: &Request, view: &View, status: u16, rq: &Rq, early: bool) -> Option<Internal> {
    let (target, keep_status) = if status == 404 && !view.error_handler_404.is_empty() {
        (view.error_handler_404, false)
    } else if status >= 400 && !view.error_handler.is_empty() {
        (view.error_handler, true)
    } else {
        return None;
    };
    let (buf, head) = (r.buf, r.head);
    Some(Internal {
        saved: Saved {
            buf: buf.to_vec(),
            head: head.clone(),
            fields: r.fields.to_vec(),
        },
        target: target.as_bytes().to_vec(),
        method_get: false,
        info: InternalInfo {
            fields: match (status, early) {
                (401, true) => rq.answer_fields.clone(),
                _ => Vec::new(),
            },
            orig_target: String::from_utf8_lossy(head.target.of(buf)).into_owned(),
            new_target: target.to_string(),
            loops: 0,
            error: Some((status, keep_status)),
        },
    })
}
