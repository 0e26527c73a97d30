//! The chunked decoder on arbitrary bytes, split at arbitrary points: no panic, and
//! the same outcome (body, bytes consumed, error or not) whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wick_worker::chunked::Decoder;

fn run(input: &[u8], split: usize) -> Result<(Vec<u8>, usize, bool), ()> {
    let mut d = Decoder::new();
    let mut body = Vec::new();
    let mut used = 0;
    for part in input.chunks(split.max(1)) {
        let n = d.decode(part, |b| body.extend_from_slice(b)).map_err(|_| ())?;
        assert!(n <= part.len());
        used += n;
        assert_eq!(d.total as usize, body.len());
        if d.is_done() {
            return Ok((body, used, true));
        }
        assert_eq!(n, part.len(), "stopped early without finishing");
    }
    Ok((body, used, false))
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let whole = run(input, input.len());
    let parts = run(input, split as usize);
    assert_eq!(whole, parts);
});
