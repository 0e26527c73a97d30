//! mod_accesslog: one line per request in lighttpd's format language, to a file or
//! a piped logger (fds the master opened and hands over) or to syslog (lines the
//! master writes). Lines gather in a buffer per target and leave in batches: when
//! the buffer is full, once a second, and before the worker exits, so a busy worker
//! makes no syscall per request and a stopping one loses no line.

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use wick_conf::cond::{Compiled, CondState};
use wick_conf::{Config, View};

mod format;
mod sink;
mod time;
pub use format::*;
pub use sink::{targets, Sink, PIPE_BUF};
pub use time::{strftime, Tm};

// ---- the module ------------------------------------------------------------------

/// Where a line goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Index into the targets (a file or a pipe).
    Target(usize),
    /// To syslog, at this level.
    Syslog(u8),
}

/// Where and how one request is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub dest: Dest,
    /// The block whose accesslog.format is in force; None: the default format.
    pub format: Option<usize>,
    pub how: Escape,
}

/// The worker's access log: formats parsed once per block, targets by block, the
/// buffers, and the syslog lines waiting to go to the master.
pub struct AccessLog {
    /// Parsed accesslog.format of each block that sets one.
    formats: super::ByBlock<Format>,
    default: Format,
    /// Index into `targets` of the accesslog.filename of each block that sets
    /// one (None: empty).
    target_of: super::ByBlock<Option<usize>>,
    names: Vec<String>,
    sinks: Vec<Option<Sink>>,
    /// (syslog level, line) for the master to write.
    syslog: Vec<(u8, String)>,
    scratch: Vec<u8>,
    /// Write errors to report in the error log (once per target until it works).
    pub errors: Vec<String>,
    failing: Vec<bool>,
    /// Address of each listener (None: a unix socket, see `paths`).
    local: Vec<Option<std::net::SocketAddr>>,
    paths: Vec<Vec<u8>>,
}

impl AccessLog {
    /// Parse every block's format. Err: the first bad one, with where it is set.
    pub fn new(cfg: &Config) -> Result<AccessLog, String> {
        wick_proto::log::init_timezone();
        let names = targets(cfg);
        let mut formats = Vec::new();
        let mut target_of = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(f) = p.accesslog_format().filter(|f| !f.is_empty()) {
                let parsed = parse_format(f).map_err(|e| {
                    let at = cfg
                        .blocks
                        .get(id)
                        .and_then(|b| b.settings.iter().find(|s| s.key == "accesslog.format"))
                        .map(|s| format!("{}:{}:{}: ", s.loc.file, s.loc.line, s.loc.col))
                        .unwrap_or_default();
                    format!("{at}parsing accesslog-definition failed: {e}: {f}")
                })?;
                formats.push((id, parsed));
            }
            if let Some(f) = p.accesslog_filename() {
                target_of.push((id, names.iter().position(|n| n == f)));
            }
        }
        let n = names.len();
        let mut local = Vec::new();
        let mut paths = Vec::new();
        for l in &cfg.listeners {
            match &l.addr {
                wick_conf::ListenAddr::Tcp(a) => {
                    local.push(Some(*a));
                    paths.push(Vec::new());
                }
                wick_conf::ListenAddr::Unix(p) => {
                    local.push(None);
                    paths.push(p.as_os_str().as_encoded_bytes().to_vec());
                }
            }
        }
        Ok(AccessLog {
            local,
            paths,
            formats: formats.into_iter().collect(),
            default: parse_format(DEFAULT_FORMAT)?,
            target_of: target_of.into_iter().collect(),
            sinks: (0..n).map(|_| None).collect(),
            failing: vec![false; n],
            names,
            syslog: Vec::new(),
            scratch: Vec::with_capacity(512),
            errors: Vec::new(),
        })
    }

    /// Is any block logging at all? (A config without mod_accesslog never calls `log`.)
    pub fn target_count(&self) -> usize {
        self.names.len()
    }

    /// The fds the master sent, in [`targets`] order. A second call (SIGHUP) swaps
    /// them after flushing to the old ones.
    pub fn set_fds(&mut self, fds: Vec<OwnedFd>) {
        for (i, fd) in fds.into_iter().enumerate() {
            let Some(slot) = self.sinks.get_mut(i) else {
                break;
            };
            match slot {
                Some(s) => {
                    if let Err(e) = s.replace(fd) {
                        self.errors
                            .push(format!("writing access log {} failed: {e}", self.names[i]));
                    }
                }
                None => *slot = Some(Sink::new(fd)),
            }
        }
    }

    /// Where and how a request is logged, by the options in force for it; None
    /// when it is not logged.
    pub fn resolve(&self, compiled: &Compiled, state: &CondState, view: &View) -> Option<Resolved> {
        let dest = if *view.accesslog_use_syslog {
            Dest::Syslog((*view.accesslog_syslog_level).min(7) as u8)
        } else {
            let b = compiled.winning_block(state, |p| p.accesslog_filename().is_some());
            match self.target_of.get(b).copied() {
                Some(Some(t)) => Dest::Target(t),
                _ => return None,
            }
        };
        let fb = compiled.winning_block(state, |p| {
            p.accesslog_format().is_some_and(|f| !f.is_empty())
        });
        Some(Resolved {
            dest,
            format: self.formats.get(fb).is_some().then_some(fb),
            how: Escape::from_option(view.accesslog_escaping),
        })
    }

    /// Log one request with the options in force for it.
    pub fn log(&mut self, compiled: &Compiled, state: &CondState, view: &View, r: &Record) {
        if let Some(res) = self.resolve(compiled, state, view) {
            self.write(&res, r);
        }
    }

    /// The format a resolved request uses.
    fn format_of(&self, res: &Resolved) -> &Format {
        res.format
            .and_then(|b| self.formats.get(b))
            .unwrap_or(&self.default)
    }

    /// Format and queue one line.
    pub fn write(&mut self, res: &Resolved, r: &Record) {
        let mut line = std::mem::take(&mut self.scratch);
        line.clear();
        self.format_of(res).write(r, res.how, &mut line);
        self.queue(res, line);
    }

    /// Queue a formatted line (without its newline); keeps the buffer for reuse.
    fn queue(&mut self, res: &Resolved, line: Vec<u8>) {
        self.scratch = line;
        match res.dest {
            Dest::Syslog(level) => {
                if !self.scratch.is_empty() {
                    self.syslog
                        .push((level, String::from_utf8_lossy(&self.scratch).into_owned()));
                }
            }
            Dest::Target(t) => {
                self.scratch.push(b'\n');
                if let Some(Some(sink)) = self.sinks.get_mut(t) {
                    let r = sink.line(&self.scratch);
                    self.note(t, r);
                }
            }
        }
    }

    fn note(&mut self, t: usize, r: io::Result<()>) {
        match r {
            Ok(()) => self.failing[t] = false,
            Err(e) => {
                if !self.failing[t] {
                    self.failing[t] = true;
                    self.errors
                        .push(format!("writing access log {} failed: {e}", self.names[t]));
                }
            }
        }
    }

    /// Write everything gathered (once a second, and before exit). Returns the
    /// syslog lines for the master.
    pub fn flush(&mut self) -> Vec<(u8, String)> {
        for t in 0..self.sinks.len() {
            let r = match &mut self.sinks[t] {
                Some(s) if s.pending() > 0 => s.flush(),
                _ => continue,
            };
            self.note(t, r);
        }
        std::mem::take(&mut self.syslog)
    }

    /// Lines waiting for syslog (the caller sends them when there are many).
    pub fn syslog_pending(&self) -> usize {
        self.syslog.len()
    }
}

// ---- the module in the worker ----------------------------------------------------

/// What a flush leaves for the event loop to pass on.
#[derive(Default)]
pub struct Flushed {
    /// (syslog level, line) for `FromWorker::AccessLogSyslog`.
    pub syslog: Vec<(u8, String)>,
    /// Write failures, for the error log.
    pub errors: Vec<String>,
}

/// mod_accesslog: a request_done hook that formats the line into its buffers and
/// a trigger (once a second, and before the worker exits) that writes them. Its
/// state is its own; the worker reaches it through `Mods::accesslog`.
pub struct Accesslog {
    log: RefCell<AccessLog>,
}

impl Accesslog {
    /// Parse the formats (a bad one stops start-up).
    pub fn new(cfg: &Config) -> Result<Accesslog, String> {
        Ok(Accesslog {
            log: RefCell::new(AccessLog::new(cfg)?),
        })
    }

    /// The access log fds the master sent (in the setup, or `ToWorker::AccessLogs`).
    pub fn deliver(&self, fds: Vec<OwnedFd>) {
        self.log.borrow_mut().set_fds(fds);
    }

    /// Write what the log gathered.
    pub fn flush(&self) -> Flushed {
        let mut log = self.log.borrow_mut();
        Flushed {
            syslog: log.flush(),
            errors: std::mem::take(&mut log.errors),
        }
    }

    /// Lines waiting (syslog ones are sent when a batch is large, before the second ends).
    pub fn pending_syslog(&self) -> usize {
        self.log.borrow().syslog_pending()
    }
}

/// What a line needs that is known when the request is handled.
struct Early<'a> {
    remote: IpAddr,
    remote_port: u16,
    local: Option<std::net::SocketAddr>,
    local_path: &'a [u8],
    method: &'a [u8],
    target: &'a [u8],
    version: &'static [u8],
    host: &'a [u8],
    server_name: &'a [u8],
    filename: [&'a [u8]; 2],
    bytes_in: u64,
    start: Timespec,
    requests: u32,
}

impl AccessLog {
    fn early<'a>(&'a self, x: &'a super::DoneCx) -> Early<'a> {
        let b = x.base;
        let h = b.head;
        let body_in = match h.body {
            crate::request::BodyKind::Length(n) => n,
            _ => 0,
        };
        let filename = [x.rq.docroot.as_bytes(), &x.rq.rel[..]];
        let host = match memchr::memchr(b':', &x.rq.host) {
            Some(i) if !x.rq.host.starts_with(b"[") => &x.rq.host[..i],
            _ => &x.rq.host[..],
        };
        let server_name: &[u8] = if !x.rq.server_name.is_empty() {
            x.rq.server_name.as_bytes()
        } else if !x.view.server_name.is_empty() {
            x.view.server_name.as_bytes()
        } else {
            host
        };
        Early {
            remote: x.rq.remote_ip,
            remote_port: b.peer_port,
            local: self.local.get(b.listener).copied().flatten(),
            local_path: self.paths.get(b.listener).map_or(&b""[..], |p| p),
            method: b.method(),
            target: b.target_orig,
            version: match h.version {
                crate::request::Version::Http10 => b"HTTP/1.0",
                crate::request::Version::Http11 => b"HTTP/1.1",
                crate::request::Version::Http2 => b"HTTP/2.0",
            },
            host: &x.rq.host,
            server_name,
            filename,
            bytes_in: h.len as u64 + body_in,
            start: x.rq.started,
            requests: x.base.requests,
        }
    }
}

/// The head of a response (up to the blank line) and whether it keeps the
/// connection open.
fn response_head(resp: &[u8]) -> (&[u8], bool) {
    let len = memchr::memmem::find(resp, b"\r\n\r\n").map_or(resp.len(), |i| i + 4);
    let head = &resp[..len];
    let keep_alive = !head
        .windows(17)
        .any(|w| w.eq_ignore_ascii_case(b"connection: close"));
    (head, keep_alive)
}

fn header_in<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut lines = head.split(|&c| c == b'\n').skip(1);
    lines.find_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let colon = memchr::memchr(b':', l)?;
        l[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| crate::request::trim(&l[colon + 1..]))
    })
}

fn env_in<'a>(env: &'a [(String, String)], user: &'a str, name: &str) -> Option<&'a [u8]> {
    if name == "REMOTE_USER" && !user.is_empty() {
        return Some(user.as_bytes());
    }
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_bytes())
}

fn record<'a>(
    e: &'a Early<'a>,
    status: u16,
    bytes_out: u64,
    head: &[u8],
    keep_alive: bool,
    lookup: &'a dyn Lookup,
) -> Record<'a> {
    Record {
        remote: e.remote,
        remote_port: e.remote_port,
        local: e.local,
        local_path: e.local_path,
        method: e.method,
        target: e.target,
        version: e.version,
        host: e.host,
        server_name: e.server_name,
        filename: e.filename,
        status,
        bytes_out,
        head_out: head.len() as u64,
        bytes_in: e.bytes_in,
        start: e.start,
        end: Timespec::now(),
        requests: e.requests,
        keep_alive,
        aborted: false,
        lookup,
    }
}

/// Request and response headers and the environment, for a [`Record`].
struct Done<'a, 'b> {
    x: &'a super::DoneCx<'b>,
    head: &'a [u8],
}

impl Lookup for Done<'_, '_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.x.rq.header(self.x.base, name)
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        header_in(self.head, name)
    }

    fn env(&self, name: &str) -> Option<&[u8]> {
        env_in(&self.x.rq.env, &self.x.rq.remote_user, name)
    }
}

/// The module list holds it shared with `Mods::accesslog`.
impl super::Module for std::rc::Rc<Accesslog> {
    fn name(&self) -> &'static str {
        "mod_accesslog"
    }

    fn hooks(&self) -> u16 {
        super::hook::REQUEST_DONE
    }

    fn request_done(&self, x: &super::DoneCx) {
        let v = x.view;
        if !*v.accesslog_use_syslog && v.accesslog_filename.is_empty() {
            return;
        }
        let (head, keep_alive) = response_head(x.resp);
        {
            let mut log = self.log.borrow_mut();
            let Some(res) = log.resolve(x.compiled, x.cond, v) else {
                return;
            };
            let mut line = std::mem::take(&mut log.scratch);
            line.clear();
            {
                // `early` borrows the log's listener table: queue after it is done.
                let early = log.early(x);
                let done = Done { x, head };
                let r = record(&early, x.status, x.bytes_out, head, keep_alive, &done);
                log.format_of(&res).write(&r, res.how, &mut line);
            }
            log.queue(&res, line);
        }
    }

    fn trigger(&self, t: &mut super::Trigger) {
        let f = self.flush();
        t.syslog.extend(f.syslog);
        t.errors.extend(f.errors);
    }
}

/// A request refused before it was understood (400, 413, 414, 431, 501, 505).
pub struct Refused<'a> {
    pub remote: IpAddr,
    pub remote_port: u16,
    pub listener: usize,
    /// The head as far as it was read.
    pub head: &'a [u8],
    pub status: u16,
    /// The error response sent.
    pub resp: &'a [u8],
    pub requests: u32,
}

/// The first line of a refused head, at most this long in the log.
const REFUSED_LINE_MAX: usize = 1024;

/// Log a refused request, as lighttpd does (its request_done hook runs for every
/// response): by the global scope's access-log options, no condition having been
/// evaluated, `%r` being its first line as received, escaped.
pub fn refused(me: &Accesslog, compiled: &Compiled, r: &Refused) {
    {
        let mut log = me.log.borrow_mut();
        let mut view = compiled.defaults().view();
        view.apply(compiled.patch(0));
        if !*view.accesslog_use_syslog && view.accesslog_filename.is_empty() {
            return;
        }
        let state = CondState::new(compiled);
        let Some(res) = log.resolve(compiled, &state, &view) else {
            return;
        };
        let line_end = memchr::memchr2(b'\r', b'\n', r.head).unwrap_or(r.head.len());
        let first = &r.head[..line_end.min(REFUSED_LINE_MAX)];
        let (head, keep_alive) = response_head(r.resp);
        let now = Timespec::now();
        let mut line = std::mem::take(&mut log.scratch);
        line.clear();
        {
            let lookup = RefusedLookup { head };
            let rec = Record {
                remote: r.remote,
                remote_port: r.remote_port,
                local: log.local.get(r.listener).copied().flatten(),
                local_path: log.paths.get(r.listener).map_or(&b""[..], |p| p),
                method: b"",
                target: first,
                version: b"",
                host: b"",
                server_name: b"",
                filename: [b"", b""],
                status: r.status,
                bytes_out: r.resp.len() as u64,
                head_out: head.len() as u64,
                bytes_in: r.head.len() as u64,
                start: now,
                end: now,
                requests: r.requests,
                keep_alive,
                aborted: false,
                lookup: &lookup,
            };
            log.format_of(&res).write(&rec, res.how, &mut line);
        }
        log.queue(&res, line);
    }
}

/// A refused request has no headers worth trusting; its response has some.
struct RefusedLookup<'a> {
    head: &'a [u8],
}

impl Lookup for RefusedLookup<'_> {
    fn request_header(&self, _: &str) -> Option<&[u8]> {
        None
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        header_in(self.head, name)
    }

    fn env(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

/// A request whose response comes later (a CGI script, a listing built over
/// several event-loop turns): what its line needs, owned; [`Pending::complete`]
/// adds the status and the response and writes the line.
pub struct Pending {
    res: Resolved,
    remote: IpAddr,
    remote_port: u16,
    local: Option<std::net::SocketAddr>,
    local_path: Vec<u8>,
    req: Vec<u8>,
    fields: Vec<crate::request::Field>,
    method: Vec<u8>,
    target: Vec<u8>,
    version: &'static [u8],
    host: Vec<u8>,
    server_name: Vec<u8>,
    filename: Vec<u8>,
    bytes_in: u64,
    start: Timespec,
    requests: u32,
    req_headers: Vec<(String, String)>,
    env: Vec<(String, String)>,
    remote_user: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("res", &self.res)
            .finish_non_exhaustive()
    }
}

/// The log line of `x` to write later, when mod_accesslog logs it at all.
pub fn capture(me: &Accesslog, x: &super::DoneCx) -> Option<Box<Pending>> {
    let log = me.log.borrow();
    let res = log.resolve(x.compiled, x.cond, x.view)?;
    Some(pending(res, log.early(x), x))
}

fn pending(res: Resolved, e: Early, x: &super::DoneCx) -> Box<Pending> {
    Box::new(Pending {
        res,
        remote: e.remote,
        remote_port: e.remote_port,
        local: e.local,
        local_path: e.local_path.to_vec(),
        req: x.base.buf.to_vec(),
        fields: x.base.fields.to_vec(),
        method: e.method.to_vec(),
        target: e.target.to_vec(),
        version: e.version,
        host: e.host.to_vec(),
        server_name: e.server_name.to_vec(),
        filename: e.filename.concat(),
        bytes_in: e.bytes_in,
        start: e.start,
        requests: e.requests,
        req_headers: x
            .rq
            .req_headers
            .iter()
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect(),
        env: x.rq.env.clone(),
        remote_user: x.rq.remote_user.clone(),
    })
}

struct Later<'a> {
    p: &'a Pending,
    head: &'a [u8],
}

impl Lookup for Later<'_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        if let Some((_, v)) = self
            .p
            .req_headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return (!v.is_empty()).then_some(v.as_bytes());
        }
        crate::request::header(&self.p.req, &self.p.fields, name.as_bytes())
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        header_in(self.head, name)
    }

    fn env(&self, name: &str) -> Option<&[u8]> {
        env_in(&self.p.env, &self.p.remote_user, name)
    }
}

impl Pending {
    /// The response is complete: `resp` starts with its head; `bytes_out` counts
    /// head and body.
    pub fn complete(self: Box<Self>, me: &Accesslog, status: u16, resp: &[u8], bytes_out: u64) {
        let (head, keep_alive) = response_head(resp);
        let p = &*self;
        let e = Early {
            remote: p.remote,
            remote_port: p.remote_port,
            local: p.local,
            local_path: &p.local_path,
            method: &p.method,
            target: &p.target,
            version: p.version,
            host: &p.host,
            server_name: &p.server_name,
            filename: [&p.filename, b""],
            bytes_in: p.bytes_in,
            start: p.start,
            requests: p.requests,
        };
        let later = Later { p, head };
        let r = record(&e, status, bytes_out, head, keep_alive, &later);
        me.log.borrow_mut().write(&p.res, &r);
    }
}

/// The access log of a response written in pieces (mod_cgi): its line, the status
/// and head once they are known, and the bytes as they are sent.
#[derive(Debug)]
pub struct Tally {
    pending: Box<Pending>,
    status: u16,
    head: Vec<u8>,
    bytes: u64,
    /// Bytes of earlier responses queued ahead of this one.
    skip: u64,
}

impl Tally {
    /// `skip`: bytes queued ahead of this response that its count must leave out.
    pub fn new(pending: Box<Pending>, skip: u64) -> Tally {
        Tally {
            pending,
            status: 0,
            head: Vec::new(),
            bytes: 0,
            skip,
        }
    }

    /// The response head was queued (the status line to the blank line).
    pub fn head(&mut self, status: u16, head: &[u8]) {
        self.status = status;
        self.head.clear();
        self.head.extend_from_slice(head);
    }

    /// `n` more bytes were sent.
    pub fn sent(&mut self, n: u64) {
        self.bytes += n;
    }

    /// The response is over; `unsent` bytes of it are still queued.
    pub fn finish(self, me: &Accesslog, unsent: u64) {
        let total = (self.bytes + unsent).saturating_sub(self.skip);
        self.pending.complete(me, self.status, &self.head, total);
    }
}

#[cfg(test)]
mod tests {
    use super::time::days_from_civil;
    use super::*;

    struct L;
    impl Lookup for L {
        fn request_header(&self, name: &str) -> Option<&[u8]> {
            match name.to_ascii_lowercase().as_str() {
                "referer" => Some(b"http://ref/\"x\""),
                "user-agent" => Some(b"curl/8"),
                "cookie" => Some(b"a=1; sid=abc ; z=9"),
                _ => None,
            }
        }
        fn response_header(&self, name: &str) -> Option<&[u8]> {
            (name.eq_ignore_ascii_case("content-type")).then_some(&b"text/html"[..])
        }
        fn env(&self, name: &str) -> Option<&[u8]> {
            (name == "FOO").then_some(&b"bar"[..])
        }
    }

    fn rec(l: &L) -> Record<'_> {
        Record {
            remote: "192.0.2.77".parse().expect("ip"),
            remote_port: 40000,
            local: Some("127.0.0.1:8080".parse().expect("sa")),
            local_path: b"",
            method: b"GET",
            target: b"/a b?x=1&y=\"",
            version: b"HTTP/1.1",
            host: b"example.org",
            server_name: b"example.org",
            filename: [b"/srv/www", b"/a b"],
            status: 200,
            bytes_out: 1100,
            head_out: 100,
            bytes_in: 80,
            start: Timespec {
                sec: 1_700_000_000,
                nsec: 250_000_000,
            },
            end: Timespec {
                sec: 1_700_000_001,
                nsec: 500_000_001,
            },
            requests: 3,
            keep_alive: true,
            aborted: false,
            lookup: l,
        }
    }

    fn line(fmt: &str) -> String {
        let f = parse_format(fmt).expect("format");
        let l = L;
        let mut out = Vec::new();
        f.write(&rec(&l), Escape::Default, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn default_format_fields() {
        let l = line(DEFAULT_FORMAT);
        // %t depends on the zone: check around it.
        assert!(l.starts_with("192.0.2.77 example.org - ["), "{l}");
        assert!(
            l.ends_with(
                "] \"GET /a b?x=1&y=\\\" HTTP/1.1\" 200 1000 \"http://ref/\\\"x\\\"\" \"curl/8\""
            ),
            "{l}"
        );
    }

    #[test]
    fn every_directive() {
        assert_eq!(
            line("%a %A %p %{remote}p %{local}p"),
            "192.0.2.77 127.0.0.1 8080 40000 8080"
        );
        assert_eq!(line("%{mask}a %{mask}h"), "192.0.2.0 192.0.2.0");
        assert_eq!(line("%b %B %O %I"), "1000 1000 1100 80");
        assert_eq!(line("%{sid}C|%{nope}C|%C"), "abc||");
        assert_eq!(line("%{FOO}e %{NOPE}e %{FOO}n %u"), "bar - bar -");
        assert_eq!(line("%f"), "/srv/www/a b");
        assert_eq!(line("%H %m %s %>s %<s"), "HTTP/1.1 GET 200 200 200");
        assert_eq!(
            line("%{Content-Type}o %{X-None}o %{User-Agent}i"),
            "text/html - curl/8"
        );
        assert_eq!(line("%k %X"), "2 +");
        assert_eq!(line("%q|%U"), "x=1&y=\\\"|/a b");
        assert_eq!(line("%r"), "GET /a b?x=1&y=\\\" HTTP/1.1");
        assert_eq!(line("%v %V"), "example.org example.org");
        assert_eq!(
            line("%T %{ms}T %{us}T %D %{ns}T"),
            "1 1251 1250001 1250001 1250000001"
        );
        assert_eq!(
            line("%{sec}t %{msec}t %{begin:sec}t"),
            "1700000001 1700000001501 1700000000"
        );
        assert_eq!(
            line("%{usec}t %{nsec}t"),
            "1700000001500001 1700000001500000001"
        );
        assert_eq!(
            line("%{msec_frac}t %{usec_frac}t %{nsec_frac}t"),
            "501 500001 500000001"
        );
        assert_eq!(line("%l %% %P."), "- % .");
        assert_eq!(line("a\\tb\\\\c"), "a\tb\\c");
    }

    #[test]
    fn strftime_stamps() {
        let tm = Tm::at(1_700_000_001, 3600 + 1800);
        let mut o = Vec::new();
        strftime(
            &mut o,
            b"[%d/%b/%Y:%H:%M:%S %z] %a %A %B %j %e %I %p %F %T %u %w %y %C %% %Q",
            &tm,
        );
        assert_eq!(
            String::from_utf8(o).expect("utf8"),
            "[14/Nov/2023:23:43:21 +0130] Tue Tuesday November 318 14 11 PM 2023-11-14 23:43:21 2 2 23 20 % %Q"
        );
        let tm = Tm::at(0, -3600 * 5);
        let mut o = Vec::new();
        strftime(&mut o, b"%Y-%m-%d %H %z %s", &tm);
        assert_eq!(String::from_utf8(o).expect("utf8"), "1969-12-31 19 -0500 0");
        assert_eq!(days_from_civil(2023, 11, 14), 19675);
    }

    #[test]
    fn escaping() {
        let mut o = Vec::new();
        escape(&mut o, b"a\"b\\c\n\x01\x7f\xc3\xa9", Escape::Default);
        assert_eq!(o, b"a\\\"b\\\\c\\n\\x01\\x7F\\xC3\\xA9");
        o.clear();
        escape(&mut o, b"a\"b\\c\n\x01\x7f\xc3\xa9", Escape::Json);
        assert_eq!(o, b"a\\\"b\\\\c\\n\\u0001\\u007F\xc3\xa9");
    }

    #[test]
    fn masks_v6() {
        assert_eq!(
            masked("2001:db8:85a3:8d3:1319:8a2e:370:7348".parse().expect("ip")).to_string(),
            "2001:db8:85a3::"
        );
        assert_eq!(
            masked("::ffff:10.1.2.3".parse().expect("ip")).to_string(),
            "::ffff:10.1.2.0"
        );
    }

    #[test]
    fn bad_formats() {
        for (f, why) in [
            ("%", "followed by a format-specifier"),
            ("%{x", "terminated"),
            ("%{}i", "must contain string"),
            ("%Z", "valid format-specifier"),
            ("%{bogus}T", "time unit"),
            ("%{abc}t", "constant string"),
            ("%{x}p", "canonical,local,remote"),
            ("%{y}a", "mask"),
            ("%>", "valid format-specifier"),
            ("", "empty"),
        ] {
            let e = parse_format(f).expect_err(f);
            assert!(e.contains(why), "{f}: {e}");
        }
    }

    #[test]
    fn pipe_batches_keep_lines_whole() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut s = Sink::new(w);
        assert!(s.is_pipe());
        let line = [b'x'; 99];
        let mut l = line.to_vec();
        l.push(b'\n');
        for _ in 0..100 {
            s.line(&l).expect("line");
        }
        s.flush().expect("flush");
        let mut got = vec![0u8; 20000];
        let n = nix::unistd::read(&r, &mut got).expect("read");
        assert_eq!(n, 10000);
        assert!(got[..n].chunks(100).all(|c| c[99] == b'\n'));
    }

    #[test]
    fn stuck_pipe_never_blocks() {
        let (_r, w) = nix::unistd::pipe().expect("pipe");
        let mut s = Sink::new(w);
        let l = [b'y'; 1000];
        // Far more than a pipe holds: must return, keeping the rest buffered.
        for _ in 0..200 {
            s.line(&l).expect("line");
        }
        s.flush().expect("flush");
        assert!(s.pending() > 0);
    }
}
