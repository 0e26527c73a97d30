//! The scripts the spawner started: which worker asked for each, reaping, and killing
//! a script's whole process group (SIGTERM, then SIGKILL after a grace period) when its
//! worker says the client went away or the timeout expired, or the worker is gone.

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wick_proto::spawner::{ExitStatus, FinishReason};

/// How long a killed group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(1);

/// Which worker channel a script belongs to (the spawner's own key for it).
pub type WorkerKey = usize;

#[derive(Debug)]
struct Cgi {
    worker: WorkerKey,
    id: u64,
    script: String,
    /// Reaped: the pid (and group id) number may only be used for a pending SIGKILL.
    reaped: bool,
    /// The worker is done with it.
    finished: bool,
    /// SIGKILL the group at this time.
    kill_at: Option<Instant>,
    /// The last signal we sent, so its death is not logged as a crash.
    signal_sent: Option<i32>,
}

/// A reaped script, for the worker and the log.
#[derive(Debug)]
pub struct Reaped {
    pub worker: WorkerKey,
    pub id: u64,
    pub pid: i32,
    pub status: ExitStatus,
    pub script: String,
    /// Died of a signal the spawner did not send.
    pub unexpected_signal: bool,
}

#[derive(Debug, Default)]
pub struct Children {
    by_pid: HashMap<i32, Cgi>,
    by_req: HashMap<(WorkerKey, u64), i32>,
}

impl Children {
    pub fn add(&mut self, worker: WorkerKey, id: u64, pid: i32, script: String) {
        // The pid number of a reaped script the worker never released can come back:
        // the old request then loses its handle on it.
        if let Some(old) = self.by_pid.remove(&pid) {
            if self.by_req.get(&(old.worker, old.id)) == Some(&pid) {
                self.by_req.remove(&(old.worker, old.id));
            }
        }
        // A worker reusing an id for a new script: the old entry is forgotten (its
        // process, if any, stays tracked by pid until reaped).
        self.by_req.insert((worker, id), pid);
        self.by_pid.insert(
            pid,
            Cgi {
                worker,
                id,
                script,
                reaped: false,
                finished: false,
                kill_at: None,
                signal_sent: None,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    /// Running scripts of one worker.
    pub fn count_for(&self, worker: WorkerKey) -> usize {
        self.by_pid
            .values()
            .filter(|c| c.worker == worker && !c.reaped)
            .count()
    }

    fn forget_if_done(&mut self, pid: i32) {
        if let Some(c) = self.by_pid.get(&pid) {
            if c.reaped && c.finished && c.kill_at.is_none() {
                if self.by_req.get(&(c.worker, c.id)) == Some(&pid) {
                    self.by_req.remove(&(c.worker, c.id));
                }
                self.by_pid.remove(&pid);
            }
        }
    }

    /// The worker is done with `(worker, id)`.
    pub fn finish(&mut self, worker: WorkerKey, id: u64, reason: FinishReason, now: Instant) {
        let Some(&pid) = self.by_req.get(&(worker, id)) else {
            return;
        };
        let Some(c) = self.by_pid.get_mut(&pid) else {
            return;
        };
        c.finished = true;
        match reason {
            FinishReason::Done => {
                // lighttpd: a script still running after its output ended gets SIGTERM;
                // what it started in the background is left alone.
                if !c.reaped {
                    c.signal_sent = Some(libc::SIGTERM);
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
            }
            FinishReason::ClientGone | FinishReason::Timeout | FinishReason::Error => {
                kill_group(pid, c, now);
            }
        }
        self.forget_if_done(pid);
    }

    /// cgi.limits tcp-fin-propagate: a signal to the script itself.
    pub fn signal(&mut self, worker: WorkerKey, id: u64, sig: i32) {
        let Some(&pid) = self.by_req.get(&(worker, id)) else {
            return;
        };
        let Some(c) = self.by_pid.get_mut(&pid) else {
            return;
        };
        let Ok(s) = Signal::try_from(sig) else { return };
        if !c.reaped {
            c.signal_sent = Some(sig);
            let _ = kill(Pid::from_raw(pid), s);
        }
    }

    /// The worker's channel closed: every script it had is killed.
    pub fn worker_gone(&mut self, worker: WorkerKey, now: Instant) {
        let pids: Vec<i32> = self
            .by_pid
            .iter()
            .filter(|(_, c)| c.worker == worker)
            .map(|(p, _)| *p)
            .collect();
        for pid in pids {
            if let Some(c) = self.by_pid.get_mut(&pid) {
                c.finished = true;
                if c.kill_at.is_none() {
                    kill_group(pid, c, now);
                }
            }
            self.forget_if_done(pid);
        }
    }

    /// Kill everything (shutdown).
    pub fn kill_all(&mut self, now: Instant) {
        for (pid, c) in self.by_pid.iter_mut() {
            c.finished = true;
            kill_group(*pid, c, now);
        }
    }

    /// Reap every exited child (scripts, and orphans the spawner inherits as a
    /// subreaper). Returns the scripts among them.
    pub fn reap(&mut self) -> Vec<Reaped> {
        self.reap_all(&mut Vec::new())
    }

    /// As [`Children::reap`]; the other children reaped (backends, orphans) go
    /// to `others` with their status.
    pub fn reap_all(&mut self, others: &mut Vec<(i32, ExitStatus)>) -> Vec<Reaped> {
        let mut out = Vec::new();
        loop {
            let st = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
                Ok(s) => s,
            };
            let (pid, status) = match st {
                WaitStatus::Exited(p, code) => (p.as_raw(), ExitStatus::Exited(code)),
                WaitStatus::Signaled(p, sig, _) => (p.as_raw(), ExitStatus::Signaled(sig as i32)),
                _ => continue,
            };
            let Some(c) = self.by_pid.get_mut(&pid) else {
                others.push((pid, status));
                continue;
            };
            c.reaped = true;
            let unexpected_signal = match status {
                ExitStatus::Signaled(s) => c.signal_sent != Some(s) && s != libc::SIGKILL,
                ExitStatus::Exited(_) => false,
            };
            out.push(Reaped {
                worker: c.worker,
                id: c.id,
                pid,
                status,
                script: c.script.clone(),
                unexpected_signal,
            });
            self.forget_if_done(pid);
        }
        out
    }

    /// Send the SIGKILLs that are due; returns when the next one is.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        let due: Vec<i32> = self
            .by_pid
            .iter()
            .filter(|(_, c)| c.kill_at.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for pid in due {
            if let Some(c) = self.by_pid.get_mut(&pid) {
                c.kill_at = None;
                c.signal_sent = Some(libc::SIGKILL);
                // ESRCH: the group is already gone.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            self.forget_if_done(pid);
        }
        self.by_pid.values().filter_map(|c| c.kill_at).min()
    }
}

/// SIGTERM to the script's process group (its pid: setsid made it the leader), and a
/// SIGKILL for whatever is left after [`GRACE`].
fn kill_group(pid: i32, c: &mut Cgi, now: Instant) {
    c.signal_sent = Some(libc::SIGTERM);
    let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
    c.kill_at = Some(now + GRACE);
}
