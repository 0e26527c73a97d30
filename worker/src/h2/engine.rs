//! The HTTP/2 connection protocol (RFC 9113) without I/O: it is given the bytes
//! the client sent and hands back one event per frame that matters to a request
//! (a head, body bytes, trailers, a reset); the frames the server sends go into
//! its `wire` queue, which the connection writes. Stream states, both flow
//! control windows, SETTINGS/PING/GOAWAY/RST_STREAM/WINDOW_UPDATE, CONTINUATION,
//! HPACK (wick-hpack), priorities read and ignored as lighttpd does, and the
//! flood defences (limits below; man/wickd.conf.5 lists them).

use super::frame::{self, Head};
use crate::response::Out;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use wick_hpack::{DecodeError, Decoder, Encoder};

/// The client connection preface (RFC 9113 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Our settings, as lighttpd 1.4.69 sends them.
pub const MAX_CONCURRENT: usize = 8;
pub const STREAM_WINDOW: u32 = 65536;
pub const MAX_HEADER_LIST: usize = 65535;
/// The connection window we keep open: bytes are granted back as they arrive
/// (the stream windows bound what waits in memory).
const CONN_WINDOW: u32 = 262144;
/// SETTINGS_MAX_FRAME_SIZE we accept (the protocol's default; not raised).
pub const MAX_FRAME: usize = 16384;
/// Streams we reset that are remembered (`Engine::reset_ids`).
const RESETS_KEPT: usize = 32;
const HEADER_TABLE: usize = 4096;
const DEFAULT_WINDOW: i64 = 65535;
const MAX_WINDOW: i64 = 0x7fff_ffff;

/// Defences. A header block (HEADERS and its CONTINUATIONs) larger than this,
/// or split into more frames, ends the connection (CONTINUATION flood).
const MAX_BLOCK: usize = MAX_HEADER_LIST + MAX_FRAME;
const MAX_BLOCK_FRAMES: u32 = 64;
/// Frames that cost us work but carry no request (SETTINGS, PING, PRIORITY,
/// empty DATA, unknown types) allowed per second before ENHANCE_YOUR_CALM.
const CONTROL_PER_SEC: u32 = 200;
/// Streams reset before their response was done (by the client, or by us for
/// its protocol errors: Rapid Reset and MadeYouReset) tolerated beyond the
/// number of completed responses.
const RESET_ALLOWANCE: u32 = 100;

/// A connection error: GOAWAY with this code is queued; the connection ends
/// once it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fatal {
    pub code: u32,
    pub why: &'static str,
}

fn fatal(code: u32, why: &'static str) -> Fatal {
    Fatal { code, why }
}

/// What a frame meant for the requests on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new request: its head is `Engine::request` (checked). `end`: no body.
    Request { id: u32, end: bool },
    /// Body bytes: `input[at..at + len]` of the slice given to `next`.
    Data {
        id: u32,
        at: usize,
        len: usize,
        end: bool,
    },
    /// Trailers (in `Engine::request.fields`); the body ends.
    Trailers { id: u32 },
    /// The decoded header list was over SETTINGS_MAX_HEADER_LIST_SIZE: answer 431.
    TooLarge { id: u32 },
    /// The stream is gone (the client's RST_STREAM, or ours for its error).
    Reset { id: u32 },
    /// The client sent GOAWAY: no new streams will come.
    GoAway,
}

/// Pseudo-header fields and fields of a request head (or trailers), as decoded.
#[derive(Default)]
pub struct RequestHead {
    pub method: Vec<u8>,
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    /// Regular fields: names (lower case) and values, back to back in `bytes`.
    pub bytes: Vec<u8>,
    pub fields: Vec<(u32, u32, u32)>,
    /// content-length, when given.
    pub content_length: Option<u64>,
    /// Why the head is malformed (the stream is reset), if it is.
    pub malformed: Option<&'static str>,
    seen: u8,
    regular_seen: bool,
}

impl RequestHead {
    fn clear(&mut self) {
        self.method.clear();
        self.authority.clear();
        self.path.clear();
        self.bytes.clear();
        self.fields.clear();
        self.content_length = None;
        self.malformed = None;
        self.seen = 0;
        self.regular_seen = false;
    }

    /// The regular fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|&(s, n, e)| {
            let (s, n, e) = (s as usize, n as usize, e as usize);
            (&self.bytes[s..n], &self.bytes[n..e])
        })
    }

    fn bad(&mut self, why: &'static str) {
        self.malformed.get_or_insert(why);
    }

    /// One decoded field of a request head (`trailers`: of a trailer section).
    fn take(&mut self, name: &[u8], value: &[u8], trailers: bool) {
        // (a loop without a branch per byte: valid values, the usual case,
        // are read whole anyway)
        let ctl = value.iter().fold(false, |bad, &c| {
            bad | (c == 0) | (c == b'\r') | (c == b'\n')
        });
        if ctl
            || value.first().is_some_and(|c| *c == b' ' || *c == b'\t')
            || value.last().is_some_and(|c| *c == b' ' || *c == b'\t')
        {
            return self.bad("field value with NUL, CR, LF or edge whitespace");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if trailers || self.regular_seen {
                return self.bad("pseudo-header field after regular fields or in trailers");
            }
            // :scheme is only required: the scheme a request is served with is
            // the connection's (TLS or not).
            let bit = match pseudo {
                b"method" => 1,
                b"scheme" => 2,
                b"authority" => 4,
                b"path" => 8,
                _ => return self.bad("unknown pseudo-header field"),
            };
            if self.seen & bit != 0 {
                return self.bad("repeated pseudo-header field");
            }
            self.seen |= bit;
            match bit {
                1 => self.method.extend_from_slice(value),
                4 => self.authority.extend_from_slice(value),
                8 => self.path.extend_from_slice(value),
                _ => {}
            }
            return;
        }
        self.regular_seen = true;
        if name.is_empty() || !name.iter().fold(true, |ok, &c| ok & is_lower_tchar(c)) {
            return self.bad("field name not a lower-case token");
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => return self.bad("connection-specific field"),
            b"te" if value != b"trailers" => return self.bad("te other than trailers"),
            b"content-length" if !trailers => {
                let n = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok());
                match (n, self.content_length) {
                    (None, _) => return self.bad("invalid content-length"),
                    (Some(n), Some(m)) if n != m => return self.bad("differing content-length"),
                    (Some(n), _) => self.content_length = Some(n),
                }
            }
            _ => {}
        }
        let s = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        let n = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        self.fields.push((s, n, self.bytes.len() as u32));
    }

    /// A request head's pseudo-headers are complete (RFC 9113 8.3.1).
    fn check_request(&mut self) {
        if self.seen & 1 == 0 {
            return self.bad("no :method");
        }
        if self.method == b"CONNECT" {
            if self.seen != 1 | 4 {
                self.bad("CONNECT with :scheme or :path, or without :authority");
            }
            return;
        }
        if self.seen & 2 == 0 || self.path.is_empty() {
            self.bad("no :scheme or :path");
        }
    }
}

fn is_lower_tchar(c: u8) -> bool {
    LOWER_TCHAR[usize::from(c)]
}

/// `is_lower_tchar` for each byte, made at compile time from its rule.
static LOWER_TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = matches!(c as u8, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&'
            | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        c += 1;
    }
    t
};

/// One stream's protocol state while its request or response is under way.
struct Flow {
    id: u32,
    /// What we may still send (the client's grant).
    send: i64,
    /// What the client may still send us.
    recv: i64,
    /// Body bytes taken since the last WINDOW_UPDATE for this stream.
    recv_taken: u32,
    /// The client ended its side (END_STREAM).
    remote_closed: bool,
    expect_len: Option<u64>,
    got_len: u64,
}

/// A header block being received (HEADERS without END_HEADERS, then
/// CONTINUATION frames).
struct Block {
    id: u32,
    end_stream: bool,
    frames: u32,
    bytes: Vec<u8>,
}

/// The client's settings that shape what we send.
struct Peer {
    initial_window: i64,
    max_frame: usize,
}

pub struct Engine {
    /// Bytes of the preface matched so far (24: done).
    preface: usize,
    /// The first frame after the preface must be SETTINGS.
    settings_seen: bool,
    peer: Peer,
    /// Connection windows: what we may send, what the client may send.
    send: i64,
    recv: i64,
    recv_taken: u32,
    /// Highest stream the client opened.
    last_stream: u32,
    /// The last streams we reset (at most RESETS_KEPT; no heap until the first):
    /// frames the client sent on them before it saw the reset are dropped, while
    /// a HEADERS on another closed or skipped stream is a protocol error.
    reset_ids: Vec<u32>,
    /// GOAWAY sent: streams above this are not served.
    goaway: Option<u32>,
    flows: Vec<Flow>,
    block: Option<Block>,
    decoder: Decoder,
    encoder: Encoder,
    /// The head (or trailers) of the last Request/Trailers event.
    pub request: RequestHead,
    /// Frames to send, in order.
    pub wire: Out,
    scratch: Vec<u8>,
    control_sec: u64,
    control: u32,
    resets: u32,
    completed: u32,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new()
    }
}

impl Engine {
    /// A new connection: the client's preface is read first (`next`); our
    /// SETTINGS and connection window are queued to go out first.
    pub fn new() -> Engine {
        let mut e = Engine {
            preface: 0,
            settings_seen: false,
            peer: Peer {
                initial_window: DEFAULT_WINDOW,
                max_frame: MAX_FRAME,
            },
            send: DEFAULT_WINDOW,
            recv: i64::from(CONN_WINDOW),
            recv_taken: 0,
            last_stream: 0,
            reset_ids: Vec::new(),
            goaway: None,
            flows: Vec::new(),
            block: None,
            decoder: Decoder::new(HEADER_TABLE),
            encoder: Encoder::new(),
            request: RequestHead::default(),
            wire: Out::default(),
            scratch: Vec::new(),
            control_sec: 0,
            control: 0,
            resets: 0,
            completed: 0,
        };
        frame::settings(
            &mut e.wire,
            &[
                (
                    frame::SETTINGS_MAX_CONCURRENT_STREAMS,
                    MAX_CONCURRENT as u32,
                ),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST as u32),
            ],
        );
        frame::window_update(&mut e.wire, 0, CONN_WINDOW - DEFAULT_WINDOW as u32);
        e
    }

    /// Apply the client's settings from an Upgrade's HTTP2-Settings field
    /// (the payload of a SETTINGS frame) and open stream 1 for the request that
    /// asked for it, its body already read (RFC 9113 3.2 of RFC 7540).
    pub fn upgraded(&mut self, settings: &[u8]) -> Result<(), Fatal> {
        self.apply_settings(settings)?;
        self.last_stream = 1;
        self.flows.push(Flow {
            id: 1,
            send: self.peer.initial_window,
            recv: 0,
            recv_taken: 0,
            remote_closed: true,
            expect_len: None,
            got_len: 0,
        });
        Ok(())
    }

    /// Release the buffers of an idle connection.
    pub fn shrink(&mut self) {
        if self.wire.is_empty() {
            self.wire = Out::default();
        }
        if self.flows.is_empty() {
            self.flows = Vec::new();
            self.request = RequestHead::default();
            self.scratch = Vec::new();
        }
    }

    /// Read one frame (or the preface) from `input`: (bytes used, what it
    /// meant). 0 bytes used: more input is needed.
    pub fn next(&mut self, input: &[u8], now: u64) -> Result<(usize, Option<Event>), Fatal> {
        if self.preface < PREFACE.len() {
            let want = &PREFACE[self.preface..];
            let n = want.len().min(input.len());
            if input[..n] != want[..n] {
                return Err(self.fail(frame::PROTOCOL_ERROR, "not the HTTP/2 preface"));
            }
            self.preface += n;
            return Ok((n, None));
        }
        let Some(h) = Head::parse(input) else {
            return Ok((0, None));
        };
        if h.len > MAX_FRAME {
            return Err(self.fail(
                frame::FRAME_SIZE_ERROR,
                "frame larger than SETTINGS_MAX_FRAME_SIZE",
            ));
        }
        let total = frame::HEADER_LEN + h.len;
        if input.len() < total {
            return Ok((0, None));
        }
        let payload = &input[frame::HEADER_LEN..total];
        if !self.settings_seen && h.kind != frame::SETTINGS {
            return Err(self.fail(frame::PROTOCOL_ERROR, "the preface's SETTINGS missing"));
        }
        if self.block.is_some() && h.kind != frame::CONTINUATION {
            return Err(self.fail(frame::PROTOCOL_ERROR, "frame inside a header block"));
        }
        let ev = match h.kind {
            frame::DATA => self.recv_data(&h, payload, frame::HEADER_LEN, now)?,
            frame::HEADERS => self.recv_headers(&h, payload)?,
            frame::CONTINUATION => self.continuation(&h, payload)?,
            frame::PRIORITY => self.priority(&h, payload, now)?,
            frame::RST_STREAM => self.rst_stream(&h, payload)?,
            frame::SETTINGS => self.settings(&h, payload, now)?,
            frame::PING => self.ping(&h, payload, now)?,
            frame::GOAWAY => self.peer_goaway(&h, payload)?,
            frame::WINDOW_UPDATE => self.window_update(&h, payload)?,
            frame::PUSH_PROMISE => {
                return Err(self.fail(frame::PROTOCOL_ERROR, "PUSH_PROMISE from a client"))
            }
            _ => {
                // Unknown frame types are ignored (RFC 9113 4.1), but not for free.
                self.control(now)?;
                None
            }
        };
        Ok((total, ev))
    }

    /// A connection error: GOAWAY with the last stream we took.
    fn fail(&mut self, code: u32, why: &'static str) -> Fatal {
        if self.goaway.is_none() || code != frame::NO_ERROR {
            frame::goaway(&mut self.wire, self.last_stream, code);
        }
        self.goaway = Some(self.last_stream);
        fatal(code, why)
    }

    /// Graceful GOAWAY (reload drain, shutdown): the streams already opened are
    /// answered; later ones are not.
    pub fn goaway(&mut self) {
        if self.goaway.is_none() {
            frame::goaway(&mut self.wire, self.last_stream, frame::NO_ERROR);
            self.goaway = Some(self.last_stream);
        }
    }

    pub fn going_away(&self) -> bool {
        self.goaway.is_some()
    }

    fn control(&mut self, now: u64) -> Result<(), Fatal> {
        if now != self.control_sec {
            self.control_sec = now;
            self.control = 0;
        }
        self.control += 1;
        if self.control > CONTROL_PER_SEC {
            return Err(self.fail(frame::ENHANCE_YOUR_CALM, "control frame flood"));
        }
        Ok(())
    }

    /// A stream ended before its response was done; too many of those (Rapid
    /// Reset, MadeYouReset) end the connection.
    fn count_reset(&mut self) -> Result<(), Fatal> {
        self.resets += 1;
        if self.resets > RESET_ALLOWANCE && self.resets > self.completed {
            return Err(self.fail(frame::ENHANCE_YOUR_CALM, "too many streams reset"));
        }
        Ok(())
    }

    fn flow(&mut self, id: u32) -> Option<&mut Flow> {
        self.flows.iter_mut().find(|f| f.id == id)
    }

    /// RST_STREAM for `id`, and remember it (see `resets`).
    fn send_reset(&mut self, id: u32, code: u32) {
        frame::rst_stream(&mut self.wire, id, code);
        if self.reset_ids.len() >= RESETS_KEPT {
            self.reset_ids.remove(0);
        }
        self.reset_ids.push(id);
    }

    fn remove(&mut self, id: u32) {
        if let Some(i) = self.flows.iter().position(|f| f.id == id) {
            self.flows.swap_remove(i);
        }
    }

    /// A stream error (RFC 9113 5.4.2): RST_STREAM, the stream is gone.
    fn stream_error(&mut self, id: u32, code: u32) -> Result<Option<Event>, Fatal> {
        self.send_reset(id, code);
        self.remove(id);
        self.count_reset()?;
        Ok(Some(Event::Reset { id }))
    }

    /// Padding removed (PADDED flag): the rest of the payload.
    fn unpad<'p>(&mut self, h: &Head, p: &'p [u8]) -> Result<(&'p [u8], usize), Fatal> {
        if !h.has(frame::PADDED) {
            return Ok((p, 0));
        }
        let Some((&pad, rest)) = p.split_first() else {
            return Err(self.fail(frame::FRAME_SIZE_ERROR, "padded frame without its length"));
        };
        let pad = usize::from(pad);
        if pad >= p.len() {
            return Err(self.fail(frame::PROTOCOL_ERROR, "padding longer than the frame"));
        }
        Ok((&rest[..rest.len() - pad], 1))
    }

    fn recv_data(
        &mut self,
        h: &Head,
        p: &[u8],
        base: usize,
        now: u64,
    ) -> Result<Option<Event>, Fatal> {
        if h.stream == 0 {
            return Err(self.fail(frame::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        // Flow control counts the whole payload, padding included.
        self.recv -= h.len as i64;
        if self.recv < 0 {
            return Err(self.fail(
                frame::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        self.grant_connection(h.len as u32);
        let (body, skip) = self.unpad(h, p)?;
        let end = h.has(frame::END_STREAM);
        if body.is_empty() && !end {
            self.control(now)?;
        }
        let id = h.stream;
        let Some(f) = self.flow(id) else {
            if id > self.last_stream {
                return Err(self.fail(frame::PROTOCOL_ERROR, "DATA on an idle stream"));
            }
            // A stream already ended or reset: dropped (RFC 9113 5.4.2, 6.1).
            return Ok(None);
        };
        if f.remote_closed {
            return self.stream_error(id, frame::STREAM_CLOSED);
        }
        f.recv -= h.len as i64;
        if f.recv < 0 {
            return self.stream_error(id, frame::FLOW_CONTROL_ERROR);
        }
        // Padding is never read by anyone: granted back now.
        f.recv_taken += (h.len - body.len()) as u32;
        f.got_len += body.len() as u64;
        let over = f
            .expect_len
            .is_some_and(|n| f.got_len > n || (end && f.got_len != n));
        if over {
            return self.stream_error(id, frame::PROTOCOL_ERROR);
        }
        if end {
            f.remote_closed = true;
        }
        Ok(Some(Event::Data {
            id,
            at: base + skip,
            len: body.len(),
            end,
        }))
    }

    /// The client's body bytes of stream `id` were taken by the request: grant
    /// them back once half a window's worth is owed.
    pub fn taken(&mut self, id: u32, n: usize) {
        let Some(f) = self.flow(id) else { return };
        f.recv_taken = f.recv_taken.saturating_add(n as u32);
        if f.remote_closed || f.recv_taken < STREAM_WINDOW / 2 {
            return;
        }
        let inc = f.recv_taken;
        f.recv_taken = 0;
        f.recv += i64::from(inc);
        frame::window_update(&mut self.wire, id, inc);
    }

    fn grant_connection(&mut self, n: u32) {
        self.recv_taken += n;
        if self.recv_taken >= CONN_WINDOW / 4 {
            let inc = self.recv_taken;
            self.recv_taken = 0;
            self.recv += i64::from(inc);
            frame::window_update(&mut self.wire, 0, inc);
        }
    }

    fn recv_headers(&mut self, h: &Head, p: &[u8]) -> Result<Option<Event>, Fatal> {
        let id = h.stream;
        if id == 0 || id.is_multiple_of(2) {
            return Err(self.fail(
                frame::PROTOCOL_ERROR,
                "HEADERS on stream 0 or an even stream",
            ));
        }
        let (mut p, _) = self.unpad(h, p)?;
        if h.has(frame::PRIORITY_FLAG) {
            if p.len() < 5 {
                return Err(self.fail(frame::FRAME_SIZE_ERROR, "HEADERS priority cut short"));
            }
            let dep = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
            p = &p[5..];
            if dep == id {
                // Decoded anyway: the HPACK state must follow the client's.
                self.decode_block(p, true);
                return self.stream_error(id, frame::PROTOCOL_ERROR);
            }
        }
        let end_stream = h.has(frame::END_STREAM);
        if !h.has(frame::END_HEADERS) {
            if p.len() > MAX_BLOCK {
                return Err(self.fail(frame::ENHANCE_YOUR_CALM, "header block too large"));
            }
            self.block = Some(Block {
                id,
                end_stream,
                frames: 1,
                bytes: p.to_vec(),
            });
            return Ok(None);
        }
        self.header_block(id, end_stream, p)
    }

    fn continuation(&mut self, h: &Head, p: &[u8]) -> Result<Option<Event>, Fatal> {
        let Some(b) = self.block.as_mut() else {
            return Err(self.fail(frame::PROTOCOL_ERROR, "CONTINUATION without HEADERS"));
        };
        if b.id != h.stream {
            return Err(self.fail(frame::PROTOCOL_ERROR, "CONTINUATION on another stream"));
        }
        b.frames += 1;
        if b.bytes.len() + p.len() > MAX_BLOCK || b.frames > MAX_BLOCK_FRAMES {
            return Err(self.fail(
                frame::ENHANCE_YOUR_CALM,
                "header block too large (CONTINUATION flood)",
            ));
        }
        b.bytes.extend_from_slice(p);
        if !h.has(frame::END_HEADERS) {
            return Ok(None);
        }
        let Some(b) = self.block.take() else {
            return Ok(None);
        };
        self.header_block(b.id, b.end_stream, &b.bytes)
    }

    /// Decode a block into `self.request`. Err: a COMPRESSION_ERROR; Ok(false):
    /// the list was over the limit.
    fn decode_block(&mut self, block: &[u8], trailers: bool) -> Option<bool> {
        self.request.clear();
        let req = &mut self.request;
        let r = self
            .decoder
            .decode(block, MAX_HEADER_LIST, &mut |n, v| req.take(n, v, trailers));
        match r {
            Ok(()) => Some(true),
            Err(DecodeError::ListTooLarge) => Some(false),
            Err(DecodeError::Compression(_)) => None,
        }
    }

    /// A whole header block for stream `id`.
    fn header_block(
        &mut self,
        id: u32,
        end_stream: bool,
        block: &[u8],
    ) -> Result<Option<Event>, Fatal> {
        let existing = self.flows.iter().position(|f| f.id == id);
        let trailers = existing.is_some();
        let fits = match self.decode_block(block, trailers) {
            Some(fits) => fits,
            None => return Err(self.fail(frame::COMPRESSION_ERROR, "HPACK decoding failed")),
        };
        if let Some(i) = existing {
            let f = &mut self.flows[i];
            if f.remote_closed {
                return self.stream_error(id, frame::STREAM_CLOSED);
            }
            if !end_stream || !fits || self.request.malformed.is_some() {
                // Trailers end the stream and carry no pseudo-header (8.1).
                return self.stream_error(id, frame::PROTOCOL_ERROR);
            }
            f.remote_closed = true;
            if f.expect_len.is_some_and(|n| n != f.got_len) {
                return self.stream_error(id, frame::PROTOCOL_ERROR);
            }
            return Ok(Some(Event::Trailers { id }));
        }
        if id <= self.last_stream {
            // A stream we reset: the client may have sent this before it saw
            // the reset (5.1, closed): decoded for the table, then dropped. Any
            // other closed or skipped stream cannot be opened again (5.1.1).
            if self.reset_ids.contains(&id) {
                return Ok(None);
            }
            return Err(self.fail(frame::PROTOCOL_ERROR, "HEADERS on a closed stream"));
        }
        self.last_stream = id;
        if self.goaway.is_some_and(|last| id > last) {
            return Ok(None);
        }
        if self.flows.len() >= MAX_CONCURRENT {
            self.send_reset(id, frame::REFUSED_STREAM);
            self.count_reset()?;
            return Ok(None);
        }
        self.flows.push(Flow {
            id,
            send: self.peer.initial_window,
            recv: i64::from(STREAM_WINDOW),
            recv_taken: 0,
            remote_closed: end_stream,
            expect_len: None,
            got_len: 0,
        });
        if !fits {
            return Ok(Some(Event::TooLarge { id }));
        }
        self.request.check_request();
        if self.request.malformed.is_some() {
            return self.stream_error(id, frame::PROTOCOL_ERROR);
        }
        let expect = self.request.content_length;
        if end_stream && expect.is_some_and(|n| n != 0) {
            return self.stream_error(id, frame::PROTOCOL_ERROR);
        }
        if let Some(f) = self.flow(id) {
            f.expect_len = expect;
        }
        Ok(Some(Event::Request {
            id,
            end: end_stream,
        }))
    }

    fn priority(&mut self, h: &Head, p: &[u8], now: u64) -> Result<Option<Event>, Fatal> {
        if h.stream == 0 {
            return Err(self.fail(frame::PROTOCOL_ERROR, "PRIORITY on stream 0"));
        }
        if p.len() != 5 {
            return self.stream_error(h.stream, frame::FRAME_SIZE_ERROR);
        }
        self.control(now)?;
        let dep = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
        if dep == h.stream {
            return self.stream_error(h.stream, frame::PROTOCOL_ERROR);
        }
        // Accepted and ignored, as lighttpd does.
        Ok(None)
    }

    fn rst_stream(&mut self, h: &Head, p: &[u8]) -> Result<Option<Event>, Fatal> {
        if h.stream == 0 {
            return Err(self.fail(frame::PROTOCOL_ERROR, "RST_STREAM on stream 0"));
        }
        if p.len() != 4 {
            return Err(self.fail(frame::FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes"));
        }
        if h.stream > self.last_stream {
            return Err(self.fail(frame::PROTOCOL_ERROR, "RST_STREAM on an idle stream"));
        }
        if self.flow(h.stream).is_none() {
            return Ok(None);
        }
        self.remove(h.stream);
        self.count_reset()?;
        Ok(Some(Event::Reset { id: h.stream }))
    }

    fn settings(&mut self, h: &Head, p: &[u8], now: u64) -> Result<Option<Event>, Fatal> {
        if h.stream != 0 {
            return Err(self.fail(frame::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if h.has(frame::ACK) {
            if !p.is_empty() {
                return Err(self.fail(frame::FRAME_SIZE_ERROR, "SETTINGS ACK with a payload"));
            }
            return Ok(None);
        }
        if !p.len().is_multiple_of(6) {
            return Err(self.fail(
                frame::FRAME_SIZE_ERROR,
                "SETTINGS not a multiple of 6 bytes",
            ));
        }
        if self.settings_seen {
            self.control(now)?;
        }
        self.settings_seen = true;
        self.apply_settings(p)?;
        frame::settings_ack(&mut self.wire);
        Ok(None)
    }

    fn apply_settings(&mut self, p: &[u8]) -> Result<(), Fatal> {
        for s in p.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                frame::SETTINGS_HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(v as usize),
                frame::SETTINGS_ENABLE_PUSH if v > 1 => {
                    return Err(self.fail(frame::PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1"))
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let v = i64::from(v);
                    if v > MAX_WINDOW {
                        return Err(self.fail(
                            frame::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE too large",
                        ));
                    }
                    let delta = v - self.peer.initial_window;
                    self.peer.initial_window = v;
                    let mut overflow = false;
                    for f in &mut self.flows {
                        f.send += delta;
                        overflow |= f.send > MAX_WINDOW;
                    }
                    if overflow {
                        // A connection error (RFC 9113 6.9.2): said with GOAWAY.
                        return Err(self.fail(frame::FLOW_CONTROL_ERROR, "stream window overflow"));
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(16384..=16_777_215).contains(&v) {
                        return Err(self.fail(
                            frame::PROTOCOL_ERROR,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        ));
                    }
                    self.peer.max_frame = v as usize;
                }
                // Concurrency and the header list size bound what the client
                // receives from servers that push or answer huge heads: we do neither.
                _ => {}
            }
        }
        Ok(())
    }

    fn ping(&mut self, h: &Head, p: &[u8], now: u64) -> Result<Option<Event>, Fatal> {
        if h.stream != 0 {
            return Err(self.fail(frame::PROTOCOL_ERROR, "PING on a stream"));
        }
        let Ok(payload) = <&[u8; 8]>::try_from(p) else {
            return Err(self.fail(frame::FRAME_SIZE_ERROR, "PING not 8 bytes"));
        };
        if !h.has(frame::ACK) {
            self.control(now)?;
            frame::ping_ack(&mut self.wire, payload);
        }
        Ok(None)
    }

    fn peer_goaway(&mut self, h: &Head, p: &[u8]) -> Result<Option<Event>, Fatal> {
        if h.stream != 0 {
            return Err(self.fail(frame::PROTOCOL_ERROR, "GOAWAY on a stream"));
        }
        if p.len() < 8 {
            return Err(self.fail(frame::FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes"));
        }
        Ok(Some(Event::GoAway))
    }

    fn window_update(&mut self, h: &Head, p: &[u8]) -> Result<Option<Event>, Fatal> {
        if p.len() != 4 {
            return Err(self.fail(frame::FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes"));
        }
        let inc = i64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff);
        if h.stream == 0 {
            if inc == 0 {
                return Err(self.fail(frame::PROTOCOL_ERROR, "WINDOW_UPDATE of 0"));
            }
            self.send += inc;
            if self.send > MAX_WINDOW {
                return Err(self.fail(frame::FLOW_CONTROL_ERROR, "connection window overflow"));
            }
            return Ok(None);
        }
        let id = h.stream;
        if id > self.last_stream {
            return Err(self.fail(frame::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream"));
        }
        let Some(f) = self.flow(id) else {
            return Ok(None);
        };
        if inc == 0 {
            return self.stream_error(id, frame::PROTOCOL_ERROR);
        }
        f.send += inc;
        if f.send > MAX_WINDOW {
            return self.stream_error(id, frame::FLOW_CONTROL_ERROR);
        }
        Ok(None)
    }
}

/// What the server sends on a stream.
impl Engine {
    /// A response head: HEADERS (and CONTINUATION when it exceeds the client's
    /// frame size). `end`: no body follows.
    pub fn headers<'f>(
        &mut self,
        id: u32,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
        end: bool,
    ) {
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        self.encoder.begin(&mut block);
        self.encoder.status(status, &mut block);
        let mut name = [0u8; 64];
        for (n, v) in fields {
            // HTTP/2 field names are lower case (8.2.1); ours are written as
            // HTTP/1.1 spells them.
            if n.len() <= name.len() {
                let lower = &mut name[..n.len()];
                for (d, s) in lower.iter_mut().zip(n) {
                    *d = s.to_ascii_lowercase();
                }
                self.encoder.field(lower, v, &mut block);
            } else {
                self.encoder.field(&n.to_ascii_lowercase(), v, &mut block);
            }
        }
        let max = self.peer.max_frame;
        let mut rest = &block[..];
        let mut kind = frame::HEADERS;
        loop {
            let n = rest.len().min(max);
            let last = n == rest.len();
            let mut flags = if last { frame::END_HEADERS } else { 0 };
            if end && kind == frame::HEADERS {
                flags |= frame::END_STREAM;
            }
            frame::put_head(&mut self.wire.buf, n, kind, flags, id);
            self.wire.put(&rest[..n]);
            rest = &rest[n..];
            kind = frame::CONTINUATION;
            if last {
                break;
            }
        }
        self.scratch = block;
        if end {
            self.done(id);
        }
    }

    /// How many body bytes stream `id` may send now (both windows, one frame).
    pub fn room(&self, id: u32) -> usize {
        let Some(f) = self.flows.iter().find(|f| f.id == id) else {
            return 0;
        };
        self.send.min(f.send).max(0).min(self.peer.max_frame as i64) as usize
    }

    fn spend(&mut self, id: u32, n: usize) {
        self.send -= n as i64;
        if let Some(f) = self.flow(id) {
            f.send -= n as i64;
        }
    }

    /// A DATA frame of `b` (at most `room(id)` bytes).
    pub fn data(&mut self, id: u32, b: &[u8], end: bool) {
        let flags = if end { frame::END_STREAM } else { 0 };
        frame::put_head(&mut self.wire.buf, b.len(), frame::DATA, flags, id);
        self.wire.put(b);
        self.spend(id, b.len());
        if end {
            self.done(id);
        }
    }

    /// A DATA frame whose payload is `len` bytes of a file (sent with sendfile,
    /// or read into TLS, by the connection's writer).
    pub fn data_file(&mut self, id: u32, fd: &Rc<OwnedFd>, off: u64, len: usize, end: bool) {
        let flags = if end { frame::END_STREAM } else { 0 };
        frame::put_head(&mut self.wire.buf, len, frame::DATA, flags, id);
        self.wire.file(fd.clone(), off, len as u64);
        self.spend(id, len);
        if end {
            self.done(id);
        }
    }

    /// Our side of stream `id` ended: the stream closes. A request body still
    /// coming is not wanted any more (RFC 9113 8.1: RST_STREAM NO_ERROR).
    fn done(&mut self, id: u32) {
        if let Some(f) = self.flow(id) {
            if !f.remote_closed {
                self.send_reset(id, frame::NO_ERROR);
            }
        }
        self.remove(id);
        self.completed += 1;
    }

    /// Abandon stream `id` (the response could not be completed).
    pub fn reset(&mut self, id: u32, code: u32) {
        if self.flow(id).is_some() {
            self.send_reset(id, code);
            self.remove(id);
        }
    }
}
