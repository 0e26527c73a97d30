//! Incremental decoder of the chunked transfer coding (RFC 9112 7.1): strict chunk
//! sizes and extensions; trailer lines parsed and kept as received (trailer.rs says
//! what a request's may be). Works on any split of the input.

use crate::request::is_tchar;

/// Longest chunk-size line (size and extensions, up to and including its CR): lighttpd
/// answers 400 to a line of 1024 bytes or more with its CRLF (h1.c), so 1022 before the LF.
const MAX_LINE: u32 = 1022;
/// Longest trailer section accepted.
const MAX_TRAILERS: u32 = 8192;
/// Largest chunk size before its next hex digit: lighttpd's bound (off_t, with room for
/// the CRLF), so any number of leading zeros is fine and only overflow is refused.
const MAX_SIZE_BEFORE_DIGIT: u64 = (i64::MAX as u64 >> 4) - 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `any`: at least one seen.
    Size {
        any: bool,
    },
    /// After `;`: whitespace before an extension name.
    ExtPreName,
    ExtName,
    /// After an extension name: optional whitespace, then `=` or `;` or CR.
    ExtPostName,
    ExtPreValue,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// After the extension value: whitespace, `;` or CR.
    ExtPostValue,
    /// Whitespace after the size, before `;` (BWS).
    SizeBws,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkError;

#[derive(Clone, Debug)]
pub struct Decoder {
    state: State,
    /// Bytes left in the current chunk (Data) or the size being read (Size).
    remaining: u64,
    line: u32,
    /// The trailer section so far: its lines with their CRLF, without the final one.
    trailers: Vec<u8>,
    /// Decoded body bytes so far.
    pub total: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn is_qdtext(c: u8) -> bool {
    c == b'\t'
        || c == b' '
        || c == 0x21
        || (0x23..=0x5b).contains(&c)
        || (0x5d..=0x7e).contains(&c)
        || c >= 0x80
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            state: State::Size { any: false },
            remaining: 0,
            line: 0,
            trailers: Vec::new(),
            total: 0,
        }
    }

    /// Body bytes decoded so far plus those the current chunk announced: lets a
    /// size limit refuse a chunk before its data arrives.
    pub fn announced(&self) -> u64 {
        match self.state {
            State::Data | State::SizeLf => self.total.saturating_add(self.remaining),
            _ => self.total,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer fields received ("Name: value\r\n" each), once done.
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    /// Decode from `input`, passing body bytes to `out`. Returns how many input bytes
    /// were consumed: all of them, or fewer when the body ended (the rest belongs to
    /// the next request).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            match self.state {
                State::Data => {
                    let n = (input.len() - i)
                        .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                    out(&input[i..i + n]);
                    self.remaining -= n as u64;
                    self.total += n as u64;
                    i += n;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Done => return Ok(i),
                _ => {}
            }
            self.step(c)?;
            i += 1;
            if self.state == State::Done {
                return Ok(i);
            }
        }
        Ok(i)
    }

    fn line_byte(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_LINE {
            return Err(ChunkError);
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        self.line = 0;
        self.state = State::SizeLf;
    }

    fn step(&mut self, c: u8) -> Result<(), ChunkError> {
        use State::*;
        match self.state {
            Size { any } => {
                self.line_byte()?;
                if let Some(d) = (c as char).to_digit(16) {
                    if self.remaining > MAX_SIZE_BEFORE_DIGIT {
                        return Err(ChunkError);
                    }
                    self.remaining = (self.remaining << 4) | u64::from(d);
                    self.state = Size { any: true };
                } else if !any {
                    return Err(ChunkError);
                } else {
                    match c {
                        b';' => self.state = ExtPreName,
                        b' ' | b'\t' => self.state = SizeBws,
                        b'\r' => self.end_size_line(),
                        _ => return Err(ChunkError),
                    }
                }
            }
            SizeBws => {
                self.line_byte()?;
                match c {
                    b' ' | b'\t' => {}
                    b';' => self.state = ExtPreName,
                    _ => return Err(ChunkError),
                }
            }
            ExtPreName => {
                self.line_byte()?;
                match c {
                    b' ' | b'\t' => {}
                    c if is_tchar(c) => self.state = ExtName,
                    _ => return Err(ChunkError),
                }
            }
            ExtName => {
                self.line_byte()?;
                match c {
                    c if is_tchar(c) => {}
                    b' ' | b'\t' => self.state = ExtPostName,
                    b'=' => self.state = ExtPreValue,
                    b';' => self.state = ExtPreName,
                    b'\r' => self.end_size_line(),
                    _ => return Err(ChunkError),
                }
            }
            ExtPostName => {
                self.line_byte()?;
                match c {
                    b' ' | b'\t' => {}
                    b'=' => self.state = ExtPreValue,
                    b';' => self.state = ExtPreName,
                    b'\r' => self.end_size_line(),
                    _ => return Err(ChunkError),
                }
            }
            ExtPreValue => {
                self.line_byte()?;
                match c {
                    b' ' | b'\t' => {}
                    b'"' => self.state = ExtQuoted,
                    c if is_tchar(c) => self.state = ExtToken,
                    _ => return Err(ChunkError),
                }
            }
            ExtToken => {
                self.line_byte()?;
                match c {
                    c if is_tchar(c) => {}
                    b' ' | b'\t' => self.state = ExtPostValue,
                    b';' => self.state = ExtPreName,
                    b'\r' => self.end_size_line(),
                    _ => return Err(ChunkError),
                }
            }
            ExtQuoted => {
                self.line_byte()?;
                match c {
                    b'"' => self.state = ExtPostValue,
                    b'\\' => self.state = ExtQuotedEscape,
                    c if is_qdtext(c) => {}
                    _ => return Err(ChunkError),
                }
            }
            ExtQuotedEscape => {
                self.line_byte()?;
                if c == b'\t' || (0x20..=0x7e).contains(&c) || c >= 0x80 {
                    self.state = ExtQuoted;
                } else {
                    return Err(ChunkError);
                }
            }
            ExtPostValue => {
                self.line_byte()?;
                match c {
                    b' ' | b'\t' => {}
                    b';' => self.state = ExtPreName,
                    b'\r' => self.end_size_line(),
                    _ => return Err(ChunkError),
                }
            }
            SizeLf => {
                if c != b'\n' {
                    return Err(ChunkError);
                }
                self.state = if self.remaining == 0 {
                    TrailerStart
                } else {
                    Data
                };
            }
            DataCr => {
                if c != b'\r' {
                    return Err(ChunkError);
                }
                self.state = DataLf;
            }
            DataLf => {
                if c != b'\n' {
                    return Err(ChunkError);
                }
                self.remaining = 0;
                self.state = Size { any: false };
            }
            TrailerStart => match c {
                b'\r' => self.state = FinalLf,
                c if is_tchar(c) => {
                    self.trailer_byte(c)?;
                    self.state = TrailerName;
                }
                _ => return Err(ChunkError),
            },
            TrailerName => {
                self.trailer_byte(c)?;
                match c {
                    c if is_tchar(c) => {}
                    b':' => self.state = TrailerValue,
                    _ => return Err(ChunkError),
                }
            }
            TrailerValue => {
                self.trailer_byte(c)?;
                match c {
                    b'\r' => self.state = TrailerLf,
                    b'\t' | b' '..=b'~' => {}
                    c if c >= 0x80 => {}
                    _ => return Err(ChunkError),
                }
            }
            TrailerLf => {
                self.trailer_byte(c)?;
                if c != b'\n' {
                    return Err(ChunkError);
                }
                self.state = TrailerStart;
            }
            FinalLf => {
                if c != b'\n' {
                    return Err(ChunkError);
                }
                self.state = Done;
            }
            Data | Done => {}
        }
        Ok(())
    }

    fn trailer_byte(&mut self, c: u8) -> Result<(), ChunkError> {
        if self.trailers.len() >= MAX_TRAILERS as usize {
            return Err(ChunkError);
        }
        self.trailers.push(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], split: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = Decoder::new();
        let mut body = Vec::new();
        let mut used = 0;
        for part in input.chunks(split.max(1)) {
            let n = d.decode(part, |b| body.extend_from_slice(b))?;
            used += n;
            if d.is_done() {
                return Ok((body, used));
            }
        }
        Ok((body, usize::MAX))
    }

    #[test]
    fn decodes_on_any_split() {
        let input = b"5\r\nhello\r\n6;a=b;c=\"x\\\"y\"\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 1..input.len() {
            let (body, used) = run(input, split).expect("valid");
            assert_eq!(body, b"hello world");
            assert_eq!(used, input.len() - 4, "split {split}");
        }
    }

    #[test]
    fn rejects() {
        let bad: &[&[u8]] = &[
            b"zz\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5;\x01\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b"7fffffffffffffff\r\n",
            b"000000000000000000008000000000000000\r\n",
            b"\r\n",
            b"5\r\nhello\r\n0\r\nX T: 1\r\n\r\n",
        ];
        for b in bad {
            assert!(run(b, 1000).is_err(), "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn leading_zeros_and_size_limit() {
        let ok: &[&[u8]] = &[
            b"0000000000000005\r\nhello\r\n0\r\n\r\n",
            b"00000000000000000000000000000000005\r\nhello\r\n0000000000000000000\r\n\r\n",
        ];
        for b in ok {
            let (body, _) = run(b, 3).expect("valid");
            assert_eq!(body, b"hello");
        }
        // lighttpd's largest accepted size, 2^63 - 33: announced, not refused.
        let mut d = Decoder::new();
        assert!(d.decode(b"0007fffffffffffffdf\r\nab", |_| {}).is_ok());
        assert_eq!(d.announced(), 0x7fff_ffff_ffff_ffdf);
        assert!(Decoder::new()
            .decode(b"7fffffffffffffe0\r\n", |_| {})
            .is_err());
    }

    #[test]
    fn line_limit_is_lighttpds() {
        // 1023 bytes with CRLF pass, 1024 do not (extension or leading zeros alike).
        let line = |fill: usize, ext: bool| {
            let mut v = if ext { b"5;a=".to_vec() } else { Vec::new() };
            v.extend(std::iter::repeat_n(if ext { b'x' } else { b'0' }, fill));
            if !ext {
                v.push(b'5');
            }
            v.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            v
        };
        let body = |v: Vec<u8>| run(&v, 7).map(|(b, _)| b);
        assert_eq!(body(line(1017, true)), Ok(b"hello".to_vec()));
        assert_eq!(body(line(1018, true)), Err(ChunkError));
        assert_eq!(body(line(1020, false)), Ok(b"hello".to_vec()));
        assert_eq!(body(line(1021, false)), Err(ChunkError));
    }
}
