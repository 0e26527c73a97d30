//! mod_staticfile and mod_indexfile: GET/HEAD/POST of files under the document
//! root, directory redirects and index files, ETag and Last-Modified, conditional
//! requests (RFC 9110 13.2.2 order), byte ranges (single and multipart), OPTIONS,
//! 405 for other methods, error pages (errorfile-prefix) and the files an
//! error-handler run names.

use crate::date::{parse_http_date, Clock};
use crate::errors::Pages;
use crate::mods::Hooks;
use crate::request::{Head, Method, Version};
use crate::resp_head::ResponseHead;
use crate::response::{put_u64, Out};
use crate::stat_cache::{Body, FileInfo, Found, Root, StatCache};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use wick_conf::View;

pub const ALLOW: &[u8] = b"OPTIONS, GET, HEAD, POST";

/// One request, as the handler sees it.
pub struct Req<'a> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    /// Decoded and normalised path.
    pub path: &'a [u8],
    /// The path as sent (for redirects).
    pub raw_path: &'a [u8],
    pub query: &'a [u8],
    /// Whether the connection stays open after this response (decided by the caller).
    pub keep_alive: bool,
    /// An error handler's run (server.error-handler(-404)): the status the
    /// handler answered first, and whether it is kept (else 200).
    pub error: Option<(u16, bool)>,
}

impl Req<'_> {
    fn hdr(&self, s: Option<crate::request::Span>) -> Option<&[u8]> {
        s.map(|s| s.of(self.buf))
    }
}

/// Document-root dirfds, opened on first use (after the sandbox is in place, so a
/// chroot applies to them as lighttpd's does).
#[derive(Default)]
pub struct Roots {
    list: Vec<(String, Option<OwnedFd>, u64)>,
}

impl Roots {
    /// The dirfd and cache id of `docroot`; None when it cannot be opened.
    pub fn get(&mut self, docroot: &str, now: u64) -> Option<(RawFd, u32)> {
        let i = match self.list.iter().position(|(d, _, _)| d == docroot) {
            Some(i) => i,
            None => {
                self.list.push((docroot.to_string(), None, u64::MAX));
                self.list.len() - 1
            }
        };
        let (d, fd, tried) = &mut self.list[i];
        if fd.is_none() && *tried != now && !d.is_empty() {
            *tried = now;
            if let Ok(c) = std::ffi::CString::new(d.as_bytes()) {
                let flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
                *fd = crate::stat_cache::openat2(libc::AT_FDCWD, &c, flags, 0).ok();
                if let Some(f) = fd {
                    crate::stat_cache::register_root(f.as_raw_fd(), d.as_bytes());
                }
            }
        }
        fd.as_ref().map(|f| (f.as_raw_fd(), i as u32))
    }
}

/// The worker pieces a handler writes with.
pub struct Env<'a> {
    pub out: &'a mut Out,
    /// The response head being made (one per worker, reused).
    pub head: &'a mut ResponseHead,
    /// The response_start hooks of this request (None: no module takes them).
    pub hooks: Option<&'a Hooks<'a>>,
    pub cache: &'a mut StatCache,
    pub clock: &'a Clock,
    pub pages: &'a Pages,
    pub roots: &'a mut Roots,
    pub scratch: &'a mut Vec<u8>,
    pub etag: &'a mut Vec<u8>,
    /// Error-log lines for this request (the worker writes them after the turn).
    pub log: &'a mut Vec<String>,
    /// Fields every head sent for this request gets ([`crate::mods::Rq::answer_fields`]).
    pub fields: &'a [(&'static [u8], Vec<u8>)],
}

impl Env<'_> {
    /// The head is complete: Connection, Date and Server, the response_start
    /// hooks, then into `out`, once. The body goes after it.
    pub fn send_head(&mut self, keep_alive: bool, tag: &str) {
        self.finish_head(keep_alive, tag);
        self.head.write(self.out);
    }

    fn finish_head(&mut self, keep_alive: bool, tag: &str) {
        for (n, v) in self.fields {
            self.head.add(n, v);
        }
        self.head.finish(self.clock, tag, keep_alive);
        if let Some(h) = self.hooks {
            h.run(self.head);
        }
    }

    /// A whole file (`name`, beneath the document root) as the response: the
    /// head as [`Env::send_head`] sends it, then mod_deflate, when loaded, may
    /// send it compressed (or answer 304 for its compressed form); then the body
    /// unless `send_body` is false (HEAD).
    pub fn send_file(
        &mut self,
        keep_alive: bool,
        tag: &str,
        info: &FileInfo,
        name: &[u8],
        send_body: bool,
    ) {
        use crate::mods::deflate::{cache::Entry, Send};
        self.finish_head(keep_alive, tag);
        let send = match self.hooks.and_then(|h| h.deflate()) {
            Some((d, cx)) => d.encode_file(cx, self.head, info, name, self.log),
            None => Send::Plain,
        };
        self.head.write(self.out);
        match send {
            Send::Plain if send_body => body(self.out, info, 0, info.size),
            Send::Plain | Send::Nothing => {}
            Send::Bytes(b) => self.out.put(&b),
            Send::Entry(Entry { fd, len }) => self.out.file(fd, 0, len),
        }
    }
}

/// Begin `head` as the built-in error page for `status` (`extra` fields first);
/// returns the page, the body to send after the head.
pub fn error_head<'p>(
    head: &mut ResponseHead,
    pages: &'p Pages,
    version: Version,
    status: u16,
    extra: &[(&[u8], &[u8])],
) -> &'p [u8] {
    let page = pages.get(status);
    head.begin(version, status);
    for (n, v) in extra {
        head.add(n, v);
    }
    head.add(b"Content-Type", b"text/html")
        .add_u64(b"Content-Length", page.len() as u64);
    page
}

/// A built-in error page answered outside a request's handler (parse errors, 413,
/// a failed CGI script): no response_start hooks.
#[allow(clippy::too_many_arguments)]
pub fn simple_error(
    out: &mut Out,
    head: &mut ResponseHead,
    clock: &Clock,
    pages: &Pages,
    tag: &str,
    version: Version,
    status: u16,
    keep_alive: bool,
    head_only: bool,
) {
    let page = error_head(head, pages, version, status, &[]);
    head.finish(clock, tag, keep_alive);
    head.write(out);
    if !head_only {
        out.put(page);
    }
}

/// Handle one request; returns the status sent.
pub fn handle(req: &Req, view: &View, env: &mut Env) -> u16 {
    let head = req.head;
    if let Some((status, keep)) = req.error {
        return error_document(req, view, env, status, keep);
    }
    if head.method == Method::Options {
        env.head
            .begin(head.version, 200)
            .add(b"Allow", ALLOW)
            .add(b"Content-Length", b"0");
        env.send_head(req.keep_alive, view.server_tag);
        return 200;
    }
    if head.method == Method::Other && head.method_span.of(req.buf) == b"CONNECT" {
        // No tunnel took it (mod_proxy with proxy.header "connect"): 405 whether
        // or not a file has the name, as lighttpd answers.
        return error(req, view, env, 405);
    }
    let Some((dirfd, id)) = env.roots.get(view.document_root, env.clock.mono) else {
        return error(req, view, env, 404);
    };
    let root = Root::Beneath {
        dirfd,
        id,
        symlinks: *view.follow_symlink,
    };
    env.scratch.clear();
    if *view.force_lowercase_filenames {
        env.scratch
            .extend(req.path.iter().map(|c| c.to_ascii_lowercase()));
    } else {
        env.scratch.extend_from_slice(req.path);
    }
    let found = env.cache.lookup(root, env.scratch, env.clock.mono);
    match found {
        Found::Dir => {
            if !req.path.ends_with(b"/") {
                return redirect_dir(req, view, env);
            }
            let base_len = env.scratch.len();
            for name in view.index_files.iter() {
                env.scratch.truncate(base_len);
                if let Some(abs) = name.strip_prefix('/') {
                    env.scratch.clear();
                    env.scratch.push(b'/');
                    env.scratch.extend_from_slice(abs.as_bytes());
                } else {
                    env.scratch.extend_from_slice(name.as_bytes());
                }
                if *view.force_lowercase_filenames {
                    env.scratch.make_ascii_lowercase();
                }
                if let Found::File { info, file_len } =
                    env.cache.lookup(root, env.scratch, env.clock.mono)
                {
                    if file_len == env.scratch.len() {
                        let name = std::mem::take(env.scratch);
                        let r = serve_found(req, view, env, &info, &name);
                        *env.scratch = name;
                        return r;
                    }
                }
            }
            // No index file and no directory listing: lighttpd answers 403.
            error(req, view, env, 403)
        }
        Found::File { info, file_len } => {
            if file_len < env.scratch.len() && *view.static_disable_pathinfo {
                return error(req, view, env, 404);
            }
            env.scratch.truncate(file_len);
            let name = std::mem::take(env.scratch);
            let r = serve_found(req, view, env, &info, &name);
            *env.scratch = name;
            r
        }
        Found::NotFound => error(req, view, env, 404),
        Found::Forbidden => error(req, view, env, 403),
        Found::Error(errno) => {
            env.log.push(format!(
                "opening {}{} failed: {} -> 500",
                view.document_root,
                String::from_utf8_lossy(env.scratch).escape_debug(),
                io::Error::from_raw_os_error(errno)
            ));
            error(req, view, env, 500)
        }
    }
}

fn serve_found(req: &Req, view: &View, env: &mut Env, info: &FileInfo, name: &[u8]) -> u16 {
    if view
        .static_exclude_extensions
        .iter()
        .any(|e| !e.is_empty() && name.ends_with(e.as_bytes()))
    {
        return error(req, view, env, 403);
    }
    if req.head.method == Method::Other {
        return error(req, view, env, 405);
    }
    serve_file(req, view, env, info, name, None)
}

fn redirect_dir(req: &Req, view: &View, env: &mut Env) -> u16 {
    let v = req.head.version;
    env.head
        .begin(v, 301)
        .add_with(b"Location", |b| {
            b.extend_from_slice(req.raw_path);
            b.push(b'/');
            if !req.query.is_empty() {
                b.push(b'?');
                b.extend_from_slice(req.query);
            }
        })
        .add(b"Content-Length", b"0");
    env.send_head(req.keep_alive, view.server_tag);
    301
}

/// An error status from the handler stage: the page from server.errorfile-prefix,
/// or the built-in one. (server.error-handler(-404) runs the request again for its
/// target: pipeline.rs.)
pub fn error(req: &Req, view: &View, env: &mut Env, status: u16) -> u16 {
    if !view.errorfile_prefix.is_empty() {
        let mut p = view.errorfile_prefix.as_bytes().to_vec();
        p.extend_from_slice(status.to_string().as_bytes());
        p.extend_from_slice(b".html");
        if let Found::File { info, .. } = env.cache.lookup(Root::Absolute, &p, env.clock.mono) {
            return serve_file(req, view, env, &info, &p, Some(status));
        }
    }
    let extra: &[(&[u8], &[u8])] = if status == 405 {
        &[(b"Allow", ALLOW)]
    } else {
        &[]
    };
    page(req, view, env, status, extra)
}

/// An error handler's target, served as a file (whatever the method; no
/// conditionals, no ranges) with the status the handler keeps (server.error-handler)
/// or 200 (error-handler-404); missing, the first error's own page.
fn error_document(req: &Req, view: &View, env: &mut Env, status: u16, keep: bool) -> u16 {
    if let Some((dirfd, id)) = env.roots.get(view.document_root, env.clock.mono) {
        let root = Root::Beneath {
            dirfd,
            id,
            symlinks: *view.follow_symlink,
        };
        if let Found::File { info, file_len } = env.cache.lookup(root, req.path, env.clock.mono) {
            let send = if keep { status } else { 200 };
            return serve_file(req, view, env, &info, &req.path[..file_len], Some(send));
        }
    }
    error(req, view, env, status)
}

/// The built-in page for `status`, answering this request (a HEAD gets the head).
fn page(req: &Req, view: &View, env: &mut Env, status: u16, extra: &[(&[u8], &[u8])]) -> u16 {
    let v = req.head.version;
    let page = error_head(env.head, env.pages, v, status, extra);
    env.send_head(req.keep_alive, view.server_tag);
    if req.head.method != Method::Head {
        env.out.put(page);
    }
    status
}

/// Send `info`. `fixed`: an error document sent with that status (no
/// conditionals, no ranges).
fn serve_file(
    req: &Req,
    view: &View,
    env: &mut Env,
    info: &FileInfo,
    name: &[u8],
    fixed: Option<u16>,
) -> u16 {
    let mut tag = std::mem::take(env.etag);
    let has_etag = *view.etags
        && info.etag(
            *view.etag_use_inode,
            *view.etag_use_size,
            *view.etag_use_mtime,
            &mut tag,
        );
    let etag: &[u8] = if has_etag { &tag } else { b"" };
    let r = serve_file_tagged(req, view, env, info, name, fixed, etag);
    *env.etag = tag;
    r
}

#[allow(clippy::too_many_arguments)]
fn serve_file_tagged(
    req: &Req,
    view: &View,
    env: &mut Env,
    info: &FileInfo,
    name: &[u8],
    fixed: Option<u16>,
    etag: &[u8],
) -> u16 {
    let head = req.head;
    let ctype = crate::mime::content_type(view.mimetypes, name);
    let get_head = matches!(head.method, Method::Get | Method::Head);
    let mut ranges: Option<Vec<(u64, u64)>> = None;
    if fixed.is_none() {
        // RFC 9110 13.2.2: If-Match, If-Unmodified-Since, If-None-Match,
        // If-Modified-Since, If-Range.
        if let Some(im) = req.hdr(head.if_match) {
            if !etag_list_matches(im, etag, true) {
                return precondition_failed(req, view, env);
            }
        } else if let Some(d) = req
            .hdr(head.if_unmodified_since)
            .and_then(|d| parse_http_date(d, env.clock.unix))
        {
            if info.mtime > d {
                return precondition_failed(req, view, env);
            }
        }
        if let Some(inm) = req.hdr(head.if_none_match) {
            if etag_list_matches(inm, etag, false) {
                if get_head {
                    return not_modified(req, view, env, info, etag);
                }
                return precondition_failed(req, view, env);
            }
        } else if get_head {
            if let Some(d) = req
                .hdr(head.if_modified_since)
                .and_then(|d| parse_http_date(d, env.clock.unix))
            {
                if info.mtime <= d {
                    return not_modified(req, view, env, info, etag);
                }
            }
        }
        if head.method == Method::Get && *view.range_requests {
            if let Some(r) = req.hdr(head.range) {
                let honour = match req.hdr(head.if_range) {
                    None => true,
                    Some(ir) if ir.starts_with(b"\"") => !etag.is_empty() && ir == etag,
                    Some(ir) => ir == &info.last_modified[..],
                };
                if honour {
                    match parse_ranges(r, info.size) {
                        RangeResult::Ignore => {}
                        RangeResult::Unsatisfiable => {
                            let mut cr = b"bytes */".to_vec();
                            put_u64(&mut cr, info.size);
                            return page(req, view, env, 416, &[(b"Content-Range", &cr)]);
                        }
                        RangeResult::Ranges(v) => ranges = Some(v),
                    }
                }
            }
        }
    }
    let send_body = head.method != Method::Head;
    let status = match (&ranges, fixed) {
        (_, Some(s)) => s,
        (Some(_), None) => 206,
        (None, None) => 200,
    };
    let (keep, tag) = (req.keep_alive, view.server_tag);
    let h = env.head.begin(head.version, status);
    match ranges.as_deref() {
        Some(&[(start, end)]) => {
            h.add(b"Content-Type", ctype.as_bytes());
            common_validators(h, etag, info);
            h.add_u64(b"Content-Length", end - start + 1)
                .add(b"Accept-Ranges", b"bytes")
                .add_with(b"Content-Range", |b| {
                    b.extend_from_slice(b"bytes ");
                    put_range(b, start, end, info.size);
                });
            env.send_head(keep, tag);
            body(env.out, info, start, end - start + 1);
        }
        Some(list) => {
            // multipart/byteranges
            let boundary = boundary(info);
            let part_head = |out: &mut Vec<u8>, start: u64, end: u64| {
                out.extend_from_slice(b"\r\n--");
                out.extend_from_slice(&boundary);
                out.extend_from_slice(b"\r\nContent-Type: ");
                out.extend_from_slice(ctype.as_bytes());
                out.extend_from_slice(b"\r\nContent-Range: bytes ");
                put_range(out, start, end, info.size);
                out.extend_from_slice(b"\r\n\r\n");
            };
            // Length: measure the part headers by writing them to a scratch buffer.
            let mut probe = Vec::new();
            let mut total = 0u64;
            for &(s, e) in list {
                probe.clear();
                part_head(&mut probe, s, e);
                total += probe.len() as u64 + (e - s + 1);
            }
            total += 2 + 2 + boundary.len() as u64 + 4; // "\r\n--" B "--\r\n"
            h.add_with(b"Content-Type", |b| {
                b.extend_from_slice(b"multipart/byteranges; boundary=");
                b.extend_from_slice(&boundary);
            });
            common_validators(h, etag, info);
            h.add_u64(b"Content-Length", total)
                .add(b"Accept-Ranges", b"bytes");
            env.send_head(keep, tag);
            let out = &mut *env.out;
            for &(s, e) in list {
                part_head(&mut out.buf, s, e);
                body(out, info, s, e - s + 1);
            }
            out.put(b"\r\n--");
            out.put(&boundary);
            out.put(b"--\r\n");
        }
        None => {
            h.add(b"Content-Type", ctype.as_bytes());
            common_validators(h, etag, info);
            h.add_u64(b"Content-Length", info.size);
            if fixed.is_none() && *view.range_requests {
                h.add(b"Accept-Ranges", b"bytes");
            }
            env.send_file(keep, tag, info, name, send_body);
        }
    }
    status
}

fn common_validators(h: &mut ResponseHead, etag: &[u8], info: &FileInfo) {
    if !etag.is_empty() {
        h.add(b"ETag", etag);
    }
    h.add(b"Last-Modified", &info.last_modified);
}

fn put_range(b: &mut Vec<u8>, start: u64, end: u64, size: u64) {
    put_u64(b, start);
    b.push(b'-');
    put_u64(b, end);
    b.push(b'/');
    put_u64(b, size);
}

fn body(out: &mut Out, info: &FileInfo, off: u64, len: u64) {
    match &info.body {
        Body::Mem(m) => out.put(&m[off as usize..(off + len) as usize]),
        Body::Fd(fd) => out.file(fd.clone(), off, len),
    }
}

fn boundary(info: &FileInfo) -> Vec<u8> {
    let mut b = b"wickd-".to_vec();
    let v = info.ino ^ (info.mtime as u64).rotate_left(17) ^ info.size.rotate_left(41);
    b.extend_from_slice(format!("{v:016x}").as_bytes());
    b
}

fn not_modified(req: &Req, view: &View, env: &mut Env, info: &FileInfo, etag: &[u8]) -> u16 {
    let v = req.head.version;
    common_validators(env.head.begin(v, 304), etag, info);
    env.send_head(req.keep_alive, view.server_tag);
    304
}

fn precondition_failed(req: &Req, view: &View, env: &mut Env) -> u16 {
    page(req, view, env, 412, &[])
}

/// Does the If-Match / If-None-Match list match `etag`? `*` matches any current
/// representation; `strong`: W/ tags never match (If-Match), else weak comparison.
pub fn etag_list_matches(list: &[u8], etag: &[u8], strong: bool) -> bool {
    let list = crate::request::trim(list);
    if list == b"*" {
        return true;
    }
    if etag.is_empty() {
        return false;
    }
    let ours = etag.strip_prefix(b"W/").unwrap_or(etag);
    let ours_weak = etag.starts_with(b"W/");
    let mut rest = list;
    loop {
        rest = crate::request::trim(rest);
        while let Some(r) = rest.strip_prefix(b",") {
            rest = crate::request::trim(r);
        }
        if rest.is_empty() {
            return false;
        }
        let (weak, r) = match rest.strip_prefix(b"W/") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if !r.starts_with(b"\"") {
            return false; // malformed list
        }
        let Some(close) = memchr::memchr(b'"', &r[1..]) else {
            return false;
        };
        let tag = &r[..close + 2];
        if tag == ours && !(strong && (weak || ours_weak)) {
            return true;
        }
        rest = &r[close + 2..];
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeResult {
    Ignore,
    Unsatisfiable,
    /// Inclusive (first, last) byte positions, coalesced.
    Ranges(Vec<(u64, u64)>),
}

/// Most range-specs honoured; a request with more gets the whole file.
const MAX_RANGES: usize = 64;

/// Parse a Range value against a file of `size` bytes, as lighttpd: a unit other
/// than `bytes` is ignored; a malformed `bytes=` set is unsatisfiable (416).
pub fn parse_ranges(v: &[u8], size: u64) -> RangeResult {
    let Some(set) = v.strip_prefix(b"bytes=") else {
        return RangeResult::Ignore;
    };
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut n = 0;
    for spec in set.split(|&c| c == b',') {
        let spec = crate::request::trim(spec);
        if spec.is_empty() {
            continue;
        }
        n += 1;
        if n > MAX_RANGES {
            return RangeResult::Ignore;
        }
        let Some(dash) = memchr::memchr(b'-', spec) else {
            return RangeResult::Unsatisfiable;
        };
        let (a, b) = (&spec[..dash], &spec[dash + 1..]);
        let num = |s: &[u8]| -> Option<u64> {
            if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(s).ok()?.parse().ok()
        };
        let r = if a.is_empty() {
            // suffix: the last b bytes
            let Some(len) = num(b) else {
                return RangeResult::Unsatisfiable;
            };
            if len == 0 || size == 0 {
                None
            } else {
                Some((size.saturating_sub(len), size - 1))
            }
        } else {
            let Some(first) = num(a) else {
                return RangeResult::Unsatisfiable;
            };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(l) if l >= first => l,
                    _ => return RangeResult::Unsatisfiable,
                }
            };
            if first >= size {
                None
            } else {
                Some((first, last.min(size - 1)))
            }
        };
        if let Some(r) = r {
            out.push(r);
        }
    }
    if n == 0 {
        return RangeResult::Unsatisfiable;
    }
    if out.is_empty() {
        return RangeResult::Unsatisfiable;
    }
    // Coalesce overlapping ranges and ones with small gaps (a part header costs
    // about as much), in ascending order.
    out.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        if let Some(last) = merged.last_mut() {
            if s <= last.1.saturating_add(80) {
                last.1 = last.1.max(e);
                continue;
            }
        }
        merged.push((s, e));
    }
    RangeResult::Ranges(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeResult::*;
        assert_eq!(parse_ranges(b"bytes=0-4", 1000), Ranges(vec![(0, 4)]));
        assert_eq!(parse_ranges(b"bytes=-3", 1000), Ranges(vec![(997, 999)]));
        assert_eq!(parse_ranges(b"bytes=990-", 1000), Ranges(vec![(990, 999)]));
        assert_eq!(parse_ranges(b"bytes=0-2000", 1000), Ranges(vec![(0, 999)]));
        assert_eq!(parse_ranges(b"bytes=0-1,5-6", 1000), Ranges(vec![(0, 6)]));
        assert_eq!(
            parse_ranges(b"bytes=0-1,500-600", 1000),
            Ranges(vec![(0, 1), (500, 600)])
        );
        assert_eq!(parse_ranges(b"bytes=5000-", 1000), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=x-", 1000), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=5-2", 1000), Unsatisfiable);
        assert_eq!(parse_ranges(b"bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_ranges(b"items=0-3", 1000), Ignore);
        assert_eq!(parse_ranges(b"bytes = 0-4", 1000), Ignore);
        assert_eq!(parse_ranges(b"bytes=-5", 3), Ranges(vec![(0, 2)]));
    }

    #[test]
    fn etag_lists() {
        let e = b"\"123\"";
        assert!(etag_list_matches(b"*", e, true));
        assert!(etag_list_matches(b"\"1\", \"123\"", e, false));
        assert!(etag_list_matches(b"W/\"123\"", e, false));
        assert!(!etag_list_matches(b"W/\"123\"", e, true));
        assert!(!etag_list_matches(b"\"12\"", e, false));
        assert!(!etag_list_matches(b"garbage", e, false));
        assert!(!etag_list_matches(b"\"123\"", b"", false));
    }
}
