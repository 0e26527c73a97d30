//! Certificates chosen by SNI ($HTTP["host"] blocks) and by ssl.acme-tls-1, and
//! the OCSP response stapled to them (ssl.stapling-file).

use super::*;

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

/// A DER OCSP response "good" for `leaf`, signed by `ca` (openssl ocsp with an
/// index file, as a small CA would run it), written to `dir/name`.
fn ocsp_response(dir: &Path, ca: &Ca, leaf: &Leaf, name: &str) {
    let w = dir.join("ocsp-work");
    std::fs::create_dir_all(&w).expect("ocsp dir");
    ca.write(&w.join("ca.pem"));
    std::fs::write(w.join("ca.key"), ca.key_pem()).expect("ca key");
    std::fs::write(w.join("leaf.pem"), &leaf.cert_pem).expect("leaf");
    let mut serial = format!("{:X}", leaf.serial);
    if serial.len() % 2 == 1 {
        serial.insert(0, '0');
    }
    std::fs::write(
        w.join("index.txt"),
        format!("V\t300101000000Z\t\t{serial}\tunknown\t/CN=a.test\n"),
    )
    .expect("index");
    let out = Command::new("openssl")
        .current_dir(&w)
        .args([
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.pem",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.pem",
            "-issuer",
            "ca.pem",
            "-cert",
            "leaf.pem",
            "-ndays",
            "7",
            "-no_nonce",
            "-respout",
        ])
        .arg(dir.join(name))
        .output()
        .expect("openssl ocsp");
    assert!(
        out.status.success(),
        "openssl ocsp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ssl_stapling_file_is_stapled() {
    let body = format!("{GLOBAL_TLS}ssl.stapling-file = \"@DIR@/ocsp.der\"\n");
    let site = start_site(&conf("", &body), |d, ca| {
        let leaf = ca.server(&["a.test"]);
        leaf.write_pem(&d.join("a.pem"));
        ocsp_response(d, ca, &leaf, "ocsp.der");
    });
    let want = std::fs::read(site.path("ocsp.der")).expect("ocsp.der");
    for v in [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2] {
        let sink = Arc::new(std::sync::Mutex::new(Vec::new()));
        let cfg = client_config(&ClientSpec {
            version: Some(v),
            ocsp: Some(sink.clone()),
            ..ClientSpec::default()
        });
        handshake(site.tls_port, "a.test", &cfg)
            .unwrap_or_else(|e| panic!("{v:?}: {e}\n{}", site.s.error_log()));
        let got = sink.lock().expect("sink").clone();
        assert!(
            got == want,
            "{v:?}: stapled {} bytes, the file has {}",
            got.len(),
            want.len()
        );
    }
    let out = s_client(
        site.tls_port,
        "a.test",
        &site.ca_file(),
        None,
        None,
        &["-status"],
    );
    assert!(out.contains("Cert Status: good"), "{out}");
}
