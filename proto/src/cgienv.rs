//! The CGI/1.1 environment (RFC 3875 section 4.1) in lighttpd's order and with its
//! extras (REQUEST_URI, REDIRECT_STATUS, SCRIPT_FILENAME, DOCUMENT_ROOT, REQUEST_SCHEME,
//! REMOTE_PORT, HTTPS), from a request's facts ([`CgiRequest`]). lighttpd builds the
//! same environment for CGI and FastCGI, and so does this one builder: the spawner
//! for a CGI script (from facts it checked: a worker cannot add a variable, only
//! header values, and those only under HTTP_*), the worker for a FastCGI backend's
//! PARAMS.

use crate::spawner::CgiRequest;
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
    pub server_port: String,
    pub server_addr: String,
    /// setenv.add-environment / setenv.set-environment of the request's blocks.
    pub extra: &'a [(String, String)],
    /// LD_PRELOAD / LD_LIBRARY_PATH from wickd's own environment, passed on as
    /// lighttpd does (for valgrind and the like).
    pub passthrough: &'a [(String, String)],
}

/// One `NAME=value` list, in order.
pub type Env = Vec<(String, String)>;

/// lighttpd's encoding of a header or setenv name: letters upper-cased, digits kept,
/// everything else '_'.
pub fn encode_name(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len());
    s.push_str(prefix);
    for c in name.bytes() {
        s.push(if c.is_ascii_alphabetic() {
            c.to_ascii_uppercase() as char
        } else if c.is_ascii_digit() {
            c as char
        } else {
            '_'
        });
    }
    s
}

pub fn build(req: &CgiRequest, d: &Derived<'_>) -> Env {
    let mut env: Env = Vec::with_capacity(24 + req.headers.len());
    let mut add = |k: &str, v: &str| env.push((k.to_string(), v.to_string()));
    let path_info = &req.path[req.script_name_len as usize..];
    let script_name = &req.path[..req.script_name_len as usize];

    add("CONTENT_LENGTH", &req.content_length.to_string());
    add("QUERY_STRING", &req.query);
    add("REQUEST_URI", &req.target);
    if let Some(r) = &req.redirect_uri {
        add("REDIRECT_URI", r);
    }
    if req.error_status.is_none() {
        // For PHP built with --enable-force-cgi-redirect.
        add("REDIRECT_STATUS", "200");
    }
    add("SCRIPT_NAME", script_name);
    if !path_info.is_empty() {
        add("PATH_INFO", path_info);
        add("PATH_TRANSLATED", &format!("{}{}", d.docroot, path_info));
    }
    add("SCRIPT_FILENAME", d.script_filename);
    add("DOCUMENT_ROOT", d.docroot);
    add("REQUEST_METHOD", &req.method);
    add(
        "SERVER_PROTOCOL",
        req.version.map(|v| v.as_str()).unwrap_or("HTTP/1.0"),
    );
    add("SERVER_SOFTWARE", d.server_tag);
    add("GATEWAY_INTERFACE", "CGI/1.1");
    add("REQUEST_SCHEME", if req.tls { "https" } else { "http" });
    if req.tls {
        add("HTTPS", "on");
    }
    add("SERVER_PORT", &d.server_port);
    add("SERVER_ADDR", &d.server_addr);
    add("SERVER_NAME", &server_name(req, d));
    add(
        "REMOTE_ADDR",
        &req.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
    );
    add("REMOTE_PORT", &req.remote_port.to_string());
    for (k, v) in &req.headers {
        if v.is_empty() || k.is_empty() {
            continue;
        }
        // httpoxy: some programs take HTTP_PROXY for their outgoing proxy.
        if k.eq_ignore_ascii_case("proxy") {
            continue;
        }
        if k.eq_ignore_ascii_case("content-type") {
            add("CONTENT_TYPE", v);
        } else {
            add(&encode_name("HTTP_", k), v);
        }
    }
    // lighttpd's r->env, in the order its modules fill it: mod_auth, mod_setenv, then
    // the error handler's REDIRECT_STATUS.
    // mod_openssl's: SSL_* only (REMOTE_USER/AUTH_TYPE from a client
    // certificate unless mod_auth set them): a worker names nothing else.
    for (k, v) in &req.tls_env {
        let from_cert = (k == "REMOTE_USER" || k == "AUTH_TYPE") && req.auth.is_none();
        let name_ok = k.len() > 4
            && k.starts_with("SSL_")
            && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if name_ok || from_cert {
            add(k, v);
        }
    }
    if let Some((user, kind)) = &req.auth {
        add("REMOTE_USER", user);
        add("AUTH_TYPE", kind);
    }
    for (k, v) in d.extra {
        if !k.is_empty() {
            add(&encode_name("", k), v);
        }
    }
    if let Some(st) = req.error_status {
        add("REDIRECT_STATUS", &st.to_string());
    }
    for (k, v) in d.passthrough {
        add(k, v);
    }
    env
}

/// SERVER_PORT and SERVER_ADDR of the request's listener: its own address, or
/// the connection's local one (`req.local_addr`) on a wildcard listener.
pub fn server_port_addr(cfg: &Config, req: &CgiRequest) -> (String, String) {
    let Some(l) = cfg.listeners.get(req.listener as usize) else {
        return ("0".into(), String::new());
    };
    match &l.addr {
        ListenAddr::Tcp(sa) => {
            let addr = if sa.ip().is_unspecified() {
                req.local_addr
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default()
            } else if sa.is_ipv6() {
                format!("[{}]", sa.ip())
            } else {
                sa.ip().to_string()
            };
            (sa.port().to_string(), addr)
        }
        ListenAddr::Unix(_) => ("0".into(), String::new()),
    }
}

/// server.name if set, else the request's host; either without a port. Empty: the
/// same as SERVER_ADDR.
fn server_name(req: &CgiRequest, d: &Derived<'_>) -> String {
    let s = if !d.server_name.is_empty() {
        d.server_name.to_string()
    } else {
        req.host.as_deref().unwrap_or("").to_ascii_lowercase()
    };
    if s.is_empty() {
        return d.server_addr.clone();
    }
    if s.starts_with('[') {
        match s.find("]:") {
            Some(i) => s[..=i].to_string(),
            None => s,
        }
    } else {
        match s.find(':') {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawner::HttpVersion;

    fn get<'a>(env: &'a Env, k: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
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
            server_port: "8080".into(),
            server_addr: "127.0.0.1".into(),
            extra: &[("my.var".into(), "1".into())],
            passthrough: &[],
        };
        let env = build(&req, &d);
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
}
