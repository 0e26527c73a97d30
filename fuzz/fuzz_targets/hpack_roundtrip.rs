//! Arbitrary field lists, statuses and peer table sizes through the encoder and
//! back through a decoder: the same fields, block after block, and both dynamic
//! tables equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wick_hpack::{Decoder, Encoder};

/// Peer table sizes set before the block, its status, its fields.
type Block = (Vec<u16>, Option<u16>, Vec<(Vec<u8>, Vec<u8>)>);

fuzz_target!(|blocks: Vec<Block>| {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for (resize, status, fields) in &blocks {
        for &size in resize {
            e.set_peer_table_size(usize::from(size));
        }
        let mut out = Vec::new();
        e.begin(&mut out);
        let mut expect = Vec::new();
        if let Some(code) = *status {
            e.status(code, &mut out);
            expect.push((b":status".to_vec(), code.to_string().into_bytes()));
        }
        for (name, value) in fields {
            e.field(name, value, &mut out);
            expect.push((name.clone(), value.clone()));
        }
        let mut got = Vec::new();
        d.decode(&out, usize::MAX, &mut |n, v| {
            got.push((n.to_vec(), v.to_vec()))
        })
        .expect("the encoder's block decodes");
        assert_eq!(got, expect);
        assert!(e.dynamic_table().eq(d.dynamic_table()));
        assert_eq!(e.dynamic_table_size(), d.dynamic_table_size());
    }
});
