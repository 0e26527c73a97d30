//! mod_deflate (and mod_compress's keys, which lighttpd maps onto it): responses
//! compressed for clients that accept it. A response qualifies when its status has
//! a body (not 1xx, 204, 205, 304), it has no Content-Encoding or
//! Transfer-Encoding yet, its Content-Type starts with one of deflate.mimetypes
//! (none: only `""` in the list qualifies it), its length (when known) is above
//! deflate.min-compress-size and within deflate.max-compress-size, and its
//! Cache-Control does not say no-transform. Such a response gets
//! `Vary: Accept-Encoding`; it is compressed when the client accepts an allowed
//! coding ([`accept::choose`]), the request is not HEAD (as lighttpd, HEAD gets the
//! plain head) and the load average is within deflate.max-loadavg. The ETag then
//! gets the coding as suffix (`"123-gzip"`), Accept-Ranges goes, and an
//! If-None-Match naming the suffixed tag answers 304.
//!
//! Where: a whole static file ([`Deflate::encode_file`], from
//! `static_file::Env::send_file`: a Range request is answered from the plain file,
//! never compressed) is compressed into memory, or once into deflate.cache-dir
//! ([`cache`]) and reused while its ETag holds; a gateway's response
//! ([`Deflate::later`], decided at the claim, [`stream::Zip`] on the script's
//! head) is compressed while it streams, chunked to HTTP/1.1 clients; a
//! directory listing's page is compressed whole ([`stream::Later::whole`]). The
//! module's response_start hook has nothing to do on other heads (redirects,
//! the server's own error pages, 206).

pub mod accept;
pub mod cache;
pub mod encoder;
pub mod stream;

use super::{hook, Module, RespCx, Trigger};
use crate::request::{has_token, Method};
use crate::resp_head::ResponseHead;
use crate::stat_cache::{Body as FileBody, FileInfo};
use accept::Coding;
use encoder::Encoder;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use wick_conf::{Config, View};

pub struct Deflate {
    /// Some block sets deflate.max-loadavg: the trigger reads the load.
    watch_load: bool,
    /// The 1-minute load average, read once a second (sysinfo(2)).
    load: Cell<f64>,
    /// A cache entry could not be written (logged once).
    write_failed: Cell<bool>,
    cache: RefCell<cache::Cache>,
    /// Scratch: an entry name, a file's read block.
    name: RefCell<Vec<u8>>,
    block: RefCell<Vec<u8>>,
}

/// What goes after the head of a whole-file response.
pub enum Send {
    /// The file as it is.
    Plain,
    /// No body (a 304 or 412 answered here).
    Nothing,
    /// These compressed bytes.
    Bytes(Vec<u8>),
    /// A cache entry.
    Entry(cache::Entry),
}

impl Deflate {
    pub fn new(cfg: &Config) -> Result<Deflate, String> {
        let mut watch_load = false;
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(l) = p.deflate_compression_level().copied() {
                if !(1..=9).contains(&l) && l != -1 {
                    return Err(format!(
                        "{}compression-level must be between 1 and 9: {l}",
                        super::where_set(cfg, id, "deflate.compression-level")
                    ));
                }
            }
            if let Some(l) = p.deflate_max_loadavg() {
                watch_load |= loadavg_limit(l) > 0.0;
            }
        }
        let d = Deflate {
            watch_load,
            load: Cell::new(0.0),
            write_failed: Cell::new(false),
            cache: RefCell::new(cache::Cache::default()),
            name: RefCell::new(Vec::new()),
            block: RefCell::new(Vec::new()),
        };
        d.read_load();
        Ok(d)
    }

    fn read_load(&self) {
        if self.watch_load {
            self.load.set(crate::sys::loadavg1().unwrap_or(0.0));
        }
    }

    /// Over deflate.max-loadavg: compress nothing now.
    fn overloaded(&self, limit: &str) -> bool {
        let l = loadavg_limit(limit);
        l > 0.0 && self.load.get() > l
    }

    /// A whole file is about to be sent with `head` (the response_start hooks ran):
    /// compress it if it qualifies. `name` is its path beneath the document root.
    pub fn encode_file(
        &self,
        cx: &RespCx,
        head: &mut ResponseHead,
        file: &FileInfo,
        name: &[u8],
        log: &mut Vec<String>,
    ) -> Send {
        let v = cx.view;
        let len = file.size;
        let (min, max) = (*v.deflate_min_compress_size, *v.deflate_max_compress_size);
        if !qualifies(
            v.deflate_mimetypes,
            min,
            max,
            head.status,
            |n| head.get(n),
            Some(len),
        ) {
            return Send::Plain;
        }
        let had_vary = add_vary(head);
        if cx.base.head.method == Method::Head {
            return Send::Plain;
        }
        let accept = cx.rq.header(cx.base, "Accept-Encoding").unwrap_or(b"");
        let Some(coding) = accept::choose(v.deflate_allowed_encodings, accept) else {
            return Send::Plain;
        };
        let etag = head.get(b"ETag").map(|t| suffixed(t, coding));
        if let (Some(tag), Some(inm)) = (&etag, cx.base.header(b"if-none-match")) {
            if head.status < 300 && crate::static_file::etag_list_matches(inm, tag, false) {
                return not_modified(cx, head, tag);
            }
        }
        if self.overloaded(v.deflate_max_loadavg) {
            return Send::Plain;
        }
        let cacheable = !v.deflate_cache_dir.is_empty()
            && !had_vary
            && etag.as_ref().is_some_and(|t| t.len() > 4)
            && head
                .get(b"Cache-Control")
                .is_none_or(|c| !has_token(c, b"private") && !has_token(c, b"no-store"));
        let now = cx.clock.mono;
        let body = match (cacheable, &etag) {
            (true, Some(tag)) => {
                let mut entry_name = self.name.borrow_mut();
                cache::entry_name(v.document_root, name, tag, &mut entry_name);
                let mut cache = self.cache.borrow_mut();
                match cache.get(v.deflate_cache_dir, &entry_name, now) {
                    Some(e) => Send::Entry(e),
                    None => match self.compress(coding, v, file, head) {
                        Ok(bytes) => {
                            match cache.put(v.deflate_cache_dir, &entry_name, &bytes, now) {
                                Ok(e) => Send::Entry(e),
                                Err(e) => {
                                    // Once per worker: a cache dir that cannot
                                    // be written would log every request.
                                    if !self.write_failed.replace(true) {
                                        log.push(format!(
                                            "mod_deflate: writing {}/{} failed: {e} \
                                             (answers go out compressed from memory; \
                                             further failures are not logged)",
                                            v.deflate_cache_dir.trim_end_matches('/'),
                                            String::from_utf8_lossy(&entry_name)
                                        ));
                                    }
                                    Send::Bytes(bytes)
                                }
                            }
                        }
                        Err(e) => return self.failed(log, name, e),
                    },
                }
            }
            _ => match self.compress(coding, v, file, head) {
                Ok(bytes) => Send::Bytes(bytes),
                Err(e) => return self.failed(log, name, e),
            },
        };
        let n = match &body {
            Send::Bytes(b) => b.len() as u64,
            Send::Entry(e) => e.len,
            _ => return body,
        };
        if let Some(tag) = &etag {
            head.set(b"ETag", tag);
        }
        head.remove(b"Accept-Ranges");
        head.remove(b"Content-Length");
        head.add_u64(b"Content-Length", n);
        head.set(b"Content-Encoding", coding.label().as_bytes());
        body
    }

    fn failed(&self, log: &mut Vec<String>, name: &[u8], e: io::Error) -> Send {
        log.push(format!(
            "mod_deflate: compressing {} failed: {e}; sent as it is",
            String::from_utf8_lossy(name)
        ));
        Send::Plain
    }

    /// The whole file through an encoder, read deflate.work-block-size KiB at a time.
    fn compress(
        &self,
        coding: Coding,
        v: &View,
        file: &FileInfo,
        head: &ResponseHead,
    ) -> io::Result<Vec<u8>> {
        // (the Content-Type picks brotli's mode)
        let ctype = head.get(b"Content-Type").unwrap_or(b"");
        let size = file.size;
        let mut e = Encoder::new(coding, *v.deflate_compression_level, Some(size), ctype)?;
        let mut out = Vec::with_capacity((size / 4) as usize + 64);
        match &file.body {
            FileBody::Mem(m) => e.write(m)?,
            FileBody::Fd(fd) => {
                use std::os::fd::AsRawFd;
                let block = (*v.deflate_work_block_size).clamp(4, 64 << 10) << 10;
                let mut buf = self.block.borrow_mut();
                buf.resize(block.min(size) as usize, 0);
                let mut off = 0u64;
                while off < size {
                    let want = ((size - off) as usize).min(buf.len());
                    let n = crate::sys::pread(fd.as_raw_fd(), &mut buf[..want], off)?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                    }
                    e.write(&buf[..n])?;
                    e.take(&mut out);
                    off += n as u64;
                }
                if buf.capacity() > 1 << 20 {
                    *buf = Vec::new();
                }
            }
        }
        e.finish(&mut out)?;
        Ok(out)
    }

    /// mod_deflate's part in a gateway's response, decided at the claim (its
    /// head comes later): None when nothing of it can apply.
    pub fn later(&self, cx: &RespCx) -> Option<Box<stream::Later>> {
        let v = cx.view;
        if v.deflate_mimetypes.is_empty() {
            return None;
        }
        let head_only = cx.base.head.method == Method::Head;
        let accept = cx.rq.header(cx.base, "Accept-Encoding").unwrap_or(b"");
        let coding = match head_only || self.overloaded(v.deflate_max_loadavg) {
            true => None,
            false => accept::choose(v.deflate_allowed_encodings, accept),
        };
        Some(Box::new(stream::Later {
            coding,
            mimetypes: v.deflate_mimetypes.clone(),
            min: *v.deflate_min_compress_size,
            max_kib: *v.deflate_max_compress_size,
            level: *v.deflate_compression_level,
            sync_flush: *v.deflate_output_buffer_size == 0,
        }))
    }
}

/// deflate.max-loadavg as lighttpd reads it (strtod; "" or junk: no limit).
fn loadavg_limit(s: &str) -> f64 {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().unwrap_or(0.0)
}

/// Does a response of `status` with these fields and `len` qualify for
/// compression (module doc)?
pub fn qualifies<'h>(
    mimetypes: &[String],
    min: u64,
    max_kib: u64,
    status: u16,
    get: impl Fn(&[u8]) -> Option<&'h [u8]>,
    len: Option<u64>,
) -> bool {
    if mimetypes.is_empty()
        || status < 200
        || matches!(status, 204 | 205 | 304)
        || get(b"Content-Encoding").is_some()
        || get(b"Transfer-Encoding").is_some()
        || get(b"Cache-Control").is_some_and(|c| has_token(c, b"no-transform"))
    {
        return false;
    }
    if len.is_some_and(|n| !size_ok(n, min, max_kib)) {
        return false;
    }
    mime_ok(mimetypes, get(b"Content-Type"))
}

/// Above min (bytes), within max (KiB; 0: no limit).
pub fn size_ok(n: u64, min: u64, max_kib: u64) -> bool {
    n > min && (max_kib == 0 || n <= max_kib.saturating_mul(1024))
}

/// deflate.mimetypes against a Content-Type: prefixes (a trailing `*` ignored;
/// application/javascript also covers text/javascript, lighttpd's type for .js);
/// without a Content-Type, only a first entry "" qualifies.
pub fn mime_ok(list: &[String], ctype: Option<&[u8]>) -> bool {
    let Some(ct) = ctype else {
        return list.first().is_some_and(|m| m.is_empty());
    };
    list.iter().any(|m| {
        let m = m.as_bytes();
        let m = match m.strip_suffix(b"*") {
            Some(p) if m.len() > 2 => p,
            _ => m,
        };
        ct.starts_with(m) || (m == b"application/javascript" && ct.starts_with(b"text/javascript"))
    })
}

/// Vary: Accept-Encoding (kept when a Vary already names it or `*`). Returns
/// whether the response had a Vary before.
pub fn add_vary(head: &mut ResponseHead) -> bool {
    let mut had = false;
    let mut named = false;
    for (n, v) in head.fields() {
        if n.eq_ignore_ascii_case(b"Vary") {
            had = true;
            named |= has_token(v, b"Accept-Encoding") || has_token(v, b"*");
        }
    }
    if !named {
        head.add(b"Vary", b"Accept-Encoding");
    }
    had
}

/// `"123"` → `"123-gzip"` (a weak tag stays weak).
pub fn suffixed(etag: &[u8], coding: Coding) -> Vec<u8> {
    let mut t = etag.to_vec();
    if t.last() == Some(&b'"') {
        t.pop();
    }
    t.push(b'-');
    t.extend_from_slice(coding.label().as_bytes());
    t.push(b'"');
    t
}

/// If-None-Match named the compressed representation: 304 to GET and HEAD
/// (its validators and Vary, no body), 412 to other methods.
fn not_modified(cx: &RespCx, head: &mut ResponseHead, tag: &[u8]) -> Send {
    head.remove(b"Content-Length");
    head.remove(b"Accept-Ranges");
    head.set(b"ETag", tag);
    if matches!(cx.base.head.method, Method::Get | Method::Head) {
        head.status = 304;
    } else {
        head.status = 412;
        head.add(b"Content-Length", b"0");
    }
    Send::Nothing
}

impl Module for Rc<Deflate> {
    fn name(&self) -> &'static str {
        "mod_deflate"
    }

    /// RESPONSE_START: the request takes the module path and its handler gets
    /// the hooks, through which [`Deflate::encode_file`] and [`Deflate::later`]
    /// are reached.
    fn hooks(&self) -> u16 {
        hook::RESPONSE_START
    }

    fn trigger(&self, _t: &mut Trigger) {
        self.read_load();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mimetype_prefixes() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(mime_ok(&l(&["text/"]), Some(b"text/html; charset=utf-8")));
        assert!(mime_ok(&l(&["text/*"]), Some(b"text/css")));
        assert!(!mime_ok(&l(&["text/html"]), Some(b"image/png")));
        assert!(mime_ok(
            &l(&["application/javascript"]),
            Some(b"text/javascript")
        ));
        assert!(!mime_ok(&l(&["text/"]), None));
        assert!(mime_ok(&l(&["", "text/"]), None));
        assert!(mime_ok(&l(&[""]), Some(b"image/png")));
    }

    #[test]
    fn sizes_and_tokens() {
        assert!(!size_ok(256, 256, 0));
        assert!(size_ok(257, 256, 0));
        assert!(size_ok(1024, 0, 1));
        assert!(!size_ok(1025, 0, 1));
        assert!(has_token(b"public, No-Transform", b"no-transform"));
        assert!(has_token(b"max-age=5,private=\"x\"", b"private"));
        assert!(!has_token(b"no-transformer", b"no-transform"));
        assert_eq!(suffixed(b"\"12\"", Coding::Br), b"\"12-br\"");
        assert_eq!(suffixed(b"W/\"12\"", Coding::Gzip), b"W/\"12-gzip\"");
        assert_eq!(loadavg_limit("2.5"), 2.5);
        assert_eq!(loadavg_limit(" 3x"), 3.0);
        assert_eq!(loadavg_limit(""), 0.0);
    }
}
