//! The request head parser and the path normaliser on arbitrary bytes: no panic,
//! and whatever is accepted is consistent (spans inside the head, a normalised path
//! that starts with '/' and holds no dot segment).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wick_worker::{path, request};

fuzz_target!(|data: &[u8]| {
    let data = &data[request::leading_crlf(data)..];
    // Feed the head in two parts, as a socket might deliver it.
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut scanned = 0;
    let first = request::find_end(&data[..cut], 0, 8192, &mut scanned);
    let whole = request::find_end(data, 0, 8192, &mut 0);
    let end = match (first, whole) {
        (Ok(Some(n)), _) => n,
        (Ok(None), Ok(Some(n))) => {
            // Resuming from `scanned` must find the same end.
            assert_eq!(request::find_end(data, scanned, 8192, &mut 0), Ok(Some(n)));
            n
        }
        _ => return,
    };
    let head = &data[..end];
    let mut fields = Vec::new();
    let Ok(h) = request::parse(head, &mut fields) else { return };
    assert!(h.len == head.len());
    for f in &fields {
        assert!(f.name.end as usize <= head.len() && f.value.end as usize <= head.len());
    }
    let target = h.path.of(head);
    let (raw, _query) = path::split_target(target);
    if raw == b"*" {
        return;
    }
    let mut out = Vec::new();
    if path::decode_normalize(raw, &mut out).is_ok() {
        assert_eq!(out.first(), Some(&b'/'));
        assert!(!out.windows(2).any(|w| w == b"//"));
        for seg in out.split(|&c| c == b'/') {
            assert!(seg != b"." && seg != b"..", "{:?}", String::from_utf8_lossy(&out));
        }
        assert!(!out.contains(&0));
    }
});
