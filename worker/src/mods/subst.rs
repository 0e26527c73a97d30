//! Substitution in url.rewrite / url.redirect targets (lighttpd's keyvalue.c and
//! burl.c): `$0`..`$9` of the rule's regex, `%0`..`%9` of the regex of the
//! condition block the list was defined in, the braced forms `${N}` / `%{N}` (up to
//! 19, with modifiers `esc:`, `escape:`, `escnde:`, `escpsnde:`, `noesc:`,
//! `noescape:`, `tolower:`, `toupper:`, `encb64u:`, `decb64u:`), `${url.scheme}`,
//! `${url.authority}`, `${url.authority.noport}`, `${url.port}`, `${url.path}`,
//! `${url.query}`, `${qsa}`, and `%%` / `$$` for a literal `%` / `$`.
//!
//! Unbraced `$N`/`%N` are copied as they are; braced ones default to `escpsnde`
//! (encode what is not unreserved or `/`, without double-encoding). lighttpd
//! appends nothing for `${tolower:N}` without an encoding modifier; wickd applies
//! the default encoding first.

use wick_conf::cond::CondState;
use wick_conf::pattern::{Locs, Pattern};
use wick_conf::BlockId;

const TOLOWER: u8 = 1;
const TOUPPER: u8 = 2;
const NONE: u8 = 4;
const ALL: u8 = 8;
const NDE: u8 = 16;
const PSNDE: u8 = 32;
const B64U_ENC: u8 = 64;
const B64U_DEC: u8 = 128;

/// Where the values come from.
pub struct Source<'a> {
    /// The rule's match (`$N`).
    pub caps: &'a Caps<'a>,
    /// The condition captures (`%N`) of `block`.
    pub cond: &'a CondState,
    pub block: BlockId,
    pub scheme: &'a str,
    /// Host (or server.name when the request had none).
    pub authority: &'a [u8],
    pub port: u16,
    /// The request target matched (path and query, %-encoded).
    pub target: &'a [u8],
    /// The query, when the target has a `?`.
    pub query: Option<&'a [u8]>,
}

/// Expand `pattern` into `out` (cleared first).
pub fn expand(pattern: &[u8], src: &Source, out: &mut Vec<u8>) {
    out.clear();
    let n = pattern.len();
    let mut start = 0;
    let mut k = 0;
    while k + 1 < n {
        let c = pattern[k];
        if c == b'$' || c == b'%' {
            out.extend_from_slice(&pattern[start..k]);
            let next = pattern[k + 1];
            if next == b'{' {
                match braced(pattern, k, src, out) {
                    Some(end) => k = end,
                    // Unterminated: lighttpd stops here, truncating the result.
                    None => return,
                }
            } else if next.is_ascii_digit() {
                capture(c, usize::from(next - b'0'), 0, src, out);
                k += 1;
            } else {
                // "%%" => "%", "$$" => "$", anything else as written.
                if next == c {
                    out.push(c);
                } else {
                    out.extend_from_slice(&pattern[k..k + 2]);
                }
                k += 1;
            }
            start = k + 1;
        }
        k += 1;
    }
    out.extend_from_slice(&pattern[start.min(n)..]);
}

fn capture(kind: u8, num: usize, flags: u8, src: &Source, out: &mut Vec<u8>) {
    let v: Option<&[u8]> = if kind == b'$' {
        src.caps.get(num)
    } else if num <= 9 {
        src.cond.capture_bytes(src.block, num)
    } else {
        None
    };
    if let Some(v) = v {
        append(out, v, flags);
    }
}

/// `${...}` / `%{...}` at `k`; returns the index of its closing `}`.
fn braced(p: &[u8], k: usize, src: &Source, out: &mut Vec<u8>) -> Option<usize> {
    let kind = p[k];
    let mut i = k + 2;
    let mut flags = 0u8;
    let at = |i: usize, s: &[u8]| p.get(i..i + s.len()) == Some(s);
    while i < p.len() && !p[i].is_ascii_digit() && p[i] != b'}' {
        if at(i, b"esc") {
            i += 3;
            if at(i, b":") {
                flags |= ALL;
                i += 1;
            } else if at(i, b"ape:") {
                flags |= ALL;
                i += 4;
            } else if at(i, b"nde:") {
                flags |= NDE;
                i += 4;
            } else if at(i, b"psnde:") {
                flags |= PSNDE;
                i += 6;
            } else {
                i += memchr::memchr(b':', &p[i..])? + 1;
            }
        } else if at(i, b"no") {
            i += 2;
            if at(i, b"esc:") {
                flags |= NONE;
                i += 4;
            } else if at(i, b"escape:") {
                flags |= NONE;
                i += 7;
            } else {
                i += memchr::memchr(b':', &p[i..])? + 1;
            }
        } else if at(i, b"to") {
            i += 2;
            if at(i, b"lower:") {
                flags |= TOLOWER;
                i += 6;
            } else if at(i, b"upper:") {
                flags |= TOUPPER;
                i += 6;
            } else {
                i += memchr::memchr(b':', &p[i..])? + 1;
            }
        } else if at(i, b"url.") {
            i += 4;
            if at(i, b"scheme}") {
                append(out, src.scheme.as_bytes(), flags);
                i += 6;
            } else if at(i, b"authority.noport}") {
                let a = src.authority;
                let host = match a.iter().rposition(|&c| c == b':') {
                    Some(c) if !a[c..].contains(&b']') => &a[..c],
                    _ => a,
                };
                append(out, host, flags);
                i += 16;
            } else if at(i, b"authority}") {
                append(out, src.authority, flags);
                i += 9;
            } else if at(i, b"port}") {
                out.extend_from_slice(src.port.to_string().as_bytes());
                i += 4;
            } else if at(i, b"path}") {
                let t = src.target;
                let end = memchr::memchr(b'?', t).unwrap_or(t.len());
                append(out, &t[..end], flags);
                i += 4;
            } else if at(i, b"query}") {
                if let Some(q) = src.query {
                    append(out, q, flags);
                }
                i += 5;
            } else {
                i += memchr::memchr(b'}', &p[i..])?;
            }
            return Some(i);
        } else if at(i, b"qsa}") {
            if let Some(q) = src.query {
                if out.contains(&b'?') {
                    if !q.is_empty() {
                        out.push(b'&');
                    }
                } else {
                    out.push(b'?');
                }
                append(out, q, flags);
            }
            return Some(i + 3);
        } else if at(i, b"encb64u:") {
            flags |= B64U_ENC;
            i += 8;
        } else if at(i, b"decb64u:") {
            flags |= B64U_DEC;
            i += 8;
        } else {
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    if p[i] != b'}' {
        let mut num = usize::from(p[i] - b'0');
        i += 1;
        if i < p.len() && p[i].is_ascii_digit() {
            num = num * 10 + usize::from(p[i] - b'0');
            i += 1;
        }
        if i >= p.len() {
            return None;
        }
        if p[i] != b'}' {
            i += memchr::memchr(b'}', &p[i..])?;
        }
        if flags & !(TOLOWER | TOUPPER) == 0 {
            flags |= PSNDE;
        }
        capture(kind, num, flags, src, out);
    }
    Some(i)
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn pct(out: &mut Vec<u8>, c: u8) {
    out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
}

/// burl_append: `v` with the encoding `flags` ask for.
pub fn append(out: &mut Vec<u8>, v: &[u8], flags: u8) {
    if v.is_empty() {
        return;
    }
    if flags == 0 {
        out.extend_from_slice(v);
        return;
    }
    let off = out.len();
    if flags & NONE != 0 {
        out.extend_from_slice(v);
    } else if flags & ALL != 0 {
        for &c in v {
            if is_unreserved(c) {
                out.push(c);
            } else {
                pct(out, c);
            }
        }
    } else if flags & (NDE | PSNDE) != 0 {
        let slash = flags & NDE == 0;
        let mut i = 0;
        while i < v.len() {
            let c = v[i];
            if c == b'%' {
                if let (Some(h), Some(l)) = (
                    v.get(i + 1).copied().and_then(hexval),
                    v.get(i + 2).copied().and_then(hexval),
                ) {
                    let x = h << 4 | l;
                    if is_unreserved(x) {
                        out.push(x);
                    } else {
                        out.extend_from_slice(&v[i..i + 3]);
                    }
                    i += 3;
                    continue;
                }
            }
            if is_unreserved(c) || (slash && c == b'/') {
                out.push(c);
            } else {
                pct(out, c);
            }
            i += 1;
        }
    } else if flags & B64U_ENC != 0 {
        b64u_encode(v, out);
    } else if flags & B64U_DEC != 0 {
        b64u_decode(v, out);
    }
    if flags & (TOLOWER | TOUPPER) != 0 {
        // Case-change what was appended, skipping %-escapes.
        let mut i = off;
        while i < out.len() {
            if out[i] == b'%'
                && out.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && out.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                i += 3;
                continue;
            }
            if flags & TOLOWER != 0 {
                out[i].make_ascii_lowercase();
            } else {
                out[i].make_ascii_uppercase();
            }
            i += 1;
        }
    }
}

const B64U: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 section 5).
pub fn b64u_encode(v: &[u8], out: &mut Vec<u8>) {
    for ch in v.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let take = ch.len() + 1;
        for k in 0..take {
            out.push(B64U[((n >> (18 - 6 * k)) & 63) as usize]);
        }
    }
}

/// base64url decoding (padding optional); nothing is appended for invalid input.
pub fn b64u_decode(v: &[u8], out: &mut Vec<u8>) {
    let v = match v.iter().position(|&c| c == b'=') {
        Some(p) => &v[..p],
        None => v,
    };
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    if v.len() % 4 == 1 {
        return;
    }
    let start = out.len();
    for ch in v.chunks(4) {
        let mut n = 0u32;
        for (k, &c) in ch.iter().enumerate() {
            let Some(x) = val(c) else {
                out.truncate(start);
                return;
            };
            n |= x << (18 - 6 * k);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..ch.len() - 1]);
    }
}

/// A rule's match: its capture spans over the subject.
pub struct Caps<'s> {
    locs: Locs,
    subject: &'s [u8],
}

impl<'s> Caps<'s> {
    /// `$n`: the text of group `n`, None when the group did not take part.
    pub fn get(&self, n: usize) -> Option<&'s [u8]> {
        let (s, e) = self.locs.get(n)?;
        self.subject.get(s..e)
    }
}

/// One `"regex" => "target"` list (lighttpd's pcre_keyvalue_buffer), compiled once.
pub struct Rules {
    pub rules: Vec<(Pattern, Vec<u8>)>,
    /// Rules before this index are "once" rules (mod_rewrite's repeat_idx).
    pub repeat_idx: usize,
}

impl Rules {
    pub fn new() -> Rules {
        Rules {
            rules: Vec::new(),
            repeat_idx: 0,
        }
    }

    /// Compile and append `list`; the error text names the regex.
    pub fn push(&mut self, list: &[(String, String)]) -> Result<(), String> {
        for (k, v) in list {
            let re = Pattern::new(k).map_err(|e| match e {
                wick_conf::pattern::Error::Unsupported(_) => format!("regex \"{k}\" {e}"),
                wick_conf::pattern::Error::Invalid(m) => {
                    format!("pcre-compile failed for {k}: {m}")
                }
            })?;
            if re.captures_len() > 20 {
                return Err(format!(
                    "Too many captures in regex, use (?:...) instead of (...): {k}"
                ));
            }
            self.rules.push((re, v.as_bytes().to_vec()));
        }
        Ok(())
    }

    /// The first rule matching `subject`: its index, target and captures. A
    /// matching rule with an empty target stops the list: None. No allocation
    /// unless a rule matches.
    pub fn find<'s>(&self, subject: &'s [u8]) -> Option<(usize, &[u8], Caps<'s>)> {
        for (i, (re, target)) in self.rules.iter().enumerate() {
            if !re.is_match(subject) {
                continue;
            }
            if target.is_empty() {
                return None;
            }
            let mut locs = re.locations();
            return re.captures_read(&mut locs, subject).then_some((
                i,
                target.as_slice(),
                Caps { locs, subject },
            ));
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_roundtrip() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\x00?"] {
            let mut e = Vec::new();
            b64u_encode(s, &mut e);
            assert!(!e.contains(&b'='));
            let mut d = Vec::new();
            b64u_decode(&e, &mut d);
            assert_eq!(d, s);
        }
        let mut e = Vec::new();
        b64u_encode(b"\xfb\xff", &mut e);
        assert_eq!(e, b"-_8");
        let mut d = Vec::new();
        b64u_decode(b"a*b", &mut d);
        assert!(d.is_empty());
    }

    #[test]
    fn rules_capture_with_pcre_features() {
        let mut r = Rules::new();
        let list = [
            (r"^/(?!(?:static|img)/)(\w+)/\1(/.*)?$", "/twice/$1$2"),
            (r"^/(.*?)(?:\?(.*))?$", "/lazy?p=$1&q=$2"),
        ];
        let list: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        r.push(&list).expect("compiles");
        let (i, t, c) = r.find(b"/ab/ab/x").expect("back-reference");
        assert_eq!((i, t), (0, &b"/twice/$1$2"[..]));
        assert_eq!((c.get(1), c.get(2)), (Some(&b"ab"[..]), Some(&b"/x"[..])));
        let (i, _, c) = r
            .find(b"/static/static")
            .expect("look-ahead refuses rule 0");
        assert_eq!(i, 1);
        assert_eq!(c.get(1), Some(&b"static/static"[..]));
        let (_, _, c) = r.find(b"/a/b?x=1").expect("lazy");
        assert_eq!((c.get(1), c.get(2)), (Some(&b"a/b"[..]), Some(&b"x=1"[..])));
        let (_, _, c) = r.find(b"/a").expect("lazy, no query");
        assert_eq!((c.get(1), c.get(2)), (Some(&b"a"[..]), None));
        // bytes, as lighttpd: `.` is one byte, even of a broken UTF-8 sequence
        let mut b = Rules::new();
        b.push(&[("^/(.)(.)$".to_string(), "/$2".to_string())])
            .expect("compiles");
        let (_, _, c) = b.find(b"/\xc3\xa9").expect("two bytes");
        assert_eq!(c.get(2), Some(&b"\xa9"[..]));
        assert!(b.find(b"/\xff").is_none());
    }

    #[test]
    fn encodings() {
        let mut o = Vec::new();
        append(&mut o, b"a b/c%41%2F", PSNDE);
        assert_eq!(o, b"a%20b/cA%2F");
        o.clear();
        append(&mut o, b"a b/c%41", NDE);
        assert_eq!(o, b"a%20b%2FcA");
        o.clear();
        append(&mut o, b"a b/%41", ALL);
        assert_eq!(o, b"a%20b%2F%2541");
        o.clear();
        append(&mut o, b"AbC%2f", PSNDE | TOLOWER);
        assert_eq!(o, b"abc%2f");
    }
}
