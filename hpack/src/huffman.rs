//! The Huffman code of RFC 7541 Appendix B: encoding, encoded length, and decoding
//! by a state machine that consumes four bits per step, its transition table built
//! at compile time from the code table.
//!
//! Decoder states are the 256 internal nodes of the code tree (the root is 0). Since
//! no code is shorter than five bits, a step of four bits completes at most one
//! symbol. A string may end at the root or at a node reached from it by at most
//! seven 1-bits (padding with a prefix of EOS, 5.2); a step that completes EOS fails.

use crate::DecodeError;

/// (code, bits) per symbol, the code aligned to the least significant bit; 256 is EOS.
#[rustfmt::skip]
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28),
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28),
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28),
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28),
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28),
    // 32 ' ' .. 47 '/'
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11),
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    // 48 '0' .. 63 '?'
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6),
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6),
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10),
    // 64 '@' .. 79 'O'
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7),
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7),
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    // 80 'P' .. 95 '_'
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7),
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13),
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    // 96 '`' .. 111 'o'
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6),
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5),
    // 112 'p' .. 127
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5),
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15),
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    // 128 .. 143
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23),
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    // 144 .. 159
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23),
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    // 160 .. 175
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22),
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24),
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23),
    // 176 .. 191
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23),
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22),
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    // 192 .. 207
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19),
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25),
    // 208 .. 223
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27),
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27),
    // 224 .. 239
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25),
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    // 240 .. 255
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26),
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27),
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26),
    // EOS
    (0x3fffffff, 30),
];

const EOS: usize = 256;

/// Bits per byte value, for [`encoded_len`] (one small table in cache).
const LENS: [u8; 256] = {
    let mut lens = [0u8; 256];
    let mut sym = 0;
    while sym < 256 {
        lens[sym] = CODES[sym].1;
        sym += 1;
    }
    lens
};

/// A child in the code tree: an internal node's number, or LEAF | symbol.
/// 0 is "none yet": the root is never a child.
const LEAF: u16 = 0x400;

/// The code tree: two children per internal node. A full binary tree with 257
/// leaves has 256 internal nodes; the assertion holds the table to that.
const TREE: [[u16; 2]; 256] = {
    let mut tree = [[0u16; 2]; 256];
    let mut next = 1usize;
    let mut sym = 0;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        let mut node = 0usize;
        let mut bit = len as u32;
        while bit > 1 {
            bit -= 1;
            let b = ((code >> bit) & 1) as usize;
            if tree[node][b] == 0 {
                tree[node][b] = next as u16;
                next += 1;
            }
            node = tree[node][b] as usize;
        }
        assert!(
            tree[node][(code & 1) as usize] == 0,
            "code is a prefix of another"
        );
        tree[node][(code & 1) as usize] = LEAF | sym as u16;
        sym += 1;
    }
    assert!(next == 256, "code tree is not full");
    tree
};

// A transition: the next state shifted left by 4 in bits 4..12 (OR-ed with the
// next nibble it is the next index: one operation on the path from one load to the
// next), the completed symbol in bits 16..24.
const NEXT: u32 = 0xff0;
const EMIT: u32 = 1 << 24;
/// EOS completed: the string is malformed.
const FAIL: u32 = 1 << 25;
/// The next state may end a string.
const ACCEPT: u32 = 1 << 26;

/// Transitions, indexed by state << 4 | nibble.
static STEP: [u32; 4096] = {
    let mut accept = [false; 256];
    accept[0] = true;
    let mut node = 0usize;
    let mut ones = 0;
    while ones < 7 {
        node = TREE[node][1] as usize;
        accept[node] = true;
        ones += 1;
    }
    let mut step = [0u32; 4096];
    let mut state = 0usize;
    while state < 256 {
        let mut nibble = 0usize;
        while nibble < 16 {
            let mut node = state;
            let mut entry = 0u32;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = TREE[node][(nibble >> bit) & 1];
                if child & LEAF != 0 {
                    let sym = (child & !LEAF) as usize;
                    if sym == EOS {
                        entry = FAIL;
                        break;
                    }
                    entry = EMIT | (sym as u32) << 16;
                    node = 0;
                } else {
                    node = child as usize;
                }
            }
            if entry & FAIL == 0 {
                entry |= (node as u32) << 4;
                if accept[node] {
                    entry |= ACCEPT;
                }
            }
            step[state << 4 | nibble] = entry;
            nibble += 1;
        }
        state += 1;
    }
    step
};

/// Bytes `src` takes Huffman-coded.
pub fn encoded_len(src: &[u8]) -> usize {
    // Summed in chunks whose bit count cannot overflow a u32: plain adds in the loop.
    let bits = src
        .chunks(1 << 16)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&b| u32::from(LENS[usize::from(b)]))
                .sum::<u32>()
        })
        .fold(0u64, |total, bits| total.saturating_add(u64::from(bits)));
    usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX)
}

/// Appends `src` Huffman-coded, padded with the high bits of EOS.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(src));
    append(src, out);
}

/// [`encode`] without sizing `out` first.
pub(crate) fn append(src: &[u8], out: &mut Vec<u8>) {
    // Pending bits are the low `bits` of `acc`: fewer than 32 between symbols, so a
    // 30-bit code always fits; bits above them were written and are shifted out.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, n) = CODES[usize::from(b)];
        acc = acc << n | u64::from(code);
        bits += u32::from(n);
        if bits >= 32 {
            bits -= 32;
            out.extend_from_slice(&((acc >> bits) as u32).to_be_bytes());
        }
    }
    while bits >= 8 {
        bits -= 8;
        out.push((acc >> bits) as u8);
    }
    if bits > 0 {
        out.push((acc << (8 - bits)) as u8 | 0xff >> bits);
    }
}

/// Appends the decoded `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = out.len();
    // At most one symbol per five bits, plus one byte the last step may write.
    let most = src.len().saturating_mul(8) / 5;
    out.resize(start.saturating_add(most).saturating_add(1), 0);
    let result = match out.get_mut(start..) {
        Some(buf) => run::<true>(src, buf),
        None => Ok(0),
    };
    out.truncate(start.saturating_add(*result.as_ref().unwrap_or(&0)));
    result.map(|_| ())
}

/// Checks `src` as [`decode`] does, keeping nothing.
pub fn check(src: &[u8]) -> Result<(), DecodeError> {
    run::<false>(src, &mut []).map(|_| ())
}

/// Decodes into `buf` (unless only checking), returning the length decoded. Every
/// step stores its symbol slot and advances only if it completed one: no branch on
/// the code; EOS is noted on the way and reported at the end.
fn run<const KEEP: bool>(src: &[u8], buf: &mut [u8]) -> Result<usize, DecodeError> {
    let mut next = 0usize;
    let mut seen = 0u32;
    let mut last = ACCEPT;
    let mut len = 0usize;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let entry = STEP[next | usize::from(nibble & 0x0f)];
            if KEEP {
                if let Some(slot) = buf.get_mut(len) {
                    *slot = (entry >> 16) as u8;
                }
                len += ((entry & EMIT) >> 24) as usize;
            }
            seen |= entry;
            next = (entry & NEXT) as usize;
            last = entry;
        }
    }
    if seen & FAIL != 0 {
        return Err(DecodeError::Compression("Huffman string holds EOS"));
    }
    if last & ACCEPT == 0 {
        return Err(DecodeError::Compression(
            "Huffman padding longer than 7 bits or not all ones",
        ));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is the canonical code the RFC says it is: sorted by (length, symbol),
    /// each code is the previous one plus one, shifted to its length. A mistyped
    /// entry breaks the sequence.
    #[test]
    fn code_table_is_canonical() {
        let mut order: Vec<usize> = (0..CODES.len()).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut expect = 0u64;
        let mut prev_len = CODES[order[0]].1;
        for (n, &sym) in order.iter().enumerate() {
            let (code, len) = CODES[sym];
            if n > 0 {
                expect = (expect + 1) << (len - prev_len);
            }
            assert_eq!(u64::from(code), expect, "symbol {sym}");
            prev_len = len;
        }
        assert_eq!(expect, (1 << 30) - 1, "EOS is the last, all ones");
    }

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            let mut enc = Vec::new();
            encode(&[b, b, b], &mut enc);
            assert_eq!(enc.len(), encoded_len(&[b, b, b]));
            let mut dec = Vec::new();
            decode(&enc, &mut dec).expect("decodes");
            assert_eq!(dec, [b, b, b]);
        }
    }

    #[test]
    fn rfc_strings() {
        let mut enc = Vec::new();
        encode(b"www.example.com", &mut enc);
        assert_eq!(
            enc,
            [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]
        );
        let mut dec = Vec::new();
        decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], &mut dec).expect("decodes");
        assert_eq!(dec, b"no-cache");
    }

    #[test]
    fn bad_padding_and_eos() {
        let mut out = Vec::new();
        // a full byte of ones after a symbol: 8 bits of padding
        assert!(decode(&[0x18 << 2 | 0x3, 0xff], &mut out).is_err()); // "/" then 0xff
                                                                      // padding of zeros: "0" is 00000, then 000 is not a prefix of EOS
        assert!(decode(&[0x00], &mut out).is_err());
        // EOS itself (30 ones) padded with ones
        assert!(decode(&[0xff, 0xff, 0xff, 0xff], &mut out).is_err());
        // empty and an exact fit are fine
        assert!(decode(&[], &mut out).is_ok());
        assert!(check(&[0x1f]).is_ok()); // "a" 00011 + 111
    }
}
