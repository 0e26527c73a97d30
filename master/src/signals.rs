//! Signals as events of the master's poll loop (signal-hook-mio's self-pipe),
//! with the sender's uid and pid kept for the log, as lighttpd logs
//! "server stopped by UID = .. PID = ..".

use mio::{Interest, Registry, Token};
use signal_hook_mio::v1_0::Signals as Pipe;
use std::io;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

pub use libc::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1};

const HANDLED: [i32; 5] = [SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1];

/// Last sender of each signal number (pid 0: unknown).
static SENDER_PID: [AtomicI32; 32] = [const { AtomicI32::new(0) }; 32];
static SENDER_UID: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];

/// One received signal and who sent it (uid, pid), when known.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub signal: i32,
    pub sender: Option<(u32, i32)>,
}

pub struct Signals {
    pipe: Pipe,
}

impl Signals {
    pub fn new(registry: &Registry, token: Token) -> io::Result<Signals> {
        for sig in [SIGHUP, SIGINT, SIGTERM, SIGUSR1] {
            // SAFETY: the action only reads the kernel-provided siginfo and stores
            // two integers in atomics: async-signal-safe, no allocation, no locks.
            // It is registered before the self-pipe action, so it has run by the
            // time the loop wakes up.
            unsafe {
                signal_hook_registry::register_sigaction(sig, move |info: &libc::siginfo_t| {
                    let (pid, uid) = (info.si_pid(), info.si_uid());
                    if let Ok(i) = usize::try_from(sig) {
                        if i < 32 {
                            SENDER_UID[i].store(uid, Ordering::Relaxed);
                            SENDER_PID[i].store(pid, Ordering::Relaxed);
                        }
                    }
                })?;
            }
        }
        let mut pipe = Pipe::new(HANDLED)?;
        registry.register(&mut pipe, token, Interest::READABLE)?;
        Ok(Signals { pipe })
    }

    /// Everything pending (each signal number at most once per call).
    pub fn pending(&mut self) -> Vec<Received> {
        self.pipe
            .pending()
            .map(|signal| {
                let i = usize::try_from(signal).unwrap_or(0).min(31);
                let pid = SENDER_PID[i].load(Ordering::Relaxed);
                let uid = SENDER_UID[i].load(Ordering::Relaxed);
                Received {
                    signal,
                    sender: (pid > 0).then_some((uid, pid)),
                }
            })
            .collect()
    }
}
