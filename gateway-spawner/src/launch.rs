//! Start one script from a checked [`Plan`]: three pipes, then fork + exec with a clean
//! environment, in a new session (so its whole process group can be killed), with the
//! plan's credentials, in the script's directory (as lighttpd does). And start one
//! backend process ([`start_backend`]): its listening socket on fd 0.
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

/// uid, gid and the supplementary groups (the primary one when none) a child
/// takes, made before the fork.
type Creds = (libc::uid_t, libc::gid_t, Vec<libc::gid_t>);

fn creds_of(id: &crate::users::Identity) -> Creds {
    let groups = if id.groups.is_empty() {
        vec![id.gid]
    } else {
        id.groups.clone()
    };
    (id.uid, id.gid, groups)
}

/// In a forked child: take `creds` for good (groups first, then gid, then
/// uid, while the rights to change them last). False: a call failed.
///
/// # Safety
/// Only in the child between fork and exec: it makes raw system calls and
/// nothing else (no allocation, no lock).
unsafe fn switch_to((uid, gid, groups): &Creds) -> bool {
    // SAFETY: `groups` is a live Vec for the call; the id calls take plain ints.
    unsafe {
        libc::setgroups(groups.len(), groups.as_ptr()) == 0
            && libc::setresgid(*gid, *gid, *gid) == 0
            && libc::setresuid(*uid, *uid, *uid) == 0
    }
}

/// In a forked child, before exec: a clean start, nothing blocked and the
/// default dispositions for what wickd changed.
///
/// # Safety
/// Only in the child between fork and exec (raw system calls, nothing else).
unsafe fn reset_signals() {
    // SAFETY: `set` is a local sigset_t that sigemptyset initialises before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in RESET_SIGNALS {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

fn c_string(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte"))
}

/// Everything the child uses, made before the fork: after it, only raw syscalls.
struct ChildPlan {
    /// stdin, stdout, stderr of the script.
    stdio: [RawFd; 3],
    dir: RawFd,
    creds: Option<Creds>,
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
        creds: plan.creds.as_ref().map(creds_of),
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
        if c.creds.as_ref().is_some_and(|cr| !switch_to(cr)) {
            fail(c);
        }
        // After the switch, so the directory is entered with the script's rights.
        if libc::fchdir(c.dir) != 0 {
            fail(c);
        }
        reset_signals();
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

/// A backend process (a bin-path host) to start: its listening socket on fd 0
/// (FCGI_LISTENSOCK_FILENO, as spawn-fcgi and lighttpd pass it), stdout on
/// /dev/null, stderr on the error log; a session of its own; the credentials;
/// the program's directory as working directory (lighttpd's); death with the
/// spawner (`pdeathsig`).
pub struct BackendExec<'a> {
    /// The file executed (absolute).
    pub program: &'a CString,
    pub argv: &'a [CString],
    pub env: &'a [CString],
    pub listener: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub dir: Option<RawFd>,
    pub creds: Option<&'a crate::users::Identity>,
    pub pdeathsig: libc::c_int,
}

/// Everything the backend child uses, made before the fork.
struct BackendChild {
    stdio: [RawFd; 3],
    dir: Option<RawFd>,
    creds: Option<Creds>,
    program: *const libc::c_char,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    pdeathsig: libc::c_int,
    parent: libc::pid_t,
    /// Write end of the exec-status pipe (close-on-exec): an errno comes back on
    /// it when the exec fails, nothing when it succeeds.
    report: RawFd,
}

/// Start a backend; returns its pid once the exec has happened (a failed exec is
/// an error carrying the child's errno).
pub fn start_backend(b: &BackendExec<'_>) -> io::Result<i32> {
    // Pipe ends above 2 so that the child's dup2 onto 0..2 cannot clobber them.
    let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
    for fd in [b.listener, b.stdout, b.stderr, r.as_raw_fd(), w.as_raw_fd()] {
        if fd <= 2 {
            return Err(io::Error::other(format!(
                "descriptor {fd} would be overwritten in the backend"
            )));
        }
    }
    let child = BackendChild {
        stdio: [b.listener, b.stdout, b.stderr],
        dir: b.dir,
        creds: b.creds.map(creds_of),
        program: b.program.as_ptr(),
        argv: b
            .argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect(),
        envp: b
            .env
            .iter()
            .map(|e| e.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect(),
        pdeathsig: b.pdeathsig,
        parent: std::process::id() as libc::pid_t,
        report: w.as_raw_fd(),
    };
    // SAFETY: the spawner is single-threaded; the child runs only
    // `exec_backend`, raw syscalls on `child` (alive in this frame), and never
    // returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the forked child, see above.
        unsafe { exec_backend(&child) }
    }
    drop(w);
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        // SAFETY: read into our own buffer from the pipe's read end.
        let n = unsafe { libc::read(r.as_raw_fd(), buf[got..].as_mut_ptr().cast(), 4 - got) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    if got == 0 {
        return Ok(pid);
    }
    // The exec failed: the child has exited (or is about to); reap it here.
    let mut st = 0;
    // SAFETY: waitpid on the child we just forked.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
}

/// The forked backend child: descriptors, session, credentials, death signal,
/// directory, signals, exec. On failure the errno goes to the report pipe and the
/// child exits 127.
///
/// # Safety
/// Only in the child of a fork, with every pointer in `c` valid.
unsafe fn exec_backend(c: &BackendChild) -> ! {
    // SAFETY: raw syscalls on fds and C strings prepared before the fork (the
    // caller's contract); nothing allocates or locks.
    unsafe {
        let fail = report_failure;
        for (target, &fd) in c.stdio.iter().enumerate() {
            // dup2 clears close-on-exec on the copy.
            if libc::dup2(fd, target as RawFd) < 0 {
                fail(c);
            }
        }
        if libc::setsid() < 0 {
            fail(c);
        }
        if c.creds.as_ref().is_some_and(|cr| !switch_to(cr)) {
            fail(c);
        }
        // After the credential change, which clears it; then make sure the
        // spawner did not die before it took effect.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            c.pdeathsig as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(c);
        }
        if libc::getppid() != c.parent {
            libc::_exit(1);
        }
        if let Some(dir) = c.dir {
            if libc::fchdir(dir) != 0 {
                fail(c);
            }
        }
        reset_signals();
        libc::execve(c.program, c.argv.as_ptr(), c.envp.as_ptr());
        fail(c)
    }
}

/// The backend child's errno to the report pipe, then exit 127.
///
/// # Safety
/// Only in the forked backend child.
unsafe fn report_failure(c: &BackendChild) -> ! {
    // SAFETY: errno of this thread, a write of our own buffer, _exit.
    unsafe {
        let e = (*libc::__errno_location()).to_ne_bytes();
        libc::write(c.report, e.as_ptr().cast(), e.len());
        libc::_exit(127)
    }
}
