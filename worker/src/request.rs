//! The HTTP/1.x request head: finding its end, and parsing it strictly as RFC 9112
//! says, with lighttpd's statuses where a choice exists. Nothing is copied: the
//! parse result is spans into the caller's buffer.
//!
//! Rejected (connection closed after the answer): bare CR or bare LF, obs-fold,
//! whitespace before a colon, CTL/NUL/DEL in names or values, a missing or repeated
//! Host in HTTP/1.1, Content-Length with Transfer-Encoding, more than one
//! Content-Length, Transfer-Encoding other than a single `chunked` (501), any
//! Transfer-Encoding in HTTP/1.0, an invalid request line or target. What
//! server.http-parseopts decides (UTF-8, host-strict, GET with a body) is parseopts.rs.

use memchr::memchr;

/// Byte range `start..end` into the head buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    /// A request that came as an HTTP/2 stream (h2/): parsed as HTTP/1.1, one
    /// request per stream, never chunked, no Connection field.
    Http2,
}

/// Methods. `Other` is a registered method that no wickd handler implements (405);
/// an unregistered one is refused with 501 at parse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    Other,
}

/// Methods of the IANA registry besides GET/HEAD/POST/OPTIONS: answered 405.
const KNOWN_METHODS: &[&[u8]] = &[
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"QUERY",
    b"ACL",
    b"BASELINE-CONTROL",
    b"BIND",
    b"CHECKIN",
    b"CHECKOUT",
    b"COPY",
    b"LABEL",
    b"LINK",
    b"LOCK",
    b"MERGE",
    b"MKACTIVITY",
    b"MKCALENDAR",
    b"MKCOL",
    b"MKREDIRECTREF",
    b"MKWORKSPACE",
    b"MOVE",
    b"ORDERPATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"REBIND",
    b"REPORT",
    b"SEARCH",
    b"UNBIND",
    b"UNCHECKOUT",
    b"UNLINK",
    b"UNLOCK",
    b"UPDATE",
    b"UPDATEREDIRECTREF",
    b"VERSION-CONTROL",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// The header fields wickd looks at; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
    Range,
    IfRange,
    IfMatch,
    IfNoneMatch,
    IfModifiedSince,
    IfUnmodifiedSince,
    Other,
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: Span,
    pub value: Span,
    pub known: Known,
}

/// A parsed head. Spans point into the buffer given to [`parse`].
#[derive(Clone, Debug)]
pub struct Head {
    pub method: Method,
    pub method_span: Span,
    pub target: Span,
    pub version: Version,
    /// Host header, or the authority of an absolute-form target.
    pub host: Option<Span>,
    /// Path (and query) of the target; for `*` the single byte `*`.
    pub path: Span,
    pub body: BodyKind,
    /// Keep-alive as the client asked (version default and Connection header).
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub range: Option<Span>,
    pub if_range: Option<Span>,
    pub if_match: Option<Span>,
    pub if_none_match: Option<Span>,
    pub if_modified_since: Option<Span>,
    pub if_unmodified_since: Option<Span>,
    /// Head length including the blank line.
    pub len: usize,
}

/// A parse failure: the status to answer with. The connection is always closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub status: u16,
    /// The version to answer with (HTTP/1.0 until the request line was understood).
    pub version: Version,
    /// What was wrong, for the error log (debug.log-request-header-on-error).
    pub reason: &'static str,
}

fn err(status: u16, reason: &'static str) -> ParseError {
    ParseError {
        status,
        version: Version::Http10,
        reason,
    }
}

/// Most header fields one request may have (431 beyond).
pub const MAX_FIELDS: usize = 1000;

/// Where the head ends, scanning `buf` from `from` (an offset known to hold no line
/// end yet, to avoid rescanning). `Ok(Some(n))`: the head is `buf[..n]`.
/// `Ok(None)`: incomplete; call again with more bytes and the returned `scanned`.
/// Errors: a bare LF (400), a request line longer than `limit` (414), a head longer
/// than `limit` (431).
pub fn find_end(
    buf: &[u8],
    from: usize,
    limit: usize,
    scanned: &mut usize,
) -> Result<Option<usize>, ParseError> {
    let mut pos = from;
    // Index of the start of the line being scanned.
    let mut line_start = line_start_before(buf, from);
    while let Some(i) = memchr(b'\n', &buf[pos..]) {
        let nl = pos + i;
        if nl == 0 || buf[nl - 1] != b'\r' {
            return Err(err(400, "bare LF in the request head"));
        }
        if line_start == 0 && nl + 1 > limit {
            return Err(err(414, "request line too long"));
        }
        if nl + 1 > limit {
            return Err(err(431, "request head too large"));
        }
        if nl - 1 == line_start {
            // An empty line (just CRLF) ends the head.
            return Ok(Some(nl + 1));
        }
        line_start = nl + 1;
        pos = nl + 1;
    }
    *scanned = buf.len();
    if buf.len() > limit {
        return Err(if line_start == 0 {
            err(414, "request line too long")
        } else {
            err(431, "request head too large")
        });
    }
    Ok(None)
}

fn line_start_before(buf: &[u8], from: usize) -> usize {
    match memchr::memrchr(b'\n', &buf[..from.min(buf.len())]) {
        Some(i) => i + 1,
        None => 0,
    }
}

/// Skip empty lines before a request line (RFC 9112 2.2: a server SHOULD ignore
/// at least one). Returns how many bytes to drop.
pub fn leading_crlf(buf: &[u8]) -> usize {
    let mut n = 0;
    while buf.len() >= n + 2 && &buf[n..n + 2] == b"\r\n" && n < 8 {
        n += 2;
    }
    n
}

/// RFC 9110 token character (also used by the chunk-extension parser).
#[inline]
pub(crate) fn is_tchar(c: u8) -> bool {
    TCHAR[usize::from(c)]
}

/// `tchar` for each byte, made once from its definition (a lookup per byte of
/// a field name instead of a chain of comparisons).
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = tchar_by_rule(c as u8);
        c += 1;
    }
    t
};

const fn tchar_by_rule(c: u8) -> bool {
    matches!(
        c,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || c.is_ascii_alphanumeric()
}

/// Are all bytes of a field value allowed (HTAB, SP, VCHAR, obs-text)? No
/// early exit: the loop has no branch per byte.
#[inline]
fn all_field_vchar(v: &[u8]) -> bool {
    v.iter().fold(true, |ok, &c| {
        ok & ((c >= b' ' && c != 0x7f) | (c == b'\t'))
    })
}

/// Parse the complete head `buf[..len]` (as found by [`find_end`]) into `head`,
/// storing every field in `fields` (cleared first).
pub fn parse(buf: &[u8], fields: &mut Vec<Field>) -> Result<Head, ParseError> {
    fields.clear();
    let len = buf.len();
    // Request line.
    let Some(eol) = memchr(b'\r', buf) else {
        return Err(err(400, "no CR in the request line"));
    };
    if buf.get(eol + 1) != Some(&b'\n') {
        return Err(err(400, "bare CR in the request line"));
    }
    let line = &buf[..eol];
    let Some(sp1) = memchr(b' ', line) else {
        return Err(err(400, "no space in the request line"));
    };
    let Some(sp2r) = memchr(b' ', &line[sp1 + 1..]) else {
        // No version: HTTP/0.9, which lighttpd refuses with 400.
        return Err(err(400, "no HTTP version (HTTP/0.9)"));
    };
    let sp2 = sp1 + 1 + sp2r;
    let method_b = &line[..sp1];
    let target_b = &line[sp1 + 1..sp2];
    let version_b = &line[sp2 + 1..];
    let version = match version_b {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        v if v.starts_with(b"HTTP/") && !v.contains(&b' ') => {
            return Err(err(505, "unsupported HTTP version"))
        }
        _ => return Err(err(400, "invalid HTTP version")),
    };
    let e = |status, reason| ParseError {
        status,
        version,
        reason,
    };
    if target_b.is_empty() || method_b.is_empty() {
        return Err(e(400, "empty method or request-target"));
    }
    // Bytes of a request-target: visible ASCII and obs-text; never CTL or SP.
    if target_b.iter().any(|&c| c <= b' ' || c == 0x7f) {
        return Err(e(400, "control character or space in the request-target"));
    }
    let method = match method_b {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"OPTIONS" => Method::Options,
        m if KNOWN_METHODS.contains(&m) => Method::Other,
        _ => return Err(e(501, "unknown method")),
    };
    let connect = method_b == b"CONNECT";
    let tstart = sp1 + 1;
    let mut abs_host = None;
    let path = if connect && (target_b[0] == b':' || target_b[0].is_ascii_digit()) {
        // authority-form, only as lighttpd's strict parsing lets it through (an
        // IP address and port, or a bare port): the path keys and conditions see.
        Span::new(tstart, sp2)
    } else if target_b == b"*" {
        if method != Method::Options {
            return Err(e(400, "request-target * with a method other than OPTIONS"));
        }
        Span::new(tstart, sp2)
    } else if target_b[0] == b'/' {
        Span::new(tstart, sp2)
    } else {
        // absolute-form: http(s)://authority/path
        let lower =
            |n: usize| target_b.len() >= n && target_b[..n].eq_ignore_ascii_case(&b"https://"[..n]);
        let skip = if target_b.len() >= 7 && target_b[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if lower(8) {
            8
        } else {
            return Err(e(400, "request-target neither a path nor an http(s) URL"));
        };
        let rest = &target_b[skip..];
        let Some(slash) = memchr(b'/', rest) else {
            return Err(e(400, "absolute URL without a path"));
        };
        if slash == 0 || rest[..slash].contains(&b'@') {
            return Err(e(400, "absolute URL with an empty authority or userinfo"));
        }
        abs_host = Some(Span::new(tstart + skip, tstart + skip + slash));
        Span::new(tstart + skip + slash, sp2)
    };

    let mut head = Head {
        method,
        method_span: Span::new(0, sp1),
        target: Span::new(tstart, sp2),
        version,
        host: None,
        path,
        body: BodyKind::None,
        keep_alive: version == Version::Http11,
        expect_continue: false,
        range: None,
        if_range: None,
        if_match: None,
        if_none_match: None,
        if_modified_since: None,
        if_unmodified_since: None,
        len,
    };

    // Header fields.
    let mut pos = eol + 2;
    let mut content_length: Option<u64> = None;
    let mut te: Option<Span> = None;
    let mut te_count = 0;
    let mut conn_close = false;
    let mut conn_keep = false;
    while pos < len {
        let Some(cr) = memchr(b'\r', &buf[pos..]).map(|i| pos + i) else {
            return Err(e(400, "header line without CRLF"));
        };
        if buf.get(cr + 1) != Some(&b'\n') {
            return Err(e(400, "bare CR in a header")); // bare CR
        }
        if cr == pos {
            break; // the blank line
        }
        let line = &buf[pos..cr];
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(e(400, "header line starting with whitespace (obs-fold)"));
            // obs-fold (or whitespace before the first name)
        }
        let Some(colon) = memchr(b':', line) else {
            return Err(e(400, "header line without a colon"));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(e(400, "invalid header field name")); // includes whitespace before the colon
        }
        let mut vs = colon + 1;
        let mut ve = line.len();
        while vs < ve && (line[vs] == b' ' || line[vs] == b'\t') {
            vs += 1;
        }
        while ve > vs && (line[ve - 1] == b' ' || line[ve - 1] == b'\t') {
            ve -= 1;
        }
        if !all_field_vchar(&line[vs..ve]) {
            return Err(e(400, "invalid character in a header value"));
        }
        if fields.len() >= MAX_FIELDS {
            return Err(e(431, "too many header fields"));
        }
        let value = Span::new(pos + vs, pos + ve);
        let known = classify(name);
        let v = &line[vs..ve];
        match known {
            Known::Host => {
                if head.host.is_some() {
                    return Err(e(400, "Host given twice"));
                }
                head.host = Some(value);
            }
            Known::ContentLength => {
                if content_length.is_some() {
                    return Err(e(400, "Content-Length given twice"));
                }
                content_length = Some(parse_length(v).ok_or(e(400, "invalid Content-Length"))?);
            }
            Known::TransferEncoding => {
                te_count += 1;
                te = Some(value);
            }
            Known::Connection => {
                for tok in v.split(|&c| c == b',') {
                    let tok = trim(tok);
                    if tok.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep = true;
                    }
                }
            }
            Known::Expect => {
                if v.eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                }
            }
            Known::Range => set_once(&mut head.range, value),
            Known::IfRange => set_once(&mut head.if_range, value),
            Known::IfMatch => set_once(&mut head.if_match, value),
            Known::IfNoneMatch => set_once(&mut head.if_none_match, value),
            Known::IfModifiedSince => set_once(&mut head.if_modified_since, value),
            Known::IfUnmodifiedSince => set_once(&mut head.if_unmodified_since, value),
            Known::Other => {}
        }
        fields.push(Field {
            name: Span::new(pos, pos + colon),
            value,
            known,
        });
        pos = cr + 2;
    }

    if let Some(te) = te {
        if version == Version::Http10 || content_length.is_some() {
            return Err(e(
                400,
                "Transfer-Encoding with HTTP/1.0 or with Content-Length",
            ));
        }
        let v = te.of(buf);
        if te_count != 1 || !trim(v).eq_ignore_ascii_case(b"chunked") {
            if v.is_empty() {
                return Err(e(400, "empty Transfer-Encoding"));
            }
            return Err(e(501, "Transfer-Encoding other than chunked"));
        }
        head.body = BodyKind::Chunked;
    } else if let Some(n) = content_length {
        head.body = if n == 0 {
            BodyKind::None
        } else {
            BodyKind::Length(n)
        };
    } else if method == Method::Post && version == Version::Http11 {
        // lighttpd: a POST without a length is refused.
        return Err(e(411, "POST without Content-Length"));
    }

    match (abs_host, head.host) {
        (Some(a), Some(h)) => {
            if !a.of(buf).eq_ignore_ascii_case(h.of(buf)) {
                return Err(e(400, "Host differs from the absolute URL's authority"));
            }
            head.host = Some(a);
        }
        (Some(a), None) => head.host = Some(a),
        (None, None) if version == Version::Http11 => {
            return Err(e(400, "HTTP/1.1 request without Host"))
        }
        _ => {}
    }
    if let Some(h) = head.host {
        let hb = h.of(buf);
        if hb.is_empty() {
            if version == Version::Http11 {
                return Err(e(400, "empty Host"));
            }
            head.host = None;
        } else if !valid_host(hb) {
            return Err(e(400, "invalid Host"));
        }
    }

    head.keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep && !conn_close,
        // Never parsed from a request line: set after the parse (h2/).
        Version::Http2 => false,
    };
    if connect {
        if head.body == BodyKind::Chunked {
            return Err(e(400, "CONNECT with a chunked body"));
        }
        // What follows a CONNECT is the tunnel's, never a next request: a
        // CONNECT that no tunnel takes (405) closes the connection.
        head.keep_alive = false;
    }
    Ok(head)
}

fn set_once(slot: &mut Option<Span>, v: Span) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

pub fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Is `token` one of the comma-separated items of `v` (any case, parameters
/// after '=' ignored)? Connection, Upgrade, Cache-Control, Vary and the like.
pub fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&c| c == b',').any(|item| {
        let item = trim(item);
        let name = match memchr(b'=', item) {
            Some(i) => &item[..i],
            None => item,
        };
        trim(name).eq_ignore_ascii_case(token)
    })
}

/// 1*DIGIT, no sign, no overflow.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

fn classify(name: &[u8]) -> Known {
    let eq = |s: &[u8]| name.eq_ignore_ascii_case(s);
    match name.len() {
        4 if eq(b"host") => Known::Host,
        5 if eq(b"range") => Known::Range,
        6 if eq(b"expect") => Known::Expect,
        8 if eq(b"if-match") => Known::IfMatch,
        8 if eq(b"if-range") => Known::IfRange,
        10 if eq(b"connection") => Known::Connection,
        13 if eq(b"if-none-match") => Known::IfNoneMatch,
        14 if eq(b"content-length") => Known::ContentLength,
        17 if eq(b"transfer-encoding") => Known::TransferEncoding,
        17 if eq(b"if-modified-since") => Known::IfModifiedSince,
        19 if eq(b"if-unmodified-since") => Known::IfUnmodifiedSince,
        _ => Known::Other,
    }
}

/// Host = reg-name or IP-literal, optional `:port` (digits). lighttpd's rule: letters,
/// digits, `-`, `.`, `_`; IPv6 literals in brackets.
pub fn valid_host(h: &[u8]) -> bool {
    let (name, port) = if h.first() == Some(&b'[') {
        let Some(close) = memchr(b']', h) else {
            return false;
        };
        let inner = &h[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return false;
        }
        let rest = &h[close + 1..];
        if rest.is_empty() {
            return true;
        }
        if rest[0] != b':' {
            return false;
        }
        (&b"x"[..], &rest[1..])
    } else {
        match memchr(b':', h) {
            Some(i) => (&h[..i], &h[i + 1..]),
            None => (h, &b""[..]),
        }
    };
    if name.is_empty() || name[0] == b'.' || name[0] == b'-' {
        return false;
    }
    if !name
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
    {
        return false;
    }
    if memchr(b':', h).is_some() && h[0] != b'[' && (port.is_empty() || port.len() > 5) {
        return false;
    }
    port.iter().all(|c| c.is_ascii_digit())
}

/// The value of header `name` (first occurrence), case-insensitive.
pub fn header<'a>(buf: &'a [u8], fields: &[Field], name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.name.of(buf).eq_ignore_ascii_case(name))
        .map(|f| f.value.of(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &[u8]) -> Result<Head, u16> {
        let mut scanned = 0;
        let skip = leading_crlf(raw);
        let raw = &raw[skip..];
        let end = match find_end(raw, 0, 8192, &mut scanned) {
            Ok(Some(n)) => n,
            Ok(None) => return Err(0),
            Err(e) => return Err(e.status),
        };
        let mut f = Vec::new();
        parse(&raw[..end], &mut f).map_err(|e| e.status)
    }

    #[test]
    fn byte_classes_by_their_rules() {
        for c in 0..=255u8 {
            let vchar = c == b'\t' || (b' '..=b'~').contains(&c) || c >= 0x80;
            assert_eq!(all_field_vchar(&[b'a', c]), vchar, "{c}");
            let tchar = b"!#$%&'*+-.^_`|~".contains(&c) || c.is_ascii_alphanumeric();
            assert_eq!(is_tchar(c), tchar, "{c}");
        }
    }

    #[test]
    fn simple_get() {
        let raw = b"GET /a?b HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n";
        let h = p(raw).expect("ok");
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.path.of(raw), b"/a?b");
        assert_eq!(h.host.map(|s| s.of(raw)), Some(&b"x"[..]));
        assert_eq!(h.range.map(|s| s.of(raw)), Some(&b"bytes=0-1"[..]));
        assert!(h.keep_alive);
        assert_eq!(h.len, raw.len());
    }

    #[test]
    fn statuses() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: a\n\n", 400),
            (b"GET /\r\n\r\n", 400),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),
            (b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: a\r\n\r\n", 411),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        ];
        for (raw, want) in cases {
            assert_eq!(
                p(raw).map(|_| 200),
                Err(*want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn accepted_forms() {
        let ok: &[&[u8]] = &[
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a/x HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1]:80\r\nX: \xe9\t\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            // Invalid UTF-8 that lighttpd lets through, and anything in a fragment.
            b"GET /caf\xc3\xa9/\xe9/%e9/%f4/%e0%80%af/\xed\xa0\x80 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a#\xc0%c0 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a%c HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        for raw in ok {
            assert!(p(raw).is_ok(), "{}", String::from_utf8_lossy(raw));
        }
        let raw = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert!(p(raw).expect("ok").keep_alive);
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        assert!(!p(raw).expect("ok").keep_alive);
    }

    /// CONNECT as lighttpd's strict parsing takes it: an IP address and port
    /// (or a bare port, or a path) is the path; a name, 400; never kept alive.
    #[test]
    fn connect_targets() {
        let raw = b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: a\r\n\r\n";
        let h = p(raw).expect("ok");
        assert_eq!(h.path.of(raw), b"127.0.0.1:443");
        assert!(!h.keep_alive);
        for ok in [
            &b"CONNECT :443 HTTP/1.0\r\n\r\n"[..],
            b"CONNECT /x HTTP/1.0\r\n\r\n",
        ] {
            assert!(p(ok).is_ok_and(|h| !h.keep_alive));
        }
        for bad in [
            &b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"CONNECT [::1]:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"CONNECT 1:1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(p(bad).map(|_| 200), Err(400));
        }
    }

    #[test]
    fn limits() {
        let mut s = 0;
        let long = [b'a'; 100];
        assert_eq!(
            find_end(&long, 0, 50, &mut s).map_err(|e| e.status),
            Err(414)
        );
        let mut h = b"GET / HTTP/1.1\r\nX: ".to_vec();
        h.extend_from_slice(&[b'a'; 100]);
        assert_eq!(find_end(&h, 0, 50, &mut s).map_err(|e| e.status), Err(431));
        let part = b"GET / HTTP/1.1\r\nHost: a\r\n";
        assert_eq!(find_end(part, 0, 8192, &mut s), Ok(None));
        assert_eq!(s, part.len());
        let mut full = part.to_vec();
        full.extend_from_slice(b"\r\n");
        assert_eq!(find_end(&full, s, 8192, &mut s), Ok(Some(full.len())));
    }
}
