//! A CGI request begun: the facts the spawner needs, and the job that waits
//! for the script.

use crate::request::{BodyKind, Field, Head, Method, Version};
use crate::response::Out;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use wick_conf::View;
use wick_proto::cgienv::{self, CgiFacts, Headers, ServerAddr};
use wick_proto::spawner::{CgiLimits, CgiRequest, FromWorkerToSpawner, HttpVersion};

use super::*;
use crate::internal::{InternalInfo, Saved};
use crate::mods::status::count::Started;

/// Everything `begin` needs about the request.
pub struct Begin<'a> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub fields: &'a [Field],
    /// Decoded path (with an index file appended when one was selected).
    pub path: &'a [u8],
    pub script_len: usize,
    pub query: &'a [u8],
    pub keep_alive: bool,
    /// The client as mod_extforward left it (REMOTE_ADDR, REMOTE_PORT: lighttpd's
    /// is 0 for a forwarded address).
    pub peer: IpAddr,
    pub peer_port: u16,
    /// Request headers mod_setenv added or replaced (name, value; empty: removed).
    pub set_headers: &'a [(String, String, bool)],
    /// (REMOTE_USER, AUTH_TYPE) from mod_auth.
    pub auth: Option<(&'a str, &'static str)>,
    pub listener: u16,
    pub fd: RawFd,
    /// The condition blocks found true (mod_cgi's, for the spawner; empty for
    /// the gateways).
    pub blocks: Vec<u32>,
    /// The connection's TLS facts for the script (tls/env.rs).
    pub tls_env: Vec<(String, String)>,
    /// Set when this request is an internal one.
    pub internal: Option<InternalInfo>,
    /// Its access log line, written when the response is complete (mod_accesslog).
    pub log: Option<Box<crate::mods::accesslog::Pending>>,
    /// The request's response_start hooks, for the script's head.
    pub hooks: crate::mods::LaterHooks,
}

/// The worker pieces `begin` uses (the caller holds the rest of the context).
pub struct Parts<'a> {
    pub cgi: &'a mut Client,
    pub out: &'a mut Out,
    pub clock: &'a crate::date::Clock,
    pub pages: &'a crate::errors::Pages,
    pub cfg: &'a wick_conf::Config,
}

/// Start a CGI job for a request: the handler the connection steps from now on.
/// Output already produced for earlier pipelined requests (in `p.out`) moves into
/// the job, ahead of the script's response.
pub fn begin(p: Parts<'_>, view: &View, mut b: Begin<'_>) -> Box<Job> {
    let (limits, warnings) = CgiLimits::parse(view.cgi_limits);
    for w in warnings {
        p.cgi.log.push(format!("mod_cgi: {w}"));
    }
    let mut out = Out::default();
    if !p.out.is_empty() {
        out = p.out.take_rest();
    } else {
        p.out.clear();
    }
    let id = p.cgi.next_id;
    p.cgi.next_id += 1;
    let again = internal_run(&b);
    let mut job = new_job(id, out, view, &mut b, again, limits, p.clock.mono);
    job.counted = Started::new(b.head.method_span.of(b.buf), p.clock.at);
    if let Some(l) = b.log.take() {
        job.log = Some(crate::mods::accesslog::Tally::new(l, job.out.remaining()));
    }
    let Ok(path) = std::str::from_utf8(b.path) else {
        p.cgi
            .log
            .push(format!("mod_cgi: {}: the path is not UTF-8", job.script));
        fail(&mut job, p.clock, p.pages, 400);
        return job;
    };
    if p.cgi.chan.is_none() {
        p.cgi.log.push(format!(
            "mod_cgi: {}: no gateway-spawner to run it",
            job.script
        ));
        fail(&mut job, p.clock, p.pages, 503);
        return job;
    }
    let (run, headers) = (run_of(&b), headers(&b));
    let req = Box::new(request(id, &facts_of(&b, path, &run, &headers), &b, p.cfg));
    if job.whole {
        job.stage = Stage::Collecting;
        job.req = Some(req);
    } else {
        p.cgi.jobs.insert(id, p.cgi.current);
        p.cgi.send(FromWorkerToSpawner::Run(req));
    }
    job
}

/// Begin a job for a backend the worker talks to itself (mod_fastcgi, mod_scgi,
/// mod_proxy): the same job as for a script, without the spawner. `facts` gets
/// the request's facts borrowed from its buffers (no copy per header or
/// variable) and the listener's address when it asks (on a wildcard listener
/// that is a getsockname); None for its answer when the job failed already (it
/// then holds the error answer).
pub fn begin_socket<R>(
    p: Parts<'_>,
    view: &View,
    mut b: Begin<'_>,
    module: &'static str,
    facts: impl FnOnce(&CgiFacts<'_>, &dyn Fn() -> ServerAddr) -> R,
) -> (Box<Job>, Option<R>) {
    let mut out = Out::default();
    if !p.out.is_empty() {
        out = p.out.take_rest();
    } else {
        p.out.clear();
    }
    let again = internal_run(&b);
    let mut job = new_job(
        0,
        out,
        view,
        &mut b,
        again,
        CgiLimits::default(),
        p.clock.mono,
    );
    job.spawned = false;
    job.module = module;
    job.counted = Started::new(b.head.method_span.of(b.buf), p.clock.at);
    if let Some(l) = b.log.take() {
        job.log = Some(crate::mods::accesslog::Tally::new(l, job.out.remaining()));
    }
    let Ok(path) = std::str::from_utf8(b.path) else {
        p.cgi
            .log
            .push(format!("{module}: {}: the path is not UTF-8", job.script));
        fail(&mut job, p.clock, p.pages, 400);
        return (job, None);
    };
    let (run, headers) = (run_of(&b), headers(&b));
    let server = || {
        let local = local_addr(b.fd, p.cfg, b.listener);
        cgienv::server_addr(p.cfg, u32::from(b.listener), local)
    };
    let r = facts(&facts_of(&b, path, &run, &headers), &server);
    (job, Some(r))
}

/// An internal request's first status and redirect count, for the job.
fn internal_run(b: &Begin) -> (Option<(u16, bool)>, u8) {
    b.internal
        .as_ref()
        .map_or((None, 0), |i| (i.error, i.loops))
}

fn run_of<'a>(b: &'a Begin) -> Run<'a> {
    let query = String::from_utf8_lossy(b.query);
    let host = b.head.host.map(|h| String::from_utf8_lossy(h.of(b.buf)));
    match &b.internal {
        Some(i) => Run {
            target: Cow::Borrowed(&i.orig_target),
            redirect_uri: Some(&i.new_target),
            error: i.error,
            query,
            host,
        },
        None => Run {
            target: String::from_utf8_lossy(b.head.target.of(b.buf)),
            redirect_uri: None,
            error: None,
            query,
            host,
        },
    }
}

/// What the request is run as (the client's, or an internal one's), with the
/// texts that may need mending to be UTF-8.
struct Run<'a> {
    /// REQUEST_URI: the client's request-target.
    target: Cow<'a, str>,
    /// REDIRECT_URI of an internal request.
    redirect_uri: Option<&'a str>,
    /// An error handler's run: the first status, and whether it is kept.
    error: Option<(u16, bool)>,
    /// QUERY_STRING and the Host as sent.
    query: Cow<'a, str>,
    host: Option<Cow<'a, str>>,
}

/// The job for a request, waiting for the spawner.
fn new_job(
    id: u64,
    out: Out,
    view: &View,
    b: &mut Begin,
    (error, loops): (Option<(u16, bool)>, u8),
    limits: CgiLimits,
    now: u64,
) -> Box<Job> {
    Box::new(Job {
        id,
        stage: Stage::Waiting,
        pid: 0,
        stdin: None,
        stdout: None,
        stderr: None,
        inbuf: Vec::new(),
        inpos: 0,
        in_closed: false,
        body_open: b.head.body != BodyKind::None,
        // lighttpd collects a chunked body for CGI, FastCGI and SCGI in every
        // mode: they need its length.
        whole: b.head.body == BodyKind::Chunked
            || (b.head.body != BodyKind::None && *view.stream_request_body == 0),
        spool: None,
        read_ahead: matches!(b.head.body, BodyKind::Length(_)) && *view.stream_request_body == 1,
        intake: Vec::new(),
        resp_spill: *view.stream_response_body != 2,
        rspool: None,
        req: None,
        head: Vec::new(),
        framing: Framing::Head,
        pending: None,
        dechunk: None,
        out,
        errbuf: Vec::new(),
        read_ts: now,
        write_ts: now,
        limits,
        script: String::from_utf8_lossy(&b.path[..b.script_len]).into_owned(),
        version: b.head.version,
        head_only: b.head.method == Method::Head,
        keep_alive: b.keep_alive,
        started: false,
        tag: view.server_tag.clone(),
        local_redir: *view.cgi_local_redir,
        xsendfile: *view.cgi_x_sendfile,
        xsendfile_docroot: view.cgi_x_sendfile_docroot.clone(),
        lowercase: *view.force_lowercase_filenames,
        mimetypes: if *view.cgi_x_sendfile {
            view.mimetypes.clone()
        } else {
            Vec::new()
        },
        error_status: error,
        carried: b
            .internal
            .as_ref()
            .map(|i| i.fields.clone())
            .unwrap_or_default(),
        loops,
        saved: Saved {
            buf: b.buf.to_vec(),
            head: b.head.clone(),
            fields: b.fields.to_vec(),
        },
        log: None,
        hooks: std::mem::take(&mut b.hooks),
        zip: None,
        spawned: true,
        module: "mod_cgi",
        backend: String::new(),
        status: 0,
        counted: Default::default(),
    })
}

/// The request's header fields for the script, borrowed where they can be:
/// joined as lighttpd joins them (", ", "; " for Cookie), mod_setenv's applied.
fn headers<'a>(b: &'a Begin) -> Vec<(&'a str, Cow<'a, str>)> {
    let mut headers: Vec<(&str, Cow<str>)> = Vec::with_capacity(b.fields.len());
    for f in b.fields {
        // (a field name is a token: ASCII; a value that is not UTF-8 is mended)
        let Ok(name) = std::str::from_utf8(f.name.of(b.buf)) else {
            continue;
        };
        let value = String::from_utf8_lossy(f.value.of(b.buf));
        match headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((k, v)) => join_value(k, v.to_mut(), &value),
            None => headers.push((name, value)),
        }
    }
    // setenv.add-request-header / set-request-header: as the script's HTTP_* too.
    for (name, value, _) in b.set_headers {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name, Cow::Borrowed(value)));
        }
    }
    headers
}

fn version_of(v: Version) -> HttpVersion {
    match v {
        Version::Http10 => HttpVersion::Http10,
        Version::Http11 => HttpVersion::Http11,
        Version::Http2 => HttpVersion::Http2,
    }
}

/// The request's facts for its environment, borrowed from its buffers.
fn facts_of<'a>(
    b: &'a Begin,
    path: &'a str,
    run: &'a Run,
    headers: &'a [(&'a str, Cow<'a, str>)],
) -> CgiFacts<'a> {
    CgiFacts {
        // (a method is a token: ASCII)
        method: std::str::from_utf8(b.head.method_span.of(b.buf)).unwrap_or(""),
        version: Some(version_of(b.head.version)),
        target: &run.target,
        redirect_uri: run.redirect_uri,
        path,
        script_name_len: b.script_len,
        query: &run.query,
        host: run.host.as_deref(),
        remote_addr: Some(b.peer),
        remote_port: b.peer_port,
        tls: !b.tls_env.is_empty(),
        headers: Headers::Borrowed(headers),
        content_length: match b.head.body {
            BodyKind::Length(n) => n,
            _ => 0,
        },
        auth: b.auth,
        error_status: run.error.map(|e| e.0),
        tls_env: &b.tls_env,
    }
}

/// The facts the spawner gets: the request's (`f`), the addresses, the blocks
/// that matched.
fn request(id: u64, f: &CgiFacts, b: &Begin, cfg: &wick_conf::Config) -> CgiRequest {
    CgiRequest {
        id,
        method: f.method.to_string(),
        version: f.version,
        target: f.target.to_string(),
        redirect_uri: f.redirect_uri.map(str::to_string),
        path: f.path.to_string(),
        script_name_len: f.script_name_len as u32,
        query: f.query.to_string(),
        host: f.host.map(str::to_string),
        listener: u32::from(b.listener),
        local_addr: local_addr(b.fd, cfg, b.listener),
        remote_addr: f.remote_addr,
        remote_port: f.remote_port,
        tls: f.tls,
        headers: f.headers.to_owned_list(),
        content_length: f.content_length,
        auth: f.auth.map(|(u, t)| (u.to_string(), t.to_string())),
        error_status: f.error_status,
        blocks: b.blocks.clone(),
        tls_env: b.tls_env.clone(),
    }
}

/// Add a request header for the script, joined to one of the same name as lighttpd
/// joins them (", ", "; " for Cookie).
pub(crate) fn merge_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    match headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(&name))
    {
        Some((k, v)) => join_value(k, v, &value),
        None => headers.push((name, value)),
    }
}

/// A repeated field's value joined to the first one's: ", ", or "; " for Cookie.
fn join_value(name: &str, into: &mut String, value: &str) {
    into.push_str(if name.eq_ignore_ascii_case("cookie") {
        "; "
    } else {
        ", "
    });
    into.push_str(value);
}

/// The connection's local address, for SERVER_ADDR on a wildcard listener.
pub(super) fn local_addr(fd: RawFd, cfg: &wick_conf::Config, listener: u16) -> Option<SocketAddr> {
    let wildcard = matches!(
        cfg.listeners.get(listener as usize).map(|l| &l.addr),
        Some(wick_conf::ListenAddr::Tcp(a)) if a.ip().is_unspecified()
    );
    if wildcard {
        crate::sys::sockname(fd)
    } else {
        None
    }
}
