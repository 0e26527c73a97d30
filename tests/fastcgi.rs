//! mod_fastcgi through the real server against a FastCGI responder of the tests'
//! own (tests/common/fcgi.rs) on a TCP port and on a unix socket: the CGI
//! environment (SCRIPT_NAME, PATH_INFO, check-local, prefixes, index files),
//! request bodies (small, 5 MiB, chunked) echoed, responses streamed, a backend
//! that is down (the next one used; none: 503), read-timeout (504), a backend
//! that dies or sends a malformed head (502), stderr to the error log; and, when
//! Debian's php-cgi is installed, a real PHP page.

mod common;

use common::fcgi::Responder;
use common::{curl, free_port, wait_until, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn conf(servers: &str, extra: &str) -> String {
    format!(
        r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_fastcgi")
index-file.names = ("index.php", "index.html")
fastcgi.server = ( {servers} )
{extra}
"#
    )
}

fn start(servers: &str, extra: &str) -> Server {
    Server::start_with(&conf(servers, extra), &[], |dir| {
        let www = dir.join("www");
        std::fs::create_dir_all(www.join("sub")).expect("mkdir");
        for f in ["t.php", "index.php", "sub/index.php"] {
            std::fs::write(www.join(f), "<?php echo 'source'; ?>").expect("write");
        }
        std::fs::write(www.join("plain.html"), "static").expect("write");
    })
}

fn env_map(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tcp_host(port: u16) -> String {
    format!("( \"host\" => \"127.0.0.1\", \"port\" => {port} )")
}

#[test]
fn environment_over_tcp_with_check_local() {
    let be = Responder::tcp();
    let s = start(&format!("\".php\" => ( {} )", tcp_host(be.port)), "");
    let docroot = s.docroot();
    let docroot = docroot.to_str().expect("utf-8");
    let r = s.get("/t.php/a/b?x=1&y");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(e.get("SCRIPT_NAME").map(String::as_str), Some("/t.php"));
    assert_eq!(e.get("PATH_INFO").map(String::as_str), Some("/a/b"));
    assert_eq!(e["PATH_TRANSLATED"], format!("{docroot}/a/b"));
    assert_eq!(e["SCRIPT_FILENAME"], format!("{docroot}/t.php"));
    assert_eq!(e["DOCUMENT_ROOT"], docroot);
    assert_eq!(e["QUERY_STRING"], "x=1&y");
    assert_eq!(e["REQUEST_URI"], "/t.php/a/b?x=1&y");
    assert_eq!(e["REQUEST_METHOD"], "GET");
    assert_eq!(e["GATEWAY_INTERFACE"], "CGI/1.1");
    assert_eq!(e["SERVER_PORT"], s.port.to_string());
    assert_eq!(e["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(e["REDIRECT_STATUS"], "200");
    assert!(e.contains_key("HTTP_USER_AGENT"), "{e:?}");
    // The PHP file's source is never what the client gets.
    assert!(!r.text().contains("source"));
    // check-local: a file that does not exist is not the backend's.
    assert_eq!(s.get("/missing.php").status, 404);
    // A directory's index file.
    let r = s.get("/sub/");
    assert_eq!(r.status, 200);
    assert_eq!(env_map(&r.body)["SCRIPT_NAME"], "/sub/index.php");
    // Other files stay static.
    assert_eq!(s.get("/plain.html").text(), "static");
    // Content-Length from the backend, and a head without one given a length
    // (the whole response came within the hold).
    let r = s.get("/t.php?mode=length");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(be.requests.load(std::sync::atomic::Ordering::Relaxed) >= 3);
}

/// Header fields reach the backend as lighttpd passes them: a repeated field
/// joined (", ", "; " for Cookie), Content-Type as CONTENT_TYPE, Proxy never,
/// a value that is not UTF-8 mended rather than dropped.
#[test]
fn repeated_and_odd_header_fields() {
    let be = Responder::tcp();
    let s = start(&format!("\".php\" => ( {} )", tcp_host(be.port)), "");
    let raw = s.raw(
        b"GET /t.php HTTP/1.1\r\nHost: x\r\nX-Rep: a\r\nCookie: c=1\r\nx-rep: b\r\n\
          Cookie: d=2\r\nContent-Type: text/x\r\nProxy: http://evil\r\nX-Odd: \xe9t\xe9\r\n\
          Connection: close\r\n\r\n",
    );
    let r = common::parse_response(&raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(e["HTTP_X_REP"], "a, b");
    assert_eq!(e["HTTP_COOKIE"], "c=1; d=2");
    assert_eq!(e["CONTENT_TYPE"], "text/x");
    assert!(!e.contains_key("HTTP_PROXY"), "{e:?}");
    assert_eq!(e["HTTP_X_ODD"], "\u{fffd}t\u{fffd}");
    assert_eq!(e["HTTP_HOST"], "x");
}

#[test]
fn unix_socket_prefix_without_check_local() {
    let dir = common::TempDir::new();
    let sock = dir.path().join("app.sock");
    let _be = Responder::unix(&sock);
    let s = start(
        &format!(
            "\"/app\" => ( \"app\" => ( \"socket\" => \"{}\", \"check-local\" => \"disable\", \"strip-request-uri\" => \"/app\" ) ), \"/\" => ( ( \"socket\" => \"{}\", \"check-local\" => \"disable\", \"fix-root-scriptname\" => \"enable\" ) )",
            sock.display(),
            sock.display()
        ),
        "",
    );
    let r = s.get("/app/foo/bar?q=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(e["SCRIPT_NAME"], "/app");
    assert_eq!(e["PATH_INFO"], "/foo/bar");
    assert_eq!(e["REQUEST_URI"], "/foo/bar?q=1");
    // fix-root-scriptname on "/": everything is PATH_INFO.
    let r = s.get("/other/x");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(e.get("SCRIPT_NAME").map(String::as_str), Some(""));
    assert_eq!(e["PATH_INFO"], "/other/x");
    // As root the worker that connected is sandboxed (Landlock and seccomp).
    if common::is_root() {
        let log = s.error_log();
        let line = log.lines().find(|l| l.contains("sandbox:")).unwrap_or("");
        assert!(line.contains("seccomp"), "{log}");
        assert!(line.to_ascii_lowercase().contains("landlock"), "{log}");
    }
}

#[test]
fn request_bodies_are_echoed() {
    let be = Responder::tcp();
    let s = start(&format!("\".php\" => ( {} )", tcp_host(be.port)), "");
    let dir = common::TempDir::new();
    let small = dir.path().join("small");
    std::fs::write(&small, b"name=value&x=y").expect("write");
    let at = format!("@{}", small.display());
    let r = curl(&s.url("/t.php?mode=echo"), &["--data-binary", &at]);
    assert_eq!((r.status, r.text().as_str()), (200, "name=value&x=y"));
    // 5 MiB both ways: streamed to the backend as STDIN, back to the client
    // chunked (no Content-Length from the backend, more than is held back).
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let bigf = dir.path().join("big");
    std::fs::write(&bigf, &big).expect("write");
    let at = format!("@{}", bigf.display());
    let r = curl(&s.url("/t.php?mode=echo"), &["--data-binary", &at]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(
        r.body == big,
        "5 MiB body came back changed ({} bytes)",
        r.body.len()
    );
    // A chunked request body: collected, CONTENT_LENGTH set.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.write_all(b"POST /t.php?mode=env HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .expect("send");
    let mut raw = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = c.read_to_end(&mut raw);
    let r = common::parse_response(&raw);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(env_map(&r.body)["CONTENT_LENGTH"], "11");
    // A chunked body that comes in many reads: all of it collected before
    // BEGIN_REQUEST and PARAMS, then STDIN (the responder refuses STDIN first).
    let mid = &big[..300_000];
    let midf = dir.path().join("mid");
    std::fs::write(&midf, mid).expect("write");
    let at = format!("@{}", midf.display());
    let r = curl(
        &s.url("/t.php?mode=echo"),
        &["--data-binary", &at, "-H", "Transfer-Encoding: chunked"],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body == mid,
        "chunked body came back changed ({} bytes)",
        r.body.len()
    );
}

#[test]
fn a_large_response_streams_to_a_slow_client() {
    let be = Responder::tcp();
    let s = start(&format!("\".php\" => ( {} )", tcp_host(be.port)), "");
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.write_all(
        b"GET /t.php?mode=bytes&n=8000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("send");
    // The client reads nothing for a while: the backend is not read meanwhile
    // (the worker holds a bounded amount), then all of it arrives.
    std::thread::sleep(Duration::from_millis(500));
    let mut raw = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = c.read_to_end(&mut raw);
    let r = common::parse_response(&raw);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // Unchunk: every payload byte is 'x', 8e6 of them.
    let mut body = &r.body[..];
    let mut n = 0usize;
    loop {
        let e = common::find(body, b"\r\n").expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..e]).expect("hex"), 16).expect("size");
        if size == 0 {
            break;
        }
        assert!(body[e + 2..e + 2 + size].iter().all(|&b| b == b'x'));
        n += size;
        body = &body[e + 2 + size + 2..];
    }
    assert_eq!(n, 8_000_000);
}

#[test]
fn a_backend_that_is_down_is_skipped_then_503() {
    let be = Responder::tcp();
    let dead = free_port();
    let s = start(
        &format!(
            "\".php\" => ( {}, {} ), \"/none\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {dead}, \"check-local\" => \"disable\" ) )",
            tcp_host(dead),
            tcp_host(be.port)
        ),
        "fastcgi.balance = \"round-robin\"",
    );
    // The dead host costs one failed connect; the request goes to the next.
    for _ in 0..4 {
        let r = s.get("/t.php");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let log = s.error_log();
    assert!(
        log.contains(&format!("connect to backend 127.0.0.1:{dead} failed")),
        "{log}"
    );
    // Only a dead host: 503.
    assert_eq!(s.get("/none/x").status, 503);
}

#[test]
fn a_killed_backend_gives_503() {
    let be = Responder::tcp();
    let port = be.port;
    let s = start(&format!("\".php\" => ( {} )", tcp_host(port)), "");
    assert_eq!(s.get("/t.php").status, 200);
    drop(be);
    let r = s.get("/t.php");
    assert_eq!(r.status, 503);
    assert!(wait_until(Duration::from_secs(2), || s
        .error_log()
        .contains(&format!("127.0.0.1:{port}"))));
}

#[test]
fn timeouts_deaths_and_bad_heads() {
    let be = Responder::tcp();
    let s = start(
        &format!(
            "\".php\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {}, \"read-timeout\" => 1 ) )",
            be.port
        ),
        "",
    );
    let r = s.get("/t.php?mode=slow");
    assert_eq!(r.status, 504);
    assert_eq!(s.get("/t.php?mode=diehead").status, 502);
    assert_eq!(s.get("/t.php?mode=malformed").status, 502);
    // Died after a head and part of a body: what came is sent, then the close.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.write_all(b"GET /t.php?mode=die HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("part of a body"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a cut response must not look complete: {text}"
    );
    let r = s.get("/t.php?mode=stderr");
    assert_eq!(r.status, 200);
    assert!(
        wait_until(Duration::from_secs(2), || {
            let log = s.error_log();
            log.contains("a warning from the backend") && log.contains("read timeout on backend")
        }),
        "{}",
        s.error_log()
    );
    // The connection keeps working after all that.
    assert_eq!(s.get("/t.php").status, 200);
}

/// A real PHP page through Debian's php-cgi in FastCGI mode (`php-cgi -b`).
#[test]
fn php_cgi_serves_a_real_page() {
    let Some(php) = ["/usr/bin/php-cgi"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("php_cgi_serves_a_real_page: skipped: php-cgi is not installed (apt-get install php-cgi)");
        return;
    };
    let port = free_port();
    let mut child = std::process::Command::new(php)
        .args(["-b", &format!("127.0.0.1:{port}")])
        .env("PHP_FCGI_CHILDREN", "0")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start php-cgi");
    let up = wait_until(Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let s = Server::start_with(
        &conf(&format!("\".php\" => ( {} )", tcp_host(port)), ""),
        &[],
        |dir| {
            std::fs::write(
                dir.join("www/hello.php"),
                "<?php header('X-Php: yes'); echo 'Hello ', htmlspecialchars($_GET['who'] ?? ''), ' from PHP ', PHP_MAJOR_VERSION, ' ', $_SERVER['SCRIPT_NAME'], ' ', $_SERVER['PATH_INFO'] ?? '-'; ?>",
            )
            .expect("write");
        },
    );
    let r = s.get("/hello.php/pi?who=wick");
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "php-cgi did not listen");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-php"), Some("yes"));
    assert!(r.text().starts_with("Hello wick from PHP "), "{}", r.text());
    assert!(r.text().ends_with(" /hello.php /pi"), "{}", r.text());
}

/// A client that goes away in the middle of a large response: the worker drops
/// the backend's connection and goes on serving; half-closing after the request
/// still gets the whole response.
#[test]
fn clients_that_vanish_or_half_close() {
    let be = Responder::tcp();
    let s = start(&format!("\".php\" => ( {} )", tcp_host(be.port)), "");
    for _ in 0..3 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        c.write_all(b"GET /t.php?mode=bytes&n=8000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut buf = [0u8; 4096];
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0 && buf.starts_with(b"HTTP/1.1 200"));
        drop(c);
    }
    // Half-closed after the request, one write for head and body: answered.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.write_all(b"POST /t.php?mode=echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .expect("send");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let r = common::parse_response(&raw);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    // Pipelined: two requests in one write, two answers in order.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.write_all(b"GET /t.php?mode=length HTTP/1.1\r\nHost: x\r\n\r\nGET /t.php?mode=length&b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.ends_with("hello"), "{text}");
    assert_eq!(s.get("/t.php").status, 200);
    assert!(!s.error_log().contains("panicked"), "{}", s.error_log());
}

/// x-sendfile confined to x-sendfile-docroot, and fastcgi.map-extensions.
#[test]
fn x_sendfile_and_mapped_extensions() {
    let be = Responder::tcp();
    let files = common::TempDir::new();
    let allowed = files.path().join("allowed");
    std::fs::create_dir_all(&allowed).expect("mkdir");
    std::fs::write(allowed.join("f.txt"), "from the file\n").expect("write");
    std::fs::write(files.path().join("secret.txt"), "secret\n").expect("write");
    let s = Server::start_with(
        &conf(
            &format!(
                "\".php\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {}, \"x-sendfile\" => \"enable\", \"x-sendfile-docroot\" => ( \"{}\" ) ) )",
                be.port,
                allowed.display()
            ),
            "fastcgi.map-extensions = ( \".php3\" => \".php\" )",
        ),
        &[],
        |dir| {
            std::fs::write(dir.join("www/t.php"), "source").expect("write");
            std::fs::write(dir.join("www/old.php3"), "source").expect("write");
        },
    );
    let r = s.get(&format!(
        "/t.php?mode=sendfile&file={}",
        allowed.join("f.txt").display()
    ));
    assert_eq!((r.status, r.text().as_str()), (200, "from the file\n"));
    let r = s.get(&format!(
        "/t.php?mode=sendfile&file={}",
        files.path().join("secret.txt").display()
    ));
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("secret"));
    let r = s.get("/old.php3");
    assert_eq!(r.status, 200);
    assert_eq!(env_map(&r.body)["SCRIPT_NAME"], "/old.php3");
}

/// Responses split at their heads: (status, body) of each, in order.
fn responses(raw: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(end) = common::find(rest, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let body = rest[end + 4..(end + 4 + len).min(rest.len())].to_vec();
        rest = &rest[(end + 4 + len).min(rest.len())..];
        out.push((status, body));
    }
    out
}

/// Pipelined requests `reqs` on one connection (the last closes it): what came.
fn pipelined(s: &Server, reqs: &[String]) -> Vec<(u16, Vec<u8>)> {
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(reqs.concat().as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    responses(&raw)
}

/// FCGI_KEEP_CONN: a request that ends whole leaves its connection for the
/// next request of the same loop turn (pipelined here, with bodies: nothing of
/// one request reaches the next), and the connection is closed before the
/// worker sleeps, so a backend is never held by an idle worker.
#[test]
fn kept_connections_carry_pipelined_requests() {
    let be = Responder::tcp();
    let s = start(&format!("\".php\" => ( {} )", tcp_host(be.port)), "");
    let mut reqs: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "POST /t.php?mode=echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nbody-{i}"
            )
        })
        .collect();
    reqs.push("GET /t.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into());
    let got = pipelined(&s, &reqs);
    assert_eq!(got.len(), 5, "{got:?}");
    for (i, (status, body)) in got[..4].iter().enumerate() {
        assert_eq!((*status, &body[..]), (200, format!("body-{i}").as_bytes()));
    }
    assert_eq!(env_map(&got[4].1)["REQUEST_METHOD"], "GET");
    let load = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&be.requests), 5);
    assert_eq!(load(&be.connections), 1, "the connection was not kept");
    assert!(
        wait_until(Duration::from_secs(2), || load(&be.idle_closed) == 1),
        "the kept connection was not closed when the worker went idle"
    );
}

/// Kept connections on a unix socket, where wickd leaves each answer on the
/// socket until its next write there (gateway/socket.rs: taken earlier, the
/// bytes would wake the backend asleep in read for nothing): every answer is
/// whole, one connection carries them all, and the close is an end the
/// backend reads, not a reset from bytes left unread.
#[test]
fn kept_unix_connections_carry_pipelined_requests() {
    let dir = common::TempDir::new();
    let sock = dir.path().join("app.sock");
    let be = Responder::unix(&sock);
    let s = start(
        &format!("\".php\" => ( ( \"socket\" => \"{}\" ) )", sock.display()),
        "",
    );
    let n = 40;
    let mut reqs: Vec<String> = (0..n - 1)
        .map(|i| match i % 3 {
            0 => format!(
                "POST /t.php?mode=echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nbody-{i:02}"
            ),
            1 => format!(
                "GET /t.php?mode=bytes&n={} HTTP/1.1\r\nHost: x\r\n\r\n",
                1000 * i
            ),
            _ => format!("GET /t.php?i={i} HTTP/1.1\r\nHost: x\r\n\r\n"),
        })
        .collect();
    reqs.push("GET /t.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into());
    let got = pipelined(&s, &reqs);
    assert_eq!(got.len(), n, "{got:?}");
    for (i, (status, body)) in got.iter().enumerate() {
        assert_eq!(*status, 200, "{i}");
        match i % 3 {
            _ if i == n - 1 => assert_eq!(env_map(body)["REQUEST_METHOD"], "GET"),
            0 => assert_eq!(body, format!("body-{i:02}").as_bytes()),
            1 => assert_eq!(body.len(), 1000 * i, "{i}"),
            _ => assert_eq!(env_map(body)["QUERY_STRING"], format!("i={i}")),
        }
    }
    let load = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&be.requests), n);
    assert_eq!(load(&be.connections), 1, "the connection was not kept");
    assert!(
        wait_until(Duration::from_secs(2), || load(&be.idle_closed) == 1),
        "the kept connection ended in a reset, or stayed open"
    );
}

/// A backend that closes its connection although asked to keep it: the request
/// given to the closed connection is written again on a new one, and no
/// client sees an error.
#[test]
fn a_backend_that_closes_kept_connections() {
    // Over TCP (a kept connection is read first: a FIN may come before the
    // reset) and over a unix socket (not read: the write or the read fails).
    let dir = common::TempDir::new();
    let sock = dir.path().join("app.sock");
    let tcp = Responder::tcp();
    backend_closes_kept(&tcp, &tcp_host(tcp.port));
    let unix = Responder::unix(&sock);
    backend_closes_kept(&unix, &format!("( \"socket\" => \"{}\" )", sock.display()));
}

fn backend_closes_kept(be: &Responder, host: &str) {
    let s = start(&format!("\".php\" => ( {host} )"), "");
    // (POSTs too: the backend closed with them unread, so they run once)
    let mut reqs: Vec<String> = (0..4)
        .map(|i| match i % 2 {
            0 => format!("GET /t.php?close=1&n={i} HTTP/1.1\r\nHost: x\r\n\r\n"),
            _ => format!(
                "POST /t.php?close=1&mode=echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nn={i}"
            ),
        })
        .collect();
    reqs.push("GET /t.php?close=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into());
    let got = pipelined(&s, &reqs);
    assert_eq!(got.len(), 5, "{got:?}");
    for (i, (status, body)) in got.iter().enumerate() {
        assert_eq!(*status, 200, "{i}: {}", String::from_utf8_lossy(body));
        if i % 2 == 1 && i < 4 {
            assert_eq!(body, format!("n={i}").as_bytes());
        }
    }
    let load = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&be.requests), 5);
    assert_eq!(load(&be.connections), 5);
    assert!(
        !s.error_log().contains("closed the connection"),
        "{}",
        s.error_log()
    );
}
