//! HTTPS with ssl.pemfile (global, socket block, ssl.privkey, chains, key formats), TLS 1.2 and 1.3,
//! ssl-conf-cmd MinProtocol, ssl.cipher-list, ALPN.

use super::*;

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
fn alpn_offers_h2_then_http_1_1_and_http_1_0_is_accepted() {
    // h2 is chosen when offered (tests/h2 speaks it); a client offering
    // http/1.1 alone gets HTTP/1.1.
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    let h2 = client_config(&ClientSpec {
        ca: Some(&site.ca),
        alpn: &["h2", "http/1.1"],
        ..ClientSpec::default()
    });
    let sess = handshake(site.tls_port, "a.test", &h2).expect("handshake");
    assert_eq!(sess.alpn.as_deref(), Some(&b"h2"[..]));
    let cfg = client_config(&ClientSpec {
        ca: Some(&site.ca),
        alpn: &["http/1.1"],
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

#[test]
fn a_tls_socket_on_ipv6_loopback() {
    let body = r#"$SERVER["socket"] == "[::1]:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/a.pem"
}
"#;
    let site = start_site(&conf("", body), |_, _| {});
    let at = (std::net::Ipv6Addr::LOCALHOST, site.tls_port).into();
    let mut sess = tls_kit::handshake_at(at, "a.test", &site.verifying(None))
        .unwrap_or_else(|e| panic!("[::1]: {e}\n{}", site.s.error_log()));
    sess.conn
        .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
    let r = sess.conn.response().expect("response over [::1]");
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    // The IPv4 main port stays plain.
    assert_eq!(site.s.get("/index.html").status, 200);
}
