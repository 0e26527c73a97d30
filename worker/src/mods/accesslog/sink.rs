//! Where lines go: the accesslog.filename targets (in the order the master opens
//! them) and a buffer per target, written in batches (whole lines, at most
//! PIPE_BUF bytes a write to a pipe).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use wick_conf::Config;

/// A pipe write of at most this many bytes is atomic: lines of several workers
/// sharing one piped logger never interleave.
pub const PIPE_BUF: usize = 4096;
/// A file target is written once this much is gathered (or once a second).
const FILE_BATCH: usize = 64 * 1024;
/// A logger that does not read (dead, restarting, stuck) holds at most this much
/// per worker; later lines are dropped and counted, the event loop never blocks.
const MAX_BACKLOG: usize = 4 << 20;

/// Every accesslog.filename of the config, in the order the master opens them and
/// hands their fds over (first appearance, duplicates once; empty values skipped;
/// none when mod_accesslog is not loaded).
pub fn targets(cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Without the module its keys are ignored (lighttpd warns): nothing to open.
    if !cfg.server.modules.iter().any(|m| m == "mod_accesslog") {
        return out;
    }
    for p in &cfg.patches {
        if let Some(f) = p.accesslog_filename() {
            if !f.is_empty() && !out.contains(f) {
                out.push(f.clone());
            }
        }
    }
    out
}

/// One file or pipe the worker writes lines to.
#[derive(Debug)]
pub struct Sink {
    fd: OwnedFd,
    pipe: bool,
    buf: Vec<u8>,
    /// Lines dropped because the reader did not keep up.
    pub dropped: u64,
}

impl Sink {
    /// A pipe is made non-blocking: a logger that stops reading must not stop the
    /// event loop (its lines wait in the buffer, up to a limit).
    pub fn new(fd: OwnedFd) -> Sink {
        let raw = fd.as_raw_fd();
        let pipe = crate::stat_cache::fstat(raw)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
        if pipe {
            crate::sys::set_nonblocking(raw);
        }
        Sink {
            fd,
            pipe,
            buf: Vec::new(),
            dropped: 0,
        }
    }

    pub fn is_pipe(&self) -> bool {
        self.pipe
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Queue one line (with its newline). Writes when a batch is full.
    pub fn line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.buf.len() + line.len() > MAX_BACKLOG {
            self.dropped += 1;
            return Ok(());
        }
        if self.pipe && !self.buf.is_empty() && self.buf.len() + line.len() > PIPE_BUF {
            self.flush()?;
        }
        self.buf.extend_from_slice(line);
        let batch = if self.pipe { PIPE_BUF } else { FILE_BATCH };
        if self.buf.len() >= batch {
            self.flush()?;
        }
        Ok(())
    }

    /// Write what is gathered. A pipe gets whole lines, at most [`PIPE_BUF`] bytes
    /// per write; what it does not take now stays for the next flush.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut done = 0;
        let mut result = Ok(());
        while done < self.buf.len() {
            let rest = &self.buf[done..];
            let chunk = if self.pipe && rest.len() > PIPE_BUF {
                match memchr::memrchr(b'\n', &rest[..PIPE_BUF]) {
                    Some(i) => i + 1,
                    // One line longer than PIPE_BUF: it goes alone.
                    None => memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                }
            } else {
                rest.len()
            };
            match crate::sys::write(self.fd.as_raw_fd(), &rest[..chunk]) {
                Ok(n) if n > 0 => done += n,
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The target is gone (disk full, pipe closed): these lines are lost.
                    done = self.buf.len();
                    result = Err(e);
                }
            }
        }
        self.buf.drain(..done);
        if self.buf.capacity() > 4 * FILE_BATCH && self.buf.len() < FILE_BATCH {
            self.buf.shrink_to(FILE_BATCH);
        }
        result
    }

    /// A reopened file (SIGHUP): what is gathered goes to the old one first.
    pub fn replace(&mut self, fd: OwnedFd) -> io::Result<()> {
        let r = self.flush();
        let mut next = Sink::new(fd);
        next.buf = std::mem::take(&mut self.buf);
        next.dropped = self.dropped;
        *self = next;
        r
    }
}
