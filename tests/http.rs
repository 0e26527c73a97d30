//! HTTP/1.x connection handling through the real server: keep-alive, pipelining,
//! HTTP/1.0, request bodies (Content-Length, chunked, 100-continue), limits
//! (413, 414, 431, max-keep-alive-requests, max-connections) and timeouts.

mod common;

use common::wire;

use common::Server;
use std::io::Write;
use std::time::{Duration, Instant};

fn conf(extra: &str) -> String {
    format!(
        r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.tag = "wick-test"
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain" )
{extra}
"#
    )
}

fn start(extra: &str) -> Server {
    Server::start_with(&conf(extra), &[], |d| {
        let w = d.join("www");
        std::fs::write(w.join("index.html"), "index\n").expect("write");
        std::fs::write(w.join("a.txt"), "file a\n").expect("write");
        std::fs::write(w.join("b.txt"), "file b\n").expect("write");
        std::fs::write(w.join("c.txt"), "file c\n").expect("write");
    })
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    for _ in 0..5 {
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.response().expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "file a\n");
        assert_eq!(r.header("Connection"), None);
        assert_eq!(r.header("Server"), Some("wick-test"));
        let date = r.header("Date").expect("Date");
        assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /c.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /c.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("1").text(), "file a\n");
    assert_eq!(c.response().expect("2").text(), "file b\n");
    let h = c.response_to(true).expect("3");
    assert_eq!((h.status, h.header("Content-Length")), (200, Some("7")));
    assert_eq!(c.response().expect("4").status, 404);
    assert_eq!(c.response().expect("5").text(), "file c\n");
    assert!(c.alive());
}

#[test]
fn pipelining_stops_at_connection_close() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /c.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("1").text(), "file a\n");
    let r = c.response().expect("2");
    assert_eq!(r.text(), "file b\n");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(
        c.closed(),
        "the request after Connection: close was answered"
    );
}

#[test]
fn one_blank_line_between_requests_is_skipped_two_are_400() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    // One CRLF after a request (as some clients send after a POST body): skipped.
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("1").text(), "file a\n");
    assert_eq!(c.response().expect("2").text(), "file b\n");
    // Two: lighttpd's "invalid request-line", 400 and close.
    c.send(b"\r\n\r\nGET /c.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("3").status, 400);
    assert!(c.closed());
    // The same when the two arrive in separate writes.
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n\r\n");
    assert_eq!(c.response().expect("4").status, 200);
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"\r\nGET /c.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("5").status, 400);
}

#[test]
fn request_split_in_single_bytes() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.s.set_nodelay(true).expect("nodelay");
    for b in b"GET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n" {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.response().expect("response").text(), "file b\n");
}

#[test]
fn http10_closes_unless_keep_alive() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.0\r\n\r\n");
    let r = c.response().expect("response");
    assert_eq!(r.version, "HTTP/1.0");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.closed());

    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response().expect("response");
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert!(c.alive());
}

#[test]
fn bodies_are_read_and_the_connection_continues() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    assert_eq!(c.response().expect("post").text(), "file a\n");
    c.send(b"POST /b.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n");
    assert_eq!(c.response().expect("chunked").text(), "file b\n");
    // A body that arrives in pieces, after the head.
    c.send(b"POST /c.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nab");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"cdefGET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("split body").text(), "file c\n");
    assert_eq!(c.response().expect("next").text(), "file a\n");
}

#[test]
fn expect_100_continue() {
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response().expect("interim");
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    assert_eq!(c.response().expect("final").text(), "file a\n");
}

#[test]
fn expect_100_continue_on_a_closing_connection_is_not_held_back() {
    // The last response of a closing connection is corked until close(2); the
    // interim 100 must not be, or the client waits for it in vain.
    let s = start("");
    let mut c = wire::Conn::new(s.port);
    c.s.set_read_timeout(Some(Duration::from_millis(800)))
        .expect("timeout");
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response().expect("interim 100 within 0.8 s");
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    assert_eq!(c.response().expect("final").text(), "file a\n");
    assert!(c.closed());
}

/// Segments the client received on `s`: (all, with data), from TCP_INFO.
fn segments_in(s: &std::net::TcpStream) -> (u32, u32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed tcp_info is a valid out-buffer of the length passed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt on an open socket into a buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_INFO");
    (info.tcpi_segs_in, info.tcpi_data_segs_in)
}

#[test]
fn last_response_and_fin_share_a_segment() {
    // Connection: close: the response and the FIN leave together, so the client
    // gets SYN-ACK, the ACK of its request and one data+FIN segment, no lone FIN.
    let s = start("");
    for req in [
        &b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        b"GET /a.txt HTTP/1.0\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let mut c = wire::Conn::new(s.port);
        c.send(req);
        assert!(c.response().is_some());
        assert!(c.closed());
        let (all, data) = segments_in(&c.s);
        assert!(
            all - data <= 2,
            "{all} segments in, {data} with data: the FIN came alone"
        );
    }
}

#[test]
fn max_request_size_refuses_before_reading_the_body() {
    let s = start("server.max-request-size = 1");
    let mut c = wire::Conn::new(s.port);
    c.send(
        b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.response().expect("413");
    assert_eq!(r.status, 413);
    assert!(c.closed());
    // The limit is in KiB: 1024 bytes pass.
    let mut c = wire::Conn::new(s.port);
    let mut req = b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 1024));
    c.send(&req);
    assert_eq!(c.response().expect("200").status, 200);
}

#[test]
fn response_is_read_whole_while_the_client_keeps_sending() {
    // Lingering close: the 413 arrives intact although the unread body follows.
    let s = start("server.max-request-size = 1");
    let mut c = wire::Conn::new(s.port);
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n");
    let chunk = vec![b'x'; 65536];
    for _ in 0..4 {
        if c.s.write_all(&chunk).is_err() {
            break;
        }
    }
    let r = c.response().expect("413 survives");
    assert_eq!(r.status, 413);
}

#[test]
fn field_size_limits() {
    let s = start("server.max-request-field-size = 2048");
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 3000));
    long.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(wire::exchange(s.port, &long).expect("414").status, 414);
    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..100 {
        big.extend_from_slice(format!("X-Field-{i}: {}\r\n", "v".repeat(30)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(wire::exchange(s.port, &big).expect("431").status, 431);
    // Under the limit: fine.
    assert_eq!(
        wire::exchange(s.port, b"GET / HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n")
            .expect("200")
            .status,
        200
    );
}

#[test]
fn max_keep_alive_requests() {
    let s = start("server.max-keep-alive-requests = 2");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("1").header("Connection"), None);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("2").header("Connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn keep_alive_idle_timeout_closes_idle_connections() {
    let s = start("server.max-keep-alive-idle = 1");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().expect("1").status, 200);
    let t = Instant::now();
    assert!(c.closed(), "idle connection kept");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "closed late: {:?}",
        t.elapsed()
    );
}

#[test]
fn slow_header_is_cut_off_at_max_read_idle() {
    let s = start("server.max-read-idle = 1");
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /a.txt HTTP/1.1\r\n");
    let t = Instant::now();
    let r = c
        .response()
        .expect("no 408 for a head not in within max-read-idle");
    assert_eq!(r.status, 408);
    assert!(c.closed(), "slow client kept");
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn max_connections_leaves_excess_in_the_queue() {
    let s = start("server.max-connections = 2");
    let mut a = wire::Conn::new(s.port);
    let mut b = wire::Conn::new(s.port);
    a.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    b.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(a.response().is_some() && b.response().is_some());
    // A third connection completes its handshake in the kernel but is not served...
    let mut c = wire::Conn::new(s.port);
    c.s.set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    c.send(b"GET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(c.response().is_none(), "served beyond max-connections");
    // ...until a slot frees: then it is accepted, not dropped.
    drop(a);
    c.s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let r = c.response();
    assert_eq!(r.expect("served once a slot freed").text(), "file b\n");
}

#[test]
fn silent_connection_takes_no_slot() {
    // server.defer-accept (wickd's default 1): a connection that sends nothing is
    // not accepted, so it cannot hold the only slot against a real request.
    let s = start("server.max-connections = 1\nserver.max-read-idle = 30");
    let _silent = wire::Conn::new(s.port);
    std::thread::sleep(Duration::from_millis(200));
    let mut b = wire::Conn::new(s.port);
    b.s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    b.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        b.response()
            .expect("served beside a silent connection")
            .text(),
        "file a\n"
    );
}

#[test]
fn defer_accept_zero_accepts_silent_connections() {
    // As lighttpd's default: the silent connection is accepted and holds the slot.
    let s = start("server.max-connections = 1\nserver.max-read-idle = 30\nserver.defer-accept = 0");
    let silent = wire::Conn::new(s.port);
    std::thread::sleep(Duration::from_millis(200));
    let mut b = wire::Conn::new(s.port);
    b.s.set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    b.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        b.response().is_none(),
        "the silent connection was not accepted"
    );
    drop(silent);
    b.s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(
        b.response().expect("served once the slot freed").text(),
        "file a\n"
    );
}

#[test]
fn reader_that_stalls_is_cut_off_at_max_write_idle() {
    let s = Server::start_with(&conf("server.max-write-idle = 1"), &[], |d| {
        std::fs::write(d.join("www/big.bin"), vec![b'x'; 32 << 20]).expect("write");
    });
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(3500));
    c.s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match std::io::Read::read(&mut c.s, &mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!("no close, only {e} after {got} bytes"),
        }
    }
    assert!(
        got < 32 << 20,
        "the whole file arrived: the stalled reader was not cut off"
    );
}
