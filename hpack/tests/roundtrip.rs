//! Encoder → decoder over random field lists, statuses and peer table sizes: the
//! decoder reads back exactly what was encoded, block after block, and both sides'
//! dynamic tables agree.

mod common;

use common::Fields;
use proptest::prelude::*;
use wick_hpack::{huffman, Decoder, Encoder};

const NAMES: &[&str] = &[
    "content-type",
    "content-length",
    "date",
    "etag",
    "last-modified",
    "accept-ranges",
    "server",
    "vary",
    "cache-control",
    "set-cookie",
    "location",
    "content-encoding",
    "x-frame-options",
    "x-request-id",
    "strict-transport-security",
    "age",
    "authorization",
    "accept-encoding",
    "www-authenticate",
    "link",
];

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::sample::select(NAMES).prop_map(|n| n.as_bytes().to_vec()),
        1 => "[a-z0-9-]{1,20}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => proptest::sample::select(&["text/html", "bytes", "wickd", "gzip, deflate", "", "1"][..])
            .prop_map(|v| v.as_bytes().to_vec()),
        2 => "[ -~]{0,40}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..60),
        1 => proptest::collection::vec(any::<u8>(), 1000..2500),
    ]
}

#[derive(Debug, Clone)]
struct Block {
    resize: Vec<usize>,
    status: Option<u16>,
    fields: Fields,
}

fn block() -> impl Strategy<Value = Block> {
    (
        proptest::collection::vec(prop_oneof![0..=200usize, 0..=10_000usize], 0..3),
        proptest::option::of(prop_oneof![
            proptest::sample::select(&[200u16, 204, 206, 301, 302, 304, 404, 500][..]),
            any::<u16>()
        ]),
        proptest::collection::vec((name(), value()), 0..12),
    )
        .prop_map(|(resize, status, fields)| Block {
            resize,
            status,
            fields,
        })
}

fn run(blocks: &[Block], decoder_limit: usize) -> Result<(), TestCaseError> {
    let mut e = Encoder::new();
    let mut d = Decoder::new(decoder_limit);
    for (n, b) in blocks.iter().enumerate() {
        for &size in &b.resize {
            e.set_peer_table_size(size);
        }
        let mut out = Vec::new();
        e.begin(&mut out);
        let mut expect = Fields::new();
        if let Some(code) = b.status {
            e.status(code, &mut out);
            expect.push((b":status".to_vec(), code.to_string().into_bytes()));
        }
        for (name, value) in &b.fields {
            e.field(name, value, &mut out);
            expect.push((name.clone(), value.clone()));
        }
        let mut got = Fields::new();
        d.decode(&out, usize::MAX, &mut |n, v| {
            got.push((n.to_vec(), v.to_vec()))
        })
        .map_err(|err| TestCaseError::fail(format!("block {n}: {err}")))?;
        prop_assert_eq!(&got, &expect, "block {}", n);
        let etable: Vec<_> = e.dynamic_table().collect();
        let dtable: Vec<_> = d.dynamic_table().collect();
        prop_assert_eq!(etable, dtable, "tables after block {}", n);
        prop_assert_eq!(e.dynamic_table_size(), d.dynamic_table_size());
        prop_assert!(e.dynamic_table_size() <= 4096);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(blocks in proptest::collection::vec(block(), 1..8)) {
        run(&blocks, 4096)?;
    }

    /// The decoder advertises the size the encoder is told of.
    #[test]
    fn round_trip_advertised(size in 0usize..5000, blocks in proptest::collection::vec(block(), 1..6)) {
        let mut blocks = blocks;
        blocks[0].resize.insert(0, size);
        for b in &mut blocks {
            b.resize.iter_mut().for_each(|s| *s = (*s).min(size));
        }
        run(&blocks, size)?;
    }

    #[test]
    fn huffman_round_trip(s in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut coded = Vec::new();
        huffman::encode(&s, &mut coded);
        prop_assert_eq!(coded.len(), huffman::encoded_len(&s));
        let mut back = Vec::new();
        huffman::decode(&coded, &mut back).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, s);
    }

    /// Arbitrary blocks: never a panic, and a block that decodes leaves the table
    /// within its limit.
    #[test]
    fn arbitrary_blocks(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..6)) {
        let mut d = Decoder::new(256);
        for b in &blocks {
            let _ = d.decode(b, 200, &mut |_, _| {});
            prop_assert!(d.dynamic_table_size() <= 256);
        }
    }
}
