//! mod_wstunnel through the real server: wickd answers the WebSocket handshake
//! itself and carries frames to and from a plain TCP backend of the test's own
//! (it greets, then echoes what it gets in capitals, and records it). The
//! handshake (Sec-WebSocket-Accept, the "binary" subprotocol), frames in
//! pieces both ways, fragmented messages, a large binary message, ping and
//! pong, the client's close, a broken frame (1002), the backend's close
//! (1001), wstunnel.ping-interval, wstunnel.origins, the refusals (400, 403,
//! 503), a request that is not a handshake, and a backend that is down.

mod common;
#[path = "common/tunnel.rs"]
mod tunnel;
#[path = "common/websocket.rs"]
mod websocket;

use common::{wait_until, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tunnel::{at_eof, Backend};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn front(backend_port: u16, keys: &str) -> Server {
    Server::start(&format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_wstunnel")
wstunnel.server = ( "/ws" => ( ( "host" => "127.0.0.1", "port" => {backend_port} ) ) )
{keys}
"#
    ))
}

fn handshake(extra: &str) -> String {
    format!(
        "GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Connect and send `req`; the response head.
fn open(s: &Server, req: &str) -> (TcpStream, String) {
    tunnel::open(s.port, req.as_bytes())
}

fn frame_of(c: &mut TcpStream) -> (u8, Vec<u8>) {
    websocket::read_frame(c).expect("read").expect("a frame")
}

/// Whatever frames come until `want` bytes of text payload are in.
fn text_until(c: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut all = Vec::new();
    while all.len() < want {
        let (op, p) = frame_of(c);
        assert_eq!(op, 1, "text frames");
        all.extend(p);
    }
    all
}

#[test]
fn a_conversation_with_frames_in_pieces() {
    let b = Backend::start();
    let s = front(b.port, "");
    let (mut c, head) = open(&s, &handshake(""));
    websocket::assert_switched(&head, KEY);
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"));
    // The backend's greeting, as a text frame (wstunnel.frame-type's default).
    assert_eq!(frame_of(&mut c), (1, b"hi".to_vec()));
    // A frame dribbled a byte at a time.
    for byte in websocket::frame(1, b"slowly", Some([7, 1, 7, 1])) {
        c.write_all(&[byte]).expect("byte");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(text_until(&mut c, 6), b"SLOWLY");
    // A fragmented message and a ping in one write: the pong first or after
    // the echo, and the backend gets the message's bytes joined.
    let mut w = websocket::frame(1, b"frag", Some([1, 2, 3, 4]));
    w[0] &= 0x7f; // not final
    let mut cont = websocket::frame(0, b"ment", Some([4, 3, 2, 1]));
    cont[0] = 0x80;
    w.extend(cont);
    w.extend(websocket::frame(9, b"are you there", Some([9, 9, 9, 9])));
    c.write_all(&w).expect("frames");
    let mut text = Vec::new();
    let mut pong = None;
    while text.len() < 8 || pong.is_none() {
        match frame_of(&mut c) {
            (1, p) => text.extend(p),
            (10, p) => pong = Some(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(text, b"FRAGMENT");
    assert_eq!(pong.as_deref(), Some(&b"are you there"[..]));
    assert_eq!(b.received(), b"slowlyfragment");
    // The client's close: answered with a close (1000), then the connection
    // closes and so does the backend's.
    c.write_all(&websocket::frame(
        8,
        &1000u16.to_be_bytes(),
        Some([5, 6, 7, 8]),
    ))
    .expect("close");
    assert_eq!(frame_of(&mut c), (8, 1000u16.to_be_bytes().to_vec()));
    assert!(
        at_eof(&mut c),
        "the connection closes after the close frame"
    );
}

#[test]
fn binary_frames_carry_a_large_message_both_ways() {
    let b = Backend::start();
    let s = front(b.port, "wstunnel.frame-type = \"binary\"");
    let (mut c, head) = open(&s, &handshake(""));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // Not offered by the client: not named in the answer.
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"));
    assert_eq!(frame_of(&mut c), (2, b"hi".to_vec()));
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| b"abcdefgh"[(i % 8) as usize])
        .collect();
    websocket::write_frame(&mut c, 2, &big, Some([3, 1, 4, 1])).expect("big");
    let mut back = Vec::new();
    while back.len() < big.len() {
        let (op, p) = frame_of(&mut c);
        assert_eq!(op, 2);
        back.extend(p);
    }
    assert_eq!(back, big.to_ascii_uppercase());
    assert_eq!(b.received(), big);
}

#[test]
fn the_binary_subprotocol_when_offered() {
    let b = Backend::start();
    let s = front(b.port, "");
    let (mut c, head) = open(&s, &handshake("Sec-WebSocket-Protocol: chat, binary\r\n"));
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: binary\r\n"),
        "{head}"
    );
    assert_eq!(frame_of(&mut c), (2, b"hi".to_vec()));
}

#[test]
fn a_broken_frame_is_closed_with_1002() {
    let b = Backend::start();
    let s = front(b.port, "");
    let (mut c, head) = open(&s, &handshake(""));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(frame_of(&mut c), (1, b"hi".to_vec()));
    // Unmasked: a client's frame must be masked (RFC 6455 5.1).
    c.write_all(&websocket::frame(1, b"naked", None))
        .expect("frame");
    assert_eq!(frame_of(&mut c), (8, 1002u16.to_be_bytes().to_vec()));
    assert!(at_eof(&mut c));
    assert!(b.received().is_empty(), "nothing of it reached the backend");
    assert!(wait_until(Duration::from_secs(3), || s
        .error_log()
        .contains("not masked")));
}

#[test]
fn the_backends_close_is_a_close_frame_1001() {
    let b = Backend::start();
    let s = front(b.port, "");
    let (mut c, head) = open(&s, &handshake(""));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(frame_of(&mut c), (1, b"hi".to_vec()));
    websocket::write_frame(&mut c, 1, b"QUIT", Some([1, 2, 3, 4])).expect("quit");
    assert_eq!(frame_of(&mut c), (8, 1001u16.to_be_bytes().to_vec()));
    assert!(at_eof(&mut c));
}

#[test]
fn pings_at_the_interval() {
    let b = Backend::start();
    let s = front(b.port, "wstunnel.ping-interval = 1");
    let (mut c, head) = open(&s, &handshake(""));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(frame_of(&mut c), (1, b"hi".to_vec()));
    let t = Instant::now();
    assert_eq!(frame_of(&mut c), (9, b"ping".to_vec()));
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // A pong back is taken and goes nowhere.
    websocket::write_frame(&mut c, 10, b"ping", Some([1, 1, 1, 1])).expect("pong");
    websocket::write_frame(&mut c, 1, b"still", Some([1, 1, 1, 1])).expect("text");
    loop {
        match frame_of(&mut c) {
            (9, _) => continue,
            (op, p) => {
                assert_eq!((op, &p[..]), (1, &b"STILL"[..]));
                break;
            }
        }
    }
    assert_eq!(b.received(), b"still");
}

#[test]
fn origins_and_refusals() {
    let b = Backend::start();
    let s = front(
        b.port,
        "wstunnel.origins = ( \"example.org\", \"https://exact.test\" )",
    );
    let status = |extra: &str, version: &str| {
        let req = handshake(extra).replace("Version: 13", &format!("Version: {version}"));
        let (mut c, head) = open(&s, &req);
        let code = head.get(9..12).unwrap_or("").to_string();
        // A refusal closes the connection, as lighttpd's does.
        if code != "101" {
            assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
        }
        code
    };
    assert_eq!(status("Origin: https://www.example.org\r\n", "13"), "101");
    assert_eq!(status("Origin: https://exact.test\r\n", "13"), "101");
    // A suffix matches after a '.' only (lighttpd's test).
    assert_eq!(status("Origin: https://example.org\r\n", "13"), "403");
    assert_eq!(
        status("Sec-WebSocket-Origin: http://a.example.org\r\n", "13"),
        "101"
    );
    assert_eq!(status("Origin: https://badexample.org\r\n", "13"), "403");
    assert_eq!(status("", "13"), "400");
    assert_eq!(status("Origin: https://www.example.org\r\n", "7"), "503");
    assert_eq!(status("Origin: https://www.example.org\r\n", "-1"), "400");
    let no_key = handshake("Origin: https://www.example.org\r\n")
        .replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "");
    let (_, head) = open(&s, &no_key);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
}

#[test]
fn not_a_handshake_is_not_the_modules() {
    let b = Backend::start();
    let s = front(b.port, "");
    std::fs::write(s.docroot().join("ws"), "a file").expect("file");
    let r = s.get("/ws");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"a file");
    // HTTP/1.0 and POST are not taken up either.
    let raw = s.raw(
        b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: eA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(
        raw.starts_with(b"HTTP/1.0 200 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        b.got.lock().expect("got").is_empty(),
        "no backend connection"
    );
}

#[test]
fn a_backend_that_is_down_is_503() {
    let port = common::free_port();
    let s = front(port, "");
    let (_, head) = open(&s, &handshake(""));
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
}
