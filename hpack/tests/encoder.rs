//! The encoder's choices: static indices, what goes into the dynamic table, size
//! updates, and that a decoder reads it all back.

mod common;

use common::{decode, fields, hex, Fields};
use wick_hpack::{Decoder, Encoder};

fn head(e: &mut Encoder, status: u16, list: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    e.begin(&mut out);
    e.status(status, &mut out);
    for (n, v) in list {
        e.field(n.as_bytes(), v.as_bytes(), &mut out);
    }
    out
}

fn with_status(status: &str, list: &[(&str, &str)]) -> Fields {
    let mut all = fields(&[(":status", status)]);
    all.extend(fields(list));
    all
}

const RESPONSE: &[(&str, &str)] = &[
    ("content-type", "text/html"),
    ("content-length", "1234"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("etag", "\"5f1a-4d2\""),
    ("last-modified", "Sun, 20 Oct 2013 10:00:00 GMT"),
    ("accept-ranges", "bytes"),
    ("server", "wickd"),
];

#[test]
fn typical_response_shrinks_after_the_first() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    assert_eq!(e.heap_bytes(), 0);
    let first = head(&mut e, 200, RESPONSE);
    assert_eq!(
        decode(&mut d, &first, 1 << 16).expect("block decodes"),
        with_status("200", RESPONSE)
    );
    let second = head(&mut e, 200, RESPONSE);
    assert_eq!(
        decode(&mut d, &second, 1 << 16).expect("block decodes"),
        with_status("200", RESPONSE)
    );
    // :status 200, then content-type, accept-ranges, server indexed: one byte each
    assert_eq!(second[0], 0x88);
    assert_eq!(
        second[1],
        0x80 | 64,
        "content-type is the oldest of three entries"
    );
    assert!(
        second.len() + 15 < first.len(),
        "{} vs {}",
        second.len(),
        first.len()
    );
    // Volatile fields sent twice in a row (the same file again) are indexed from
    // the second time; the date is not (it changes every second).
    let names: Vec<&[u8]> = e.dynamic_table().map(|(n, _)| n).collect();
    assert!(!names.contains(&&b"date"[..]), "{names:?}");
    for n in [&b"etag"[..], b"last-modified", b"content-length"] {
        assert!(names.contains(&n), "{names:?}");
    }
    assert!(e.heap_bytes() > 0);
    // Third time: every field but the date is one byte.
    let third = head(&mut e, 200, RESPONSE);
    assert_eq!(
        decode(&mut d, &third, 1 << 16).expect("block decodes"),
        with_status("200", RESPONSE)
    );
    assert!(third.len() < 36, "{} bytes (the date is 24)", third.len());
    // A different value is literal again, and not indexed the first time.
    let mut other = Vec::new();
    e.begin(&mut other);
    e.field(b"etag", b"\"other\"", &mut other);
    assert_eq!(other[0] & 0xf0, 0x00, "literal without indexing");
}

#[test]
fn representations() {
    let mut e = Encoder::new();
    let mut out = Vec::new();
    e.field(b"content-length", b"1234", &mut out);
    // without indexing, name index 28, Huffman "1234" (5+5+5+6 bits = 3 bytes)
    assert_eq!(out, hex("0f0d 83 0899 6b"));
    out.clear();
    e.field(b"set-cookie", b"a=b", &mut out);
    assert_eq!(out[0], 0x1f, "never indexed, name index 55 (15 + 40)");
    assert_eq!(out[1], 40);
    out.clear();
    e.field(b"authorization", b"x", &mut out);
    assert_eq!(out[0] & 0xf0, 0x10);
    out.clear();
    e.field(b"accept-encoding", b"gzip, deflate", &mut out);
    assert_eq!(out, [0x80 | 16], "static pair");
    out.clear();
    e.field(b"x-custom", b"one", &mut out);
    assert_eq!(out[0], 0x40, "literal name, incremental indexing");
    out.clear();
    e.field(b"x-custom", b"two", &mut out);
    assert_eq!(out[0], 0x40 | 62, "name from the dynamic table");
    out.clear();
    e.field(b"x-custom", b"one", &mut out);
    assert_eq!(out, [0x80 | 63]);
    assert_eq!(e.dynamic_table_size(), 2 * (8 + 3 + 32));
    // a value longer than half the table stays out of it
    out.clear();
    let big = vec![b'v'; 3000];
    e.field(b"x-big", &big, &mut out);
    assert_eq!(out[0], 0x00);
    assert_eq!(e.dynamic_table_size(), 2 * (8 + 3 + 32));
}

#[test]
fn status_codes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for (code, static_index) in [
        (200, 8),
        (204, 9),
        (206, 10),
        (304, 11),
        (400, 12),
        (404, 13),
        (500, 14),
    ] {
        let mut out = Vec::new();
        e.status(code, &mut out);
        assert_eq!(out, [0x80 | static_index]);
    }
    for code in [100, 302, 301, 302, 418, 503, 0, 7, 65535] {
        let mut out = Vec::new();
        e.begin(&mut out);
        e.status(code, &mut out);
        let got = decode(&mut d, &out, 1000).expect("block decodes");
        assert_eq!(got, fields(&[(":status", code.to_string().as_str())]));
    }
    // the second 302 came from the dynamic table
    let mut out = Vec::new();
    e.status(302, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn size_updates() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let first = head(&mut e, 200, RESPONSE);
    decode(&mut d, &first, 1 << 16).expect("block decodes");
    assert!(e.dynamic_table_size() > 0);
    // shrink to 0 and back to 8192 (used as 4096): two updates, 0 then 4096
    e.set_peer_table_size(0);
    e.set_peer_table_size(8192);
    let mut out = Vec::new();
    e.begin(&mut out);
    assert_eq!(out, hex("20 3fe11f"));
    assert_eq!(e.dynamic_table_size(), 0);
    decode(&mut d, &out, 100).expect("block decodes");
    assert_eq!(d.dynamic_table_size(), 0);
    // the same size again still gets its update
    e.set_peer_table_size(4096);
    out.clear();
    e.begin(&mut out);
    assert_eq!(out, hex("3fe11f"));
    // nothing pending: nothing written
    out.clear();
    e.begin(&mut out);
    assert!(out.is_empty());
    // a small table: entries that do not fit in half of it stay literal
    e.set_peer_table_size(64);
    let mut d = Decoder::new(64);
    let block = head(&mut e, 200, RESPONSE);
    assert_eq!(block[0], 0x3f, "size update 64 first");
    assert_eq!(
        decode(&mut d, &block, 1 << 16).expect("block decodes"),
        with_status("200", RESPONSE)
    );
    assert!(e.dynamic_table_size() <= 64);
}
