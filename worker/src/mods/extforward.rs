//! mod_extforward: the client address (and scheme, host, user) as a trusted proxy
//! reports it.
//!
//! - extforward.forwarder: `"addr" => "trust"` (an address, a CIDR block, or
//!   "all"); another value means untrusted. "all" takes precedence.
//! - extforward.headers: the headers to look at, first present wins; default
//!   X-Forwarded-For, Forwarded-For. "Forwarded" is parsed as RFC 7239; others
//!   (X-Forwarded-For, X-Real-IP, ...) as a list of addresses.
//! - extforward.params: `"host" => 1`, `"remote_user" => 1` take those Forwarded
//!   parameters too.
//!
//! Only when the connecting peer is trusted: the address list is walked from the
//! end, over trusted proxies, to the first untrusted address, which becomes the
//! remote address; X-Forwarded-Proto (or Forwarded proto=) sets the scheme. The
//! conditions are then evaluated again, so `$HTTP["remoteip"]` and
//! `$HTTP["scheme"]` see the trusted values. Once per request (not again after an
//! internal rewrite). A malformed Forwarded header from a trusted proxy is a 400.

use super::{hook, Cx, Flow, Module};
use std::net::IpAddr;
use wick_conf::{Config, Patch};

/// One block's extforward.forwarder, parsed.
#[derive(Default)]
struct Forwarders {
    /// "all": 1 trust, -1 listed but untrusted, 0 absent.
    all: i8,
    /// Keys as written, with their trust (compared as text, as lighttpd does).
    exact: Vec<(String, bool)>,
    /// Keys that are addresses, parsed.
    ips: Vec<(IpAddr, bool)>,
    masks: Vec<(IpAddr, u8)>,
}

const HOST: u8 = 1;
const REMOTE_USER: u8 = 2;

pub struct Extforward {
    fwd: super::ByBlock<Forwarders>,
    params: super::ByBlock<u8>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let b = u32::from(bits.min(32));
            let m = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let b = u32::from(bits.min(128));
            let m = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

impl Forwarders {
    fn parse(list: &[(String, String)]) -> Result<Forwarders, String> {
        let mut f = Forwarders::default();
        for (k, v) in list {
            let trust = v.eq_ignore_ascii_case("trust");
            if k == "all" {
                f.all = if trust { 1 } else { -1 };
                continue;
            }
            if let Some((a, bits)) = k.split_once('/').filter(|_| !k.starts_with('/')) {
                let bits: u8 = bits
                    .parse()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| format!("invalid netmask: {k}"))?;
                let ip = parse_ip(a).ok_or_else(|| format!("invalid address: {k}"))?;
                // Untrusted CIDR blocks are ignored, as lighttpd does.
                if trust {
                    f.masks.push((ip, bits));
                }
                continue;
            }
            if let Some(ip) = parse_ip(k) {
                f.ips.push((canonical(ip), trust));
            }
            f.exact.push((k.clone(), trust));
        }
        Ok(f)
    }

    /// Is this address (as written in a header) a trusted proxy?
    fn trusts_text(&self, s: &str) -> bool {
        if let Some((_, t)) = self.exact.iter().find(|(k, _)| k == s) {
            return *t;
        }
        match parse_ip(s) {
            Some(ip) => self.trusts_ip(ip),
            None => false,
        }
    }

    fn trusts_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if let Some((_, t)) = self.ips.iter().find(|(a, _)| *a == ip) {
            return *t;
        }
        self.masks.iter().any(|(n, b)| in_net(ip, *n, *b))
    }

    fn trusts_peer(&self, ip: IpAddr) -> bool {
        if self.all != 0 {
            return self.all == 1;
        }
        self.trusts_ip(ip)
    }
}

fn sets_fwd(p: &Patch) -> bool {
    p.extforward_forwarder().is_some()
}

fn sets_params(p: &Patch) -> bool {
    p.extforward_params().is_some()
}

impl Extforward {
    pub fn new(cfg: &Config) -> Result<Extforward, String> {
        let mut fwd = Vec::new();
        let mut params = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(l) = p.extforward_forwarder() {
                let f = Forwarders::parse(l).map_err(|e| {
                    format!(
                        "{}extforward.forwarder: {e}",
                        super::where_set(cfg, id, "extforward.forwarder")
                    )
                })?;
                fwd.push((id, f));
            }
            if let Some(l) = p.extforward_params() {
                {
                    let mut o = 0;
                    for (k, v) in l {
                        let bit = match k.as_str() {
                            "host" => HOST,
                            "remote_user" => REMOTE_USER,
                            _ => {
                                return Err(format!(
                                    "{}extforward.params keys must be one of: host, remote_user, but not: {k}",
                                    super::where_set(cfg, id, "extforward.params")
                                ))
                            }
                        };
                        let on = wick_conf::options::parse_bool(&wick_conf::Value::Str(v.clone()))
                            .map_err(|_| {
                                format!(
                                    "{}extforward.params values must be one of: 0, 1, enable, disable; error for key: {k}",
                                    super::where_set(cfg, id, "extforward.params")
                                )
                            })?;
                        if on {
                            o |= bit;
                        }
                    }
                    params.push((id, o));
                }
            }
        }
        Ok(Extforward {
            fwd: fwd.into_iter().collect(),
            params: params.into_iter().collect(),
        })
    }
}

/// Set the remote address from header text; false when it is not an address.
fn set_addr(x: &mut Cx, s: &str) -> bool {
    match parse_ip(s) {
        Some(ip) => {
            x.rq.remote_ip = canonical(ip);
            true
        }
        None => false,
    }
}

fn set_proto(x: &mut Cx, p: &str) {
    if p.eq_ignore_ascii_case("https") {
        x.rq.scheme = "https";
    } else if p.eq_ignore_ascii_case("http") {
        x.rq.scheme = "http";
    }
}

/// X-Forwarded-For and the like: runs of hex digits, ':' and '.'.
fn address_tokens(v: &str) -> Vec<&str> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut start = None;
    for (i, &c) in b.iter().enumerate() {
        let hex_or_colon = c.is_ascii_hexdigit() || c == b':';
        match start {
            Some(s) if !hex_or_colon && c != b'.' => {
                out.push(&v[s..i]);
                start = None;
            }
            None if hex_or_colon => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&v[s..]);
    }
    out
}

fn x_forwarded_for(x: &mut Cx, f: &Forwarders, value: &str) -> Flow {
    let tokens = address_tokens(value);
    let Some(real) = tokens.iter().rev().find(|t| !f.trusts_text(t)) else {
        return Flow::Go;
    };
    if !set_addr(x, real) {
        return Flow::Go;
    }
    if let Some(p) = x.rq.header(x.base, "X-Forwarded-Proto") {
        let p = String::from_utf8_lossy(p).trim().to_string();
        set_proto(x, &p);
    }
    Flow::Reeval
}

/// One `key=value` of a Forwarded element (value still quoted).
struct Param<'a> {
    k: &'a str,
    v: &'a str,
}

/// Split a Forwarded value into elements of parameters, as lighttpd does (text
/// that is no `key=value` is skipped). Err: an unterminated quoted string, or more
/// parameters than lighttpd handles.
fn forwarded_elements(s: &str) -> Result<Vec<Vec<Param<'_>>>, &'static str> {
    let b = s.as_bytes();
    let skip_quoted = |mut i: usize| -> Option<usize> {
        // b[i] == '"'; index of the closing quote.
        i += 1;
        while i < b.len() {
            match b[i] {
                b'"' => return Some(i),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        None
    };
    let mut groups: Vec<Vec<Param>> = vec![Vec::new()];
    let mut count = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b';' => {
                i += 1;
                continue;
            }
            b',' => {
                groups.push(Vec::new());
                i += 1;
                continue;
            }
            _ => {}
        }
        let k = i;
        while i < b.len() && !matches!(b[i], b'=' | b';' | b',') {
            if b[i] == b'"' {
                i = skip_quoted(i).ok_or("invalid quoted-string in Forwarded header")?;
            }
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        let key = &s[k..i];
        i += 1;
        let v = i;
        while i < b.len() && !matches!(b[i], b';' | b',') {
            if b[i] == b'"' {
                i = skip_quoted(i).ok_or("invalid quoted-string in Forwarded header")?;
            }
            i += 1;
        }
        if key.is_empty() {
            continue;
        }
        count += 1;
        if count > 60 {
            return Err("Too many params in Forwarded header");
        }
        if let Some(g) = groups.last_mut() {
            g.push(Param {
                k: key,
                v: &s[v..i],
            });
        }
    }
    Ok(groups)
}

/// A parameter value: trailing blanks and the quotes removed.
fn unquote(v: &str) -> (&str, bool) {
    let v = v.trim_end_matches([' ', '\t']);
    match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if v.len() >= 2 => (inner, true),
        _ => (v, false),
    }
}

fn backslash_unescape(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            out.push(it.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The address in a `for=` value: no quotes, no IPv6 brackets, no port.
fn for_addr(v: &str) -> Result<&str, &'static str> {
    let (v, quoted) = unquote(v);
    if !quoted {
        return Ok(v);
    }
    if let Some(r) = v.strip_prefix('[') {
        return match r.find(']') {
            Some(0) | None => Err("Invalid IPv6 addr in Forwarded header"),
            Some(e) => Ok(&r[..e]),
        };
    }
    if v.starts_with(['_', '/', 'u']) {
        return Ok(v);
    }
    Ok(v.split(':').next().unwrap_or(v))
}

fn host_ok(h: &str) -> bool {
    !h.is_empty()
        && h.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

fn forwarded(x: &mut Cx, f: &Forwarders, opts: u8, value: &str) -> Flow {
    let groups = match forwarded_elements(value) {
        Ok(g) => g,
        Err(_) => return Flow::Status(400),
    };
    // From the nearest proxy back: the first address not trusted.
    let mut ofor: Option<(usize, &str)> = None;
    for gi in (0..groups.len()).rev() {
        let Some(p) = groups[gi]
            .iter()
            .rev()
            .find(|p| p.k.eq_ignore_ascii_case("for"))
        else {
            continue;
        };
        let a = match for_addr(p.v) {
            Ok(a) => a,
            Err(_) => return Flow::Status(400),
        };
        if a.is_empty() {
            continue;
        }
        let trusted = f.trusts_text(a);
        if !a.starts_with(['_', '/']) && a != "unknown" {
            ofor = Some((gi, a));
        }
        if !trusted {
            break;
        }
    }
    let Some((gi, addr)) = ofor else {
        return Flow::Go;
    };
    if !set_addr(x, addr) {
        return Flow::Go;
    }
    let g = &groups[gi];
    let last = |name: &str| g.iter().rev().find(|p| p.k.eq_ignore_ascii_case(name));
    if let Some(p) = last("proto") {
        let (v, _) = unquote(p.v);
        set_proto(x, v);
    }
    if opts & HOST != 0 {
        let p = last("host").or_else(|| {
            groups[gi + 1..]
                .iter()
                .find_map(|g| g.iter().find(|p| p.k.eq_ignore_ascii_case("host")))
        });
        if let Some(p) = p {
            let (v, quoted) = unquote(p.v);
            let h = if quoted {
                match backslash_unescape(v) {
                    Some(h) => h,
                    None => return Flow::Status(400),
                }
            } else {
                v.to_string()
            };
            if !host_ok(&h) {
                return Flow::Status(400);
            }
            x.rq.host.clear();
            x.rq.host.extend(h.bytes().map(|c| c.to_ascii_lowercase()));
        }
    }
    if opts & REMOTE_USER != 0 {
        let later = groups[gi + 1..].iter().rev().find_map(|g| {
            g.iter()
                .rev()
                .find(|p| p.k.eq_ignore_ascii_case("remote_user"))
        });
        if let Some(p) = later.or_else(|| last("remote_user")) {
            let (v, quoted) = unquote(p.v);
            let u = if quoted {
                match backslash_unescape(v) {
                    Some(u) => u,
                    None => return Flow::Status(400),
                }
            } else {
                v.to_string()
            };
            x.rq.env.retain(|(n, _)| n != "REMOTE_USER");
            x.rq.env.push(("REMOTE_USER".into(), u.clone()));
            x.rq.remote_user = u;
        }
    }
    Flow::Reeval
}

const DEFAULT_HEADERS: &[&str] = &["X-Forwarded-For", "Forwarded-For"];

impl Module for Extforward {
    fn name(&self) -> &'static str {
        "mod_extforward"
    }

    fn hooks(&self) -> u16 {
        hook::URI_RAW
    }

    fn uri_raw(&self, x: &mut Cx) -> Flow {
        if x.rq.extforward_done {
            return Flow::Go;
        }
        x.rq.extforward_done = true;
        let Some(f) = self.fwd.get(x.block_of(sets_fwd)) else {
            return Flow::Go;
        };
        let opts = self
            .params
            .get(x.block_of(sets_params))
            .copied()
            .unwrap_or(0);
        let listed = x.view.extforward_headers;
        let mut found: Option<(&str, &[u8])> = None;
        let names: &mut dyn Iterator<Item = &str> = if listed.is_empty() {
            &mut DEFAULT_HEADERS.iter().copied()
        } else {
            &mut listed.iter().map(String::as_str)
        };
        for name in names {
            if let Some(v) = x.base.header(name.as_bytes()) {
                found = Some((name, v));
                break;
            }
        }
        let Some((name, value)) = found else {
            return Flow::Go;
        };
        if !f.trusts_peer(x.base.peer) {
            return Flow::Go;
        }
        let value = String::from_utf8_lossy(value).into_owned();
        if name.eq_ignore_ascii_case("Forwarded") {
            forwarded(x, f, opts, &value)
        } else {
            x_forwarded_for(x, f, &value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(
            address_tokens("1.2.3.4, 10.0.0.1,::1 x"),
            ["1.2.3.4", "10.0.0.1", "::1"]
        );
    }

    #[test]
    fn forwarded_parse() {
        let g = forwarded_elements("for=1.2.3.4;proto=https, for=\"[2001:db8::1]:80\"")
            .unwrap_or_default();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0][1].k, "proto");
        assert_eq!(for_addr(g[1][0].v), Ok("2001:db8::1"));
        assert_eq!(for_addr("\"1.2.3.4:8080\""), Ok("1.2.3.4"));
        assert!(forwarded_elements("for=\"1.2.3.4").is_err());
    }

    #[test]
    fn trust() {
        let l = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let f = Forwarders::parse(&l(&[
            ("10.0.0.0/8", "trust"),
            ("192.0.2.1", "trust"),
            ("192.0.2.2", "no"),
        ]))
        .unwrap_or_default();
        assert!(f.trusts_text("10.9.9.9"));
        assert!(f.trusts_text("192.0.2.1"));
        assert!(!f.trusts_text("192.0.2.2"));
        assert!(f.trusts_peer(
            "::ffff:10.1.1.1"
                .parse()
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        ));
        let all = Forwarders::parse(&l(&[("all", "trust")])).unwrap_or_default();
        assert!(all.trusts_peer(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
    }
}
