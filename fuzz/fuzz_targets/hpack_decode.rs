//! Arbitrary bytes as header blocks, one after another into the same decoder (the
//! dynamic table carries over, as on a connection): no panic, the table within its
//! limit, nothing emitted past the list limit, and ListTooLarge only when over it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wick_hpack::{DecodeError, Decoder};

const MAX_LIST: usize = 256;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the table limit; blocks are split at 0xfe 0xfe.
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let limit = usize::from(limit) * 16;
    let mut d = Decoder::new(limit);
    let mut blocks = Vec::new();
    let mut start = 0;
    for i in 1..rest.len() {
        if rest[i - 1] == 0xfe && rest[i] == 0xfe && i > start {
            blocks.push(&rest[start..i - 1]);
            start = i + 1;
        }
    }
    blocks.push(rest.get(start..).unwrap_or_default());
    for block in blocks {
        let mut size = 0usize;
        let r = d.decode(block, MAX_LIST, &mut |n, v| size += n.len() + v.len() + 32);
        assert!(size <= MAX_LIST, "emitted past the limit");
        match r {
            Ok(()) => {}
            Err(DecodeError::ListTooLarge) => {}
            Err(DecodeError::Compression(_)) => return,
        }
        assert!(d.dynamic_table_size() <= d.dynamic_table_capacity());
        assert!(d.dynamic_table_capacity() <= limit);
        let total: usize = d.dynamic_table().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert_eq!(total, d.dynamic_table_size());
        // bytes within twice the limit, entries within four times limit / 32, a scratch
        assert!(
            d.heap_bytes() <= 5 * limit + 4096,
            "heap {} for limit {limit}",
            d.heap_bytes()
        );
    }
});
