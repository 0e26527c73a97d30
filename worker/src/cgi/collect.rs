//! A request body received whole before the script or backend gets it
//! (server.stream-request-body 0, and every chunked body, whose length becomes
//! CONTENT_LENGTH): kept in memory up to `spool::SPILL`, beyond that in a
//! temporary file in server.upload-dirs (spool.rs), then handed on from there
//! `SPILL` bytes at a time as the script or backend takes them.

use super::Job;
use crate::ctx::Ctx;
use crate::spool::SPILL;

impl Job {
    /// While collecting: what the connection decoded goes to the spool once it
    /// passes `SPILL` (and the rest once the body ended, if a spool exists, so the
    /// order holds). Err: 500 (no upload dir took a file, or a write failed).
    pub(crate) fn collect(&mut self, ctx: &mut Ctx) -> Result<(), u16> {
        let spill = self.inbuf.len() >= SPILL
            || (!self.body_open && self.spool.is_some() && !self.inbuf.is_empty());
        if !spill {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.inbuf);
        self.spool_append(ctx, &bytes)?;
        // (the buffer's capacity kept for what comes next)
        self.inbuf = bytes;
        self.inbuf.clear();
        Ok(())
    }

    /// `bytes` to the end of the spool, made in an upload dir on first use.
    /// Err: 500 (no upload dir took a file, or the write failed), logged.
    fn spool_append(&mut self, ctx: &mut Ctx, bytes: &[u8]) -> Result<(), u16> {
        if self.spool.is_none() {
            match ctx.uploads.create() {
                Ok(s) => self.spool = Some(Box::new(s)),
                Err(why) => {
                    ctx.log.push(format!(
                        "{}: {}: no temporary file for the request body: {why}",
                        self.module, self.script
                    ));
                    return Err(500);
                }
            }
        }
        if let Some(s) = self.spool.as_mut() {
            if let Err(e) = s.append(bytes) {
                ctx.log.push(format!(
                    "{}: {}: writing the request body to its temporary file failed: {e}",
                    self.module, self.script
                ));
                return Err(500);
            }
        }
        Ok(())
    }

    /// The collected body's length (before any of it is handed on).
    pub(crate) fn collected_len(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.written()) + self.inbuf.len() as u64
    }

    /// Once `inbuf` is handed on, its next part from the spool (the spool, and
    /// its file, dropped when read to the end). True: bytes came.
    pub(crate) fn refill(&mut self, ctx: &mut Ctx) -> Result<bool, u16> {
        if self.inpos < self.inbuf.len() {
            return Ok(false);
        }
        let Some(s) = self.spool.as_mut() else {
            return Ok(false);
        };
        self.inbuf.clear();
        self.inpos = 0;
        let r = s.read_into(&mut self.inbuf, SPILL);
        if s.pending() == 0 {
            self.spool = None;
        }
        match r {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                self.spool = None;
                ctx.log.push(format!(
                    "{}: {}: reading the request body back from its temporary file failed: {e}",
                    self.module, self.script
                ));
                Err(500)
            }
        }
    }

    /// Read ahead (server.stream-request-body 1): the body keeps its order —
    /// `inbuf` (oldest), the spool, `intake` (newest). What came goes into `inbuf`
    /// while it has room and the spool is empty, else to the end of the spool, so
    /// the client is read on however slowly the script or backend takes it.
    pub(crate) fn take_ahead(&mut self, ctx: &mut Ctx) -> Result<(), u16> {
        if !self.read_ahead || self.intake.is_empty() {
            return Ok(());
        }
        if self.in_closed || self.stage == super::Stage::Done {
            self.intake.clear();
            return Ok(());
        }
        if self.spool.is_none() && self.inbuf.len() - self.inpos < super::IN_HIGH {
            self.inbuf.extend_from_slice(&self.intake);
            self.intake.clear();
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.intake);
        self.spool_append(ctx, &bytes)?;
        // (the buffer's capacity kept for what comes next)
        self.intake = bytes;
        self.intake.clear();
        Ok(())
    }

    /// More of the body is still to be handed on: from the client, the spool or
    /// what was read ahead.
    pub(crate) fn body_more(&self) -> bool {
        self.body_open || self.spool.is_some() || !self.intake.is_empty()
    }
}
