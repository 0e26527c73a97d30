//! Content-Type by file name, from `mimetype.assign`, as lighttpd 1.4.69 does
//! (stat_cache_mimetype_by_ext): suffixes match case-insensitively (image.JPG is
//! image/jpeg; the config refuses keys that differ only in case). A table of fewer
//! than 16 entries is searched in order, the first suffix of the name wins; a larger
//! one is searched for the whole base name, then the longest extension (`.tar.gz`
//! before `.gz`, `.ext` before `ext`), then the catch-all `""`.

/// lighttpd switches from the in-order scan to the extension search at this size.
const ORDERED_BELOW: usize = 16;

/// Index into `table` of the type for `name`, or None (then application/octet-stream).
pub fn lookup(table: &[(String, String)], name: &[u8]) -> Option<usize> {
    if table.len() < ORDERED_BELOW {
        return table
            .iter()
            .position(|(suffix, _)| ends_with_icase(name, suffix.as_bytes()));
    }
    let base = memchr::memrchr(b'/', name).map_or(0, |i| i + 1);
    // One pass: the match that starts earliest in the name is the one lighttpd's
    // sequence of lookups finds first.
    let mut best: Option<(usize, usize)> = None;
    for (i, (suffix, _)) in table.iter().enumerate() {
        let Some(start) = name.len().checked_sub(suffix.len()) else {
            continue;
        };
        if start < base || best.is_some_and(|(b, _)| b <= start) {
            continue;
        }
        if is_candidate(name, base, start) && name[start..].eq_ignore_ascii_case(suffix.as_bytes())
        {
            best = Some((start, i));
        }
    }
    best.map(|(_, i)| i)
}

/// Where lighttpd looks a suffix up: the base name, a `.` after its first byte, the
/// byte after such a `.`, and the empty suffix.
fn is_candidate(name: &[u8], base: usize, start: usize) -> bool {
    start == base
        || start == name.len()
        || (start > base && name[start] == b'.')
        || (start > base + 1 && name[start - 1] == b'.')
}

fn ends_with_icase(name: &[u8], suffix: &[u8]) -> bool {
    name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// The type string for `name`.
pub fn content_type<'a>(table: &'a [(String, String)], name: &[u8]) -> &'a str {
    match lookup(table, name) {
        Some(i) => &table[i].1,
        None => DEFAULT_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn first_suffix_wins() {
        let t = table(&[
            (".gz", "application/gzip"),
            (".tar.gz", "application/x-tgz"),
            (".html", "text/html"),
            ("", "application/x-default"),
        ]);
        assert_eq!(content_type(&t, b"/a/f.tar.gz"), "application/gzip");
        assert_eq!(content_type(&t, b"/index.html"), "text/html");
        assert_eq!(content_type(&t, b"/x.bin"), "application/x-default");
        assert_eq!(content_type(&t[..3], b"/x.bin"), DEFAULT_TYPE);
    }

    #[test]
    fn case_insensitive() {
        let t = table(&[(".jpg", "image/jpeg"), (".HTML", "text/html")]);
        assert_eq!(content_type(&t, b"/image.JPG"), "image/jpeg");
        assert_eq!(content_type(&t, b"/image.Jpg"), "image/jpeg");
        assert_eq!(content_type(&t, b"/x.html"), "text/html");
        assert_eq!(content_type(&t, b"/x.jpeg"), DEFAULT_TYPE);
    }

    /// The cases checked against lighttpd 1.4.69 with a 17-entry table.
    #[test]
    fn large_table_searches_extensions() {
        let mut pairs = vec![
            (".gz", "application/gzip"),
            (".tar.gz", "application/x-tgz"),
            (".jpg", "image/jpeg"),
            (".HTML", "text/html"),
            (".txt", "text/plain"),
            ("README", "text/x-readme"),
            ("ml", "text/x-ml"),
            ("a1", "text/x-a1"),
        ];
        let fill: Vec<(String, String)> = (1..=8)
            .map(|i| (format!(".e{i}"), format!("x/{i}")))
            .collect();
        pairs.extend(fill.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        pairs.push(("", "x/default"));
        let t = table(&pairs);
        assert!(t.len() >= ORDERED_BELOW);
        for (name, want) in [
            (&b"/d/image.JPG"[..], "image/jpeg"),
            (b"/f.tar.gz", "application/x-tgz"),
            (b"/archive.TAR.GZ", "application/x-tgz"),
            (b"/x.HTML", "text/html"),
            (b"/readme", "text/x-readme"),
            (b"/a.txt", "text/plain"),
            (b"/x.a1", "text/x-a1"),
            (b"/y.ml", "text/x-ml"),
            (b"/x.html.ml", "text/x-ml"),
            (b"/noext", "x/default"),
            // Not at an extension boundary: no match, as in lighttpd.
            (b"/xml", "x/default"),
            (b"/a.xml", "x/default"),
            (b"/README.gz", "application/gzip"),
            (b"/dir.tar.gz/x", "x/default"),
            (b"/.e1", "x/1"),
            (b"/x..e1", "x/1"),
            (b"/x.e1.", "x/default"),
        ] {
            assert_eq!(
                content_type(&t, name),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }
}
