//! The error log the master owns: a file (opened here, handed to workers as an fd),
//! a piped logger (`"|command"`, run as server.username, started again when it
//! dies; the master keeps the pipe's read end so that nothing written meanwhile is
//! lost), syslog (only the master talks to it; workers send their lines over IPC),
//! or stderr. Files are reopened on SIGHUP.

use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wick_conf::ServerOptions;
use wick_proto::log::{format_line, now_unix, timestamp};
use wick_proto::Level;

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Where lines go, derived from server.errorlog / server.errorlog-use-syslog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Stderr,
    File(PathBuf),
    /// server.syslog-facility (default "daemon").
    Syslog(String),
    /// `"|command"`, run by /bin/sh as server.username / server.groupname.
    Pipe {
        cmd: String,
        user: Option<String>,
        group: Option<String>,
    },
}

/// Where a log file named in the config is: inside server.chroot when the
/// workers are chrooted (started as root), since lighttpd opens its logs after
/// chroot(2); else absolute, so that SIGHUP reopens the same file after chdir("/").
pub(crate) fn file_path(opts: &ServerOptions, p: &str) -> PathBuf {
    match opts.chroot.as_deref() {
        Some(root) if !root.is_empty() && nix::unistd::geteuid().is_root() => {
            let root = std::path::absolute(root).unwrap_or_else(|_| PathBuf::from(root));
            root.join(p.trim_start_matches('/'))
        }
        _ => std::path::absolute(p).unwrap_or_else(|_| PathBuf::from(p)),
    }
}

impl Target {
    pub fn of(opts: &ServerOptions) -> Target {
        if opts.errorlog_use_syslog {
            Target::Syslog(
                opts.syslog_facility
                    .clone()
                    .unwrap_or_else(|| "daemon".into()),
            )
        } else {
            match opts.errorlog.as_deref() {
                Some(p) if p.starts_with('|') => Target::Pipe {
                    cmd: p[1..].to_string(),
                    user: opts.username.clone().filter(|u| !u.is_empty()),
                    group: opts.groupname.clone().filter(|g| !g.is_empty()),
                },
                Some(p) if !p.is_empty() => Target::File(file_path(opts, p)),
                _ => Target::Stderr,
            }
        }
    }
}

enum Sink {
    Stderr,
    File(File),
    /// None while syslog is unreachable; retried on the next line.
    Syslog(Option<Box<Syslog>>, syslog::Facility),
    Pipe(Box<Piped>),
}

/// A piped logger: its pipe (both ends kept) and its process.
struct Piped {
    write: File,
    read: OwnedFd,
    pid: Option<Pid>,
    started: Instant,
    restart_at: Option<Instant>,
    quick: u32,
}

/// A logger that lived this long is restarted at once; one that died sooner
/// waits, 250 ms doubling up to 5 s (lighttpd retries every 5 s).
const LOGGER_STABLE: Duration = Duration::from_secs(5);
const LOGGER_FIRST_DELAY: Duration = Duration::from_millis(250);
const LOGGER_MAX_DELAY: Duration = Duration::from_secs(5);

/// The pipe only: its logger is started by the master's loop (on_timers), so that
/// it is the daemon's child, which reaps it and starts it again.
fn open_pipe() -> io::Result<Piped> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // Nobody may block on a full pipe (a stopped logger): the master and the
    // workers (which share this file description) drop lines instead.
    nix::fcntl::fcntl(
        &write,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok(Piped {
        write: File::from(write),
        read,
        pid: None,
        started: Instant::now(),
        restart_at: Some(Instant::now()),
        quick: 0,
    })
}

pub struct ErrLog {
    target: Target,
    sink: Sink,
}

/// Open a log file for appending (create 0644, close-on-exec).
pub(crate) fn open_file(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn facility(name: &str) -> syslog::Facility {
    name.parse().unwrap_or(syslog::Facility::LOG_DAEMON)
}

fn open_syslog(facility: syslog::Facility) -> Option<Box<Syslog>> {
    let fmt = syslog::Formatter3164 {
        facility,
        hostname: None,
        process: "wickd".into(),
        pid: std::process::id(),
    };
    syslog::unix(fmt).ok().map(Box::new)
}

impl ErrLog {
    /// Until the configured log is open, lines go to stderr.
    pub fn stderr() -> ErrLog {
        ErrLog {
            target: Target::Stderr,
            sink: Sink::Stderr,
        }
    }

    pub fn open(target: Target) -> io::Result<ErrLog> {
        let sink = match &target {
            Target::Stderr => Sink::Stderr,
            Target::File(p) => Sink::File(open_file(p).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("opening errorlog '{}' failed: {e}", p.display()),
                )
            })?),
            Target::Syslog(f) => {
                let f = facility(f);
                Sink::Syslog(open_syslog(f), f)
            }
            Target::Pipe { cmd, .. } => Sink::Pipe(Box::new(open_pipe().map_err(|e| {
                io::Error::new(e.kind(), format!("opening errorlog \"|{cmd}\" failed: {e}"))
            })?)),
        };
        Ok(ErrLog { target, sink })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// SIGHUP: open the path again (logrotate moved the old file away). A pipe
    /// stays as it is.
    pub fn reopen(&mut self) -> io::Result<()> {
        match &self.target {
            Target::File(p) => self.sink = Sink::File(open_file(p)?),
            Target::Syslog(f) => {
                let f = facility(f);
                self.sink = Sink::Syslog(open_syslog(f), f)
            }
            Target::Stderr | Target::Pipe { .. } => {}
        }
        Ok(())
    }

    /// A child the master did not start as a worker exited: if it was our piped
    /// logger, plan its restart and return a line for the log.
    pub fn reaped(&mut self, dead: Pid, how: &str) -> Option<String> {
        let (Sink::Pipe(p), Target::Pipe { cmd, .. }) = (&mut self.sink, &self.target) else {
            return None;
        };
        if p.pid != Some(dead) {
            return None;
        }
        p.pid = None;
        let delay = if p.started.elapsed() >= LOGGER_STABLE {
            p.quick = 0;
            Duration::ZERO
        } else {
            p.quick += 1;
            (LOGGER_FIRST_DELAY * (1 << (p.quick - 1).min(5))).min(LOGGER_MAX_DELAY)
        };
        p.restart_at = Some(Instant::now() + delay);
        Some(format!(
            "piped error logger \"{cmd}\" (pid {dead}) {how}; starting it again in {} ms",
            delay.as_millis()
        ))
    }

    /// When the piped logger is due to be started again.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.sink {
            Sink::Pipe(p) => p.restart_at,
            _ => None,
        }
    }

    /// Start the piped logger again when due; Err is a line for the log.
    pub fn on_timers(&mut self, now: Instant) -> Result<(), String> {
        let (Sink::Pipe(p), Target::Pipe { cmd, user, group }) = (&mut self.sink, &self.target)
        else {
            return Ok(());
        };
        if p.restart_at.is_none_or(|r| r > now) {
            return Ok(());
        }
        match crate::accesslog::spawn_logger(cmd, &p.read, user.as_deref(), group.as_deref()) {
            Ok(pid) => {
                p.pid = Some(pid);
                p.started = now;
                p.restart_at = None;
                Ok(())
            }
            Err(e) => {
                p.restart_at = Some(now + LOGGER_MAX_DELAY);
                Err(format!("starting piped error logger \"{cmd}\" failed: {e}"))
            }
        }
    }

    /// The fd a worker writes its lines to; None for syslog (lines come over IPC).
    pub fn worker_fd(&self) -> Option<OwnedFd> {
        match &self.sink {
            Sink::File(f) => f.as_fd().try_clone_to_owned().ok(),
            Sink::Pipe(p) => p.write.as_fd().try_clone_to_owned().ok(),
            Sink::Stderr => io::stderr().as_fd().try_clone_to_owned().ok(),
            Sink::Syslog(..) => None,
        }
    }

    /// One line from the master: `(source) message`, timestamped for files.
    pub fn write(&mut self, level: Level, source: &str, msg: std::fmt::Arguments<'_>) {
        match &mut self.sink {
            Sink::Syslog(..) => self.syslog(level, &format!("({source}) {msg}")),
            _ => self.raw(&format_line(source, msg)),
        }
    }

    /// A line a child sent over IPC (it has no fd of its own for the log).
    pub fn child_line(&mut self, level: Level, line: &str) {
        let line = line.trim_end_matches('\n');
        match &mut self.sink {
            Sink::Syslog(..) => self.syslog(level, line),
            _ => {
                // Children send "(source) message"; add the timestamp unless present.
                if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    self.raw(&format!("{line}\n"))
                } else {
                    self.raw(&format!("{}: {line}\n", timestamp(now_unix())))
                }
            }
        }
    }

    fn raw(&mut self, line: &str) {
        // One write per line (O_APPEND); a failing log must not stop the server.
        let _ = match &mut self.sink {
            Sink::File(f) => f.write_all(line.as_bytes()),
            Sink::Pipe(p) => p.write.write_all(line.as_bytes()),
            _ => io::stderr().write_all(line.as_bytes()),
        };
    }

    fn syslog(&mut self, level: Level, line: &str) {
        let Sink::Syslog(slot, f) = &mut self.sink else {
            return;
        };
        if slot.is_none() {
            *slot = open_syslog(*f);
        }
        let Some(l) = slot else { return };
        let r = match level {
            Level::Error => l.err(line),
            Level::Warning => l.warning(line),
            Level::Info => l.info(line),
            Level::Debug => l.debug(line),
        };
        if r.is_err() {
            // syslogd went away: the crate does not reconnect, so we do next time.
            *slot = None;
        }
    }
}

/// `elog!(log, "fmt", args)`: an error-log line with lighttpd's `(file.line)` source.
#[macro_export]
macro_rules! elog {
    ($log:expr, $($arg:tt)*) => {
        $log.write(
            wick_proto::Level::Error,
            &format!("{}.{}", $crate::errlog::basename(file!()), line!()),
            format_args!($($arg)*),
        )
    };
}

pub fn basename(path: &'static str) -> &'static str {
    path.rsplit('/').next().unwrap_or(path)
}
