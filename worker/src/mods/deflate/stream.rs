//! mod_deflate on a response that comes after its request's context: a gateway's
//! (CGI; FastCGI later) or a deferred directory listing. What applies is decided
//! while the request is there ([`Later`]: the coding the client accepts, the
//! options of its blocks); on the script's head, whether its body is compressed
//! ([`Later::check`], [`Later::start`]), and then [`Zip`] compresses the body as
//! it streams (memory per response: the coder's state and what was not sent yet);
//! a listing's whole page goes through [`Later::whole`].

use super::accept::Coding;
use super::encoder::Encoder;
use crate::cgi::resp::RespHead;
use crate::resp_head::ResponseHead;
use std::io;

/// What mod_deflate will do with a gateway's response, decided at the claim.
#[derive(Clone, Debug)]
pub struct Later {
    /// The coding the client accepts (None: Vary only; HEAD; over max-loadavg).
    pub coding: Option<Coding>,
    pub mimetypes: Vec<String>,
    pub min: u64,
    pub max_kib: u64,
    pub level: i64,
    /// deflate.output-buffer-size 0: flush the coder whenever the script pauses
    /// (lighttpd's sync_flush for streamed responses).
    pub sync_flush: bool,
}

impl Later {
    /// Does the script's response qualify (its length, when it sent one)? Then it
    /// varies by Accept-Encoding, whether or not this client gets it compressed.
    pub fn check(&self, status: u16, h: &mut RespHead) -> bool {
        let get = |n: &[u8]| {
            let name = std::str::from_utf8(n).unwrap_or("");
            h.get(name).map(str::as_bytes)
        };
        let ok = super::qualifies(
            &self.mimetypes,
            self.min,
            self.max_kib,
            status,
            get,
            h.content_length,
        );
        if ok {
            add_vary(h);
        }
        ok
    }

    /// Compress the body: the head's fields say so (Content-Encoding, the ETag's
    /// suffix; no Content-Length, which only the compressed whole would have).
    /// The script's Content-Length still bounds what is read of its body.
    pub fn start(&self, h: &mut RespHead) -> Option<Box<Zip>> {
        let coding = self.coding?;
        let ctype = h.get("content-type").unwrap_or("").to_string();
        let enc = Encoder::new(coding, self.level, h.content_length, ctype.as_bytes()).ok()?;
        let left = h.content_length;
        h.remove("content-length");
        h.content_length = None;
        if let Some(tag) = h.remove("etag") {
            let t = super::suffixed(tag.as_bytes(), coding);
            h.fields
                .push(("ETag".into(), String::from_utf8_lossy(&t).into_owned()));
        }
        h.remove("content-encoding");
        h.fields
            .push(("Content-Encoding".into(), coding.label().into()));
        Some(Box::new(Zip {
            enc: Some(enc),
            left,
            fed: false,
            sync: self.sync_flush,
        }))
    }
}

impl Later {
    /// A whole body made after the request's context (a directory listing):
    /// compressed into a new body when it qualifies and the client takes a coding
    /// (the head gets Vary, Content-Encoding, the compressed Content-Length).
    pub fn whole(&self, head: &mut ResponseHead, body: &[u8]) -> Option<Vec<u8>> {
        let len = Some(body.len() as u64);
        let (min, max) = (self.min, self.max_kib);
        if !super::qualifies(&self.mimetypes, min, max, head.status, |n| head.get(n), len) {
            return None;
        }
        super::add_vary(head);
        let coding = self.coding?;
        let ctype = head.get(b"Content-Type").unwrap_or(b"").to_vec();
        let mut e = Encoder::new(coding, self.level, len, &ctype).ok()?;
        let mut out = Vec::with_capacity(body.len() / 4 + 64);
        e.write(body).ok()?;
        e.finish(&mut out).ok()?;
        if let Some(tag) = head.get(b"ETag").map(|t| super::suffixed(t, coding)) {
            head.set(b"ETag", &tag);
        }
        head.remove(b"Content-Length");
        head.add_u64(b"Content-Length", out.len() as u64);
        head.set(b"Content-Encoding", coding.label().as_bytes());
        Some(out)
    }
}

/// Vary: Accept-Encoding on a script's head, unless a Vary names it or `*`.
fn add_vary(h: &mut RespHead) {
    let named = h.fields.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("vary")
            && (crate::request::has_token(v.as_bytes(), b"Accept-Encoding")
                || crate::request::has_token(v.as_bytes(), b"*"))
    });
    if !named {
        h.fields.push(("Vary".into(), "Accept-Encoding".into()));
    }
}

/// A response body being compressed.
#[derive(Debug)]
pub struct Zip {
    enc: Option<Encoder>,
    /// Bytes the script still owes by its Content-Length (more are dropped).
    left: Option<u64>,
    /// Bytes went in since the last flush.
    fed: bool,
    sync: bool,
}

impl Zip {
    /// Body bytes from the script; compressed output appended to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let data = match &mut self.left {
            Some(left) => {
                let n = (*left).min(data.len() as u64) as usize;
                *left -= n as u64;
                &data[..n]
            }
            None => data,
        };
        let Some(e) = self.enc.as_mut() else {
            return Ok(());
        };
        if !data.is_empty() {
            e.write(data)?;
            self.fed = true;
        }
        e.take(out);
        Ok(())
    }

    /// The script paused: what it sent becomes decodable now (when
    /// deflate.output-buffer-size is 0), so a slow stream is not held back.
    pub fn pause(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !(self.sync && self.fed) {
            return Ok(());
        }
        let Some(e) = self.enc.as_mut() else {
            return Ok(());
        };
        self.fed = false;
        e.flush()?;
        e.take(out);
        Ok(())
    }

    /// The script's output ended: the rest of the stream. Ok(false): it sent
    /// less than its Content-Length, and the stream is left unfinished so that the
    /// client sees the cut.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let Some(e) = self.enc.take() else {
            return Ok(true);
        };
        if self.left.is_some_and(|l| l > 0) {
            return Ok(false);
        }
        e.finish(out)?;
        Ok(true)
    }
}
