//! wick-hpack: HPACK (RFC 7541), the header compression of HTTP/2: a [`Decoder`] for
//! the header blocks a client sends, an [`Encoder`] for the response heads wickd sends.
//!
//! Written for untrusted input: no `unsafe`, no panic and no unchecked arithmetic on
//! anything a peer sends; a malformed block is a [`DecodeError::Compression`].
//! Neither side allocates until its dynamic table gets its first entry, so an idle
//! connection costs only the two structs.

#![forbid(unsafe_code)]

mod decoder;
mod encoder;
pub mod huffman;
mod int;
mod static_table;
mod table;

pub use decoder::Decoder;
pub use encoder::Encoder;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Malformed block (bad index, bad integer/overflow, bad Huffman incl. EOS or bad padding,
    /// truncated string, size update not at the block start or above the limit...): the
    /// connection must end with COMPRESSION_ERROR.
    Compression(&'static str),
    /// The decoded header list exceeds `max_list` (RFC 9113 size: name+value+32 per field).
    /// Returned only AFTER the whole block was processed, so the dynamic table stays in sync
    /// and the connection can continue (the stream gets 431). Once over the limit, stop
    /// emitting and copying but keep decoding to update the table.
    ListTooLarge,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Compression(why) => write!(f, "HPACK: {why}"),
            DecodeError::ListTooLarge => f.write_str("HPACK: header list too large"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// RFC 7541 4.1: what an entry costs in a table beyond its name and value.
pub const ENTRY_OVERHEAD: usize = 32;
