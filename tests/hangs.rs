//! Requests that used to hang or vanish (issue 12): clients that half-close after
//! the request, bodies that come in the same write as the head, a FIN that comes
//! with the data, a CGI that says nothing, and clients that dribble. Each test
//! talks raw TCP the way scripted clients do, and is bounded in time.

mod common;

use common::{wire, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const CONF: &str = r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_cgi")
$HTTP["url"] =^ "/cgi-bin/" {
    cgi.assign = (".cgi" => "")
}
"#;

const HELLO: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello'\n";
const ECHO: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec cat\n";

fn start(extra: &str) -> Server {
    let conf = format!("{CONF}{extra}\n");
    Server::start_with(&conf, &[], |dir| {
        let bin = dir.join("www/cgi-bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        for (name, body) in [
            ("hello.cgi", HELLO),
            ("echo.cgi", ECHO),
            ("silent.cgi", "#!/bin/sh\nexec sleep 30\n"),
            (
                "drain.cgi",
                "#!/bin/sh\ncat >/dev/null\nprintf 'Content-Type: text/plain\\r\\n\\r\\nin'\n",
            ),
        ] {
            let p = bin.join(name);
            std::fs::write(&p, body).expect("write script");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::write(dir.join("www/a.txt"), "file a\n").expect("write a.txt");
    })
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    s
}

/// Everything the server sends until it closes; `None` when it did not close
/// within the read timeout (the hang these tests are about).
fn until_close(s: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&out).into_owned())
            }
            Err(_) => return None,
        }
    }
}

/// A connection that has carried one keep-alive request (and its answer).
fn after_one_request(port: u16) -> TcpStream {
    let mut c = connect(port);
    c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 512];
    let n = c.read(&mut first).expect("first response");
    assert!(String::from_utf8_lossy(&first[..n]).contains("file a"));
    c
}

/// One write, then shutdown(SHUT_WR), then the whole answer.
fn send_and_half_close(port: u16, req: &[u8]) -> Option<String> {
    let mut s = connect(port);
    s.write_all(req).expect("write");
    s.shutdown(Shutdown::Write).expect("half-close");
    until_close(&mut s)
}

fn log_of(s: &Server) -> String {
    s.error_log()
}

#[test]
fn half_closed_client_gets_its_cgi_response() {
    let s = start("");
    for req in [
        &b"GET /cgi-bin/hello.cgi HTTP/1.0\r\n\r\n"[..],
        b"GET /cgi-bin/hello.cgi HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let r = send_and_half_close(s.port, req).expect("no answer before the timeout");
        assert!(r.starts_with("HTTP/1."), "{r:?}\n{}", log_of(&s));
        assert!(
            r.contains(" 200 ") && r.contains("\r\n\r\n") && r.contains("hello"),
            "{r:?}"
        );
    }
}

#[test]
fn half_closed_client_gets_its_static_response_then_the_close() {
    // Keep-alive is on and its idle limit long: the close must come from the FIN.
    let s = start("server.max-keep-alive-idle = 30");
    let t = Instant::now();
    let r = send_and_half_close(s.port, b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("no close before the timeout");
    assert!(r.contains(" 200 ") && r.ends_with("file a\n"), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        t.elapsed()
    );
}

#[test]
fn keep_alive_then_half_close_is_closed_after_the_response() {
    let s = start("server.max-keep-alive-idle = 30");
    let mut c = after_one_request(s.port);
    // The second request and the FIN arrive together.
    c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    let t = Instant::now();
    let r = until_close(&mut c).expect("not closed after the response");
    assert!(r.contains(" 200 ") && r.ends_with("file a\n"), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        t.elapsed()
    );
}

#[test]
fn body_in_the_same_write_as_the_head_reaches_the_cgi() {
    let s = start("");
    let cases: [&[u8]; 4] = [
        b"POST /cgi-bin/echo.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /cgi-bin/echo.cgi HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /cgi-bin/echo.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /cgi-bin/echo.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
    ];
    for req in cases {
        let mut c = connect(s.port);
        c.write_all(req).expect("write");
        let r = until_close(&mut c).unwrap_or_else(|| {
            panic!(
                "no answer to {:?}\n{}",
                String::from_utf8_lossy(req),
                log_of(&s)
            )
        });
        assert!(
            r.contains(" 200 ") && r.contains("\r\n\r\n") && r.contains("hello"),
            "{r:?}"
        );
    }
}

#[test]
fn chunked_post_with_fin_after_a_keep_alive_request() {
    let s = start("");
    let mut c = after_one_request(s.port);
    c.write_all(b"POST /cgi-bin/echo.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        .expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    let r = until_close(&mut c).unwrap_or_else(|| panic!("hung\n{}", log_of(&s)));
    assert!(r.contains(" 200 ") && r.contains("hello"), "{r:?}");
}

#[test]
fn a_cgi_that_says_nothing_ends_at_max_write_idle() {
    let s = start("server.max-write-idle = 2");
    let mut c = connect(s.port);
    let t = Instant::now();
    c.write_all(b"GET /cgi-bin/silent.cgi HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    let mut w = wire::Conn::from_stream(c);
    let r = w.response().expect("no answer from a silent CGI");
    assert_eq!(r.status, 504, "{}", log_of(&s));
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "after {:?}",
        t.elapsed()
    );
    let logged = common::wait_until(Duration::from_secs(3), || {
        log_of(&s).contains("read timeout on CGI: /cgi-bin/silent.cgi")
    });
    assert!(logged, "{}", log_of(&s));
}

/// Send `data` one byte every `gap`, until the server closes (or `limit` passes).
/// Returns what it sent back and when it closed.
fn dribble(c: &mut TcpStream, data: &[u8], gap: Duration, limit: Duration) -> (String, Duration) {
    let t = Instant::now();
    c.set_nonblocking(true).expect("nonblocking");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    'send: for b in data.iter().cycle() {
        if t.elapsed() > limit || c.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(gap);
        loop {
            match c.read(&mut buf) {
                Ok(0) => break 'send,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => break 'send,
            }
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), t.elapsed())
}

/// Send `head`, then dribble `byte` every 250 ms: the server must answer 408 and
/// close within `within`.
fn cut_with_408(port: u16, head: &[u8], byte: &[u8], within: Duration) {
    let mut c = connect(port);
    c.write_all(head).expect("write");
    let (r, took) = dribble(&mut c, byte, Duration::from_millis(250), within * 2);
    assert!(took < within, "still open after {took:?}");
    assert!(r.starts_with("HTTP/1.1 408 "), "{r:?}");
}

#[test]
fn a_head_dribbled_byte_by_byte_is_cut_at_max_read_idle() {
    let s = start("server.max-read-idle = 2");
    let head = b"GET /a.txt HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    cut_with_408(s.port, head, b"a", Duration::from_secs(6));
}

#[test]
fn a_body_below_the_minimum_rate_is_cut() {
    let s = start("server.max-read-idle = 2\nserver.min-request-body-rate = 100");
    let head = b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n";
    cut_with_408(s.port, head, b"x", Duration::from_secs(8));
    // The same to a CGI (that answers once it has the whole body).
    let head = b"POST /cgi-bin/drain.cgi HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n";
    cut_with_408(s.port, head, b"x", Duration::from_secs(8));
}

#[test]
fn pauses_just_under_the_limits_are_not_cut() {
    let s = start("server.max-read-idle = 2\nserver.max-keep-alive-idle = 2\nserver.min-request-body-rate = 0");
    let mut c = wire::Conn::new(s.port);
    for _ in 0..3 {
        // Keep-alive: silence of 1.7 s between requests.
        std::thread::sleep(Duration::from_millis(1700));
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(
            c.response().expect("cut during a keep-alive pause").status,
            200
        );
    }
    // A body with pauses of 1.7 s between its parts (read idle, not the head).
    c.send(b"POST /cgi-bin/echo.cgi HTTP/1.0\r\nContent-Length: 6\r\n\r\n");
    for part in [&b"ab"[..], b"cd", b"ef"] {
        std::thread::sleep(Duration::from_millis(1700));
        c.send(part);
    }
    let r = until_close(&mut c.s).expect("no close after the response");
    assert!(
        r.contains(" 200 ") && r.ends_with("abcdef"),
        "cut during a body pause: {r:?}"
    );
}

#[test]
fn head_split_by_a_pause_within_the_limit_is_served() {
    let s = start("server.max-read-idle = 2");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(1500));
    c.send(b"Host: t\r\n\r\n");
    assert_eq!(c.response().expect("cut").status, 200);
}
