//! An HTTP/2 stream seen from the HTTP/1.1 side: the byte stream of the
//! exchange that serves the stream's request (transport.rs reads and writes it
//! instead of a socket). The request comes in as an HTTP/1.1 head made from the
//! HEADERS frame, then its body; the response goes out as HTTP/1.1 bytes and file
//! ranges, which the connection turns into HEADERS and DATA frames.

use crate::response::Out;
use std::io;

/// Response bytes held for a stream before the exchange is made to wait (file
/// ranges cost nothing here: they are read or sent when framed).
const OUTPUT_HIGH: usize = 64 << 10;

#[derive(Default)]
pub struct Pipe {
    /// Request bytes not yet read by the exchange, from `read` on.
    pub input: Vec<u8>,
    pub read: usize,
    /// The client ended its stream: past `input`, a read returns 0.
    pub input_end: bool,
    /// What the exchange wrote, not yet framed.
    pub output: Out,
}

impl Pipe {
    /// The exchange reads its request.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.input[self.read.min(self.input.len())..];
        if rest.is_empty() {
            if self.input_end {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        if self.read == self.input.len() {
            self.input.clear();
            self.read = 0;
        }
        Ok(n)
    }

    /// Request bytes the exchange has not read yet.
    pub fn unread(&self) -> usize {
        self.input.len() - self.read.min(self.input.len())
    }

    /// The exchange writes what `out` holds: taken whole, or (while too much
    /// waits for the client's window) not at all.
    pub fn take(&mut self, out: &mut Out) -> bool {
        let waiting = self.output.buf.len() - self.output.pos.min(self.output.buf.len());
        if waiting > OUTPUT_HIGH {
            return false;
        }
        if self.output.is_empty() {
            // The usual case (a response taken whole): the buffers change
            // places, no copy; `out` gets this one's, emptied.
            self.output.clear();
            std::mem::swap(&mut self.output.buf, &mut out.buf);
            std::mem::swap(&mut self.output.files, &mut out.files);
            std::mem::swap(&mut self.output.pos, &mut out.pos);
            std::mem::swap(&mut self.output.file_idx, &mut out.file_idx);
            return true;
        }
        self.output.append(out);
        out.pos = out.buf.len();
        out.file_idx = out.files.len();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_then_blocks_then_ends() {
        let mut p = Pipe::default();
        p.input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let mut buf = [0u8; 8];
        assert_eq!(p.read(&mut buf).ok(), Some(8));
        assert_eq!(p.unread(), 10);
        let mut big = [0u8; 64];
        assert_eq!(p.read(&mut big).ok(), Some(10));
        assert_eq!(
            p.read(&mut big).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        p.input_end = true;
        assert_eq!(p.read(&mut big).ok(), Some(0));
    }

    #[test]
    fn output_waits_past_its_mark() {
        let mut p = Pipe::default();
        let mut out = Out::default();
        out.put(&vec![b'x'; OUTPUT_HIGH + 1]);
        assert!(p.take(&mut out));
        assert!(out.is_empty());
        out.clear();
        out.put(b"more");
        assert!(!p.take(&mut out), "held back while the window is shut");
        assert!(!out.is_empty());
    }
}
