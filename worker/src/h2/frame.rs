//! HTTP/2 frames on the wire (RFC 9113 section 4 and 6): the 9-byte header, the
//! type and flag numbers, error codes, and the writers for the frames the server
//! sends. Parsing a frame's payload is the engine's (engine.rs).

use crate::response::Out;

pub const HEADER_LEN: usize = 9;

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
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Error codes (RFC 9113 section 7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const INTERNAL_ERROR: u32 = 0x2;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A frame header as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// The header at the start of `b`, if all 9 bytes are there.
    pub fn parse(b: &[u8]) -> Option<Head> {
        let h = b.get(..HEADER_LEN)?;
        Some(Head {
            len: (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Append a frame header.
pub fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&l[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// SETTINGS with these (identifier, value) pairs.
pub fn settings(out: &mut Out, pairs: &[(u16, u32)]) {
    put_head(&mut out.buf, pairs.len() * 6, SETTINGS, 0, 0);
    for (id, v) in pairs {
        out.put(&id.to_be_bytes());
        out.put(&v.to_be_bytes());
    }
}

pub fn settings_ack(out: &mut Out) {
    put_head(&mut out.buf, 0, SETTINGS, ACK, 0);
}

pub fn ping_ack(out: &mut Out, payload: &[u8; 8]) {
    put_head(&mut out.buf, 8, PING, ACK, 0);
    out.put(payload);
}

pub fn window_update(out: &mut Out, stream: u32, inc: u32) {
    put_head(&mut out.buf, 4, WINDOW_UPDATE, 0, stream);
    out.put(&(inc & 0x7fff_ffff).to_be_bytes());
}

pub fn rst_stream(out: &mut Out, stream: u32, code: u32) {
    put_head(&mut out.buf, 4, RST_STREAM, 0, stream);
    out.put(&code.to_be_bytes());
}

pub fn goaway(out: &mut Out, last: u32, code: u32) {
    put_head(&mut out.buf, 8, GOAWAY, 0, 0);
    out.put(&(last & 0x7fff_ffff).to_be_bytes());
    out.put(&code.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trip() {
        let mut b = Vec::new();
        put_head(
            &mut b,
            0x12345,
            HEADERS,
            END_HEADERS | END_STREAM,
            0x8000_0003,
        );
        let h = Head::parse(&b).expect("whole header");
        assert_eq!(
            h,
            Head {
                len: 0x12345,
                kind: HEADERS,
                flags: END_HEADERS | END_STREAM,
                // The reserved bit is not part of the identifier.
                stream: 3
            }
        );
        assert!(Head::parse(&b[..8]).is_none());
    }
}
