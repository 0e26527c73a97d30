//! A CGI request begun: the facts the spawner needs, and the job that waits
//! for the script.

use crate::request::{BodyKind, Field, Head, Method, Version};
use crate::response::Out;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use wick_conf::View;
use wick_proto::spawner::{CgiLimits, CgiRequest, FromWorkerToSpawner, HttpVersion};

use super::*;
use crate::pipeline::{InternalInfo, Saved};

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
    pub listener: u16,
    pub fd: RawFd,
    pub blocks: Vec<u32>,
    /// Set when this request is an internal one.
    pub internal: Option<InternalInfo>,
    /// Its access log line, written when the response is complete (mod_accesslog).
    pub log: Option<Box<crate::mods::accesslog::Pending>>,
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
pub fn begin(p: Parts<'_>, view: &View, b: Begin<'_>) -> Box<Job> {
    let now = p.clock.mono;
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
    let version = b.head.version;
    let method = String::from_utf8_lossy(b.head.method_span.of(b.buf)).into_owned();
    let head_only = b.head.method == Method::Head;
    let script = String::from_utf8_lossy(&b.path[..b.script_len]).into_owned();
    let id = p.cgi.next_id;
    p.cgi.next_id += 1;
    let (orig_target, redirect_uri, error, loops) = match b.internal {
        Some(i) => (i.orig_target, Some(i.new_target), i.error, i.loops),
        None => (
            String::from_utf8_lossy(b.head.target.of(b.buf)).into_owned(),
            None,
            None,
            0,
        ),
    };
    let mut job = Box::new(Job {
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
        script,
        version,
        head_only,
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
        loops,
        saved: Saved {
            buf: b.buf.to_vec(),
            head: b.head.clone(),
            fields: b.fields.to_vec(),
        },
        log: None,
    });
    if let Some(l) = b.log {
        job.log = Some(crate::mods::accesslog::Tally::new(l, job.out.remaining()));
    }
    let path = match std::str::from_utf8(b.path) {
        Ok(p) => p.to_string(),
        Err(_) => {
            p.cgi
                .log
                .push(format!("mod_cgi: {}: the path is not UTF-8", job.script));
            fail(&mut job, p.clock, p.pages, 400);
            return job;
        }
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(b.fields.len());
    for f in b.fields {
        let name = String::from_utf8_lossy(f.name.of(b.buf)).into_owned();
        let value = String::from_utf8_lossy(f.value.of(b.buf)).into_owned();
        merge_header(&mut headers, name, value);
    }
    // setenv.add-request-header / set-request-header: as the script's HTTP_* too.
    for (name, value, _) in b.set_headers {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name.clone(), value.clone()));
        }
    }
    let local_addr = local_addr(b.fd, p.cfg, b.listener);
    let remote_port = b.peer_port;
    let req = CgiRequest {
        id,
        method,
        version: Some(match version {
            Version::Http10 => HttpVersion::Http10,
            Version::Http11 => HttpVersion::Http11,
        }),
        target: orig_target,
        redirect_uri,
        path,
        script_name_len: b.script_len as u32,
        query: String::from_utf8_lossy(b.query).into_owned(),
        host: b
            .head
            .host
            .map(|h| String::from_utf8_lossy(h.of(b.buf)).into_owned()),
        listener: u32::from(b.listener),
        local_addr,
        remote_addr: Some(b.peer),
        remote_port,
        tls: false,
        headers,
        content_length: match b.head.body {
            BodyKind::Length(n) => n,
            _ => 0,
        },
        auth: None,
        error_status: error.map(|e| e.0),
        blocks: b.blocks,
    };
    if p.cgi.chan.is_none() {
        p.cgi.log.push(format!(
            "mod_cgi: {}: no gateway-spawner to run it",
            job.script
        ));
        fail(&mut job, p.clock, p.pages, 503);
        return job;
    }
    if b.head.body == BodyKind::Chunked {
        job.stage = Stage::Collecting;
        job.req = Some(Box::new(req));
    } else {
        p.cgi.jobs.insert(id, p.cgi.current);
        p.cgi.send(FromWorkerToSpawner::Run(Box::new(req)));
    }
    job
}

/// Add a request header for the script, joined to one of the same name as lighttpd
/// joins them (", ", "; " for Cookie).
pub(super) fn merge_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    match headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(&name))
    {
        Some((k, v)) => {
            v.push_str(if k.eq_ignore_ascii_case("cookie") {
                "; "
            } else {
                ", "
            });
            v.push_str(&value);
        }
        None => headers.push((name, value)),
    }
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
