//! The dynamic table (RFC 7541 2.3.2, 4): index 0 is the newest entry; the oldest
//! are evicted to keep the size (name + value + 32 per entry) within the capacity.
//!
//! Names and values live in one byte buffer, oldest first, so a lookup hands out
//! slices and an insert is one copy; the entries' places in a second, also oldest
//! first. Evicted bytes and entries stay at the front (`dead`, `gone`) until an
//! insert finds a buffer full and they are at least as many as the live ones: then
//! the live ones move down, which costs no more than what was evicted. The byte
//! buffer thus stays within twice the capacity.

use crate::ENTRY_OVERHEAD;

#[derive(Debug, Default)]
pub(crate) struct Table {
    bytes: Vec<u8>,
    /// Bytes at the front of `bytes` that belong to evicted entries.
    dead: usize,
    /// Oldest first.
    entries: Vec<Entry>,
    /// Entries at the front of `entries` that were evicted.
    gone: usize,
    /// RFC size of the entries.
    size: usize,
    /// Maximum size, from the last size update.
    capacity: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    name_len: usize,
    value_len: usize,
}

impl Entry {
    fn end(&self) -> usize {
        self.start
            .saturating_add(self.name_len)
            .saturating_add(self.value_len)
    }

    fn size(&self) -> usize {
        self.name_len
            .saturating_add(self.value_len)
            .saturating_add(ENTRY_OVERHEAD)
    }
}

impl Table {
    pub(crate) fn new(capacity: usize) -> Table {
        Table {
            capacity,
            ..Table::default()
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity().saturating_add(
            self.entries
                .capacity()
                .saturating_mul(std::mem::size_of::<Entry>()),
        )
    }

    /// The entries in the table, oldest first.
    fn live(&self) -> &[Entry] {
        self.entries.get(self.gone..).unwrap_or_default()
    }

    fn slices(&self, e: &Entry) -> Option<(&[u8], &[u8])> {
        let mid = e.start.checked_add(e.name_len)?;
        let end = mid.checked_add(e.value_len)?;
        Some((self.bytes.get(e.start..mid)?, self.bytes.get(mid..end)?))
    }

    /// Entry `i`, 0 being the newest.
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let live = self.live();
        let pos = live.len().checked_sub(1)?.checked_sub(i)?;
        self.slices(live.get(pos)?)
    }

    /// Newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.live().iter().rev().filter_map(|e| self.slices(e))
    }

    /// The newest entry equal to (name, value), else the newest with that name.
    pub(crate) fn find(&self, name: &[u8], value: &[u8]) -> Lookup {
        let mut by_name = None;
        for (i, e) in self.live().iter().rev().enumerate() {
            if e.name_len != name.len() || (by_name.is_some() && e.value_len != value.len()) {
                continue;
            }
            let Some((n, v)) = self.slices(e) else {
                continue;
            };
            if !same(n, name) {
                continue;
            }
            if same(v, value) {
                return Lookup::Field(i);
            }
            by_name.get_or_insert(i);
        }
        by_name.map_or(Lookup::None, Lookup::Name)
    }

    /// Adds (name, value) as entry 0, evicting as needed; an entry larger than the
    /// capacity empties the table and is not added (4.4).
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let len = name.len().checked_add(value.len());
        let size = len.and_then(|len| len.checked_add(ENTRY_OVERHEAD));
        let (Some(len), Some(size)) = (len, size) else {
            self.clear();
            return;
        };
        let Some(room) = self.capacity.checked_sub(size) else {
            self.clear();
            return;
        };
        self.evict_to(room);
        self.make_room(len);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        if self.entries.len() == self.entries.capacity()
            && self.gone >= self.entries.len().saturating_sub(self.gone)
        {
            self.compact_entries();
        }
        self.entries.push(Entry {
            start,
            name_len: name.len(),
            value_len: value.len(),
        });
        self.size = self.size.saturating_add(size);
    }

    /// A dynamic table size update (6.3). Capacity 0 frees the memory too.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
        if capacity == 0 {
            self.bytes = Vec::new();
            self.entries = Vec::new();
        } else if self.bytes.capacity() / 2 > capacity {
            self.compact();
            self.bytes.shrink_to(capacity.saturating_mul(2));
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.gone = 0;
        self.bytes.clear();
        self.dead = 0;
        self.size = 0;
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let Some(&e) = self.live().first() else {
                break;
            };
            self.gone += 1;
            self.size = self.size.saturating_sub(e.size());
            self.dead = e.end();
        }
        if self.live().is_empty() {
            self.clear();
        }
    }

    /// Makes the buffer able to take `len` more bytes: compacts when the dead bytes
    /// outnumber the live ones, else grows (doubling, within twice the capacity).
    fn make_room(&mut self, len: usize) {
        let need = self.bytes.len().saturating_add(len);
        if need <= self.bytes.capacity() {
            return;
        }
        let live = self.bytes.len().saturating_sub(self.dead);
        if self.dead > 0 && self.dead >= live {
            self.compact();
        }
        let need = self.bytes.len().saturating_add(len);
        if need > self.bytes.capacity() {
            let doubled = self.bytes.capacity().saturating_mul(2).max(256);
            let target = doubled.min(self.capacity.saturating_mul(2)).max(need);
            self.bytes
                .reserve_exact(target.saturating_sub(self.bytes.len()));
        }
    }

    fn compact_entries(&mut self) {
        let gone = self.gone;
        if gone == 0 || gone > self.entries.len() {
            return;
        }
        self.entries.drain(..gone);
        self.gone = 0;
    }

    fn compact(&mut self) {
        let dead = self.dead;
        if dead == 0 || dead > self.bytes.len() {
            return;
        }
        self.bytes.drain(..dead);
        for e in self.entries.iter_mut() {
            e.start = e.start.saturating_sub(dead);
        }
        self.dead = 0;
    }
}

/// `a == b`, inline for the short strings header fields mostly are: two overlapping
/// words from each end rather than a call to memcmp.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| -> u64 {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_ne_bytes)
    };
    let half = |s: &[u8], at: usize| -> u32 {
        s.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_ne_bytes)
    };
    match len {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

/// What [`Table::find`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    None,
    /// Entry `i` holds the name.
    Name(usize),
    /// Entry `i` holds name and value.
    Field(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_and_compacts() {
        let mut t = Table::new(200);
        assert_eq!(t.heap_bytes(), 0);
        for i in 0..1000u32 {
            let v = i.to_string();
            t.insert(b"name", v.as_bytes());
            assert!(t.size() <= 200);
            assert_eq!(t.get(0), Some((&b"name"[..], v.as_bytes())));
            assert!(t.bytes.capacity() <= 400 + 16, "{}", t.bytes.capacity());
        }
        let all: Vec<_> = t.iter().map(|(_, v)| v.to_vec()).collect();
        assert_eq!(
            all,
            [
                b"999".to_vec(),
                b"998".to_vec(),
                b"997".to_vec(),
                b"996".to_vec(),
                b"995".to_vec()
            ]
        );
        assert_eq!(t.find(b"name", b"997"), Lookup::Field(2));
        assert_eq!(t.find(b"name", b"1"), Lookup::Name(0));
        assert_eq!(t.find(b"nope", b"1"), Lookup::None);
        // too large: empties the table
        t.insert(&[b'x'; 200], b"");
        assert_eq!((t.size(), t.get(0)), (0, None));
        t.insert(b"a", b"b");
        t.set_capacity(0);
        assert_eq!((t.size(), t.heap_bytes()), (0, 0));
    }

    #[test]
    fn same_is_equality() {
        let a: Vec<u8> = (0..40).collect();
        for len in 0..40 {
            let x = &a[..len];
            assert!(same(x, x));
            assert!(!same(x, &a[..len + 1]));
            for at in 0..len {
                let mut y = x.to_vec();
                y[at] ^= 0x20;
                assert!(!same(x, &y), "len {len}, byte {at}");
            }
        }
    }
}
