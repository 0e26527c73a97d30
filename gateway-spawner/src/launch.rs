//! Start one script from a checked [`Plan`]: three pipes, then fork + exec with a clean
//! environment, in a new session (so its whole process group can be killed), with the
//! plan's credentials, in the script's directory (as lighttpd does).
//!
//! The spawner does not wait for the exec: it answers the worker as soon as the
//! child exists, so one slow exec never holds up the other requests (std's
//! `Command` would block until the exec is done). A failed exec is reported by
//! the child on its stderr, which the worker writes to the error log, and the
//! request ends as one whose script printed nothing: 500, as in lighttpd.

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
        for sig in [
            libc::SIGPIPE,
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
        ] {
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
