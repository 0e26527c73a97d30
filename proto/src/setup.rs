//! Each child's start-up in one message: [`WorkerSetup`] and [`SpawnerSetup`], the
//! fds riding along in a declared order. Sender and receiver share one definition
//! of that order ([`WorkerFds`], [`SpawnerFds`]): the master builds the fd list with
//! `into_vec`, the child splits what arrived with `from_vec`, both below.

use crate::channel::MAX_FDS;
use serde::{Deserialize, Serialize};

/// A worker's whole start-up. After it the worker compiles its config, sandboxes
/// itself and answers `Ready` or `Failed`: the setup implies the start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSetup {
    /// First, so that a mismatch is read before anything that may have moved.
    pub proto: u32,
    pub generation: u64,
    pub worker_id: u32,
    /// `Config::for_worker`: everything but the master's start-up warnings.
    pub config: wick_conf::Config,
    /// `wickd -i SECS`: send `FromWorker::Active` at most once a second while
    /// there is network activity (accept, read, write).
    pub report_activity: bool,
    /// Certificates, keys and ticket keys, when a listener has ssl.engine.
    pub tls: Option<crate::tls::TlsMaterial>,
    /// The worker's slot in the counter page (`fds.counters`), when it has one.
    pub counter_slot: Option<u32>,
    /// What rides along, in [`WorkerFds`] order.
    pub fds: WorkerFdCounts,
}

/// The fds a [`WorkerSetup`] announces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerFdCounts {
    /// Listening sockets, in `Config::listeners` order (0 with `wickd -1`).
    pub listeners: u32,
    /// The error log (O_APPEND); without it lines go over the channel.
    pub error_log: bool,
    /// mod_accesslog's targets in `wick_worker::mods::accesslog::targets` order:
    /// files opened for appending and write ends of piped loggers.
    pub access_logs: u32,
    /// `wickd -1` (inetd style): serve this one connection, then exit.
    pub one_shot: Option<OneShot>,
    /// The worker's end of its socketpair to the gateway-spawner (mod_cgi).
    pub spawner: bool,
    /// The master's counter page (`crate::counters`), a memfd.
    pub counters: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneShot {
    /// A separate write side follows the connection (a pipe pair, as inetd passes
    /// stdin/stdout).
    pub has_out: bool,
}

/// A worker's start-up fds, in the order they ride: listeners, error log, access
/// logs, the one-shot connection and its write side, the spawner channel, the
/// counter page. `F` is
/// `BorrowedFd` for the master, `OwnedFd` for the worker.
#[derive(Debug, PartialEq, Eq)]
pub struct WorkerFds<F> {
    pub listeners: Vec<F>,
    pub error_log: Option<F>,
    pub access_logs: Vec<F>,
    /// The connection, and its write side when that is a separate fd.
    pub one_shot: Option<(F, Option<F>)>,
    pub spawner: Option<F>,
    pub counters: Option<F>,
}

impl<F> WorkerFds<F> {
    /// What the setup announces for these fds.
    pub fn counts(&self) -> WorkerFdCounts {
        WorkerFdCounts {
            listeners: self.listeners.len() as u32,
            error_log: self.error_log.is_some(),
            access_logs: self.access_logs.len() as u32,
            one_shot: self.one_shot.as_ref().map(|(_, out)| OneShot {
                has_out: out.is_some(),
            }),
            spawner: self.spawner.is_some(),
            counters: self.counters.is_some(),
        }
    }

    /// Sender: the fds in the declared order; Err if one message cannot carry them.
    pub fn into_vec(self) -> Result<Vec<F>, String> {
        let mut v = self.listeners;
        v.extend(self.error_log);
        v.extend(self.access_logs);
        if let Some((conn, out)) = self.one_shot {
            v.push(conn);
            v.extend(out);
        }
        v.extend(self.spawner);
        v.extend(self.counters);
        within_limit(v)
    }

    /// Receiver: the fds that came with a setup announcing `c`, taken in the
    /// declared order; Err when their number is not what `c` announces.
    pub fn from_vec(c: &WorkerFdCounts, fds: Vec<F>) -> Result<Self, String> {
        let want = c.listeners as usize
            + usize::from(c.error_log)
            + c.access_logs as usize
            + c.one_shot.map_or(0, |o| 1 + usize::from(o.has_out))
            + usize::from(c.spawner)
            + usize::from(c.counters);
        if fds.len() != want {
            return Err(format!(
                "worker setup announces {want} fds ({c:?}), {} came",
                fds.len()
            ));
        }
        let mut it = fds.into_iter();
        let mut take = |n: usize| it.by_ref().take(n).collect::<Vec<F>>();
        let listeners = take(c.listeners as usize);
        let error_log = take(usize::from(c.error_log)).pop();
        let access_logs = take(c.access_logs as usize);
        let one_shot = match c.one_shot {
            Some(o) => {
                let mut v = take(1 + usize::from(o.has_out)).into_iter();
                v.next().map(|conn| (conn, v.next()))
            }
            None => None,
        };
        let spawner = take(usize::from(c.spawner)).pop();
        let counters = take(usize::from(c.counters)).pop();
        Ok(WorkerFds {
            listeners,
            error_log,
            access_logs,
            one_shot,
            spawner,
            counters,
        })
    }
}

/// The gateway-spawner's whole start-up. After it the spawner resolves its users,
/// confines itself and answers `Ready` or `Failed`. Worker channels come later, one
/// `ToWorker::SpawnerChannel` each.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpawnerSetup {
    /// First, as in [`WorkerSetup`].
    pub proto: u32,
    pub generation: u64,
    /// `wick_gateway_spawner::policy::slice`: what the CGI policy reads.
    pub config: wick_conf::Config,
    /// What rides along, in [`SpawnerFds`] order.
    pub fds: SpawnerFdCounts,
}

/// The fds a [`SpawnerSetup`] announces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnerFdCounts {
    /// The error log; without it lines go over the channel.
    pub error_log: bool,
}

/// The spawner's start-up fds, in the order they ride: the error log.
#[derive(Debug, PartialEq, Eq)]
pub struct SpawnerFds<F> {
    pub error_log: Option<F>,
}

impl<F> SpawnerFds<F> {
    /// What the setup announces for these fds.
    pub fn counts(&self) -> SpawnerFdCounts {
        SpawnerFdCounts {
            error_log: self.error_log.is_some(),
        }
    }

    /// Sender: the fds in the declared order.
    pub fn into_vec(self) -> Result<Vec<F>, String> {
        within_limit(self.error_log.into_iter().collect())
    }

    /// Receiver: the fds of a setup announcing `c`, in the declared order.
    pub fn from_vec(c: &SpawnerFdCounts, fds: Vec<F>) -> Result<Self, String> {
        let want = usize::from(c.error_log);
        if fds.len() != want {
            return Err(format!(
                "spawner setup announces {want} fds ({c:?}), {} came",
                fds.len()
            ));
        }
        Ok(SpawnerFds {
            error_log: fds.into_iter().next(),
        })
    }
}

/// The receiver takes at most [`MAX_FDS`] per message; more would arrive cut.
fn within_limit<F>(v: Vec<F>) -> Result<Vec<F>, String> {
    if v.len() > MAX_FDS {
        return Err(format!(
            "{} fds for one start-up message; at most {MAX_FDS} fit",
            v.len()
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChildEnd, MasterEnd, ToWorker, PROTO_VERSION};
    use std::os::fd::{AsFd, OwnedFd};

    /// A pipe whose read end is told apart by what its write end wrote.
    fn tagged(tag: &str) -> (OwnedFd, OwnedFd) {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        nix::unistd::write(&w, tag.as_bytes()).expect("write");
        (r, w)
    }

    fn tag_of(fd: &OwnedFd) -> String {
        let mut buf = [0u8; 32];
        let n = nix::unistd::read(fd, &mut buf).expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn config() -> wick_conf::Config {
        let dir = std::env::temp_dir();
        wick_conf::load_str("server.port = 8080\n", "t.conf", &dir).expect("config")
    }

    #[test]
    fn worker_setup_fds_arrive_in_declared_order() {
        let names = [
            "l0", "l1", "err", "a0", "a1", "a2", "conn", "out", "spawner", "counters",
        ];
        let pipes: Vec<_> = names.iter().map(|n| tagged(n)).collect();
        let r: Vec<_> = pipes.iter().map(|(r, _)| r.as_fd()).collect();
        let fds = WorkerFds {
            listeners: vec![r[0], r[1]],
            error_log: Some(r[2]),
            access_logs: vec![r[3], r[4], r[5]],
            one_shot: Some((r[6], Some(r[7]))),
            spawner: Some(r[8]),
            counters: Some(r[9]),
        };
        let setup = WorkerSetup {
            proto: PROTO_VERSION,
            generation: 7,
            worker_id: 2,
            config: config().for_worker(),
            report_activity: true,
            tls: None,
            counter_slot: Some(5),
            fds: fds.counts(),
        };
        let (a, b) = crate::Channel::pair().expect("pair");
        let (master, mut child) = (MasterEnd::new(a), ChildEnd::new(b));
        let list = fds.into_vec().expect("fds");
        master
            .send(&ToWorker::WorkerSetup(Box::new(setup)), &list)
            .expect("send");
        let (msg, got) = child.recv().expect("recv").expect("msg");
        let ToWorker::WorkerSetup(s) = msg else {
            panic!("not a worker setup: {msg:?}");
        };
        assert_eq!((s.proto, s.generation, s.worker_id), (PROTO_VERSION, 7, 2));
        assert!(s.report_activity);
        let f = WorkerFds::from_vec(&s.fds, got).expect("layout");
        let tags = |v: &[OwnedFd]| v.iter().map(tag_of).collect::<Vec<_>>();
        assert_eq!(tags(&f.listeners), ["l0", "l1"]);
        assert_eq!(f.error_log.as_ref().map(tag_of).as_deref(), Some("err"));
        assert_eq!(tags(&f.access_logs), ["a0", "a1", "a2"]);
        let (conn, out) = f.one_shot.expect("one-shot");
        assert_eq!(
            (tag_of(&conn), out.as_ref().map(tag_of)),
            ("conn".into(), Some("out".into()))
        );
        assert_eq!(f.spawner.as_ref().map(tag_of).as_deref(), Some("spawner"));
        assert_eq!(f.counters.as_ref().map(tag_of).as_deref(), Some("counters"));
        assert_eq!(s.counter_slot, Some(5));
    }

    #[test]
    fn spawner_setup_round_trips() {
        let (r, _w) = tagged("err");
        let fds = SpawnerFds {
            error_log: Some(r.as_fd()),
        };
        let setup = SpawnerSetup {
            proto: PROTO_VERSION,
            generation: 3,
            config: config(),
            fds: fds.counts(),
        };
        let (a, b) = crate::Channel::pair().expect("pair");
        let (master, mut child) = (MasterEnd::new(a), ChildEnd::new(b));
        master
            .send(
                &ToWorker::SpawnerSetup(Box::new(setup)),
                &fds.into_vec().expect("fds"),
            )
            .expect("send");
        let (msg, got) = child.recv().expect("recv").expect("msg");
        let ToWorker::SpawnerSetup(s) = msg else {
            panic!("not a spawner setup: {msg:?}");
        };
        let f = SpawnerFds::from_vec(&s.fds, got).expect("layout");
        assert_eq!(f.error_log.as_ref().map(tag_of).as_deref(), Some("err"));
    }

    #[test]
    fn a_count_that_does_not_match_is_refused() {
        let c = WorkerFdCounts {
            listeners: 2,
            spawner: true,
            ..Default::default()
        };
        assert_eq!(
            WorkerFds::from_vec(&c, vec![1, 2, 3]).map(|f| f.spawner),
            Ok(Some(3))
        );
        assert!(WorkerFds::from_vec(&c, vec![1, 2]).is_err());
        assert!(WorkerFds::from_vec(&c, vec![1, 2, 3, 4]).is_err());
        let none = WorkerFds::<u8> {
            listeners: Vec::new(),
            error_log: None,
            access_logs: Vec::new(),
            one_shot: None,
            spawner: None,
            counters: None,
        };
        assert_eq!(none.counts(), WorkerFdCounts::default());
        let many = WorkerFds {
            listeners: vec![0u8; MAX_FDS + 1],
            ..none
        };
        assert!(many.into_vec().is_err());
    }

    #[test]
    fn a_one_shot_without_write_side() {
        let c = WorkerFdCounts {
            one_shot: Some(OneShot { has_out: false }),
            error_log: true,
            ..Default::default()
        };
        let f = WorkerFds::from_vec(&c, vec![1, 2]).expect("layout");
        assert_eq!((f.error_log, f.one_shot), (Some(1), Some((2, None))));
    }
}
