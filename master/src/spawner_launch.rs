//! The gateway-spawner as the master sees it: one per generation (when the config
//! loads mod_cgi or has bin-path backends to start), started like a worker and kept
//! in the generation's last slot, and
//! the socketpair the master makes for every worker of that generation, one end to
//! the worker (in its setup, or by `ToWorker::SpawnerChannel` after a spawner
//! restart) and the other to the spawner (`ToWorker::SpawnerChannel`). The spawner
//! starts with its own setup, `ToWorker::SpawnerSetup`.

use crate::spawn::{self, Role};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use wick_conf::Config;
use wick_proto::setup::{SpawnerFds, SpawnerSetup};
use wick_proto::{Channel, MasterEnd, ToWorker, PROTO_VERSION};

/// Does this config need a spawner? (mod_cgi starts scripts; a fastcgi.server or
/// scgi.server host with bin-path is a backend the spawner starts.)
pub fn needed(config: &Config) -> bool {
    config
        .server
        .effective_modules()
        .iter()
        .any(|m| m == "mod_cgi")
        || wick_conf::spawn::any(config)
}

/// Must the workers wait for the spawner's Ready? Yes when it starts backends:
/// a worker must not connect before their sockets exist (at the first start) or
/// are the new generation's (after a graceful restart).
pub fn workers_wait(config: &Config) -> bool {
    wick_conf::spawn::any(config)
}

/// Slots of a generation: the workers, then the spawner if the config needs one.
pub fn slot_count(config: &Config, workers: u32) -> u32 {
    workers + u32::from(needed(config))
}

/// The order in which a new generation's slots start: the spawner first, so that
/// every worker gets its channel to it before it starts serving.
pub fn start_order(config: &Config, workers: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..workers as usize).collect();
    if needed(config) {
        order.insert(0, workers as usize);
    }
    order
}

/// What runs in `slot` of a generation with `workers` workers.
pub fn role_of(config: &Config, workers: u32, slot: usize) -> Role {
    if needed(config) && slot == workers as usize {
        Role::Spawner
    } else {
        Role::Worker {
            id: slot as u32 + 1,
        }
    }
}

/// The slot a child of `role` occupies.
pub fn slot_of(role: Role, workers: u32) -> usize {
    match role {
        Role::Worker { id } => id as usize - 1,
        Role::Spawner => workers as usize,
    }
}

/// The spawner's setup: its slice of the config and the error log fd, in one
/// message. Worker channels follow, one `SpawnerChannel` each.
pub fn send_start(
    ch: &MasterEnd,
    gen: u64,
    config: &Config,
    log_fd: Option<OwnedFd>,
) -> io::Result<()> {
    let fds = SpawnerFds {
        error_log: log_fd.as_ref().map(|f| f.as_fd()),
    };
    let setup = SpawnerSetup {
        proto: PROTO_VERSION,
        generation: gen,
        config: wick_gateway_spawner::policy::slice(config),
        fds: fds.counts(),
    };
    let fds = fds.into_vec().map_err(io::Error::other)?;
    spawn::send(ch, &ToWorker::SpawnerSetup(Box::new(setup)), &fds)
}

/// A new socketpair for worker `worker_id`: one end to the spawner now, the other
/// returned for the worker's setup.
pub fn connect_new(spawner: &MasterEnd, worker_id: u32) -> io::Result<Channel> {
    let (a, b) = Channel::pair()?;
    spawn::send(
        spawner,
        &ToWorker::SpawnerChannel { worker_id },
        &[a.as_fd()],
    )?;
    Ok(b)
}

/// A new socketpair between a running worker and a restarted spawner: one end to
/// each.
pub fn connect(spawner: &MasterEnd, worker: &MasterEnd, worker_id: u32) -> io::Result<()> {
    let b = connect_new(spawner, worker_id)?;
    spawn::send(
        worker,
        &ToWorker::SpawnerChannel { worker_id },
        &[b.as_fd()],
    )
}
