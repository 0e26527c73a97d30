//! RFC 7541 Appendix C: every example block decoded, with the dynamic table after it.

mod common;

use common::{decode, fields, hex, table};
use wick_hpack::Decoder;

/// One block: its dump, the header list, the table after it (newest first) and its size.
struct Step {
    dump: &'static str,
    list: &'static [(&'static str, &'static str)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

fn run(max_table: usize, steps: &[Step]) {
    let mut d = Decoder::new(max_table);
    for (n, step) in steps.iter().enumerate() {
        let got =
            decode(&mut d, &hex(step.dump), 1 << 20).unwrap_or_else(|e| panic!("block {n}: {e}"));
        assert_eq!(got, fields(step.list), "block {n}");
        assert_eq!(table(&d), fields(step.table), "table after block {n}");
        assert_eq!(
            d.dynamic_table_size(),
            step.size,
            "table size after block {n}"
        );
    }
}

#[test]
fn c2_field_representations() {
    run(
        4096,
        &[Step {
            dump: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            list: &[("custom-key", "custom-header")],
            table: &[("custom-key", "custom-header")],
            size: 55,
        }],
    );
    run(
        4096,
        &[Step {
            dump: "040c 2f73 616d 706c 652f 7061 7468",
            list: &[(":path", "/sample/path")],
            table: &[],
            size: 0,
        }],
    );
    run(
        4096,
        &[Step {
            dump: "1008 7061 7373 776f 7264 0673 6563 7265 74",
            list: &[("password", "secret")],
            table: &[],
            size: 0,
        }],
    );
    run(
        4096,
        &[Step {
            dump: "82",
            list: &[(":method", "GET")],
            table: &[],
            size: 0,
        }],
    );
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_T2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_T3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[test]
fn c3_requests_without_huffman() {
    run(
        4096,
        &[
            Step {
                dump: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                list: REQ1,
                table: REQ_T1,
                size: 57,
            },
            Step {
                dump: "8286 84be 5808 6e6f 2d63 6163 6865",
                list: REQ2,
                table: REQ_T2,
                size: 110,
            },
            Step {
                dump: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                list: REQ3,
                table: REQ_T3,
                size: 164,
            },
        ],
    );
}

#[test]
fn c4_requests_with_huffman() {
    run(
        4096,
        &[
            Step {
                dump: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                list: REQ1,
                table: REQ_T1,
                size: 57,
            },
            Step {
                dump: "8286 84be 5886 a8eb 1064 9cbf",
                list: REQ2,
                table: REQ_T2,
                size: 110,
            },
            Step {
                dump: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                list: REQ3,
                table: REQ_T3,
                size: 164,
            },
        ],
    );
}

const RESP1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESP2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const RESP_T1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESP_T2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RESP_T3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

#[test]
fn c5_responses_without_huffman() {
    run(
        256,
        &[
            Step {
                dump:
                    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                   2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                   6c65 2e63 6f6d",
                list: RESP1,
                table: RESP_T1,
                size: 222,
            },
            Step {
                dump: "4803 3330 37c1 c0bf",
                list: RESP2,
                table: RESP_T2,
                size: 222,
            },
            Step {
                dump:
                    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                   54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                   5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                   3d31",
                list: RESP3,
                table: RESP_T3,
                size: 215,
            },
        ],
    );
}

#[test]
fn c6_responses_with_huffman() {
    run(
        256,
        &[
            Step {
                dump:
                    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                   2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                list: RESP1,
                table: RESP_T1,
                size: 222,
            },
            Step {
                dump: "4883 640e ffc1 c0bf",
                list: RESP2,
                table: RESP_T2,
                size: 222,
            },
            Step {
                dump:
                    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                   77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                   9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                list: RESP3,
                table: RESP_T3,
                size: 215,
            },
        ],
    );
}

/// The same blocks split at every point still fail cleanly: a header block is only
/// ever decoded whole, so a cut one must be an error, never a panic or a short list.
#[test]
fn c6_truncated_blocks_are_errors() {
    let block = hex(
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    );
    // cuts inside a representation
    for cut in [1, 2, 3, 5, 8, 9, 20, 34, 36, 40] {
        let mut d = Decoder::new(256);
        assert!(
            decode(&mut d, &block[..cut], 1 << 20).is_err(),
            "cut at {cut}"
        );
    }
}
