//! How a connection comes to speak HTTP/2: the preface on cleartext (prior
//! knowledge), Upgrade: h2c, ALPN h2 on TLS; and server.h2proto / server.h2c
//! turning each off.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use tls_kit::{client_config, handshake, Ca, ClientSpec};

/// TLS on a second port (`tls_port`) beside the cleartext one.
struct TlsSite {
    s: Server,
    tls_port: u16,
}

impl TlsSite {
    fn ca_file(&self) -> PathBuf {
        self.s.dir.path().join("ca.pem")
    }
    fn url(&self, path: &str) -> String {
        format!("https://a.test:{}{path}", self.tls_port)
    }
    fn resolve(&self) -> String {
        format!("a.test:{}:127.0.0.1", self.tls_port)
    }
    /// curl over HTTPS trusting the test CA.
    fn curl(&self, path: &str, args: &[&str]) -> CurlOut {
        let ca = self.ca_file();
        let resolve = self.resolve();
        let mut all = vec![
            "--cacert",
            ca.to_str().expect("utf-8 path"),
            "--resolve",
            &resolve,
        ];
        all.extend_from_slice(args);
        curl(self.s.dir.path(), &self.url(path), &all)
    }
}

fn tls_site(extra: &str) -> TlsSite {
    let ca = Ca::new("wick h2 test CA");
    let leaf = ca.server(&["a.test", "localhost"]);
    let tls_port = common::free_port();
    let body = format!(
        "server.modules += ( \"mod_openssl\" )\n\
         $SERVER[\"socket\"] == \"127.0.0.1:{tls_port}\" {{\n\
             ssl.engine = \"enable\"\n\
             ssl.pemfile = \"@DIR@/a.pem\"\n\
         }}\n{extra}"
    );
    let s = Server::start_with(&conf(&body), &[], |d| {
        files(d);
        ca.write(&d.join("ca.pem"));
        leaf.write_pem(&d.join("a.pem"));
    });
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            tls_port
        ))
        .is_ok()),
        "TLS port not listening: {}",
        s.error_log()
    );
    TlsSite { s, tls_port }
}

/// The ALPN protocol a rustls client offering h2 and http/1.1 gets.
fn alpn(site: &TlsSite) -> Option<Vec<u8>> {
    let cfg = client_config(&ClientSpec {
        alpn: &["h2", "http/1.1"],
        ..ClientSpec::default()
    });
    handshake(site.tls_port, "a.test", &cfg)
        .expect("TLS handshake")
        .alpn
}

/// The cleartext preface sent as a first request: an HTTP/1.x error comes back
/// (status), and the connection ends.
fn preface_refused(port: u16) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(h2c::PREFACE).expect("write");
    let settings = h2c::frame_bytes(h2c::SETTINGS, 0, 0, &[]);
    let _ = s.write_all(&settings);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1."),
        "the preface on a connection without h2c got {text:?}"
    );
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn prior_knowledge_h2c_with_curl_and_the_frame_client() {
    if !have("curl", "prior_knowledge_h2c_with_curl_and_the_frame_client") {
        return;
    }
    let s = start("");
    let r = curl(
        s.dir.path(),
        &s.url("/index.html"),
        &["--http2-prior-knowledge"],
    );
    assert_eq!(
        (r.code, r.version.as_str(), r.status),
        (Some(0), "2", 200),
        "{r:?}"
    );
    assert_eq!(r.body, INDEX.as_bytes());
    assert!(r.head.starts_with("HTTP/2 200"), "{}", r.head);

    // The settings lighttpd 1.4.69 sends: 8 streams, 64 KiB stream window.
    let mut c = client(&s);
    assert!(
        c.server_settings
            .contains(&(h2c::SETTINGS_MAX_CONCURRENT_STREAMS, 8)),
        "{:?}",
        c.server_settings
    );
    assert!(
        c.server_settings
            .contains(&(h2c::SETTINGS_INITIAL_WINDOW_SIZE, 65536)),
        "{:?}",
        c.server_settings
    );
    c.get(1, "/index.html");
    let r = c.response(1);
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    assert_eq!(r.header("content-length"), Some("14"));
}

#[test]
fn upgrade_h2c_with_curl_nghttp_and_by_hand() {
    let s = start("");
    if have("curl", "upgrade_h2c (curl part)") {
        let r = curl(s.dir.path(), &s.url("/index.html"), &["--http2"]);
        assert_eq!(
            (r.code, r.version.as_str(), r.status),
            (Some(0), "2", 200),
            "{r:?}"
        );
        assert_eq!(r.body, INDEX.as_bytes());
    }
    if have("nghttp", "upgrade_h2c (nghttp part)") {
        let out = Command::new("timeout")
            .args(["10", "nghttp", "-u", "-v"])
            .arg(s.url("/index.html"))
            .stdin(Stdio::null())
            .output()
            .expect("run nghttp");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "nghttp -u: {text}");
        assert!(text.contains("HTTP Upgrade success"), "{text}");
        assert!(text.contains(INDEX.trim_end()), "{text}");
    }
    // By hand: 101, our SETTINGS and the response on stream 1.
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    t.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    t.write_all(
        b"GET /cgi-bin/env.sh HTTP/1.1\r\nHost: up\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    )
    .expect("write");
    let mut head = Vec::new();
    let bound = Bound::new(Duration::from_secs(5));
    while common::find(&head, b"\r\n\r\n").is_none() && !bound.over() {
        let mut b = [0u8; 1];
        if let Ok(1) = t.read(&mut b) {
            head.push(b[0]);
        }
    }
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.to_ascii_lowercase().contains("upgrade: h2c"), "{head}");
    let mut c = Client::over(t);
    c.start(&[]);
    let r = c.response(1);
    assert_eq!(r.status, 200);
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SERVER_PROTOCOL").map(String::as_str),
        Some("HTTP/2.0")
    );
    assert_eq!(env.get("HTTP_HOST").map(String::as_str), Some("up"));
    assert!(!env.contains_key("HTTP_UPGRADE"), "{env:?}");
    assert!(!env.contains_key("HTTP_HTTP2_SETTINGS"), "{env:?}");
    // The connection goes on with stream 3.
    c.get(3, "/index.html");
    assert_eq!(c.response(3).text(), INDEX);
}

#[test]
fn alpn_h2_over_tls() {
    let site = tls_site("");
    assert_eq!(alpn(&site).as_deref(), Some(&b"h2"[..]));
    if have("curl", "alpn_h2_over_tls (curl part)") {
        let r = site.curl("/index.html", &["--http2", "-v"]);
        assert_eq!(
            (r.code, r.version.as_str(), r.status),
            (Some(0), "2", 200),
            "{r:?}"
        );
        assert!(
            r.stderr.contains("ALPN: server accepted h2"),
            "{}",
            r.stderr
        );
        assert_eq!(r.body, INDEX.as_bytes());
    }
    // Frames over the TLS session: the stream sees the scheme.
    let cfg = client_config(&ClientSpec {
        alpn: &["h2"],
        ..ClientSpec::default()
    });
    let sess = handshake(site.tls_port, "a.test", &cfg).expect("handshake");
    let tls = sess.conn.s;
    tls.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut c = Client::over(tls);
    c.start(&[]);
    let b = c.encoded(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "a.test"),
        (":path", "/cgi-bin/env.sh"),
    ]);
    c.headers(1, &b, true);
    let r = c.response(1);
    assert_eq!(r.status, 200, "{}", site.s.error_log());
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SERVER_PROTOCOL").map(String::as_str),
        Some("HTTP/2.0")
    );
    assert_eq!(env.get("HTTPS").map(String::as_str), Some("on"));
    assert_eq!(env.get("REQUEST_SCHEME").map(String::as_str), Some("https"));
    c.get(3, "/big.bin");
    let r = c.response(3);
    assert_eq!((r.status, r.body.len()), (200, BIG));
    assert!(r.body == pattern(BIG), "big.bin over h2 and TLS differs");
}

#[test]
fn h2proto_disable_serves_http1_only() {
    let site = tls_site("server.h2proto = \"disable\"\n");
    assert_eq!(alpn(&site).as_deref(), Some(&b"http/1.1"[..]));
    if have("curl", "h2proto_disable (curl part)") {
        let r = site.curl("/index.html", &["--http2"]);
        assert_eq!(
            (r.code, r.version.as_str(), r.status),
            (Some(0), "1.1", 200),
            "{r:?}"
        );
        let r = curl(site.s.dir.path(), &site.s.url("/index.html"), &["--http2"]);
        assert_eq!((r.version.as_str(), r.status), ("1.1", 200), "{r:?}");
    }
    let status = preface_refused(site.s.port);
    assert!(status >= 400, "{status}");
}

#[test]
fn h2c_disable_refuses_the_preface_and_keeps_tls_h2() {
    let site = tls_site("server.h2c = \"disable\"\n");
    let status = preface_refused(site.s.port);
    assert!(status >= 400, "{status}");
    assert_eq!(alpn(&site).as_deref(), Some(&b"h2"[..]));
    if have("curl", "h2c_disable (curl part)") {
        // Upgrade: h2c is not taken either.
        let r = curl(site.s.dir.path(), &site.s.url("/index.html"), &["--http2"]);
        assert_eq!((r.version.as_str(), r.status), ("1.1", 200), "{r:?}");
        let r = site.curl("/index.html", &["--http2"]);
        assert_eq!(
            (r.code, r.version.as_str(), r.status),
            (Some(0), "2", 200),
            "{r:?}"
        );
        assert_eq!(r.body, INDEX.as_bytes());
    }
}

#[test]
fn feature_flags_turn_h2c_off_too() {
    // lighttpd's spelling: server.feature-flags "server.h2c" => "disable".
    let s = start("server.feature-flags += ( \"server.h2c\" => \"disable\" )\n");
    let status = preface_refused(s.port);
    assert!(status >= 400, "{status}");
}

#[test]
fn upgrade_not_taken_with_a_body_or_bad_settings() {
    let s = start("");
    // lighttpd upgrades only requests without a body: this one is HTTP/1.1.
    let raw = s.raw(
        b"POST /cgi-bin/echo.sh HTTP/1.1\r\nHost: up\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 4\r\n\r\nbody",
    );
    let r = common::parse_response(&raw);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "body"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // HTTP2-Settings that are not base64url of whole settings.
    for bad in ["!!!", "AAMAAABkAAQ"] {
        let req = format!(
            "GET /index.html HTTP/1.1\r\nHost: up\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: {bad}\r\n\r\n"
        );
        let raw = s.raw(req.as_bytes());
        let r = common::parse_response(&raw);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, INDEX),
            "settings {bad:?}"
        );
    }
}

#[test]
fn upgrade_with_the_preface_pipelined_and_its_settings_applied() {
    // The client does not wait for the 101: preface, SETTINGS and stream 3
    // follow the request in one write. HTTP2-Settings set a 100-byte window
    // (AAQAAABk: SETTINGS_INITIAL_WINDOW_SIZE = 100) that stream 1 obeys.
    let s = start("");
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    t.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut out =
        b"GET /cgi-bin/env.sh HTTP/1.1\r\nHost: up\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAQAAABk\r\n\r\n"
            .to_vec();
    out.extend_from_slice(h2c::PREFACE);
    out.extend(h2c::frame_bytes(h2c::SETTINGS, 0, 0, &[]));
    let b = h2c::literal(&h2c::request_fields("GET", "/index.html", &[]));
    out.extend(h2c::frame_bytes(
        h2c::HEADERS,
        h2c::END_HEADERS | h2c::END_STREAM,
        3,
        &b,
    ));
    t.write_all(&out).expect("write");
    let mut head = Vec::new();
    let bound = Bound::new(Duration::from_secs(5));
    while common::find(&head, b"\r\n\r\n").is_none() && !bound.over() {
        let mut b = [0u8; 1];
        if let Ok(1) = t.read(&mut b) {
            head.push(b[0]);
        }
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut c = Client::over(t);
    let r = c.response(1);
    assert_eq!(r.status, 200);
    assert!(r.body.len() > 300, "{}", r.text());
    let most = r.data_frames.iter().copied().max().unwrap_or(0);
    assert!(
        most <= 100,
        "a DATA frame of {most} bytes beyond the 100-byte window"
    );
    let r = c.response(3);
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
}
