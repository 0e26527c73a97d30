//! CONNECT through mod_proxy with proxy.header "connect": as lighttpd 1.4.69,
//! wickd connects to the configured backend (not to the authority the client
//! names), answers 200 itself and carries bytes both ways. The backend is a TCP
//! server of the test's own (it greets, then echoes in capitals, and records).
//! Bytes sent with the head and a Content-Length body go first; dribbled bytes,
//! half-closes from either side, a client that vanishes, an idle tunnel closed
//! at server.max-read-idle, a CONNECT pipelined behind a GET; the refusals: no
//! switch or no key (405, the connection closed), a name as the authority and a
//! chunked CONNECT (400), a backend that is down (503).

mod common;
#[path = "common/tunnel.rs"]
mod tunnel;

use common::{wait_until, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
use tunnel::{at_eof, Backend};

fn front(backend_port: u16, keys: &str) -> Server {
    Server::start(&format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_proxy", "mod_accesslog")
accesslog.filename = "@DIR@/access.log"
proxy.server = ( "" => ( ( "host" => "127.0.0.1", "port" => {backend_port} ) ) )
{keys}
"#
    ))
}

const CONNECT_ON: &str = "proxy.header = ( \"connect\" => \"enable\" )";

/// Connect and send `req`; the response head.
fn open(s: &Server, req: &[u8]) -> (TcpStream, String) {
    tunnel::open(s.port, req)
}

fn read_n(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    c.read_exact(&mut b).expect("tunnelled bytes");
    b
}

/// The 200 opens the tunnel: no length, `Connection: close`; the bytes sent
/// with the head reach the backend first, dribbled ones after, and the
/// client's half-close reaches the backend, whose close comes back.
#[test]
fn connect_opens_a_tunnel_to_the_configured_backend() {
    let be = Backend::start();
    let s = front(be.port, CONNECT_ON);
    let (mut c, head) = open(
        &s,
        b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\nearly",
    );
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("content-length") && !lower.contains("transfer-encoding"),
        "{head}"
    );
    // The greeting, then the echo of what came with the head.
    let mut got = read_n(&mut c, 2);
    while got.len() < 7 {
        let mut b = [0u8; 64];
        let n = c.read(&mut b).expect("echo");
        assert!(n > 0, "closed early: {got:?}");
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, b"hiEARLY");
    // One byte at a time, each echoed before the next goes.
    for &b in b"slow" {
        c.write_all(&[b]).expect("dribble");
        assert_eq!(read_n(&mut c, 1), [b.to_ascii_uppercase()]);
        std::thread::sleep(Duration::from_millis(50));
    }
    c.shutdown(Shutdown::Write).expect("half-close");
    assert!(at_eof(&mut c), "the backend's close did not come back");
    assert!(wait_until(Duration::from_secs(2), || be.fins() == 1));
    assert_eq!(be.received(), b"earlyslow");
    // The access log has the CONNECT with its 200 (lighttpd's line).
    assert!(
        wait_until(Duration::from_secs(2), || {
            std::fs::read_to_string(s.dir.path().join("access.log"))
                .is_ok_and(|l| l.contains("\"CONNECT 127.0.0.1:9 HTTP/1.1\" 200 "))
        }),
        "{:?}",
        std::fs::read_to_string(s.dir.path().join("access.log"))
    );
}

/// A Content-Length body is the tunnel's first bytes, as lighttpd sends it;
/// HTTP/1.0 without Host is a CONNECT too.
#[test]
fn a_body_and_http10() {
    let be = Backend::start();
    let s = front(be.port, CONNECT_ON);
    let (mut c, head) = open(
        &s,
        b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    c.write_all(b"def").expect("more");
    let mut got = Vec::new();
    while got.len() < 8 {
        let mut b = [0u8; 64];
        let n = c.read(&mut b).expect("echo");
        assert!(n > 0, "closed early: {got:?}");
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, b"hiABCDEF");
    drop(c);
    let (mut c, head) = open(&s, b"CONNECT :9 HTTP/1.0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200 "), "{head}");
    assert_eq!(read_n(&mut c, 2), b"hi");
}

/// The backend closes first: the client reads the FIN, and its own bytes still
/// reach the backend's socket until it closes too.
#[test]
fn the_backend_closes_first() {
    let be = Backend::start();
    let s = front(be.port, CONNECT_ON);
    let (mut c, head) = open(&s, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_n(&mut c, 2), b"hi");
    c.write_all(b"QUIT").expect("quit");
    assert!(at_eof(&mut c), "the backend's close did not come through");
    assert!(wait_until(Duration::from_secs(2), || be.received() == b"QUIT"));
}

/// A client that vanishes mid-tunnel: the backend's connection is closed.
#[test]
fn a_client_that_vanishes() {
    let be = Backend::start();
    let s = front(be.port, CONNECT_ON);
    let (mut c, _) = open(&s, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\nping");
    assert_eq!(read_n(&mut c, 6), b"hiPING");
    drop(c);
    assert!(
        wait_until(Duration::from_secs(3), || be.fins() == 1),
        "the backend's connection outlived the client"
    );
    // The server goes on.
    let (mut c, head) = open(&s, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_n(&mut c, 2), b"hi");
}

/// Who does not get a tunnel: no "connect" switch, or no key for the path
/// (405, and what follows the CONNECT is never read as a request); a host name
/// as the authority, as lighttpd's strict parsing (400); a chunked CONNECT
/// (400); a backend that is down (503).
#[test]
fn refusals() {
    let be = Backend::start();
    let answer = |s: &Server, req: &[u8]| {
        let (mut c, head) = open(s, req);
        let status = head.get(9..12).unwrap_or("").to_string();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        let rest = String::from_utf8_lossy(&rest).to_string();
        // The connection closed after the answer: no second response.
        assert!(!rest.contains("HTTP/1.1"), "{head}{rest}");
        status
    };
    let tail = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let off = front(be.port, "");
    let mut req = b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    req.extend_from_slice(tail);
    assert_eq!(answer(&off, &req), "405");
    let keyed = Server::start(&format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_proxy")
proxy.server = ( "/tunnel" => ( ( "host" => "127.0.0.1", "port" => {} ) ) )
{CONNECT_ON}
"#,
        be.port
    ));
    assert_eq!(answer(&keyed, &req), "405");
    // (a path that the key takes is tunnelled, as lighttpd's)
    let (mut c, head) = open(&keyed, b"CONNECT /tunnel/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_n(&mut c, 2), b"hi");
    drop(c);
    let on = front(be.port, CONNECT_ON);
    assert_eq!(
        answer(
            &on,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        ),
        "400"
    );
    assert_eq!(
        answer(&on, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n"),
        "400",
        "HTTP/1.1 without Host"
    );
    assert_eq!(
        answer(
            &on,
            b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        "400"
    );
    let down = front(common::free_port(), CONNECT_ON);
    assert_eq!(
        answer(&down, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\n"),
        "503"
    );
    assert!(be.received().is_empty(), "{:?}", be.received());
}

/// mod_auth comes first: a CONNECT without credentials is 401 and nothing
/// reaches the backend; with them it is tunnelled.
#[test]
fn auth_before_the_tunnel() {
    let be = Backend::start();
    let conf = format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_auth", "mod_proxy")
auth.backend = "plain"
auth.backend.plain.userfile = "@DIR@/plain"
auth.require = ( "" => ( "method" => "basic", "realm" => "tunnel", "require" => "valid-user" ) )
proxy.server = ( "" => ( ( "host" => "127.0.0.1", "port" => {} ) ) )
{CONNECT_ON}
"#,
        be.port
    );
    let s = Server::start_with(&conf, &[], |dir| {
        std::fs::write(dir.join("plain"), "agent:secret\n").expect("write");
    });
    let (mut c, head) = open(&s, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\nsneak");
    assert!(head.starts_with("HTTP/1.1 401 "), "{head}");
    let _ = c.read_to_end(&mut Vec::new());
    // ("agent:secret" in base64)
    let (mut c, head) = open(
        &s,
        b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWdlbnQ6c2VjcmV0\r\n\r\nok",
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_n(&mut c, 4), b"hiOK");
    assert_eq!(be.received(), b"ok");
}

/// server.max-read-idle bounds a silent tunnel: a pause just under it keeps
/// the tunnel, silence past it closes both sides; a CONNECT pipelined behind
/// a GET, in a request-method condition, is tunnelled after the GET's answer.
#[test]
fn idle_tunnels_close_and_pipelined_connect() {
    let be = Backend::start();
    let s = Server::start(&format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_proxy")
server.max-read-idle = 2
$HTTP["request-method"] == "CONNECT" {{
  proxy.server = ( "" => ( ( "host" => "127.0.0.1", "port" => {} ) ) )
  {CONNECT_ON}
}}
"#,
        be.port
    ));
    std::fs::write(s.docroot().join("f.txt"), "file\n").expect("write");
    let (mut c, head) = open(
        &s,
        b"GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\nCONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(read_n(&mut c, 5), b"file\n");
    let mut second = Vec::new();
    while !second.ends_with(b"\r\n\r\n") {
        second.extend(read_n(&mut c, 1));
    }
    let second = String::from_utf8_lossy(&second).to_string();
    assert!(second.starts_with("HTTP/1.1 200 OK\r\n"), "{second}");
    assert!(second.contains("Connection: close"), "{second}");
    assert_eq!(read_n(&mut c, 2), b"hi");
    std::thread::sleep(Duration::from_millis(1200));
    c.write_all(b"still").expect("after a pause");
    assert_eq!(read_n(&mut c, 5), b"STILL");
    let t = std::time::Instant::now();
    assert!(at_eof(&mut c), "the silent tunnel was not closed");
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "closed after {:?}",
        t.elapsed()
    );
    assert!(wait_until(Duration::from_secs(2), || be.fins() == 1));
}
