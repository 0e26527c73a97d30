//! URL path to a safe relative file path: percent-decoding and normalisation so that
//! nothing reaches outside the document root (`..`, `%2e%2e`, encoded slashes, NUL).
//! The result always starts with `/` and holds no `.`/`..` segment and no `//`; the
//! filesystem side adds openat2(RESOLVE_BENEATH) on top.

/// Split a request target into path and query (without `?`); a fragment is dropped.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let target = match memchr::memchr(b'#', target) {
        Some(i) => &target[..i],
        None => target,
    };
    match memchr::memchr(b'?', target) {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode `raw` (a path starting with `/`) and normalise it into `out`.
/// Err(400) for invalid escapes and for NUL or other control bytes once decoded.
pub fn decode_normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), u16> {
    out.clear();
    out.reserve(raw.len() + 1);
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'%' {
            let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|&c| hex(c)),
                raw.get(i + 2).and_then(|&c| hex(c)),
            ) else {
                return Err(400);
            };
            let b = h << 4 | l;
            if b < 0x20 || b == 0x7f {
                return Err(400);
            }
            out.push(b);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    normalize(out);
    Ok(())
}

/// Collapse `//`, drop `.` segments, resolve `..` without ever climbing above `/`.
/// A trailing `/` (or a final `.`/`..` segment) leaves the result ending in `/`.
pub fn normalize(p: &mut Vec<u8>) {
    // Fast path: nothing to do for the common clean path.
    if p.first() == Some(&b'/') && !needs_work(p) {
        return;
    }
    let src = std::mem::take(p);
    p.push(b'/');
    let mut trailing = false;
    for seg in src.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => trailing = true,
            b".." => {
                // Drop the last segment (p always starts with '/').
                if p.len() > 1 {
                    p.pop(); // the '/' after the last segment
                    while p.last().is_some_and(|&c| c != b'/') {
                        p.pop();
                    }
                }
                trailing = true;
            }
            s => {
                p.extend_from_slice(s);
                p.push(b'/');
                trailing = false;
            }
        }
    }
    if !trailing && p.len() > 1 {
        p.pop();
    }
}

fn needs_work(p: &[u8]) -> bool {
    // Any "//", "/./", "/../", or a final "/." or "/..".
    let mut prev_slash = false;
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        if c == b'/' {
            if prev_slash {
                return true;
            }
            prev_slash = true;
        } else {
            if prev_slash && c == b'.' {
                let rest = &p[i..];
                if rest == b"."
                    || rest == b".."
                    || rest.starts_with(b"./")
                    || rest.starts_with(b"../")
                {
                    return true;
                }
            }
            prev_slash = false;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        let mut out = Vec::new();
        decode_normalize(s.as_bytes(), &mut out).expect("valid");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn normalises() {
        assert_eq!(n("/"), "/");
        assert_eq!(n("/a/b.html"), "/a/b.html");
        assert_eq!(n("/a//b"), "/a/b");
        assert_eq!(n("/a/./b"), "/a/b");
        assert_eq!(n("/a/../b"), "/b");
        assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/%2e%2e/%2E%2E/etc/passwd"), "/etc/passwd");
        assert_eq!(n("/a/..%2f..%2fetc"), "/etc");
        assert_eq!(n("/dir/"), "/dir/");
        assert_eq!(n("/dir/."), "/dir/");
        assert_eq!(n("/dir/.."), "/");
        assert_eq!(n("/a%20b"), "/a b");
        assert_eq!(n("/a\\..\\b"), "/a\\..\\b");
        assert_eq!(n("/.hidden"), "/.hidden");
        assert_eq!(n("/..."), "/...");
    }

    #[test]
    fn rejects() {
        let mut out = Vec::new();
        for bad in ["/a%00b", "/a%zz", "/a%2", "/a%0a"] {
            assert_eq!(
                decode_normalize(bad.as_bytes(), &mut out),
                Err(400),
                "{bad}"
            );
        }
    }

    #[test]
    fn splits() {
        assert_eq!(split_target(b"/a?b=1#f"), (&b"/a"[..], &b"b=1"[..]));
        assert_eq!(split_target(b"/a#f?x"), (&b"/a"[..], &b""[..]));
    }
}
