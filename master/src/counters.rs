//! The master's side of the counter page (wick_proto::counters): made once at
//! start and kept across reloads, so totals run on over every generation; a
//! slot handed to each worker it starts (the page's fd and the slot's index ride
//! in the setup) and taken back when the worker is reaped; the master's own
//! counts: reloads and their outcome, restarts by role and cause, the
//! generation serving.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use wick_proto::counters::{Board, SLOTS};

/// Why a child that is restarted ended (an index into `counters::CAUSES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Exit = 0,
    Signal = 1,
    Seccomp = 2,
}

/// Which child (an index into `counters::ROLES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Worker = 0,
    Spawner = 1,
}

pub struct Counters {
    board: &'static Board,
    fd: OwnedFd,
    /// Slots a live child holds (the master's own record, not the page's).
    held: Vec<bool>,
}

impl Counters {
    pub fn new() -> io::Result<Counters> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (board, fd) = Board::create(now)?;
        Ok(Counters {
            board,
            fd,
            held: vec![false; SLOTS],
        })
    }

    /// The page, for a worker's setup.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A free slot for worker `worker_id` of generation `gen` (the lowest, so
    /// the slots in use stay few); None when every slot is held.
    pub fn take(&mut self, gen: u64, worker_id: u32) -> Option<usize> {
        let i = self.held.iter().position(|h| !h)?;
        self.held[i] = true;
        let s = &self.board.slots[i];
        s.generation.set(gen);
        s.worker_id.set(u64::from(worker_id));
        s.pid.set(0);
        s.live.set(1);
        let used = &self.board.header.used;
        if used.get() < i as u64 + 1 {
            used.set(i as u64 + 1);
        }
        Some(i)
    }

    /// The worker holding slot `i` has this pid.
    pub fn started(&self, i: usize, pid: i32) {
        if let Some(s) = self.board.slot(i) {
            s.pid.set(pid.max(0) as u64);
        }
    }

    /// The worker holding slot `i` is gone: the slot is free again (its counts
    /// stay). Returns the system call its SIGSYS handler noted, if any.
    pub fn give_back(&mut self, i: usize) -> Option<u64> {
        let held = self.held.get_mut(i)?;
        *held = false;
        self.board.slot(i)?.release()
    }

    /// A child of the serving generation died and will be started again.
    pub fn restart(&self, kind: Kind, cause: Cause) {
        self.board.header.restarts[kind as usize][cause as usize].add(1);
    }

    /// A reload went into service (`ok`), or did not.
    pub fn reload(&self, ok: bool) {
        let h = &self.board.header;
        if ok {
            h.reloads_ok.add(1);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            h.last_reload.set(now);
        } else {
            h.reloads_failed.add(1);
        }
    }

    /// Generation `gen` serves now.
    pub fn serving(&self, gen: u64) {
        self.board.header.generation.set(gen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_keep_their_counts() {
        let mut c = Counters::new().expect("page");
        let a = c.take(1, 1).expect("slot");
        let b = c.take(1, 2).expect("slot");
        assert_eq!((a, b), (0, 1));
        c.board.slots[a].hot.requests[0][1].add(7);
        assert_eq!(c.give_back(a), None);
        let again = c.take(2, 1).expect("slot");
        assert_eq!(again, a);
        assert_eq!(c.board.slots[again].generation.get(), 2);
        assert_eq!(c.board.totals().requests_total(), 7);
        assert_eq!(c.board.header.used.get(), 2);
        c.restart(Kind::Worker, Cause::Seccomp);
        assert_eq!(c.board.header.restarts[0][2].get(), 1);
    }
}
