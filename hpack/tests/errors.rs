//! Malformed blocks are COMPRESSION_ERRORs; a list over the limit is ListTooLarge
//! with the dynamic table still in step.

mod common;

use common::{decode, fields, hex, table};
use wick_hpack::{huffman, DecodeError, Decoder};

fn error(block: &[u8]) -> DecodeError {
    let mut d = Decoder::new(4096);
    decode(&mut d, block, 1 << 20).expect_err("block must be refused")
}

fn compression(block: &[u8]) -> &'static str {
    match error(block) {
        DecodeError::Compression(why) => why,
        e => panic!("{e:?}"),
    }
}

#[test]
fn bad_indices() {
    assert_eq!(compression(&[0x80]), "index 0");
    // 62: the first dynamic index, on an empty table
    assert_eq!(compression(&[0xbe]), "index past the dynamic table");
    // 61 is the last static entry
    assert!(decode(&mut Decoder::new(4096), &[0xbd], 100).is_ok());
    // a literal whose name index is past the table, each kind
    assert_eq!(compression(&[0x7e, 0x00]), "index past the dynamic table");
    assert_eq!(
        compression(&[0x0f, 0x2f, 0x00]),
        "index past the dynamic table"
    );
    assert_eq!(
        compression(&[0x1f, 0x2f, 0x00]),
        "index past the dynamic table"
    );
    // one past the newest entry after an insert
    let mut d = Decoder::new(4096);
    decode(&mut d, &hex("400161 0162"), 100).expect("block decodes");
    assert_eq!(
        decode(&mut d, &[0xbe], 100).expect("block decodes"),
        fields(&[("a", "b")])
    );
    assert!(decode(&mut d, &[0xbf], 100).is_err());
}

#[test]
fn bad_integers() {
    // index 2^32 + 126
    assert_eq!(
        compression(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        "integer overflow"
    );
    // too many continuation bytes, even of zeros
    assert_eq!(
        compression(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        "integer overflow"
    );
    assert_eq!(compression(&[0xff, 0x80]), "truncated integer");
    // a string length that overflows
    assert_eq!(
        compression(&[0x40, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        "integer overflow"
    );
}

#[test]
fn bad_strings() {
    // name length 5 with 2 bytes left
    assert_eq!(compression(&hex("40 05 6162")), "truncated string");
    // value missing altogether
    assert_eq!(compression(&hex("40 01 61")), "truncated integer");
    // EOS inside a Huffman value: 30 ones and 2 of padding
    assert_eq!(
        compression(&hex("41 84 ffffffff")),
        "Huffman string holds EOS"
    );
    // 'a' (00011) then 11 ones: padding longer than 7 bits
    assert_eq!(
        compression(&hex("41 82 1fff")),
        "Huffman padding longer than 7 bits or not all ones"
    );
    // 'a' then 000: padding not all ones
    assert_eq!(
        compression(&hex("41 81 18")),
        "Huffman padding longer than 7 bits or not all ones"
    );
    // the same in a name, and in a literal not indexed
    assert!(error(&hex("40 81 18 00")) != DecodeError::ListTooLarge);
    assert!(error(&hex("00 81 18 00")) != DecodeError::ListTooLarge);
    assert!(error(&hex("10 00 81 18")) != DecodeError::ListTooLarge);
    // a whole padding byte after an exact fit
    let mut coded = Vec::new();
    huffman::encode(b"0000000", &mut coded); // 35 bits: 5 of padding
    coded.push(0xff);
    let mut block = vec![0x41, 0x80 | coded.len() as u8];
    block.extend_from_slice(&coded);
    assert_eq!(
        compression(&block),
        "Huffman padding longer than 7 bits or not all ones"
    );
}

#[test]
fn size_updates() {
    assert_eq!(
        compression(&hex("3fe21f")),
        "table size update above the limit"
    ); // 4097
    assert!(decode(&mut Decoder::new(4096), &hex("3fe11f"), 100).is_ok()); // 4096
    assert_eq!(
        compression(&hex("82 20")),
        "table size update after a field"
    );
    assert_eq!(
        compression(&hex("400161 0162 20")),
        "table size update after a field"
    );
    // two at the start are fine (4.2: smallest, then final)
    let mut d = Decoder::new(4096);
    decode(&mut d, &hex("400161 0162"), 100).expect("block decodes");
    assert_eq!(
        decode(&mut d, &hex("20 3f e1 1f 82"), 100).expect("block decodes"),
        fields(&[(":method", "GET")])
    );
    assert_eq!(d.dynamic_table_size(), 0, "size 0 evicted the entry");
    assert_eq!(d.dynamic_table_capacity(), 4096);
    // a smaller advertised limit
    let mut d = Decoder::new(100);
    assert!(decode(&mut d, &hex("3f 46"), 100).is_err()); // 101
    assert!(decode(&mut d, &hex("3f 45"), 100).is_ok()); // 100
}

#[test]
fn size_update_evicts() {
    let mut d = Decoder::new(4096);
    decode(&mut d, &hex("400161 0162 400163 0164"), 1000).expect("block decodes");
    assert_eq!(d.dynamic_table_size(), 68);
    // 34 keeps only the newest
    decode(&mut d, &hex("3f 03"), 1000).expect("block decodes");
    assert_eq!(table(&d), fields(&[("c", "d")]));
    // an entry larger than the table empties it and is not added (4.4)
    decode(&mut d, &hex("400361 6263 0164"), 1000).expect("block decodes");
    assert_eq!(table(&d), fields(&[]));
}

/// A list over the limit: ListTooLarge after the whole block, the table updated by
/// every field of it, nothing emitted past the limit, and the next block decodes.
#[test]
fn list_too_large_keeps_the_table_in_step() {
    let mut d = Decoder::new(4096);
    // :method GET (42), then literal-indexed big-name: 100 x 'v' (140), then
    // literal not indexed x-a: b (35), then literal-indexed Huffman never-mind: www.example.com
    let mut block = hex("82");
    block.extend(hex("40 08 6269672d6e616d65 64"));
    block.extend([b'v'; 100]);
    block.extend(hex("00 03 782d61 0162"));
    block.extend(hex("41 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
    let mut seen = Vec::new();
    let r = d.decode(&block, 100, &mut |n, v| seen.push((n.to_vec(), v.to_vec())));
    assert_eq!(r, Err(DecodeError::ListTooLarge));
    assert_eq!(
        seen,
        fields(&[(":method", "GET")]),
        "nothing past the limit"
    );
    let big = "v".repeat(100);
    assert_eq!(
        table(&d),
        fields(&[
            (":authority", "www.example.com"),
            ("big-name", big.as_str())
        ])
    );
    // the next block refers to both entries
    let next = decode(&mut d, &hex("be bf"), 1000).expect("block decodes");
    assert_eq!(
        next,
        fields(&[
            (":authority", "www.example.com"),
            ("big-name", big.as_str())
        ])
    );
    // exactly at the limit is fine: 42 + 57
    let mut d = Decoder::new(4096);
    assert!(decode(&mut d, &hex("82 41 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 99).is_ok());
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("82 41 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 98),
        Err(DecodeError::ListTooLarge)
    );
    assert_eq!(d.dynamic_table_size(), 57);
}

/// A compression error found after the list went over the limit is still reported
/// as one: the connection must end.
#[test]
fn compression_error_wins_over_list_too_large() {
    let mut d = Decoder::new(4096);
    let r = decode(&mut d, &hex("82 82 82 80"), 50);
    assert_eq!(r, Err(DecodeError::Compression("index 0")));
    // and a bad Huffman string in a field not kept is still checked
    let mut d = Decoder::new(4096);
    let r = decode(&mut d, &hex("82 82 00 81 61 81 18"), 50);
    assert!(matches!(r, Err(DecodeError::Compression(_))), "{r:?}");
}

#[test]
fn no_heap_until_insert() {
    let mut d = Decoder::new(4096);
    assert_eq!(d.heap_bytes(), 0);
    decode(&mut d, &hex("82 86 84"), 1000).expect("block decodes");
    assert_eq!(d.heap_bytes(), 0);
    // a Huffman literal not indexed needs a scratch only while the block is decoded
    let got = decode(&mut d, &hex("04 86 a8eb 1064 9cbf"), 1000).expect("block decodes");
    assert_eq!(got, fields(&[(":path", "no-cache")]));
    assert_eq!(d.heap_bytes(), 0);
    decode(&mut d, &hex("41 0f 7777772e6578616d706c652e636f6d"), 1000).expect("block decodes");
    assert!(d.heap_bytes() > 0);
}
