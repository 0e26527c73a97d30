//! The connection core driven by hand: a `Conn` over one end of a socketpair, a
//! `Ctx` from a config string, no server process, no poller, no TCP. Each test
//! writes what a client would, calls `Conn::drive` as the event loop would, and
//! reads what came back: pipelining, 100-continue, lingering close, a large body
//! over several turns (the exact budget is response.rs's unit test), body limits,
//! a handler that yields many times.

use crate::conn::{Conn, Flags, Next, Phase};
use crate::ctx::Ctx;
use crate::site::Site;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Rig {
    ctx: Ctx,
    conn: Conn,
    client: UnixStream,
    rbuf: Vec<u8>,
    dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rig(name: &str, extra: &str, files: &[(&str, &[u8])]) -> Rig {
    let dir = std::env::temp_dir().join(format!("wick-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("docroot");
    for (path, body) in files {
        let p = www.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        std::fs::write(p, body).expect("file");
    }
    let text = format!(
        "server.document-root = \"{}\"\nserver.port = 8080\n{extra}\n",
        www.display()
    );
    let cfg = wick_conf::load_str(&text, "core-test.conf", Path::new("/")).expect("config");
    let site = Site::new(cfg).expect("site");
    let ctx = Ctx::new(site);
    let (client, server) = UnixStream::pair().expect("socketpair");
    server.set_nonblocking(true).expect("nonblocking");
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let peer = (crate::site::unspecified(), 0);
    let conn = Conn::new(OwnedFd::from(server), peer, 0, true, ctx.clock.mono);
    Rig {
        ctx,
        conn,
        client,
        rbuf: vec![0u8; 64 << 10],
        dir,
    }
}

impl Rig {
    fn send(&mut self, b: &[u8]) {
        self.client.write_all(b).expect("client write");
    }

    /// One turn of the event loop for this connection, as after a readable
    /// event (which, in `Server::serve`, tells it the socket is worth a read).
    fn drive(&mut self) -> Next {
        self.conn.flags.remove(Flags::DRAINED);
        self.conn.drive(&mut self.ctx, &mut self.rbuf)
    }

    /// What the server sent so far (without waiting for more than a moment).
    fn received(&mut self) -> String {
        self.client
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = self.client.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

fn statuses(s: &str) -> Vec<&str> {
    s.match_indices("HTTP/1.1 ")
        .map(|(i, _)| &s[i + 9..i + 12])
        .collect()
}

#[test]
fn pipelined_requests_answered_in_order_in_one_turn() {
    let mut r = rig("pipe", "", &[("a.txt", b"A"), ("b.txt", b"B")]);
    r.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(matches!(r.drive(), Next::Keep));
    let got = r.received();
    assert_eq!(statuses(&got), ["200", "404", "200"], "{got}");
    assert!(got.ends_with("\r\n\r\nB"), "{got}");
    assert_eq!(r.conn.phase, Phase::Head);
}

#[test]
fn expect_100_continue_comes_before_the_body_is_read() {
    let mut r = rig("continue", "", &[("a.txt", b"A")]);
    r.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    r.drive();
    assert_eq!(r.received(), "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(r.conn.phase, Phase::Body, "the response waits for the body");
    r.send(b"hello");
    r.drive();
    let got = r.received();
    assert!(got.starts_with("HTTP/1.1 "), "{got}");
    assert_eq!(r.conn.phase, Phase::Head);
}

#[test]
fn a_refused_request_with_unread_input_lingers() {
    let mut r = rig("linger", "", &[]);
    // A bad request followed by more bytes: answered, write side shut, then the
    // connection reads (and drops) what the client still sends until it closes.
    r.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\n");
    assert!(matches!(r.drive(), Next::Keep));
    assert_eq!(r.conn.phase, Phase::Linger);
    let got = r.received();
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    r.send(b"more junk");
    assert!(matches!(r.drive(), Next::Keep), "still lingering");
    r.client
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    assert!(matches!(r.drive(), Next::Close));
}

#[test]
fn a_large_body_goes_out_over_several_turns() {
    let big = vec![b'x'; 1 << 20];
    let mut r = rig("budget", "", &[("big.bin", &big)]);
    r.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    // The socket takes far less than 1 MiB at once: the response waits in Write.
    let first = r.drive();
    assert!(matches!(first, Next::Keep | Next::Again));
    assert_eq!(r.conn.phase, Phase::Write);
    let mut got = 0usize;
    let mut turns = 0;
    let mut buf = vec![0u8; 1 << 20];
    r.client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    while r.conn.phase == Phase::Write && turns < 10_000 {
        if let Ok(n) = r.client.read(&mut buf) {
            got += n;
        }
        r.drive();
        turns += 1;
    }
    got += r.received().len();
    assert_eq!(r.conn.phase, Phase::Head);
    assert!(got > 1 << 20, "{got}");
    assert!(turns > 1, "one turn moved the whole body");
}

#[test]
fn a_body_over_max_request_size_is_413_before_it_is_read() {
    let mut r = rig("limit", "server.max-request-size = 1", &[("a.txt", b"A")]);
    r.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    r.drive();
    let got = r.received();
    assert!(got.starts_with("HTTP/1.1 413 "), "{got}");
    // A chunk that announces more than the limit: refused on its size line.
    let mut r = rig("limit2", "server.max-request-size = 1", &[("a.txt", b"A")]);
    r.send(b"POST /a.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n");
    r.drive();
    let got = r.received();
    assert!(got.starts_with("HTTP/1.1 413 "), "{got}");
}

#[test]
fn a_handler_that_yields_many_times_finishes() {
    // mod_dirlisting builds a large listing as a deferred handler, a slice a turn.
    let names: Vec<String> = (0..3000).map(|i| format!("d/f{i:05}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let extra = "server.modules = ( \"mod_dirlisting\" )\ndir-listing.activate = \"enable\"";
    let mut r = rig("yield", extra, &files);
    r.send(b"GET /d/ HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut yields = 0;
    let mut buf = vec![0u8; 1 << 20];
    let mut got = Vec::new();
    r.client
        .set_read_timeout(Some(Duration::from_millis(1)))
        .expect("timeout");
    for _ in 0..10_000 {
        let next = r.drive();
        if let Ok(n) = r.client.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        if matches!(next, Next::Again) {
            yields += 1;
            continue;
        }
        if r.conn.phase == Phase::Head {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned() + &r.received();
    assert!(
        text.starts_with("HTTP/1.1 200 "),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(text.contains("f02999.txt"), "listing incomplete");
    assert!(yields > 1, "built in one turn ({yields} yields)");
}
