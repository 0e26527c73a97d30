//! The HTTP/1.1 side of a connection that is not the connection's state machine:
//! where the next request head ends in the input (blank lines, limits), whether
//! the connection is kept, the interim 100 Continue, and the head of an internal
//! request. The head's own grammar is request.rs; what a request means is
//! pipeline.rs; conn.rs moves bytes and keeps the phase.

use crate::request::{self, Head, Known, Method, ParseError, Version};
use crate::response::Out;

/// What the input holds at the start of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Not the whole head yet; the input was searched up to `scanned`.
    Partial { scanned: usize },
    /// One blank line before the request line, `n` bytes, to skip (RFC 9112
    /// 2.2; a second is a 400, as lighttpd answers).
    Blank(usize),
    /// A whole head of `n` bytes.
    Head(usize),
    /// Malformed: answer with its status and close.
    Bad(ParseError),
}

/// Look for the end of the next head in `d`, searched before up to `scanned`.
/// `blank_skipped`: this request already had its blank line.
pub fn scan(d: &[u8], scanned: usize, field_limit: usize, blank_skipped: bool) -> Scan {
    let skip = request::leading_crlf(d);
    if skip > 0 {
        if skip > 2 || blank_skipped {
            return Scan::Bad(ParseError {
                status: 400,
                version: Version::Http10,
                reason: "more than one blank line before the request line",
            });
        }
        return Scan::Blank(skip);
    }
    let mut new_scanned = 0;
    match request::find_end(d, scanned.min(d.len()), field_limit, &mut new_scanned) {
        Ok(None) => Scan::Partial {
            scanned: new_scanned,
        },
        Ok(Some(n)) => Scan::Head(n),
        Err(e) => Scan::Bad(e),
    }
}

/// Is the connection kept after this request? What the client asked, unless the
/// worker drains or server.max-keep-alive-requests is reached (`requests`
/// counts this one).
pub fn keep_alive(head: &Head, site: &crate::site::Site, draining: bool, requests: u32) -> bool {
    head.keep_alive && !draining && site.keep_alive_enabled() && requests < site.keep_alive_requests
}

/// Does the client wait for a 100 Continue before its body? Only worth sending
/// when nothing of the body came with the head.
pub fn wants_continue(head: &Head, rest_empty: bool) -> bool {
    rest_empty
        && head.expect_continue
        && head.version == Version::Http11
        && head.body != request::BodyKind::None
}

/// The interim response that lets the body come.
pub fn interim_continue(out: &mut Out) {
    out.put(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// The head of an internal request (a script's local redirect, an error handler):
/// the saved one with another target, and GET when `method_get`, without its
/// body (a POST says Content-Length: 0).
pub fn internal_head(
    buf: &[u8],
    head: &Head,
    fields: &[request::Field],
    target: &[u8],
    method_get: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + target.len() + 16);
    if method_get {
        out.extend_from_slice(b"GET");
    } else {
        out.extend_from_slice(head.method_span.of(buf));
    }
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(match head.version {
        Version::Http10 => b" HTTP/1.0\r\n",
        Version::Http11 | Version::Http2 => b" HTTP/1.1\r\n",
    });
    for f in fields {
        if matches!(
            f.known,
            Known::ContentLength | Known::TransferEncoding | Known::Expect
        ) {
            continue;
        }
        out.extend_from_slice(f.name.of(buf));
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value.of(buf));
        out.extend_from_slice(b"\r\n");
    }
    if !method_get && head.method == Method::Post {
        out.extend_from_slice(b"Content-Length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `b` (at most `max` bytes) for a log line: CRLF as a line break, other
/// control and non-ASCII bytes as \xNN, so a request cannot forge log lines.
pub fn printable(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    let mut s = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                s.push('\n');
                i += 1;
            }
            c @ (b' '..=b'~' | b'\t') => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
        i += 1;
    }
    s.truncate(s.trim_end().len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_blank_line_is_skipped_a_second_is_refused() {
        assert_eq!(
            scan(b"\r\nGET / HTTP/1.1\r\n\r\n", 0, 8192, false),
            Scan::Blank(2)
        );
        assert!(matches!(scan(b"\r\nGET", 0, 8192, true), Scan::Bad(e) if e.status == 400));
        assert!(matches!(scan(b"\r\n\r\nGET", 0, 8192, false), Scan::Bad(e) if e.status == 400));
        assert_eq!(
            scan(b"GET / HTTP/1.1\r\n\r\nX", 0, 8192, false),
            Scan::Head(18)
        );
        assert!(matches!(
            scan(b"GET / HT", 0, 8192, false),
            Scan::Partial { .. }
        ));
    }

    #[test]
    fn internal_head_drops_the_body_framing() {
        let raw = b"POST /a?x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n";
        let mut fields = Vec::new();
        let head = request::parse(raw, &mut fields).expect("parse");
        let ih = internal_head(raw, &head, &fields, b"/err.cgi", false);
        assert_eq!(
            ih,
            b"POST /err.cgi HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"
        );
        let ih = internal_head(raw, &head, &fields, b"/next", true);
        assert_eq!(ih, b"GET /next HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n");
    }
}
