//! How TLS connections end: plain HTTP on the TLS port, stalled handshakes,
//! close_notify both ways, clients that vanish.

use super::*;

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
