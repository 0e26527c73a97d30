//! mod_evhost: the document root from evhost.path-pattern, with the parts of the
//! request's host filled in as lighttpd does (`%0` domain and top-level domain,
//! `%1` top-level domain, `%2` domain, `%3`.. subdomains from right to left, `%_`
//! the whole host, `%{n.m}` the m-th character of `%n`, `%%` a percent sign). The
//! result is used when it is a directory inside the pattern's fixed prefix (the
//! directory before the first `%`): a crafted Host or a symlink cannot leave it.

use super::confine::{host_name, DirCheck};
use super::{hook, where_set, Cx, Flow, Module};
use wick_conf::Config;

/// One piece of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `%n`
    Part(u8),
    /// `%{n.m}`: character m (1-based; 0 = all) of part n.
    Char(u8, u8),
    /// `%_`
    Host,
}

/// A parsed evhost.path-pattern and the directory the result must stay in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub pieces: Vec<Piece>,
    pub base: String,
}

/// Parse a pattern; lighttpd's rules: `%%`, `%_`, `%d`, `%{d}`, `%{d.d}` with
/// single digits; anything else after `%` is an error.
pub fn parse_pattern(p: &str) -> Result<Pattern, String> {
    let b = p.as_bytes();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    let bad = || format!("invalid evhost.path-pattern: {p}");
    while i < b.len() {
        if b[i] != b'%' {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            text.push_str(&p[start..i]);
            continue;
        }
        let next = b.get(i + 1).copied();
        let (piece, len) = match next {
            Some(b'%') => {
                text.push('%');
                i += 2;
                continue;
            }
            Some(b'_') => (Piece::Host, 2),
            Some(d) if d.is_ascii_digit() => (Piece::Part(d - b'0'), 2),
            Some(b'{') => {
                let n = b
                    .get(i + 2)
                    .copied()
                    .filter(u8::is_ascii_digit)
                    .ok_or_else(bad)?;
                match b.get(i + 3) {
                    Some(b'}') => (Piece::Char(n - b'0', 0), 4),
                    Some(b'.') => {
                        let m = b
                            .get(i + 4)
                            .copied()
                            .filter(u8::is_ascii_digit)
                            .ok_or_else(bad)?;
                        if b.get(i + 5) != Some(&b'}') {
                            return Err(bad());
                        }
                        (Piece::Char(n - b'0', m - b'0'), 6)
                    }
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(piece);
        i += len;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    let fixed = match pieces.first() {
        Some(Piece::Text(t)) if pieces.len() == 1 => t.as_str(),
        Some(Piece::Text(t)) => t.as_str(),
        _ => "",
    };
    let base = match fixed.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) if pieces.len() > 1 => fixed[..i].to_string(),
        Some(_) => fixed.trim_end_matches('/').to_string(),
        None => String::new(),
    };
    Ok(Pattern { pieces, base })
}

/// lighttpd's split of a host (without port): `%0` the last two labels, then the
/// labels from the right as `%1`, `%2`, ... A host without a dot is `%0` and `%1`.
/// IPv6 literals are `%0` only.
pub fn host_parts(host: &str) -> Vec<&str> {
    if host.starts_with('[') {
        return vec![host];
    }
    let labels: Vec<&str> = host.rsplit('.').filter(|l| !l.is_empty()).collect();
    let zero = match host.trim_end_matches('.').rmatch_indices('.').nth(1) {
        Some((i, _)) => &host[i + 1..],
        None => host,
    };
    let mut parts = vec![zero];
    parts.extend(labels);
    parts
}

/// The path for `host` (no port) by `pat`, with a trailing slash.
pub fn build(pat: &Pattern, host: &str) -> String {
    let parts = host_parts(host);
    let mut out = String::new();
    for piece in &pat.pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Host => out.push_str(host),
            Piece::Part(n) => {
                if let Some(p) = parts.get(usize::from(*n)) {
                    out.push_str(p);
                }
            }
            Piece::Char(n, m) => {
                if let Some(p) = parts.get(usize::from(*n)) {
                    if *m == 0 {
                        out.push_str(p);
                    } else if let Some(c) = p.chars().nth(usize::from(*m) - 1) {
                        out.push(c);
                    }
                }
            }
        }
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

pub struct Evhost {
    /// The parsed pattern of each block that sets one.
    patterns: super::ByBlock<Pattern>,
    dirs: DirCheck,
}

impl Evhost {
    pub fn new(cfg: &Config) -> Result<Evhost, String> {
        let mut patterns = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(s) = p.evhost_path_pattern().filter(|s| !s.is_empty()) {
                let pat = parse_pattern(s)
                    .map_err(|e| format!("{}{e}", where_set(cfg, id, "evhost.path-pattern")))?;
                patterns.push((id, pat));
            }
        }
        Ok(Evhost {
            patterns: patterns.into_iter().collect(),
            dirs: DirCheck::new(),
        })
    }
}

impl Module for Evhost {
    fn name(&self) -> &'static str {
        "mod_evhost"
    }

    fn hooks(&self) -> u16 {
        hook::DOCROOT
    }

    fn docroot(&self, x: &mut Cx) -> Flow {
        if x.view.evhost_path_pattern.is_empty() || x.rq.host.is_empty() {
            return Flow::Go;
        }
        let b = x.block_of(|p| p.evhost_path_pattern().is_some());
        let Some(pat) = self.patterns.get(b) else {
            return Flow::Go;
        };
        let Some(host) = host_name(&x.rq.host) else {
            return Flow::Go;
        };
        let path = build(pat, &host);
        let Some(rel) = path.strip_prefix(pat.base.as_str()) else {
            return Flow::Go;
        };
        if self.dirs.is_dir_beneath(&pat.base, rel, x.fs.clock.mono) {
            x.rq.docroot.clear();
            x.rq.docroot.push_str(&path);
        }
        Flow::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_as_lighttpd() {
        assert_eq!(
            host_parts("www.example.com"),
            ["example.com", "com", "example", "www"]
        );
        assert_eq!(
            host_parts("a.b.example.org"),
            ["example.org", "org", "example", "b", "a"]
        );
        assert_eq!(host_parts("localhost"), ["localhost", "localhost"]);
        assert_eq!(host_parts("[::1]"), ["[::1]"]);
    }

    #[test]
    fn patterns() {
        let p = parse_pattern("/srv/www/%0/%3/htdocs/").expect("pattern");
        assert_eq!(p.base, "/srv/www");
        assert_eq!(
            build(&p, "www.example.com"),
            "/srv/www/example.com/www/htdocs/"
        );
        assert_eq!(build(&p, "example.com"), "/srv/www/example.com//htdocs/");
        let p = parse_pattern("/home/%{2.1}/%2/%_%%").expect("pattern");
        assert_eq!(
            build(&p, "www.example.com"),
            "/home/e/example/www.example.com%/"
        );
        assert_eq!(p.base, "/home");
        let p = parse_pattern("/var/www/%{1}").expect("pattern");
        assert_eq!(build(&p, "a.org"), "/var/www/org/");
        let p = parse_pattern("/var/www/fixed").expect("pattern");
        assert_eq!(p.base, "/var/www/fixed");
        for bad in [
            "/x/%",
            "/x/%a",
            "/x/%{a}",
            "/x/%{1.a}",
            "/x/%{1.2",
            "/x/%{12}",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }
}
