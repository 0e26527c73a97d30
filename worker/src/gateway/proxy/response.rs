//! The backend's response head, read strictly: a status line `HTTP/1.0` or
//! `HTTP/1.1`, three digits and an optional reason (anything else is a 502, as
//! lighttpd's "invalid HTTP status line"); fields with token names, no obs-fold,
//! no control characters; at most one Content-Length value (repeats must agree);
//! Transfer-Encoding `chunked` only (it then wins over Content-Length, which is
//! dropped, RFC 9112 6.3). Lines may end in LF alone. Hop-by-hop fields are not
//! kept (Connection and what it names, Keep-Alive, Proxy-Connection, TE,
//! Trailer, HTTP2-Settings); Upgrade is kept aside for a 101.

/// Largest response head accepted (as a CGI script's).
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, the blank line included.
    pub len: usize,
    pub status: u16,
    /// The fields to pass on, in order; Content-Length among them when the body
    /// has one.
    pub fields: Vec<(String, String)>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// The Upgrade field (passed on with a 101 that tunnels).
    pub upgrade: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Partial,
    /// Why it cannot be relayed (the log line).
    Bad(String),
    Head(Head),
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(128)]);
    s.escape_debug().to_string()
}

/// A field's bytes as text: UTF-8 as it is, other octets replaced.
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn trim_bytes(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// What a response field is to the proxy.
enum Class {
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    /// Hop-by-hop: not passed on.
    Hop,
    Other,
}

fn class(name: &[u8]) -> Class {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    match name.len() {
        14 if is("content-length") => Class::ContentLength,
        17 if is("transfer-encoding") => Class::TransferEncoding,
        10 if is("connection") => Class::Connection,
        7 if is("upgrade") => Class::Upgrade,
        10 if is("keep-alive") => Class::Hop,
        16 if is("proxy-connection") => Class::Hop,
        2 if is("te") => Class::Hop,
        7 if is("trailer") => Class::Hop,
        14 if is("http2-settings") => Class::Hop,
        _ => Class::Other,
    }
}

/// Parse the head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    // The end of the head first: nothing is made of a partial one.
    let mut pos = 0;
    let mut first: Option<&[u8]> = None;
    let end = loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            if buf.len() > MAX_HEAD {
                return Parsed::Bad(format!("response head longer than {MAX_HEAD} bytes"));
            }
            return Parsed::Partial;
        };
        let raw = &buf[pos..pos + nl];
        pos += nl + 1;
        if pos > MAX_HEAD {
            return Parsed::Bad(format!("response head longer than {MAX_HEAD} bytes"));
        }
        if raw.is_empty() || raw == b"\r" {
            break pos;
        }
        first.get_or_insert(raw);
    };
    let Some(first) = first else {
        return Parsed::Bad("empty response head".into());
    };
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let Some(status) = status_line(first) else {
        return Parsed::Bad(format!("invalid HTTP status line: {}", show(first)));
    };
    let mut h = Head {
        len: end,
        status,
        fields: Vec::with_capacity(12),
        ..Head::default()
    };
    let mut named: Vec<String> = Vec::new();
    let mut te: Option<String> = None;
    // The field lines: after the status line, up to the blank one.
    let fields = &buf[first.len()..end];
    for raw in fields.split(|&c| c == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Parsed::Bad("obs-fold in the response head".into());
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Parsed::Bad(format!("header line without a colon: {}", show(line)));
        };
        let (name, value) = (&line[..colon], trim_bytes(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Parsed::Bad(format!("invalid header name: {}", show(name)));
        }
        if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Parsed::Bad(format!("control character in header {}", show(name)));
        }
        match class(name) {
            Class::ContentLength => {
                let digits = !value.is_empty() && value.len() <= 19;
                let n = value.iter().try_fold(0u64, |n, &c| {
                    c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
                });
                let Some(n) = n.filter(|_| digits) else {
                    return Parsed::Bad(format!("invalid Content-Length \"{}\"", show(value)));
                };
                if h.content_length.is_some_and(|m| m != n) {
                    return Parsed::Bad("Content-Length values that differ".into());
                }
                h.content_length = Some(n);
            }
            Class::TransferEncoding => {
                let v = text(value);
                te = Some(match te.take() {
                    Some(t) => format!("{t}, {v}"),
                    None => v,
                });
            }
            Class::Connection => named.extend(
                value
                    .split(|&c| c == b',')
                    .map(|t| text(trim_bytes(t)).to_ascii_lowercase())
                    .filter(|t| !t.is_empty()),
            ),
            Class::Upgrade => h.upgrade = Some(text(value)),
            Class::Hop => {}
            Class::Other => h.fields.push((text(name), text(value))),
        }
    }
    if let Some(te) = te {
        if !te.eq_ignore_ascii_case("chunked") {
            return Parsed::Bad(format!(
                "Transfer-Encoding \"{te}\" (only chunked is relayed)"
            ));
        }
        h.chunked = true;
        h.content_length = None;
    }
    h.fields
        .retain(|(k, _)| !named.iter().any(|n| k.eq_ignore_ascii_case(n)));
    if named.iter().any(|n| n == "upgrade") && h.status != 101 {
        h.upgrade = None;
    }
    if let Some(n) = h.content_length {
        h.fields.push(("Content-Length".into(), n.to_string()));
    }
    Parsed::Head(h)
}

/// `HTTP/1.x NNN[ reason]`: the status.
fn status_line(l: &[u8]) -> Option<u16> {
    let rest = l
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| l.strip_prefix(b"HTTP/1.0 "))?;
    let d = rest.get(..3)?;
    if !d.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&c| c != b' ') {
        return None;
    }
    let s = d.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0'));
    (100..=999).contains(&s).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(b: &[u8]) -> Head {
        match parse(b) {
            Parsed::Head(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_and_hop_by_hop() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-B: 1\r\nConnection: keep-alive, X-B\r\n\
              Keep-Alive: timeout=5\r\nServer: backend\r\nTrailer: X-T\r\nUpgrade: foo\r\n\
              Proxy-Connection: close\r\n\r\nhello";
        let h = head(raw);
        assert_eq!(h.status, 200);
        assert_eq!(&raw[h.len..], b"hello");
        assert_eq!(
            h.fields,
            vec![
                ("Server".to_string(), "backend".to_string()),
                ("Content-Length".to_string(), "5".to_string())
            ]
        );
        assert_eq!(h.content_length, Some(5));
        assert_eq!(h.upgrade.as_deref(), Some("foo"));
        let h = head(b"HTTP/1.0 404\n\n");
        assert_eq!((h.status, h.len), (404, 14));
        let h = head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        assert_eq!(h.upgrade.as_deref(), Some("websocket"));
    }

    #[test]
    fn framing() {
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(h.chunked);
        assert_eq!(h.content_length, None);
        assert!(h.fields.is_empty());
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.content_length, Some(5));
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nX: y\r\n"), Parsed::Partial);
    }

    #[test]
    fn refused() {
        for bad in [
            &b"garbage\r\n\r\nhello"[..],
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 099 x\r\n\r\n",
            b"\r\n",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Bad(_)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = vec![b'a'; MAX_HEAD + 1];
        assert!(matches!(parse(&long), Parsed::Bad(_)));
    }
}
