//! Malformed and ambiguous requests (smuggling patterns among them): each gets the
//! status RFC 9112 and lighttpd call for, and the connection closes exactly when it
//! must. The server is wickd with a real config, spoken to with raw bytes.

mod common;

use common::wire;

use common::Server;

const CONF: &str = r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.max-request-size = 1
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html" )
"#;

fn start() -> Server {
    Server::start_with(CONF, &[], |d| {
        std::fs::write(d.join("www/index.html"), "index\n").expect("index");
        std::fs::write(d.join("secret.txt"), "outside the docroot\n").expect("secret");
    })
}

/// (name, request, expected status, connection closed after the answer)
const CASES: &[(&str, &[u8], u16, bool)] = &[
    ("valid request", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
    ("Content-Length and Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true),
    ("two different Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, true),
    ("two equal Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, true),
    ("Content-Length list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400, true),
    ("negative Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, true),
    ("Content-Length with sign", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400, true),
    ("hex Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400, true),
    ("overflowing Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, true),
    ("Transfer-Encoding gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, true),
    ("Transfer-Encoding gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, true),
    ("Transfer-Encoding chunked, gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501, true),
    ("Transfer-Encoding chunked twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, true),
    ("Transfer-Encoding in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true),
    ("Transfer-Encoding identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501, true),
    ("empty Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400, true),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, true),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400, true),
    ("tab before colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", 400, true),
    ("Transfer-Encoding with space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc", 400, true),
    ("control byte in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", 400, true),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400, true),
    ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", 400, true),
    ("invalid byte in name", b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400, true),
    ("empty field name", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400, true),
    ("line without colon", b"GET / HTTP/1.1\r\nHost: a\r\nXAb\r\n\r\n", 400, true),
    ("missing Host in HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400, true),
    ("two Host fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, true),
    ("two equal Host fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, true),
    ("empty Host in HTTP/1.1", b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, true),
    ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, true),
    ("Host with a slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, true),
    ("Host with a bad port", b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400, true),
    ("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", 200, true),
    ("bare CR in the request line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, true),
    ("bare CR in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, true),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: a\n\n", 400, true),
    ("HTTP/0.9 request", b"GET /\r\n\r\n", 400, true),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, true),
    ("HTTP/2.0 in HTTP/1 syntax", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, true),
    ("lowercase protocol", b"GET / http/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("two spaces after the method", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("space after the version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, true),
    ("space inside the target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("unknown method", b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501, true),
    ("lowercase method", b"get / HTTP/1.1\r\nHost: a\r\n\r\n", 501, true),
    ("asterisk for GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("CONNECT authority-form", b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("relative target", b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("absolute-form naming another host", b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("absolute-form without a path", b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("absolute-form", b"GET http://a/index.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
    ("POST without a length", b"POST / HTTP/1.1\r\nHost: a\r\n\r\n", 411, true),
    ("encoded NUL in the path", b"GET /index.html%00.txt HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("invalid percent escape", b"GET /index%zz.html HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("truncated percent escape", b"GET /index.html% HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("control byte in the target", b"GET /index\x01.html HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
    ("invalid chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, true),
    ("negative chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, true),
    ("0x chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400, true),
    ("huge chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400, true),
    ("space after chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400, true),
    ("control byte in a chunk extension", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01\r\nhello\r\n0\r\n\r\n", 400, true),
    ("chunk data longer than its size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", 400, true),
    ("chunk size line with bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, true),
    ("valid chunked body with extension and trailer", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 200, false),
    ("chunked body over server.max-request-size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", 413, true),
    ("Content-Length over server.max-request-size", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n", 413, true),
    ("header fields over the limit", b"", 431, true),
    ("request line over the limit", b"", 414, true),
    ("whitespace before the first field", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, true),
];

#[test]
fn malformed_requests() {
    let s = start();
    let big_header = {
        let mut v = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: ".to_vec();
        v.extend(std::iter::repeat_n(b'a', 9000));
        v.extend_from_slice(b"\r\n\r\n");
        v
    };
    let long_line = {
        let mut v = b"GET /".to_vec();
        v.extend(std::iter::repeat_n(b'a', 9000));
        v.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        v
    };
    assert!(CASES.len() >= 40);
    let mut failures = Vec::new();
    for &(name, req, status, close) in CASES {
        let req: &[u8] = match status {
            431 => &big_header,
            414 => &long_line,
            _ => req,
        };
        let mut c = wire::Conn::new(s.port);
        c.send(req);
        let Some(r) = c.response() else {
            failures.push(format!("{name}: no response"));
            continue;
        };
        if r.status != status {
            failures.push(format!("{name}: status {} (want {status})", r.status));
            continue;
        }
        if close {
            if r.header("Connection") != Some("close") && r.version == "HTTP/1.1" {
                failures.push(format!("{name}: no Connection: close"));
            }
            if !c.closed() {
                failures.push(format!("{name}: connection left open"));
            }
        } else if !c.alive() {
            failures.push(format!("{name}: connection closed"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn error_page_is_small_html() {
    let s = start();
    let r = wire::exchange(s.port, b"GET / HTTP/1.1\r\n\r\n").expect("answer");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert!(
        r.text().contains("<title>400 Bad Request</title>"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("Content-Length").map(|v| v.parse::<usize>().ok()),
        Some(Some(r.body.len()))
    );
    assert!(r.header("Date").is_some());
}

/// A request smuggled behind an ambiguous length is never answered: the connection
/// closes after the 400.
#[test]
fn smuggled_request_is_not_served() {
    let s = start();
    let mut c = wire::Conn::new(s.port);
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response().expect("answer");
    assert_eq!(r.status, 400);
    assert!(c.closed(), "a second response followed the 400");
}

/// A path never leaves the document root, however it is spelled.
#[test]
fn traversal_attempts_stay_inside() {
    let s = start();
    for p in [
        "/../secret.txt",
        "/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/a/../../secret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/./../secret.txt",
    ] {
        let req = format!("GET {p} HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = wire::exchange(s.port, req.as_bytes()).expect("answer");
        assert!(!r.text().contains("outside the docroot"), "{p} escaped");
        assert!(
            r.status == 404 || r.status == 400 || r.status == 403,
            "{p}: {}",
            r.status
        );
    }
}

/// The error log, once it holds `want` (the worker writes after its loop turn).
fn log_with(s: &Server, want: &str) -> String {
    common::wait_until(std::time::Duration::from_secs(3), || {
        s.error_log().contains(want)
    });
    s.error_log()
}

/// debug.log-request-header-on-error: the reason and the head are logged, with
/// control bytes escaped so that a request cannot write a line of its own.
#[test]
fn refused_requests_are_logged_when_asked() {
    let conf = format!("{CONF}debug.log-request-header-on-error = \"enable\"\n");
    let s = Server::start_with(&conf, &[], |_| {});
    let r = wire::exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").expect("a");
    assert_eq!(r.status, 400);
    let log = log_with(&s, "Host given twice -> 400");
    assert!(log.contains("Host given twice -> 400"), "{log}");
    assert!(
        log.contains("request-header:\nGET / HTTP/1.1\nHost: a\nHost: b\n"),
        "{log}"
    );

    let r = wire::exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\x1b[2J\r\n\r\n").expect("b");
    assert_eq!(r.status, 400);
    let log = log_with(&s, "invalid character in a header value -> 400");
    assert!(log.contains("X: 1\\x1b[2J"), "{log}");
    assert!(!log.contains('\x1b'), "a raw control byte reached the log");

    let r = wire::exchange(s.port, b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n").expect("c");
    assert_eq!(r.status, 400);
    let log = log_with(&s, "control byte in the path -> 400");
    assert!(log.contains("GET /%zz HTTP/1.1\nHost: a"), "{log}");
}

#[test]
fn refused_requests_are_not_logged_by_default() {
    let s = start();
    let r = wire::exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").expect("a");
    assert_eq!(r.status, 400);
    // A request after it proves the worker has finished that loop turn.
    assert_eq!(
        wire::exchange(s.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("b")
            .status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        !s.error_log().contains("Host given twice"),
        "{}",
        s.error_log()
    );
}

/// Issue 12 item 7: leading zeros in a chunk size are valid (RFC 9112, lighttpd);
/// only a size that overflows is refused. The body is read exactly: the next
/// request on the connection is answered.
#[test]
fn chunk_size_with_leading_zeros_is_valid() {
    let s = start();
    let mut c = wire::Conn::new(s.port);
    let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(b"0000000000000005\r\nhello\r\n");
    req.extend_from_slice(&[b'0'; 34]);
    req.extend_from_slice(b"6\r\n world\r\n0000000000000000000\r\n\r\n");
    req.extend_from_slice(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
    c.send(&req);
    assert_eq!(c.response().expect("POST answered").status, 200);
    let r = c.response().expect("GET answered");
    assert_eq!((r.status, r.text().as_str()), (200, "index\n"));
    // 2^63 overflows lighttpd's off_t: 400, not a wait for the data.
    let big =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n008000000000000000\r\n";
    assert_eq!(wire::exchange(s.port, big).expect("answer").status, 400);
}

/// Issue 12 item 10: a chunk-size line (size and extensions) of 1024 bytes or more
/// with its CRLF is 400, as in lighttpd; one byte less is served.
#[test]
fn long_chunk_extension_is_refused() {
    let s = start();
    let req = |ext_len: usize| {
        let mut v =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=".to_vec();
        v.extend(std::iter::repeat_n(b'x', ext_len));
        v.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        v
    };
    // "5;a=" + 1017 + CRLF = 1023 bytes.
    let mut c = wire::Conn::new(s.port);
    c.send(&req(1017));
    assert_eq!(c.response().expect("answer").status, 200);
    assert!(c.alive(), "the body was not read to its end");

    let mut c = wire::Conn::new(s.port);
    c.send(&req(1018));
    assert_eq!(c.response().expect("answer").status, 400);
    assert!(c.closed());
}

/// Issue 12 item 8: a byte that never occurs in UTF-8 (overlong C0/C1, F5..FF) in the
/// request-target, raw or percent-encoded, is 400 as in lighttpd, not 404; other
/// non-ASCII bytes are looked up as usual.
#[test]
fn non_utf8_target_is_400() {
    let s = start();
    for (target, want) in [
        (&b"/\xc0\xaf"[..], 400),
        (b"/%c0%af", 400),
        (b"/index.html?q=%FF", 400),
        (b"/\xf8index.html", 400),
        (b"/caf\xc3\xa9", 404),
        (b"/%e9", 404),
        (b"/index.html#%c0", 200),
    ] {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = wire::exchange(s.port, &req).expect("answer");
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(target));
    }
}
