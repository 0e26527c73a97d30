//! RFC 9113's connection errors (GOAWAY with the code it names, then the end)
//! and stream errors (RST_STREAM, the connection goes on), with frames no
//! well-behaved client sends.

use super::*;
use h2c::{
    frame_bytes, literal, CONTINUATION, DATA, END_HEADERS, END_STREAM, FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR, HEADERS, PING, PROTOCOL_ERROR, PUSH_PROMISE, SETTINGS, SETTINGS_ENABLE_PUSH,
    SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE,
};

const T: Duration = Duration::from_secs(5);

/// Send `bytes` on a fresh connection (past the SETTINGS exchange): the
/// GOAWAY code that comes back, after which the server must close.
fn goaway_code(s: &Server, bytes: &[u8]) -> u32 {
    let mut c = client(s);
    c.send(bytes);
    let g = c.await_goaway(T);
    assert!(c.closes(T), "the connection stayed open after GOAWAY {g:?}");
    g.map_or(u32::MAX, |(_, code)| code)
}

/// The stream is reset with `code` and the connection still serves.
fn reset_then_served(c: &mut Client, id: u32, code: u32, what: &str) {
    assert_eq!(c.await_reset(id, T), Some(code), "{what}: stream {id}");
    assert!(c.goaway.is_none(), "{what}: GOAWAY {:?}", c.goaway);
    let next = id + 2;
    c.get(next, "/index.html");
    let r = c.response(next);
    assert_eq!((r.status, r.text().as_str()), (200, INDEX), "{what}: after");
}

#[test]
fn frame_over_16384_bytes_is_frame_size_error() {
    let s = start("");
    let big = vec![0u8; 16385];
    assert_eq!(
        goaway_code(&s, &frame_bytes(HEADERS, END_HEADERS, 1, &big)),
        FRAME_SIZE_ERROR
    );
    // At the limit it is a frame like any: 16384 bytes of padding-free DATA on
    // an open stream are taken.
    let mut c = client(&s);
    c.request(
        1,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "16384")],
        false,
    );
    c.data(1, &pattern(16384), true);
    let r = c.response(1);
    assert_eq!((r.status, r.body.len()), (200, 16384));
}

#[test]
fn headers_on_an_even_stream_is_protocol_error() {
    let s = start("");
    let b = literal(&h2c::request_fields("GET", "/index.html", &[]));
    assert_eq!(
        goaway_code(&s, &frame_bytes(HEADERS, END_HEADERS | END_STREAM, 2, &b)),
        PROTOCOL_ERROR
    );
}

#[test]
fn malformed_heads_reset_only_their_stream() {
    let s = start("");
    let mut c = client(&s);
    let base = [(":method", "GET"), (":scheme", "http"), (":authority", "x")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut f = base.to_vec();
        f.push((":path", "/index.html"));
        f.extend_from_slice(extra);
        f
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no :path", base.to_vec()),
        ("unknown pseudo-header", with(&[(":protocol-x", "y")])),
        ("upper-case name", with(&[("X-Upper", "1")])),
        ("connection", with(&[("connection", "keep-alive")])),
        (
            "transfer-encoding",
            with(&[("transfer-encoding", "chunked")]),
        ),
        ("te: gzip", with(&[("te", "gzip")])),
        ("keep-alive", with(&[("keep-alive", "300")])),
        (
            "pseudo-header after a field",
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                ("x-a", "1"),
                (":path", "/index.html"),
            ],
        ),
        ("repeated :path", with(&[(":path", "/other")])),
    ];
    let mut id = 1;
    for (what, fields) in cases {
        c.headers(id, &literal(&fields), true);
        reset_then_served(&mut c, id, PROTOCOL_ERROR, what);
        id += 4;
    }
    // te: trailers is the one te allowed.
    c.headers(id, &literal(&with(&[("te", "trailers")])), true);
    assert_eq!(c.response(id).status, 200);
}

#[test]
fn content_length_that_the_data_contradicts() {
    let s = start("");
    let mut c = client(&s);
    // Less than announced, then the end.
    c.request(
        1,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "10")],
        false,
    );
    c.data(1, b"abc", true);
    reset_then_served(&mut c, 1, PROTOCOL_ERROR, "short body");
    // More than announced.
    c.request(
        5,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "2")],
        false,
    );
    c.data(5, b"abc", true);
    reset_then_served(&mut c, 5, PROTOCOL_ERROR, "long body");
    // A length with END_STREAM on the HEADERS (no body at all).
    c.request(
        9,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "4")],
        true,
    );
    reset_then_served(&mut c, 9, PROTOCOL_ERROR, "no body");
}

#[test]
fn window_update_of_zero_on_the_connection() {
    let s = start("");
    assert_eq!(
        goaway_code(&s, &frame_bytes(WINDOW_UPDATE, 0, 0, &0u32.to_be_bytes())),
        PROTOCOL_ERROR
    );
}

#[test]
fn window_overflow_is_flow_control_error() {
    let s = start("");
    // The connection's: 65,535 + 2^31-1.
    let inc = 0x7fff_ffffu32.to_be_bytes();
    assert_eq!(
        goaway_code(&s, &frame_bytes(WINDOW_UPDATE, 0, 0, &inc)),
        FLOW_CONTROL_ERROR
    );
    // A stream's (one waiting for its body): RST_STREAM, the connection goes on.
    let mut c = client(&s);
    c.request(
        1,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "10")],
        false,
    );
    c.frame(WINDOW_UPDATE, 0, 1, &inc);
    reset_then_served(&mut c, 1, FLOW_CONTROL_ERROR, "stream window overflow");
    // SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1.
    let mut p = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
    p.extend_from_slice(&0x8000_0000u32.to_be_bytes());
    assert_eq!(
        goaway_code(&s, &frame_bytes(SETTINGS, 0, 0, &p)),
        FLOW_CONTROL_ERROR
    );
}

#[test]
fn data_beyond_the_stream_window() {
    // The body streams (server.stream-request-body 2): received whole (the
    // default, 0) it would all be taken into the spool and granted back.
    let s = start("server.stream-request-body = 2");
    let mut c = client(&s);
    // lazy.sh reads nothing for 3 s: what the server grants back is what the
    // CGI plumbing takes (bounded), far less than 1 MiB.
    c.request(
        1,
        "POST",
        "/cgi-bin/lazy.sh",
        &[("content-length", "1048576")],
        false,
    );
    let chunk = pattern(16384);
    let mut burst = Vec::new();
    for _ in 0..64 {
        burst.extend(frame_bytes(DATA, 0, 1, &chunk));
    }
    c.send(&burst);
    reset_then_served(&mut c, 1, FLOW_CONTROL_ERROR, "DATA beyond the window");
}

#[test]
fn settings_errors() {
    let s = start("");
    let mut p = SETTINGS_ENABLE_PUSH.to_be_bytes().to_vec();
    p.extend_from_slice(&2u32.to_be_bytes());
    assert_eq!(
        goaway_code(&s, &frame_bytes(SETTINGS, 0, 0, &p)),
        PROTOCOL_ERROR
    );
    assert_eq!(
        goaway_code(&s, &frame_bytes(SETTINGS, 0, 0, &[0u8; 7])),
        FRAME_SIZE_ERROR
    );
    // SETTINGS ACK with a payload, SETTINGS on a stream.
    assert_eq!(
        goaway_code(&s, &frame_bytes(SETTINGS, h2c::ACK, 0, &[0u8; 6])),
        FRAME_SIZE_ERROR
    );
    assert_eq!(
        goaway_code(&s, &frame_bytes(SETTINGS, 0, 1, &[])),
        PROTOCOL_ERROR
    );
}

#[test]
fn ping_is_acknowledged_with_its_payload() {
    let s = start("");
    let mut c = client(&s);
    let payload = *b"wick-h2!";
    c.ping(payload);
    c.ping(*b"\x00\x01\x02\x03\xfc\xfd\xfe\xff");
    assert!(c.wait(T, |c| c.ping_acks.len() == 2), "{:?}", c.ping_acks);
    assert_eq!(c.ping_acks[0], payload);
    assert_eq!(c.ping_acks[1], *b"\x00\x01\x02\x03\xfc\xfd\xfe\xff");
    // A PING of 7 bytes is a connection error.
    assert_eq!(
        goaway_code(&s, &frame_bytes(PING, 0, 0, &[0u8; 7])),
        FRAME_SIZE_ERROR
    );
}

#[test]
fn bad_preface_closes_the_connection() {
    let s = start("");
    // The first 16 bytes are the preface's, the rest is not.
    let mut c = Client::tcp(s.port);
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    c.settings(&[]);
    assert!(c.closes(T), "connection open after a bad preface");
    assert!(c.streams.is_empty() && c.ping_acks.is_empty());
    // The preface, then something other than SETTINGS.
    let mut c = Client::tcp(s.port);
    c.send(h2c::PREFACE);
    c.ping(*b"12345678");
    let g = c.await_goaway(T);
    assert_eq!(g.map(|g| g.1), Some(PROTOCOL_ERROR), "{g:?}");
    assert!(c.closes(T));
    assert!(c.ping_acks.is_empty(), "PING answered before SETTINGS");
}

#[test]
fn push_promise_from_a_client() {
    let s = start("");
    let mut p = 2u32.to_be_bytes().to_vec();
    p.extend(literal(&h2c::request_fields("GET", "/", &[])));
    assert_eq!(
        goaway_code(&s, &frame_bytes(PUSH_PROMISE, END_HEADERS, 1, &p)),
        PROTOCOL_ERROR
    );
}

#[test]
fn header_block_interrupted_or_continued_from_nowhere() {
    let s = start("");
    let b = literal(&h2c::request_fields("GET", "/index.html", &[]));
    // CONTINUATION without a HEADERS before it.
    assert_eq!(
        goaway_code(&s, &frame_bytes(CONTINUATION, END_HEADERS, 1, &b)),
        PROTOCOL_ERROR
    );
    // Another frame inside a header block.
    let mut bytes = frame_bytes(HEADERS, END_STREAM, 1, &b[..4]);
    bytes.extend(frame_bytes(PING, 0, 0, b"12345678"));
    assert_eq!(goaway_code(&s, &bytes), PROTOCOL_ERROR);
    // Split well, it is served.
    let mut c = client(&s);
    c.frame(HEADERS, END_STREAM, 1, &b[..4]);
    c.frame(CONTINUATION, 0, 1, &b[4..9]);
    c.frame(CONTINUATION, END_HEADERS, 1, &b[9..]);
    assert_eq!(c.response(1).text(), INDEX);
}

/// A stream id lower than one the client opened, never used itself, cannot be
/// opened (5.1.1): GOAWAY PROTOCOL_ERROR. A HEADERS on a stream we reset is
/// one the client may have sent before it saw the reset: dropped.
#[test]
fn headers_on_a_lower_stream_is_protocol_error_unless_we_reset_it() {
    let s = start("");
    let mut c = client(&s);
    c.get(5, "/index.html");
    assert_eq!(c.response(5).status, 200);
    let b = literal(&h2c::request_fields("GET", "/index.html", &[]));
    c.send(&frame_bytes(HEADERS, END_HEADERS | END_STREAM, 3, &b));
    let g = c.await_goaway(T);
    assert_eq!(g.map(|(_, code)| code), Some(PROTOCOL_ERROR), "{g:?}");
    assert!(c.closes(T));

    let mut c = client(&s);
    // DATA after END_STREAM: we reset stream 1 ...
    c.get(1, "/cgi-bin/slow.sh");
    c.data(1, b"late", false);
    assert_eq!(c.await_reset(1, T), Some(h2c::STREAM_CLOSED));
    // ... so trailers the client had in flight for it are dropped, and the
    // connection serves on.
    c.send(&frame_bytes(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &literal(&[("x-t", "1")]),
    ));
    c.get(3, "/index.html");
    let r = c.response(3);
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    assert!(c.goaway.is_none(), "{:?}", c.goaway);
}

#[test]
fn data_after_end_stream_is_stream_closed() {
    let s = start("");
    let mut c = client(&s);
    // The stream is half closed (remote) while slow.sh runs.
    c.get(1, "/cgi-bin/slow.sh");
    c.data(1, b"late", false);
    reset_then_served(&mut c, 1, h2c::STREAM_CLOSED, "DATA after END_STREAM");
}

/// What a case tests, its pseudo-header fields, its regular fields.
type Case<'a> = (&'a str, [(&'a str, &'a str); 4], &'a [(&'a str, &'a str)]);

#[test]
fn no_request_line_or_field_smuggled_through_the_http1_detour() {
    // Each stream's request becomes an HTTP/1.1 head: CR, LF or NUL in any
    // field, pseudo-header or not, is a malformed request (RFC 9113 8.2.1).
    let s = start("");
    let mut c = client(&s);
    let cases: [Case; 4] = [
        (
            "CRLF in :path",
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "x"),
                (
                    ":path",
                    "/index.html HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /cgi-bin/env.sh",
                ),
            ],
            &[],
        ),
        (
            "CRLF in a value",
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "x"),
                (":path", "/cgi-bin/env.sh"),
            ],
            &[("x-a", "1\r\nx-injected: yes")],
        ),
        (
            "LF in :authority",
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "x\nx-injected: yes"),
                (":path", "/cgi-bin/env.sh"),
            ],
            &[],
        ),
        (
            "NUL in a value",
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "x"),
                (":path", "/cgi-bin/env.sh"),
            ],
            &[("x-a", "1\0")],
        ),
    ];
    let mut id = 1;
    for (what, pseudo, extra) in cases {
        let mut f = pseudo.to_vec();
        f.extend_from_slice(extra);
        c.headers(id, &literal(&f), true);
        reset_then_served(&mut c, id, PROTOCOL_ERROR, what);
        id += 4;
    }
    // A space in :method makes no request line of another shape: refused by
    // the HTTP/1.1 parser (400), never served.
    let f = [
        (":method", "GET /cgi-bin/env.sh"),
        (":scheme", "http"),
        (":authority", "x"),
        (":path", "/index.html"),
    ];
    c.headers(id, &literal(&f), true);
    let r = c.response(id);
    assert!(
        r.reset.is_some() || r.status == 400,
        "a :method with a space was answered {}",
        r.status
    );
}
