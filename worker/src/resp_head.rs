//! A response head kept as a list until the response_start hooks ran, then
//! serialised into [`Out`] once, as lighttpd's resp_headers and
//! http_response_write_header.
//!
//! The flow of a response made in the worker (static files, error pages,
//! redirects, listings):
//!
//! 1. The handler [`ResponseHead::begin`]s the head and adds its fields.
//! 2. [`crate::static_file::Env::send_head`]: [`ResponseHead::finish`] adds
//!    Connection, Date and Server; the response_start hooks
//!    ([`crate::mods::Hooks`]: mod_setenv, mod_expire) edit the list;
//!    [`ResponseHead::write`] puts the status line, the fields and the blank line
//!    into `Out`.
//! 3. The handler appends the body (bytes, or a file chunk).
//!
//! Handlers build their body after the head, so the head is never moved in front
//! of it and file-chunk positions are never shifted. A deferred listing keeps its
//! own head (hooks already run) until the page is done.
//!
//! Storage: the fields are kept as the lines they will be on the wire
//! ("Name: value\r\n") in one byte buffer, with an index of (start, colon, end)
//! per field; the worker keeps one head and reuses its capacity, so a request
//! allocates nothing here, and serialising is one copy. Removing a field (only
//! hooks do) moves the lines after it.

use crate::date::Clock;
use crate::errors::reason;
use crate::request::Version;
use crate::response::Out;

/// A field's place in [`ResponseHead::buf`]: `buf[start..colon]` is its name,
/// `buf[colon + 2..end]` its value, a CRLF follows.
#[derive(Clone, Copy, Debug)]
struct Line {
    start: usize,
    colon: usize,
    end: usize,
}

#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub version: Version,
    buf: Vec<u8>,
    lines: Vec<Line>,
}

impl Default for ResponseHead {
    fn default() -> Self {
        ResponseHead {
            status: 200,
            version: Version::Http11,
            buf: Vec::new(),
            lines: Vec::new(),
        }
    }
}

impl ResponseHead {
    /// A head for a new response, keeping the buffers' capacity.
    pub fn begin(&mut self, version: Version, status: u16) -> &mut Self {
        self.status = status;
        self.version = version;
        self.buf.clear();
        self.lines.clear();
        if self.buf.capacity() > 64 << 10 {
            self.buf.shrink_to(4 << 10);
        }
        self
    }

    /// Append a field, even when the name is already there.
    pub fn add(&mut self, name: &[u8], value: &[u8]) -> &mut Self {
        self.add_with(name, |b| b.extend_from_slice(value))
    }

    /// Append a field with a decimal value.
    pub fn add_u64(&mut self, name: &[u8], v: u64) -> &mut Self {
        self.add_with(name, |b| crate::response::put_u64(b, v))
    }

    /// Append a field whose value `value` writes (no temporary for composed
    /// values). CR and LF in a value become spaces: no value can add a line.
    pub fn add_with(&mut self, name: &[u8], value: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        let colon = self.buf.len();
        self.buf.extend_from_slice(b": ");
        value(&mut self.buf);
        let v = &mut self.buf[colon + 2..];
        if memchr::memchr2(b'\r', b'\n', v).is_some() {
            for c in v.iter_mut().filter(|c| **c == b'\r' || **c == b'\n') {
                *c = b' ';
            }
        }
        let end = self.buf.len();
        self.buf.extend_from_slice(b"\r\n");
        self.lines.push(Line { start, colon, end });
        self
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| self.buf[l.start..l.colon].eq_ignore_ascii_case(name))
    }

    /// The value of the first field `name` (any case).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        let l = self.lines[self.find(name)?];
        Some(&self.buf[l.colon + 2..l.end])
    }

    pub fn has(&self, name: &[u8]) -> bool {
        self.find(name).is_some()
    }

    /// Remove every field `name` (any case).
    pub fn remove(&mut self, name: &[u8]) {
        while let Some(i) = self.find(name) {
            let l = self.lines.remove(i);
            let (from, to) = (l.start, l.end + 2);
            self.buf.drain(from..to);
            for m in &mut self.lines[i..] {
                m.start -= to - from;
                m.colon -= to - from;
                m.end -= to - from;
            }
        }
    }

    /// Replace every field `name` with one at the end; an empty value removes
    /// them (mod_setenv's set-response-header).
    pub fn set(&mut self, name: &[u8], value: &[u8]) {
        self.remove(name);
        if !value.is_empty() {
            self.add(name, value);
        }
    }

    /// The fields in order, as (name, value).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines
            .iter()
            .map(|l| (&self.buf[l.start..l.colon], &self.buf[l.colon + 2..l.end]))
    }

    /// Connection, when the default of the version does not say it.
    pub fn connection(&mut self, keep_alive: bool) {
        if self.version == Version::Http2 {
            // HTTP/2 has no Connection field: the stream ends, not the connection.
        } else if !keep_alive {
            self.add(b"Connection", b"close");
        } else if self.version == Version::Http10 {
            self.add(b"Connection", b"keep-alive");
        }
    }

    pub fn date(&mut self, clock: &Clock) {
        self.add(b"Date", clock.http_date());
    }

    /// Server (server.tag), unless the tag is empty.
    pub fn server(&mut self, tag: &[u8]) {
        if !tag.is_empty() {
            self.add(b"Server", tag);
        }
    }

    /// What every response of the worker ends its fields with: Connection, Date,
    /// Server.
    pub fn finish(&mut self, clock: &Clock, tag: &str, keep_alive: bool) {
        self.connection(keep_alive);
        self.date(clock);
        self.server(tag.as_bytes());
    }

    /// Serialise: status line, fields, blank line.
    pub fn write(&self, out: &mut Out) {
        out.buf.reserve(self.buf.len() + 48);
        out.put(match self.version {
            Version::Http11 => b"HTTP/1.1 ",
            Version::Http2 => b"HTTP/2.0 ",
            Version::Http10 => b"HTTP/1.0 ",
        });
        out.put_u64(u64::from(self.status));
        out.put(b" ");
        out.put(reason(self.status).as_bytes());
        out.put(b"\r\n");
        out.put(&self.buf);
        out.put(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(h: &ResponseHead) -> String {
        let mut o = Out::default();
        h.write(&mut o);
        String::from_utf8(o.buf).expect("utf8")
    }

    #[test]
    fn serialised_as_the_handlers_wrote_it() {
        let mut c = Clock::new();
        c.tick();
        let date = String::from_utf8(c.http_date().to_vec()).expect("date");
        let mut h = ResponseHead::default();
        h.begin(Version::Http11, 200)
            .add(b"Content-Type", b"text/plain")
            .add_u64(b"Content-Length", 12);
        h.finish(&c, "wickd", true);
        assert_eq!(
            text(&h),
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\
                 Date: {date}\r\nServer: wickd\r\n\r\n"
            )
        );
        h.begin(Version::Http10, 404).add_u64(b"Content-Length", 0);
        h.finish(&c, "", true);
        assert_eq!(
            text(&h),
            format!(
                "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\
                 Connection: keep-alive\r\nDate: {date}\r\n\r\n"
            )
        );
        h.begin(Version::Http11, 304);
        h.finish(&c, "x", false);
        assert_eq!(
            text(&h),
            format!("HTTP/1.1 304 Not Modified\r\nConnection: close\r\nDate: {date}\r\nServer: x\r\n\r\n")
        );
    }

    #[test]
    fn add_set_remove_as_setenv_needs() {
        let mut h = ResponseHead::default();
        h.begin(Version::Http11, 200)
            .add(b"Content-Type", b"text/html")
            .add(b"X-A", b"1")
            .add(b"Server", b"wickd");
        // add: another field of the same name
        h.add(b"x-a", b"2");
        assert_eq!(h.get(b"X-A"), Some(&b"1"[..]));
        assert_eq!(
            h.fields()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"x-a"))
                .count(),
            2
        );
        // set: every field of the name replaced by one at the end
        h.set(b"X-a", b"3");
        assert_eq!(
            text(&h),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: wickd\r\nX-a: 3\r\n\r\n"
        );
        // set with an empty value removes
        h.set(b"content-type", b"");
        assert!(!h.has(b"Content-Type"));
        assert_eq!(h.get(b"server"), Some(&b"wickd"[..]));
        assert_eq!(h.get(b"x-A"), Some(&b"3"[..]));
        h.remove(b"Server");
        h.remove(b"Absent");
        assert_eq!(text(&h), "HTTP/1.1 200 OK\r\nX-a: 3\r\n\r\n");
        // begin clears
        h.begin(Version::Http11, 204);
        assert_eq!(h.fields().count(), 0);
        assert_eq!(text(&h), "HTTP/1.1 204 No Content\r\n\r\n");
    }

    #[test]
    fn values_cannot_add_lines() {
        let mut h = ResponseHead::default();
        h.begin(Version::Http11, 200)
            .add(b"X-Evil", b"a\r\nSet-Cookie: b")
            .add_with(b"Location", |b| b.extend_from_slice(b"/p\n"));
        assert_eq!(
            text(&h),
            "HTTP/1.1 200 OK\r\nX-Evil: a  Set-Cookie: b\r\nLocation: /p \r\n\r\n"
        );
    }

    #[test]
    fn reused_without_growing() {
        let mut h = ResponseHead::default();
        let fill = |h: &mut ResponseHead| {
            h.begin(Version::Http11, 200);
            for i in 0..8 {
                h.add_u64(b"X-N", i);
            }
        };
        fill(&mut h);
        let (b, l) = (h.buf.capacity(), h.lines.capacity());
        for _ in 0..100 {
            fill(&mut h);
        }
        assert_eq!((h.buf.capacity(), h.lines.capacity()), (b, l));
    }
}
