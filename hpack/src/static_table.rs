//! The static table (RFC 7541 Appendix A), indices 1 to 61, and the encoder's view
//! of it: which index names a field, and how the field is to be indexed.

/// Entries 1..=61 at positions 0..=60.
pub(crate) const ENTRIES: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Last static index; dynamic entries follow it.
pub(crate) const LEN: usize = ENTRIES.len();

/// Entry `index` (1-based).
pub(crate) fn get(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    ENTRIES.get(index.checked_sub(1)?).copied()
}

/// How the encoder represents a field (RFC 7541 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Values that repeat from response to response: into the dynamic table.
    Index,
    /// Values that change with every response: not worth a table slot.
    Volatile,
    /// Credentials and cookies: never indexed, by us nor by any intermediary (7.1.3).
    Sensitive,
}

/// `name` equals `lit`: a compare of known length, inlined.
#[inline(always)]
fn is<const N: usize>(name: &[u8], lit: &[u8; N]) -> bool {
    <&[u8; N]>::try_from(name).is_ok_and(|name| name == lit)
}

/// Tries `name` against each literal in turn; (0, Index) if none is it.
macro_rules! names {
    ($name:expr, $($lit:literal => $found:expr,)*) => {
        $(if is($name, $lit) { $found } else)* { (0, Policy::Index) }
    };
}

/// The static index of `name` (0: none) and its policy. Switches on the length
/// first: one or two comparisons per field.
pub(crate) fn classify(name: &[u8]) -> (u8, Policy) {
    use Policy::{Index, Sensitive, Volatile};
    let (index, policy) = match name.len() {
        3 => names!(name,
            b"age" => (21, Volatile),
            b"via" => (60, Index),
        ),
        4 => names!(name,
            b"date" => (33, Volatile),
            b"etag" => (34, Volatile),
            b"vary" => (59, Index),
            b"link" => (45, Index),
            b"host" => (38, Index),
            b"from" => (37, Index),
        ),
        5 => names!(name,
            b":path" => (4, Volatile),
            b"allow" => (22, Index),
            b"range" => (50, Volatile),
        ),
        6 => names!(name,
            b"server" => (54, Index),
            b"cookie" => (32, Sensitive),
            b"accept" => (19, Index),
            b"expect" => (35, Index),
        ),
        7 => names!(name,
            b":status" => (8, Index),
            b"expires" => (36, Volatile),
            b":method" => (2, Index),
            b":scheme" => (6, Index),
            b"referer" => (51, Volatile),
            b"refresh" => (52, Index),
        ),
        8 => names!(name,
            b"location" => (46, Volatile),
            b"if-match" => (39, Volatile),
            b"if-range" => (42, Volatile),
        ),
        10 => names!(name,
            b"set-cookie" => (55, Sensitive),
            b":authority" => (1, Index),
            b"user-agent" => (58, Index),
        ),
        11 => names!(name,
            b"retry-after" => (53, Index),
        ),
        12 => names!(name,
            b"content-type" => (31, Index),
            b"max-forwards" => (47, Index),
        ),
        13 => names!(name,
            b"last-modified" => (44, Volatile),
            b"accept-ranges" => (18, Index),
            b"cache-control" => (24, Index),
            b"content-range" => (30, Volatile),
            b"authorization" => (23, Sensitive),
            b"if-none-match" => (41, Volatile),
        ),
        14 => names!(name,
            b"content-length" => (28, Volatile),
            b"accept-charset" => (15, Index),
        ),
        15 => names!(name,
            b"accept-encoding" => (16, Index),
            b"accept-language" => (17, Index),
        ),
        16 => names!(name,
            b"content-encoding" => (26, Index),
            b"content-language" => (27, Index),
            b"content-location" => (29, Volatile),
            // a Digest challenge carries a fresh nonce
            b"www-authenticate" => (61, Volatile),
        ),
        17 => names!(name,
            b"if-modified-since" => (40, Volatile),
            b"transfer-encoding" => (57, Index),
        ),
        18 => names!(name,
            b"proxy-authenticate" => (48, Volatile),
        ),
        19 => names!(name,
            b"content-disposition" => (25, Volatile),
            b"if-unmodified-since" => (43, Volatile),
            b"proxy-authorization" => (49, Sensitive),
        ),
        25 => names!(name,
            b"strict-transport-security" => (56, Index),
        ),
        27 => names!(name,
            b"access-control-allow-origin" => (20, Index),
        ),
        _ => (0, Index),
    };
    (index, policy)
}

/// The static index holding exactly (name, value), given the index of its name.
/// Only the pseudo-headers and accept-encoding have values there.
pub(crate) fn find_pair(name_index: u8, value: &[u8]) -> Option<usize> {
    let first = usize::from(name_index);
    if !matches!(first, 2..=8 | 16) {
        return None;
    }
    let name = get(first)?.0;
    (first..=LEN)
        .map_while(|i| get(i).filter(|e| e.0 == name).map(|e| (i, e.1)))
        .find(|&(_, v)| v == value)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_agrees_with_the_table() {
        for (i, (name, _)) in ENTRIES.iter().enumerate() {
            let (index, _) = classify(name);
            assert_eq!(get(usize::from(index)).map(|e| e.0), Some(*name), "{i}");
        }
        assert_eq!(classify(b"x-powered-by"), (0, Policy::Index));
        assert_eq!(find_pair(2, b"POST"), Some(3));
        assert_eq!(find_pair(8, b"404"), Some(13));
        assert_eq!(find_pair(16, b"gzip, deflate"), Some(16));
        assert_eq!(find_pair(16, b"gzip"), None);
        assert_eq!(find_pair(31, b""), None);
    }
}
