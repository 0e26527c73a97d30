//! server.http-parseopts acted on for one parsed request (the bit set is decoded
//! once at load, wick_conf::parseopts): what lighttpd 1.4.69 refuses with the same
//! options is refused here, then the path is decoded and normalised
//! (path::decode_normalize) and the query string rewritten if asked. Where wickd is
//! stricter than an option (control bytes in the path, header-strict), it stays so.

use std::borrow::Cow;

use wick_conf::parseopts::ParseOpts;

use crate::request::{BodyKind, Head, Method};

/// What a request goes on with once admitted.
pub struct Admitted<'q> {
    /// The query string, rewritten if the options ask.
    pub query: Cow<'q, [u8]>,
    /// The Host as normalised, when that changed it (conditions see this one).
    pub host: Option<Vec<u8>>,
}

/// Check the request against `o`, decode `raw_path` into `path`; the query string
/// and Host as the request goes on with them. Err: why the request is refused (400).
pub fn admit<'q>(
    buf: &[u8],
    head: &Head,
    raw_path: &[u8],
    query: &'q [u8],
    o: ParseOpts,
    path: &mut Vec<u8>,
) -> Result<Admitted<'q>, &'static str> {
    if !o.has(ParseOpts::METHOD_GET_BODY)
        && matches!(head.method, Method::Get | Method::Head)
        && head.body != BodyKind::None
    {
        return Err("GET/HEAD with a body (server.http-parseopts method-get-body)");
    }
    let mut host = None;
    if let Some(h) = head.host {
        let h = h.of(buf);
        if o.has(ParseOpts::HOST_STRICT) && !strict_hostname(h) {
            return Err("invalid Host (server.http-parseopts host-strict)");
        }
        host = normalize_host(h, o)
            .map_err(|_| "invalid Host (server.http-parseopts host-normalize)")?;
    }
    if raw_path == b"*" {
        path.clear();
        path.push(b'*');
        let query = Cow::Borrowed(query);
        return Ok(Admitted { query, host });
    }
    if o.has(ParseOpts::INVALID_UTF8_REJECT)
        && (has_non_utf8_byte(raw_path) || has_non_utf8_byte(query))
    {
        return Err("byte that is never UTF-8 in the request-target");
    }
    if o.has(ParseOpts::CTRLS_REJECT) && has_encoded_ctrl(query) {
        return Err("control character in the query string");
    }
    if o.has(ParseOpts::PATH_2F_REJECT) && find_2f(raw_path) {
        return Err("%2F in the path (server.http-parseopts url-path-2f-reject)");
    }
    if o.has(ParseOpts::DOTSEG_REJECT) && has_dot_segment(raw_path, o) {
        return Err(
            "dot or empty segment in the path (server.http-parseopts url-path-dotseg-reject)",
        );
    }
    if crate::path::decode_normalize(raw_path, path).is_err() {
        return Err("invalid percent-escape or control byte in the path");
    }
    let query = match normalize_query(query, o) {
        Some(q) => Cow::Owned(q),
        None => Cow::Borrowed(query),
    };
    Ok(Admitted { query, host })
}

/// Bytes lighttpd keeps %-encoded in a target (burl.c encoded_chars_http_uri_reqd):
/// everything but `! $ & ' ( ) * + , - . / 0-9 : ; = ? @ A-Z _ a-z ~`.
fn reqd(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"!$&'()*+,-./:;=?@_~".contains(&c))
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

/// lighttpd's basic normalisation of one part of the target (burl_normalize_basic_*):
/// escapes of unreserved characters (url-normalize-unreserved) or of anything not
/// required to be escaped (url-normalize-required; in the path `/` and `?`, in the
/// query `& = ; +` stay escaped) are decoded, other escapes upper-cased, bytes that
/// may not appear raw escaped (a `%` without two hex digits becomes `%25`).
fn normalize_part(s: &[u8], o: ParseOpts, query: bool, out: &mut Vec<u8>) {
    let required = o.has(ParseOpts::REQUIRED);
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if !reqd(c) {
            out.push(c);
            i += 1;
        } else if let Some(x) = escaped(s, i) {
            let keep = if required {
                reqd(x)
                    || if query {
                        b"&=;+".contains(&x)
                    } else {
                        x == b'/' || x == b'?'
                    }
            } else {
                !unreserved(x)
            };
            if keep {
                push_escaped(out, x);
            } else {
                out.push(x);
            }
            i += 3;
        } else {
            push_escaped(out, c);
            i += 1;
        }
    }
}

/// The path of the target as url.rewrite and url.redirect match it (lighttpd's
/// normalised r->target): basic normalisation, then %2F to `/`
/// (url-path-2f-decode), then `.`/`..`/`//` resolved (url-path-dotseg-remove).
/// With url-normalize disabled, the path as sent.
pub fn normalize_target(raw: &[u8], o: ParseOpts, out: &mut Vec<u8>) {
    if !o.has(ParseOpts::URL_NORMALIZE) {
        out.extend_from_slice(raw);
        return;
    }
    let start = out.len();
    normalize_part(raw, o, false, out);
    if o.has(ParseOpts::PATH_2F_DECODE) && memchr::memmem::find(&out[start..], b"%2F").is_some() {
        let p = out.split_off(start);
        unescape_one(&p, b"%2F", b'/', out);
    }
    if o.has(ParseOpts::DOTSEG_REMOVE) && out.get(start) == Some(&b'/') {
        // '.' and '/' are literal here; everything else that matters is escaped.
        if start == 0 {
            // In place: this runs for every request on the module path.
            crate::path::normalize(out);
        } else {
            let mut p = out.split_off(start);
            crate::path::normalize(&mut p);
            out.extend_from_slice(&p);
        }
    }
}

/// The query string as lighttpd's normalised target holds it (what conditions, the
/// CGI QUERY_STRING and rewrite targets see); None: unchanged.
fn normalize_query(q: &[u8], o: ParseOpts) -> Option<Vec<u8>> {
    if q.is_empty() || !o.has(ParseOpts::URL_NORMALIZE) || !q.iter().any(|&c| reqd(c)) {
        return None;
    }
    let mut out = Vec::with_capacity(q.len() + 8);
    normalize_part(q, o, true, &mut out);
    if o.has(ParseOpts::QUERY_20_PLUS) && memchr::memmem::find(&out, b"%20").is_some() {
        out = plus_for_20(&out);
    }
    (out != q).then_some(out)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The byte a valid `%XX` at `s[i]` encodes.
fn escaped(s: &[u8], i: usize) -> Option<u8> {
    if s.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex(*s.get(i + 1)?)? << 4 | hex(*s.get(i + 2)?)?)
}

/// lighttpd's url-invalid-utf8-reject (burl.c): a byte that never occurs in UTF-8,
/// raw or percent-encoded: C0 and C1 (overlong ASCII, such as `%c0%af` for `/`) and
/// F5..FF. Other invalid sequences pass, as there.
pub fn has_non_utf8_byte(s: &[u8]) -> bool {
    let never = |b: u8| b >= 0xf5 || b | 1 == 0xc1;
    let mut i = 0;
    while i < s.len() {
        if let Some(b) = escaped(s, i) {
            if never(b) {
                return true;
            }
            i += 3;
        } else {
            if never(s[i]) {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// url-ctrls-reject: `%00`..`%1F` or `%7F`.
fn has_encoded_ctrl(s: &[u8]) -> bool {
    memchr::memchr_iter(b'%', s).any(|i| escaped(s, i).is_some_and(|b| b < 0x20 || b == 0x7f))
}

fn find_2f(s: &[u8]) -> bool {
    memchr::memchr_iter(b'%', s).any(|i| escaped(s, i) == Some(b'/'))
}

/// url-path-dotseg-reject: a `.` or `..` segment or `//` in the path as lighttpd sees
/// it after its normalisation (`%2E` is `.`; `%2F` is `/` with url-path-2f-decode).
fn has_dot_segment(raw: &[u8], o: ParseOpts) -> bool {
    let mut p = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match escaped(raw, i) {
            Some(b'.') => {
                p.push(b'.');
                i += 3;
            }
            Some(b'/') if o.has(ParseOpts::PATH_2F_DECODE) => {
                p.push(b'/');
                i += 3;
            }
            _ => {
                p.push(raw[i]);
                i += 1;
            }
        }
    }
    let segs: Vec<&[u8]> = p.split(|&c| c == b'/').skip(1).collect();
    let last = segs.len().saturating_sub(1);
    segs.iter()
        .enumerate()
        .any(|(n, s)| *s == b"." || *s == b".." || (s.is_empty() && n != last))
}

/// url-query-20-plus: `%20` in the query string becomes `+`.
fn plus_for_20(q: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.len());
    unescape_one(q, b"%20", b'+', &mut out);
    out
}

/// `src` to `out` with every `escape` (a %XX triplet) written as `to`.
fn unescape_one(src: &[u8], escape: &[u8; 3], to: u8, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() {
        if src[i..].starts_with(escape) {
            out.push(to);
            i += 3;
        } else {
            out.push(src[i]);
            i += 1;
        }
    }
}

/// A Host that host-normalize cannot read (400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadHost;

/// The Host as lighttpd normalises it (request.c http_request_host_normalize; on
/// with host-normalize, and with host-strict, which implies it, by default): with
/// host-strict one trailing dot dropped; a port (decimal, 0x hex or 0 octal, as
/// strtol reads it) of 1..65535 written in decimal, dropped when it is 80; an IPv6
/// literal in its canonical form. Ok(None): unchanged (the common case, no copy).
/// Letter case is not touched here (Rq::start lowers it). Called once per request,
/// by `admit`.
pub fn normalize_host(h: &[u8], o: ParseOpts) -> Result<Option<Vec<u8>>, BadHost> {
    let strict = o.has(ParseOpts::HOST_STRICT);
    if !strict && !o.has(ParseOpts::HOST_NORMALIZE) {
        return Ok(None);
    }
    let (name, port) = if h.first() == Some(&b'[') {
        let close = memchr::memchr(b']', h).ok_or(BadHost)?;
        match &h[close + 1..] {
            [] => (h, None),
            [b':', p @ ..] => (&h[..=close], Some(p)),
            _ => return Err(BadHost),
        }
    } else {
        match memchr::memchr(b':', h) {
            Some(0) => return Err(BadHost),
            Some(i) => (&h[..i], Some(&h[i + 1..])),
            None => (h, None),
        }
    };
    let trailing_dot = strict && name.len() > 1 && name.ends_with(b".");
    let port = match port {
        None | Some([]) => None,
        Some(p) => Some(strtol_port(p).ok_or(BadHost)?),
    };
    let v6 = if name.first() == Some(&b'[') {
        let inner = &name[1..name.len() - 1];
        if memchr::memchr(b'%', inner).is_some() {
            None // a zone: kept as written
        } else {
            let a: std::net::Ipv6Addr = std::str::from_utf8(inner)
                .map_err(|_| BadHost)?
                .parse()
                .map_err(|_| BadHost)?;
            let canon = format!("[{a}]");
            (!canon.as_bytes().eq_ignore_ascii_case(name)).then_some(canon)
        }
    } else {
        None
    };
    // Unchanged when the port is absent, or written in plain decimal and not 80:
    // decided without formatting it (this runs for every request).
    let written = h.get(name.len() + 1..).unwrap_or_default();
    let same_port = match port {
        None => written.is_empty() && h.len() == name.len(),
        Some(80) => false,
        Some(_) => written.first() != Some(&b'0') && written.iter().all(u8::is_ascii_digit),
    };
    if !trailing_dot && v6.is_none() && same_port {
        return Ok(None);
    }
    let port_text = port.filter(|&p| p != 80).map(|p| p.to_string());
    let mut out = match v6 {
        Some(c) => c.into_bytes(),
        None => name[..name.len() - usize::from(trailing_dot)].to_vec(),
    };
    if let Some(t) = port_text {
        out.push(b':');
        out.extend_from_slice(t.as_bytes());
    }
    Ok(Some(out))
}

/// A port as C's strtol(s, &e, 0) reads it, whole: 1..=65535 or None.
fn strtol_port(p: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(p).ok()?;
    let n = if let Some(x) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(x, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u32>().ok()?
    };
    u16::try_from(n).ok().filter(|&n| n > 0)
}

/// lighttpd's host-strict check (request.c request_check_hostname): a host name of
/// labels (letters, digits, `-` but not first; the last label not all digits unless the
/// whole is an IPv4 address of four numbers), one trailing dot allowed; an IPv6
/// literal of hex digits, `:` and `.`; an optional port of digits.
pub fn strict_hostname(h: &[u8]) -> bool {
    if h.first() == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', h) else {
            return false;
        };
        let inner = &h[1..close];
        if inner.iter().filter(|&&c| c == b':').count() > 7
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return false;
        }
        return match &h[close + 1..] {
            [] => true,
            [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
            _ => false,
        };
    }
    let (mut name, port) = match memchr::memchr(b':', h) {
        Some(i) => (&h[..i], &h[i + 1..]),
        None => (h, &b""[..]),
    };
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if let [rest @ .., b'.'] = name {
        name = rest;
    }
    if name.is_empty() {
        return false;
    }
    // No allocation: this runs for every request.
    let (mut count, mut all_digits, mut top_digits) = (0, true, false);
    for l in name.split(|&c| c == b'.') {
        if l.is_empty()
            || l[0] == b'-'
            || !l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return false;
        }
        count += 1;
        top_digits = l.iter().all(u8::is_ascii_digit);
        all_digits &= top_digits;
    }
    // All digits at the top: only a dotted IPv4 address of four numbers.
    !top_digits || (count == 4 && all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(raw: &[u8]) -> Head {
        let mut f = Vec::new();
        crate::request::parse(raw, &mut f).expect("parses")
    }

    fn admit_str(target: &str, o: ParseOpts) -> Result<(String, String), &'static str> {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let head = head_of(raw.as_bytes());
        let (p, q) = crate::path::split_target(head.path.of(raw.as_bytes()));
        let mut path = Vec::new();
        let a = admit(raw.as_bytes(), &head, p, q, o, &mut path)?;
        Ok((
            String::from_utf8_lossy(&path).into_owned(),
            String::from_utf8_lossy(&a.query).into_owned(),
        ))
    }

    fn with(bits_on: u16, bits_off: u16) -> ParseOpts {
        let d = ParseOpts::default().0;
        ParseOpts((d | bits_on) & !bits_off)
    }

    #[test]
    fn defaults() {
        let d = ParseOpts::default();
        assert_eq!(admit_str("/a%2Fb", d), Ok(("/a/b".into(), "".into())));
        assert_eq!(
            admit_str("/x/../a/./b?q=a%20b", d),
            Ok(("/a/b".into(), "q=a%20b".into()))
        );
        for bad in ["/a%ff", "/%c0%af", "/a?%fe", "/a?%01", "/a?x=%7f", "/a%00"] {
            assert!(admit_str(bad, d).is_err(), "{bad}");
        }
        // Invalid UTF-8 lighttpd lets through.
        assert!(admit_str("/caf%c3%a9/%e9/%f4/%e0%80%af", d).is_ok());
    }

    #[test]
    fn options() {
        let reject_2f = with(ParseOpts::PATH_2F_REJECT, ParseOpts::PATH_2F_DECODE);
        assert!(admit_str("/a%2fb", reject_2f).is_err());
        assert!(admit_str("/a/b?x=%2F", reject_2f).is_ok());
        let dotseg = with(ParseOpts::DOTSEG_REJECT, ParseOpts::DOTSEG_REMOVE);
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/a/%2e%2E/b",
            "/a/..",
            "/.",
            "/a/..%2fb",
        ] {
            assert!(admit_str(bad, dotseg).is_err(), "{bad}");
        }
        for good in ["/", "/a/", "/a/.b/..c", "/a/b?x=/../", "/a..b"] {
            assert!(admit_str(good, dotseg).is_ok(), "{good}");
        }
        let q20 = with(ParseOpts::QUERY_20_PLUS, 0);
        assert_eq!(
            admit_str("/a%20b?q=a%20b%2520", q20),
            Ok(("/a b".into(), "q=a+b%2520".into()))
        );
        let no_utf8 = with(0, ParseOpts::INVALID_UTF8_REJECT);
        assert_eq!(
            admit_str("/a%ff?%c0", no_utf8).map(|(_, q)| q),
            Ok("%C0".into())
        );
        let no_ctrls = with(0, ParseOpts::CTRLS_REJECT);
        assert!(admit_str("/a?%01", no_ctrls).is_ok());
        assert!(
            admit_str("/a%01", no_ctrls).is_err(),
            "the path stays strict"
        );
    }

    #[test]
    fn get_body_and_host() {
        let d = ParseOpts::default();
        let get_body = with(ParseOpts::METHOD_GET_BODY, 0);
        let check = |raw: &[u8], o| {
            let head = head_of(raw);
            let mut path = Vec::new();
            admit(raw, &head, b"/", b"", o, &mut path).map(|_| ())
        };
        let body = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        assert!(check(body, d).is_err());
        assert!(check(body, get_body).is_ok());
        let chunked = b"HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(check(chunked, d).is_err());
        assert!(check(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", d).is_ok());
        assert!(check(b"GET / HTTP/1.1\r\nHost: a_b\r\n\r\n", d).is_err());
        let lax = with(0, ParseOpts::HOST_STRICT);
        assert!(check(b"GET / HTTP/1.1\r\nHost: a_b\r\n\r\n", lax).is_ok());
    }

    /// Outputs of lighttpd 1.4.69 (its %U and %q) for the same requests.
    #[test]
    fn targets_as_lighttpd_normalises_them() {
        let t = |raw: &[u8], o: ParseOpts| {
            let (p, q) = crate::path::split_target(raw);
            let mut out = Vec::new();
            normalize_target(p, o, &mut out);
            let q = normalize_query(q, o).unwrap_or_else(|| q.to_vec());
            (
                String::from_utf8_lossy(&out).into_owned(),
                String::from_utf8_lossy(&q).into_owned(),
            )
        };
        let d = ParseOpts::default();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(t(b"/a%2fb?x=%2f", d), pair("/a/b", "x=%2F"));
        assert_eq!(t(b"/%61/b?q=a%20b+c%2b", d), pair("/a/b", "q=a%20b+c%2B"));
        assert_eq!(
            t(b"/a%3ab%3F%23?a%3db%26c%3F", d),
            pair("/a%3Ab%3F%23", "a%3Db%26c%3F")
        );
        assert_eq!(t(b"/x/../a/./b", d), pair("/a/b", ""));
        assert_eq!(t(b"/a//b", d), pair("/a/b", ""));
        assert_eq!(t(b"/a/b/.", d), pair("/a/b/", ""));
        assert_eq!(
            t(b"/a\\b\xc3\xa9\"<x>?y=\xe9\"%zz", d),
            pair("/a%5Cb%C3%A9%22%3Cx%3E", "y=%E9%22%25zz")
        );
        assert_eq!(
            t(
                b"/a%3ab%2f%3f%41%7e%25%5c%c3%a9?x=%3a%26%3d%2b%2f%3f%41%20",
                d
            ),
            pair("/a%3Ab/%3FA~%25%5C%C3%A9", "x=%3A%26%3D%2B%2F%3FA%20")
        );
        let required = with(ParseOpts::REQUIRED, 0);
        assert_eq!(
            t(
                b"/a%3ab%2f%3f%41%7e%25%5c%c3%a9?x=%3a%26%3d%2b%2f%3f%41%20",
                required
            ),
            pair("/a:b/%3FA~%25%5C%C3%A9", "x=:%26%3D%2B/?A%20")
        );
        let no_2f = with(0, ParseOpts::PATH_2F_DECODE);
        assert_eq!(t(b"/a/%2E%2e%2Fa/b", no_2f), pair("/a/..%2Fa/b", ""));
        let keep_dots = with(0, ParseOpts::DOTSEG_REMOVE);
        assert_eq!(t(b"/x/../a/./b", keep_dots), pair("/x/../a/./b", ""));
        assert_eq!(t(b"/a/%2e%2e/a/b", keep_dots), pair("/a/../a/b", ""));
        let q20 = with(ParseOpts::QUERY_20_PLUS, 0);
        assert_eq!(t(b"/a?q=a%20b%2520", q20), pair("/a", "q=a+b%2520"));
        let off = ParseOpts(ParseOpts::HEADER_STRICT | ParseOpts::HOST_STRICT);
        assert_eq!(t(b"/%61/../b?q=%61", off), pair("/%61/../b", "q=%61"));
    }

    #[test]
    fn hosts_as_lighttpd_normalises_them() {
        let d = ParseOpts::default();
        let n = |h: &str, o| {
            normalize_host(h.as_bytes(), o)
                .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
        };
        assert_eq!(n("example.com", d), Ok(None));
        assert_eq!(n("a:8080", d), Ok(None));
        assert_eq!(n("EXAMPLE.com.:80", d), Ok(Some("EXAMPLE.com".into())));
        assert_eq!(n("a.b.", d), Ok(Some("a.b".into())));
        assert_eq!(n("[::0001]:8080", d), Ok(Some("[::1]:8080".into())));
        assert_eq!(n("[::1]", d), Ok(None));
        assert_eq!(n("a:", d), Ok(Some("a".into())));
        assert_eq!(n("a.b:081", d), Err(BadHost));
        assert_eq!(n("a:0", d), Err(BadHost));
        assert_eq!(n("a:65536", d), Err(BadHost));
        assert_eq!(n("[zz]", d), Err(BadHost));
        let lax = ParseOpts(ParseOpts::HOST_NORMALIZE);
        assert_eq!(n("1.2.3.4:0x50", lax), Ok(Some("1.2.3.4".into())));
        assert_eq!(n("a:010", lax), Ok(Some("a:8".into())));
        assert_eq!(n("example.com.:80", lax), Ok(Some("example.com.".into())));
        assert_eq!(n("a.b:081", ParseOpts(0)), Ok(None));
    }

    #[test]
    fn hostnames() {
        for ok in [
            "example.com",
            "EXAMPLE.com.:80",
            "a",
            "a-b.c",
            "1.2.3.4",
            "1.2.3.4:8080",
            "3com.com",
            "ab-.c",
            "[::1]",
            "[::0001]:8080",
            "x.1a",
        ] {
            assert!(strict_hostname(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "a_b",
            "-ab.c",
            "a.-b",
            "127.1",
            "1.2.3.4:0x50",
            "a..b",
            ".",
            "",
            "a b",
            "a.1",
            "[::1",
            "[::1]x",
            "[1:2:3:4:5:6:7:8:9]",
            "a:b",
        ] {
            assert!(!strict_hostname(bad.as_bytes()), "{bad}");
        }
    }
}
