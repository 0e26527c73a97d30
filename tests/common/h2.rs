//! A raw-frame HTTP/2 client for the tests (used by tests/h2.rs only): it writes
//! any frame, well-formed or not, and reads what the server sends into per-stream
//! records (response head, body, trailers, RST_STREAM code), the GOAWAY it got,
//! PING acknowledgements and the server's SETTINGS. Request heads are HPACK
//! literals without indexing (`literal`, so a test may send names no encoder
//! would) or go through wick-hpack's `Encoder` (`encoded`); responses are decoded
//! with wick-hpack's `Decoder`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wick_hpack::{Decoder, Encoder};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const INTERNAL_ERROR: u32 = 0x2;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame as read.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// What the server sent on one stream.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    pub status: u16,
    /// Response fields (names as sent: lower case), pseudo-headers left out.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// DATA frames received (payload sizes).
    pub data_frames: Vec<usize>,
    /// END_STREAM seen.
    pub ended: bool,
    /// RST_STREAM code from the server.
    pub reset: Option<u32>,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Answered to the end, or reset.
    pub fn finished(&self) -> bool {
        self.ended || self.reset.is_some()
    }
}

pub struct Client<S = TcpStream> {
    pub s: S,
    buf: Vec<u8>,
    pub enc: Encoder,
    /// The decoder of the server's header blocks (`Decoder::new(n)` to follow a
    /// SETTINGS_HEADER_TABLE_SIZE of n).
    pub dec: Decoder,
    pub streams: HashMap<u32, Stream>,
    /// Stream ids in the order their DATA frames came (interleaving).
    pub data_order: Vec<u32>,
    /// The server's GOAWAY: (last stream id, error code).
    pub goaway: Option<(u32, u32)>,
    pub ping_acks: Vec<[u8; 8]>,
    /// The server's SETTINGS (identifier, value), in order.
    pub server_settings: Vec<(u16, u32)>,
    pub settings_acked: bool,
    /// The connection ended (EOF or an error other than a timeout).
    pub eof: bool,
    /// Grant back every DATA frame at once (on the stream and the connection).
    pub auto_window: bool,
    /// A header block being received (HEADERS without END_HEADERS).
    block: Option<(u32, u8, Vec<u8>)>,
    /// Frames other than these kinds are kept in `other` for tests to look at.
    pub other: Vec<Frame>,
    /// Bytes of DATA payload received in all.
    pub data_bytes: u64,
}

impl Client {
    /// A TCP connection to 127.0.0.1:`port`; nothing sent yet.
    pub fn tcp(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("write timeout");
        s.set_nodelay(true).expect("nodelay");
        Client::over(s)
    }

    /// Preface and SETTINGS (`settings`), then the server's SETTINGS read and
    /// acknowledged.
    pub fn connect(port: u16, settings: &[(u16, u32)]) -> Client {
        let mut c = Client::tcp(port);
        c.start(settings);
        c
    }
}

impl<S: Read + Write> Client<S> {
    pub fn over(s: S) -> Client<S> {
        Client {
            s,
            buf: Vec::new(),
            enc: Encoder::new(),
            dec: Decoder::new(4096),
            streams: HashMap::new(),
            data_order: Vec::new(),
            goaway: None,
            ping_acks: Vec::new(),
            server_settings: Vec::new(),
            settings_acked: false,
            eof: false,
            auto_window: true,
            block: None,
            other: Vec::new(),
            data_bytes: 0,
        }
    }

    /// The preface, our SETTINGS, and the server's SETTINGS and ACK awaited.
    pub fn start(&mut self, settings: &[(u16, u32)]) {
        self.send(PREFACE);
        self.settings(settings);
        let ok = self.wait(Duration::from_secs(5), |c| {
            !c.server_settings.is_empty() && c.settings_acked
        });
        assert!(ok, "no SETTINGS and SETTINGS ACK from the server");
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("write to the server");
        let _ = self.s.flush();
    }

    /// Write without failing the test (the server may have closed).
    pub fn try_send(&mut self, b: &[u8]) -> bool {
        self.s.write_all(b).is_ok() && self.s.flush().is_ok()
    }

    pub fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let b = frame_bytes(kind, flags, stream, payload);
        self.send(&b);
    }

    pub fn settings(&mut self, pairs: &[(u16, u32)]) {
        let mut p = Vec::new();
        for (id, v) in pairs {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        self.frame(SETTINGS, 0, 0, &p);
    }

    pub fn ping(&mut self, payload: [u8; 8]) {
        self.frame(PING, 0, 0, &payload);
    }

    pub fn window_update(&mut self, stream: u32, inc: u32) {
        self.frame(WINDOW_UPDATE, 0, stream, &inc.to_be_bytes());
    }

    pub fn rst(&mut self, stream: u32, code: u32) {
        self.frame(RST_STREAM, 0, stream, &code.to_be_bytes());
    }

    pub fn data(&mut self, stream: u32, b: &[u8], end: bool) {
        self.frame(DATA, if end { END_STREAM } else { 0 }, stream, b);
    }

    /// HEADERS with `block` (and CONTINUATION frames past 16,384 bytes).
    pub fn headers(&mut self, stream: u32, block: &[u8], end_stream: bool) {
        let mut parts = block.chunks(16384).peekable();
        let mut kind = HEADERS;
        let mut flags = if end_stream { END_STREAM } else { 0 };
        loop {
            let part = parts.next().unwrap_or_default();
            if parts.peek().is_none() {
                flags |= END_HEADERS;
            }
            self.frame(kind, flags, stream, part);
            if flags & END_HEADERS != 0 {
                break;
            }
            kind = CONTINUATION;
            flags = 0;
        }
    }

    /// A request through the connection's HPACK encoder (dynamic table used).
    pub fn encoded(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        self.enc.begin(&mut b);
        for (n, v) in fields {
            self.enc.field(n.as_bytes(), v.as_bytes(), &mut b);
        }
        b
    }

    /// GET `path` on `stream` (END_STREAM: no body).
    pub fn get(&mut self, stream: u32, path: &str) {
        let b = self.encoded(&request_fields("GET", path, &[]));
        self.headers(stream, &b, true);
    }

    /// `method` `path` with `extra` fields; `end`: no body follows.
    pub fn request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end: bool,
    ) {
        let b = self.encoded(&request_fields(method, path, extra));
        self.headers(stream, &b, end);
    }

    /// Read what the server sends until `done` holds, the connection ends or
    /// `limit` passes. Returns `done`'s last answer.
    pub fn wait(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let t = Instant::now();
        loop {
            if done(self) {
                return true;
            }
            if self.eof || t.elapsed() > limit {
                return done(self);
            }
            match self.read_frame() {
                Some(f) => self.take(f),
                None => continue,
            }
        }
    }

    /// Stream `id` to its end (or reset); panics after 10 s.
    pub fn response(&mut self, id: u32) -> Stream {
        self.response_within(id, Duration::from_secs(10))
    }

    /// Stream `id` to its end (or reset); panics after `limit`.
    pub fn response_within(&mut self, id: u32, limit: Duration) -> Stream {
        let ok = self.wait(limit, |c| c.streams.get(&id).is_some_and(|s| s.finished()));
        assert!(
            ok,
            "stream {id} not answered (goaway {:?}, eof {}, so far {:?})",
            self.goaway,
            self.eof,
            self.streams.get(&id)
        );
        self.streams.get(&id).cloned().unwrap_or_default()
    }

    /// The server's GOAWAY (within `limit`): (last stream, code).
    pub fn await_goaway(&mut self, limit: Duration) -> Option<(u32, u32)> {
        self.wait(limit, |c| c.goaway.is_some());
        self.goaway
    }

    /// The RST_STREAM code the server sent on `id` (within `limit`).
    pub fn await_reset(&mut self, id: u32, limit: Duration) -> Option<u32> {
        self.wait(limit, |c| {
            c.streams.get(&id).is_some_and(|s| s.reset.is_some())
        });
        self.streams.get(&id).and_then(|s| s.reset)
    }

    /// Does the server close the connection within `limit`?
    pub fn closes(&mut self, limit: Duration) -> bool {
        self.wait(limit, |c| c.eof)
    }

    /// One frame, or None (nothing within the read timeout, or the end).
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                            self.buf[8],
                        ]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Some(f);
                }
            }
            if self.eof {
                return None;
            }
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) => {
                    self.eof = true;
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    return None;
                }
            }
        }
    }

    /// Bytes received that do not make a whole frame (an HTTP/1.x answer, say).
    pub fn pending_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Record one frame from the server.
    pub fn take(&mut self, f: Frame) {
        match f.kind {
            SETTINGS if f.flags & ACK != 0 => self.settings_acked = true,
            SETTINGS => {
                for s in f.payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    self.server_settings.push((id, v));
                }
                let _ = self.try_send(&frame_bytes(SETTINGS, ACK, 0, &[]));
            }
            PING if f.flags & ACK != 0 => {
                if let Ok(p) = <[u8; 8]>::try_from(&f.payload[..]) {
                    self.ping_acks.push(p);
                }
            }
            GOAWAY if f.payload.len() >= 8 => {
                let p = &f.payload;
                let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
                let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                self.goaway = Some((last, code));
            }
            RST_STREAM if f.payload.len() == 4 => {
                let p = &f.payload;
                let code = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                self.streams.entry(f.stream).or_default().reset = Some(code);
            }
            DATA => {
                let body = unpad(&f);
                self.data_bytes += body.len() as u64;
                self.data_order.push(f.stream);
                let s = self.streams.entry(f.stream).or_default();
                s.body.extend_from_slice(body);
                s.data_frames.push(body.len());
                let ended = f.flags & END_STREAM != 0;
                if ended {
                    s.ended = true;
                }
                let n = f.payload.len() as u32;
                if self.auto_window && n > 0 {
                    let mut b = frame_bytes(WINDOW_UPDATE, 0, 0, &n.to_be_bytes());
                    if !ended {
                        b.extend(frame_bytes(WINDOW_UPDATE, 0, f.stream, &n.to_be_bytes()));
                    }
                    let _ = self.try_send(&b);
                }
            }
            HEADERS => {
                let mut p = unpad(&f);
                if f.flags & PRIORITY_FLAG != 0 && p.len() >= 5 {
                    p = &p[5..];
                }
                let p = p.to_vec();
                if f.flags & END_HEADERS != 0 {
                    self.head(f.stream, f.flags, &p);
                } else {
                    self.block = Some((f.stream, f.flags, p));
                }
            }
            CONTINUATION => {
                if let Some((id, flags, mut b)) = self.block.take() {
                    b.extend_from_slice(&f.payload);
                    if f.flags & END_HEADERS != 0 {
                        self.head(id, flags, &b);
                    } else {
                        self.block = Some((id, flags, b));
                    }
                }
            }
            _ => self.other.push(f),
        }
    }

    fn head(&mut self, id: u32, flags: u8, block: &[u8]) {
        let mut fields = Vec::new();
        let r = self.dec.decode(block, 1 << 20, &mut |n, v| {
            fields.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        });
        assert!(
            r.is_ok(),
            "the server's header block does not decode: {r:?}"
        );
        let s = self.streams.entry(id).or_default();
        if s.status == 0 {
            for (n, v) in fields {
                if n == ":status" {
                    s.status = v.parse().unwrap_or(0);
                } else {
                    s.headers.push((n, v));
                }
            }
        } else {
            s.trailers.extend(fields);
        }
        if flags & END_STREAM != 0 {
            s.ended = true;
        }
    }
}

fn unpad(f: &Frame) -> &[u8] {
    if f.flags & PADDED == 0 {
        return &f.payload;
    }
    let Some((&pad, rest)) = f.payload.split_first() else {
        return &[];
    };
    &rest[..rest.len().saturating_sub(usize::from(pad))]
}

/// A frame on the wire.
pub fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + payload.len());
    let l = (payload.len() as u32).to_be_bytes();
    b.extend_from_slice(&l[1..]);
    b.push(kind);
    b.push(flags);
    b.extend_from_slice(&stream.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// The pseudo-header fields of a request to this server, then `extra`.
pub fn request_fields<'a>(
    method: &'a str,
    path: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        (":method", method),
        (":scheme", "http"),
        (":authority", "127.0.0.1"),
        (":path", path),
    ];
    f.extend_from_slice(extra);
    f
}

/// An HPACK block of literal fields without indexing, new names, no Huffman
/// (RFC 7541 6.2.2): names go out exactly as given (upper case too), and the
/// server's dynamic table is left alone.
pub fn literal(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        b.push(0x00);
        string(&mut b, n.as_bytes());
        string(&mut b, v.as_bytes());
    }
    b
}

/// A literal field with incremental indexing, new name (6.2.1): the server's
/// dynamic table gets it as entry 62.
pub fn literal_indexed(b: &mut Vec<u8>, name: &str, value: &str) {
    b.push(0x40);
    string(b, name.as_bytes());
    string(b, value.as_bytes());
}

/// An indexed field (6.1).
pub fn indexed(b: &mut Vec<u8>, index: usize) {
    integer(b, 0x80, 7, index);
}

fn string(b: &mut Vec<u8>, s: &[u8]) {
    integer(b, 0x00, 7, s.len());
    b.extend_from_slice(s);
}

/// An HPACK integer with an `n`-bit prefix (5.1), `first` holding the flag bits.
fn integer(b: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        b.push(first | v as u8);
        return;
    }
    b.push(first | max as u8);
    v -= max;
    while v >= 128 {
        b.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    b.push(v as u8);
}
