//! FastCGI 1.0 records: the 8-byte header (version, type, request id, content
//! length, padding), BEGIN_REQUEST, PARAMS name-value pairs, STDIN framing out;
//! STDOUT, STDERR and END_REQUEST read back from a stream cut anywhere.

pub const BEGIN_REQUEST: u8 = 1;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;

pub const RESPONDER: u16 = 1;
/// The role of an access check (mode "authorizer"): no body, a 200 grants.
pub const AUTHORIZER: u16 = 2;
/// The request id wickd uses: one request per connection.
pub const REQUEST_ID: u16 = 1;
/// Largest content of one record.
const MAX_CONTENT: usize = 65535;

/// Append one record (padded to a multiple of 8 bytes, as the spec recommends).
fn record(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
    debug_assert!(content.len() <= MAX_CONTENT);
    let pad = (8 - content.len() % 8) % 8;
    let len = content.len() as u16;
    out.extend_from_slice(&[
        1,
        kind,
        (REQUEST_ID >> 8) as u8,
        REQUEST_ID as u8,
        (len >> 8) as u8,
        len as u8,
        pad as u8,
        0,
    ]);
    out.extend_from_slice(content);
    out.extend_from_slice(&[0; 8][..pad]);
}

/// A stream's bytes as records of `kind`, 32 KiB at most each (an empty `data`
/// gives the empty record that ends the stream).
pub fn stream(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    if data.is_empty() {
        record(out, kind, &[]);
        return;
    }
    for c in data.chunks(32 * 1024) {
        record(out, kind, c);
    }
}

/// BEGIN_REQUEST for `role` (RESPONDER, AUTHORIZER; keep_conn: the backend
/// leaves the connection open).
pub fn begin(out: &mut Vec<u8>, role: u16, keep_conn: bool) {
    let body = [
        (role >> 8) as u8,
        role as u8,
        u8::from(keep_conn),
        0,
        0,
        0,
        0,
        0,
    ];
    record(out, BEGIN_REQUEST, &body);
}

fn put_len(buf: &mut Vec<u8>, n: usize) {
    if n < 128 {
        buf.push(n as u8);
    } else {
        buf.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// The environment as PARAMS records, then the empty one that ends them. A pair
/// too large for one record (over 64 KiB) is dropped, as it cannot be sent.
pub fn params<'a>(out: &mut Vec<u8>, env: impl IntoIterator<Item = (&'a str, &'a str)>) {
    // Pairs are written straight after a header whose length is filled in when
    // the record is closed: no buffer of its own.
    let mut start = open(out);
    for (k, v) in env {
        let need = k.len() + v.len() + 8;
        if need > MAX_CONTENT {
            continue;
        }
        if out.len() - start + need > MAX_CONTENT {
            close(out, start);
            start = open(out);
        }
        put_len(out, k.len());
        put_len(out, v.len());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    if out.len() > start {
        close(out, start);
    } else {
        out.truncate(start - 8);
    }
    record(out, PARAMS, &[]);
}

/// A PARAMS record's header, its length left to [`close`]; where its content starts.
fn open(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[
        1,
        PARAMS,
        (REQUEST_ID >> 8) as u8,
        REQUEST_ID as u8,
        0,
        0,
        0,
        0,
    ]);
    out.len()
}

/// Fill in the length and padding of the record whose content starts at `start`.
fn close(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    let pad = (8 - len % 8) % 8;
    out[start - 4..start - 2].copy_from_slice(&(len as u16).to_be_bytes());
    out[start - 2] = pad as u8;
    out.extend_from_slice(&[0; 8][..pad]);
}

/// One record read back.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
    /// END_REQUEST: the application's exit status and the protocol status.
    End {
        app: u32,
        protocol: u8,
    },
    /// Another type or request id (FCGI_UNKNOWN_TYPE, management records): skipped.
    Other,
}

/// Records from a byte stream: bytes are added with `extend`, complete records
/// taken with `take`.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    pos: usize,
}

/// Not a FastCGI stream.
#[derive(Debug, PartialEq, Eq)]
pub struct BadVersion(pub u8);

impl Reader {
    pub fn extend(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that are not a complete record yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete record, if all of it is in.
    pub fn take(&mut self) -> Result<Option<Record<'_>>, BadVersion> {
        let h = &self.buf[self.pos..];
        if h.len() < 8 {
            return Ok(None);
        }
        if h[0] != 1 {
            return Err(BadVersion(h[0]));
        }
        let kind = h[1];
        let id = u16::from_be_bytes([h[2], h[3]]);
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let pad = usize::from(h[6]);
        if h.len() < 8 + len + pad {
            return Ok(None);
        }
        let start = self.pos + 8;
        self.pos += 8 + len + pad;
        let c = &self.buf[start..start + len];
        if id != REQUEST_ID {
            return Ok(Some(Record::Other));
        }
        Ok(Some(match kind {
            STDOUT => Record::Stdout(c),
            STDERR => Record::Stderr(c),
            END_REQUEST if c.len() >= 5 => Record::End {
                app: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                protocol: c[4],
            },
            _ => Record::Other,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_split_reads() {
        let mut out = Vec::new();
        record(&mut out, STDOUT, b"Status: 200\r\n\r\nhi");
        record(&mut out, STDERR, b"warn");
        record(&mut out, END_REQUEST, &[0, 0, 0, 7, 0, 0, 0, 0]);
        assert_eq!(out.len() % 8, 0);
        // Fed one byte at a time: the same records.
        let mut r = Reader::default();
        let mut got = Vec::new();
        for b in &out {
            r.extend(std::slice::from_ref(b));
            while let Some(rec) = r.take().expect("ok") {
                got.push(format!("{rec:?}"));
            }
        }
        assert_eq!(got.len(), 3);
        assert!(got[0].starts_with("Stdout"));
        assert_eq!(got[2], "End { app: 7, protocol: 0 }");
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn params_lengths() {
        let long = "x".repeat(300);
        let mut out = Vec::new();
        params(&mut out, [("A", "b"), ("LONG", long.as_str())]);
        // header, 1+1+1+1, then 1+4+4+300, padded; then the empty record
        assert_eq!(&out[8..12], &[1, 1, b'A', b'b']);
        assert_eq!(out[12], 4);
        assert_eq!(&out[13..17], &(300u32 | 0x8000_0000).to_be_bytes());
        assert_eq!(&out[out.len() - 8..out.len() - 4], &[1, PARAMS, 0, 1]);
        let mut bad = Reader::default();
        bad.extend(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(bad.take().expect_err("an error"), BadVersion(b'H'));
    }

    /// PARAMS records back to their pairs, checking each header's padding.
    fn decode_params(mut out: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut content = Vec::new();
        let mut ended = false;
        while !out.is_empty() {
            assert_eq!(&out[..4], &[1, PARAMS, 0, 1]);
            let len = u16::from_be_bytes([out[4], out[5]]) as usize;
            let pad = out[6] as usize;
            assert_eq!((len + pad) % 8, 0);
            assert!(!ended, "a record after the empty one");
            ended = len == 0;
            content.extend_from_slice(&out[8..8 + len]);
            out = &out[8 + len + pad..];
        }
        assert!(ended);
        let mut pairs = Vec::new();
        let mut c = &content[..];
        let take_len = |c: &mut &[u8]| -> usize {
            if c[0] < 128 {
                let n = c[0] as usize;
                *c = &c[1..];
                n
            } else {
                let n = u32::from_be_bytes([c[0] & 0x7f, c[1], c[2], c[3]]) as usize;
                *c = &c[4..];
                n
            }
        };
        while !c.is_empty() {
            let (k, v) = (take_len(&mut c), take_len(&mut c));
            pairs.push((c[..k].to_vec(), c[k..k + v].to_vec()));
            c = &c[k + v..];
        }
        pairs
    }

    #[test]
    fn params_split_over_records() {
        let big = "v".repeat(30_000);
        let env = [
            ("A", big.as_str()),
            ("B", "1"),
            ("C", big.as_str()),
            ("D", big.as_str()),
        ];
        let mut out = Vec::new();
        params(&mut out, env);
        let got = decode_params(&out);
        let want: Vec<_> = env
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(got, want);
        // Nothing to send: the empty record alone.
        let mut out = Vec::new();
        params(&mut out, []);
        assert_eq!(out, [1, PARAMS, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn large_stream_split() {
        // 32 KiB + 32 KiB + 4464 bytes: three headers, no padding (all multiples of 8).
        let mut out = Vec::new();
        stream(&mut out, STDIN, &vec![7u8; 70_000]);
        assert_eq!(out.len(), 3 * 8 + 70_000);
    }
}
