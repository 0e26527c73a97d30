//! Request trailers as lighttpd 1.4.7x takes them: each field checked (named in the
//! request's Trailer header when there is one, not a field that must not come after
//! the body, a value), then kept only when server.feature-flags'
//! "request.trailer-whitelist" names it: those join the request's headers (a CGI
//! sees them as HTTP_*); the others are dropped.

/// Fields a trailer may not carry: framing, routing, authentication, conditionals,
/// and what a cache or the handler decided before the body (lighttpd's list).
const FORBIDDEN: &[&str] = &[
    "age",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "content-type",
    "date",
    "expect",
    "expires",
    "forwarded",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "location",
    "max-forwards",
    "pragma",
    "proxy-connection",
    "range",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "www-authenticate",
];

/// The names of "request.trailer-whitelist" ("A,B"), from server.feature-flags.
pub fn whitelist(flags: &[(String, wick_conf::Value)]) -> Vec<String> {
    flags
        .iter()
        .filter(|(k, _)| k == "request.trailer-whitelist")
        .filter_map(|(_, v)| match v {
            wick_conf::Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .flat_map(|s| s.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Check the trailer section `raw` (lines "Name: value\r\n", as the chunked decoder
/// kept them) of a request whose Trailer header is `announced`. Ok: the fields to
/// add to the request's headers; Err: the status to refuse it with.
pub fn check(
    raw: &[u8],
    announced: Option<&[u8]>,
    field_limit: usize,
    whitelist: &[String],
) -> Result<Vec<(String, String)>, u16> {
    let mut keep = Vec::new();
    if raw.is_empty() {
        return Ok(keep);
    }
    if raw.len() > field_limit {
        return Err(431);
    }
    for line in raw.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(400);
        };
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || FORBIDDEN.contains(&name.as_str()) {
            return Err(400);
        }
        if let Some(list) = announced {
            let listed = list
                .split(|&c| c == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(name.as_bytes()));
            if !listed {
                return Err(400);
            }
        }
        if whitelist.contains(&name) {
            keep.push((
                String::from_utf8_lossy(&line[..colon]).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_then_kept_only_when_listed() {
        let wl = vec!["x-sum".to_string()];
        let raw = b"X-Sum: 42\r\nX-Other: 1\r\n";
        let got = check(raw, None, 8192, &wl).expect("valid");
        assert_eq!(got, vec![("X-Sum".to_string(), "42".to_string())]);
        assert_eq!(check(raw, None, 8192, &[]), Ok(Vec::new()));
        // Named in Trailer, or refused.
        assert_eq!(check(raw, Some(b"X-Sum"), 8192, &wl), Err(400));
        assert!(check(raw, Some(b"x-sum, X-Other"), 8192, &wl).is_ok());
        // Fields that may not be trailers, blank values, size.
        assert_eq!(check(b"Content-Length: 5\r\n", None, 8192, &wl), Err(400));
        assert_eq!(check(b"Host: a\r\n", None, 8192, &wl), Err(400));
        assert_eq!(check(b"X-Sum: \r\n", None, 8192, &wl), Err(400));
        assert_eq!(check(raw, None, 10, &wl), Err(431));
        assert_eq!(check(b"", Some(b"X-Sum"), 8192, &wl), Ok(Vec::new()));
    }

    #[test]
    fn whitelist_from_feature_flags() {
        let flags = vec![(
            "request.trailer-whitelist".to_string(),
            wick_conf::Value::Str("X-Sum, Digest".into()),
        )];
        assert_eq!(whitelist(&flags), vec!["x-sum", "digest"]);
    }
}
