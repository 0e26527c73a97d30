//! mod_accesslog's master side: the targets of accesslog.filename, opened here and
//! handed to workers as fds — files (append; reopened on SIGHUP) and piped loggers
//! (`"|command"`, started here outside the worker sandbox as server.username, and
//! started again when they die: the master keeps the pipe's read end, so lines
//! written meanwhile wait in the pipe for the next logger) — and the syslog lines
//! workers send for accesslog.use-syslog.

use crate::spawn;
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wick_conf::Config;
use wick_proto::{MasterEnd, ToWorker, ROLE_ENV};

/// The role a piped logger's process starts in (main.rs), before it becomes
/// server.username and execs the command.
pub const LOGGER_ROLE: &str = "access-logger";
const ENV_CMD: &str = "WICKD_LOGGER_CMD";
const ENV_USER: &str = "WICKD_LOGGER_USER";
const ENV_GROUP: &str = "WICKD_LOGGER_GROUP";

/// A logger that lived at least this long is restarted at once; one that keeps
/// dying sooner waits longer each time, up to [`RESTART_DELAY`] (lighttpd retries
/// every 5 s).
const STABLE: Duration = Duration::from_secs(5);
const RESTART_DELAY: Duration = Duration::from_secs(5);
const FIRST_DELAY: Duration = Duration::from_millis(250);

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

enum Kind {
    File {
        path: PathBuf,
        fd: OwnedFd,
    },
    Pipe {
        cmd: String,
        read: OwnedFd,
        write: OwnedFd,
        pid: Option<Pid>,
        started: Instant,
        restart_at: Option<Instant>,
        /// Deaths in a row, each within [`STABLE`] of its start.
        quick: u32,
    },
}

struct Target {
    /// accesslog.filename as written.
    name: String,
    kind: Kind,
}

/// Every access log target of the live configurations.
#[derive(Default)]
pub struct AccessLogs {
    targets: Vec<Target>,
    user: Option<String>,
    group: Option<String>,
    facility: Option<String>,
    syslog: Option<Box<Syslog>>,
}

/// Log files are opened as the error log is (append, create 0644, close-on-exec).
fn open_file(path: &PathBuf) -> io::Result<OwnedFd> {
    crate::errlog::open_file(path).map(OwnedFd::from)
}

impl AccessLogs {
    /// Open (or reuse) every target `cfg` names, and start its piped loggers.
    pub fn prepare(&mut self, cfg: &Config) -> Result<(), String> {
        self.user = cfg.server.username.clone().filter(|u| !u.is_empty());
        self.group = cfg.server.groupname.clone().filter(|g| !g.is_empty());
        self.facility = cfg.server.syslog_facility.clone();
        for name in wick_worker::mods::accesslog::targets(cfg) {
            if self.targets.iter().any(|t| t.name == name) {
                continue;
            }
            let kind = match name.strip_prefix('|') {
                Some(cmd) => {
                    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                        .map_err(|e| format!("opening log '{name}' failed: pipe: {e}"))?;
                    let mut k = Kind::Pipe {
                        cmd: cmd.to_string(),
                        read,
                        write,
                        pid: None,
                        started: Instant::now(),
                        restart_at: None,
                        quick: 0,
                    };
                    self.start(&mut k)
                        .map_err(|e| format!("opening log '{name}' failed: {e}"))?;
                    k
                }
                None => {
                    let path = crate::errlog::file_path(&cfg.server, &name);
                    let fd = open_file(&path)
                        .map_err(|e| format!("opening log '{name}' failed: {e}"))?;
                    Kind::File { path, fd }
                }
            };
            self.targets.push(Target { name, kind });
        }
        Ok(())
    }

    /// Start (again) the logger of a pipe target.
    fn start(&self, k: &mut Kind) -> io::Result<()> {
        let Kind::Pipe {
            cmd,
            read,
            pid,
            started,
            restart_at,
            ..
        } = k
        else {
            return Ok(());
        };
        *pid = Some(spawn_logger(
            cmd,
            read,
            self.user.as_deref(),
            self.group.as_deref(),
        )?);
        *started = Instant::now();
        *restart_at = None;
        Ok(())
    }

    /// The fds for a worker running `cfg`, in the worker's target order.
    pub fn fds_for(&self, cfg: &Config) -> Result<Vec<BorrowedFd<'_>>, String> {
        wick_worker::mods::accesslog::targets(cfg)
            .iter()
            .map(|n| {
                self.targets
                    .iter()
                    .find(|t| &t.name == n)
                    .map(|t| match &t.kind {
                        Kind::File { fd, .. } => fd.as_fd(),
                        Kind::Pipe { write, .. } => write.as_fd(),
                    })
                    .ok_or_else(|| format!("access log '{n}' is not open"))
            })
            .collect()
    }

    /// Send a worker of `cfg` its access log fds (nothing when it has none).
    pub fn send(&self, ch: &MasterEnd, cfg: &Config) -> io::Result<()> {
        let fds = self.fds_for(cfg).map_err(io::Error::other)?;
        if fds.is_empty() {
            return Ok(());
        }
        spawn::send(
            ch,
            &ToWorker::AccessLogs {
                count: fds.len() as u32,
            },
            &fds,
        )
    }

    /// Forget targets no live configuration names. A dropped pipe's logger sees
    /// end-of-file once the last worker writing to it has exited.
    pub fn retain(&mut self, live: &[&Config]) {
        let keep: Vec<String> = live
            .iter()
            .flat_map(|c| wick_worker::mods::accesslog::targets(c))
            .collect();
        self.targets.retain(|t| keep.contains(&t.name));
    }

    /// SIGHUP: open the files again (logrotate moved them); pipes stay. Returns the
    /// failures, for the error log.
    pub fn reopen(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for t in &mut self.targets {
            if let Kind::File { path, fd } = &mut t.kind {
                match open_file(path) {
                    Ok(n) => *fd = n,
                    Err(e) => errors.push(format!("reopening access log '{}' failed: {e}", t.name)),
                }
            }
        }
        errors
    }

    /// A child the master did not start as a worker exited: if it was a logger,
    /// plan its restart. Returns a line for the error log.
    pub fn reaped(&mut self, dead: Pid, how: &str) -> Option<String> {
        let now = Instant::now();
        for t in &mut self.targets {
            if let Kind::Pipe {
                pid,
                started,
                restart_at,
                cmd,
                quick,
                ..
            } = &mut t.kind
            {
                if *pid == Some(dead) {
                    *pid = None;
                    let delay = if now.duration_since(*started) >= STABLE {
                        *quick = 0;
                        Duration::ZERO
                    } else {
                        *quick += 1;
                        (FIRST_DELAY * (1 << (*quick - 1).min(5))).min(RESTART_DELAY)
                    };
                    *restart_at = Some(now + delay);
                    return Some(format!(
                        "piped access logger \"{cmd}\" (pid {dead}) {how}; starting it again in {} ms",
                        delay.as_millis()
                    ));
                }
            }
        }
        None
    }

    /// When the next logger restart is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.targets
            .iter()
            .filter_map(|t| match &t.kind {
                Kind::Pipe { restart_at, .. } => *restart_at,
                Kind::File { .. } => None,
            })
            .min()
    }

    /// Restart the loggers that are due. Returns lines for the error log.
    pub fn on_timers(&mut self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        let mut targets = std::mem::take(&mut self.targets);
        for t in &mut targets {
            let due = matches!(&t.kind, Kind::Pipe { restart_at: Some(r), .. } if *r <= now);
            if !due {
                continue;
            }
            if let Err(e) = self.start(&mut t.kind) {
                if let Kind::Pipe { restart_at, .. } = &mut t.kind {
                    *restart_at = Some(now + RESTART_DELAY);
                }
                lines.push(format!(
                    "starting piped access logger '{}' failed: {e}",
                    t.name
                ));
            }
        }
        self.targets = targets;
        lines
    }

    /// Access log lines a worker sent for syslog.
    pub fn syslog(&mut self, lines: &[(u8, String)]) {
        if self.syslog.is_none() {
            let facility = self
                .facility
                .as_deref()
                .unwrap_or("daemon")
                .parse()
                .unwrap_or(syslog::Facility::LOG_DAEMON);
            let fmt = syslog::Formatter3164 {
                facility,
                hostname: None,
                process: "wickd".into(),
                pid: std::process::id(),
            };
            self.syslog = syslog::unix(fmt).ok().map(Box::new);
        }
        let Some(l) = self.syslog.as_mut() else {
            return;
        };
        for (level, line) in lines {
            let r = match level {
                0 => l.emerg(line),
                1 => l.alert(line),
                2 => l.crit(line),
                3 => l.err(line),
                4 => l.warning(line),
                5 => l.notice(line),
                6 => l.info(line),
                _ => l.debug(line),
            };
            if r.is_err() {
                // syslogd went away: reconnect with the next batch.
                self.syslog = None;
                return;
            }
        }
    }
}

/// Start a piped logger: `/bin/sh -c cmd` reading `read`, as `user`/`group`
/// (the logger role below). Also used for a piped server.errorlog (errlog.rs).
pub fn spawn_logger(
    cmd: &str,
    read: &OwnedFd,
    user: Option<&str>,
    group: Option<&str>,
) -> io::Result<Pid> {
    let mut c = Command::new(spawn::exe()?);
    c.arg0("wickd: logger")
        .env(ROLE_ENV, LOGGER_ROLE)
        .env(ENV_CMD, cmd)
        .stdin(Stdio::from(read.try_clone()?))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(u) = user {
        c.env(ENV_USER, u);
    }
    if let Some(g) = group {
        c.env(ENV_GROUP, g);
    }
    let child = c.spawn()?;
    // The master reaps with waitpid(-1) (server.rs hands the pids back).
    Ok(Pid::from_raw(child.id() as i32))
}

/// The logger role: become server.username (when started as root), leave the
/// terminal's process group (a ^C stops wickd, whose workers flush their lines;
/// the logger ends when the pipe closes), then run the command with `/bin/sh -c`.
pub fn logger_main() -> i32 {
    let cmd = std::env::var(ENV_CMD).unwrap_or_default();
    let user = std::env::var(ENV_USER).ok();
    let group = std::env::var(ENV_GROUP).ok();
    for k in [ENV_CMD, ENV_USER, ENV_GROUP] {
        std::env::remove_var(k);
    }
    if cmd.is_empty() {
        eprintln!("wickd: access-logger: no command");
        return 1;
    }
    if nix::unistd::geteuid().is_root() {
        if let Err(e) = become_user(user.as_deref(), group.as_deref()) {
            eprintln!("wickd: access-logger \"{cmd}\": {e}");
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    let err = Command::new("/bin/sh").arg("-c").arg(&cmd).exec();
    eprintln!("wickd: access-logger: /bin/sh -c \"{cmd}\": {err}");
    127
}

/// setgroups/setresgid/setresuid to `user` (and `group`, else the user's primary
/// group); nothing when neither is set (lighttpd then runs the logger as root too).
fn become_user(user: Option<&str>, group: Option<&str>) -> Result<(), String> {
    use nix::unistd::{Gid, Group, User};
    let u = match user {
        Some(u) => Some(
            User::from_name(u)
                .map_err(|e| format!("user {u}: {e}"))?
                .ok_or_else(|| format!("no user {u}"))?,
        ),
        None => None,
    };
    let gid = match (group, &u) {
        (Some(g), _) => {
            Group::from_name(g)
                .map_err(|e| format!("group {g}: {e}"))?
                .ok_or_else(|| format!("no group {g}"))?
                .gid
        }
        (None, Some(u)) => u.gid,
        (None, None) => return Ok(()),
    };
    let mut groups: Vec<Gid> = vec![gid];
    if let Some(u) = &u {
        let c = std::ffi::CString::new(u.name.as_str()).map_err(|e| e.to_string())?;
        if let Ok(list) = nix::unistd::getgrouplist(&c, gid) {
            groups.extend(list.into_iter().filter(|g| *g != gid && g.as_raw() != 0));
        }
    }
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
    if let Some(u) = &u {
        if u.uid.is_root() {
            return Err("I will not set uid to 0".into());
        }
        nix::unistd::setresuid(u.uid, u.uid, u.uid).map_err(|e| format!("setresuid: {e}"))?;
    }
    Ok(())
}
