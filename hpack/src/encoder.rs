//! Encoding response heads (RFC 7541 6): which fields go into the peer's dynamic
//! table, which stay literal, and Huffman coding where it is shorter.

use crate::static_table::{self, Policy};
use crate::table::{Lookup, Table};
use crate::{huffman, int, ENTRY_OVERHEAD};

/// The most of the peer's table we use, and the size it has until its SETTINGS
/// say otherwise (RFC 9113 6.5.2 default).
const TABLE_MAX: usize = 4096;

/// The encoding context of one connection.
#[derive(Debug)]
pub struct Encoder {
    table: Table,
    /// Size updates owed at the start of the next block: the smallest size set since
    /// the last block, and the last (4.2).
    resize: Option<(usize, usize)>,
    date: DateMemo,
    repeats: [Repeat; 3],
}

/// What the last responses sent for one volatile field (etag, last-modified,
/// content-length): a value sent twice in a row is put in the dynamic table,
/// and from then on sent as an index while it stays the same (the same file
/// served over and over: no Huffman coding, two bytes instead of thirty).
/// Hashes only: a few bytes per connection.
#[derive(Debug, Default, Clone, Copy)]
struct Repeat {
    /// The field's static index (0: slot unused).
    name: u8,
    /// Hash of the last value sent.
    last: u32,
    /// Hash of the value put in the dynamic table (0: none).
    indexed: u32,
}

/// A value's hash for [`Repeat`], 8 bytes a step (FNV's multiply per byte, one
/// waiting on the other, cost more than the rest of the field); never 0, which
/// means "none". A collision costs compression, never correctness: an index is
/// sent only for a value found in the table.
fn value_hash(v: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (v.len() as u64) ^ K;
    let mut words = v.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    let rest = words.remainder();
    let mut b = [0u8; 8];
    if let Some(t) = b.get_mut(..rest.len()) {
        t.copy_from_slice(rest);
    }
    h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K);
    ((h >> 32) as u32 ^ h as u32).max(1)
}

/// Static indexes of the volatile fields whose repeats are indexed.
const ETAG: u8 = 34;
const LAST_MODIFIED: u8 = 44;
const CONTENT_LENGTH: u8 = 28;

/// The last `date` field as encoded. Every response within a second sends the same
/// value: it is Huffman-coded once a second rather than once a response.
#[derive(Debug, Default)]
struct DateMemo {
    value: [u8; DATE_LEN],
    coded: [u8; 32],
    /// 0: nothing kept.
    coded_len: u8,
}

/// An IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
const DATE_LEN: usize = 29;
/// Static index of `date`.
const DATE: u8 = 33;

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// Peer's table size starts at 4096 (RFC default). No heap until first insert.
    pub fn new() -> Encoder {
        Encoder {
            table: Table::new(TABLE_MAX),
            resize: None,
            date: DateMemo::default(),
            repeats: [Repeat::default(); 3],
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE: we use min(n, 4096) as our table size and
    /// the next block starts with a dynamic table size update (as RFC 7541 4.2 requires).
    ///
    /// The update is sent even when our size stays the same: a decoder whose limit
    /// dropped (8192 to 4096, say) may insist on one.
    pub fn set_peer_table_size(&mut self, n: usize) {
        let size = n.min(TABLE_MAX);
        self.resize = Some(match self.resize {
            Some((low, _)) => (low.min(size), size),
            None => (size, size),
        });
    }

    /// Start a header block in `out` (appends a pending size update, if any).
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        if let Some((low, size)) = self.resize.take() {
            if low < size {
                int::encode(out, 0x20, 0x1f, low);
                self.table.set_capacity(low);
            }
            int::encode(out, 0x20, 0x1f, size);
            self.table.set_capacity(size);
        }
    }

    /// :status, with the static table's entries for 200/204/206/304/400/404/500.
    pub fn status(&mut self, code: u16, out: &mut Vec<u8>) {
        let index: u8 = match code {
            200 => 8,
            204 => 9,
            206 => 10,
            304 => 11,
            400 => 12,
            404 => 13,
            500 => 14,
            _ => 0,
        };
        if index != 0 {
            out.push(0x80 | index);
            return;
        }
        let mut digits = [0u8; 5];
        let mut at = digits.len();
        let mut rest = code;
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 || at == 0 {
                break;
            }
        }
        let value = digits.get(at..).unwrap_or_default();
        self.indexed_or_literal(b":status", 8, value, out);
    }

    /// Append one field (name is lower-case already). Values that repeat across
    /// responses are inserted into the dynamic table; volatile ones (content-length,
    /// date, etag, last-modified, location, content-range, age...) are literal without
    /// indexing, but an etag, last-modified or content-length sent twice in a row is
    /// indexed ([`Repeat`]); sensitive ones (set-cookie, cookie, authorization,
    /// proxy-authorization) never indexed. Strings are Huffman-coded when shorter.
    pub fn field(&mut self, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let (static_index, policy) = static_table::classify(name);
        match policy {
            Policy::Index => self.indexed_or_literal(name, static_index, value, out),
            Policy::Volatile if static_index == DATE && value.len() == DATE_LEN => {
                self.date(value, out)
            }
            Policy::Volatile => match static_index {
                ETAG | LAST_MODIFIED | CONTENT_LENGTH => {
                    self.repeated(name, static_index, value, out)
                }
                _ => self.literal(0x00, name, static_index, value, out),
            },
            Policy::Sensitive => self.literal(0x10, name, static_index, value, out),
        }
    }

    /// Bytes of heap this encoder holds (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// The dynamic table, newest entry first.
    pub fn dynamic_table(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.table.iter()
    }

    /// The dynamic table's size (RFC 7541 4.1).
    pub fn dynamic_table_size(&self) -> usize {
        self.table.size()
    }

    fn date(&mut self, value: &[u8], out: &mut Vec<u8>) {
        let memo = &mut self.date;
        if memo.coded_len != 0 && memo.value == value {
            if let Some(coded) = memo.coded.get(..usize::from(memo.coded_len)) {
                out.extend_from_slice(coded);
                return;
            }
        }
        let start = out.len();
        self.literal(0x00, b"date", DATE, value, out);
        let memo = &mut self.date;
        memo.coded_len = 0;
        if let (Some(coded), Ok(value)) = (out.get(start..), <[u8; DATE_LEN]>::try_from(value)) {
            if let (Some(keep), Ok(len)) =
                (memo.coded.get_mut(..coded.len()), u8::try_from(coded.len()))
            {
                keep.copy_from_slice(coded);
                memo.value = value;
                memo.coded_len = len;
            }
        }
    }

    /// A volatile field that may repeat (see [`Repeat`]).
    fn repeated(&mut self, name: &[u8], static_index: u8, value: &[u8], out: &mut Vec<u8>) {
        let hash = value_hash(value);
        let slot = match self.repeats.iter().position(|r| r.name == static_index) {
            Some(i) => i,
            None => match self.repeats.iter().position(|r| r.name == 0) {
                Some(i) => i,
                None => return self.literal(0x00, name, static_index, value, out),
            },
        };
        let r = self.repeats.get(slot).copied().unwrap_or_default();
        if r.indexed == hash {
            if let Lookup::Field(i) = self.table.find(name, value) {
                int::encode(out, 0x80, 0x7f, dynamic_index(i));
                return;
            }
        }
        let mut next = Repeat {
            name: static_index,
            last: hash,
            indexed: r.indexed,
        };
        if r.last == hash && r.indexed != hash {
            // Sent twice in a row: worth a table entry (indexed_or_literal
            // inserts it unless it would take over half the table).
            self.indexed_or_literal(name, static_index, value, out);
            next.indexed = hash;
        } else {
            self.literal(0x00, name, static_index, value, out);
        }
        if let Some(s) = self.repeats.get_mut(slot) {
            *s = next;
        }
    }

    /// An index if the field is in a table; else a literal, added to the dynamic table
    /// unless it would take more than half of it.
    fn indexed_or_literal(
        &mut self,
        name: &[u8],
        static_index: u8,
        value: &[u8],
        out: &mut Vec<u8>,
    ) {
        if let Some(index) = static_table::find_pair(static_index, value) {
            int::encode(out, 0x80, 0x7f, index);
            return;
        }
        let found = self.table.find(name, value);
        if let Lookup::Field(i) = found {
            int::encode(out, 0x80, 0x7f, dynamic_index(i));
            return;
        }
        let size = name
            .len()
            .saturating_add(value.len())
            .saturating_add(ENTRY_OVERHEAD);
        if size > self.table.capacity() / 2 {
            self.literal(0x00, name, static_index, value, out);
            return;
        }
        let name_index = match (static_index, found) {
            (0, Lookup::Name(i)) => dynamic_index(i),
            (index, _) => usize::from(index),
        };
        int::encode(out, 0x40, 0x3f, name_index);
        if name_index == 0 {
            string(name, out);
        }
        string(value, out);
        self.table.insert(name, value);
    }

    /// A literal not indexed: `flags` 0x00 (without indexing) or 0x10 (never).
    fn literal(&self, flags: u8, name: &[u8], static_index: u8, value: &[u8], out: &mut Vec<u8>) {
        let name_index = match static_index {
            0 => match self.table.find(name, &[]) {
                Lookup::Name(i) | Lookup::Field(i) => dynamic_index(i),
                Lookup::None => 0,
            },
            index => usize::from(index),
        };
        int::encode(out, flags, 0x0f, name_index);
        if name_index == 0 {
            string(name, out);
        }
        string(value, out);
    }
}

fn dynamic_index(i: usize) -> usize {
    i.saturating_add(static_table::LEN + 1)
}

/// A string literal (5.2), Huffman-coded when that is shorter.
fn string(s: &[u8], out: &mut Vec<u8>) {
    if s.len() < 0x7f {
        // Either way the length fits the prefix byte: code first, then choose,
        // rather than size the code in a pass of its own.
        let start = out.len();
        out.push(0x80);
        huffman::append(s, out);
        let coded = out.len() - start - 1;
        if coded < s.len() {
            if let Some(prefix) = out.get_mut(start) {
                *prefix = 0x80 | coded as u8;
            }
        } else {
            out.truncate(start);
            out.push(s.len() as u8);
            out.extend_from_slice(s);
        }
        return;
    }
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        int::encode(out, 0x80, 0x7f, coded);
        huffman::append(s, out);
    } else {
        int::encode(out, 0x00, 0x7f, s.len());
        out.extend_from_slice(s);
    }
}
