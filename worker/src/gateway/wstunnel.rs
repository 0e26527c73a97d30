//! mod_wstunnel's WebSocket side (RFC 6455) on the gateway layer: wickd
//! answers the opening handshake itself, as lighttpd's mod_wstunnel does, once
//! the backend is connected (Sec-WebSocket-Accept; the "binary" subprotocol;
//! wstunnel.origins checked before), and then stands between two streams: the
//! client's frames, unmasked, become a plain byte stream to the backend (text
//! and binary alike; a ping is answered with a pong, a close with a close, and
//! the tunnel ends), and each read from the backend goes to the client as one
//! frame of wstunnel.frame-type. Sans-IO: [`Decoder::feed`] and [`frame`] work
//! on buffers the gateway job owns.

use crate::cgi::{self, Job};
use crate::ctx::Ctx;
use crate::mods::Base;
use crate::request::has_token;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use wick_conf::View;

/// RFC 6455 1.3: the key's suffix before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
const CONTINUATION: u8 = 0x0;

/// Close codes (RFC 6455 7.4.1).
pub const NORMAL: u16 = 1000;
pub const GOING_AWAY: u16 = 1001;
pub const PROTOCOL_ERROR: u16 = 1002;

/// Whether the request asks for a WebSocket: GET over HTTP/1.1 with
/// `Upgrade: websocket` and `Connection: upgrade` (tokens, any case), the
/// requests lighttpd's mod_wstunnel takes up; the others are not its.
pub fn wanted(base: &Base) -> bool {
    base.head.version == crate::request::Version::Http11
        && base.method() == b"GET"
        && base
            .header(b"upgrade")
            .is_some_and(|v| has_token(v, b"websocket"))
        && base
            .header(b"connection")
            .is_some_and(|v| has_token(v, b"upgrade"))
}

/// One tunnel's WebSocket state.
#[derive(Debug)]
pub struct Ws {
    /// The opcode of the frames the backend's bytes go out in.
    op: u8,
    /// The Sec-WebSocket-Accept value.
    accept: String,
    /// The subprotocol to name in the 101 ("binary": the client offered it).
    protocol: Option<&'static str>,
    /// wstunnel.ping-interval (0: none) and when the last ping went.
    pub ping_interval: u64,
    pub last_ping: u64,
    /// The 101 is out: frames pass.
    pub switched: bool,
    pub decoder: Decoder,
}

/// The opening handshake, checked as lighttpd's mod_wstunnel checks it: a Host
/// (400), an Origin (or the older Sec-WebSocket-Origin) that ends in one of
/// wstunnel.origins at a label boundary when that list is set (missing: 400,
/// another: 403), a version wickd speaks (13 and the drafts from 8 on; others,
/// hybi-00 among them: 503, as lighttpd answers an unsupported one) and a
/// Sec-WebSocket-Key (400). Err: the status to answer with.
pub fn handshake(base: &Base, view: &View, now: u64) -> Result<Ws, u16> {
    // Read as lighttpd's strtol: leading digits (none: 0); negative or past
    // INT_MAX: 400.
    let v = base
        .header(b"sec-websocket-version")
        .unwrap_or_default()
        .trim_ascii_start();
    let (negative, digits) = match v {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, v),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let version = digits[..n].iter().fold(0u64, |a, d| {
        a.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    if (negative && version > 0) || version > i32::MAX as u64 {
        return Err(400);
    }
    if base.head.host.is_none_or(|h| h.of(base.buf).is_empty()) {
        return Err(400);
    }
    if !view.wstunnel_origins.is_empty() {
        let origin = base
            .header(b"origin")
            .or_else(|| base.header(b"sec-websocket-origin"))
            .unwrap_or_default();
        if origin.is_empty() {
            return Err(400);
        }
        if !view
            .wstunnel_origins
            .iter()
            .any(|o| origin_matches(origin, o.as_bytes()))
        {
            return Err(403);
        }
    }
    if version < 8 {
        return Err(503);
    }
    let key = base.header(b"sec-websocket-key").ok_or(400u16)?;
    let binary_offered = base
        .header(b"sec-websocket-protocol")
        .is_some_and(|v| has_token(v, b"binary"));
    let binary = view.wstunnel_frame_type.eq_ignore_ascii_case("binary") || binary_offered;
    Ok(Ws {
        op: if binary { BINARY } else { TEXT },
        accept: accept_key(key),
        protocol: binary_offered.then_some("binary"),
        ping_interval: *view.wstunnel_ping_interval,
        last_ping: now,
        switched: false,
        decoder: Decoder::default(),
    })
}

/// lighttpd's origin test: `allowed` is the whole origin or a suffix of it
/// that starts after a '.'.
fn origin_matches(origin: &[u8], allowed: &[u8]) -> bool {
    if origin.len() > allowed.len() {
        origin.ends_with(allowed) && origin[origin.len() - allowed.len() - 1] == b'.'
    } else {
        origin == allowed
    }
}

/// Sec-WebSocket-Accept for `key`: base64 of SHA-1(key GUID).
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

impl Ws {
    /// The 101 to the client (the module's hooks run on it: mod_setenv can add
    /// Sec-WebSocket-Protocol, as lighttpd's documentation suggests); from now
    /// on the job's output is frames.
    pub fn switch(&mut self, ctx: &mut Ctx, job: &mut Job) {
        self.switched = true;
        let mark = job.out.buf.len();
        let head = ctx.resp.begin(job.version, 101);
        head.add(b"Upgrade", b"websocket");
        head.add(b"Connection", b"upgrade");
        head.add(b"Sec-WebSocket-Accept", self.accept.as_bytes());
        if let Some(p) = self.protocol {
            head.add(b"Sec-WebSocket-Protocol", p.as_bytes());
        }
        head.date(&ctx.clock);
        head.server(job.tag.as_bytes());
        super::job::send_switch(head, &ctx.clock, job, mark, 101);
    }

    /// Bytes from the backend to the client: one frame.
    pub fn backend_bytes(&self, job: &mut Job, d: &[u8]) {
        send(job, self.op, d);
    }

    /// A close frame with `code` to the client.
    pub fn close(&self, job: &mut Job, code: u16) {
        send(job, CLOSE, &code.to_be_bytes());
    }

    /// A ping to the client (wstunnel.ping-interval), if one is due at `now`.
    pub fn ping_due(&mut self, job: &mut Job, now: u64) -> bool {
        if !self.switched || self.ping_interval == 0 || now < self.last_ping + self.ping_interval {
            return false;
        }
        self.last_ping = now;
        send(job, PING, b"ping");
        true
    }
}

/// One frame (FIN set, unmasked) into the job's output.
fn send(job: &mut Job, op: u8, payload: &[u8]) {
    let mut h = [0u8; 10];
    let n = frame_head(op, payload.len(), &mut h);
    cgi::body_bytes_raw(job, &h[..n]);
    cgi::body_bytes_raw(job, payload);
}

/// A frame's head (no mask: the server's frames are not masked) into `h`;
/// returns its length.
fn frame_head(op: u8, len: usize, h: &mut [u8; 10]) -> usize {
    h[0] = 0x80 | op;
    if len < 126 {
        h[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// One whole frame (FIN set, unmasked) onto `out`.
fn frame(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    let mut h = [0u8; 10];
    let n = frame_head(op, payload.len(), &mut h);
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(payload);
}

/// A close frame with `code`.
fn close_frame(code: u16, out: &mut Vec<u8>) {
    frame(CLOSE, &code.to_be_bytes(), out);
}

/// The client's frames, as they come in any pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    /// A frame's head while it comes in (2 to 14 bytes).
    head: [u8; 14],
    have: usize,
    /// The frame being read: its opcode, payload bytes still to come, mask and
    /// where in the mask the next byte is.
    op: u8,
    left: u64,
    mask: [u8; 4],
    at: usize,
    /// A control frame's payload (125 bytes at most).
    control: Vec<u8>,
    /// Inside a fragmented data message.
    fragmented: bool,
    /// The client sent a close frame (answered with one) or broke the
    /// protocol (answered with a close, 1002): nothing more is read.
    pub ended: bool,
    /// How it broke it.
    pub broken: Option<&'static str>,
}

impl Decoder {
    /// Take `input`: data payloads (unmasked) onto `backend`, answers (pong,
    /// close) onto `client`, until the client's side ends (`ended`).
    pub fn feed(&mut self, mut input: &[u8], backend: &mut Vec<u8>, client: &mut Vec<u8>) {
        while !input.is_empty() && !self.ended {
            if self.left == 0 && !self.in_payload() {
                let used = match self.take_head(input) {
                    Ok(n) => n,
                    Err(why) => return self.broken(why, client),
                };
                input = &input[used..];
                if !self.in_payload() {
                    // The head is not whole yet.
                    continue;
                }
                if self.left == 0 {
                    // An empty payload: the frame is whole.
                    self.frame_done(client);
                    continue;
                }
            }
            let n = (self.left.min(input.len() as u64)) as usize;
            let (part, rest) = input.split_at(n);
            input = rest;
            self.left -= n as u64;
            if self.op >= CLOSE {
                let start = self.control.len();
                self.control.extend_from_slice(part);
                unmask(&mut self.control[start..], self.mask, &mut self.at);
            } else {
                let start = backend.len();
                backend.extend_from_slice(part);
                unmask(&mut backend[start..], self.mask, &mut self.at);
            }
            if self.left == 0 {
                self.frame_done(client);
            }
        }
    }

    /// A head has been read and its payload is being read.
    fn in_payload(&self) -> bool {
        self.have == usize::MAX
    }

    /// Bytes of a frame's head from `input`; the number taken. When the head is
    /// whole, the frame's fields are set and `have` marks the payload.
    fn take_head(&mut self, input: &[u8]) -> Result<usize, &'static str> {
        let mut used = 0;
        loop {
            let need = self.head_len();
            if self.have >= need {
                break;
            }
            let Some(&b) = input.get(used) else {
                return Ok(used);
            };
            self.head[self.have] = b;
            self.have += 1;
            used += 1;
            if self.have == 2 && self.head[1] & 0x80 == 0 {
                // Said at once: an unmasked frame's length is not a mask's.
                return Err("a frame from the client is not masked");
            }
        }
        let (b0, b1) = (self.head[0], self.head[1]);
        if b0 & 0x70 != 0 {
            return Err("a reserved bit is set (no extension was agreed)");
        }
        let op = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        let len7 = u64::from(b1 & 0x7f);
        let (len, ext) = match len7 {
            126 => (
                u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                2,
            ),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.head[2..10]);
                (u64::from_be_bytes(b), 8)
            }
            n => (n, 0),
        };
        if len >> 63 != 0 {
            return Err("a payload length with its top bit set");
        }
        match op {
            CONTINUATION if !self.fragmented => {
                return Err("a continuation frame outside a fragmented message")
            }
            TEXT | BINARY if self.fragmented => {
                return Err("a new message inside a fragmented one")
            }
            CONTINUATION | TEXT | BINARY => self.fragmented = !fin,
            CLOSE | PING | PONG => {
                if !fin || len > 125 {
                    return Err("a control frame fragmented or over 125 bytes");
                }
            }
            _ => return Err("an unknown opcode"),
        }
        self.mask.copy_from_slice(&self.head[2 + ext..6 + ext]);
        self.at = 0;
        self.op = op;
        self.left = len;
        self.control.clear();
        self.have = usize::MAX;
        Ok(used)
    }

    /// The head's whole length, as far as its first two bytes tell.
    fn head_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        6 + match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        }
    }

    /// A frame is whole: answer a control frame.
    fn frame_done(&mut self, client: &mut Vec<u8>) {
        self.have = 0;
        match self.op {
            PING => frame(PONG, &self.control, client),
            CLOSE => {
                self.ended = true;
                close_frame(NORMAL, client);
            }
            _ => {}
        }
    }

    fn broken(&mut self, why: &'static str, client: &mut Vec<u8>) {
        self.ended = true;
        self.broken = Some(why);
        close_frame(PROTOCOL_ERROR, client);
    }
}

/// Unmask `b` in place with `mask`, from position `at` of it (carried on).
fn unmask(b: &mut [u8], mask: [u8; 4], at: &mut usize) {
    for x in b.iter_mut() {
        *x ^= mask[*at & 3];
        *at += 1;
    }
    *at &= 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(op: u8, fin: bool, p: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        if p.len() < 126 {
            f.push(0x80 | p.len() as u8);
        } else if p.len() <= 0xffff {
            f.push(0x80 | 126);
            f.extend_from_slice(&(p.len() as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(p.len() as u64).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn accept_key_of_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_in_any_pieces() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        let mut wire = masked(TEXT, true, b"hello", [1, 2, 3, 4]);
        wire.extend(masked(PING, true, b"p!", [9, 9, 9, 9]));
        wire.extend(masked(BINARY, false, &big[..300], [5, 6, 7, 8]));
        wire.extend(masked(
            CONTINUATION,
            true,
            &big[300..],
            [0xa, 0xb, 0xc, 0xd],
        ));
        wire.extend(masked(PONG, true, b"", [1, 1, 1, 1]));
        for step in [1, 3, 7, 1000, wire.len()] {
            let mut d = Decoder::default();
            let (mut up, mut down) = (Vec::new(), Vec::new());
            for piece in wire.chunks(step) {
                d.feed(piece, &mut up, &mut down);
                assert!(!d.ended, "step {step}");
            }
            let mut want = b"hello".to_vec();
            want.extend_from_slice(&big);
            assert!(up == want, "step {step}");
            let mut pong = Vec::new();
            frame(PONG, b"p!", &mut pong);
            assert_eq!(down, pong, "step {step}");
        }
    }

    #[test]
    fn close_is_answered_and_ends() {
        let mut d = Decoder::default();
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let mut wire = masked(CLOSE, true, &1000u16.to_be_bytes(), [3, 1, 4, 1]);
        wire.extend(masked(TEXT, true, b"after", [1, 2, 3, 4]));
        d.feed(&wire, &mut up, &mut down);
        assert!(d.ended && d.broken.is_none());
        assert_eq!(down, [0x88, 2, 0x03, 0xe8]);
        assert!(up.is_empty());
        // Nothing after the close is taken.
        d.feed(&wire, &mut up, &mut down);
        assert!(up.is_empty());
        assert_eq!(down.len(), 4);
    }

    #[test]
    fn protocol_errors_close_with_1002() {
        let unmasked = vec![0x81, 0x02, b'h', b'i'];
        let reserved = {
            let mut f = masked(TEXT, true, b"x", [1, 2, 3, 4]);
            f[0] |= 0x40;
            f
        };
        let long_ping = masked(PING, true, &[0u8; 126], [1, 2, 3, 4]);
        let split_ping = masked(PING, false, b"x", [1, 2, 3, 4]);
        let stray_cont = masked(CONTINUATION, true, b"x", [1, 2, 3, 4]);
        let mut nested = masked(TEXT, false, b"a", [1, 2, 3, 4]);
        nested.extend(masked(TEXT, true, b"b", [1, 2, 3, 4]));
        let unknown = masked(0x3, true, b"", [1, 2, 3, 4]);
        for wire in [
            unmasked, reserved, long_ping, split_ping, stray_cont, nested, unknown,
        ] {
            let mut d = Decoder::default();
            let (mut up, mut down) = (Vec::new(), Vec::new());
            d.feed(&wire, &mut up, &mut down);
            assert!(d.ended && d.broken.is_some(), "{wire:?}: {:?}", d.broken);
            assert_eq!(&down[..], &[0x88, 2, 0x03, 0xea], "{wire:?}");
        }
    }

    #[test]
    fn frame_lengths() {
        for n in [0usize, 125, 126, 65535, 65536] {
            let mut f = Vec::new();
            frame(BINARY, &vec![7u8; n], &mut f);
            let head = f.len() - n;
            assert_eq!(
                head,
                if n < 126 {
                    2
                } else if n <= 65535 {
                    4
                } else {
                    10
                }
            );
        }
    }

    #[test]
    fn origins_match_at_a_label() {
        assert!(origin_matches(
            b"https://example.org",
            b"https://example.org"
        ));
        assert!(origin_matches(b"https://www.example.org", b"example.org"));
        assert!(!origin_matches(b"https://badexample.org", b"example.org"));
        assert!(!origin_matches(b"example.org", b"www.example.org"));
    }
}
