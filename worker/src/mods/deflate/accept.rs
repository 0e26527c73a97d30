//! Which content coding a response gets: the client's Accept-Encoding (q-values
//! honoured, q=0 refuses) against deflate.allowed-encodings (lighttpd's groups and
//! order: a listed name that contains "gzip" allows gzip and x-gzip, "deflate",
//! "br", "zstd"; unset: zstd, br, then gzip/x-gzip/deflate).

/// A content coding wickd produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Zstd,
    Br,
    Gzip,
    /// gzip under its old name, answered with the name the client used.
    XGzip,
    /// zlib-wrapped deflate (RFC 9110 8.4.1.2), as lighttpd sends it.
    Deflate,
}

impl Coding {
    /// The Content-Encoding value, also the ETag and cache-file suffix.
    pub fn label(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Br => "br",
            Coding::Gzip => "gzip",
            Coding::XGzip => "x-gzip",
            Coding::Deflate => "deflate",
        }
    }

    /// Bit of this coding in a set.
    fn bit(self) -> u8 {
        match self {
            Coding::Zstd => 1,
            Coding::Br => 2,
            Coding::Gzip => 4,
            Coding::XGzip => 8,
            Coding::Deflate => 16,
        }
    }

    /// Preference within one allowed group (lighttpd's order).
    const ORDER: [Coding; 5] = [
        Coding::Zstd,
        Coding::Br,
        Coding::Gzip,
        Coding::XGzip,
        Coding::Deflate,
    ];
}

/// lighttpd's default groups when deflate.allowed-encodings is unset.
const DEFAULT_GROUPS: [u8; 3] = [1, 2, 4 | 8 | 16];

/// The codings one deflate.allowed-encodings entry allows (lighttpd matches
/// substrings: "x-gzip" and "gzip" both allow gzip and x-gzip, "brotli" allows br).
fn group_of(entry: &str) -> u8 {
    let mut g = 0;
    if entry.contains("gzip") {
        g |= Coding::Gzip.bit() | Coding::XGzip.bit();
    }
    if entry.contains("deflate") {
        g |= Coding::Deflate.bit();
    }
    if entry.contains("br") {
        g |= Coding::Br.bit();
    }
    if entry.contains("zstd") {
        g |= Coding::Zstd.bit();
    }
    g
}

/// q-value in thousandths; an unreadable one counts as 1 (lighttpd reads none).
fn qvalue(params: &[u8]) -> u16 {
    for p in params.split(|&c| c == b';') {
        let p = crate::request::trim(p);
        let Some(v) = p
            .strip_prefix(b"q=")
            .or_else(|| p.strip_prefix(b"Q="))
            .map(crate::request::trim)
        else {
            continue;
        };
        let (int, frac) = match memchr::memchr(b'.', v) {
            Some(i) => (&v[..i], &v[i + 1..]),
            None => (v, &b""[..]),
        };
        if int == b"0" || (int.is_empty() && !frac.is_empty()) {
            let mut q = 0u16;
            for (i, d) in frac.iter().take(3).enumerate() {
                if !d.is_ascii_digit() {
                    return 1000;
                }
                q += u16::from(d - b'0') * [100, 10, 1][i];
            }
            return q;
        }
        return 1000;
    }
    1000
}

/// The client's q-value for each coding (None: not listed). `*` is ignored, as
/// lighttpd ignores it; `identity` plays no part (wickd can always send it).
fn client(accept: &[u8]) -> [Option<u16>; 5] {
    let mut q = [None; 5];
    for item in accept.split(|&c| c == b',') {
        let item = crate::request::trim(item);
        let (name, params) = match memchr::memchr(b';', item) {
            Some(i) => (crate::request::trim(&item[..i]), &item[i + 1..]),
            None => (item, &b""[..]),
        };
        let Some(i) = Coding::ORDER
            .iter()
            .position(|c| name.eq_ignore_ascii_case(c.label().as_bytes()))
        else {
            continue;
        };
        q[i] = Some(qvalue(params));
    }
    q
}

/// The coding to answer `accept` with, if any: among the allowed codings the
/// client accepts (q > 0), the highest q; ties go to the earlier allowed group,
/// then to lighttpd's order within it.
pub fn choose(allowed: &[String], accept: &[u8]) -> Option<Coding> {
    let q = client(accept);
    let mut groups = [0u8; 8];
    let groups: &[u8] = if allowed.is_empty() {
        &DEFAULT_GROUPS
    } else {
        let n = allowed.len().min(groups.len());
        for (g, e) in groups.iter_mut().zip(allowed) {
            *g = group_of(e);
        }
        &groups[..n]
    };
    let mut best: Option<(u16, Coding)> = None;
    for &g in groups {
        for (i, c) in Coding::ORDER.iter().enumerate() {
            let Some(cq) = q[i] else { continue };
            if g & c.bit() == 0 || cq == 0 {
                continue;
            }
            if best.is_none_or(|(bq, _)| cq > bq) {
                best = Some((cq, *c));
            }
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(allowed: &[&str], accept: &str) -> Option<&'static str> {
        let a: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        choose(&a, accept.as_bytes()).map(Coding::label)
    }

    #[test]
    fn lighttpd_order_by_default() {
        assert_eq!(ch(&[], "gzip, deflate, br, zstd"), Some("zstd"));
        assert_eq!(ch(&[], "gzip, deflate, br"), Some("br"));
        assert_eq!(ch(&[], "deflate, gzip"), Some("gzip"));
        assert_eq!(ch(&[], "x-gzip"), Some("x-gzip"));
        assert_eq!(ch(&[], "deflate"), Some("deflate"));
        assert_eq!(ch(&[], "identity"), None);
        assert_eq!(ch(&[], "*"), None);
        assert_eq!(ch(&[], ""), None);
        assert_eq!(ch(&[], "GZIP"), Some("gzip"));
    }

    #[test]
    fn configured_groups_in_their_order() {
        assert_eq!(ch(&["gzip", "br"], "br, gzip, zstd"), Some("gzip"));
        assert_eq!(ch(&["br", "gzip"], "gzip, br"), Some("br"));
        assert_eq!(ch(&["gzip"], "br, zstd"), None);
        assert_eq!(ch(&["x-gzip"], "gzip"), Some("gzip"));
        assert_eq!(ch(&["brotli"], "br"), Some("br"));
        assert_eq!(ch(&["bzip2"], "gzip"), None);
    }

    #[test]
    fn q_values() {
        assert_eq!(ch(&[], "gzip;q=0, br"), Some("br"));
        assert_eq!(ch(&[], "br;q=0, gzip"), Some("gzip"));
        assert_eq!(ch(&[], "br;q=0, gzip;q=0"), None);
        assert_eq!(ch(&[], "gzip;q=1.0, br;q=0.5"), Some("gzip"));
        assert_eq!(ch(&[], "gzip; q=0.8, zstd;q=0.9"), Some("zstd"));
        assert_eq!(ch(&[], "gzip;q=0.000"), None);
        assert_eq!(ch(&[], "gzip;q=.5"), Some("gzip"));
        assert_eq!(ch(&[], "gzip;level=1;q=0"), None);
        assert_eq!(ch(&[], "gzip;q=bogus"), Some("gzip"));
    }
}
