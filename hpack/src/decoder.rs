//! Decoding header blocks (RFC 7541 3, 6) into fields, keeping the dynamic table in
//! step with the peer's encoder.

use crate::table::Table;
use crate::{huffman, int, static_table, DecodeError, ENTRY_OVERHEAD};

/// Scratch kept between blocks; a larger one (a big Huffman-coded cookie) is freed,
/// and so is any while the table is empty: a connection holds no heap until the
/// peer indexes something.
const SCRATCH_KEEP: usize = 1024;

/// The decoding context of one connection.
#[derive(Debug)]
pub struct Decoder {
    table: Table,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertise: no size update may exceed it.
    limit: usize,
    /// Huffman-decoded strings of the field at hand (name, then value).
    scratch: Vec<u8>,
}

/// Where a decoded string is.
#[derive(Clone, Copy)]
enum Bytes<'b> {
    Static(&'static [u8]),
    Block(&'b [u8]),
    Scratch(usize, usize),
}

impl<'b> Bytes<'b> {
    fn get<'a>(self, scratch: &'a [u8]) -> Option<&'a [u8]>
    where
        'b: 'a,
    {
        match self {
            Bytes::Static(s) => Some(s),
            Bytes::Block(s) => Some(s),
            Bytes::Scratch(start, end) => scratch.get(start..end),
        }
    }
}

/// The header list's budget: RFC 9113's size (name + value + 32 per field).
struct Budget {
    left: usize,
    over: bool,
}

impl Budget {
    fn admit(&mut self, name: &[u8], value: &[u8], emit: &mut dyn FnMut(&[u8], &[u8])) {
        if self.over {
            return;
        }
        let size = name
            .len()
            .saturating_add(value.len())
            .saturating_add(ENTRY_OVERHEAD);
        match self.left.checked_sub(size) {
            Some(left) => {
                self.left = left;
                emit(name, value);
            }
            None => self.over = true,
        }
    }
}

/// Entry `index` of the whole index space (2.3.3), known to be past the static table.
fn dynamic(table: &Table, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    index
        .checked_sub(static_table::LEN + 1)
        .and_then(|i| table.get(i))
        .ok_or(DecodeError::Compression("index past the dynamic table"))
}

const BROKEN: DecodeError = DecodeError::Compression("dynamic table inconsistent");

impl Decoder {
    /// `max_table`: the SETTINGS_HEADER_TABLE_SIZE we advertise (4096). No heap allocation
    /// until the first dynamic-table insert (an idle HTTP/2 connection must stay small).
    ///
    /// The table starts at `max_table`: with the RFC default of 4096 advertised, a
    /// peer's encoder cannot have used more before our SETTINGS arrived.
    pub fn new(max_table: usize) -> Decoder {
        Decoder {
            table: Table::new(max_table),
            limit: max_table,
            scratch: Vec::new(),
        }
    }

    /// Bytes of heap this decoder holds (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.table
            .heap_bytes()
            .saturating_add(self.scratch.capacity())
    }

    /// The dynamic table, newest entry first.
    pub fn dynamic_table(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.table.iter()
    }

    /// The dynamic table's size (RFC 7541 4.1).
    pub fn dynamic_table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's maximum size, as the last size update set it.
    pub fn dynamic_table_capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Decode one complete header block (HEADERS + CONTINUATIONs joined); `emit(name, value)`
    /// per field in order. Names are emitted as received (the h2 layer itself rejects
    /// upper-case names).
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut budget = Budget {
            left: max_list,
            over: false,
        };
        let result = self.fields(block, &mut budget, emit);
        if self.scratch.capacity() > SCRATCH_KEEP || self.table.size() == 0 {
            self.scratch = Vec::new();
        }
        result?;
        if budget.over {
            return Err(DecodeError::ListTooLarge);
        }
        Ok(())
    }

    fn fields(
        &mut self,
        block: &[u8],
        budget: &mut Budget,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut cur = block;
        // Size updates may only open a block (4.2; RFC 9113 4.3.1).
        let mut opening = true;
        while let Some(&first) = cur.first() {
            if first & 0x80 != 0 {
                let index = int::decode(&mut cur, 0x7f)?;
                let (name, value) = self.field_at(index)?;
                budget.admit(name, value, emit);
            } else if first & 0x40 != 0 {
                self.literal_indexed(&mut cur, budget, emit)?;
            } else if first & 0x20 != 0 {
                if !opening {
                    return Err(DecodeError::Compression("table size update after a field"));
                }
                let size = int::decode(&mut cur, 0x1f)?;
                if size > self.limit {
                    return Err(DecodeError::Compression(
                        "table size update above the limit",
                    ));
                }
                self.table.set_capacity(size);
                continue;
            } else {
                // 0000 without indexing, 0001 never indexed: the same to a decoder
                self.literal(&mut cur, budget, emit)?;
            }
            opening = false;
        }
        Ok(())
    }

    fn field_at(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        if index == 0 {
            return Err(DecodeError::Compression("index 0"));
        }
        if let Some(field) = static_table::get(index) {
            return Ok(field);
        }
        dynamic(&self.table, index)
    }

    /// Literal with incremental indexing (6.2.1): emitted, then added to the table.
    fn literal_indexed(
        &mut self,
        cur: &mut &[u8],
        budget: &mut Budget,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let index = int::decode(cur, 0x3f)?;
        self.scratch.clear();
        let name = match index {
            0 => self.string(cur, true)?,
            _ => match static_table::get(index) {
                Some((name, _)) => Bytes::Static(name),
                None => {
                    // The insert may evict the entry the name is in: copy it first.
                    let (name, _) = dynamic(&self.table, index)?;
                    let len = name.len();
                    self.scratch.extend_from_slice(name);
                    Bytes::Scratch(0, len)
                }
            },
        };
        let value = self.string(cur, true)?;
        let name = name.get(&self.scratch).ok_or(BROKEN)?;
        let value = value.get(&self.scratch).ok_or(BROKEN)?;
        budget.admit(name, value, emit);
        self.table.insert(name, value);
        Ok(())
    }

    /// Literal without indexing (6.2.2) or never indexed (6.2.3).
    fn literal(
        &mut self,
        cur: &mut &[u8],
        budget: &mut Budget,
        emit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let index = int::decode(cur, 0x0f)?;
        self.scratch.clear();
        // Over budget, the strings are only checked, not copied.
        let keep = !budget.over;
        let name = match index {
            0 => Some(self.string(cur, keep)?),
            _ => {
                self.field_at(index)?;
                None
            }
        };
        let value = self.string(cur, keep)?;
        if budget.over {
            return Ok(());
        }
        let value = value.get(&self.scratch).ok_or(BROKEN)?;
        let name = match name {
            Some(name) => name.get(&self.scratch).ok_or(BROKEN)?,
            None => self.field_at(index)?.0,
        };
        budget.admit(name, value, emit);
        Ok(())
    }

    /// A string literal (5.2): raw bytes stay in the block, Huffman ones are decoded
    /// into the scratch (or only checked, unless `keep`).
    fn string<'b>(&mut self, cur: &mut &'b [u8], keep: bool) -> Result<Bytes<'b>, DecodeError> {
        let huffman = cur.first().is_some_and(|&b| b & 0x80 != 0);
        let len = int::decode(cur, 0x7f)?;
        let (raw, rest) = cur
            .split_at_checked(len)
            .ok_or(DecodeError::Compression("truncated string"))?;
        *cur = rest;
        if !huffman {
            return Ok(Bytes::Block(raw));
        }
        if !keep {
            huffman::check(raw)?;
            return Ok(Bytes::Static(b""));
        }
        let start = self.scratch.len();
        huffman::decode(raw, &mut self.scratch)?;
        Ok(Bytes::Scratch(start, self.scratch.len()))
    }
}
