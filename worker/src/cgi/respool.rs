//! A response spooled to disk (server.stream-response-body 0 and 1, as
//! lighttpd's): once `OUT_HIGH` bytes wait for the client, what the script or
//! backend says next goes to a temporary file in server.upload-dirs and rides in
//! `Out` as file chunks (sent with sendfile), so the script or backend is read
//! to its end and freed whatever the client's pace. With 2 (or when no file can
//! be made) the script or backend is not read while `OUT_HIGH` bytes wait.

use super::{Job, OUT_HIGH};
use crate::ctx::Ctx;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

/// A response's temporary file: `len` bytes written.
#[derive(Debug)]
pub(crate) struct RespSpool {
    fd: Rc<OwnedFd>,
    len: u64,
}

impl Job {
    /// No more response bytes are taken from the script or backend now: the
    /// client has `OUT_HIGH` waiting and the response is not spooled (a spool
    /// is made here when it may be).
    pub(crate) fn out_full(&mut self, ctx: &mut Ctx) -> bool {
        if self.out.remaining() < OUT_HIGH as u64 {
            return false;
        }
        if !self.resp_spill {
            return true;
        }
        if self.rspool.is_none() {
            match ctx.uploads.create_fd() {
                Ok(fd) => {
                    self.rspool = Some(RespSpool {
                        fd: Rc::new(fd),
                        len: 0,
                    })
                }
                Err(why) => {
                    ctx.log.push(format!(
                        "{}: {}: no temporary file for the response, the {} is read as the client takes it: {why}",
                        self.module,
                        self.script,
                        if self.spawned { "script" } else { "backend" }
                    ));
                    self.resp_spill = false;
                    return true;
                }
            }
        }
        false
    }

    /// Response bytes for the client: to the spool once `OUT_HIGH` wait in
    /// memory and a spool exists, else into `out`. A failed write (disk full)
    /// keeps the bytes in memory and stops spooling.
    pub(crate) fn emit(&mut self, d: &[u8]) {
        if let Some(sp) = self.rspool.as_mut() {
            if self.out.remaining() >= OUT_HIGH as u64 && write_all(&sp.fd, d) {
                self.out.file_extend(&sp.fd, sp.len, d.len() as u64);
                sp.len += d.len() as u64;
                return;
            }
            if self.out.remaining() >= OUT_HIGH as u64 {
                self.rspool = None;
                self.resp_spill = false;
            }
        }
        self.out.put(d);
    }

    /// Everything queued went out: the spool's file can go (a new one is made
    /// when the client falls behind again).
    pub(crate) fn out_drained(&mut self) {
        self.rspool = None;
    }
}

/// Write all of `d` at the file's end (its offset: it is written only so).
fn write_all(fd: &OwnedFd, mut d: &[u8]) -> bool {
    while !d.is_empty() {
        match crate::sys::write(fd.as_raw_fd(), d) {
            Ok(0) | Err(_) => return false,
            Ok(n) => d = &d[n..],
        }
    }
    true
}
