//! Becoming a daemon (without -D) so that the parent learns whether start-up
//! worked, and the pid file.

use nix::unistd::{fork, setsid, ForkResult, Pid};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The daemon's end of the pipe its original parent waits on.
pub struct Readiness {
    pipe: File,
}

impl Readiness {
    /// Start-up worked: the parent exits 0.
    pub fn ready(mut self) {
        let _ = self.pipe.write_all(&[0]);
    }

    /// Start-up failed: the parent prints `reason` and exits nonzero.
    pub fn failed(mut self, reason: &str) {
        let mut msg = vec![1u8];
        msg.extend_from_slice(reason.as_bytes());
        let _ = self.pipe.write_all(&msg);
    }
}

fn devnull_stdio() -> io::Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

/// Double fork with setsid, chdir("/"), stdio on /dev/null. Returns in the daemon;
/// the original process stays behind until the daemon reports, then exits with
/// 0 (ready) or 1 (failed, reason on stderr). Call while single-threaded.
pub fn daemonize() -> io::Result<Readiness> {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the master is single-threaded here (no threads are ever started in it).
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(w);
            std::process::exit(wait_for_daemon(File::from(r), child));
        }
        ForkResult::Child => {}
    }
    drop(r);
    setsid()?;
    // SAFETY: still single-threaded.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            // SAFETY: _exit skips atexit handlers and buffered-stream flushes that
            // belong to the parent; nothing else is needed here.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {}
    }
    std::env::set_current_dir("/")?;
    devnull_stdio()?;
    Ok(Readiness {
        pipe: File::from(w),
    })
}

fn wait_for_daemon(mut pipe: File, child: Pid) -> i32 {
    let mut buf = Vec::new();
    let _ = pipe.read_to_end(&mut buf);
    let _ = nix::sys::wait::waitpid(child, None);
    match buf.split_first() {
        Some((0, _)) => 0,
        Some((_, reason)) if !reason.is_empty() => {
            eprintln!(
                "wickd: daemonized server failed to start: {}",
                String::from_utf8_lossy(reason)
            );
            1
        }
        _ => {
            eprintln!("wickd: daemonized server failed to start; check error log for details");
            1
        }
    }
}

/// server.pid-file: created before the daemon forks (so a live owner is reported
/// on the terminal), written with the daemon's pid, removed at exit.
pub struct PidFile {
    path: PathBuf,
    file: Option<File>,
}

fn alive(pid: i32) -> bool {
    pid > 0
        && match nix::sys::signal::kill(Pid::from_raw(pid), None) {
            Ok(()) => true,
            Err(e) => e == nix::errno::Errno::EPERM,
        }
}

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile, String> {
        let open = |excl: bool| {
            let mut o = OpenOptions::new();
            o.write(true).mode(0o644).custom_flags(libc::O_CLOEXEC);
            if excl {
                o.create_new(true);
            } else {
                o.create(true).truncate(true);
            }
            o.open(path)
        };
        match open(true) {
            Ok(f) => {
                return Ok(PidFile {
                    path: path.to_path_buf(),
                    file: Some(f),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("opening pid-file failed: {}: {e}", path.display())),
        }
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("stating existing pid-file failed: {}: {e}", path.display()))?;
        if !meta.file_type().is_file() || meta.file_type().is_fifo() {
            return Err(format!(
                "pid-file exists and isn't regular file: {}",
                path.display()
            ));
        }
        let old = std::fs::read_to_string(path).unwrap_or_default();
        if let Ok(pid) = old.trim().parse::<i32>() {
            if pid != std::process::id() as i32 && alive(pid) {
                return Err(format!(
                    "pid-file {} names process {pid}, which is running; is wickd already started?",
                    path.display()
                ));
            }
        }
        // Stale (its process is gone): take it over.
        let f =
            open(false).map_err(|e| format!("opening pid-file failed: {}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            file: Some(f),
        })
    }

    pub fn write_pid(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.set_len(0)?;
            f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        }
        Ok(())
    }

    pub fn remove(&self) {
        if self.file.is_some() {
            // Created or taken over, never written: start-up failed.
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        // Only if it still names us: another instance may have taken it over.
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
