//! Content-Type by file name, from `mimetype.assign`: the first suffix in the list
//! that the name ends with (an empty suffix matches every name), as lighttpd does.

/// Index into `table` of the type for `name`, or None (then application/octet-stream).
pub fn lookup(table: &[(String, String)], name: &[u8]) -> Option<usize> {
    table
        .iter()
        .position(|(suffix, _)| name.ends_with(suffix.as_bytes()))
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

    #[test]
    fn first_suffix_wins() {
        let t = vec![
            (".gz".to_string(), "application/gzip".to_string()),
            (".tar.gz".to_string(), "application/x-tgz".to_string()),
            (".html".to_string(), "text/html".to_string()),
            ("".to_string(), "application/x-default".to_string()),
        ];
        assert_eq!(content_type(&t, b"/a/f.tar.gz"), "application/gzip");
        assert_eq!(content_type(&t, b"/index.html"), "text/html");
        assert_eq!(content_type(&t, b"/x.bin"), "application/x-default");
        assert_eq!(content_type(&t[..3], b"/x.bin"), DEFAULT_TYPE);
    }
}
