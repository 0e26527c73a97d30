//! The worker's channel to the gateway-spawner: the jobs it runs for this
//! worker's connections and the spawner's answers routed to them.

use crate::ctx::Ctx;
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use wick_proto::spawner::{FinishReason, FromWorkerToSpawner, SpawnerToWorker};
use wick_proto::{Channel, WorkerEnd};

use super::*;

/// The worker's side of the spawner: its channel, the jobs it runs for us, and log
/// lines for the server to write.
pub struct Client {
    /// mod_cgi is in server.modules.
    pub enabled: bool,
    pub(super) chan: Option<WorkerEnd>,
    /// Messages the channel did not take yet.
    pub(super) queue: VecDeque<FromWorkerToSpawner>,
    pub(super) next_id: u64,
    /// Job id → connection key.
    pub(super) jobs: HashMap<u64, usize>,
    /// The connection the server is driving (set before `Conn::drive`).
    pub current: usize,
    /// Lines for the error log.
    pub log: Vec<String>,
    /// Jobs of a spawner channel that was replaced.
    pub(super) orphans: Vec<(u64, usize)>,
}

impl Client {
    pub fn new(enabled: bool) -> Client {
        Client {
            enabled,
            chan: None,
            queue: VecDeque::new(),
            next_id: 1,
            jobs: HashMap::new(),
            current: 0,
            log: Vec::new(),
            orphans: Vec::new(),
        }
    }

    /// A (new) channel to the spawner; the old one, if any, is dropped.
    pub fn set_channel(&mut self, fd: OwnedFd, reg: &Registry) -> io::Result<()> {
        if let Some(old) = self.chan.take() {
            let _ = reg.deregister(&mut SourceFd(&old.as_raw_fd()));
            // Scripts asked of the old spawner will never start (see spawner_event).
            self.orphans.extend(self.jobs.drain());
        }
        let ch = WorkerEnd::new(Channel::from_fd(fd));
        ch.set_nonblocking(true)?;
        reg.register(
            &mut SourceFd(&ch.as_raw_fd()),
            SPAWNER,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.chan = Some(ch);
        self.queue.clear();
        Ok(())
    }

    pub(super) fn send(&mut self, m: FromWorkerToSpawner) {
        self.queue.push_back(m);
        self.flush();
    }

    pub(super) fn flush(&mut self) {
        let Some(ch) = &self.chan else {
            self.queue.clear();
            return;
        };
        while let Some(m) = self.queue.front() {
            match ch.send(m, &[]) {
                Ok(()) => {
                    self.queue.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.queue.clear();
                    return;
                }
            }
        }
    }

    pub(super) fn finish(&mut self, id: u64, reason: FinishReason) {
        self.jobs.remove(&id);
        self.send(FromWorkerToSpawner::Finish { id, reason });
    }
}

/// The jobs of a worker's connections, found by connection key and job id (the
/// server implements it over its connections; cgi does not know connections).
pub trait Jobs {
    fn job(&mut self, key: usize, id: u64) -> Option<&mut Job>;
}

/// The spawner's channel is readable (or writable): handle its answers. Returns the
/// connections to drive.
pub fn spawner_event(conns: &mut impl Jobs, ctx: &mut Ctx, reg: &Registry) -> Vec<usize> {
    ctx.cgi.flush();
    let mut drive = Vec::new();
    for (id, key) in std::mem::take(&mut ctx.cgi.orphans) {
        if let Some(job) = conns.job(key, id) {
            if job.stage == Stage::Waiting {
                fail(job, &ctx.clock, &ctx.pages, 503);
                drive.push(key);
            }
        }
    }
    while let Some(ch) = ctx.cgi.chan.as_mut() {
        let (msg, fds) = match ch.recv() {
            Ok(Some(m)) => m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Ok(None) | Err(_) => {
                // The spawner is gone: scripts not started yet never will be.
                if let Some(old) = ctx.cgi.chan.take() {
                    let _ = reg.deregister(&mut SourceFd(&old.as_raw_fd()));
                }
                ctx.cgi
                    .log
                    .push("mod_cgi: the gateway-spawner closed its channel".into());
                let waiting: Vec<(u64, usize)> = ctx.cgi.jobs.drain().collect();
                for (id, key) in waiting {
                    if let Some(job) = conns.job(key, id) {
                        if job.stage == Stage::Waiting {
                            fail(job, &ctx.clock, &ctx.pages, 503);
                            drive.push(key);
                        }
                    }
                }
                break;
            }
        };
        match msg {
            SpawnerToWorker::Started { id, pid } => {
                let key = ctx.cgi.jobs.get(&id).copied();
                let now = ctx.clock.mono;
                let job = key.and_then(|k| conns.job(k, id));
                let (Some(key), Some(job), [i, o, e]) = (key, job, &fds[..]) else {
                    // Nobody waits for it any more (client gone, or a bad answer).
                    ctx.cgi.finish(id, FinishReason::ClientGone);
                    continue;
                };
                if job.stage != Stage::Waiting {
                    ctx.cgi.finish(id, FinishReason::ClientGone);
                    continue;
                }
                let ok = [
                    (i, STDIN, Interest::WRITABLE),
                    (o, STDOUT, Interest::READABLE),
                    (e, STDERR, Interest::READABLE),
                ]
                .iter()
                .all(|(fd, which, int)| {
                    crate::sys::set_nonblocking(fd.as_raw_fd());
                    reg.register(
                        &mut SourceFd(&fd.as_raw_fd()),
                        pipe_token(key, *which),
                        *int,
                    )
                    .is_ok()
                });
                let mut fds = fds.into_iter();
                job.stdin = fds.next();
                job.stdout = fds.next();
                job.stderr = fds.next();
                job.pid = pid;
                job.stage = Stage::Running;
                job.read_ts = now;
                job.write_ts = now;
                if !ok {
                    ctx.cgi
                        .log
                        .push(format!("mod_cgi: {}: cannot watch its pipes", job.script));
                    fail(job, &ctx.clock, &ctx.pages, 500);
                    ctx.cgi.finish(id, FinishReason::Error);
                }
                drive.push(key);
            }
            SpawnerToWorker::Refused { id, status, reason } => {
                let key = ctx.cgi.jobs.remove(&id);
                if let Some(key) = key {
                    if let Some(job) = conns.job(key, id) {
                        ctx.cgi
                            .log
                            .push(format!("mod_cgi: {} not run: {reason}", job.script));
                        fail(job, &ctx.clock, &ctx.pages, status);
                        drive.push(key);
                    }
                }
            }
            SpawnerToWorker::Exited { .. } => {}
        }
    }
    drive
}
