//! Start one script from a checked [`Plan`]: three pipes, then fork + exec with a clean
//! environment, in a new session (so its whole process group can be killed), with the
//! plan's credentials, in the script's directory (as lighttpd does).
//!
//! A script that keeps the spawner's credentials starts with posix_spawn(3): its
//! vfork-style clone copies no page tables, the spawner waits only until the
//! exec begins, and a failed exec comes back as an error (500, logged). One that
//! runs as another user needs setgroups/setresuid first: fork, and the spawner
//! does not wait for the exec at all (std's `Command` would, serialising every
//! request behind it); a failed exec is told by the child on its stderr, which
//! the worker logs, and the request ends as one whose script printed nothing:
//! 500, as in lighttpd.

use crate::policy::Plan;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// A running script and the worker's ends of its pipes.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    /// Write end of the script's stdin.
    pub stdin: OwnedFd,
    /// Read end of its stdout.
    pub stdout: OwnedFd,
    /// Read end of its stderr.
    pub stderr: OwnedFd,
}

fn c_string(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte"))
}

/// Everything the child uses, made before the fork: after it, only raw syscalls.
struct ChildPlan {
    /// stdin, stdout, stderr of the script.
    stdio: [RawFd; 3],
    dir: RawFd,
    creds: Option<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>)>,
    program: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// "wickd: execve PROGRAM failed: errno " for the child to complete.
    failed: Vec<u8>,
}

pub fn start(plan: &Plan) -> io::Result<Started> {
    let (in_r, in_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    let Some(program) = plan.argv.first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
    };
    let args = plan
        .argv
        .iter()
        .map(|a| c_string(a))
        .collect::<io::Result<Vec<_>>>()?;
    let env = plan
        .env
        .iter()
        .map(|(k, v)| c_string(&format!("{k}={v}")))
        .collect::<io::Result<Vec<_>>>()?;
    let child = ChildPlan {
        stdio: [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        dir: plan.dir.as_raw_fd(),
        creds: plan.creds.as_ref().map(|id| {
            let groups = if id.groups.is_empty() {
                vec![id.gid]
            } else {
                id.groups.clone()
            };
            (id.uid, id.gid, groups)
        }),
        program: c_string(program)?,
        argv: args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect(),
        envp: env
            .iter()
            .map(|e| e.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect(),
        failed: format!("wickd: execve {program} failed: errno ").into_bytes(),
    };
    // Same user: posix_spawn, whose vfork-style clone copies no page tables and
    // leaves no copy-on-write faults behind; it reports a failed exec itself.
    if child.creds.is_none() && child.stdio.iter().all(|&fd| fd > 2) {
        let pid = spawn(&child)?;
        drop((in_r, out_w, err_w));
        return Ok(Started {
            pid,
            stdin: in_w,
            stdout: out_r,
            stderr: err_r,
        });
    }
    // SAFETY: the spawner is single-threaded, so the child may run anything; it
    // runs only `exec_child`, which makes raw syscalls on `child` (built above,
    // kept alive by this frame) and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the forked child, see above.
        unsafe { exec_child(&child) }
    }
    // The child's ends close here; `args`, `env` and `child` were only for it.
    drop((in_r, out_w, err_w));
    Ok(Started {
        pid,
        stdin: in_w,
        stdout: out_r,
        stderr: err_r,
    })
}

/// posix_spawn(3) with what `exec_child` does, for a script that keeps our
/// credentials: stdio, a new session, the directory, a clean signal state.
fn spawn(c: &ChildPlan) -> io::Result<i32> {
    let ok = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    };
    // SAFETY: the attribute and file-action objects are initialised before use
    // and destroyed after; every pointer passed (program, argv, envp, sigsets)
    // is valid for the call, and argv/envp end with a null pointer.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut at: libc::posix_spawnattr_t = std::mem::zeroed();
        ok(libc::posix_spawn_file_actions_init(&mut fa))?;
        if let Err(e) = ok(libc::posix_spawnattr_init(&mut at)) {
            libc::posix_spawn_file_actions_destroy(&mut fa);
            return Err(e);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        let mut dfl: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut dfl);
        for sig in RESET_SIGNALS {
            libc::sigaddset(&mut dfl, sig);
        }
        let flags = libc::POSIX_SPAWN_SETSID
            | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
            | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
        let mut pid: libc::pid_t = 0;
        let r = (|| {
            for (target, &fd) in c.stdio.iter().enumerate() {
                ok(libc::posix_spawn_file_actions_adddup2(
                    &mut fa,
                    fd,
                    target as RawFd,
                ))?;
            }
            ok(libc::posix_spawn_file_actions_addfchdir_np(&mut fa, c.dir))?;
            ok(libc::posix_spawnattr_setsigmask(&mut at, &none))?;
            ok(libc::posix_spawnattr_setsigdefault(&mut at, &dfl))?;
            ok(libc::posix_spawnattr_setflags(&mut at, flags))?;
            ok(libc::posix_spawn(
                &mut pid,
                c.program.as_ptr(),
                &fa,
                &at,
                c.argv.as_ptr().cast(),
                c.envp.as_ptr().cast(),
            ))
        })();
        libc::posix_spawnattr_destroy(&mut at);
        libc::posix_spawn_file_actions_destroy(&mut fa);
        r.map(|()| pid)
    }
}

/// Signals wickd handles or ignores, back to their defaults in a script.
const RESET_SIGNALS: [libc::c_int; 6] = [
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR1,
];

/// The forked child: stdio, session, credentials, directory, signals, exec. On any
/// failure, one line on stderr and exit 127.
///
/// # Safety
/// Only in the child of a fork, with every pointer in `c` valid.
unsafe fn exec_child(c: &ChildPlan) -> ! {
    // SAFETY: raw syscalls on fds and C strings prepared before the fork (the
    // caller's contract); nothing allocates or locks.
    unsafe {
        for (target, &fd) in c.stdio.iter().enumerate() {
            let target = target as RawFd;
            // dup2 clears close-on-exec on the copy; an fd already in place keeps it.
            let r = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if r < 0 {
                fail(c);
            }
        }
        if libc::setsid() < 0 {
            fail(c);
        }
        if let Some((uid, gid, groups)) = &c.creds {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setresgid(*gid, *gid, *gid) != 0
                || libc::setresuid(*uid, *uid, *uid) != 0
            {
                fail(c);
            }
        }
        // After the switch, so the directory is entered with the script's rights.
        if libc::fchdir(c.dir) != 0 {
            fail(c);
        }
        // A clean start: nothing blocked, default dispositions for what wickd changed.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in RESET_SIGNALS {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::execve(c.program.as_ptr(), c.argv.as_ptr(), c.envp.as_ptr());
        fail(c)
    }
}

/// Say why on stderr (the worker logs it), then exit 127 without running any
/// destructor or atexit handler of the spawner's.
///
/// # Safety
/// Only in the forked child.
unsafe fn fail(c: &ChildPlan) -> ! {
    // SAFETY: errno of this thread, writes of our own buffers, _exit.
    unsafe {
        let errno = *libc::__errno_location();
        let mut digits = [0u8; 12];
        let mut i = digits.len() - 1;
        digits[i] = b'\n';
        let mut n = errno.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        libc::write(2, c.failed.as_ptr().cast(), c.failed.len());
        libc::write(2, digits[i..].as_ptr().cast(), digits.len() - i);
        libc::_exit(127)
    }
}
