//! The one place a config regex is compiled and matched: `=~`/`!~` conditions,
//! url.rewrite*, url.redirect and dir-listing.exclude all go through [`Pattern`].
//!
//! lighttpd compiles them with PCRE2 without UTF: matching is on bytes, `.` is one
//! byte, `\d \w \s \b` and `(?i)` are ASCII. A pattern is read by fancy-regex's parser
//! in its ASCII bytes mode, which has those semantics plus what real configs take from
//! PCRE: look-ahead and look-behind, back-references, atomic groups, possessive
//! quantifiers, conditionals, `\K`, `\G`. Then:
//!
//! - a pattern that uses none of those (nearly all) runs on the regex crate directly:
//!   linear time, captures into slots reused per connection, no allocation per match;
//! - the others run on fancy-regex's backtracking VM, bounded by [`BACKTRACK_LIMIT`]. A
//!   match that reaches the bound counts as no match, as PCRE's match-limit error does
//!   in lighttpd, and is reported once per pattern ([`take_reports`]).
//!
//! A few PCRE spellings that the parser reads otherwise are rewritten first
//! ([`translate`]); PCRE features neither engine has are refused by name.

use fancy_regex::{BytesMode, Expr};
use regex::bytes::{CaptureLocations, Regex, RegexBuilder};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Backtracking steps one fancy match may take (fancy-regex's default is 1e6, about
/// 60 ms on a slow core; this is about a tenth). URL-sized subjects need far fewer.
pub const BACKTRACK_LIMIT: usize = 100_000;

/// A compiled config regex. The engine is held inline (no pointer to chase on the
/// hot path); the text and the report flag, used on errors only, behind an Arc.
#[derive(Clone)]
pub struct Pattern {
    engine: Engine,
    about: Arc<About>,
}

struct About {
    text: String,
    /// Set when a match first hit the backtracking bound (report once).
    noted: AtomicBool,
}

#[derive(Clone)]
enum Engine {
    Plain(Regex),
    Fancy(fancy_regex::Regex),
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A PCRE feature wickd's engine lacks (its name).
    Unsupported(String),
    /// Not a valid regex (the engine's message, one line).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(what) => write!(
                f,
                "uses {what}, a PCRE feature that wickd's regex engine does not support"
            ),
            Error::Invalid(m) => f.write_str(m),
        }
    }
}

/// Capture spans of one match, made by [`Pattern::locations`] and reused.
pub struct Locs(LocsImpl);

enum LocsImpl {
    Plain(CaptureLocations),
    Fancy(Vec<Option<(usize, usize)>>),
}

impl Locs {
    /// Byte range of group `i` (0: the whole match) of the last successful match.
    #[inline]
    pub fn get(&self, i: usize) -> Option<(usize, usize)> {
        match &self.0 {
            LocsImpl::Plain(l) => l.get(i),
            LocsImpl::Fancy(v) => v.get(i).copied().flatten(),
        }
    }
}

/// Patterns that hit [`BACKTRACK_LIMIT`] and were not reported yet.
static REPORTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Lines to log about patterns whose matching hit the backtracking bound (each
/// pattern once per process); empty almost always.
pub fn take_reports() -> Vec<String> {
    match REPORTS.lock() {
        Ok(mut v) if !v.is_empty() => std::mem::take(&mut *v),
        _ => Vec::new(),
    }
}

impl Pattern {
    /// Compile `pattern` with PCRE's meaning.
    pub fn new(pattern: &str) -> Result<Pattern, Error> {
        let text = translate(pattern)?;
        let tree = Expr::parse_tree_with_flags(&text, 0).map_err(|e| invalid(pattern, &e))?;
        let engine = match plain(&tree.expr)
            .then(|| RegexBuilder::new(&text).unicode(false).build().ok())
            .flatten()
        {
            Some(re) => Engine::Plain(re),
            None => Engine::Fancy(
                fancy_regex::RegexBuilder::new(&text)
                    .bytes_mode(BytesMode::Ascii)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .build()
                    .map_err(|e| invalid(pattern, &e))?,
            ),
        };
        Ok(Pattern {
            engine,
            about: Arc::new(About {
                text: pattern.to_string(),
                noted: AtomicBool::new(false),
            }),
        })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.about.text
    }

    /// Groups including group 0.
    pub fn captures_len(&self) -> usize {
        match &self.engine {
            Engine::Plain(re) => re.captures_len(),
            Engine::Fancy(re) => re.captures_len(),
        }
    }

    /// True when the backtracking engine runs it (it uses a PCRE-only feature).
    pub fn is_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Fancy(_))
    }

    /// Scratch space for [`Pattern::captures_read`].
    pub fn locations(&self) -> Locs {
        Locs(match &self.engine {
            Engine::Plain(re) => LocsImpl::Plain(re.capture_locations()),
            Engine::Fancy(re) => LocsImpl::Fancy(vec![None; re.captures_len()]),
        })
    }

    #[inline]
    pub fn is_match(&self, hay: &[u8]) -> bool {
        match &self.engine {
            Engine::Plain(re) => re.is_match(hay),
            Engine::Fancy(re) => re.is_match(hay).unwrap_or_else(|e| self.failed(&e)),
        }
    }

    /// Match and fill `locs` (made by this pattern's [`Pattern::locations`]).
    #[inline]
    pub fn captures_read(&self, locs: &mut Locs, hay: &[u8]) -> bool {
        match (&self.engine, &mut locs.0) {
            (Engine::Plain(re), LocsImpl::Plain(l)) => re.captures_read(l, hay).is_some(),
            (Engine::Fancy(re), LocsImpl::Fancy(v)) => match re.captures(hay) {
                Ok(Some(c)) => {
                    for (i, slot) in v.iter_mut().enumerate() {
                        *slot = c.get(i).map(|m| (m.start(), m.end()));
                    }
                    true
                }
                Ok(None) => false,
                Err(e) => self.failed(&e),
            },
            // Scratch from another pattern: fresh slots of the right kind.
            _ => {
                *locs = self.locations();
                self.captures_read(locs, hay)
            }
        }
    }

    /// A match the VM gave up on: no match, reported once.
    #[cold]
    fn failed(&self, e: &fancy_regex::Error) -> bool {
        if !self.about.noted.swap(true, Ordering::Relaxed) {
            if let Ok(mut v) = REPORTS.lock() {
                v.push(format!(
                    "regex \"{}\": {e} (limit {BACKTRACK_LIMIT}); counted as no match",
                    self.about.text
                ));
            }
        }
        false
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.about.text)
    }
}

fn invalid(pattern: &str, e: &fancy_regex::Error) -> Error {
    use fancy_regex::CompileError as C;
    if let fancy_regex::Error::CompileError(c) = e {
        if let C::FeatureNotYetSupported(what) = &**c {
            return Error::Unsupported(what.clone());
        }
    }
    // Parse errors of PCRE syntax fancy-regex lacks: name the feature when known.
    if let Some(f) = unsupported(pattern) {
        return Error::Unsupported(f.into());
    }
    Error::Invalid(last_line(&e.to_string()))
}

/// The descriptive line of an engine's error (some are multi-line drawings).
pub fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Nodes the regex crate runs with the same meaning.
fn plain(e: &Expr) -> bool {
    match e {
        Expr::Empty
        | Expr::Any { .. }
        | Expr::Literal { .. }
        | Expr::LiteralBytes { .. }
        | Expr::Delegate { .. }
        | Expr::Assertion(_) => true,
        Expr::Concat(v) | Expr::Alt(v) => v.iter().all(plain),
        Expr::Group(c) => plain(c),
        Expr::Repeat { child, .. } => plain(child),
        _ => false,
    }
}

/// PCRE features neither engine has, or that fancy-regex would read as something
/// else: found in the text, outside character classes.
pub fn unsupported(p: &str) -> Option<&'static str> {
    const FEATURES: &[(&str, &str)] = &[
        ("(?|", "branch reset groups (?|...)"),
        ("(?R", "recursion (?R)"),
        ("(?&", "subroutine calls (?&name)"),
        ("(?P>", "subroutine calls (?P>name)"),
        ("(?C", "callouts (?C...)"),
        ("(*", "backtracking verbs and start options (*...)"),
    ];
    let b = p.as_bytes();
    let (mut i, mut in_class) = (0, false);
    while i < b.len() {
        let rest = &b[i..];
        match b[i] {
            b'\\' => {
                // \g1, \g{1}, \g{-1}: PCRE back-references (fancy-regex: subroutines).
                if !in_class
                    && b.get(i + 1) == Some(&b'g')
                    && b.get(i + 2)
                        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'{' | b'-' | b'+'))
                {
                    return Some("back-references \\g{N} (write \\N)");
                }
                i += 1;
            }
            b'[' if !in_class => {
                in_class = true;
                i = class_start(b, i);
            }
            b']' => in_class = false,
            b'(' if !in_class => {
                if let Some((_, f)) = FEATURES
                    .iter()
                    .find(|(s, _)| rest.starts_with(s.as_bytes()))
                {
                    // (*FAIL) is supported.
                    if !rest.starts_with(b"(*FAIL)") {
                        return Some(f);
                    }
                }
                // (?1) (?+1) (?-1): numbered subroutine calls.
                if rest.starts_with(b"(?") {
                    let d = match b.get(i + 2) {
                        Some(b'+' | b'-') => b.get(i + 3),
                        d => d,
                    };
                    if d.is_some_and(u8::is_ascii_digit) {
                        return Some("subroutine calls (?N)");
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the last byte of a class opening at `i`: `[`, `[^`, and a `]` right after
/// them, which is a member.
fn class_start(b: &[u8], mut i: usize) -> usize {
    if b.get(i + 1) == Some(&b'^') {
        i += 1;
    }
    if b.get(i + 1) == Some(&b']') {
        i += 1;
    }
    i
}

/// Rewrite PCRE spellings that the parser reads otherwise or lacks:
/// `\Q...\E` (quoted text), `\<` `\>` (PCRE: the characters; regex: word boundaries),
/// `\h` `\H` `\v` `\V` (PCRE: horizontal/vertical space), `\cX` (control character),
/// `\0oo` (octal), and in a class `[` `&&` `--` `~~` (PCRE: the characters; regex:
/// nested classes and set operations). Refuses what [`unsupported`] names.
pub fn translate(p: &str) -> Result<Cow<'_, str>, Error> {
    if let Some(f) = unsupported(p) {
        return Err(Error::Unsupported(f.into()));
    }
    if !p.contains(['\\', '[']) {
        return Ok(Cow::Borrowed(p));
    }
    const H: &str = "\\t \\xA0";
    const V: &str = "\\n\\x0B\\f\\r\\x85";
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len() + 8);
    let (mut i, mut in_class) = (0, false);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                let Some(&n) = b.get(i + 1) else {
                    out.push('\\');
                    break;
                };
                match n {
                    b'Q' => {
                        let body_end = p[i + 2..].find("\\E").map_or(p.len(), |k| i + 2 + k);
                        for ch in p[i + 2..body_end].chars() {
                            if ch.is_ascii() && !ch.is_ascii_alphanumeric() && ch != ' ' {
                                out.push('\\');
                            }
                            out.push(ch);
                        }
                        i = (body_end + 2).min(p.len());
                        continue;
                    }
                    // A lone \E ends nothing: PCRE ignores it.
                    b'E' => {}
                    b'<' | b'>' => out.push(n as char),
                    b'h' | b'v' => {
                        let set = if n == b'h' { H } else { V };
                        if in_class {
                            out.push_str(set);
                        } else {
                            out.push('[');
                            out.push_str(set);
                            out.push(']');
                        }
                    }
                    b'H' | b'V' => {
                        if in_class {
                            return Err(Error::Unsupported(
                                "\\H or \\V inside a character class".into(),
                            ));
                        }
                        out.push_str("[^");
                        out.push_str(if n == b'H' { H } else { V });
                        out.push(']');
                    }
                    b'c' if b.get(i + 2).is_some_and(u8::is_ascii_graphic) => {
                        let x = b[i + 2].to_ascii_uppercase() ^ 0x40;
                        out.push_str(&format!("\\x{x:02X}"));
                        i += 3;
                        continue;
                    }
                    b'0' => {
                        let mut v = 0u32;
                        let mut k = i + 2;
                        while k < i + 4 && b.get(k).is_some_and(|d| (b'0'..=b'7').contains(d)) {
                            v = v * 8 + u32::from(b[k] - b'0');
                            k += 1;
                        }
                        out.push_str(&format!("\\x{v:02X}"));
                        i = k;
                        continue;
                    }
                    _ => {
                        out.push('\\');
                        // Keep multi-byte characters whole.
                        let ch = p[i + 1..].chars().next().unwrap_or('\\');
                        out.push(ch);
                        i += 1 + ch.len_utf8();
                        continue;
                    }
                }
                i += 2;
                continue;
            }
            b'[' if !in_class => {
                in_class = true;
                let end = class_start(b, i);
                out.push_str(&p[i..=end]);
                i = end + 1;
                continue;
            }
            b'[' => {
                // [:alpha:] and friends stay; any other [ is a member.
                match p[i..].strip_prefix("[:").and_then(|r| r.find(":]")) {
                    Some(k) => {
                        out.push_str(&p[i..i + 2 + k + 2]);
                        i += 2 + k + 2;
                        continue;
                    }
                    None => out.push_str("\\["),
                }
            }
            b']' if in_class => {
                in_class = false;
                out.push(']');
            }
            b'&' | b'~' | b'-' if in_class && b.get(i + 1) == Some(&c) => {
                out.push(c as char);
                out.push('\\');
                out.push(c as char);
                i += 2;
                continue;
            }
            _ => {
                let ch = p[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).expect(p).is_match(s.as_bytes())
    }

    #[test]
    fn plain_patterns_use_the_linear_engine() {
        for p in [
            r"^/static/",
            r"\.(php|cgi)$",
            r"^www\.(.*)$",
            r"^(.*?)(\?(.*))?$",
        ] {
            assert!(!Pattern::new(p).expect(p).is_backtracking(), "{p}");
        }
        for p in [
            r"^/(?!(dispatch\.map))",
            r"(a)\1",
            r"a*+",
            r"(?<=x)y",
            r"(?>a|ab)c",
        ] {
            assert!(Pattern::new(p).expect(p).is_backtracking(), "{p}");
        }
    }

    #[test]
    fn pcre_semantics() {
        assert!(m(r"^/(?!(dispatch\.map))", "/index.html"));
        assert!(!m(r"^/(?!(dispatch\.map))", "/dispatch.map"));
        assert!(m(r"^/(\w+)/\1$", "/ab/ab"));
        assert!(!m(r"^/(\w+)/\1$", "/ab/cd"));
        assert!(m(r"(?<=/img/)\w+\.png$", "/img/a.png"));
        // alternatives of different fixed lengths, as PCRE2 allows
        assert!(m(r"(?<=/a/|/bc/)x", "/bc/x"));
        assert!(!m(r"(?<=/a/|/bc/)x", "/d/x"));
        assert!(!m(r"^a*+a", "aaa"), "possessive");
        assert!(m(r"^a{2}+$", "aa"), "possessive interval");
        assert!(!m(r"^(?>a|ab)c$", "abc"), "atomic");
        // bytes, as PCRE without UTF
        assert!(!m(r"^/.$", "/é"));
        assert!(m(r"^/..$", "/é"));
        assert!(m(r"^/(?!x).$", "/\u{0}"));
        assert!(!m(r"(?i)^/é$", "/É"));
        // spellings PCRE reads otherwise
        assert!(m(r"\Qa.b\E$", "xa.b"));
        assert!(!m(r"\Qa.b\E$", "xaxb"));
        assert!(m(r"^\<x\>$", "<x>"));
        assert!(m(r"^a\hb$", "a\tb"));
        assert!(!m(r"^\h$", "a"));
        assert!(m(r"^[[]$", "["));
        assert!(m(r"^[a&&b]+$", "&"));
        assert!(m(r"^\cA\012$", "\u{1}\n"));
        assert!(m(r"^[[:alpha:]]+$", "abc"));
    }

    #[test]
    fn captures_from_both_engines() {
        for p in [r"^/(\w+)/(.*)$", r"^/(?!x)(\w+)/(.*)$"] {
            let re = Pattern::new(p).expect(p);
            let mut l = re.locations();
            assert!(re.captures_read(&mut l, b"/ab/cd/e"));
            assert_eq!(l.get(1), Some((1, 3)), "{p}");
            assert_eq!(l.get(2), Some((4, 8)), "{p}");
            assert!(!re.captures_read(&mut l, b"nope"));
        }
        let lazy = Pattern::new(r"^/(.*?)/(?=.)").expect("lazy");
        let mut l = lazy.locations();
        assert!(lazy.captures_read(&mut l, b"/a/b/c"));
        assert_eq!(l.get(1), Some((1, 2)));
    }

    #[test]
    fn unsupported_named() {
        for (p, f) in [
            ("(?|(a)|(b))", "branch reset"),
            ("^(a|(?R))", "recursion"),
            ("(a)\\g1", "\\g{N}"),
            ("(a)(?1)", "subroutine"),
            ("(*SKIP)a", "verbs"),
            ("[\\H]", "\\H"),
        ] {
            match Pattern::new(p) {
                Err(Error::Unsupported(w)) => assert!(w.contains(f), "{p}: {w}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert!(matches!(Pattern::new("(a"), Err(Error::Invalid(_))));
        assert!(Pattern::new("[(?R)]").is_ok(), "inside a class it is text");
    }

    proptest::proptest! {
        // Config text and request bytes never make compiling or matching panic.
        #[test]
        fn never_panics(
            p in "[\\\\()\\[\\]?*+{}|^$.ab0-2:<>QEhvHVgkcRP&~=!,é-]{0,14}",
            s in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
        ) {
            if let Ok(re) = Pattern::new(&p) {
                let _ = re.is_match(&s);
                let mut l = re.locations();
                let _ = re.captures_read(&mut l, &s);
            }
        }
    }

    #[test]
    fn backtracking_is_bounded() {
        let re = Pattern::new(r"(a*)*\1b").expect("evil");
        let s = "a".repeat(40);
        let t = std::time::Instant::now();
        assert!(!re.is_match(s.as_bytes()));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let mut l = re.locations();
        assert!(!re.captures_read(&mut l, s.as_bytes()));
        let r = take_reports();
        assert_eq!(r.len(), 1, "once per pattern: {r:?}");
        assert!(r[0].contains("(a*)*\\1b"), "{r:?}");
    }
}
