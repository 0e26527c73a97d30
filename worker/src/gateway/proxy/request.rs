//! The request head mod_proxy sends to its backend, as lighttpd 1.4.69 builds it:
//! the request line with the (normalised or rewritten) target, HTTP/1.1 (1.0 with
//! force-http10 or without a Host); Host (the client's, remapped, or the host's
//! name with proxy.replace-http-host); Content-Length when the body's length is
//! known (a chunked body is collected first); the client's fields in order, with
//! X-Forwarded-For appended to, Forwarded (proxy.forwarded) and X-Host,
//! X-Forwarded-Host, X-Forwarded-Proto set; `Connection: close` last (lighttpd
//! does not keep backend connections), with `te` and `upgrade` when those pass.
//!
//! Hop-by-hop fields do not pass (RFC 9110 7.6.1): Connection and the fields it
//! names, Keep-Alive, Proxy-Connection, Transfer-Encoding, TE (but `trailers`),
//! Trailer, Upgrade (but when tunnelling), HTTP2-Settings; nor Expect (the
//! worker answered 100 Continue itself), Proxy (httpoxy) and Set-Cookie, as
//! lighttpd drops them. lighttpd 1.4.69 passes on the fields Connection names,
//! Keep-Alive and Trailer: wickd does not.

use super::opts::fwd;
use super::remap::Remap;
use crate::request::Version;
use std::net::IpAddr;
use std::rc::Rc;

/// What the head is made of (owned: a chunked body is collected before it is
/// made).
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The target the backend gets, before map-urlpath (bytes as the client
    /// sent them, normalised).
    pub target: Vec<u8>,
    /// The client's version.
    pub version: Version,
    /// The client's Host.
    pub host: Option<String>,
    /// The client's fields, joined by name as lighttpd joins them, mod_setenv's
    /// applied.
    pub headers: Vec<(String, String)>,
    /// The connection's peer (X-Forwarded-For, Forwarded for=).
    pub peer: IpAddr,
    /// The request's scheme as conditions see it (X-Forwarded-Proto).
    pub scheme: &'static str,
    /// The connection is TLS (Forwarded proto=).
    pub tls: bool,
    /// The connection's local address, for Forwarded by= (or a unix socket's
    /// path).
    pub by: Option<String>,
    pub remote_user: Option<String>,
    /// proxy.replace-http-host, and the name of each host of the request's
    /// `proxy.server` value (empty: unnamed).
    pub replace_host: bool,
    pub host_ids: Rc<Vec<String>>,
    /// proxy.forwarded bits.
    pub forwarded: u8,
}

/// Is this field in `Connection`'s list (or one of the hop-by-hop fields)?
fn hop(name: &str, named: &[String]) -> bool {
    const HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "http2-settings",
        // Not hop-by-hop, but never passed: the worker already answered
        // 100 Continue; httpoxy; a response field.
        "expect",
        "proxy",
        "set-cookie",
        // Made here.
        "host",
        "content-length",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || named.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Tokens of a comma-separated list, trimmed, lower-cased.
fn tokens(v: &str) -> Vec<String> {
    v.split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A quoted-string with `"`, `\` and controls escaped (lighttpd's
/// buffer_append_string_backslash_escaped).
fn quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' || c == '\x7f' || (c < ' ' && c != '\t') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// A node of Forwarded for= (or X-Forwarded-For's entries seeding it).
fn node(out: &mut String, ip: &str) {
    if ip.contains(':') {
        quoted(out, &format!("[{ip}]"));
    } else {
        quoted(out, ip);
    }
}

/// Our Forwarded element, after `prev` (the client's Forwarded, or its
/// X-Forwarded-For as for= elements, or nothing).
fn forwarded(r: &Request, prev: Option<&str>, xff: Option<&str>) -> String {
    let mut f = String::new();
    match (prev, xff) {
        (Some(p), _) => {
            f.push_str(p);
            f.push_str(", ");
        }
        (None, Some(x)) => {
            for ip in x.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
                f.push_str("for=");
                node(&mut f, ip);
                f.push_str(", ");
            }
        }
        (None, None) => {}
    }
    let mut sep = "";
    if r.forwarded & fwd::FOR != 0 {
        f.push_str("for=");
        match r.peer {
            IpAddr::V4(a) => f.push_str(&a.to_string()),
            IpAddr::V6(a) => quoted(&mut f, &format!("[{a}]")),
        }
        sep = ";";
    }
    if r.forwarded & fwd::BY != 0 {
        f.push_str(sep);
        f.push_str("by=");
        quoted(&mut f, r.by.as_deref().unwrap_or(""));
        sep = ";";
    }
    if r.forwarded & fwd::PROTO != 0 {
        f.push_str(sep);
        f.push_str(if r.tls { "proto=https" } else { "proto=http" });
        sep = ";";
    }
    if r.forwarded & fwd::HOST != 0 {
        if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
            f.push_str(sep);
            f.push_str("host=");
            quoted(&mut f, h);
            sep = ";";
        }
    }
    if r.forwarded & fwd::REMOTE_USER != 0 {
        if let Some(u) = r.remote_user.as_deref() {
            f.push_str(sep);
            f.push_str("remote_user=");
            quoted(&mut f, u);
        }
    }
    f
}

fn line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Write the head for `r` to host number `host` into `out`, with a body of
/// `body` bytes (None: none). Returns whether the request asks the backend to
/// upgrade (Upgrade passed on, a 101 then tunnels).
pub fn build(
    r: &Request,
    body: Option<u64>,
    host: usize,
    remap: &mut Remap,
    out: &mut Vec<u8>,
) -> bool {
    let h = remap.header().clone();
    let get = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let v11 = r.version != Version::Http10 && !h.force_http10;
    let conn = get("connection");
    let conn_tokens = conn.map(tokens).unwrap_or_default();
    let upgrade = get("upgrade").filter(|u| {
        h.upgrade
            && r.version == Version::Http11
            && !h.force_http10
            && !u.trim().is_empty()
            && conn_tokens.iter().any(|t| t == "upgrade")
    });
    let te = get("te").filter(|t| v11 && t.trim().eq_ignore_ascii_case("trailers"));

    let remapped = match std::str::from_utf8(&r.target) {
        Ok(t) if h.remaps_request() => remap.uri(t, true),
        _ => None,
    };
    let target = remapped.as_ref().map_or(&r.target[..], |t| t.as_bytes());
    let id = r.host_ids.get(host).filter(|i| !i.is_empty());
    let host = if let (true, Some(id)) = (r.replace_host, id) {
        Some(id.clone())
    } else {
        r.host.as_ref().map(|c| {
            if h.remaps_request() {
                remap.host(c, true).unwrap_or_else(|| c.clone())
            } else {
                c.clone()
            }
        })
    };
    out.extend_from_slice(r.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    // No Host: HTTP/1.1 would need one.
    out.extend_from_slice(if h.force_http10 || host.is_none() {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    if let Some(host) = &host {
        line(out, "Host", host);
    }
    let get_or_head = r.method == "GET" || r.method == "HEAD";
    match body {
        Some(n) => line(out, "Content-Length", &n.to_string()),
        // lighttpd: a method that may have a body says it has none.
        None if !get_or_head => line(out, "Content-Length", "0"),
        None => {}
    }

    let peer = r.peer.to_string();
    let xff = get("x-forwarded-for");
    let ours = (r.forwarded != 0).then(|| forwarded(r, get("forwarded"), xff));
    let host_v = r.host.as_deref().filter(|h| !h.is_empty());
    // What is set, in the order lighttpd adds the missing ones.
    let mut set: Vec<(&str, String)> = Vec::new();
    if let Some(f) = ours {
        set.push(("Forwarded", f));
    }
    set.push((
        "X-Forwarded-For",
        match xff {
            Some(x) => format!("{x}, {peer}"),
            None => peer,
        },
    ));
    if let Some(hv) = host_v {
        set.push(("X-Host", hv.to_string()));
        set.push(("X-Forwarded-Host", hv.to_string()));
    }
    set.push(("X-Forwarded-Proto", r.scheme.to_string()));
    let mut done = vec![false; set.len()];

    for (k, v) in &r.headers {
        if let Some(i) = set.iter().position(|(n, _)| k.eq_ignore_ascii_case(n)) {
            line(out, k, &set[i].1);
            done[i] = true;
            continue;
        }
        let named = &conn_tokens;
        if k.eq_ignore_ascii_case("upgrade") && upgrade.is_some() {
            line(out, k, v);
            continue;
        }
        if k.eq_ignore_ascii_case("te") && te.is_some() {
            line(out, k, v);
            continue;
        }
        if hop(k, named) || v.is_empty() {
            continue;
        }
        let remapped = (h.remaps_request()
            && (k.eq_ignore_ascii_case("destination")
                || k.eq_ignore_ascii_case("content-location")))
        .then(|| remap.uri(v.trim_start(), true))
        .flatten();
        line(out, k, remapped.as_deref().unwrap_or(v));
    }
    for (i, (n, v)) in set.iter().enumerate() {
        if !done[i] {
            line(out, n, v);
        }
    }
    let mut c = String::from("close");
    if v11 && conn.is_some() {
        if te.is_some() {
            c.push_str(", te");
        }
        if upgrade.is_some() {
            c.push_str(", upgrade");
        }
    }
    line(out, "Connection", &c);
    out.extend_from_slice(b"\r\n");
    upgrade.is_some()
}

#[cfg(test)]
mod tests {
    use super::super::opts::Header;
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            target: b"/front/a?q=1".to_vec(),
            version: Version::Http11,
            host: Some("127.0.0.1:18080".into()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            peer: "127.0.0.1".parse().expect("ip"),
            scheme: "http",
            tls: false,
            by: Some("127.0.0.1:18080".into()),
            remote_user: None,
            replace_host: false,
            host_ids: Rc::new(vec![String::new(), "two".into()]),
            forwarded: fwd::FOR | fwd::PROTO | fwd::HOST | fwd::BY,
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn head(r: &Request, body: Option<u64>, h: Header) -> (String, bool) {
        let mut remap = Remap::new(Rc::new(h), r.host.clone(), false);
        let mut out = Vec::new();
        let up = build(r, body, 1, &mut remap, &mut out);
        (String::from_utf8(out).expect("utf-8"), up)
    }

    /// lighttpd 1.4.69's head for the same request and configuration (observed),
    /// but for the fields Connection names and Keep-Alive and Trailer, which
    /// wickd does not pass on.
    #[test]
    fn as_lighttpd_with_forwarded_and_remapping() {
        let r = req(&[
            ("Host", "127.0.0.1:18080"),
            ("User-Agent", "curl/7.88.1"),
            ("Accept", "*/*"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "300"),
            ("TE", "trailers"),
            ("Trailer", "X-T"),
            ("Proxy-Connection", "x"),
            ("Proxy", "y"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("Upgrade", "websocket"),
        ]);
        let h = Header {
            urlpaths: pairs(&[("/front", "/back")]),
            hosts_request: pairs(&[("-", "back.example")]),
            ..Header::default()
        };
        let (got, up) = head(&r, None, h);
        assert!(!up);
        assert_eq!(
            got,
            "GET /back/a?q=1 HTTP/1.1\r\n\
             Host: back.example\r\n\
             User-Agent: curl/7.88.1\r\n\
             Accept: */*\r\n\
             TE: trailers\r\n\
             X-Forwarded-For: 1.2.3.4, 127.0.0.1\r\n\
             Forwarded: for=\"1.2.3.4\", for=127.0.0.1;by=\"127.0.0.1:18080\";proto=http;host=\"127.0.0.1:18080\"\r\n\
             X-Host: 127.0.0.1:18080\r\n\
             X-Forwarded-Host: 127.0.0.1:18080\r\n\
             X-Forwarded-Proto: http\r\n\
             Connection: close, te\r\n\r\n"
        );
    }

    #[test]
    fn body_lengths_versions_and_upgrade() {
        let mut r = req(&[("Connection", "Upgrade"), ("Upgrade", "websocket")]);
        r.forwarded = 0;
        let up = Header {
            upgrade: true,
            ..Header::default()
        };
        let (got, upgrading) = head(&r, None, up.clone());
        assert!(upgrading);
        assert!(got.contains("\r\nUpgrade: websocket\r\n"), "{got}");
        assert!(got.ends_with("Connection: close, upgrade\r\n\r\n"), "{got}");
        // Upgrade without Connection: upgrade is not an upgrade.
        let r2 = req(&[("Upgrade", "websocket")]);
        let (got, upgrading) = head(&r2, None, up.clone());
        assert!(!upgrading && !got.contains("Upgrade:"), "{got}");
        // Not enabled: dropped.
        let (got, upgrading) = head(&r, None, Header::default());
        assert!(!upgrading && !got.contains("Upgrade:"), "{got}");
        // force-http10 and no Host: HTTP/1.0.
        let f = Header {
            force_http10: true,
            upgrade: true,
            ..Header::default()
        };
        let (got, upgrading) = head(&r, None, f);
        assert!(!upgrading && got.starts_with("GET /front/a?q=1 HTTP/1.0\r\n"));
        let mut r3 = req(&[]);
        r3.host = None;
        r3.method = "POST".into();
        let (got, _) = head(&r3, None, Header::default());
        assert!(got.starts_with("POST /front/a?q=1 HTTP/1.0\r\nContent-Length: 0\r\n"));
        let (got, _) = head(&r3, Some(5), Header::default());
        assert!(got.contains("\r\nContent-Length: 5\r\n"));
        // replace-http-host with a named host (the test's host 1), not with an
        // unnamed one.
        let mut r4 = req(&[]);
        r4.replace_host = true;
        let (got, _) = head(&r4, None, Header::default());
        assert!(got.contains("\r\nHost: two\r\n"), "{got}");
        let mut remap = Remap::new(Rc::new(Header::default()), r4.host.clone(), false);
        let mut out = Vec::new();
        build(&r4, None, 0, &mut remap, &mut out);
        assert!(String::from_utf8_lossy(&out).contains("\r\nHost: 127.0.0.1:18080\r\n"));
    }

    #[test]
    fn forwarded_for_ipv6_and_existing_forwarded() {
        let mut r = req(&[("Forwarded", "for=7.7.7.7"), ("X-Forwarded-Proto", "https")]);
        r.peer = "::1".parse().expect("ip");
        r.forwarded = fwd::FOR | fwd::REMOTE_USER;
        r.remote_user = Some("a\"b".into());
        let (got, _) = head(&r, None, Header::default());
        assert!(
            got.contains("\r\nForwarded: for=7.7.7.7, for=\"[::1]\";remote_user=\"a\\\"b\"\r\n"),
            "{got}"
        );
        assert!(got.contains("\r\nX-Forwarded-Proto: http\r\n"), "{got}");
        assert!(got.contains("\r\nX-Forwarded-For: ::1\r\n"), "{got}");
    }
}
