//! mod_proxy through the real server: to a second wickd serving static files
//! (over TCP and a unix socket, with map-urlpath), and to backends of the tests'
//! own (tests/common/httpd.rs: the request as received, chosen answers;
//! tests/common/websocket.rs: a WebSocket echo server). The request head as
//! lighttpd 1.4.69 sends it (X-Forwarded-*, Forwarded, remapping, hop-by-hop
//! fields removed both ways), request bodies (Content-Length and chunked),
//! response framings, a large response to a slow client with the worker's memory
//! bounded, failover and 503, a backend killed mid-response, 504 and 502, a
//! WebSocket conversation through "upgrade" with half-closes, pipelined
//! requests, and HTTP/2 streams (no upgrade there, nothing broken).

mod common;
#[path = "common/h2.rs"]
mod h2c;
#[path = "common/httpd.rs"]
mod httpd;
#[path = "common/websocket.rs"]
mod websocket;

use common::wire::Conn;
use common::{curl, free_port, wait_until, Server};
use httpd::Backend;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A front server with mod_proxy and `keys`.
fn front(keys: &str) -> Server {
    Server::start(&format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_proxy")
{keys}
"#
    ))
}

fn host(port: u16) -> String {
    format!("( \"host\" => \"127.0.0.1\", \"port\" => {port} )")
}

/// A wickd serving static files: hello.txt, sub/index.html, big (`big` bytes).
fn static_backend(bind: &str, big: usize) -> Server {
    let conf = format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "{bind}"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
index-file.names = ("index.html")
"#
    );
    Server::start_with(&conf, &[], |dir| {
        let www = dir.join("www");
        std::fs::create_dir_all(www.join("sub")).expect("mkdir");
        std::fs::write(www.join("hello.txt"), "hello from the backend\n").expect("write");
        std::fs::write(www.join("sub/index.html"), "sub index\n").expect("write");
        if big > 0 {
            std::fs::write(www.join("big"), vec![b'z'; big]).expect("write");
        }
    })
}

/// Resident memory of these processes, KiB.
fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|st| {
            st.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

/// Lines of a recorded request head (up to its body).
fn head_lines(rec: &str) -> Vec<String> {
    rec.split("--body--")
        .next()
        .unwrap_or("")
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn static_backend_with_map_urlpath() {
    let be = static_backend("127.0.0.1", 0);
    let s = front(&format!(
        "proxy.server = ( \"/front/\" => ( {} ) )\n\
         proxy.header = ( \"map-urlpath\" => ( \"/front/\" => \"/\" ) )",
        host(be.port)
    ));
    let r = s.get("/front/hello.txt");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hello from the backend\n");
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    // The backend's relative redirect for a directory comes back in the
    // client's space.
    let r = s.get("/front/sub");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/front/sub/"));
    assert_eq!(s.get("/front/sub/").text(), "sub index\n");
    assert_eq!(s.get("/front/none").status, 404);
    // Conditional requests pass both ways.
    let etag = s.get("/front/hello.txt").header("etag").map(str::to_string);
    let etag = etag.expect("etag");
    let r = curl(
        &s.url("/front/hello.txt"),
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert_eq!(r.status, 304);
    // HEAD: the head, no body, the length kept.
    let mut c = Conn::new(s.port);
    c.send(b"HEAD /front/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response_to(true).expect("head");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("23"));
    // ... and the connection goes on.
    c.send(b"GET /front/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        c.response().expect("get").text(),
        "hello from the backend\n"
    );
    // Paths outside the prefix are not proxied.
    assert_eq!(s.get("/hello.txt").status, 404);
}

#[test]
fn a_backend_on_a_unix_socket() {
    let d = common::TempDir::new();
    let sock = d.path().join("be.sock");
    let be = Server::start_with(
        &format!(
            "server.document-root = \"@DOCROOT@\"\nserver.port = @PORT@\n\
             $SERVER[\"socket\"] == \"{}\" {{ }}\n",
            sock.display()
        ),
        &[],
        |dir| {
            std::fs::write(dir.join("www/hello.txt"), "over a unix socket\n").expect("write");
        },
    );
    assert!(wait_until(Duration::from_secs(5), || sock.exists()));
    let s = front(&format!(
        "proxy.server = ( \"\" => ( ( \"socket\" => \"{}\" ) ) )",
        sock.display()
    ));
    let r = s.get("/hello.txt");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "over a unix socket\n");
    drop(be);
}

/// The head the backend gets, as lighttpd 1.4.69 sends it for the same request
/// (observed), but for the hop-by-hop fields it passes on.
#[test]
fn the_request_head_with_forwarding_fields_and_remapping() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/front\" => ( {} ) )\n\
         proxy.header = ( \"map-urlpath\" => ( \"/front\" => \"/back\" ),\n\
                          \"map-host-request\" => ( \"-\" => \"back.example\" ),\n\
                          \"map-host-response\" => ( \"-\" => \"-\" ) )\n\
         proxy.forwarded = ( \"for\" => 1, \"proto\" => 1, \"host\" => 1, \"by\" => 1 )",
        host(be.port)
    ));
    let port = s.port;
    let mut c = Conn::new(port);
    c.send(
        format!(
            "GET /front/a/%7e/../b?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: t\r\n\
             Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\n\
             Trailer: X-T\r\nProxy-Connection: x\r\nProxy: y\r\nUpgrade: websocket\r\n\
             X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.response().expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = head_lines(&r.text());
    let want = [
        "GET /back/a/b?q=1 HTTP/1.1".to_string(),
        "Host: back.example".to_string(),
        "User-Agent: t".to_string(),
        "TE: trailers".to_string(),
        "X-Forwarded-For: 1.2.3.4, 127.0.0.1".to_string(),
        "X-Forwarded-Proto: http".to_string(),
        format!(
            "Forwarded: for=\"1.2.3.4\", for=127.0.0.1;by=\"127.0.0.1:{port}\";proto=http;host=\"127.0.0.1:{port}\""
        ),
        format!("X-Host: 127.0.0.1:{port}"),
        format!("X-Forwarded-Host: 127.0.0.1:{port}"),
        "Connection: close, te".to_string(),
    ];
    assert_eq!(lines, want, "{}", r.text());
    // No Host (HTTP/1.0): an HTTP/1.0 request, and the keep-alive client's
    // connection still works.
    let r = common::wire::exchange(port, b"GET /front/x HTTP/1.0\r\n\r\n").expect("1.0");
    let lines = head_lines(&r.text());
    assert_eq!(lines[0], "GET /back/x HTTP/1.0");
    assert!(!lines.iter().any(|l| l.starts_with("Host:")), "{lines:?}");
}

#[test]
fn response_remapping_and_hop_by_hop_fields() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/front\" => ( {} ) )\n\
         proxy.header = ( \"map-urlpath\" => ( \"/front\" => \"/back\" ),\n\
                          \"map-host-request\" => ( \"-\" => \"back.example\" ),\n\
                          \"map-host-response\" => ( \"-\" => \"-\" ) )",
        host(be.port)
    ));
    let port = s.port;
    let mut c = Conn::new(port);
    c.send(
        format!("GET /front/r?mode=remap HTTP/1.1\r\nHost: front.example:{port}\r\n\r\n")
            .as_bytes(),
    );
    let r = c.response().expect("remap");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("http://front.example:{port}/front/there?x=1").as_str())
    );
    assert_eq!(r.header("content-location"), Some("/front/here"));
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        cookies,
        [
            format!("a=1; Path=/front/p; Domain=front.example:{port}").as_str(),
            "b=2; path=/other"
        ]
    );
    // Hop-by-hop fields of the backend's answer stop here.
    c.send(b"GET /front/h?mode=hop HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response().expect("hop");
    assert_eq!(r.text(), "hop");
    for f in [
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "upgrade",
        "te",
    ] {
        assert!(r.header(f).is_none(), "{f} passed: {}", r.head);
    }
    assert_eq!(r.header("x-end-to-end"), Some("kept"));
    assert!(c.alive(), "the backend's Connection is not the client's");
}

#[test]
fn request_bodies_content_length_and_chunked() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )",
        host(be.port)
    ));
    let body = "x".repeat(300_000);
    let file = s.dir.path().join("body");
    std::fs::write(&file, &body).expect("write");
    let at = format!("@{}", file.display());
    let r = curl(
        &s.url("/post"),
        &["--data-binary", &at, "-H", "Content-Type: text/plain"],
    );
    assert_eq!(r.status, 200);
    let got = r.text();
    assert!(
        got.starts_with("POST /post HTTP/1.1\r\n"),
        "{}",
        &got[..200]
    );
    assert!(got.contains("\r\nContent-Length: 300000\r\n"));
    assert!(got.ends_with(&format!("--body--\r\n{body}")));
    // Chunked: collected, then sent with its length, as lighttpd sends it.
    let mut c = Conn::new(s.port);
    c.send(
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    let r = c.response().expect("chunked");
    let got = r.text();
    assert!(got.contains("\r\nContent-Length: 11\r\n"), "{got}");
    assert!(
        !got.to_ascii_lowercase().contains("transfer-encoding"),
        "{got}"
    );
    assert!(got.ends_with("--body--\r\nhello world"), "{got}");
    // A POST without a body says so.
    c.send(b"POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let got = c.response().expect("empty").text();
    assert!(got.contains("\r\nContent-Length: 0\r\n"), "{got}");
}

#[test]
fn response_framings() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )",
        host(be.port)
    ));
    let mut c = Conn::new(s.port);
    // A chunked answer is relayed (whole within a second: with its length).
    c.send(b"GET /c?mode=chunked&n=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response().expect("chunked");
    assert_eq!(r.body, vec![b'y'; 5000]);
    // Up to the close: framed for the client, the connection kept.
    c.send(b"GET /c?mode=close HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response().expect("close");
    assert_eq!(r.text(), "until the close");
    // A head that comes in pieces.
    c.send(b"GET /c?mode=split HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response().expect("split");
    assert_eq!(
        (r.text().as_str(), r.header("x-split")),
        ("split", Some("yes"))
    );
    // 100 Continue from the backend is not relayed; the final answer is.
    c.send(b"GET /c?mode=continue HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response().expect("continue");
    assert_eq!((r.status, r.text().as_str()), (201, "ok"));
    assert!(c.alive());
}

/// A 64 MiB file from the static backend to a client that reads slowly: it
/// all arrives, and the worker's memory stays bounded (the backend is not read
/// while the client's output is full).
#[test]
fn a_large_response_to_a_slow_client() {
    const BIG: usize = 64 << 20;
    let be = static_backend("127.0.0.1", BIG);
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )",
        host(be.port)
    ));
    let workers = s.children();
    let rss = || rss_kib(&workers);
    assert_eq!(s.get("/hello.txt").status, 200);
    let before = rss();
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    std::thread::sleep(Duration::from_millis(800));
    let mut peak = rss();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    let mut head = Vec::new();
    let t = Instant::now();
    loop {
        let n = c.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        if head.len() < 4096 && common::find(&head, b"\r\n\r\n").is_none() {
            head.extend_from_slice(&buf[..n]);
        }
        got += n;
        // Slow: about 64 MiB in a few seconds, with pauses.
        if got % (4 << 20) < n {
            std::thread::sleep(Duration::from_millis(100));
            peak = peak.max(rss());
        }
        assert!(t.elapsed() < Duration::from_secs(60), "too slow");
    }
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains(&format!("\r\nContent-Length: {BIG}\r\n")),
        "{text}"
    );
    let head_len = common::find(&head, b"\r\n\r\n").expect("head") + 4;
    assert_eq!(got - head_len, BIG);
    eprintln!("worker RSS: {before} KiB before, {peak} KiB at most");
    assert!(
        peak < before + 16 * 1024,
        "worker RSS grew from {before} KiB to {peak} KiB"
    );
}

#[test]
fn a_backend_that_is_down_fails_over_then_503() {
    let be = Backend::start();
    let dead = free_port();
    let s = front(&format!(
        "proxy.server = ( \"/both\" => ( {}, {} ), \"/dead\" => ( {} ) )\n\
         proxy.balance = \"round-robin\"",
        host(dead),
        host(be.port),
        host(dead)
    ));
    for _ in 0..4 {
        let r = s.get("/both/x");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(s.get("/dead/x").status, 503);
    assert!(
        wait_until(Duration::from_secs(2), || {
            let log = s.error_log();
            log.contains(&format!(
                "mod_proxy: connect to backend 127.0.0.1:{dead} failed"
            )) && log.contains("no backend left to try")
        }),
        "{}",
        s.error_log()
    );
}

/// The backend wickd is killed while its large answer is on the way: the client's
/// connection is cut, not ended as if the answer were whole.
#[test]
fn a_backend_killed_mid_response_cuts_the_client() {
    const BIG: usize = 64 << 20;
    let mut be = static_backend("127.0.0.1", BIG);
    // Mode 2: the response is relayed with backpressure, so the backend is still
    // sending when it dies (modes 0 and 1 may have taken it all into a file).
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )\nserver.stream-response-body = 2",
        host(be.port)
    ));
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut buf = vec![0u8; 64 << 10];
    let mut got = c.read(&mut buf).expect("first bytes");
    assert!(String::from_utf8_lossy(&buf[..got]).starts_with("HTTP/1.1 200 OK\r\n"));
    let pids: Vec<u32> = be.children().into_iter().chain([be.pid()]).collect();
    for p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = be.wait_exit(Duration::from_secs(5));
    let t = Instant::now();
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the client was not cut"
        );
    }
    assert!(got < BIG, "all of it came ({got} bytes)");
    assert!(
        wait_until(Duration::from_secs(2), || s
            .error_log()
            .contains("closed the connection before the end of the response")),
        "{}",
        s.error_log()
    );
    // The front goes on (the dead backend: 503).
    assert_eq!(s.get("/hello.txt").status, 503);
}

#[test]
fn slow_and_broken_backends_504_and_502() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {}, \"read-timeout\" => 1 ) ) )",
        be.port
    ));
    let t = Instant::now();
    assert_eq!(s.get("/s?mode=slow").status, 504);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(s.get("/b?mode=bad").status, 502);
    // A 101 nobody asked for is no answer to relay.
    assert_eq!(s.get("/w?mode=switch").status, 502);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /d?mode=die HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("part of a body"), "{text}");
    // Cut in a chunked body: the client's chunked framing must not end.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /d?mode=diechunked HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &text[..100.min(text.len())]
    );
    assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n"));
    assert!(raw.len() > 200_000, "{}", raw.len());
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a cut response must not look complete"
    );
    assert!(
        wait_until(Duration::from_secs(2), || {
            let log = s.error_log();
            let name = format!("backend 127.0.0.1:{}", be.port);
            log.contains(&format!("mod_proxy: read timeout on {name}"))
                && log.contains("invalid HTTP status line: garbage")
                && log.contains("101 Switching Protocols to a request that did not ask")
                && log.contains(&format!("{name} closed the connection before the end"))
        }),
        "{}",
        s.error_log()
    );
}

/// The opening handshake through the proxy, frames both ways (one sent right
/// behind the handshake, before the 101), then the client's half-close: its
/// FIN reaches the echo server, whose FIN comes back after the last echo.
#[test]
fn a_websocket_conversation_through_upgrade() {
    let ws = websocket::EchoServer::start();
    let s = front(&format!(
        "proxy.server = ( \"/ws\" => ( {} ) )\nproxy.header = ( \"upgrade\" => \"enable\" )",
        host(ws.port)
    ));
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    out.extend(websocket::frame(1, b"early", Some([1, 2, 3, 4])));
    c.write_all(&out).expect("handshake");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while common::find(&head, b"\r\n\r\n").is_none() {
        c.read_exact(&mut b).expect("101");
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    websocket::assert_switched(&head, key);
    let sent = ws.heads.lock().expect("heads")[0].clone();
    assert!(sent.contains("\r\nUpgrade: websocket\r\n"), "{sent}");
    assert!(
        sent.contains("\r\nConnection: close, upgrade\r\n"),
        "{sent}"
    );
    let (op, p) = websocket::read_frame(&mut c).expect("read").expect("echo");
    assert_eq!((op, &p[..]), (1, &b"early"[..]));
    // A large binary frame: the tunnel moves it in pieces both ways.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let msgs: [&[u8]; 3] = [b"one", &big, b"three"];
    for m in msgs {
        websocket::write_frame(&mut c, 2, m, Some([9, 8, 7, 6])).expect("frame");
    }
    for m in msgs {
        let (op, p) = websocket::read_frame(&mut c).expect("read").expect("echo");
        assert_eq!(op, 2);
        assert!(p == m, "echo of {} bytes differs", m.len());
    }
    // More frames, then the client's half-close: the echoes still come, then
    // the server's FIN.
    websocket::write_frame(&mut c, 1, b"last words", Some([5, 5, 5, 5])).expect("frame");
    c.shutdown(Shutdown::Write).expect("half-close");
    let (_, p) = websocket::read_frame(&mut c).expect("read").expect("echo");
    assert_eq!(p, b"last words");
    let mut rest = Vec::new();
    let n = c.read_to_end(&mut rest).expect("the server's FIN");
    assert_eq!(n, 0, "{rest:?}");
    assert!(wait_until(Duration::from_secs(2), || ws
        .fins
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
}

/// The backend half-closes first: the client reads its FIN (the proxy passed it
/// on) while the tunnel still carries the client's frames up, until the
/// client's own FIN ends it.
#[test]
fn a_tunnel_half_closed_by_the_backend() {
    let ws = websocket::EchoServer::start();
    let s = front(&format!(
        "proxy.server = ( \"/ws\" => ( {} ) )\nproxy.header = ( \"upgrade\" => \"enable\" )",
        host(ws.port)
    ));
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .expect("handshake");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while common::find(&head, b"\r\n\r\n").is_none() {
        c.read_exact(&mut b).expect("101");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    websocket::write_frame(&mut c, 1, b"bye", Some([1, 1, 1, 1])).expect("frame");
    let (_, p) = websocket::read_frame(&mut c).expect("read").expect("echo");
    assert_eq!(p, b"bye");
    // The backend's FIN, while our side is open.
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).expect("the backend's FIN"), 0);
    // Frames still go up.
    websocket::write_frame(&mut c, 1, b"after", Some([2, 2, 2, 2])).expect("frame");
    assert!(
        wait_until(Duration::from_secs(2), || ws
            .got
            .lock()
            .is_ok_and(|g| g.iter().any(|f| f == b"after"))),
        "the frame after the backend's FIN did not arrive"
    );
    assert_eq!(ws.fins.load(std::sync::atomic::Ordering::Relaxed), 0);
    c.shutdown(Shutdown::Write).expect("half-close");
    assert!(wait_until(Duration::from_secs(2), || ws
        .fins
        .load(std::sync::atomic::Ordering::Relaxed)
        == 1));
}

/// Without "upgrade" => "enable" no Upgrade passes: the handshake fails at the
/// backend, and nothing is tunnelled.
#[test]
fn upgrade_needs_the_switch() {
    let ws = websocket::EchoServer::start();
    let s = front(&format!(
        "proxy.server = ( \"/ws\" => ( {} ) )",
        host(ws.port)
    ));
    let mut c = Conn::new(s.port);
    c.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    let r = c.response().expect("answer");
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "no upgrade");
    let sent = ws.heads.lock().expect("heads")[0].clone();
    assert!(!sent.to_ascii_lowercase().contains("upgrade"), "{sent}");
}

#[test]
fn pipelined_requests_through_the_proxy() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )",
        host(be.port)
    ));
    let mut c = Conn::new(s.port);
    c.send(
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /three?mode=bytes&n=100000 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let r = c.response().expect("one");
    assert!(
        r.text().starts_with("GET /one HTTP/1.1\r\n"),
        "{}",
        r.text()
    );
    let r = c.response().expect("two");
    assert!(
        r.text().starts_with("POST /two HTTP/1.1\r\n"),
        "{}",
        r.text()
    );
    assert!(r.text().ends_with("--body--\r\nhello"));
    let r = c.response().expect("three");
    assert_eq!(r.body.len(), 100_000);
    let r = c.response().expect("four");
    assert!(
        r.text().starts_with("GET /four HTTP/1.1\r\n"),
        "{}",
        r.text()
    );
    assert!(c.closed());
}

/// HTTP/2 streams go through the proxy as HTTP/1.1 exchanges; a stream cannot
/// ask to upgrade (its Upgrade field makes it malformed, RFC 9113 8.2.2) and
/// the connection goes on.
#[test]
fn http2_streams_through_the_proxy() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )\nproxy.header = ( \"upgrade\" => \"enable\" )",
        host(be.port)
    ));
    let mut c = h2c::Client::connect(s.port, &[]);
    c.get(1, "/h2?x=1");
    let r = c.response(1);
    assert_eq!(r.status, 200);
    let got = r.text();
    assert!(
        got.starts_with("GET /h2?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        "{got}"
    );
    c.request(3, "GET", "/ws", &[("upgrade", "websocket")], true);
    let r = c.response(3);
    assert!(r.reset.is_some(), "{r:?}");
    // A body without a length: collected, sent with one.
    c.request(5, "POST", "/post", &[], false);
    c.data(5, b"from h2", true);
    let r = c.response(5);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("\r\nContent-Length: 7\r\n"),
        "{}",
        r.text()
    );
    assert!(r.text().ends_with("--body--\r\nfrom h2"));
    assert_eq!(be.heads.lock().expect("heads").len(), 2);
}

/// `wickd -tt` on proxy keys: what lighttpd refuses is refused (file:line and
/// lighttpd's words), what wickd does not act on is said.
#[test]
fn keys_refused_and_warned() {
    let dir = common::TempDir::new();
    let tt = |keys: &str| {
        let conf = dir.path().join("t.conf");
        std::fs::write(
            &conf,
            format!(
                "server.document-root = \"{}\"\nserver.port = 8080\nserver.modules = (\"mod_proxy\")\n{keys}\n",
                dir.path().display()
            ),
        )
        .expect("write");
        let o = std::process::Command::new(common::wickd_bin())
            .args(["-tt", "-f"])
            .arg(&conf)
            .output()
            .expect("run wickd -tt");
        let text =
            String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
        (o.status.success(), text)
    };
    let server = "proxy.server = ( \"\" => ( \"one\" => ( \"host\" => \"127.0.0.1\", \"port\" => 80, \"fix-redirects\" => 1 ) ) )";
    for (bad, why) in [
        (
            "proxy.header = ( \"bogus\" => \"x\" )",
            "unexpected key for proxy.header",
        ),
        (
            "proxy.header = ( \"upgrade\" => \"maybe\" )",
            "expected \"upgrade\" => \"enable\" or \"disable\"",
        ),
        (
            "proxy.header = ( \"map-urlpath\" => \"/x\" )",
            "near key map-urlpath",
        ),
        (
            "proxy.forwarded = ( \"xx\" => 1 )",
            "proxy.forwarded keys must be one of",
        ),
        (
            "proxy.forwarded = ( \"for\" => \"maybe\" )",
            "proxy.forwarded values must be one of",
        ),
        ("proxy.balance = \"random\"", "balance \"random\""),
    ] {
        let (ok, text) = tt(&format!("{server}\n{bad}"));
        assert!(!ok, "{bad}: accepted");
        assert!(
            text.contains(why) && text.contains("t.conf:5"),
            "{bad}: {text}"
        );
    }
    let (ok, text) = tt(&format!(
        "{server}\nproxy.header = ( \"connect\" => \"enable\" )\nproxy.debug = 1"
    ));
    assert!(ok, "{text}");
    for warning in [
        "host option \"fix-redirects\" is not one lighttpd 1.4.69 reads",
        "proxy.debug (mod_proxy) is accepted but not acted on",
    ] {
        assert!(text.contains(warning), "{warning}: {text}");
    }
    // (CONNECT is tunnelled: tests/proxy_connect.rs)
    assert!(!text.contains("\"connect\""), "{text}");
    assert!(!text.contains("mod_proxy is not built"), "{text}");
}

/// A large request body goes up as the backend takes it: the client is not read
/// faster than the backend reads (the worker holds a bounded amount).
#[test]
fn a_large_request_body_to_a_slow_backend() {
    const BODY: usize = 48 << 20;
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( {} ) )",
        host(be.port)
    ));
    let workers = s.children();
    let rss = || rss_kib(&workers);
    assert_eq!(s.get("/warm").status, 200);
    let before = rss();
    let port = s.port;
    let writer = std::thread::spawn(move || {
        let mut w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.write_all(
            format!("POST /up?mode=slowread HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("head");
        let block = vec![b'u'; 1 << 20];
        for _ in 0..BODY >> 20 {
            w.write_all(&block).expect("body");
        }
        let mut out = Vec::new();
        let _ = w.read_to_end(&mut out);
        out
    });
    let mut peak = 0;
    while !writer.is_finished() {
        peak = peak.max(rss());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = writer.join().expect("writer");
    let text = String::from_utf8_lossy(&out);
    assert!(text.ends_with(&format!("read {BODY}")), "{text}");
    eprintln!("worker RSS: {before} KiB before, {peak} KiB at most");
    assert!(
        peak < before + 16 * 1024,
        "worker RSS grew from {before} KiB to {peak} KiB"
    );
}

/// proxy.header and proxy.replace-http-host per block: force-http10, the
/// named host's name as Host; a request wickd refuses as ambiguous never
/// reaches the backend.
#[test]
fn per_block_headers_named_hosts_and_ambiguous_requests() {
    let be = Backend::start();
    let s = front(&format!(
        "proxy.server = ( \"/\" => ( \"back.internal\" => {} ) )\n\
         $HTTP[\"url\"] =^ \"/old/\" {{ proxy.header = ( \"force-http10\" => \"enable\" ) }}\n\
         $HTTP[\"url\"] =^ \"/named/\" {{ proxy.replace-http-host = \"enable\" }}",
        host(be.port)
    ));
    let mut c = Conn::new(s.port);
    c.send(b"GET /old/x HTTP/1.1\r\nHost: front\r\n\r\n");
    let got = c.response().expect("old").text();
    assert!(
        got.starts_with("GET /old/x HTTP/1.0\r\nHost: front\r\n"),
        "{got}"
    );
    c.send(b"GET /named/x HTTP/1.1\r\nHost: front\r\n\r\n");
    let got = c.response().expect("named").text();
    assert!(
        got.starts_with("GET /named/x HTTP/1.1\r\nHost: back.internal\r\n"),
        "{got}"
    );
    assert!(got.contains("\r\nX-Host: front\r\n"), "{got}");
    c.send(b"GET /other HTTP/1.1\r\nHost: front\r\n\r\n");
    let got = c.response().expect("other").text();
    assert!(
        got.starts_with("GET /other HTTP/1.1\r\nHost: front\r\n"),
        "{got}"
    );
    let seen = be.heads.lock().expect("heads").len();
    for bad in [
        &b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        b"GET /x HTTP/1.1\nHost: a\n\n",
    ] {
        let r = s.raw(bad);
        assert!(r.starts_with(b"HTTP/1.1 400") || r.starts_with(b"HTTP/1.0 400"), "{}", String::from_utf8_lossy(&r));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        be.heads.lock().expect("heads").len(),
        seen,
        "an ambiguous request was forwarded"
    );
}
