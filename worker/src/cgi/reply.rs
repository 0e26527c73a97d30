//! A script's output to the client: its head parsed and framed, its body,
//! local redirects and X-Sendfile, its stderr to the log.

use super::resp::{Parsed, RespHead};
use crate::chunked::Decoder;
use crate::ctx::Ctx;
use crate::request::Version;
use crate::stat_cache::{Found, Root};
use wick_proto::spawner::FinishReason;

use super::*;
use crate::internal::{Internal, InternalInfo};

pub(crate) fn flush_err(ctx: &mut Ctx, job: &mut Job, all: bool) {
    while let Some(nl) = memchr::memchr(b'\n', &job.errbuf) {
        let line: Vec<u8> = job.errbuf.drain(..=nl).collect();
        let line = &line[..line.len() - 1];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        ctx.cgi.log.push(format!(
            "{}: {}: {}",
            job.module,
            job.script,
            String::from_utf8_lossy(&line[..line.len().min(ERR_LINE)])
        ));
    }
    if (all && !job.errbuf.is_empty()) || job.errbuf.len() > ERR_LINE {
        let line = std::mem::take(&mut job.errbuf);
        ctx.cgi.log.push(format!(
            "{}: {}: {}",
            job.module,
            job.script,
            String::from_utf8_lossy(&line[..line.len().min(ERR_LINE)])
        ));
    }
}

/// Bytes from the script's stdout.
pub(crate) fn stdout_data(ctx: &mut Ctx, job: &mut Job, data: &[u8]) -> Option<Pump> {
    if job.framing != Framing::Head {
        body_bytes(ctx, job, data);
        return None;
    }
    // A head that arrives whole (nearly every one) is read where it lies; only
    // one cut short is gathered in `job.head`.
    if job.head.is_empty() {
        return match resp::parse(data) {
            Parsed::Partial => {
                job.head.extend_from_slice(data);
                None
            }
            parsed => head_parsed(ctx, job, parsed, data),
        };
    }
    job.head.extend_from_slice(data);
    let buf = std::mem::take(&mut job.head);
    match resp::parse(&buf) {
        Parsed::Partial => {
            job.head = buf;
            None
        }
        parsed => head_parsed(ctx, job, parsed, &buf),
    }
}

/// The script's head read from `buf` (which holds what followed it too).
fn head_parsed(ctx: &mut Ctx, job: &mut Job, parsed: Parsed, buf: &[u8]) -> Option<Pump> {
    match parsed {
        Parsed::Partial => None,
        Parsed::NoHeaders => {
            start_response(ctx, job, RespHead::default(), 200);
            body_bytes(ctx, job, buf);
            None
        }
        // A script's bad head is its error (500); a backend server's is a bad
        // gateway (lighttpd's gw_backend answers 502).
        Parsed::Malformed(why) => {
            let status = if job.spawned { 500 } else { 502 };
            malformed(ctx, job, &why, status)
        }
        Parsed::BadStatusLine(why) => malformed(ctx, job, &why, 502),
        Parsed::Head(h) => {
            let rest = &buf[h.len..];
            if h.effective_status() < 200 && h.effective_status() != 101 {
                // 1xx from a script: dropped; the real head follows.
                job.head.clear();
                return stdout_data(ctx, job, rest);
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
            body_bytes(ctx, job, rest);
            None
        }
    }
}

/// A response head that cannot be sent: logged, and an error page instead.
pub(crate) fn malformed(ctx: &mut Ctx, job: &mut Job, why: &str, status: u16) -> Option<Pump> {
    ctx.cgi.log.push(format!(
        "{}: malformed response from {}: {why}",
        job.module,
        job.who()
    ));
    let id = job.id;
    fail(job, &ctx.clock, &ctx.pages, status);
    job_finish(ctx, id, job.spawned, FinishReason::Error);
    Some(Pump::Done)
}

/// The script's output ended.
pub(crate) fn stdout_eof(ctx: &mut Ctx, job: &mut Job) -> Option<Pump> {
    if job.framing == Framing::Head {
        if job.head.is_empty() {
            if job.stage != Stage::Done {
                ctx.cgi.log.push(format!(
                    "{}: {} ended without a response",
                    job.module,
                    job.who()
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
    if let Some(mut z) = job.zip.take() {
        let mut rest = Vec::new();
        match z.finish(&mut rest) {
            Ok(true) => frame(job, &rest),
            // Shorter than its Content-Length, or the coder failed: the client
            // learns of it by the close, without the stream's end.
            _ => {
                job.keep_alive = false;
                job.framing = Framing::Discard;
            }
        }
    }
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
        job_finish(ctx, job.id, job.spawned, FinishReason::Done);
    }
    None
}

/// Response body bytes as the framing says.
pub(crate) fn body_bytes(ctx: &mut Ctx, job: &mut Job, data: &[u8]) {
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

/// Decoded response body bytes into `out` (or the pending body): compressed
/// when mod_deflate compresses this response, then framed.
pub(crate) fn body_bytes_raw(job: &mut Job, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if let Some(z) = job.zip.as_mut() {
        let mut c = Vec::new();
        if z.feed(data, &mut c).is_err() {
            coder_failed(job);
            return;
        }
        frame(job, &c);
        return;
    }
    frame(job, data);
}

/// The script paused (its pipe is empty): a compressed body is flushed so that
/// what it said so far reaches the client (deflate.output-buffer-size 0).
pub(super) fn source_paused(job: &mut Job) {
    if let Some(z) = job.zip.as_mut() {
        let mut c = Vec::new();
        if z.pause(&mut c).is_err() {
            coder_failed(job);
            return;
        }
        frame(job, &c);
    }
}

/// A coder error (not expected: its output is memory): the response is cut.
fn coder_failed(job: &mut Job) {
    job.zip = None;
    job.keep_alive = false;
    job.framing = Framing::Discard;
}

/// Body bytes for the client by the framing.
fn frame(job: &mut Job, data: &[u8]) {
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
            job.emit(&data[..n]);
            job.framing = Framing::Length(rem - n as u64);
        }
        Framing::Chunked => {
            job.emit(format!("{:x}\r\n", data.len()).as_bytes());
            job.emit(data);
            job.emit(b"\r\n");
        }
        Framing::UntilClose => job.emit(data),
    }
}

/// Write the response head for the client and choose the body framing.
pub(crate) fn start_response(ctx: &mut Ctx, job: &mut Job, h: RespHead, status: u16) {
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
    // mod_deflate: a response that qualifies varies by Accept-Encoding; its body
    // is compressed when the client takes a coding (a known length: now, chunked;
    // none yet: when the pending head is committed).
    let deflate = job.hooks.deflate.take();
    let mut h = h;
    let deflate = deflate.filter(|d| d.check(status, &mut h));
    job.framing = match h.content_length {
        _ if no_body => Framing::Discard,
        Some(n) => match deflate.and_then(|d| d.start(&mut h)) {
            Some(z) => {
                job.zip = Some(z);
                streamed(job)
            }
            None => Framing::Length(n),
        },
        None => {
            job.hooks.deflate = deflate;
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
    write_head(ctx, job, h, status, None);
}

/// A pending head goes out: with Content-Length when the script's output is all
/// in (`ended`), else chunked to HTTP/1.1 (until close to HTTP/1.0).
pub(crate) fn commit_head(ctx: &mut Ctx, job: &mut Job, ended: bool) {
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
    // mod_deflate: a whole body within deflate.min/max-compress-size, or a
    // stream, is compressed.
    if let Some(d) = job.hooks.deflate.take() {
        if !ended || crate::mods::deflate::size_ok(body.len() as u64, d.min, d.max_kib) {
            job.zip = d.start(&mut h);
        }
    }
    if ended {
        let mut whole = Vec::new();
        let body = match job.zip.take() {
            Some(mut z) => {
                if z.feed(&body, &mut whole).is_err() || !matches!(z.finish(&mut whole), Ok(true)) {
                    // (not expected: the coder writes to memory)
                    let id = job.id;
                    fail(job, &ctx.clock, &ctx.pages, 500);
                    ctx.cgi.finish(id, FinishReason::Error);
                    return;
                }
                whole
            }
            None => body,
        };
        job.framing = Framing::Length(body.len() as u64);
        write_head(ctx, job, h, status, Some(body.len() as u64));
        frame(job, &body);
        return;
    }
    job.framing = streamed(job);
    write_head(ctx, job, h, status, None);
    body_bytes_raw(job, &body);
}

/// The framing of a body whose length is not known: chunked to HTTP/1.1, else
/// until the close.
fn streamed(job: &mut Job) -> Framing {
    if job.version == Version::Http11 {
        Framing::Chunked
    } else {
        job.keep_alive = false;
        Framing::UntilClose
    }
}

/// The head for the client, framed as `job.framing` says: the script's fields,
/// then Transfer-Encoding, Connection, Date (unless the script sent one), Server
/// (the script's, else server.tag); `length`: a Content-Length the worker
/// counted (the script's, if it sent one, is among its fields). The response_start hooks do not run here (the
/// request's context is gone; lighttpd runs them on backend responses too).
pub(crate) fn write_head(
    ctx: &mut Ctx,
    job: &mut Job,
    mut h: RespHead,
    status: u16,
    length: Option<u64>,
) {
    let out = &mut job.out;
    let mark = out.buf.len();
    let head = ctx.resp.begin(job.version, status);
    let has_date = h.get("date").is_some();
    let server = h.remove("server");
    for (k, v) in &job.carried {
        head.add(k, v);
    }
    for (k, v) in &h.fields {
        head.add(k.as_bytes(), v.as_bytes());
    }
    if let Some(n) = length {
        head.add_u64(b"Content-Length", n);
    }
    if job.framing == Framing::Chunked {
        head.add(b"Transfer-Encoding", b"chunked");
    }
    head.connection(job.keep_alive);
    if !has_date {
        head.date(&ctx.clock);
    }
    head.server(server.as_deref().unwrap_or(&job.tag).as_bytes());
    job.hooks.run(head, &ctx.clock);
    head.write(out);
    job.status = status;
    if let Some(l) = &mut job.log {
        l.head(status, &job.out.buf[mark..]);
    }
    job.started = true;
}

/// cgi.local-redir: the request runs again for the Location path; the script that
/// asked is done.
pub(crate) fn local_redirect(
    ctx: &mut Ctx,
    job: &mut Job,
    h: &RespHead,
    loc: Vec<u8>,
) -> Option<Pump> {
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
    job_finish(ctx, id, job.spawned, FinishReason::Done);
    if job.loops >= 5 {
        ctx.cgi.log.push(format!(
            "{}: too many internal loops while processing request: {}",
            job.module,
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
            fields: Vec::new(),
            orig_target,
            new_target: String::from_utf8_lossy(&loc).into_owned(),
            loops: job.loops + 1,
            error: None,
        },
        target: loc,
    })))
}

/// cgi.x-sendfile: the response body is a file the script names.
pub(crate) fn x_sendfile(
    ctx: &mut Ctx,
    job: &mut Job,
    mut h: RespHead,
    value: &str,
) -> Option<Pump> {
    h.remove("x-sendfile");
    // The file goes out as it is (mod_deflate does not see it).
    job.hooks.deflate = None;
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
                    "{}: X-Sendfile ({}) not under configured x-sendfile-docroot(s)",
                    job.module,
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
        "{}: X-Sendfile from {}: {} ({status})",
        job.module,
        job.script,
        String::from_utf8_lossy(&path)
    ));
    let id = job.id;
    fail(job, &ctx.clock, &ctx.pages, status);
    job_finish(ctx, id, job.spawned, FinishReason::Done);
    Some(Pump::Done)
}
