//! Bytes over TLS: big files (fast and slow readers), keep-alive and pipelining,
//! requests in records of any size, uploads, many clients at once.

use super::*;

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
    // The same body chunked (no Content-Length).
    let (code, r, err) = site.curl(
        "a.test",
        "/echo.sh",
        &[
            "--data-binary",
            &up,
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Transfer-Encoding: chunked",
            // (chunked is HTTP/1.1's; over h2, which lighttpd offers, curl refuses it)
            "--http1.1",
        ],
    );
    assert_eq!((code, r.status), (Some(0), 200), "chunked: {err}");
    assert!(
        r.body == data,
        "the echoed chunked body differs ({} bytes)",
        r.body.len()
    );
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

#[test]
fn ranges_of_a_big_file_over_tls() {
    let (site, data) = big_site("");
    let mut sess = handshake(site.tls_port, "a.test", &site.verifying(None)).expect("handshake");
    for (range, from, to) in [
        ("bytes=1000000-1999999", 1_000_000, 2_000_000),
        ("bytes=0-0", 0, 1),
        (&format!("bytes={}-", BIG - 70_000)[..], BIG - 70_000, BIG),
        ("bytes=-5000", BIG - 5000, BIG),
    ] {
        sess.conn.send(
            format!("GET /big.bin HTTP/1.1\r\nHost: a.test\r\nRange: {range}\r\n\r\n").as_bytes(),
        );
        let r = sess.conn.response().unwrap_or_else(|| panic!("{range}"));
        assert_eq!(r.status, 206, "{range}: {}", r.head);
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {from}-{}/{BIG}", to - 1).as_str()),
            "{range}"
        );
        assert!(r.body == data[from..to], "{range}: the bytes differ");
    }
}

#[test]
fn a_tls13_key_update_mid_connection_keeps_serving() {
    // KeyUpdate (RFC 8446 4.6.3) from the client between requests, requesting
    // one back: the server must take it in its stride, as lighttpd's OpenSSL does.
    let site = start_site(&conf("", GLOBAL_TLS), |_, _| {});
    let mut sess = handshake(
        site.tls_port,
        "a.test",
        &site.verifying(Some(ProtocolVersion::TLSv1_3)),
    )
    .expect("handshake");
    for i in 0..3 {
        sess.conn
            .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let r = sess
            .conn
            .response()
            .unwrap_or_else(|| panic!("request {i}: {}", site.s.error_log()));
        assert_eq!((r.status, r.text().as_str()), (200, INDEX), "request {i}");
        sess.conn
            .s
            .conn
            .refresh_traffic_keys()
            .expect("KeyUpdate queued");
    }
}

#[test]
fn compressed_responses_over_tls_from_memory_cache_and_cgi() {
    // mod_deflate's bodies take other paths to the socket (a compressed buffer, a
    // cache file sent from its fd, a compressed CGI stream); each must go through
    // the TLS layer whole.
    let body = format!(
        "{GLOBAL_TLS}server.modules += (\"mod_deflate\", \"mod_cgi\")\n\
         mimetype.assign = (\".html\" => \"text/html\", \".sh\" => \"text/plain\")\n\
         deflate.mimetypes = (\"text/\")\n\
         deflate.allowed-encodings = (\"br\", \"gzip\", \"zstd\")\n\
         deflate.cache-dir = \"@DIR@/cache\"\n\
         cgi.assign = (\".sh\" => \"/bin/sh\")\n"
    );
    // Text that compresses, but not to nothing.
    let words = [
        "alpha ",
        "beta ",
        "<p>",
        "</p>",
        "gamma ",
        "<div class=\"x\">",
        "</div>",
    ];
    let html: Vec<u8> = pattern(200_000)
        .iter()
        .flat_map(|b| words[*b as usize % words.len()].bytes())
        .take(300_000)
        .collect();
    let h2 = html.clone();
    let site = start_site(&conf("", &body), move |d, _| {
        std::fs::create_dir_all(d.join("cache")).expect("cache dir");
        std::fs::write(d.join("www/page.html"), &h2).expect("page");
        std::fs::write(d.join("www/page.txt"), &h2).expect("page copy");
        write_script(
            d,
            "cat.sh",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec cat page.txt\n",
        );
    });
    for coding in ["gzip", "br", "zstd"] {
        // Twice: compressed on the first request, from deflate.cache-dir after.
        for round in ["first", "cached"] {
            let (code, r, err) = site.curl(
                "a.test",
                "/page.html",
                &["--compressed", "-H", &format!("Accept-Encoding: {coding}")],
            );
            assert_eq!((code, r.status), (Some(0), 200), "{coding} {round}: {err}");
            assert_eq!(
                r.header("content-encoding"),
                Some(coding),
                "{coding} {round}"
            );
            assert!(
                r.body == html,
                "{coding} {round}: decodes to {} bytes",
                r.body.len()
            );
        }
    }
    fn files_under(p: &Path) -> usize {
        std::fs::read_dir(p).map_or(0, |rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => files_under(&e.path()),
                    _ => 1,
                })
                .sum()
        })
    }
    assert!(
        files_under(&site.path("cache")) > 0,
        "nothing in deflate.cache-dir"
    );
    let (code, r, err) = site.curl(
        "a.test",
        "/cat.sh",
        &["--compressed", "-H", "Accept-Encoding: gzip"],
    );
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "CGI: {err}\n{}",
        site.s.error_log()
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"), "CGI");
    assert!(r.body == html, "CGI: decodes to {} bytes", r.body.len());
}
