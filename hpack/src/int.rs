//! Prefixed integers (RFC 7541 5.1): the low bits of a first byte, continued in
//! 7-bit groups, least significant first.

use crate::DecodeError;

/// Largest value accepted: every length, index and table size in a block fits, and
/// five continuation bytes cannot exceed it unnoticed.
const MAX: u64 = u32::MAX as u64;

/// Appends `value` with the bits of `flags` above the prefix; `mask` is the prefix
/// (0x0f, 0x1f, 0x3f or 0x7f).
#[inline]
pub(crate) fn encode(out: &mut Vec<u8>, flags: u8, mask: u8, value: usize) {
    let max = usize::from(mask);
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Reads one integer with prefix `mask` from the front of `cur`, advancing it.
pub(crate) fn decode(cur: &mut &[u8], mask: u8) -> Result<usize, DecodeError> {
    let (&first, rest) = cur
        .split_first()
        .ok_or(DecodeError::Compression("truncated integer"))?;
    *cur = rest;
    let low = first & mask;
    if low < mask {
        return Ok(usize::from(low));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = cur
            .split_first()
            .ok_or(DecodeError::Compression("truncated integer"))?;
        *cur = rest;
        value = value
            .checked_add(u64::from(byte & 0x7f) << shift)
            .ok_or(DecodeError::Compression("integer overflow"))?;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(DecodeError::Compression("integer overflow"));
        }
    }
    if value > MAX {
        return Err(DecodeError::Compression("integer overflow"));
    }
    usize::try_from(value).map_err(|_| DecodeError::Compression("integer overflow"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(flags: u8, mask: u8, v: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, flags, mask, v);
        out
    }

    #[test]
    fn rfc_c1_examples() {
        assert_eq!(enc(0, 0x1f, 10), [10]);
        assert_eq!(enc(0, 0x1f, 1337), [31, 154, 10]);
        let mut cur: &[u8] = &[31, 154, 10];
        assert_eq!(decode(&mut cur, 0x1f), Ok(1337));
        assert!(cur.is_empty());
    }

    #[test]
    fn round_trip_and_limits() {
        for mask in [0x0f, 0x1f, 0x3f, 0x7f] {
            for v in [
                0,
                1,
                14,
                15,
                16,
                126,
                127,
                128,
                255,
                4096,
                1 << 20,
                u32::MAX as usize,
            ] {
                let bytes = enc(0x80 & !mask, mask, v);
                let mut cur = &bytes[..];
                assert_eq!(decode(&mut cur, mask), Ok(v), "mask {mask:#x} value {v}");
                assert!(cur.is_empty());
            }
        }
        // u32::MAX + 1 with a 7-bit prefix
        let bytes = enc(0, 0x7f, u32::MAX as usize + 1);
        assert_eq!(
            decode(&mut &bytes[..], 0x7f),
            Err(DecodeError::Compression("integer overflow"))
        );
        // endless continuation
        assert!(decode(
            &mut &[0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0][..],
            0x7f
        )
        .is_err());
        // cut short
        assert!(decode(&mut &[0x7f, 0x80][..], 0x7f).is_err());
        assert!(decode(&mut &[][..], 0x7f).is_err());
    }
}
