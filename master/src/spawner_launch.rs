//! The gateway-spawner as the master sees it: one per generation (when the config
//! loads mod_cgi), started like a worker and kept in the generation's last slot, and
//! the socketpair the master makes for every worker of that generation, one end to
//! the worker and the other to the spawner (`ToWorker::SpawnerChannel` to both). The
//! spawner's control channel speaks the workers' protocol minus the listeners.

use crate::spawn::{self, Role};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use wick_conf::Config;
use wick_proto::{Channel, MasterEnd, ToWorker, PROTO_VERSION};

/// Does this config need a spawner? (mod_cgi is the module that starts processes.)
pub fn needed(config: &Config) -> bool {
    config
        .server
        .effective_modules()
        .iter()
        .any(|m| m == "mod_cgi")
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

/// The spawner's start-up conversation: Hello, Config, the error log fd, Start.
pub fn send_start(
    ch: &MasterEnd,
    gen: u64,
    config: &Config,
    log_fd: Option<OwnedFd>,
) -> io::Result<()> {
    spawn::send(
        ch,
        &ToWorker::Hello {
            proto: PROTO_VERSION,
            generation: gen,
            worker_id: 0,
        },
        &[],
    )?;
    spawn::send(ch, &ToWorker::Config(Box::new(config.clone())), &[])?;
    match &log_fd {
        Some(fd) => spawn::send(ch, &ToWorker::ErrorLog { has_fd: true }, &[fd.as_fd()])?,
        None => spawn::send(ch, &ToWorker::ErrorLog { has_fd: false }, &[])?,
    }
    spawn::send(ch, &ToWorker::Start, &[])
}

/// A new socketpair between worker `worker_id` and the spawner: one end to each.
pub fn connect(spawner: &MasterEnd, worker: &MasterEnd, worker_id: u32) -> io::Result<()> {
    let (a, b) = Channel::pair()?;
    let msg = ToWorker::SpawnerChannel { worker_id };
    spawn::send(spawner, &msg, &[a.as_fd()])?;
    spawn::send(worker, &msg, &[b.as_fd()])
}
