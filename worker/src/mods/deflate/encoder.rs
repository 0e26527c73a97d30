//! One compressed stream: gzip and deflate through flate2 (zlib-rs), brotli,
//! zstd, behind one interface. Compressed bytes gather in the encoder's own Vec
//! and are taken out as they come ([`Encoder::take`]), so a stream's memory is its
//! coder's state plus what has not been sent.

use super::accept::Coding;
use std::io::{self, Write};

/// brotli quality when deflate.compression-level is unset: lighttpd's choice
/// (brotli's own default, 11, is very slow).
const BR_DEFAULT_QUALITY: i64 = 5;
/// brotli's default window (log2), lighttpd's BROTLI_DEFAULT_WINDOW.
const BR_DEFAULT_WINDOW: u32 = 22;

pub enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::Gzip(_) => "Encoder(gzip)",
            Encoder::Zlib(_) => "Encoder(deflate)",
            Encoder::Br(_) => "Encoder(br)",
            Encoder::Zstd(_) => "Encoder(zstd)",
        })
    }
}

/// brotli's mode for a Content-Type, as lighttpd picks it: text for text/*,
/// javascript, json, xml and their +json/+xml kinds, font for font/*.
fn br_mode(ctype: &[u8]) -> brotli::enc::backward_references::BrotliEncoderMode {
    use brotli::enc::backward_references::BrotliEncoderMode as M;
    let t = ctype;
    let app = t.strip_prefix(b"application/").unwrap_or(b"");
    let base = match memchr::memchr(b';', t) {
        Some(i) => crate::request::trim(&t[..i]),
        None => t,
    };
    if t.starts_with(b"text/")
        || app.starts_with(b"javascript")
        || app.starts_with(b"json")
        || app.starts_with(b"xml")
        || base.ends_with(b"+json")
        || base.ends_with(b"+xml")
    {
        M::BROTLI_MODE_TEXT
    } else if t.starts_with(b"font/") {
        M::BROTLI_MODE_FONT
    } else {
        M::BROTLI_MODE_GENERIC
    }
}

impl Encoder {
    /// A stream for `coding`. `level`: deflate.compression-level (-1: each coder's
    /// default; 1-9 for gzip and deflate, 0-11 for brotli; zstd keeps its default
    /// level 3, since lighttpd 1.4.69 passes the level to zstd as a strategy).
    /// `size`: the body's length when known (smaller brotli window, zstd frame
    /// size). `ctype`: the response's Content-Type (brotli's mode).
    pub fn new(coding: Coding, level: i64, size: Option<u64>, ctype: &[u8]) -> io::Result<Encoder> {
        let zlevel = if (1..=9).contains(&level) {
            level as u32
        } else {
            6
        };
        Ok(match coding {
            Coding::Gzip | Coding::XGzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(zlevel),
            )),
            Coding::Deflate => Encoder::Zlib(flate2::write::ZlibEncoder::new(
                Vec::new(),
                flate2::Compression::new(zlevel),
            )),
            Coding::Br => {
                // A window no larger than the body (same output for the decoder,
                // less memory for small bodies).
                let fits = size.map_or(BR_DEFAULT_WINDOW, |n| {
                    (64 - n.max(1).leading_zeros()).clamp(10, BR_DEFAULT_WINDOW)
                });
                let p = brotli::enc::BrotliEncoderParams {
                    quality: if (0..=11).contains(&level) {
                        level as i32
                    } else {
                        BR_DEFAULT_QUALITY as i32
                    },
                    lgwin: fits as i32,
                    mode: br_mode(ctype),
                    size_hint: size.and_then(|n| usize::try_from(n).ok()).unwrap_or(0),
                    ..Default::default()
                };
                Encoder::Br(Box::new(brotli::CompressorWriter::with_params(
                    Vec::new(),
                    16 << 10,
                    &p,
                )))
            }
            Coding::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), 0)?;
                if let Some(n) = size {
                    e.set_pledged_src_size(Some(n))?;
                }
                Encoder::Zstd(e)
            }
        })
    }

    /// Compress `data` (output may stay inside the coder until it has enough).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Zlib(e) => e.write_all(data),
            Encoder::Br(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        }
    }

    /// Everything written so far becomes decodable output (a sync flush): for a
    /// stream whose source paused.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zlib(e) => e.flush(),
            Encoder::Br(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }

    /// The compressed bytes so far, appended to `out`.
    pub fn take(&mut self, out: &mut Vec<u8>) {
        let v = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Zlib(e) => e.get_mut(),
            Encoder::Br(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        if out.is_empty() {
            std::mem::swap(out, v);
        } else {
            out.append(v);
        }
    }

    /// End the stream; the rest of the output appended to `out`.
    pub fn finish(self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut rest = match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Zlib(e) => e.finish()?,
            // (into_inner ends the stream: BROTLI_OPERATION_FINISH)
            Encoder::Br(e) => e.into_inner(),
            Encoder::Zstd(e) => e.finish()?,
        };
        if out.is_empty() {
            *out = rest;
        } else {
            out.append(&mut rest);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn text() -> Vec<u8> {
        (0..5000)
            .flat_map(|i| format!("line {i} of some text, text, text\n").into_bytes())
            .collect()
    }

    fn roundtrip(c: Coding, level: i64, split: usize) -> Vec<u8> {
        let src = text();
        let mut e = Encoder::new(c, level, Some(src.len() as u64), b"text/plain").expect("enc");
        let mut out = Vec::new();
        for (i, part) in src.chunks(split).enumerate() {
            e.write(part).expect("write");
            if i % 3 == 0 {
                e.flush().expect("flush");
            }
            e.take(&mut out);
        }
        e.finish(&mut out).expect("finish");
        assert!(
            out.len() < src.len() / 4,
            "{c:?} compressed to {}",
            out.len()
        );
        let mut back = Vec::new();
        match c {
            Coding::Gzip | Coding::XGzip => {
                flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut back)
            }
            Coding::Deflate => flate2::read::ZlibDecoder::new(&out[..]).read_to_end(&mut back),
            Coding::Br => brotli::Decompressor::new(&out[..], 4096).read_to_end(&mut back),
            Coding::Zstd => zstd::stream::read::Decoder::new(&out[..])
                .and_then(|mut d| d.read_to_end(&mut back)),
        }
        .expect("decode");
        assert_eq!(back, src, "{c:?}");
        out
    }

    #[test]
    fn every_coding_round_trips_with_flushes() {
        for c in [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd] {
            roundtrip(c, -1, 7000);
            roundtrip(c, 1, 65536);
        }
        roundtrip(Coding::Br, 11, 100_000);
    }
}
