//! Start one script from a checked [`Plan`]: three pipes, then fork + exec with a clean
//! environment, in a new session (so its whole process group can be killed), with the
//! plan's credentials, in the script's directory (as lighttpd does).

use crate::policy::Plan;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

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

pub fn start(plan: &Plan) -> io::Result<Started> {
    let (in_r, in_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    let Some((program, args)) = plan.argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty argv"));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(in_r))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));

    // Everything the child uses is prepared here: between fork and exec only raw
    // syscalls, no allocation.
    let dir = plan.dir.as_raw_fd();
    let creds = plan.creds.as_ref().map(|id| {
        let groups: Vec<libc::gid_t> = if id.groups.is_empty() {
            vec![id.gid]
        } else {
            id.groups.clone()
        };
        (id.uid, id.gid, groups)
    });
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (setsid, setgroups, setresgid, setresuid, fchdir,
    // sigprocmask, signal) on data prepared before the fork; it neither allocates
    // nor takes locks. Errors are returned as raw OS errors.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some((uid, gid, groups)) = &creds {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setresgid(*gid, *gid, *gid) != 0
                    || libc::setresuid(*uid, *uid, *uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // After the switch, so the directory is entered with the script's rights.
            if libc::fchdir(dir) != 0 {
                return Err(io::Error::last_os_error());
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
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // `cmd` holds the child's ends; dropping it closes them here.
    drop(cmd);
    Ok(Started {
        pid: child.id() as i32,
        stdin: in_w,
        stdout: out_r,
        stderr: err_r,
    })
}
