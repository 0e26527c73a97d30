//! Helpers shared by the hpack tests.
#![allow(dead_code)]

use wick_hpack::{DecodeError, Decoder};

pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Bytes from an RFC hex dump ("8286 8441 0f77 ...").
pub fn hex(dump: &str) -> Vec<u8> {
    let digits: Vec<u8> = dump.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect()
}

pub fn decode(d: &mut Decoder, block: &[u8], max_list: usize) -> Result<Fields, DecodeError> {
    let mut fields = Vec::new();
    d.decode(block, max_list, &mut |n, v| {
        fields.push((n.to_vec(), v.to_vec()))
    })?;
    Ok(fields)
}

pub fn fields(list: &[(&str, &str)]) -> Fields {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

pub fn table(d: &Decoder) -> Fields {
    d.dynamic_table()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}
