//! mod_cgi in the worker. The worker never forks: it asks the gateway-spawner to run
//! the script ([`Client`]: the worker's channel to it, one [`Job`] per request), gets
//! the script's stdin, stdout and stderr back as fds, and moves bytes between them and
//! the client in its event loop: the request body streamed to stdin (reading from the
//! client pauses while the script does not read), the response head parsed
//! ([`resp`]), the body framed for the client (as the script's Content-Length says,
//! else chunked to HTTP/1.1 clients, else until close), stderr lines to the error log.
//! The spawner re-checks everything; the worker's own checks only decide which
//! handler a request goes to.

mod module;
pub mod resp;

pub use module::ModCgi;

use crate::chunked::Decoder;
use crate::ctx::Ctx;
use crate::handler::Want;
use crate::request::{BodyKind, Field, Head, Method, Version};
use crate::response::Out;
use crate::stat_cache::{Found, Root};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use resp::{Parsed, RespHead};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use wick_conf::View;
use wick_proto::spawner::{
    CgiLimits, CgiRequest, FinishReason, FromWorkerToSpawner, HttpVersion, SpawnerToWorker,
};
use wick_proto::{Channel, WorkerEnd};

/// Poll token of the channel to the spawner.
pub const SPAWNER: Token = Token(usize::MAX - 2);
/// Pipe tokens: base + connection key * 4 + which pipe.
pub const TOKEN_BASE: usize = 1 << 42;
const STDIN: usize = 0;
const STDOUT: usize = 1;
const STDERR: usize = 2;

/// Request body bytes held for a script's stdin before reading from the client pauses.
const IN_HIGH: usize = 64 * 1024;
/// Response bytes queued for the client before reading from the script pauses.
const OUT_HIGH: usize = 256 * 1024;
/// A chunked request body is collected before the script starts (CGI needs
/// CONTENT_LENGTH): at most this much, or server.max-request-size if smaller.
const COLLECT_MAX: u64 = 16 << 20;
/// Bytes of one stderr line kept for the log.
const ERR_LINE: usize = 4096;

pub fn pipe_token(key: usize, pipe: usize) -> Token {
    Token(TOKEN_BASE + key * 4 + pipe)
}

/// The connection a pipe token belongs to.
pub fn token_key(t: Token) -> usize {
    (t.0 - TOKEN_BASE) / 4
}

/// The worker's side of the spawner: its channel, the jobs it runs for us, and log
/// lines for the server to write.
pub struct Client {
    /// mod_cgi is in server.modules.
    pub enabled: bool,
    chan: Option<WorkerEnd>,
    /// Messages the channel did not take yet.
    queue: VecDeque<FromWorkerToSpawner>,
    next_id: u64,
    /// Job id → connection key.
    jobs: HashMap<u64, usize>,
    /// The connection the server is driving (set before `Conn::drive`).
    pub current: usize,
    /// Lines for the error log.
    pub log: Vec<String>,
    /// Jobs of a spawner channel that was replaced.
    orphans: Vec<(u64, usize)>,
}

/// What a CGI started by an internal request reports about it.
#[derive(Debug, Clone)]
pub struct InternalInfo {
    /// The client's request-target (REQUEST_URI).
    pub orig_target: String,
    /// The target run now (REDIRECT_URI).
    pub new_target: String,
    pub loops: u8,
    /// An error handler: the original status, and whether the handler's 200 is
    /// replaced by it (server.error-handler).
    pub error: Option<(u16, bool)>,
}

impl Client {
    pub fn new(enabled: bool) -> Client {
        Client {
            enabled,
            chan: None,
            queue: VecDeque::new(),
            next_id: 1,
            jobs: HashMap::new(),
            current: 0,
            log: Vec::new(),
            orphans: Vec::new(),
        }
    }

    /// A (new) channel to the spawner; the old one, if any, is dropped.
    pub fn set_channel(&mut self, fd: OwnedFd, reg: &Registry) -> io::Result<()> {
        if let Some(old) = self.chan.take() {
            let _ = reg.deregister(&mut SourceFd(&old.as_raw_fd()));
            // Scripts asked of the old spawner will never start (see spawner_event).
            self.orphans.extend(self.jobs.drain());
        }
        let ch = WorkerEnd::new(Channel::from_fd(fd));
        ch.set_nonblocking(true)?;
        reg.register(
            &mut SourceFd(&ch.as_raw_fd()),
            SPAWNER,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.chan = Some(ch);
        self.queue.clear();
        Ok(())
    }

    fn send(&mut self, m: FromWorkerToSpawner) {
        self.queue.push_back(m);
        self.flush();
    }

    fn flush(&mut self) {
        let Some(ch) = &self.chan else {
            self.queue.clear();
            return;
        };
        while let Some(m) = self.queue.front() {
            match ch.send(m, &[]) {
                Ok(()) => {
                    self.queue.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.queue.clear();
                    return;
                }
            }
        }
    }

    fn finish(&mut self, id: u64, reason: FinishReason) {
        self.jobs.remove(&id);
        self.send(FromWorkerToSpawner::Finish { id, reason });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading a chunked request body before asking for the script.
    Collecting,
    /// Asked the spawner; waiting for the pipes.
    Waiting,
    Running,
    /// The response is complete (or an error response replaced it).
    Done,
}

/// How response body bytes go to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The head is not parsed yet.
    Head,
    /// Content-Length: this many bytes still to send.
    Length(u64),
    /// Chunked to an HTTP/1.1 client.
    Chunked,
    /// Until the script ends; the connection closes after.
    UntilClose,
    /// Nothing more goes to the client (HEAD, X-Sendfile).
    Discard,
    /// No length from the script: the head waits in `Job::pending` with the body
    /// read so far. A response that ends within about a second gets Content-Length
    /// (lighttpd buffers whole responses); one that goes on streams, chunked.
    Pending,
}

/// A response head held back (Framing::Pending) with the body read so far.
#[derive(Debug)]
struct PendingHead {
    head: RespHead,
    status: u16,
    body: Vec<u8>,
    /// Monotonic second the head came.
    since: u64,
}

/// The owned copy of a request a job keeps for internal redirects.
#[derive(Debug, Clone)]
pub struct Saved {
    pub buf: Vec<u8>,
    pub head: Head,
    pub fields: Vec<Field>,
}

/// One CGI request on a connection.
#[derive(Debug)]
pub struct Job {
    id: u64,
    stage: Stage,
    pid: u32,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// Request body for the script: `inbuf[inpos..]` is not written yet.
    inbuf: Vec<u8>,
    inpos: usize,
    /// The script stopped reading its stdin: the rest of the body is thrown away.
    in_closed: bool,
    /// The connection is still reading the request body for us.
    body_open: bool,
    /// The request, kept until it can be sent (a chunked body is being collected).
    req: Option<Box<CgiRequest>>,
    /// Response head bytes until the head is complete.
    head: Vec<u8>,
    framing: Framing,
    /// The script sent Transfer-Encoding: chunked.
    dechunk: Option<Decoder>,
    /// Framing::Pending: the head waiting for a framing.
    pending: Option<Box<PendingHead>>,
    /// Response bytes for the client.
    out: Out,
    errbuf: Vec<u8>,
    read_ts: u64,
    write_ts: u64,
    limits: CgiLimits,
    /// SCRIPT_NAME, for log lines.
    script: String,
    version: Version,
    head_only: bool,
    keep_alive: bool,
    /// The response head went into `out`.
    started: bool,
    tag: String,
    local_redir: bool,
    xsendfile: bool,
    xsendfile_docroot: Vec<String>,
    lowercase: bool,
    /// mimetype.assign, for an X-Sendfile file without a Content-Type (only kept
    /// when cgi.x-sendfile is on).
    mimetypes: Vec<(String, String)>,
    /// An error handler run: the original status, and whether a 200 from the
    /// handler is replaced by it (server.error-handler, not -404).
    error_status: Option<(u16, bool)>,
    /// Internal redirects so far (lighttpd allows 5).
    loops: u8,
    saved: Saved,
    /// mod_accesslog: the line, the status and the bytes sent.
    log: Option<crate::mods::accesslog::Tally>,
}

/// An internal request to run: a local redirect or an error handler. The saved
/// head is sent again with another target (and method), without its body.
pub struct Internal {
    pub saved: Saved,
    /// The new target (path and query, undecoded).
    pub target: Vec<u8>,
    pub method_get: bool,
    pub info: InternalInfo,
}

/// A script found for a request: how much of the path names it.
pub struct Selected {
    /// Length of SCRIPT_NAME in the (possibly index-extended) path.
    pub script_len: usize,
    /// The path with an index file appended, when the request named a directory.
    pub path: Option<Vec<u8>>,
}

/// Does this request go to mod_cgi? As lighttpd decides: the physical path exists as
/// a regular file (path info allowed), its name ends with a cgi.assign key, and with
/// cgi.execute-x-only it has an x bit. A directory's index files count too.
pub fn select(
    ctx_roots: &mut crate::static_file::Roots,
    cache: &mut crate::stat_cache::StatCache,
    now: u64,
    view: &View,
    path: &[u8],
) -> Option<Selected> {
    if view.cgi_assign.is_empty() || !path.starts_with(b"/") {
        return None;
    }
    let (dirfd, id) = ctx_roots.get(view.document_root, now)?;
    let root = Root::Beneath {
        dirfd,
        id,
        symlinks: *view.follow_symlink,
    };
    let mut p = path.to_vec();
    if *view.force_lowercase_filenames {
        p.make_ascii_lowercase();
    }
    let assigned = |name: &[u8]| {
        let mut phys = view.document_root.trim_end_matches('/').as_bytes().to_vec();
        phys.extend_from_slice(name);
        view.cgi_assign
            .iter()
            .any(|(ext, _)| phys.ends_with(ext.as_bytes()))
    };
    let executable =
        |name: &[u8]| !*view.cgi_execute_x_only || has_x_bit(dirfd, name, *view.follow_symlink);
    match cache.lookup(root, &p, now) {
        Found::File { file_len, .. } => {
            let name = &p[..file_len];
            (assigned(name) && executable(name)).then_some(Selected {
                script_len: file_len,
                path: None,
            })
        }
        Found::Dir if p.ends_with(b"/") => {
            for idx in view.index_files.iter() {
                let mut cand = if let Some(abs) = idx.strip_prefix('/') {
                    let mut v = b"/".to_vec();
                    v.extend_from_slice(abs.as_bytes());
                    v
                } else {
                    let mut v = p.clone();
                    v.extend_from_slice(idx.as_bytes());
                    v
                };
                if *view.force_lowercase_filenames {
                    cand.make_ascii_lowercase();
                }
                if let Found::File { file_len, .. } = cache.lookup(root, &cand, now) {
                    if file_len != cand.len() {
                        continue;
                    }
                    if assigned(&cand) && executable(&cand) {
                        return Some(Selected {
                            script_len: cand.len(),
                            path: Some(cand),
                        });
                    }
                    // The index file is not a script: static handling serves it.
                    return None;
                }
            }
            None
        }
        _ => None,
    }
}

fn has_x_bit(dirfd: RawFd, name: &[u8], symlinks: bool) -> bool {
    let rel = name.strip_prefix(b"/").unwrap_or(name);
    let mut c = rel.to_vec();
    c.push(0);
    let Ok(cs) = std::ffi::CStr::from_bytes_with_nul(&c) else {
        return false;
    };
    let resolve = 0x08 | 0x02 | if symlinks { 0 } else { 0x04 };
    let flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    match crate::stat_cache::openat2(dirfd, cs, flags, resolve) {
        Ok(fd) => crate::stat_cache::fstat(fd.as_raw_fd())
            .is_ok_and(|st| st.st_mode & (libc::S_IXUSR | libc::S_IXGRP | libc::S_IXOTH) != 0),
        Err(_) => false,
    }
}

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
fn merge_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
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
fn local_addr(fd: RawFd, cfg: &wick_conf::Config, listener: u16) -> Option<SocketAddr> {
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

/// Replace the response with an error page (nothing was sent yet) and end the job.
fn fail(job: &mut Job, clock: &crate::date::Clock, pages: &crate::errors::Pages, status: u16) {
    job.stage = Stage::Done;
    job.framing = Framing::Discard;
    job.pending = None;
    job.stdin = None;
    job.stdout = None;
    if job.started {
        // Part of the response is out: the connection must end.
        job.keep_alive = false;
        return;
    }
    job.started = true;
    let mark = job.out.buf.len();
    // (a failed script is rare: its head is not worth a shared buffer)
    crate::static_file::simple_error(
        &mut job.out,
        &mut crate::resp_head::ResponseHead::default(),
        clock,
        pages,
        &job.tag,
        job.version,
        status,
        job.keep_alive,
        job.head_only,
    );
    if let Some(l) = &mut job.log {
        l.head(status, &job.out.buf[mark..]);
    }
}

/// The jobs of a worker's connections, found by connection key and job id (the
/// server implements it over its connections; cgi does not know connections).
pub trait Jobs {
    fn job(&mut self, key: usize, id: u64) -> Option<&mut Job>;
}

/// The spawner's channel is readable (or writable): handle its answers. Returns the
/// connections to drive.
pub fn spawner_event(conns: &mut impl Jobs, ctx: &mut Ctx, reg: &Registry) -> Vec<usize> {
    ctx.cgi.flush();
    let mut drive = Vec::new();
    for (id, key) in std::mem::take(&mut ctx.cgi.orphans) {
        if let Some(job) = conns.job(key, id) {
            if job.stage == Stage::Waiting {
                fail(job, &ctx.clock, &ctx.pages, 503);
                drive.push(key);
            }
        }
    }
    while let Some(ch) = ctx.cgi.chan.as_mut() {
        let (msg, fds) = match ch.recv() {
            Ok(Some(m)) => m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Ok(None) | Err(_) => {
                // The spawner is gone: scripts not started yet never will be.
                if let Some(old) = ctx.cgi.chan.take() {
                    let _ = reg.deregister(&mut SourceFd(&old.as_raw_fd()));
                }
                ctx.cgi
                    .log
                    .push("mod_cgi: the gateway-spawner closed its channel".into());
                let waiting: Vec<(u64, usize)> = ctx.cgi.jobs.drain().collect();
                for (id, key) in waiting {
                    if let Some(job) = conns.job(key, id) {
                        if job.stage == Stage::Waiting {
                            fail(job, &ctx.clock, &ctx.pages, 503);
                            drive.push(key);
                        }
                    }
                }
                break;
            }
        };
        match msg {
            SpawnerToWorker::Started { id, pid } => {
                let key = ctx.cgi.jobs.get(&id).copied();
                let now = ctx.clock.mono;
                let job = key.and_then(|k| conns.job(k, id));
                let (Some(key), Some(job), [i, o, e]) = (key, job, &fds[..]) else {
                    // Nobody waits for it any more (client gone, or a bad answer).
                    ctx.cgi.finish(id, FinishReason::ClientGone);
                    continue;
                };
                if job.stage != Stage::Waiting {
                    ctx.cgi.finish(id, FinishReason::ClientGone);
                    continue;
                }
                let ok = [
                    (i, STDIN, Interest::WRITABLE),
                    (o, STDOUT, Interest::READABLE),
                    (e, STDERR, Interest::READABLE),
                ]
                .iter()
                .all(|(fd, which, int)| {
                    crate::sys::set_nonblocking(fd.as_raw_fd());
                    reg.register(
                        &mut SourceFd(&fd.as_raw_fd()),
                        pipe_token(key, *which),
                        *int,
                    )
                    .is_ok()
                });
                let mut fds = fds.into_iter();
                job.stdin = fds.next();
                job.stdout = fds.next();
                job.stderr = fds.next();
                job.pid = pid;
                job.stage = Stage::Running;
                job.read_ts = now;
                job.write_ts = now;
                if !ok {
                    ctx.cgi
                        .log
                        .push(format!("mod_cgi: {}: cannot watch its pipes", job.script));
                    fail(job, &ctx.clock, &ctx.pages, 500);
                    ctx.cgi.finish(id, FinishReason::Error);
                }
                drive.push(key);
            }
            SpawnerToWorker::Refused { id, status, reason } => {
                let key = ctx.cgi.jobs.remove(&id);
                if let Some(key) = key {
                    if let Some(job) = conns.job(key, id) {
                        ctx.cgi
                            .log
                            .push(format!("mod_cgi: {} not run: {reason}", job.script));
                        fail(job, &ctx.clock, &ctx.pages, status);
                        drive.push(key);
                    }
                }
            }
            SpawnerToWorker::Exited { .. } => {}
        }
    }
    drive
}

/// How one turn of the job went (internal to the job's step).
enum Pump {
    Wait,
    Progress,
    Close,
    /// Stop reading the request body and answer with this status.
    Refuse(u16),
    Done,
    Redirect(Box<Internal>),
}

impl Job {
    /// One turn: the collected body starts the script, body bytes to its stdin,
    /// its stdout to the response, stderr lines to the log, the response to the
    /// client.
    fn pump(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
        rbuf: &mut [u8],
    ) -> Pump {
        let job = self;
        let now = ctx.clock.mono;
        let mut progress = false;
        let body_open = job.body_open;

        // 2. A collected chunked body is complete: now the script can start.
        // (server.max-request-size is the body's own limit; this bounds memory.)
        if job.stage == Stage::Collecting {
            if job.inbuf.len() as u64 > COLLECT_MAX {
                return Pump::Refuse(413);
            }
            if !body_open {
                if let Some(mut req) = job.req.take() {
                    req.content_length = job.inbuf.len() as u64;
                    job.stage = Stage::Waiting;
                    ctx.cgi.jobs.insert(job.id, ctx.cgi.current);
                    ctx.cgi.send(FromWorkerToSpawner::Run(req));
                    progress = true;
                }
            }
        }

        // 3. Body to the script's stdin.
        if let Some(fd) = &job.stdin {
            if job.inpos < job.inbuf.len() {
                match crate::sys::write(fd.as_raw_fd(), &job.inbuf[job.inpos..]) {
                    Ok(n) => {
                        job.inpos += n;
                        job.write_ts = now;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        // The script closed its stdin: the rest of the body is dropped.
                        job.in_closed = true;
                        job.stdin = None;
                        progress = true;
                    }
                }
                if job.inpos == job.inbuf.len() || job.inpos > IN_HIGH {
                    job.inbuf.drain(..job.inpos);
                    job.inpos = 0;
                }
            }
            if job.inpos >= job.inbuf.len() && !body_open {
                job.stdin = None; // EOF for the script
            }
        } else if job.in_closed && job.inpos < job.inbuf.len() {
            job.inbuf.clear();
            job.inpos = 0;
        }

        // 4. The script's stdout: everything it has (up to OUT_HIGH) before writing
        // to the client, so that a short response and its end leave in one write
        // (two small writes would meet Nagle and the client's delayed ACK).
        while job.stdout.is_some()
            && job.out.remaining() < OUT_HIGH as u64
            && job.pending.as_ref().is_none_or(|p| p.body.len() < OUT_HIGH)
        {
            let fd = job.stdout.as_ref().map_or(-1, |f| f.as_raw_fd());
            let r = crate::sys::read(fd, rbuf);
            let step = match r {
                Ok(n) if n > 0 => {
                    job.read_ts = now;
                    progress = true;
                    stdout_data(ctx, job, &rbuf[..n])
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    break;
                }
                // EOF (or a read error, which ends the output the same way).
                _ => {
                    job.stdout = None;
                    progress = true;
                    stdout_eof(ctx, job)
                }
            };
            if let Some(s) = step {
                return s;
            }
        }

        // 5. stderr lines to the error log.
        if let Some(fd) = &job.stderr {
            match crate::sys::read(fd.as_raw_fd(), rbuf) {
                Ok(0) => {
                    job.stderr = None;
                    flush_err(ctx, job, true);
                }
                Ok(n) => {
                    job.errbuf.extend_from_slice(&rbuf[..n]);
                    flush_err(ctx, job, false);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => job.stderr = None,
            }
        }

        // 6. Response bytes to the client. A pending head waits for the end of the
        // output (then it has a length) until OUT_HIGH bytes or about a second
        // (tick) make it stream.
        if job
            .pending
            .as_ref()
            .is_some_and(|p| p.body.len() >= OUT_HIGH)
        {
            commit_head(ctx, job, false);
        }
        if !job.out.is_empty() {
            let before = job.out.remaining();
            let r = client.send(&mut job.out, now);
            if let Some(l) = &mut job.log {
                l.sent(before.saturating_sub(job.out.remaining()));
            }
            match r {
                Ok(true) => {
                    job.out.clear();
                    progress = true;
                }
                Ok(false) => progress |= job.out.remaining() != before,
                Err(_) => return Pump::Close,
            }
        }

        // 7. Done when the script's output is all read (stderr may trail).
        if job.stage == Stage::Done && job.stdout.is_none() {
            return Pump::Done;
        }
        if progress {
            Pump::Progress
        } else {
            Pump::Wait
        }
    }

    /// The job is over: what the script wrote to stderr before it ended is logged,
    /// the access-log line closed; the connection sends the rest of `out`.
    fn complete(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) {
        ctx.cgi.jobs.remove(&self.id);
        if let Some(fd) = self.stderr.take() {
            for _ in 0..16 {
                match crate::sys::read(fd.as_raw_fd(), rbuf) {
                    Ok(n) if n > 0 => self.errbuf.extend_from_slice(&rbuf[..n]),
                    _ => break,
                }
            }
        }
        if !self.errbuf.is_empty() {
            flush_err(ctx, self, true);
        }
        if let (Some(l), Some(a)) = (self.log.take(), ctx.site.mods.accesslog.as_deref()) {
            l.finish(a, self.out.remaining());
        }
    }
}

impl Job {
    /// The handle the worker and the spawner know this job by.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl crate::handler::Handler for Job {
    fn body_room(&mut self) -> Option<&mut Vec<u8>> {
        let pending = self.inbuf.len() - self.inpos;
        let room = pending < IN_HIGH || self.in_closed || self.stage == Stage::Collecting;
        room.then_some(&mut self.inbuf)
    }

    fn body_done(&mut self, _ctx: &mut Ctx, trailers: Vec<(String, String)>) {
        self.body_open = false;
        // The script is asked for once a chunked body is in: its HTTP_* include them.
        if let Some(req) = self.req.as_mut() {
            for (name, value) in trailers {
                merge_header(&mut req.headers, name, value);
            }
        }
    }

    fn client_fin(&mut self, ctx: &mut Ctx) {
        // The response still goes out, then the close; with cgi.limits
        // tcp-fin-propagate the script gets a signal.
        self.keep_alive = false;
        let sig = self.limits.signal_fin;
        if sig != 0 && matches!(self.stage, Stage::Waiting | Stage::Running) {
            ctx.cgi.send(FromWorkerToSpawner::Signal {
                id: self.id,
                signal: sig,
            });
        }
    }

    fn step(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
        rbuf: &mut [u8],
    ) -> crate::handler::Step {
        use crate::handler::Step;
        match self.pump(ctx, client, rbuf) {
            Pump::Wait => Step::Wait,
            Pump::Progress => Step::Progress,
            Pump::Close => Step::Close,
            Pump::Refuse(status) => Step::Refuse(status),
            Pump::Redirect(ir) => {
                ctx.cgi.jobs.remove(&self.id);
                Step::Redirect(ir)
            }
            Pump::Done => {
                self.complete(ctx, rbuf);
                Step::Done {
                    out: std::mem::take(&mut self.out),
                    keep_alive: self.keep_alive,
                }
            }
        }
    }

    fn abort(&mut self, ctx: &mut Ctx, status: Option<u16>) {
        match status {
            None => match self.stage {
                Stage::Waiting | Stage::Running => {
                    ctx.cgi.finish(self.id, FinishReason::ClientGone)
                }
                Stage::Collecting | Stage::Done => {
                    ctx.cgi.jobs.remove(&self.id);
                }
            },
            Some(status) => {
                self.body_open = false;
                if matches!(self.stage, Stage::Waiting | Stage::Running) {
                    ctx.cgi.finish(self.id, FinishReason::Error);
                }
                self.keep_alive = false;
                fail(self, &ctx.clock, &ctx.pages, status);
            }
        }
    }

    /// Readable always (the body, or the client going away); writable while
    /// response bytes wait.
    fn want(&self) -> Want {
        if self.out.is_empty() {
            Want::READ
        } else {
            Want::READ | Want::WRITE
        }
    }

    /// The write timeout while the client does not take the response; the
    /// script's own limits (tick) otherwise.
    fn timeout(&self, write_idle: u64) -> u64 {
        if self.out.is_empty() {
            u64::MAX
        } else {
            write_idle
        }
    }

    /// cgi.limits read-timeout and write-timeout. Without a read-timeout, a script
    /// that says nothing for server.max-write-idle seconds once its request body is
    /// in ends the same way: a request never waits on a silent script for ever.
    fn tick(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        let job = self;
        let body_open = job.body_open;
        let l = job.limits;
        let read_limit = match l.read_timeout {
            0 if body_open => 0,
            0 => ctx.site.write_idle,
            t => t,
        };
        if !job.out.is_empty() {
            // Waiting for the client, not the script (max-write-idle covers it).
            job.read_ts = now;
        }
        if job.pending.as_ref().is_some_and(|p| now > p.since + 1) {
            // A script still at work a second after its head: what it said streams.
            commit_head(ctx, job, false);
            return true;
        }
        // Waiting: the spawner has not started it yet (read_ts is the request's start).
        let silent = match job.stage {
            Stage::Running => job.stdout.is_some(),
            Stage::Waiting => true,
            Stage::Collecting | Stage::Done => return false,
        };
        let what = if read_limit > 0 && silent && now.saturating_sub(job.read_ts) > read_limit {
            "read"
        } else if l.write_timeout > 0
            && job.stdin.is_some()
            && job.inpos < job.inbuf.len()
            && now.saturating_sub(job.write_ts) > l.write_timeout
        {
            "write"
        } else {
            return false;
        };
        ctx.cgi.log.push(format!(
            "mod_cgi: {what} timeout on CGI: {} (pid: {})",
            job.script, job.pid
        ));
        let id = job.id;
        fail(job, &ctx.clock, &ctx.pages, 504);
        ctx.cgi.finish(id, FinishReason::Timeout);
        true
    }

    fn started(&self) -> bool {
        self.started
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn flush_err(ctx: &mut Ctx, job: &mut Job, all: bool) {
    while let Some(nl) = memchr::memchr(b'\n', &job.errbuf) {
        let line: Vec<u8> = job.errbuf.drain(..=nl).collect();
        let line = &line[..line.len() - 1];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        ctx.cgi.log.push(format!(
            "mod_cgi: {}: {}",
            job.script,
            String::from_utf8_lossy(&line[..line.len().min(ERR_LINE)])
        ));
    }
    if (all && !job.errbuf.is_empty()) || job.errbuf.len() > ERR_LINE {
        let line = std::mem::take(&mut job.errbuf);
        ctx.cgi.log.push(format!(
            "mod_cgi: {}: {}",
            job.script,
            String::from_utf8_lossy(&line[..line.len().min(ERR_LINE)])
        ));
    }
}

/// Bytes from the script's stdout.
fn stdout_data(ctx: &mut Ctx, job: &mut Job, data: &[u8]) -> Option<Pump> {
    if job.framing != Framing::Head {
        body_bytes(ctx, job, data);
        return None;
    }
    job.head.extend_from_slice(data);
    match resp::parse(&job.head) {
        Parsed::Partial => None,
        Parsed::NoHeaders => {
            let body = std::mem::take(&mut job.head);
            start_response(ctx, job, RespHead::default(), 200);
            body_bytes(ctx, job, &body);
            None
        }
        Parsed::Malformed(why) => malformed(ctx, job, &why, 500),
        Parsed::BadStatusLine(why) => malformed(ctx, job, &why, 502),
        Parsed::Head(h) => {
            let rest = job.head.split_off(h.len);
            job.head.clear();
            if h.effective_status() < 200 && h.effective_status() != 101 {
                // 1xx from a script: dropped; the real head follows.
                job.head = rest;
                return stdout_data(ctx, job, &[]);
            }
            if job.local_redir && rest.is_empty() {
                if let Some(loc) = h.local_redirect() {
                    return local_redirect(ctx, job, &h, loc.as_bytes().to_vec());
                }
            }
            if job.xsendfile {
                let file = h.get("x-sendfile").map(str::to_string);
                if let Some(f) = file {
                    return x_sendfile(ctx, job, h, &f);
                }
            }
            let status = h.effective_status();
            start_response(ctx, job, h, status);
            body_bytes(ctx, job, &rest);
            None
        }
    }
}

/// A response head that cannot be sent: logged, and an error page instead.
fn malformed(ctx: &mut Ctx, job: &mut Job, why: &str, status: u16) -> Option<Pump> {
    ctx.cgi.log.push(format!(
        "mod_cgi: malformed response from {} (pid {}): {why}",
        job.script, job.pid
    ));
    let id = job.id;
    fail(job, &ctx.clock, &ctx.pages, status);
    ctx.cgi.finish(id, FinishReason::Error);
    Some(Pump::Done)
}

/// The script's output ended.
fn stdout_eof(ctx: &mut Ctx, job: &mut Job) -> Option<Pump> {
    if job.framing == Framing::Head {
        if job.head.is_empty() {
            if job.stage != Stage::Done {
                ctx.cgi.log.push(format!(
                    "mod_cgi: {} (pid {}) ended without a response",
                    job.script, job.pid
                ));
                fail(job, &ctx.clock, &ctx.pages, 500);
            }
        } else {
            // Unfinished header lines are a body in reality (lighttpd).
            let body = std::mem::take(&mut job.head);
            start_response(ctx, job, RespHead::default(), 200);
            body_bytes(ctx, job, &body);
        }
    }
    commit_head(ctx, job, true);
    match job.framing {
        Framing::Chunked => {
            // The script's own chunked trailers go on to the client, as lighttpd
            // passes them (dropped when the response has a length).
            let trailers = job.dechunk.as_ref().map_or(&[][..], |d| d.trailers());
            job.out.put(b"0\r\n");
            job.out.put(trailers);
            job.out.put(b"\r\n");
        }
        Framing::Length(n) if n > 0 => {
            // Shorter than promised: only closing tells the client.
            job.keep_alive = false;
        }
        _ => {}
    }
    if job.stage != Stage::Done {
        job.stage = Stage::Done;
        ctx.cgi.finish(job.id, FinishReason::Done);
    }
    None
}

/// Response body bytes as the framing says.
fn body_bytes(ctx: &mut Ctx, job: &mut Job, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut decoded;
    let data = match job.dechunk.as_mut() {
        Some(dec) => {
            decoded = Vec::with_capacity(data.len());
            if dec.decode(data, |b| decoded.extend_from_slice(b)).is_err() {
                // What came so far goes out; the client learns of the rest by the close.
                commit_head(ctx, job, false);
                job.keep_alive = false;
                job.framing = Framing::Discard;
                return;
            }
            &decoded[..]
        }
        None => data,
    };
    body_bytes_raw(job, data);
}

/// Decoded response body bytes into `out` (or the pending body) by the framing.
fn body_bytes_raw(job: &mut Job, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    match job.framing {
        Framing::Head | Framing::Discard => {}
        Framing::Pending => {
            if let Some(p) = job.pending.as_mut() {
                p.body.extend_from_slice(data);
            }
        }
        Framing::Length(rem) => {
            let n = (rem as usize).min(data.len());
            job.out.put(&data[..n]);
            job.framing = Framing::Length(rem - n as u64);
        }
        Framing::Chunked => {
            job.out.put(format!("{:x}\r\n", data.len()).as_bytes());
            job.out.put(data);
            job.out.put(b"\r\n");
        }
        Framing::UntilClose => job.out.put(data),
    }
}

/// Write the response head for the client and choose the body framing.
fn start_response(ctx: &mut Ctx, job: &mut Job, h: RespHead, status: u16) {
    let status = match job.error_status {
        // server.error-handler: a handler that says 200 keeps the original status.
        Some((orig, true)) if status == 200 => orig,
        _ => status,
    };
    if h.close {
        job.keep_alive = false;
    }
    if h.chunked {
        job.dechunk = Some(Decoder::new());
    }
    let no_body = job.head_only || status == 204 || status == 304 || (100..200).contains(&status);
    job.framing = match h.content_length {
        _ if no_body => Framing::Discard,
        Some(n) => Framing::Length(n),
        None => {
            job.framing = Framing::Pending;
            job.pending = Some(Box::new(PendingHead {
                head: h,
                status,
                body: Vec::new(),
                since: ctx.clock.mono,
            }));
            return;
        }
    };
    write_head(ctx, job, h, status);
}

/// A pending head goes out: with Content-Length when the script's output is all
/// in (`ended`), else chunked to HTTP/1.1 (until close to HTTP/1.0).
fn commit_head(ctx: &mut Ctx, job: &mut Job, ended: bool) {
    if job.framing != Framing::Pending {
        return;
    }
    let Some(p) = job.pending.take() else {
        return;
    };
    let PendingHead {
        head: mut h,
        status,
        body,
        ..
    } = *p;
    job.framing = if ended {
        h.fields
            .push(("Content-Length".into(), body.len().to_string()));
        Framing::Length(body.len() as u64)
    } else if job.version == Version::Http11 {
        Framing::Chunked
    } else {
        job.keep_alive = false;
        Framing::UntilClose
    };
    write_head(ctx, job, h, status);
    body_bytes_raw(job, &body);
}

/// The head for the client, framed as `job.framing` says: the script's fields,
/// then Transfer-Encoding, Connection, Date (unless the script sent one), Server
/// (the script's, else server.tag). The response_start hooks do not run here (the
/// request's context is gone; lighttpd runs them on backend responses too).
fn write_head(ctx: &mut Ctx, job: &mut Job, mut h: RespHead, status: u16) {
    let out = &mut job.out;
    let mark = out.buf.len();
    let head = ctx.resp.begin(job.version, status);
    let has_date = h.get("date").is_some();
    let server = h.remove("server");
    for (k, v) in &h.fields {
        head.add(k.as_bytes(), v.as_bytes());
    }
    if job.framing == Framing::Chunked {
        head.add(b"Transfer-Encoding", b"chunked");
    }
    head.connection(job.keep_alive);
    if !has_date {
        head.date(&ctx.clock);
    }
    head.server(server.as_deref().unwrap_or(&job.tag).as_bytes());
    head.write(out);
    if let Some(l) = &mut job.log {
        l.head(status, &job.out.buf[mark..]);
    }
    job.started = true;
}

/// cgi.local-redir: the request runs again for the Location path; the script that
/// asked is done.
fn local_redirect(ctx: &mut Ctx, job: &mut Job, h: &RespHead, loc: Vec<u8>) -> Option<Pump> {
    let own = &job.saved.buf[job.saved.head.path.start as usize..job.saved.head.path.end as usize];
    let own_path = crate::path::split_target(own).0;
    let (new_path, _) = crate::path::split_target(&loc);
    // Not back to the same URL (the script could have answered that itself): sent
    // to the client as the redirect it is.
    if new_path == own_path {
        let status = h.effective_status();
        let h2 = RespHead {
            fields: h.fields.clone(),
            ..Default::default()
        };
        start_response(ctx, job, h2, status);
        return None;
    }
    let id = job.id;
    job.stage = Stage::Done;
    ctx.cgi.finish(id, FinishReason::Done);
    if job.loops >= 5 {
        ctx.cgi.log.push(format!(
            "mod_cgi: too many internal loops while processing request: {}",
            String::from_utf8_lossy(job.saved.head.target.of(&job.saved.buf))
        ));
        fail(job, &ctx.clock, &ctx.pages, 500);
        return Some(Pump::Done);
    }
    let status = h.effective_status();
    let orig_target =
        String::from_utf8_lossy(job.saved.head.target.of(&job.saved.buf)).into_owned();
    Some(Pump::Redirect(Box::new(Internal {
        saved: job.saved.clone(),
        method_get: status != 307 && status != 308,
        info: InternalInfo {
            orig_target,
            new_target: String::from_utf8_lossy(&loc).into_owned(),
            loops: job.loops + 1,
            error: None,
        },
        target: loc,
    })))
}

/// cgi.x-sendfile: the response body is a file the script names.
fn x_sendfile(ctx: &mut Ctx, job: &mut Job, mut h: RespHead, value: &str) -> Option<Pump> {
    h.remove("x-sendfile");
    h.remove("content-length");
    h.content_length = None;
    let mut path = Vec::new();
    let status =
        if crate::path::decode_normalize(value.as_bytes(), &mut path).is_err() || path.is_empty() {
            502
        } else {
            if job.lowercase {
                path.make_ascii_lowercase();
            }
            let allowed = job.xsendfile_docroot.is_empty()
                || job.xsendfile_docroot.iter().any(|d| {
                    let d = d.trim_end_matches('/');
                    let p = &path[..];
                    p.len() > d.len()
                        && p[d.len()] == b'/'
                        && if job.lowercase {
                            p[..d.len()].eq_ignore_ascii_case(d.as_bytes())
                        } else {
                            p.starts_with(d.as_bytes())
                        }
                });
            if !allowed {
                ctx.cgi.log.push(format!(
                    "mod_cgi: X-Sendfile ({}) not under configured x-sendfile-docroot(s)",
                    String::from_utf8_lossy(&path)
                ));
                403
            } else {
                match ctx.cache.lookup(Root::Absolute, &path, ctx.clock.mono) {
                    Found::File { info, file_len } if file_len == path.len() => {
                        let status = h.effective_status();
                        if h.get("content-type").is_none() {
                            let ct = crate::mime::content_type(&job.mimetypes, &path);
                            h.fields.push(("Content-Type".into(), ct.to_string()));
                        }
                        if h.get("last-modified").is_none() {
                            h.fields.push((
                                "Last-Modified".into(),
                                String::from_utf8_lossy(&info.last_modified).into_owned(),
                            ));
                        }
                        h.content_length = Some(info.size);
                        h.fields
                            .push(("Content-Length".into(), info.size.to_string()));
                        h.chunked = false;
                        start_response(ctx, job, h, status);
                        if !job.head_only {
                            match &info.body {
                                crate::stat_cache::Body::Mem(m) => job.out.put(m),
                                crate::stat_cache::Body::Fd(fd) => {
                                    job.out.file(fd.clone(), 0, info.size)
                                }
                            }
                        }
                        // The script's own body, if any, is not sent.
                        job.framing = Framing::Discard;
                        return None;
                    }
                    Found::NotFound => 404,
                    _ => 403,
                }
            }
        };
    ctx.cgi.log.push(format!(
        "mod_cgi: X-Sendfile from {}: {} ({status})",
        job.script,
        String::from_utf8_lossy(&path)
    ));
    let id = job.id;
    fail(job, &ctx.clock, &ctx.pages, status);
    ctx.cgi.finish(id, FinishReason::Done);
    Some(Pump::Done)
}
