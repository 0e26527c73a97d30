//! Debian's lighttpd include_shell helpers a corpus config names: the corpus tests
//! (conf/tests/corpus.rs, tests/conf_compat.rs) replace them with scripts that
//! print nothing, installed or not, so they pass on a machine without the package.

/// The Debian helper scripts a config names (`/usr/share/lighttpd/NAME.pl`).
pub fn debian_helpers(text: &str) -> Vec<String> {
    const DIR: &str = "/usr/share/lighttpd/";
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.match_indices(DIR) {
        let name: String = text[i + DIR.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let path = format!("{DIR}{name}");
        if name.ends_with(".pl") && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}
