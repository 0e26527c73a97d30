//! TLS (mod_openssl's ssl.* keys) through the real server, against what lighttpd
//! 1.4.69 with mod_openssl does: HTTPS with the pem in the global scope or a socket
//! block, TLS 1.2 and 1.3, scheme conditions and the http→https recipe, SNI
//! certificates, plain HTTP and stalled handshakes on the TLS port, session
//! resumption across workers and reloads, client certificates, certificates
//! renewed or broken at reload, start-up refusals, root-only keys, big bodies,
//! keep-alive and pipelining, and clients that vanish. Certificates are made at run
//! time (tests/common/tls.rs); clients are curl, openssl s_client and rustls.

mod common;
#[path = "common/tls.rs"]
mod tls_kit;

use common::{free_port, wait_until, wickd_bin, Server};
use nix::sys::signal::Signal;
use rustls::{HandshakeKind, ProtocolVersion};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tls_kit::{
    client_config, curl_https, handshake, s_client, Ca, ClientSpec, KeyKind, Leaf, Role,
    TaggedStore, Validity,
};

const INDEX: &str = "hello over tls\n";

/// The common head of every config; `@TLSPORT@` is a second port for the TLS
/// socket when the main one (`@PORT@`) stays plain.
fn conf(modules: &str, body: &str) -> String {
    format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_openssl"{modules})
{body}
"#
    )
}

/// TLS on the main port, in the global scope.
const GLOBAL_TLS: &str = r#"ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
"#;

/// A running server with the CA that signed its certificates.
struct Site {
    s: Server,
    ca: Ca,
    /// The port TLS is served on (the main port, or @TLSPORT@).
    tls_port: u16,
}

impl Site {
    fn ca_file(&self) -> PathBuf {
        self.s.dir.path().join("ca.pem")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.s.dir.path().join(name)
    }
    /// curl GET https://`name`:tls_port`path`, trusting the test CA.
    fn curl(
        &self,
        name: &str,
        path: &str,
        extra: &[&str],
    ) -> (Option<i32>, common::Response, String) {
        curl_https(self.tls_port, name, path, &self.ca_file(), extra)
    }
    /// A rustls client that verifies against the test CA.
    fn verifying(&self, version: Option<ProtocolVersion>) -> Arc<rustls::ClientConfig> {
        client_config(&ClientSpec {
            version,
            ca: Some(&self.ca),
            ..ClientSpec::default()
        })
    }
}

/// Start wickd with `template` (see `conf`), a CA written to ca.pem, the server
/// certificate for a.test (SAN a.test, localhost) to a.pem, index.html in the
/// document root, then `prepare` for more files.
fn start_site(template: &str, prepare: impl FnOnce(&Path, &Ca)) -> Site {
    let ca = Ca::new("wick test CA");
    let a = ca.server(&["a.test", "localhost"]);
    let tls_port = if template.contains("@TLSPORT@") {
        free_port()
    } else {
        0
    };
    let template = template.replace("@TLSPORT@", &tls_port.to_string());
    let s = Server::start_with(&template, &[], |d| {
        ca.write(&d.join("ca.pem"));
        a.write_pem(&d.join("a.pem"));
        std::fs::write(d.join("www/index.html"), INDEX).expect("index");
        prepare(d, &ca);
    });
    let tls_port = if tls_port == 0 { s.port } else { tls_port };
    // The harness waited for @PORT@; a second listener is bound with it, but check.
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            tls_port
        ))
        .is_ok()),
        "TLS port {tls_port} not listening: {}",
        s.error_log()
    );
    Site { s, ca, tls_port }
}

/// Wait until the master logged that every worker is up.
fn started(s: &Server) {
    assert!(
        wait_until(Duration::from_secs(15), || s
            .error_log()
            .contains("server started")),
        "not started: {}",
        s.error_log()
    );
}

/// The master's worker processes (its children titled as workers).
fn workers(s: &Server) -> Vec<u32> {
    let mut w: Vec<u32> = s
        .children()
        .into_iter()
        .filter(|p| common::cmdline(*p).contains("worker"))
        .collect();
    w.sort_unstable();
    w
}

/// SIGUSR1, then wait until a new generation of workers serves (none of `before`
/// left) or the log reports a failed reload (`expect_ok` false).
fn reload(s: &Server, expect_ok: bool) {
    let failed = |log: &str| log.matches("graceful restart failed").count();
    let before_failed = failed(&s.error_log());
    let before = workers(s);
    s.signal(Signal::SIGUSR1);
    if expect_ok {
        assert!(
            wait_until(Duration::from_secs(20), || {
                let now = workers(s);
                !now.is_empty() && now.iter().all(|p| !before.contains(p))
            }),
            "no new generation of workers after SIGUSR1 (before {before:?}, now {:?}): {}",
            workers(s),
            s.error_log()
        );
    } else {
        assert!(
            wait_until(Duration::from_secs(20), || failed(&s.error_log())
                > before_failed),
            "the reload did not report a failure: {}",
            s.error_log()
        );
    }
}

fn env_map(body: &[u8]) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const ENV_SH: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n";

fn write_script(d: &Path, name: &str, body: &str) {
    let p = d.join("www").join(name);
    std::fs::write(&p, body).expect("script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Deterministic, non-repeating-looking bytes (a file a dropped or reordered
/// record would show in).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. HTTPS with ssl.pemfile, TLS 1.2 and 1.3

#[test]
fn https_get_with_the_pemfile_in_the_global_scope() {
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!(code, Some(0), "curl: {err}\n{}", site.s.error_log());
    assert_eq!(r.status, 200, "{err}");
    assert_eq!(r.text(), INDEX);
    // The rustls client, verifying the chain and the name.
    let r = tls_kit::get(
        site.tls_port,
        "a.test",
        &site.verifying(None),
        "/index.html",
    )
    .expect("rustls GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), INDEX);
}

#[test]
fn tls12_and_tls13_handshakes_both_serve() {
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    for (args, want) in [
        (
            &["--tlsv1.2", "--tls-max", "1.2", "-v"][..],
            "SSL connection using TLSv1.2",
        ),
        (&["--tlsv1.3", "-v"][..], "SSL connection using TLSv1.3"),
    ] {
        let (code, r, err) = site.curl("a.test", "/index.html", args);
        assert_eq!(code, Some(0), "curl {args:?}: {err}");
        assert_eq!((r.status, r.text().as_str()), (200, INDEX), "curl {args:?}");
        assert!(err.contains(want), "curl {args:?} negotiated: {err}");
    }
    for v in [ProtocolVersion::TLSv1_2, ProtocolVersion::TLSv1_3] {
        let mut sess = handshake(site.tls_port, "a.test", &site.verifying(Some(v)))
            .unwrap_or_else(|e| panic!("{v:?} handshake: {e}"));
        assert_eq!(sess.version, Some(v));
        sess.conn
            .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let r = sess.conn.response().expect("response");
        assert_eq!((r.status, r.text().as_str()), (200, INDEX), "{v:?}");
    }
}

#[test]
fn ssl_conf_cmd_min_protocol_tls13_refuses_tls12() {
    let body = format!("{GLOBAL_TLS}ssl.openssl.ssl-conf-cmd = (\"MinProtocol\" => \"TLSv1.3\")\n");
    let site = start_site(&conf("", &body), |_, _| {});
    let (code, r, err) = site.curl("a.test", "/index.html", &["--tlsv1.3"]);
    assert_eq!((code, r.status), (Some(0), 200), "TLS 1.3: {err}");
    let (code, r, _) = site.curl("a.test", "/index.html", &["--tlsv1.2", "--tls-max", "1.2"]);
    assert!(
        code != Some(0) && r.status == 0,
        "TLS 1.2 served under MinProtocol TLSv1.3"
    );
    assert!(
        handshake(
            site.tls_port,
            "a.test",
            &site.verifying(Some(ProtocolVersion::TLSv1_2))
        )
        .is_err(),
        "rustls TLS 1.2 handshake accepted"
    );
}

#[test]
fn ssl_cipher_list_limits_tls12_suites() {
    // An OpenSSL cipher string: TLS 1.2 gets only what it names (lighttpd
    // honours the server's order by default); TLS 1.3 suites are not affected.
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let body = format!("{GLOBAL_TLS}ssl.cipher-list = \"ECDHE+CHACHA20\"\n");
    let site = start_site(&conf("", &body), |_, _| {});
    let all = client_config(&ClientSpec {
        version: Some(ProtocolVersion::TLSv1_2),
        ca: Some(&site.ca),
        ..ClientSpec::default()
    });
    let sess = handshake(site.tls_port, "a.test", &all)
        .unwrap_or_else(|e| panic!("TLS 1.2: {e}\n{}", site.s.error_log()));
    assert_eq!(
        sess.suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
    );
    let gcm_only = client_config(&ClientSpec {
        version: Some(ProtocolVersion::TLSv1_2),
        ca: Some(&site.ca),
        suites: Some(vec![
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ]),
        ..ClientSpec::default()
    });
    assert!(
        handshake(site.tls_port, "a.test", &gcm_only).is_err(),
        "a TLS 1.2 suite ssl.cipher-list does not name was accepted"
    );
    let sess = handshake(
        site.tls_port,
        "a.test",
        &site.verifying(Some(ProtocolVersion::TLSv1_3)),
    )
    .expect("TLS 1.3 under ssl.cipher-list");
    assert_eq!(sess.version, Some(ProtocolVersion::TLSv1_3));
}

#[test]
fn pemfile_in_a_socket_block_with_the_key_in_ssl_privkey() {
    let body = r#"$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/s.crt"
    ssl.privkey = "@DIR@/s.key"
}
"#;
    let mut leaf = None;
    let site = start_site(&conf("", body), |d, ca| {
        let l = ca.server(&["a.test"]);
        std::fs::write(d.join("s.crt"), &l.cert_pem).expect("crt");
        std::fs::write(d.join("s.key"), &l.key_pem).expect("key");
        leaf = Some(l);
    });
    let leaf = leaf.expect("leaf");
    let sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
    assert_eq!(
        sess.peer_cert, leaf.der,
        "not the certificate of ssl.pemfile"
    );
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    assert_eq!(r.text(), INDEX);
    // The main port stays plain HTTP.
    let r = site.s.get("/index.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), INDEX);
}

#[test]
fn a_pemfile_with_an_intermediate_sends_the_whole_chain() {
    // The fullchain a public CA's tools write: leaf, issuing CA, then the key.
    // Clients trust only the root, so they verify only if both are sent.
    let mut leaf_der = Vec::new();
    let site = start_site(&conf("", GLOBAL_TLS), |d, ca| {
        let issuing = ca.intermediate("wick issuing CA");
        let leaf = issuing.server(&["a.test"]);
        let pem = format!("{}{}{}", leaf.cert_pem, issuing.pem, leaf.key_pem);
        std::fs::write(d.join("a.pem"), pem).expect("pem");
        leaf_der = leaf.der.clone();
    });
    let sess = handshake(site.tls_port, "a.test", &site.verifying(None))
        .unwrap_or_else(|e| panic!("rustls, trusting the root only: {e}"));
    assert_eq!(sess.peer_cert, leaf_der);
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "curl: {err}");
    let out = s_client(site.tls_port, "a.test", &site.ca_file(), None, None, &[]);
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
}

/// `openssl pkey -traditional`: the key as "EC PRIVATE KEY" (SEC1) or "RSA
/// PRIVATE KEY" (PKCS#1), as older tools and `openssl genrsa` write them.
fn traditional(key_pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["pkey", "-traditional"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl pkey");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(key_pem.as_bytes())
        .expect("key to openssl");
    let out = child.wait_with_output().expect("openssl pkey");
    assert!(out.status.success(), "openssl pkey -traditional failed");
    String::from_utf8(out.stdout).expect("PEM is text")
}

#[test]
fn pem_files_in_the_key_formats_openssl_writes_all_load() {
    // One server, one SNI name per variant; every file must load for it to start.
    let variants = [
        ("ec-pkcs8", KeyKind::EcP256, false, false),
        ("ec-sec1", KeyKind::EcP256, true, false),
        ("rsa-pkcs8", KeyKind::Rsa2048, false, false),
        ("rsa-pkcs1", KeyKind::Rsa2048, true, false),
        ("key-first", KeyKind::EcP256, false, true),
    ];
    let mut body = GLOBAL_TLS.to_string();
    for (name, ..) in variants {
        body.push_str(&format!(
            "$HTTP[\"host\"] == \"{name}.test\" {{\n    ssl.pemfile = \"@DIR@/{name}.pem\"\n}}\n"
        ));
    }
    let mut ders = Vec::new();
    let site = start_site(&conf("", &body), |d, ca| {
        for (name, kind, trad, key_first) in variants {
            let host = format!("{name}.test");
            let leaf = ca.server_with(kind, &[&host]);
            let key = if trad {
                traditional(&leaf.key_pem)
            } else {
                leaf.key_pem.clone()
            };
            let pem = if key_first {
                format!("{key}{}", leaf.cert_pem)
            } else {
                format!("{}{key}", leaf.cert_pem)
            };
            std::fs::write(d.join(format!("{name}.pem")), pem).expect("pem");
            ders.push(leaf.der.clone());
        }
    });
    for ((name, ..), der) in variants.iter().zip(&ders) {
        let host = format!("{name}.test");
        let sess = handshake(site.tls_port, &host, &site.verifying(None))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", site.s.error_log()));
        assert_eq!(&sess.peer_cert, der, "{name}: another certificate");
        let (code, r, err) = site.curl(&host, "/index.html", &[]);
        assert_eq!((code, r.status), (Some(0), 200), "{name}: {err}");
    }
}

#[test]
fn alpn_offering_h2_gets_http_1_1_and_http_1_0_is_accepted() {
    // wickd speaks HTTP/1.x only: a client offering h2 first must not be told h2.
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    let cfg = client_config(&ClientSpec {
        ca: Some(&site.ca),
        alpn: &["h2", "http/1.1"],
        ..ClientSpec::default()
    });
    let mut sess = handshake(site.tls_port, "a.test", &cfg).expect("handshake");
    assert!(
        matches!(sess.alpn.as_deref(), None | Some(b"http/1.1")),
        "ALPN chose {:?}",
        sess.alpn.as_deref().map(String::from_utf8_lossy)
    );
    sess.conn
        .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
    let r = sess.conn.response().expect("an HTTP/1.1 response");
    assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
    // curl offers h2 and http/1.1 by default.
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    // An HTTP/1.0 client offers "http/1.0" alone (curl --http1.0 does): lighttpd
    // selects it; refusing it (no_application_protocol) locks such clients out.
    let cfg = client_config(&ClientSpec {
        ca: Some(&site.ca),
        alpn: &["http/1.0"],
        ..ClientSpec::default()
    });
    let sess = handshake(site.tls_port, "a.test", &cfg);
    assert!(
        sess.as_ref()
            .is_ok_and(|s| matches!(s.alpn.as_deref(), None | Some(b"http/1.0"))),
        "ALPN http/1.0 alone: {:?}",
        sess.map(|s| s.alpn)
    );
    let (code, r, err) = site.curl("a.test", "/index.html", &["--http1.0"]);
    assert_eq!((code, r.status), (Some(0), 200), "curl --http1.0: {err}");
    assert_eq!(r.text(), INDEX);
}

// ---------------------------------------------------------------------------
// 2. $HTTP["scheme"], the http→https recipe, CGI's HTTPS

const SCHEMES: &str = r#"$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/a.pem"
}
$HTTP["scheme"] == "https" {
    setenv.add-response-header = ("Strict-Transport-Security" => "max-age=63072000")
}
$HTTP["scheme"] == "http" {
    $HTTP["host"] =~ ".*" {
        url.redirect = (".*" => "https://%0$0")
    }
}
"#;

#[test]
fn scheme_conditions_apply_per_socket_and_http_redirects_to_https() {
    let site = start_site(
        &conf(", \"mod_setenv\", \"mod_redirect\"", SCHEMES),
        |_, _| {},
    );
    let (code, r, err) = site.curl("a.test", "/index.html?q=1", &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    assert_eq!(r.text(), INDEX);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=63072000"),
        "{:?}",
        r.headers
    );
    // The plain socket: redirected to https with host (and port) and target kept,
    // as lighttpd's %0 is the whole Host match.
    let port = site.s.port;
    let r = common::curl(
        &format!("http://h.test:{port}/index.html?q=1"),
        &["--resolve", &format!("h.test:{port}:127.0.0.1")],
    );
    assert_eq!(r.status, 301, "{:?}", r.headers);
    assert_eq!(
        r.header("location"),
        Some(format!("https://h.test:{port}/index.html?q=1").as_str())
    );
    assert_eq!(r.header("strict-transport-security"), None);
}

#[test]
fn cgi_on_the_tls_port_sees_https_on() {
    let body = r#"$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/a.pem"
}
cgi.assign = (".sh" => "/bin/sh")
"#;
    let site = start_site(&conf(", \"mod_cgi\"", body), |d, _| {
        write_script(d, "env.sh", ENV_SH)
    });
    let (code, r, err) = site.curl("a.test", "/env.sh", &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    assert_eq!(env.get("HTTPS").map(String::as_str), Some("on"), "{env:?}");
    assert_eq!(
        env.get("REQUEST_SCHEME").map(String::as_str),
        Some("https"),
        "{env:?}"
    );
    assert_eq!(
        env.get("SERVER_PORT"),
        Some(&site.tls_port.to_string()),
        "{env:?}"
    );
    // mod_openssl's SSL_PROTOCOL names the version (lighttpd: "TLSv1.3"), and
    // SSL_CIPHER is set; without client verification there is no SSL_CLIENT_*.
    for (args, want) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let (code, r, err) = site.curl("a.test", "/env.sh", args);
        assert_eq!((code, r.status), (Some(0), 200), "{args:?}: {err}");
        let env = env_map(&r.body);
        assert_eq!(
            env.get("SSL_PROTOCOL").map(String::as_str),
            Some(want),
            "{env:?}"
        );
        assert!(
            env.get("SSL_CIPHER").is_some_and(|c| !c.is_empty()),
            "{env:?}"
        );
        assert!(!env.keys().any(|k| k.starts_with("SSL_CLIENT_")), "{env:?}");
    }
    // The same script on the plain socket.
    let r = site.s.get("/env.sh");
    assert_eq!(r.status, 200);
    let env = env_map(&r.body);
    assert_eq!(env.get("HTTPS"), None, "{env:?}");
    assert!(!env.keys().any(|k| k.starts_with("SSL_")), "{env:?}");
    assert_eq!(
        env.get("REQUEST_SCHEME").map(String::as_str),
        Some("http"),
        "{env:?}"
    );
}

// ---------------------------------------------------------------------------
// 3. SNI

#[test]
fn sni_selects_the_certificate_of_the_host_block() {
    let body = r#"ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
$HTTP["host"] == "b.test" {
    ssl.pemfile = "@DIR@/b.pem"
}
"#;
    let mut b = None;
    let site = start_site(&conf("", body), |d, ca| {
        let l = ca.server(&["b.test"]);
        l.write_pem(&d.join("b.pem"));
        b = Some(l);
    });
    let b = b.expect("b");
    let a_der = {
        let sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("a.test");
        sess.peer_cert
    };
    // b.test, verified by name against its own certificate.
    let mut sess = handshake(site.tls_port, "b.test", &site.verifying(None))
        .unwrap_or_else(|e| panic!("b.test handshake: {e}\n{}", site.s.error_log()));
    assert_eq!(
        sess.peer_cert, b.der,
        "SNI b.test did not get b's certificate"
    );
    sess.conn
        .send(b"GET /index.html HTTP/1.1\r\nHost: b.test\r\n\r\n");
    assert_eq!(sess.conn.response().map(|r| r.status), Some(200));
    assert_ne!(a_der, b.der);
    // An unknown name and no SNI at all get the socket's certificate.
    let any = client_config(&ClientSpec::default());
    let sess = handshake(site.tls_port, "unknown.test", &any).expect("unknown.test");
    assert_eq!(sess.peer_cert, a_der, "unknown SNI got another certificate");
    let no_sni = client_config(&ClientSpec {
        sni: false,
        ..ClientSpec::default()
    });
    let sess = handshake(site.tls_port, "b.test", &no_sni).expect("no SNI");
    assert_eq!(sess.peer_cert, a_der, "no SNI got another certificate");
    let sess = handshake(site.tls_port, "127.0.0.1", &any).expect("IP, no SNI");
    assert_eq!(sess.peer_cert, a_der);
    // openssl s_client reports the subject it got; host names compare without
    // case (lighttpd lowers the SNI name before matching $HTTP["host"]).
    for sni in ["b.test", "B.Test"] {
        let out = s_client(site.tls_port, sni, &site.ca_file(), None, None, &[]);
        assert!(out.contains("CN = b.test"), "SNI {sni}: {out}");
        assert!(
            out.contains("Verify return code: 0 (ok)"),
            "SNI {sni}: {out}"
        );
    }
    // curl, by name: both verify.
    for name in ["a.test", "b.test"] {
        let (code, r, err) = site.curl(name, "/index.html", &[]);
        assert_eq!((code, r.status), (Some(0), 200), "{name}: {err}");
    }
}

#[test]
fn acme_tls_alpn_01_gets_the_challenge_certificate() {
    // RFC 8737 as lighttpd's ssl.acme-tls-1: a ClientHello offering only
    // acme-tls/1 gets <dir>/<SNI>.crt.pem with <SNI>.key.pem, and no HTTP.
    let body = format!("{GLOBAL_TLS}ssl.acme-tls-1 = \"@DIR@/acme\"\n");
    let mut challenge = Vec::new();
    let site = start_site(&conf("", &body), |d, ca| {
        std::fs::create_dir_all(d.join("acme")).expect("acme dir");
        let l = ca.server(&["a.test"]);
        std::fs::write(d.join("acme/a.test.crt.pem"), &l.cert_pem).expect("crt");
        std::fs::write(d.join("acme/a.test.key.pem"), &l.key_pem).expect("key");
        challenge = l.der.clone();
    });
    let normal = served_cert(&site);
    assert_ne!(normal, challenge);
    let cfg = client_config(&ClientSpec {
        alpn: &["acme-tls/1"],
        ..ClientSpec::default()
    });
    let mut sess = handshake(site.tls_port, "a.test", &cfg)
        .unwrap_or_else(|e| panic!("acme-tls/1: {e}\n{}", site.s.error_log()));
    assert_eq!(sess.alpn.as_deref(), Some(&b"acme-tls/1"[..]));
    assert_eq!(sess.peer_cert, challenge, "not the challenge certificate");
    // Nothing is served on it.
    let _ = sess
        .conn
        .s
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert!(
        sess.conn.response().is_none(),
        "HTTP served on an acme-tls/1 connection"
    );
    // Other clients get the site's certificate.
    assert_eq!(served_cert(&site), normal);
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
}

// ---------------------------------------------------------------------------
// 4, 5. Not TLS, or not finished: closed

/// Read until the server closes (or `limit`): (bytes, closed, when).
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool, Duration) {
    let t = Instant::now();
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true, t.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (got, false, t.elapsed())
            }
            Err(_) => return (got, true, t.elapsed()),
        }
        if t.elapsed() > limit {
            return (got, false, t.elapsed());
        }
    }
}

#[test]
fn plain_http_on_the_tls_port_is_closed_without_a_byte() {
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    started(&site.s);
    let log_before = site.s.error_log().len();
    let mut s = TcpStream::connect(("127.0.0.1", site.tls_port)).expect("connect");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let (got, closed, _) = read_until_closed(&mut s, Duration::from_secs(5));
    assert!(closed, "the connection stayed open");
    assert!(
        got.is_empty(),
        "lighttpd sends nothing; wickd sent {:?}",
        String::from_utf8_lossy(&got)
    );
    // lighttpd logs the error ("SSL: ... http request").
    assert!(
        wait_until(Duration::from_secs(5), || site.s.error_log().len()
            > log_before),
        "nothing logged: {}",
        site.s.error_log()
    );
    // The port still serves TLS.
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
}

#[test]
fn a_stalled_handshake_is_cut_off_after_max_read_idle() {
    let site = start_site(
        &conf("", &format!("{GLOBAL_TLS}server.max-read-idle = 2\n")),
        |_, _| {},
    );
    started(&site.s);
    // A real ClientHello, to send part of or all of.
    let hello = {
        let cfg = site.verifying(None);
        let mut c = rustls::ClientConnection::new(
            cfg,
            rustls::pki_types::ServerName::try_from("a.test").expect("name"),
        )
        .expect("client");
        let mut v = Vec::new();
        c.write_tls(&mut v).expect("ClientHello");
        v
    };
    assert!(hello.len() > 40);
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", site.tls_port)).expect("connect");
    let mut partial = TcpStream::connect(("127.0.0.1", site.tls_port)).expect("connect");
    partial.write_all(&hello[..hello.len() / 2]).expect("write");
    let mut stalled = TcpStream::connect(("127.0.0.1", site.tls_port)).expect("connect");
    stalled.write_all(&hello).expect("write");
    // Another client is served meanwhile.
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "served while others stall: {err}"
    );
    for (what, s) in [
        ("nothing sent", &mut silent),
        ("half a ClientHello", &mut partial),
        ("a ClientHello, then silence", &mut stalled),
    ] {
        let (got, closed, _) = read_until_closed(s, Duration::from_secs(10));
        let at = t0.elapsed();
        assert!(closed, "{what}: still open after {at:?}");
        assert!(
            at < Duration::from_secs(8),
            "{what}: closed only after {at:?} (max-read-idle 2)"
        );
        assert!(
            at >= Duration::from_millis(1500),
            "{what}: closed after {at:?}, before max-read-idle (2 s)"
        );
        if what != "a ClientHello, then silence" {
            assert!(got.is_empty(), "{what}: got {} bytes", got.len());
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Session resumption across workers and reloads

const TWO_WORKERS: &str = "server.max-worker = 2\n";

/// One connection of a resumption chain.
#[derive(Debug)]
struct Hop {
    kind: Option<HandshakeKind>,
    /// The worker process that served it (None: not found).
    worker: Option<u32>,
    /// The earlier connection whose session it offered.
    offered: Option<usize>,
}

/// The worker holding the server side of our connection from `local_port`, by the
/// socket's inode (/proc/net/tcp, then the workers' fds).
fn served_by(site: &Site, local_port: u16) -> Option<u32> {
    let local = format!("0100007F:{:04X}", site.tls_port);
    let remote = format!("0100007F:{local_port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(2) == Some(&remote.as_str()))
            .then(|| f.get(9).map(|s| s.to_string()))
            .flatten()
    })?;
    let want = format!("socket:[{inode}]");
    workers(&site.s).into_iter().find(|w| {
        std::fs::read_dir(format!("/proc/{w}/fd")).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
        })
    })
}

/// A chain of connections sharing one session store (each offering the newest
/// session it holds), one request each; `hops` grows by `n`.
struct Chain {
    store: Arc<TaggedStore>,
    cfg: Arc<rustls::ClientConfig>,
    hops: Vec<Hop>,
}

impl Chain {
    fn new(site: &Site, version: ProtocolVersion) -> Chain {
        let store = Arc::new(TaggedStore::default());
        let cfg = client_config(&ClientSpec {
            version: Some(version),
            ca: Some(&site.ca),
            store: Some(store.clone()),
            ..ClientSpec::default()
        });
        Chain {
            store,
            cfg,
            hops: Vec::new(),
        }
    }

    fn run(&mut self, site: &Site, n: usize) {
        for _ in 0..n {
            let i = self.hops.len();
            self.store.begin(i);
            let mut sess = handshake(site.tls_port, "a.test", &self.cfg)
                .unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", site.s.error_log()));
            let local_port = sess.conn.s.sock.local_addr().expect("local address").port();
            let worker = served_by(site, local_port);
            // Reading the response also takes in TLS 1.3 tickets sent after the
            // handshake.
            sess.conn
                .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
            let r = sess.conn.response().expect("response");
            assert_eq!(r.status, 200);
            let _ = sess.conn.closed();
            self.hops.push(Hop {
                kind: sess.kind,
                worker,
                offered: self.store.offered(),
            });
        }
    }

    /// Connections that offered a session made on another worker than theirs.
    fn crossings(&self) -> usize {
        self.hops
            .iter()
            .filter(|h| {
                h.offered
                    .is_some_and(|j| h.worker.is_some() && self.hops[j].worker != h.worker)
            })
            .count()
    }

    /// Every connection that offered a session resumed it; none came from
    /// nowhere.
    fn check(&self, what: &str) {
        let trail: Vec<String> = self
            .hops
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "#{i} {:?} on {:?}, offering #{:?}",
                    h.kind.unwrap_or(HandshakeKind::Full),
                    h.worker,
                    h.offered
                )
            })
            .collect();
        let refused: Vec<String> = self
            .hops
            .iter()
            .enumerate()
            .filter(|(_, h)| h.offered.is_some() && h.kind != Some(HandshakeKind::Resumed))
            .map(|(i, h)| {
                let j = h.offered.unwrap_or(0);
                format!(
                    "#{i} on {:?} with #{j}'s session from {:?}",
                    h.worker, self.hops[j].worker
                )
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{what}: sessions offered but not resumed: {refused:?}\n{trail:#?}"
        );
        assert!(
            self.hops
                .iter()
                .all(|h| h.offered.is_some() || h.kind != Some(HandshakeKind::Resumed)),
            "{what}: resumed without a session?\n{trail:#?}"
        );
    }
}

/// Consecutive connections to two workers: every session offered resumes, also
/// on the worker that did not issue it, and the server hands out sessions so that
/// most connections can resume.
fn check_resumed_across_workers(version: ProtocolVersion) {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    assert_eq!(workers(&site.s).len(), 2, "{:?}", site.s.children());
    let mut chain = Chain::new(&site, version);
    // Which worker the kernel wakes is not ours to choose: go on (bounded) until
    // sessions have crossed between the workers a few times.
    while chain.hops.len() < 96 && (chain.hops.len() < 24 || chain.crossings() < 3) {
        chain.run(&site, 8);
    }
    let what = format!("{version:?}");
    chain.check(&what);
    assert!(
        chain.crossings() > 0,
        "{what}: every session was resumed where it was made; across workers untested: {:?}",
        chain.hops
    );
    let resumed = chain
        .hops
        .iter()
        .filter(|h| h.kind == Some(HandshakeKind::Resumed))
        .count();
    assert!(
        resumed * 2 >= chain.hops.len(),
        "{what}: only {resumed} of {} connections resumed (the server hands out too few sessions)",
        chain.hops.len()
    );
}

#[test]
fn sessions_resume_across_workers_tls13() {
    check_resumed_across_workers(ProtocolVersion::TLSv1_3);
}

#[test]
fn sessions_resume_across_workers_tls12() {
    check_resumed_across_workers(ProtocolVersion::TLSv1_2);
}

#[test]
fn sessions_resume_with_openssl_s_client() {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let mut prev = site.path(&format!("sess{flag}-0"));
        let out = s_client(
            site.tls_port,
            "a.test",
            &site.ca_file(),
            None,
            Some(&prev),
            &[flag],
        );
        assert!(out.contains(&format!("New, {version}")), "{flag}: {out}");
        assert!(out.contains(INDEX.trim()), "{flag}: no response: {out}");
        for i in 1..=10 {
            let next = site.path(&format!("sess{flag}-{i}"));
            let out = s_client(
                site.tls_port,
                "a.test",
                &site.ca_file(),
                Some(&prev),
                Some(&next),
                &[flag],
            );
            assert!(
                out.contains(&format!("Reused, {version}")),
                "{flag} connection {i} not resumed: {out}"
            );
            assert!(out.contains(INDEX.trim()), "{flag} {i}: no response: {out}");
            // A client keeps the newest session it was given (a resumed TLS 1.2
            // session may bring no new one).
            if next.exists() {
                prev = next;
            }
        }
    }
}

#[test]
fn a_session_from_before_a_reload_resumes_after_it() {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    for v in [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2] {
        let mut chain = Chain::new(&site, v);
        chain.run(&site, 1);
        assert!(chain.store.held() > 0, "{v:?}: the server gave no session");
        reload(&site.s, true);
        chain.run(&site, 1);
        let after = &chain.hops[1];
        assert_eq!(after.offered, Some(0), "{v:?}");
        assert_eq!(
            after.kind,
            Some(HandshakeKind::Resumed),
            "{v:?}: a session from before the reload did not resume on the new workers \
             ({:?} then {:?})",
            chain.hops[0].worker,
            after.worker
        );
    }
    // And s_client's saved session.
    let sess = site.path("sess-before");
    let out = s_client(
        site.tls_port,
        "a.test",
        &site.ca_file(),
        None,
        Some(&sess),
        &[],
    );
    assert!(out.contains("New, TLSv1.3"), "{out}");
    reload(&site.s, true);
    let out = s_client(
        site.tls_port,
        "a.test",
        &site.ca_file(),
        Some(&sess),
        None,
        &[],
    );
    assert!(
        out.contains("Reused, TLSv1.3"),
        "not resumed after reload: {out}"
    );
}

/// lighttpd's STEK file: i32 version 0, i32 active-from and expire times (host
/// order), 16-byte key name, 32-byte HMAC key, 32-byte AES key.
fn stek_file(seed: u8) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i32;
    let mut b = Vec::with_capacity(92);
    b.extend_from_slice(&0i32.to_ne_bytes());
    b.extend_from_slice(&(now - 60).to_ne_bytes());
    b.extend_from_slice(&(now + 86_400).to_ne_bytes());
    b.extend((0..80u8).map(|i| i.wrapping_mul(37).wrapping_add(seed)));
    b
}

#[test]
fn ssl_stek_file_resumes_sessions_across_a_full_restart() {
    for (with_stek, want) in [(true, HandshakeKind::Resumed), (false, HandshakeKind::Full)] {
        let body = if with_stek {
            format!("{GLOBAL_TLS}ssl.stek-file = \"@DIR@/stek\"\n")
        } else {
            GLOBAL_TLS.to_string()
        };
        // One CA for both servers: the second one's certificate verifies too.
        let ca = Ca::new("wick test CA");
        let start = |ca: &Ca| {
            let a = ca.server(&["a.test"]);
            Server::start_with(&conf("", &body), &[], |d| {
                ca.write(&d.join("ca.pem"));
                a.write_pem(&d.join("a.pem"));
                std::fs::write(d.join("www/index.html"), INDEX).expect("index");
                std::fs::write(d.join("stek"), stek_file(7)).expect("stek");
            })
        };
        let s = start(&ca);
        let site = Site {
            tls_port: s.port,
            s,
            ca,
        };
        let mut chain = Chain::new(&site, ProtocolVersion::TLSv1_3);
        chain.run(&site, 1);
        assert!(chain.store.held() > 0, "no ticket");
        // Stopped for good; a new server (new master, new process tree) starts.
        let Site { s, ca, .. } = site;
        drop(s);
        let second = start(&ca);
        let site = Site {
            tls_port: second.port,
            s: second,
            ca,
        };
        chain.run(&site, 1);
        assert_eq!(chain.hops[1].offered, Some(0));
        assert_eq!(
            chain.hops[1].kind,
            Some(want),
            "ssl.stek-file {}: a ticket from the stopped server",
            if with_stek { "set" } else { "not set" }
        );
    }
}

// ---------------------------------------------------------------------------
// 7. Client certificates

/// A TLS server that asks for client certificates; `enforce` and the key naming
/// the CA file (ssl.verifyclient.ca-file or ssl.ca-file) vary.
/// (site, alice's file stem, mallory's file stem, alice's certificate).
fn client_cert_site(enforce: bool, ca_key: &str) -> (Site, PathBuf, PathBuf, Leaf) {
    let body = format!(
        r#"ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
{ca_key} = "@DIR@/ca.pem"
ssl.verifyclient.activate = "enable"
ssl.verifyclient.enforce = "{}"
ssl.verifyclient.username = "SSL_CLIENT_S_DN_CN"
ssl.verifyclient.exportcert = "enable"
cgi.assign = (".sh" => "/bin/sh")
"#,
        if enforce { "enable" } else { "disable" }
    );
    let mut alice_leaf = None;
    let site = start_site(&conf(", \"mod_cgi\"", &body), |d, ca| {
        write_script(d, "env.sh", ENV_SH);
        let alice = ca.client("alice", Some("Wick Test"));
        std::fs::write(d.join("alice.crt"), &alice.cert_pem).expect("crt");
        std::fs::write(d.join("alice.key"), &alice.key_pem).expect("key");
        alice_leaf = Some(alice);
        let other = Ca::new("another CA");
        let mallory = other.client("mallory", None);
        std::fs::write(d.join("mallory.crt"), &mallory.cert_pem).expect("crt");
        std::fs::write(d.join("mallory.key"), &mallory.key_pem).expect("key");
    });
    let d = site.s.dir.path().to_path_buf();
    let alice = alice_leaf.expect("alice");
    (site, d.join("alice"), d.join("mallory"), alice)
}

fn cert_args(stem: &Path) -> [String; 4] {
    [
        "--cert".into(),
        stem.with_extension("crt").display().to_string(),
        "--key".into(),
        stem.with_extension("key").display().to_string(),
    ]
}

fn curl_with(
    site: &Site,
    path: &str,
    args: &[String],
    more: &[&str],
) -> (Option<i32>, common::Response, String) {
    let mut v: Vec<&str> = args.iter().map(String::as_str).collect();
    v.extend_from_slice(more);
    site.curl("a.test", path, &v)
}

#[test]
fn client_certificate_enforced_admits_only_the_right_ca() {
    for ca_key in ["ssl.verifyclient.ca-file", "ssl.ca-file"] {
        let (site, alice, mallory, _) = client_cert_site(true, ca_key);
        for tls in [&["--tlsv1.3"][..], &["--tlsv1.2", "--tls-max", "1.2"][..]] {
            let (code, r, err) = curl_with(&site, "/index.html", &cert_args(&alice), tls);
            assert_eq!(
                (code, r.status),
                (Some(0), 200),
                "{ca_key} {tls:?}: the right CA's client refused: {err}\n{}",
                site.s.error_log()
            );
            assert_eq!(r.text(), INDEX);
            let (code, r, err) = curl_with(&site, "/index.html", &[], tls);
            assert!(
                code != Some(0) && r.status == 0,
                "{ca_key} {tls:?}: served without a client certificate: {code:?} {} {err}",
                r.status
            );
            let (code, r, err) = curl_with(&site, "/index.html", &cert_args(&mallory), tls);
            assert!(
                code != Some(0) && r.status == 0,
                "{ca_key} {tls:?}: served with another CA's certificate: {code:?} {} {err}",
                r.status
            );
        }
        // rustls: the same three.
        let ok = client_config(&ClientSpec {
            ca: Some(&site.ca),
            client_cert: Some(&site.ca.client("carol", None)),
            ..ClientSpec::default()
        });
        let r = tls_kit::get(site.tls_port, "a.test", &ok, "/index.html");
        assert_eq!(
            r.map(|r| r.status),
            Some(200),
            "{ca_key}: rustls with a certificate"
        );
        let none = site.verifying(None);
        assert!(
            tls_kit::get(site.tls_port, "a.test", &none, "/index.html").is_none(),
            "{ca_key}: rustls without a certificate was served"
        );
    }
}

#[test]
fn client_certificate_fields_reach_cgi_and_remote_user() {
    let (site, alice, _, leaf) = client_cert_site(true, "ssl.verifyclient.ca-file");
    let (code, r, err) = curl_with(&site, "/env.sh", &cert_args(&alice), &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    for (k, v) in [
        ("SSL_CLIENT_VERIFY", "SUCCESS"),
        ("SSL_CLIENT_S_DN_CN", "alice"),
        ("SSL_CLIENT_S_DN_O", "Wick Test"),
        ("REMOTE_USER", "alice"),
        ("AUTH_TYPE", "SSL_CLIENT_VERIFY"),
        ("HTTPS", "on"),
        ("REQUEST_SCHEME", "https"),
        ("SSL_CLIENT_M_SERIAL", &format!("{:X}", leaf.serial)),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}: {env:?}");
    }
    // ssl.verifyclient.exportcert: the certificate as PEM (its lines follow the
    // first in `env`'s output).
    let text = r.text();
    assert!(
        text.contains("SSL_CLIENT_CERT=-----BEGIN CERTIFICATE-----"),
        "{text}"
    );
    for line in leaf
        .cert_pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        assert!(
            text.contains(line),
            "SSL_CLIENT_CERT lacks {line:?}: {text}"
        );
    }
}

#[test]
fn client_certificate_not_enforced_serves_without_one_and_trusts_no_foreign_one() {
    let (site, alice, mallory, _) = client_cert_site(false, "ssl.verifyclient.ca-file");
    // No certificate: served, SSL_CLIENT_VERIFY=NONE, nobody authenticated.
    let (code, r, err) = curl_with(&site, "/env.sh", &[], &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SSL_CLIENT_VERIFY").map(String::as_str),
        Some("NONE"),
        "{env:?}"
    );
    assert_eq!(env.get("REMOTE_USER"), None, "{env:?}");
    assert_eq!(env.get("SSL_CLIENT_S_DN_CN"), None, "{env:?}");
    // Another CA's certificate: lighttpd serves, says FAILED, and takes no name
    // from it.
    let (code, r, err) = curl_with(&site, "/env.sh", &cert_args(&mallory), &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "lighttpd serves a foreign certificate when not enforced: {err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    assert!(
        env.get("SSL_CLIENT_VERIFY")
            .is_some_and(|v| v.starts_with("FAILED")),
        "{env:?}"
    );
    assert_eq!(
        env.get("REMOTE_USER"),
        None,
        "a foreign certificate's CN became REMOTE_USER: {env:?}"
    );
    assert_ne!(
        env.get("SSL_CLIENT_S_DN_CN").map(String::as_str),
        Some("mallory"),
        "{env:?}"
    );
    // The right CA's: verified as before.
    let (code, r, err) = curl_with(&site, "/env.sh", &cert_args(&alice), &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SSL_CLIENT_VERIFY").map(String::as_str),
        Some("SUCCESS")
    );
    assert_eq!(env.get("REMOTE_USER").map(String::as_str), Some("alice"));
}

// ---------------------------------------------------------------------------
// 8. Certificates renewed, or broken, at reload

/// The certificate new connections get now (no verification: a test of which).
fn served_cert(site: &Site) -> Vec<u8> {
    handshake(
        site.tls_port,
        "a.test",
        &client_config(&ClientSpec::default()),
    )
    .map(|s| s.peer_cert)
    .unwrap_or_default()
}

#[test]
fn a_renewed_certificate_is_served_after_sigusr1() {
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    started(&site.s);
    let first = served_cert(&site);
    assert!(!first.is_empty());
    let renewed = site.ca.server(&["a.test", "localhost"]);
    renewed.write_pem(&site.path("a.pem"));
    site.s.signal(Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(20), || served_cert(&site)
            == renewed.der),
        "still the old certificate after SIGUSR1: {}",
        site.s.error_log()
    );
    let (code, r, err) = site.curl("a.test", "/index.html", &["-w", "%{certs}"]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
}

#[test]
fn a_broken_pem_at_reload_keeps_the_old_certificate_and_names_the_file() {
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    started(&site.s);
    let first = served_cert(&site);
    let pem = site.path("a.pem");
    let named = |log: &str| log.matches(&*pem.to_string_lossy()).count();
    let before = named(&site.s.error_log());
    // A renewed certificate with the key of another.
    let new = site.ca.server(&["a.test"]);
    let other = site.ca.server(&["a.test"]);
    tls_kit::write_atomic(&pem, &format!("{}{}", new.cert_pem, other.key_pem));
    site.s.signal(Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(20), || named(&site.s.error_log())
            > before),
        "the error log does not name {}: {}",
        pem.display(),
        site.s.error_log()
    );
    // Give a (wrong) new generation time to take over, then look.
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..5 {
        assert_eq!(served_cert(&site), first, "{}", site.s.error_log());
    }
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
}

// ---------------------------------------------------------------------------
// 9. Start-up: refusals and the expired-certificate warning

fn run_wickd(args: &[&str]) -> Output {
    Command::new(wickd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wickd")
}

/// A TLS config (`body`) in a fresh directory whose files `write` prepares; (dir,
/// conf path, a.pem's path).
fn refusal_conf(body: &str, write: impl FnOnce(&Path, &Ca)) -> (common::TempDir, String, String) {
    let d = common::TempDir::new();
    std::fs::create_dir_all(d.path().join("www")).expect("www");
    let ca = Ca::new("wick test CA");
    ca.write(&d.path().join("ca.pem"));
    std::fs::write(d.path().join("www/index.html"), INDEX).expect("index");
    write(d.path(), &ca);
    let text = common::render(&conf("", body), free_port(), d.path());
    let c = d.path().join("wickd.conf");
    std::fs::write(&c, text).expect("conf");
    let pem = d.path().join("a.pem").display().to_string();
    (d, c.display().to_string(), pem)
}

/// `wickd -D -f conf` must exit by itself (10 s bound): its exit code and what it
/// said (stderr and the error log).
fn start_must_fail(d: &Path, conf: &str, what: &str) -> (Option<i32>, String) {
    let mut child = Command::new(wickd_bin())
        .args(["-D", "-f", conf])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wickd");
    let mut status = None;
    let exited = wait_until(Duration::from_secs(10), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("wickd started with {what}");
    }
    let out = child.wait_with_output().expect("output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
    );
    (status.and_then(|s| s.code()), said)
}

/// -tt and start-up both refuse `body` with the files `make` writes, naming
/// `file` (in the test's directory).
fn refused(body: &str, file: &str, make: impl FnOnce(&Path, &Ca), what: &str) {
    let (d, c, _) = refusal_conf(body, make);
    let named = d.path().join(file).display().to_string();
    let o = run_wickd(&["-tt", "-f", &c]);
    let said = format!(
        "{}{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(d.path().join("error.log")).unwrap_or_default()
    );
    assert_ne!(o.status.code(), Some(0), "-tt accepted {what}: {said}");
    assert!(said.contains(&named), "-tt does not name {named}: {said}");
    let (code, said) = start_must_fail(d.path(), &c, what);
    assert_ne!(code, Some(0), "{what}: {said}");
    assert!(
        said.contains(&named),
        "start-up does not name {named}: {said}"
    );
}

#[test]
fn start_up_refuses_a_key_that_does_not_match_the_certificate() {
    refused(
        GLOBAL_TLS,
        "a.pem",
        |d, ca| {
            let a = ca.server(&["a.test"]);
            let b = ca.server(&["a.test"]);
            std::fs::write(d.join("a.pem"), format!("{}{}", a.cert_pem, b.key_pem)).expect("pem");
        },
        "a key that does not match its certificate",
    );
}

#[test]
fn start_up_refuses_a_missing_pemfile() {
    refused(GLOBAL_TLS, "a.pem", |_, _| {}, "a missing ssl.pemfile");
}

#[test]
fn start_up_refuses_a_pemfile_without_a_key() {
    refused(
        GLOBAL_TLS,
        "a.pem",
        |d, ca| std::fs::write(d.join("a.pem"), ca.server(&["a.test"]).cert_pem).expect("pem"),
        "a pem with no private key",
    );
}

#[test]
fn start_up_refuses_an_ssl_privkey_that_does_not_match() {
    let body =
        "ssl.engine = \"enable\"\nssl.pemfile = \"@DIR@/s.crt\"\nssl.privkey = \"@DIR@/s.key\"\n";
    refused(
        body,
        "s.key",
        |d, ca| {
            std::fs::write(d.join("s.crt"), ca.server(&["a.test"]).cert_pem).expect("crt");
            std::fs::write(d.join("s.key"), ca.server(&["a.test"]).key_pem).expect("key");
        },
        "an ssl.privkey of another certificate",
    );
}

#[test]
fn start_up_refuses_a_missing_pemfile_in_a_host_block() {
    // Only SNI b.test would use it; lighttpd still loads it at start-up.
    let body = format!(
        "{GLOBAL_TLS}$HTTP[\"host\"] == \"b.test\" {{\n    ssl.pemfile = \"@DIR@/b.pem\"\n}}\n"
    );
    refused(
        &body,
        "b.pem",
        |d, ca| ca.server(&["a.test"]).write_pem(&d.join("a.pem")),
        "a missing ssl.pemfile for an SNI host",
    );
}

#[test]
fn an_expired_certificate_starts_with_a_warning_naming_the_file() {
    // lighttpd 1.4.69 warns "SSL: inactive/expired X509 certificate '<file>'" on
    // stderr and serves.
    let (d, c, pem) = refusal_conf(GLOBAL_TLS, |d, ca| {
        ca.leaf("a.test", None, &["a.test"], Role::Server, Validity::Expired)
            .write_pem(&d.join("a.pem"))
    });
    let o = run_wickd(&["-tt", "-f", &c]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(d.path().join("error.log")).unwrap_or_default()
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "-tt refused an expired certificate: {said}"
    );
    assert!(
        said.contains(&pem) && said.to_lowercase().contains("expired"),
        "-tt: {said}"
    );
    // Start it for real, stderr kept: lighttpd warns there, before its error log
    // is open.
    let port = free_port();
    std::fs::write(&c, common::render(&conf("", GLOBAL_TLS), port, d.path())).expect("conf");
    let stderr = std::fs::File::create(d.path().join("stderr")).expect("stderr file");
    let server = Spawned(
        Command::new(wickd_bin())
            .args(["-D", "-f", &c])
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn wickd"),
    );
    assert!(
        wait_until(Duration::from_secs(15), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "did not start with an expired certificate: {}",
        said_in(d.path())
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let said = said_in(d.path());
            said.contains(&pem) && said.to_lowercase().contains("expired")
        }),
        "no warning naming {pem}: {}",
        said_in(d.path())
    );
    // Served; a verifying client refuses it, as it should.
    let ca_file = d.path().join("ca.pem");
    let (code, r, err) = curl_https(port, "a.test", "/index.html", &ca_file, &["-k"]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    let (code, _, _) = curl_https(port, "a.test", "/index.html", &ca_file, &[]);
    assert_ne!(code, Some(0), "curl accepted an expired certificate");
    drop(server);
}

/// What a server started by hand in `d` said: its stderr and its error log.
fn said_in(d: &Path) -> String {
    format!(
        "{}{}",
        std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
        std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
    )
}

/// A server process started by hand, stopped (SIGTERM, then SIGKILL) on drop.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let gone = wait_until(Duration::from_secs(5), || {
            self.0.try_wait().ok().flatten().is_some()
        });
        if !gone {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// 10. Keys only root can read, workers as nobody

#[test]
fn root_only_keys_serve_with_server_username_nobody() {
    if common::skip_unless_root("root_only_keys_serve_with_server_username_nobody") {
        return;
    }
    let body = r#"server.username = "nobody"
ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/s.crt"
    ssl.privkey = "@DIR@/s.key"
}
"#;
    let site = start_site(&conf("", body), |d, ca| {
        let l = ca.server(&["a.test"]);
        std::fs::write(d.join("s.crt"), &l.cert_pem).expect("crt");
        std::fs::write(d.join("s.key"), &l.key_pem).expect("key");
        for f in ["a.pem", "s.key"] {
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600))
                .expect("chmod 600");
        }
        // The directory open to nobody (the document root), the keys not.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // lighttpd opens its error log after dropping privileges: the same config
        // must start there too.
        let log = d.join("error.log");
        std::fs::write(&log, "").expect("error.log");
        let nobody = nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .expect("nobody");
        nix::unistd::chown(&log, Some(nobody.uid), Some(nobody.gid)).expect("chown error.log");
    });
    started(&site.s);
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("nobody");
    // The workers really are nobody, who cannot open the keys.
    let ws = workers(&site.s);
    assert!(!ws.is_empty());
    for w in &ws {
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("");
        assert_eq!(uid, nobody.uid.to_string(), "worker {w}: {status}");
    }
    for (port, what) in [(site.s.port, "a.pem 0600"), (site.tls_port, "s.key 0600")] {
        let (code, r, err) = curl_https(port, "a.test", "/index.html", &site.ca_file(), &[]);
        assert_eq!(
            (code, r.status),
            (Some(0), 200),
            "{what}: {err}\n{}",
            site.s.error_log()
        );
        assert_eq!(r.text(), INDEX);
    }
    // A reload reads them again as root.
    reload(&site.s, true);
    let (code, r, err) = curl_https(site.tls_port, "a.test", "/index.html", &site.ca_file(), &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "after reload: {err}\n{}",
        site.s.error_log()
    );
}

// ---------------------------------------------------------------------------
// 11, 12. Big bodies, slow readers, keep-alive, pipelining, vanishing clients

const BIG: usize = 3 * 1024 * 1024 + 12_345;

/// A TLS server with big.bin (`BIG` bytes) in its document root; `extra` config.
fn big_site(extra: &str) -> (Site, Vec<u8>) {
    let data = pattern(BIG);
    let d2 = data.clone();
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{extra}")), move |d, _| {
        std::fs::write(d.join("www/big.bin"), &d2).expect("big")
    });
    (site, data)
}

#[test]
fn a_big_file_arrives_intact_over_tls() {
    let (site, data) = big_site("");
    for v in [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2] {
        let r = tls_kit::get(
            site.tls_port,
            "a.test",
            &site.verifying(Some(v)),
            "/big.bin",
        )
        .expect("response");
        assert_eq!(r.status, 200, "{v:?}");
        assert_eq!(r.body.len(), data.len(), "{v:?}");
        assert!(r.body == data, "{v:?}: the body differs");
    }
    let (code, r, err) = site.curl("a.test", "/big.bin", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    assert!(
        r.body == data,
        "curl's copy differs ({} bytes)",
        r.body.len()
    );
}

#[test]
fn a_big_file_arrives_intact_to_a_slow_reader() {
    let (site, data) = big_site("");
    let mut sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
    // A small receive buffer (above loopback's MSS, or the window opens by
    // persist-timer probes only) and small, spaced reads: the server's writes
    // block mid-record again and again.
    nix::sys::socket::setsockopt(
        &sess.conn.s.sock,
        nix::sys::socket::sockopt::RcvBuf,
        &131072,
    )
    .expect("SO_RCVBUF");
    sess.conn
        .send(b"GET /big.bin HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let t = Instant::now();
    loop {
        match sess.conn.s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "stalled: {} bytes",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = common::parse_response(&got);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "the body differs");
}

#[test]
fn keep_alive_and_pipelining_over_one_tls_connection() {
    let site = start_site(&conf("", GLOBAL_TLS), |d, _| {
        std::fs::write(d.join("www/two.txt"), "two\n").expect("two")
    });
    let mut sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
    for i in 0..5 {
        sess.conn
            .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let r = sess
            .conn
            .response()
            .unwrap_or_else(|| panic!("request {i}"));
        assert_eq!((r.status, r.text().as_str()), (200, INDEX), "request {i}");
    }
    // Three requests in one write (one TLS record).
    sess.conn.send(
        b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n\
          HEAD /two.txt HTTP/1.1\r\nHost: a.test\r\n\r\n\
          GET /two.txt HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    );
    let r = sess.conn.response().expect("pipelined 1");
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    let r = sess.conn.response_to(true).expect("pipelined 2 (HEAD)");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("4"));
    let r = sess.conn.response().expect("pipelined 3");
    assert_eq!((r.status, r.text().as_str()), (200, "two\n"));
    assert!(sess.conn.closed(), "Connection: close was not honoured");
}

/// Read a TLS session to its end: (bytes, ended by close_notify).
fn read_to_close(sess: &mut tls_kit::Session) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let t = Instant::now();
    loop {
        match sess.conn.s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return (got, false),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no end after {} bytes",
            got.len()
        );
    }
}

#[test]
fn a_closing_response_ends_with_close_notify() {
    // lighttpd shuts TLS down (SSL_shutdown) before it closes: a body that ends
    // with the connection is told apart from a truncated one. OpenSSL 3 clients
    // (curl) fail a close-delimited body that ends without it.
    let body = format!("{GLOBAL_TLS}cgi.assign = (\".sh\" => \"/bin/sh\")\n");
    let site = start_site(&conf(", \"mod_cgi\"", &body), |d, _| {
        // No Content-Length: to an HTTP/1.0 client the body ends with the
        // connection.
        write_script(
            d,
            "nolen.sh",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho one; echo two\n",
        );
    });
    let mut failures: Vec<String> = Vec::new();
    for (what, req) in [
        (
            "static, Connection: close",
            "GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        ),
        ("static, HTTP/1.0", "GET /index.html HTTP/1.0\r\n\r\n"),
        (
            "CGI without a length, HTTP/1.0",
            "GET /nolen.sh HTTP/1.0\r\n\r\n",
        ),
    ] {
        // Every case runs; the failures are reported together.
        let mut sess =
            handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
        sess.conn.send(req.as_bytes());
        let (got, clean) = read_to_close(&mut sess);
        let r = common::parse_response(&got);
        assert_eq!(r.status, 200, "{what}");
        if !clean {
            failures.push(format!("{what}: closed without close_notify"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn requests_arrive_in_tls_records_of_any_size() {
    let body = format!("{GLOBAL_TLS}cgi.assign = (\".sh\" => \"/bin/sh\")\n");
    let site = start_site(&conf(", \"mod_cgi\"", &body), |d, _| {
        write_script(
            d,
            "echo.sh",
            "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat\n",
        );
    });
    // One byte per record: the head arrives in 40-odd records.
    let mut sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
    for b in b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n" {
        sess.conn.send(&[*b]);
    }
    let r = sess
        .conn
        .response()
        .expect("response to a byte-per-record request");
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    // 300 requests in one write: records full of requests, more plaintext at once
    // than any one read of the server takes; none may be left waiting for an
    // edge that never comes.
    let n = 300;
    let burst = "GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n".repeat(n);
    sess.conn.send(burst.as_bytes());
    for i in 0..n {
        let r = sess
            .conn
            .response()
            .unwrap_or_else(|| panic!("pipelined response {i} of {n}"));
        assert_eq!(r.status, 200, "pipelined response {i}");
    }
    // A 300 KB body with a request behind it, in one write.
    let data = pattern(300 * 1000);
    let mut req = format!(
        "POST /echo.sh HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    req.extend_from_slice(&data);
    req.extend_from_slice(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    sess.conn.send(&req);
    let (got, _) = read_to_close(&mut sess);
    let text = String::from_utf8_lossy(&got);
    let first = common::parse_response(&got);
    assert_eq!(first.status, 200, "{}", site.s.error_log());
    // The script's answer, chunked or with a length (lighttpd sets one when the
    // script ended before the head went out), then the second response.
    let at = common::find(&got, b"\r\n\r\n").map_or(0, |h| h + 4);
    let (echoed, used) = match first
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => (got[at..(at + len).min(got.len())].to_vec(), len),
        None => dechunk(&got[at..]),
    };
    assert!(
        echoed == data,
        "the echoed body differs ({} bytes)",
        echoed.len()
    );
    let second = common::parse_response(&got[(at + used).min(got.len())..]);
    assert_eq!(
        (second.status, second.text().as_str()),
        (200, INDEX),
        "the request behind the body: {}",
        &text[text.len().saturating_sub(400)..]
    );
}

/// A chunked body at the start of `b`: (data, bytes it took including the last
/// chunk and its CRLF). A malformed one ends early (the test then fails on it).
fn dechunk(b: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(eol) = common::find(&b[i..], b"\r\n") {
        let size = std::str::from_utf8(&b[i..i + eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else { break };
        i += eol + 2;
        if size == 0 {
            // No trailers from a CGI script: the final CRLF.
            return (out, i + 2);
        }
        if i + size + 2 > b.len() {
            break;
        }
        out.extend_from_slice(&b[i..i + size]);
        i += size + 2;
    }
    (out, i)
}

#[test]
fn a_request_followed_by_close_notify_is_answered() {
    // A TLS half-close (RFC 8446 6.1): the client has said all it will; the
    // response still comes, as from lighttpd. (A bare TCP FIN instead draws a
    // decode_error alert and no response from lighttpd's OpenSSL; wickd answers;
    // neither is asserted.)
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    for v in [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2] {
        let mut sess =
            handshake(site.tls_port, "a.test", &site.verifying(Some(v))).expect("handshake");
        sess.conn
            .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
        sess.conn.s.conn.send_close_notify();
        let _ = sess.conn.s.conn.complete_io(&mut sess.conn.s.sock);
        let r = sess.conn.response();
        assert_eq!(
            r.map(|r| (r.status, r.text())),
            Some((200, INDEX.to_string())),
            "{v:?}: no response after the client's close_notify"
        );
        // As after a FIN on a plain connection: closed at once, not kept until
        // an idle timeout.
        let t = Instant::now();
        let closed = sess.conn.closed();
        let after = t.elapsed();
        assert!(
            closed && after < Duration::from_secs(2),
            "{v:?}: closed {closed} after {after:?} once the client sent close_notify"
        );
    }
}

#[test]
fn a_client_vanishing_mid_response_does_not_hurt_the_server() {
    let (site, data) = big_site("");
    started(&site.s);
    let before = workers(&site.s);
    for i in 0..5 {
        let mut sess = handshake(site.tls_port, "a.test", &site.verifying(None))
            .unwrap_or_else(|e| panic!("round {i}: {e}"));
        sess.conn
            .send(b"GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let mut buf = [0u8; 65536];
        let n = sess.conn.s.read(&mut buf).expect("first bytes");
        assert!(n > 0);
        // Gone: a reset rather than a close_notify (SO_LINGER 0).
        nix::sys::socket::setsockopt(
            &sess.conn.s.sock,
            nix::sys::socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .expect("SO_LINGER");
        drop(sess);
    }
    // And one that half-closes after the request, then leaves unread.
    {
        let mut sess =
            handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
        sess.conn
            .send(b"GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let _ = sess.conn.s.sock.shutdown(std::net::Shutdown::Write);
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = tls_kit::get(site.tls_port, "a.test", &site.verifying(None), "/big.bin")
        .expect("the next request");
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    assert_eq!(
        workers(&site.s),
        before,
        "a worker died: {}",
        site.s.error_log()
    );
}

#[test]
fn a_tls_download_in_flight_survives_a_reload() {
    // A slow client needs more than the default 8 s of drain; lighttpd aborts
    // what is still open at the deadline, and so may wickd.
    let (site, data) =
        big_site("server.feature-flags = (\"server.graceful-shutdown-timeout\" => 60)\n");
    started(&site.s);
    let mut sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
    nix::sys::socket::setsockopt(&sess.conn.s.sock, nix::sys::socket::sockopt::RcvBuf, &65536)
        .expect("SO_RCVBUF");
    sess.conn
        .send(b"GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let n = sess.conn.s.read(&mut buf).expect("first bytes");
    got.extend_from_slice(&buf[..n]);
    // The old generation drains while this client reads on, slowly.
    let old = workers(&site.s);
    site.s.signal(Signal::SIGUSR1);
    let t = Instant::now();
    loop {
        match sess.conn.s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
        if common::find(&got, b"\r\n\r\n").is_some_and(|h| got.len() >= h + 4 + BIG) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "stalled at {} bytes",
            got.len()
        );
        if got.len() % (256 * 1024) < 16384 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let r = common::parse_response(&got);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len(), "{}", site.s.error_log());
    assert!(r.body == data, "the body differs");
    assert!(
        wait_until(Duration::from_secs(20), || workers(&site.s)
            .iter()
            .any(|w| !old.contains(w))),
        "no new generation: {}",
        site.s.error_log()
    );
    // Drained: the keep-alive connection is closed, not served by the old worker.
    let next = sess
        .conn
        .s
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .ok()
        .and_then(|()| sess.conn.response());
    assert!(
        next.as_ref()
            .is_none_or(|r| r.header("Connection") == Some("close")),
        "an old worker serves on after the reload: {:?}",
        next.map(|r| r.head)
    );
    let (code, r, err) = site.curl("a.test", "/index.html", &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
}

#[test]
fn a_big_upload_over_tls_reaches_cgi_intact() {
    let body = format!("{GLOBAL_TLS}cgi.assign = (\".sh\" => \"/bin/sh\")\n");
    let data = pattern(2 * 1024 * 1024 + 777);
    let d2 = data.clone();
    let site = start_site(&conf(", \"mod_cgi\"", &body), move |d, _| {
        write_script(
            d,
            "echo.sh",
            "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat\n",
        );
        std::fs::write(d.join("up.bin"), &d2).expect("upload file");
    });
    let up = format!("@{}", site.path("up.bin").display());
    let (code, r, err) = site.curl(
        "a.test",
        "/echo.sh",
        &[
            "--data-binary",
            &up,
            "-H",
            "Content-Type: application/octet-stream",
        ],
    );
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "the echoed body differs");
}

#[test]
fn many_concurrent_tls_clients_are_all_served() {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    let port = site.tls_port;
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for t in 0..32 {
            // Half TLS 1.2, half 1.3; each its own session store (full handshakes).
            let v = if t % 2 == 0 {
                ProtocolVersion::TLSv1_2
            } else {
                ProtocolVersion::TLSv1_3
            };
            let cfg = site.verifying(Some(v));
            let errors = &errors;
            sc.spawn(move || {
                let mut sess = match handshake(port, "a.test", &cfg) {
                    Ok(s) => s,
                    Err(e) => return errors.lock().expect("lock").push(format!("#{t}: {e}")),
                };
                for i in 0..4 {
                    let ok = sess
                        .conn
                        .s
                        .write_all(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n")
                        .ok()
                        .and_then(|()| sess.conn.response())
                        .is_some_and(|r| r.status == 200 && r.body == INDEX.as_bytes());
                    if !ok {
                        errors
                            .lock()
                            .expect("lock")
                            .push(format!("#{t} request {i}"));
                        return;
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().expect("lock");
    assert!(errors.is_empty(), "{errors:?}\n{}", site.s.error_log());
}
