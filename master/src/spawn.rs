//! Starting children: fork + exec of the running binary with a role, its channel
//! to the master on fd 3. Exec (not a bare fork) gives every child a fresh address
//! space layout and none of the master's state. The binary path is resolved once
//! at start, so `comm` stays "wickd" and `ps` shows "wickd: worker N".

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use wick_proto::{Channel, MasterEnd, ToWorker, ROLE_ENV, ROLE_IPC_FD};

/// What a child is. A new role is a variant here plus a dispatch line in main.rs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Worker {
        id: u32,
    },
    /// The gateway-spawner of a generation (spawner_launch.rs).
    Spawner,
}

impl Role {
    /// The value of [`ROLE_ENV`] that main.rs dispatches on.
    pub fn env_value(&self) -> &'static str {
        match self {
            Role::Worker { .. } => "worker",
            Role::Spawner => "gateway-spawner",
        }
    }

    /// argv[0], what `ps` shows.
    pub fn title(&self) -> String {
        match self {
            Role::Worker { id } => format!("wickd: worker {id}"),
            Role::Spawner => "wickd: gateway-spawner".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Role::Worker { id } => format!("worker {id}"),
            Role::Spawner => "gateway-spawner".into(),
        }
    }
}

/// argv[0] of the master, after it re-executed itself to get it.
pub const MASTER_TITLE: &str = "wickd: master";

/// The binary's path and the identity (device, inode) of the file found there at
/// start.
static EXE: OnceLock<(PathBuf, (u64, u64))> = OnceLock::new();

fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Record the running binary; call once, early (main.rs).
pub fn resolve_exe() {
    if let (Ok(path), Some(id)) = (
        std::env::current_exe(),
        file_id(Path::new("/proc/self/exe")),
    ) {
        let _ = EXE.set((path, id));
    }
}

/// What to exec for a child: the running binary's path, so that `comm` is
/// "wickd". If that file was replaced since the start (a package upgrade), the
/// running image itself, through /proc/self/exe: children must speak the
/// master's protocol; a new binary takes over only when wickd is restarted.
pub fn exe() -> io::Result<PathBuf> {
    let Some((path, id)) = EXE.get() else {
        return std::env::current_exe();
    };
    if file_id(path) == Some(*id) {
        Ok(path.clone())
    } else {
        Ok(PathBuf::from("/proc/self/exe"))
    }
}

/// Re-execute the master with argv[0] = "wickd: master" so that `ps` shows the
/// role. Returns only if that is already done or the exec failed (then the
/// process simply keeps its original name). The pid does not change.
pub fn retitle_master(args: &[std::ffi::OsString]) {
    if args.first().is_some_and(|a| a == MASTER_TITLE) {
        return;
    }
    let Ok(exe) = exe() else { return };
    let err = Command::new(exe)
        .arg0(MASTER_TITLE)
        .args(args.iter().skip(1))
        .exec();
    let _ = err;
}

/// A started child: its pid and the master's end of its channel.
pub struct Spawned {
    pub pid: nix::unistd::Pid,
    pub channel: MasterEnd,
}

/// fork + exec `role`. The child gets its channel on fd 3, stdin/stdout on
/// /dev/null, the master's stderr, SIGINT/SIGHUP/SIGUSR1 ignored (the master alone
/// decides on shutdown, reload and log reopening: a Ctrl-C on the terminal reaches
/// the whole process group), and SIGKILL when the master dies.
/// `cpu`: the child binds itself to it before exec (affinity.rs); a bind the
/// kernel refuses is left for the caller to notice.
pub fn spawn(role: Role, cpu: Option<usize>) -> io::Result<Spawned> {
    let cpus = cpu.and_then(crate::affinity::only);
    let (ours, theirs) = Channel::pair()?;
    let child_fd = theirs.as_raw_fd();
    let master = nix::unistd::getpid().as_raw();
    let mut cmd = Command::new(exe()?);
    cmd.arg0(role.title())
        .env(ROLE_ENV, role.env_value())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe raw syscalls (dup2, fcntl, sigaction via signal, prctl,
    // getppid, sched_setaffinity, _exit); it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            if child_fd == ROLE_IPC_FD {
                if libc::fcntl(child_fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(child_fd, ROLE_IPC_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            for sig in [libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
                libc::signal(sig, libc::SIG_IGN);
            }
            // Die with the master. setresuid clears this: the child sets it again
            // after dropping privileges (and EOF on the channel is a second guard).
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            // The master may have died before prctl took effect.
            if libc::getppid() != master {
                libc::_exit(1);
            }
            if let Some(set) = &cpus {
                let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set);
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // The master reaps with waitpid(-1); std's Child handle is not needed.
    drop(child);
    ours.set_nonblocking(true)?;
    // A child that stops reading must not hang the master in a blocking send.
    let tv = nix::sys::time::TimeVal::new(5, 0);
    nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::SendTimeout, &tv)?;
    Ok(Spawned {
        pid,
        channel: MasterEnd::new(ours),
    })
}

/// Send one message on a master-side channel. The channel is non-blocking for the
/// event loop; a message may span several datagrams, so the send itself blocks
/// (bounded by SO_SNDTIMEO) rather than stop half-way.
pub fn send(ch: &MasterEnd, msg: &ToWorker, fds: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<()> {
    ch.set_nonblocking(false)?;
    let r = ch.send(msg, fds);
    ch.set_nonblocking(true)?;
    r
}
