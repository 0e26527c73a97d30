//! The CGI/1.1 environment (RFC 3875 section 4.1) in lighttpd's order and with its
//! extras (REQUEST_URI, REDIRECT_STATUS, SCRIPT_FILENAME, DOCUMENT_ROOT, REQUEST_SCHEME,
//! REMOTE_PORT, HTTPS), from a request's facts ([`CgiFacts`]). lighttpd builds the
//! same environment for CGI and FastCGI, and so does this one builder: the spawner
//! for a CGI script (from facts it checked: a worker cannot add a variable, only
//! header values, and those only under HTTP_*), the worker for a FastCGI backend's
//! PARAMS. It writes into one [`EnvBuf`]: a FastCGI request costs two allocations
//! for its whole environment, not two per variable.

use crate::spawner::{CgiRequest, HttpVersion};
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use wick_conf::{Config, ListenAddr};

/// What the spawner derived itself, next to the request's facts.
pub struct Derived<'a> {
    /// Document root (DOCUMENT_ROOT), no trailing slash.
    pub docroot: &'a str,
    /// The script's file name (SCRIPT_FILENAME).
    pub script_filename: &'a str,
    /// server.tag (SERVER_SOFTWARE).
    pub server_tag: &'a str,
    /// server.name (SERVER_NAME when set).
    pub server_name: &'a str,
    /// SERVER_PORT / SERVER_ADDR of the listener.
    pub server: ServerAddr,
    /// A FastCGI authorizer's Variable-* grants (first, as in lighttpd's r->env).
    pub granted: &'a [(String, String)],
    /// setenv.add-environment / setenv.set-environment of the request's blocks.
    pub extra: &'a [(String, String)],
    /// LD_PRELOAD / LD_LIBRARY_PATH from wickd's own environment, passed on as
    /// lighttpd does (for valgrind and the like).
    pub passthrough: &'a [(String, String)],
}

/// A request's facts as the environment needs them, borrowed: from a
/// [`CgiRequest`] (the spawner) or straight from the worker's request buffers.
pub struct CgiFacts<'a> {
    pub method: &'a str,
    pub version: Option<HttpVersion>,
    /// REQUEST_URI.
    pub target: &'a str,
    pub redirect_uri: Option<&'a str>,
    /// SCRIPT_NAME followed by PATH_INFO.
    pub path: &'a str,
    pub script_name_len: usize,
    pub query: &'a str,
    pub host: Option<&'a str>,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: u16,
    pub tls: bool,
    /// Request header fields, duplicates joined.
    pub headers: Headers<'a>,
    pub content_length: u64,
    pub auth: Option<(&'a str, &'a str)>,
    pub error_status: Option<u16>,
    pub tls_env: &'a [(String, String)],
}

/// Header fields, owned (a [`CgiRequest`]'s) or borrowed from the request buffer.
#[derive(Clone, Copy)]
pub enum Headers<'a> {
    Owned(&'a [(String, String)]),
    Borrowed(&'a [(&'a str, Cow<'a, str>)]),
}

impl<'a> Headers<'a> {
    /// The fields as owned pairs.
    pub fn to_owned_list(self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        self.each(|k, n| v.push((k.to_string(), n.to_string())));
        v
    }

    fn each(self, mut f: impl FnMut(&str, &str)) {
        match self {
            Headers::Owned(h) => h.iter().for_each(|(k, v)| f(k, v)),
            Headers::Borrowed(h) => h.iter().for_each(|(k, v)| f(k, v)),
        }
    }
}

impl CgiRequest {
    /// The facts for [`build`].
    pub fn facts(&self) -> CgiFacts<'_> {
        CgiFacts {
            method: &self.method,
            version: self.version,
            target: &self.target,
            redirect_uri: self.redirect_uri.as_deref(),
            path: &self.path,
            script_name_len: self.script_name_len as usize,
            query: &self.query,
            host: self.host.as_deref(),
            remote_addr: self.remote_addr,
            remote_port: self.remote_port,
            tls: self.tls,
            headers: Headers::Owned(&self.headers),
            content_length: self.content_length,
            auth: self.auth.as_ref().map(|(u, t)| (u.as_str(), t.as_str())),
            error_status: self.error_status,
            tls_env: &self.tls_env,
        }
    }
}

/// `NAME=value` pairs in order, in one text buffer.
#[derive(Clone, Debug, Default)]
pub struct EnvBuf {
    text: String,
    /// Per variable: where its name ends and where its value ends in `text`.
    ends: Vec<(u32, u32)>,
}

impl EnvBuf {
    pub fn with_capacity(bytes: usize, vars: usize) -> EnvBuf {
        EnvBuf {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(vars),
        }
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        self.value(|t| t.push_str(value));
    }

    /// A variable whose value is formatted in place.
    pub fn push_fmt(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.text.push_str(name);
        // (writing to a String cannot fail)
        self.value(|t| {
            let _ = t.write_fmt(value);
        });
    }

    /// A variable with a decimal value (no formatter: a request has several).
    pub fn push_u64(&mut self, name: &str, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // (ASCII digits)
        self.push(name, std::str::from_utf8(&digits[i..]).unwrap_or("0"));
    }

    /// A variable whose value is an address: an IPv4 one written without the
    /// formatter (every request has two).
    pub fn push_ip(&mut self, name: &str, ip: IpAddr, bracketed: bool) {
        self.text.push_str(name);
        self.value(|t| match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        t.push('.');
                    }
                    if octet >= 100 {
                        t.push((b'0' + octet / 100) as char);
                    }
                    if octet >= 10 {
                        t.push((b'0' + octet / 10 % 10) as char);
                    }
                    t.push((b'0' + octet % 10) as char);
                }
            }
            IpAddr::V6(v6) if bracketed => {
                let _ = write!(t, "[{v6}]");
            }
            IpAddr::V6(v6) => {
                let _ = write!(t, "{v6}");
            }
        });
    }

    /// A variable named by lighttpd's encoding of a header or setenv name:
    /// `prefix`, then letters upper-cased, digits kept, everything else '_'.
    pub fn push_encoded(&mut self, prefix: &str, name: &str, value: &str) {
        self.text.push_str(prefix);
        self.text.extend(name.bytes().map(encoded_byte));
        self.value(|t| t.push_str(value));
    }

    fn value(&mut self, write: impl FnOnce(&mut String)) {
        let name_end = self.text.len() as u32;
        write(&mut self.text);
        self.ends.push((name_end, self.text.len() as u32));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&(n, v)| {
            let (n, v) = (n as usize, v as usize);
            let pair = (&self.text[start..n], &self.text[n..v]);
            start = v;
            pair
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Bytes of all names and values.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Replace the value of `name` (a chunked body's CONTENT_LENGTH once its
    /// length is known); appended when absent.
    pub fn set(&mut self, name: &str, value: &str) {
        if self.get(name).is_none() {
            return self.push(name, value);
        }
        let mut out = EnvBuf::with_capacity(self.text.len() + value.len(), self.len());
        for (n, v) in self.iter() {
            out.push(n, if n == name { value } else { v });
        }
        *self = out;
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for EnvBuf {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> EnvBuf {
        let mut env = EnvBuf::default();
        iter.into_iter().for_each(|(k, v)| env.push(k, v));
        env
    }
}

fn encoded_byte(c: u8) -> char {
    if c.is_ascii_alphabetic() {
        c.to_ascii_uppercase() as char
    } else if c.is_ascii_digit() {
        c as char
    } else {
        '_'
    }
}

/// lighttpd's encoding of a header or setenv name: letters upper-cased, digits kept,
/// everything else '_'.
pub fn encode_name(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len());
    s.push_str(prefix);
    s.extend(name.bytes().map(encoded_byte));
    s
}

pub fn build(req: &CgiFacts<'_>, d: &Derived<'_>) -> EnvBuf {
    let mut env = EnvBuf::with_capacity(1024, 32);
    let path_info = req.path.get(req.script_name_len..).unwrap_or("");
    let script_name = req.path.get(..req.script_name_len).unwrap_or(req.path);

    env.push_u64("CONTENT_LENGTH", req.content_length);
    env.push("QUERY_STRING", req.query);
    env.push("REQUEST_URI", req.target);
    if let Some(r) = req.redirect_uri {
        env.push("REDIRECT_URI", r);
    }
    if req.error_status.is_none() {
        // For PHP built with --enable-force-cgi-redirect.
        env.push("REDIRECT_STATUS", "200");
    }
    env.push("SCRIPT_NAME", script_name);
    if !path_info.is_empty() {
        env.push("PATH_INFO", path_info);
        env.push_fmt(
            "PATH_TRANSLATED",
            format_args!("{}{}", d.docroot, path_info),
        );
    }
    env.push("SCRIPT_FILENAME", d.script_filename);
    env.push("DOCUMENT_ROOT", d.docroot);
    env.push("REQUEST_METHOD", req.method);
    env.push(
        "SERVER_PROTOCOL",
        req.version.map(|v| v.as_str()).unwrap_or("HTTP/1.0"),
    );
    env.push("SERVER_SOFTWARE", d.server_tag);
    env.push("GATEWAY_INTERFACE", "CGI/1.1");
    env.push("REQUEST_SCHEME", if req.tls { "https" } else { "http" });
    if req.tls {
        env.push("HTTPS", "on");
    }
    env.push_u64("SERVER_PORT", d.server.port.into());
    push_server_addr(&mut env, "SERVER_ADDR", &d.server);
    server_name(&mut env, req, d);
    match req.remote_addr {
        Some(a) => env.push_ip("REMOTE_ADDR", a, false),
        None => env.push("REMOTE_ADDR", ""),
    }
    env.push_u64("REMOTE_PORT", req.remote_port.into());
    req.headers.each(|k, v| {
        if v.is_empty() || k.is_empty() {
            return;
        }
        // httpoxy: some programs take HTTP_PROXY for their outgoing proxy.
        if k.eq_ignore_ascii_case("proxy") {
            return;
        }
        if k.eq_ignore_ascii_case("content-type") {
            env.push("CONTENT_TYPE", v);
        } else {
            env.push_encoded("HTTP_", k, v);
        }
    });
    // lighttpd's r->env, in the order its modules fill it: mod_auth, mod_setenv, then
    // the error handler's REDIRECT_STATUS.
    // mod_openssl's: SSL_* only (REMOTE_USER/AUTH_TYPE from a client
    // certificate unless mod_auth set them): a worker names nothing else.
    for (k, v) in req.tls_env {
        let from_cert = (k == "REMOTE_USER" || k == "AUTH_TYPE") && req.auth.is_none();
        let name_ok = k.len() > 4
            && k.starts_with("SSL_")
            && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if name_ok || from_cert {
            env.push(k, v);
        }
    }
    if let Some((user, kind)) = req.auth {
        env.push("REMOTE_USER", user);
        env.push("AUTH_TYPE", kind);
    }
    for (k, v) in d.granted {
        env.push(k, v);
    }
    for (k, v) in d.extra {
        if !k.is_empty() {
            env.push_encoded("", k, v);
        }
    }
    if let Some(st) = req.error_status {
        env.push_u64("REDIRECT_STATUS", st.into());
    }
    for (k, v) in d.passthrough {
        env.push(k, v);
    }
    env
}

/// SERVER_PORT and SERVER_ADDR of a request's listener.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerAddr {
    pub port: u16,
    /// None: a unix socket (SERVER_ADDR empty).
    pub ip: Option<IpAddr>,
    /// An IPv6 listener's own address is written in brackets (lighttpd keeps the
    /// "[::1]" of its host:port token); a wildcard's replacement is not.
    pub bracketed: bool,
}

/// SERVER_PORT and SERVER_ADDR of the listener `listener`: its own address, or
/// the connection's local one (`local_addr`) on a wildcard listener.
pub fn server_addr(cfg: &Config, listener: u32, local_addr: Option<SocketAddr>) -> ServerAddr {
    let Some(l) = cfg.listeners.get(listener as usize) else {
        return ServerAddr::default();
    };
    match &l.addr {
        ListenAddr::Tcp(sa) => ServerAddr {
            port: sa.port(),
            ip: if sa.ip().is_unspecified() {
                local_addr.map(|a| a.ip())
            } else {
                Some(sa.ip())
            },
            bracketed: !sa.ip().is_unspecified() && sa.is_ipv6(),
        },
        ListenAddr::Unix(_) => ServerAddr::default(),
    }
}

fn push_server_addr(env: &mut EnvBuf, name: &str, server: &ServerAddr) {
    match server.ip {
        Some(ip) => env.push_ip(name, ip, server.bracketed),
        None => env.push(name, ""),
    }
}

/// SERVER_NAME: server.name if set, else the request's host, lower-cased; either
/// without a port. Empty: the same as SERVER_ADDR.
fn server_name(env: &mut EnvBuf, req: &CgiFacts<'_>, d: &Derived<'_>) {
    let configured = !d.server_name.is_empty();
    let s = match configured {
        true => d.server_name,
        false => req.host.unwrap_or(""),
    };
    if s.is_empty() {
        return push_server_addr(env, "SERVER_NAME", &d.server);
    }
    let s = if s.starts_with('[') {
        s.find("]:").map_or(s, |i| &s[..=i])
    } else {
        s.find(':').map_or(s, |i| &s[..i])
    };
    env.text.push_str("SERVER_NAME");
    env.value(|t| match configured {
        true => t.push_str(s),
        false => t.extend(s.chars().map(|c| c.to_ascii_lowercase())),
    });
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawner::HttpVersion;

    fn get<'a>(env: &'a EnvBuf, k: &str) -> Option<&'a str> {
        env.get(k)
    }

    #[test]
    fn lighttpd_variables() {
        let req = CgiRequest {
            method: "POST".into(),
            version: Some(HttpVersion::Http11),
            target: "/cgi-bin/t.cgi/a/b?x=1".into(),
            path: "/cgi-bin/t.cgi/a/b".into(),
            script_name_len: 14,
            query: "x=1".into(),
            host: Some("Example.COM:8080".into()),
            remote_addr: "127.0.0.1".parse().ok(),
            remote_port: 4321,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("Proxy".into(), "http://evil".into()),
                ("X-Some.Thing".into(), "v".into()),
                ("Empty".into(), "".into()),
            ],
            content_length: 5,
            auth: Some(("alice".into(), "Basic".into())),
            ..Default::default()
        };
        let d = Derived {
            docroot: "/srv/www",
            script_filename: "/srv/www/cgi-bin/t.cgi",
            server_tag: "wickd/0.1.0",
            server_name: "",
            server: ServerAddr {
                port: 8080,
                ip: "127.0.0.1".parse().ok(),
                bracketed: false,
            },
            granted: &[],
            extra: &[("my.var".into(), "1".into())],
            passthrough: &[],
        };
        let env = build(&req.facts(), &d);
        assert_eq!(get(&env, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some("/cgi-bin/t.cgi"));
        assert_eq!(get(&env, "PATH_INFO"), Some("/a/b"));
        assert_eq!(get(&env, "PATH_TRANSLATED"), Some("/srv/www/a/b"));
        assert_eq!(get(&env, "SERVER_NAME"), Some("example.com"));
        assert_eq!(get(&env, "SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(get(&env, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&env, "HTTP_X_SOME_THING"), Some("v"));
        assert_eq!(get(&env, "HTTP_PROXY"), None);
        assert_eq!(get(&env, "HTTP_EMPTY"), None);
        assert_eq!(get(&env, "REDIRECT_STATUS"), Some("200"));
        assert_eq!(get(&env, "REMOTE_USER"), Some("alice"));
        assert_eq!(get(&env, "MY_VAR"), Some("1"));
        assert_eq!(get(&env, "HTTPS"), None);
        assert_eq!(get(&env, "PATH"), None);
    }

    #[test]
    fn env_buf() {
        let mut env = EnvBuf::default();
        env.push("A", "1");
        env.push_encoded("HTTP_", "x-forwarded.for", "v");
        env.push_fmt("N", format_args!("{}", 42));
        env.push_u64("Z", 0);
        env.push_u64("M", u64::MAX);
        env.push("EMPTY", "");
        let all: Vec<_> = env.iter().collect();
        assert_eq!(
            all,
            [
                ("A", "1"),
                ("HTTP_X_FORWARDED_FOR", "v"),
                ("N", "42"),
                ("Z", "0"),
                ("M", "18446744073709551615"),
                ("EMPTY", "")
            ]
        );
        env.set("N", "7");
        env.set("NEW", "x");
        assert_eq!(env.get("N"), Some("7"));
        assert_eq!(env.get("NEW"), Some("x"));
        assert_eq!(env.len(), 7);
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "255.9.99.100",
            "::1",
            "fe80::1:2",
        ] {
            let mut e = EnvBuf::default();
            e.push_ip("IP", ip.parse().expect("an address"), false);
            assert_eq!(e.get("IP"), Some(ip));
        }
        assert_eq!(env.iter().next(), Some(("A", "1")));
    }

    #[test]
    fn server_addr_and_name() {
        let v6 = ServerAddr {
            port: 80,
            ip: "::1".parse().ok(),
            bracketed: true,
        };
        let req = CgiRequest {
            path: "/x".into(),
            script_name_len: 2,
            host: Some("[::1]:8080".into()),
            ..Default::default()
        };
        let d = Derived {
            docroot: "/srv",
            script_filename: "/srv/x",
            server_tag: "",
            server_name: "",
            server: v6,
            granted: &[("G".into(), "1".into())],
            extra: &[],
            passthrough: &[],
        };
        let env = build(&req.facts(), &d);
        assert_eq!(env.get("SERVER_NAME"), Some("[::1]"));
        assert_eq!(env.get("SERVER_ADDR"), Some("[::1]"));
        assert_eq!(env.get("SERVER_PORT"), Some("80"));
        assert_eq!(env.get("G"), Some("1"));
        // No host: SERVER_ADDR stands in.
        let req = CgiRequest { host: None, ..req };
        assert_eq!(build(&req.facts(), &d).get("SERVER_NAME"), Some("[::1]"));
        // A unix-socket listener: no address, port 0.
        let d = Derived {
            server: ServerAddr::default(),
            ..d
        };
        let env = build(&req.facts(), &d);
        assert_eq!(env.get("SERVER_ADDR"), Some(""));
        assert_eq!(env.get("SERVER_PORT"), Some("0"));
    }
}
