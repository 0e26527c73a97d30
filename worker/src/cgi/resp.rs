//! A CGI script's response head (RFC 3875 section 6), read as lighttpd reads it:
//! `Status:` sets the status, `Location:` without one means 302, a first line starting
//! with `HTTP/` is an NPH status line, lines may end in LF or CRLF, and output whose
//! first line has no colon is all body (scripts that forgot their headers).

/// Largest response head accepted from a script.
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RespHead {
    /// Bytes of the head, blank line included.
    pub len: usize,
    /// From `Status:` or an NPH status line.
    pub status: Option<u16>,
    pub nph: bool,
    /// Fields to send on, in order (Status, Connection, Transfer-Encoding, Keep-Alive
    /// and empty values removed).
    pub fields: Vec<(String, String)>,
    /// A valid Content-Length (the first one).
    pub content_length: Option<u64>,
    /// The script sent its body chunked.
    pub chunked: bool,
    /// `Connection: close`.
    pub close: bool,
}

impl RespHead {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self
            .fields
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(self.fields.remove(i).1)
    }

    /// The status to answer with: the script's, 302 for a bare Location, else 200.
    pub fn effective_status(&self) -> u16 {
        match self.status {
            Some(s) => s,
            None if self.get("location").is_some() => 302,
            None => 200,
        }
    }

    /// RFC 3875 6.2.2 local redirect: only a Location naming a local path.
    pub fn local_redirect(&self) -> Option<&str> {
        if self.status.is_some() || self.nph || self.fields.len() != 1 {
            return None;
        }
        self.get("location").filter(|l| l.starts_with('/'))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// No header block: everything the script writes is the body (status 200).
    NoHeaders,
    Head(RespHead),
    /// A response that cannot be sent: why, for the error log.
    Malformed(String),
    /// An NPH status line that is not one (lighttpd: 502).
    BadStatusLine(String),
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn status_code(v: &str) -> Option<u16> {
    let d = v.as_bytes();
    if d.len() < 3 || !d[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if d.len() > 3 && d[3] != b' ' && d[3] != b'\t' {
        return None;
    }
    let s = (d[0] - b'0') as u16 * 100 + (d[1] - b'0') as u16 * 10 + (d[2] - b'0') as u16;
    (100..1000).contains(&s).then_some(s)
}

/// Parse what the script wrote so far.
pub fn parse(buf: &[u8]) -> Parsed {
    let Some(first_nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_HEAD {
            return Parsed::Malformed(format!("response head longer than {MAX_HEAD} bytes"));
        }
        return Parsed::Partial;
    };
    let first = trim_cr(&buf[..first_nl]);
    let nph = first.len() >= 12 && first.starts_with(b"HTTP/");
    if !nph && !first.is_empty() && memchr::memchr(b':', first).is_none() {
        return Parsed::NoHeaders;
    }
    // Find the blank line; the lines before it are read again below (a head
    // arrives whole nearly always: no list of them is kept).
    let mut pos = 0;
    let end = loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            if buf.len() > MAX_HEAD {
                return Parsed::Malformed(format!("response head longer than {MAX_HEAD} bytes"));
            }
            return Parsed::Partial;
        };
        let line = trim_cr(&buf[pos..pos + nl]);
        pos += nl + 1;
        if line.is_empty() {
            break pos;
        }
        if pos > MAX_HEAD {
            return Parsed::Malformed(format!("response head longer than {MAX_HEAD} bytes"));
        }
    };
    let mut head = RespHead {
        len: end,
        nph,
        fields: Vec::with_capacity(8),
        ..Default::default()
    };
    let mut it = buf[..end]
        .split(|&c| c == b'\n')
        .map(trim_cr)
        .take_while(|l| !l.is_empty());
    if nph {
        let Some(line) = it.next() else {
            return Parsed::Partial;
        };
        let s = String::from_utf8_lossy(line);
        let ok = (s.starts_with("HTTP/1.0 ") || s.starts_with("HTTP/1.1 "))
            .then(|| status_code(&s[9..]))
            .flatten();
        match ok {
            Some(code) => head.status = Some(code),
            None => {
                return Parsed::BadStatusLine(format!(
                    "invalid NPH status line \"{}\"",
                    s.escape_debug()
                ))
            }
        }
    }
    for (n, line) in it.enumerate() {
        let Some(colon) = memchr::memchr(b':', line) else {
            return Parsed::Malformed(format!(
                "header line {} has no colon: \"{}\"",
                n + 1,
                String::from_utf8_lossy(line).escape_debug()
            ));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Parsed::Malformed(format!(
                "invalid header name \"{}\"",
                String::from_utf8_lossy(name).escape_debug()
            ));
        }
        let value = trim(&line[colon + 1..]);
        if value
            .iter()
            .any(|&c| c == 0 || c == b'\r' || (c < 0x20 && c != b'\t') || c == 0x7f)
        {
            return Parsed::Malformed(format!(
                "control character in header \"{}\"",
                String::from_utf8_lossy(name).escape_debug()
            ));
        }
        // (a name of tchars is ASCII)
        let name = std::str::from_utf8(name).unwrap_or_default();
        let value = String::from_utf8_lossy(value);
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("status") && !head.nph {
            match status_code(&value) {
                Some(s) => head.status = Some(s),
                None => {
                    return Parsed::Malformed(format!(
                        "invalid Status \"{}\"",
                        value.escape_debug()
                    ))
                }
            }
        } else if is("connection") {
            if value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
            {
                head.close = true;
            }
        } else if is("keep-alive") || is("http2-settings") {
        } else if is("transfer-encoding") {
            head.chunked = true;
            head.content_length = None;
            head.fields
                .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
        } else if is("content-length") {
            let v = value.strip_prefix('+').unwrap_or(&value);
            if head.chunked || head.content_length.is_some() {
                continue;
            }
            if let Some(n) = v
                .parse::<u64>()
                .ok()
                .filter(|_| v.bytes().all(|c| c.is_ascii_digit()))
            {
                head.content_length = Some(n);
                head.fields.push((name.to_string(), n.to_string()));
            }
        } else if !value.is_empty() {
            head.fields.push((name.to_string(), value.into_owned()));
        }
    }
    Parsed::Head(head)
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(b: &[u8]) -> RespHead {
        match parse(b) {
            Parsed::Head(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_cgi_head() {
        let h = head(b"Content-Type: text/plain\nX-A:  b \n\nbody");
        assert_eq!(h.len, 35);
        assert_eq!(h.effective_status(), 200);
        assert_eq!(h.get("x-a"), Some("b"));
        let h = head(b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n");
        assert_eq!(h.status, Some(404));
        assert_eq!(h.get("status"), None);
    }

    #[test]
    fn location_and_local_redirect() {
        let h = head(b"Location: /other?x=1\n\n");
        assert_eq!(h.effective_status(), 302);
        assert_eq!(h.local_redirect(), Some("/other?x=1"));
        let h = head(b"Location: http://x/\n\n");
        assert_eq!(h.local_redirect(), None);
        let h = head(b"Status: 301\nLocation: /x\n\n");
        assert_eq!(h.local_redirect(), None);
        assert_eq!(h.effective_status(), 301);
    }

    #[test]
    fn nph_and_no_headers() {
        let h = head(b"HTTP/1.1 201 Created\r\nX: y\r\n\r\n");
        assert!(h.nph);
        assert_eq!(h.status, Some(201));
        assert_eq!(parse(b"hello world\n"), Parsed::NoHeaders);
        assert_eq!(parse(b"Content-Type: text/plain"), Parsed::Partial);
        assert_eq!(parse(b"Content-Type: text/plain\n"), Parsed::Partial);
        assert_eq!(head(b"\r\nbody").len, 2);
    }

    #[test]
    fn framing_fields() {
        let h = head(b"Content-Length: 5\nContent-Length: 7\nConnection: close\n\n");
        assert_eq!(h.content_length, Some(5));
        assert!(h.close);
        assert_eq!(
            h.fields,
            vec![("Content-Length".to_string(), "5".to_string())]
        );
        let h = head(b"Content-Length: 5\nTransfer-Encoding: chunked\n\n");
        assert!(h.chunked);
        assert_eq!(h.content_length, None);
        assert!(h.fields.is_empty());
        assert_eq!(head(b"Content-Length: 5x\n\n").content_length, None);
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"Content-Type: text/plain\ngarbage line\n\n"[..],
            b"Status: abc\n\n",
            b"Bad Name: x\n\n",
            b"X: a\x01b\n\n",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Malformed(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            parse(b"HTTP/1.1 2x0 OK\n\n"),
            Parsed::BadStatusLine(_)
        ));
        let long = vec![b'a'; MAX_HEAD + 1];
        assert!(matches!(parse(&long), Parsed::Malformed(_)));
    }
}
