//! SIGUSR1 with TLS: a renewed certificate served, a broken one refused (the old
//! one serving on), a download in flight kept.

use super::*;

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
