//! Timing of the two hot paths, not a test: run with
//!   cargo test --release -p wick-hpack --test bench -- --ignored --nocapture
//! Each figure is ns per header block: the best and the median of 200 runs of 5,000
//! iterations (on a shared machine the best is the closest to an idle one).

use std::hint::black_box;
use std::time::Instant;
use wick_hpack::{huffman, Decoder, Encoder};

const ROUNDS: u32 = 5_000;
const RUNS: usize = 200;

struct Ns {
    best: f64,
    median: f64,
}

impl std::fmt::Display for Ns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} ns (median {:.0} ns)", self.best, self.median)
    }
}

fn best_ns(mut f: impl FnMut()) -> Ns {
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ROUNDS {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    Ns {
        best: runs[0],
        median: runs[RUNS / 2],
    }
}

const RESPONSE: &[(&[u8], &[u8])] = &[
    (b"content-type", b"text/html"),
    (b"content-length", b"12345"),
    (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
    (b"etag", b"\"65f1a2b3-3039\""),
    (b"last-modified", b"Sun, 20 Oct 2013 10:00:00 GMT"),
    (b"accept-ranges", b"bytes"),
    (b"server", b"wickd"),
];

/// A literal with incremental indexing, static name, Huffman value: how curl
/// (nghttp2) sends :authority, user-agent and accept on a new connection.
fn literal_indexed(block: &mut Vec<u8>, name_index: u8, value: &[u8]) {
    let mut coded = Vec::new();
    huffman::encode(value, &mut coded);
    block.push(0x40 | name_index);
    block.push(0x80 | coded.len() as u8);
    block.extend_from_slice(&coded);
}

#[test]
#[ignore]
fn timings() {
    let mut e = Encoder::new();
    let mut out = Vec::with_capacity(256);
    let encode = best_ns(|| {
        out.clear();
        e.begin(&mut out);
        e.status(200, &mut out);
        for (n, v) in RESPONSE {
            e.field(black_box(n), black_box(v), &mut out);
        }
        black_box(&out);
    });
    println!("encode response head (warm, {} bytes): {encode}", out.len());

    let mut e = Encoder::new();
    let mut first = Vec::with_capacity(256);
    let encode_fresh = best_ns(|| {
        e = Encoder::new();
        first.clear();
        e.begin(&mut first);
        e.status(200, &mut first);
        for (n, v) in RESPONSE {
            e.field(black_box(n), black_box(v), &mut first);
        }
        black_box(&first);
    });
    println!(
        "encode response head (new encoder, {} bytes): {encode_fresh}",
        first.len()
    );

    // curl/h2load request: :method GET, :scheme https, :path /, then literals
    let mut request = vec![0x82, 0x87, 0x84];
    literal_indexed(&mut request, 1, b"localhost:8443");
    literal_indexed(&mut request, 58, b"curl/8.5.0");
    literal_indexed(&mut request, 19, b"*/*");
    let mut count = 0usize;
    let mut sink = |n: &[u8], v: &[u8]| count += n.len() + v.len();
    let decode_fresh = best_ns(|| {
        let mut d = Decoder::new(4096);
        d.decode(black_box(&request), 65536, &mut sink)
            .expect("block decodes");
        black_box(&d);
    });
    println!(
        "decode request head (new decoder, 3 inserts, {} bytes): {decode_fresh}",
        request.len()
    );

    let mut d = Decoder::new(4096);
    let decode_literal = best_ns(|| {
        d.decode(black_box(&request), 65536, &mut sink)
            .expect("block decodes");
    });
    println!("decode request head (warm decoder, same 3 inserts): {decode_literal}");

    // the same request once the table holds the three: every field one byte
    let repeat = [0x82, 0x87, 0x84, 0xc0, 0xbf, 0xbe];
    let mut d = Decoder::new(4096);
    d.decode(&request, 65536, &mut sink).expect("block decodes");
    let decode_indexed = best_ns(|| {
        d.decode(black_box(&repeat), 65536, &mut sink)
            .expect("block decodes");
    });
    println!("decode request head (warm decoder, all indexed): {decode_indexed}");
    println!(
        "heap: decoder {} bytes, encoder {} bytes",
        d.heap_bytes(),
        e.heap_bytes()
    );
    black_box(count);
}
