//! One CGI request on a connection: [`Job`], the handler the connection steps
//! (the script's pipes, its body, its response), and how it fails.

use super::resp::RespHead;
use crate::chunked::Decoder;
use crate::ctx::Ctx;
use crate::handler::Want;
use crate::request::Version;
use crate::response::Out;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use wick_proto::spawner::{CgiLimits, CgiRequest, FinishReason, FromWorkerToSpawner};

use super::*;
use crate::internal::{Internal, Saved};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Reading the request body whole before asking for the script or backend.
    Collecting,
    /// Asked the spawner; waiting for the pipes.
    Waiting,
    Running,
    /// The response is complete (or an error response replaced it).
    Done,
}

/// How response body bytes go to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The head is not parsed yet.
    Head,
    /// Content-Length: this many bytes still to send.
    Length(u64),
    /// Chunked to an HTTP/1.1 client.
    Chunked,
    /// Until the script ends; the connection closes after.
    UntilClose,
    /// Nothing more goes to the client (HEAD, X-Sendfile).
    Discard,
    /// No length from the script: the head waits in `Job::pending` with the body
    /// read so far. A response that ends within about a second gets Content-Length
    /// (lighttpd buffers whole responses); one that goes on streams, chunked.
    Pending,
}

/// A response head held back (Framing::Pending) with the body read so far.
#[derive(Debug)]
pub(crate) struct PendingHead {
    pub(crate) head: RespHead,
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// Monotonic second the head came.
    pub(crate) since: u64,
}

/// One CGI request on a connection.
#[derive(Debug)]
pub struct Job {
    pub(crate) id: u64,
    pub(crate) stage: Stage,
    pub(crate) pid: u32,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// Request body for the script: `inbuf[inpos..]` is not written yet.
    pub(crate) inbuf: Vec<u8>,
    pub(crate) inpos: usize,
    /// The script stopped reading its stdin: the rest of the body is thrown away.
    pub(crate) in_closed: bool,
    /// The connection is still reading the request body for us.
    pub(crate) body_open: bool,
    /// The body is received whole before the script or backend gets it
    /// (server.stream-request-body 0, or chunked: collect.rs).
    pub(crate) whole: bool,
    /// A collected body beyond `spool::SPILL`: its temporary file.
    pub(crate) spool: Option<Box<crate::spool::Spool>>,
    /// server.stream-request-body 1: the body streams, and what the script or
    /// backend has not taken yet is read ahead of it into the spool.
    pub(crate) read_ahead: bool,
    /// Read ahead: what the connection decoded, not yet in `inbuf` or the spool.
    pub(crate) intake: Vec<u8>,
    /// server.stream-response-body 0 or 1: a response the client is slow to take
    /// goes to a temporary file (respool.rs) rather than holding the script.
    pub(crate) resp_spill: bool,
    pub(crate) rspool: Option<respool::RespSpool>,
    /// The request, kept until it can be sent (a chunked body is being collected).
    pub(crate) req: Option<Box<CgiRequest>>,
    /// Response head bytes until the head is complete.
    pub(crate) head: Vec<u8>,
    pub(crate) framing: Framing,
    /// The script sent Transfer-Encoding: chunked.
    pub(crate) dechunk: Option<Decoder>,
    /// Framing::Pending: the head waiting for a framing.
    pub(crate) pending: Option<Box<PendingHead>>,
    /// Response bytes for the client.
    pub(crate) out: Out,
    pub(crate) errbuf: Vec<u8>,
    pub(crate) read_ts: u64,
    pub(crate) write_ts: u64,
    pub(crate) limits: CgiLimits,
    /// SCRIPT_NAME, for log lines.
    pub(crate) script: String,
    pub(crate) version: Version,
    pub(crate) head_only: bool,
    pub(crate) keep_alive: bool,
    /// The response head went into `out`.
    pub(crate) started: bool,
    pub(crate) tag: String,
    pub(crate) local_redir: bool,
    pub(crate) xsendfile: bool,
    pub(crate) xsendfile_docroot: Vec<String>,
    pub(crate) lowercase: bool,
    /// mimetype.assign, for an X-Sendfile file without a Content-Type (only kept
    /// when cgi.x-sendfile is on).
    pub(crate) mimetypes: Vec<(String, String)>,
    /// An error handler run: the original status, and whether a 200 from the
    /// handler is replaced by it (server.error-handler, not -404).
    pub(crate) error_status: Option<(u16, bool)>,
    /// Fields an error handler's answer keeps (a 401's WWW-Authenticate, as
    /// lighttpd's http_response_errdoc_init): before the script's own.
    pub(crate) carried: Vec<(&'static [u8], Vec<u8>)>,
    /// Internal redirects so far (lighttpd allows 5).
    pub(crate) loops: u8,
    pub(crate) saved: Saved,
    /// mod_accesslog: the line, the status and the bytes sent.
    pub(crate) log: Option<crate::mods::accesslog::Tally>,
    /// The request's response_start hooks (mod_setenv, mod_expire), run on the
    /// script's head.
    pub(crate) hooks: crate::mods::LaterHooks,
    /// mod_deflate: the body being compressed (from the script's head on).
    pub(crate) zip: Option<Box<crate::mods::deflate::stream::Zip>>,
    /// The spawner runs the script (mod_cgi); false for a backend the worker
    /// talks to itself (mod_fastcgi), which the spawner never hears of.
    pub(crate) spawned: bool,
    /// The module named in log lines ("mod_cgi", "mod_fastcgi").
    pub(crate) module: &'static str,
    /// A socket backend's name, for log lines (its address).
    pub(crate) backend: String,
    /// The response's status, once its head is made (mod_status counts it).
    pub(crate) status: u16,
    /// Its method and start, for mod_status's count when the job completes.
    pub(crate) counted: crate::mods::status::count::Started,
}

/// Tell the spawner a script's job ended (nothing to tell for a socket backend).
pub(crate) fn job_finish(ctx: &mut Ctx, id: u64, spawned: bool, reason: FinishReason) {
    if spawned {
        ctx.cgi.finish(id, reason);
    }
}

/// Replace the response with an error page (nothing was sent yet) and end the job.
pub(crate) fn fail(
    job: &mut Job,
    clock: &crate::date::Clock,
    pages: &crate::errors::Pages,
    status: u16,
) {
    job.stage = Stage::Done;
    job.framing = Framing::Discard;
    job.pending = None;
    job.stdin = None;
    job.stdout = None;
    if job.started {
        // Part of the response is out: the connection must end.
        job.keep_alive = false;
        return;
    }
    job.started = true;
    let mark = job.out.buf.len();
    // (a failed script is rare: its head is not worth a shared buffer)
    crate::static_file::simple_error(
        &mut job.out,
        &mut crate::resp_head::ResponseHead::default(),
        clock,
        pages,
        &job.tag,
        job.version,
        status,
        job.keep_alive,
        job.head_only,
    );
    job.status = status;
    if let Some(l) = &mut job.log {
        l.head(status, &job.out.buf[mark..]);
    }
}

/// How one turn of the job went (internal to the job's step).
pub(crate) enum Pump {
    Wait,
    Progress,
    Close,
    /// Stop reading the request body and answer with this status.
    Refuse(u16),
    Done,
    Redirect(Box<Internal>),
}

impl Job {
    /// One turn: the collected body starts the script, body bytes to its stdin,
    /// its stdout to the response, stderr lines to the log, the response to the
    /// client.
    pub(crate) fn pump(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
        rbuf: &mut [u8],
    ) -> Pump {
        let mut progress = false;
        if let Err(status) = self.take_ahead(ctx) {
            return Pump::Refuse(status);
        }
        match self.start_collected(ctx) {
            Err(p) => return p,
            Ok(p) => progress |= p,
        }
        if self.stdin.is_some() {
            match self.refill(ctx) {
                Err(status) => return Pump::Refuse(status),
                Ok(p) => progress |= p,
            }
        }
        progress |= self.feed_stdin(ctx.clock.mono);
        match self.read_stdout(ctx, rbuf) {
            Err(p) => return p,
            Ok(p) => progress |= p,
        }
        progress |= self.read_stderr(ctx, rbuf);
        match self.send_out(ctx, client) {
            Err(p) => return p,
            Ok(p) => progress |= p,
        }
        // Done when the script's output is all read (stderr may trail).
        if self.stage == Stage::Done && self.stdout.is_none() {
            return Pump::Done;
        }
        if progress {
            Pump::Progress
        } else {
            Pump::Wait
        }
    }

    /// A collected body is complete: now the script can start. (Memory stays
    /// bounded: past `spool::SPILL` it is in a file; server.max-request-size is
    /// the body's own limit.)
    fn start_collected(&mut self, ctx: &mut Ctx) -> Result<bool, Pump> {
        if self.stage != Stage::Collecting {
            return Ok(false);
        }
        self.collect(ctx).map_err(Pump::Refuse)?;
        if self.body_open {
            return Ok(false);
        }
        let Some(mut req) = self.req.take() else {
            return Ok(false);
        };
        req.content_length = self.collected_len();
        self.stage = Stage::Waiting;
        ctx.cgi.jobs.insert(self.id, ctx.cgi.current);
        ctx.cgi.send(FromWorkerToSpawner::Run(req));
        Ok(true)
    }

    /// Body bytes to the script's stdin; its EOF once the body is all written.
    fn feed_stdin(&mut self, now: u64) -> bool {
        let mut progress = false;
        if let Some(fd) = &self.stdin {
            if self.inpos < self.inbuf.len() {
                match crate::sys::write(fd.as_raw_fd(), &self.inbuf[self.inpos..]) {
                    Ok(n) => {
                        self.inpos += n;
                        self.write_ts = now;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        // The script closed its stdin: the rest of the body is dropped.
                        self.in_closed = true;
                        self.stdin = None;
                        progress = true;
                    }
                }
                if self.inpos == self.inbuf.len() || self.inpos > IN_HIGH {
                    self.inbuf.drain(..self.inpos);
                    self.inpos = 0;
                }
            }
            if self.inpos >= self.inbuf.len() && !self.body_more() {
                self.stdin = None; // EOF for the script
            }
        } else if self.in_closed {
            self.inbuf.clear();
            self.inpos = 0;
            self.spool = None;
            self.intake.clear();
        }
        progress
    }

    /// The script's stdout: everything it has (up to OUT_HIGH) before writing to
    /// the client, so that a short response and its end leave in one write (two
    /// small writes would meet Nagle and the client's delayed ACK).
    fn read_stdout(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> Result<bool, Pump> {
        let mut progress = false;
        while self.stdout.is_some()
            && !self.out_full(ctx)
            && self
                .pending
                .as_ref()
                .is_none_or(|p| p.body.len() < OUT_HIGH)
        {
            let fd = self.stdout.as_ref().map_or(-1, |f| f.as_raw_fd());
            let step = match crate::sys::read(fd, rbuf) {
                Ok(n) if n > 0 => {
                    self.read_ts = ctx.clock.mono;
                    progress = true;
                    stdout_data(ctx, self, &rbuf[..n])
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The script paused: what it said is compressed out now.
                    source_paused(self);
                    break;
                }
                // EOF (or a read error, which ends the output the same way).
                _ => {
                    self.stdout = None;
                    progress = true;
                    stdout_eof(ctx, self)
                }
            };
            if let Some(s) = step {
                return Err(s);
            }
        }
        Ok(progress)
    }

    /// stderr lines to the error log.
    fn read_stderr(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) -> bool {
        let Some(fd) = &self.stderr else {
            return false;
        };
        match crate::sys::read(fd.as_raw_fd(), rbuf) {
            Ok(0) => {
                self.stderr = None;
                flush_err(ctx, self, true);
                false
            }
            Ok(n) => {
                self.errbuf.extend_from_slice(&rbuf[..n]);
                flush_err(ctx, self, false);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => {
                self.stderr = None;
                false
            }
        }
    }

    /// Response bytes to the client. A pending head waits for the end of the
    /// output (then it has a length) until OUT_HIGH bytes or about a second
    /// (tick) make it stream.
    pub(crate) fn send_out(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
    ) -> Result<bool, Pump> {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.body.len() >= OUT_HIGH)
        {
            commit_head(ctx, self, false);
        }
        if self.out.is_empty() {
            return Ok(false);
        }
        let before = self.out.remaining();
        let r = client.send(&mut self.out, ctx.clock.mono);
        if let Some(l) = &mut self.log {
            l.sent(before.saturating_sub(self.out.remaining()));
        }
        match r {
            Ok(true) => {
                self.out.clear();
                self.out_drained();
                Ok(true)
            }
            Ok(false) => Ok(self.out.remaining() != before),
            Err(_) => Err(Pump::Close),
        }
    }

    /// The job is over: what the script wrote to stderr before it ended is logged,
    /// the access-log line closed; the connection sends the rest of `out`.
    pub(crate) fn complete(&mut self, ctx: &mut Ctx, rbuf: &mut [u8]) {
        ctx.cgi.jobs.remove(&self.id);
        if let Some(fd) = self.stderr.take() {
            for _ in 0..16 {
                match crate::sys::read(fd.as_raw_fd(), rbuf) {
                    Ok(n) if n > 0 => self.errbuf.extend_from_slice(&rbuf[..n]),
                    _ => break,
                }
            }
        }
        if !self.errbuf.is_empty() {
            flush_err(ctx, self, true);
        }
        if let (Some(l), Some(a)) = (self.log.take(), ctx.site.mods.accesslog.as_deref()) {
            l.finish(a, self.out.remaining());
        }
        crate::mods::status::count::request(self.counted, self.status, ctx.clock.at);
    }
}

impl Job {
    /// The script or backend, for log lines.
    pub(crate) fn who(&self) -> String {
        if self.spawned {
            format!("{} (pid {})", self.script, self.pid)
        } else {
            format!("{} (backend {})", self.script, self.backend)
        }
    }

    /// The handle the worker and the spawner know this job by.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl crate::handler::Handler for Job {
    fn body_room(&mut self) -> Option<&mut Vec<u8>> {
        if self.read_ahead {
            let room = self.intake.len() < crate::spool::SPILL || self.in_closed;
            return room.then_some(&mut self.intake);
        }
        let pending = self.inbuf.len() - self.inpos;
        let room = pending < IN_HIGH || self.in_closed || self.stage == Stage::Collecting;
        room.then_some(&mut self.inbuf)
    }

    fn body_done(&mut self, _ctx: &mut Ctx, trailers: Vec<(String, String)>) {
        self.body_open = false;
        // The script is asked for once a chunked body is in: its HTTP_* include them.
        if let Some(req) = self.req.as_mut() {
            for (name, value) in trailers {
                merge_header(&mut req.headers, name, value);
            }
        }
    }

    fn client_fin(&mut self, ctx: &mut Ctx) {
        // The response still goes out, then the close; with cgi.limits
        // tcp-fin-propagate the script gets a signal.
        self.keep_alive = false;
        let sig = self.limits.signal_fin;
        if sig != 0 && matches!(self.stage, Stage::Waiting | Stage::Running) {
            ctx.cgi.send(FromWorkerToSpawner::Signal {
                id: self.id,
                signal: sig,
            });
        }
    }

    fn step(
        &mut self,
        ctx: &mut Ctx,
        client: &mut crate::handler::Client,
        rbuf: &mut [u8],
    ) -> crate::handler::Step {
        use crate::handler::Step;
        match self.pump(ctx, client, rbuf) {
            Pump::Wait => Step::Wait,
            Pump::Progress => Step::Progress,
            Pump::Close => Step::Close,
            Pump::Refuse(status) => Step::Refuse(status),
            Pump::Redirect(ir) => {
                ctx.cgi.jobs.remove(&self.id);
                Step::Redirect(ir)
            }
            Pump::Done => {
                self.complete(ctx, rbuf);
                Step::Done {
                    out: std::mem::take(&mut self.out),
                    keep_alive: self.keep_alive,
                }
            }
        }
    }

    fn abort(&mut self, ctx: &mut Ctx, status: Option<u16>) {
        match status {
            None => match self.stage {
                Stage::Waiting | Stage::Running => {
                    ctx.cgi.finish(self.id, FinishReason::ClientGone)
                }
                Stage::Collecting | Stage::Done => {
                    ctx.cgi.jobs.remove(&self.id);
                }
            },
            Some(status) => {
                self.body_open = false;
                if matches!(self.stage, Stage::Waiting | Stage::Running) {
                    ctx.cgi.finish(self.id, FinishReason::Error);
                }
                self.keep_alive = false;
                fail(self, &ctx.clock, &ctx.pages, status);
            }
        }
    }

    /// Readable always (the body, or the client going away); writable while
    /// response bytes wait.
    fn want(&self) -> Want {
        if self.out.is_empty() {
            Want::READ
        } else {
            Want::READ | Want::WRITE
        }
    }

    /// The write timeout while the client does not take the response; the
    /// script's own limits (tick) otherwise.
    fn timeout(&self, write_idle: u64) -> u64 {
        if self.out.is_empty() {
            u64::MAX
        } else {
            write_idle
        }
    }

    /// cgi.limits read-timeout and write-timeout. Without a read-timeout, a script
    /// that says nothing for server.max-write-idle seconds once its request body is
    /// in ends the same way: a request never waits on a silent script for ever.
    fn tick(&mut self, ctx: &mut Ctx, now: u64) -> bool {
        let job = self;
        let body_open = job.body_open;
        let l = job.limits;
        let read_limit = match l.read_timeout {
            0 if body_open => 0,
            0 => ctx.site.write_idle,
            t => t,
        };
        if !job.out.is_empty() {
            // Waiting for the client, not the script (max-write-idle covers it).
            job.read_ts = now;
        }
        if job.pending.as_ref().is_some_and(|p| now > p.since + 1) {
            // A script still at work a second after its head: what it said streams.
            commit_head(ctx, job, false);
            return true;
        }
        // Waiting: the spawner has not started it yet (read_ts is the request's start).
        let silent = match job.stage {
            Stage::Running => job.stdout.is_some(),
            Stage::Waiting => true,
            Stage::Collecting | Stage::Done => return false,
        };
        let what = if read_limit > 0 && silent && now.saturating_sub(job.read_ts) > read_limit {
            "read"
        } else if l.write_timeout > 0
            && job.stdin.is_some()
            && job.inpos < job.inbuf.len()
            && now.saturating_sub(job.write_ts) > l.write_timeout
        {
            "write"
        } else {
            return false;
        };
        ctx.cgi.log.push(format!(
            "mod_cgi: {what} timeout on CGI: {} (pid: {})",
            job.script, job.pid
        ));
        let id = job.id;
        fail(job, &ctx.clock, &ctx.pages, 504);
        ctx.cgi.finish(id, FinishReason::Timeout);
        true
    }

    fn reading_body(&self) -> bool {
        self.stage == Stage::Collecting && self.body_open
    }

    fn started(&self) -> bool {
        self.started
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
