//! The backends the spawner starts and keeps running: the bin-path hosts of
//! fastcgi.server and scgi.server (`wick_conf::spawn` reads them). Decided once
//! at start: each program, its environment (lighttpd's: the whole environment,
//! or only bin-copy-environment's variables, then bin-environment, then
//! PHP_FCGI_CHILDREN=1 unless set), its identity (cgi.user/cgi.group in force for
//! the block that sets the key, else server.username: as CGI scripts get theirs)
//! and its directory. Each process has its socket ([`crate::listen`]) on fd 0.
//!
//! Supervision: a process that dies is started again at once on the socket it
//! had, so connections queued meanwhile are served by the new one; one that dies
//! again within a second of its start is restarted after 1 s, doubling up to
//! 16 s, and its socket is closed (and its name removed) while it waits, so that
//! workers fail over at once (disable-time, then 503) instead of waiting on a
//! queue nobody reads. While the generation drains a socket is never bound
//! again (its name may be the next generation's). Stop: kill-signal to each
//! process, SIGKILL to its process group whatever is left after [`GRACE`], and
//! to every child the spawner still has when it leaves.

use crate::launch::{self, BackendExec};
use crate::listen::{self, Bound};
use crate::users::{Identity, Users};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wick_conf::spawn::{Backend, Listen};
use wick_conf::Config;
use wick_proto::spawner::ExitStatus;

/// A process that lived this long died of something other than its start.
const STABLE: Duration = Duration::from_secs(1);
/// Longest wait before starting a process that keeps dying at once.
const MAX_DELAY: Duration = Duration::from_secs(16);
/// Between kill-signal and SIGKILL to the process group.
pub const GRACE: Duration = Duration::from_secs(1);

/// Variables of wickd's own, not handed on to backends.
const INTERNAL_ENV: &[&str] = &[
    wick_proto::ROLE_ENV,
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];

/// One backend: what to execute, as whom, where.
struct Spec {
    b: Backend,
    /// The program executed: argv[0] made absolute.
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// The program's directory (lighttpd runs it there).
    dir: Option<OwnedFd>,
    creds: Option<Identity>,
}

/// One process of a backend.
struct Proc {
    spec: usize,
    addr: Listen,
    sock: Option<Bound>,
    pid: Option<i32>,
    started: Instant,
    /// Deaths in a row within [`STABLE`] of the start.
    quick: u32,
    restart_at: Option<Instant>,
}

#[derive(Default)]
pub struct Backends {
    specs: Vec<Spec>,
    procs: Vec<Proc>,
    devnull: Option<OwnedFd>,
    /// The error log, the backends' stderr (None: the spawner's own stderr).
    stderr: Option<OwnedFd>,
    stopping: bool,
    /// SIGKILL to the process groups left at this time.
    kill_at: Option<Instant>,
    /// Draining: the socket names may belong to the next generation now, so a
    /// socket closed is not bound again.
    draining: bool,
    /// Every backend process started (each led its own process group): what
    /// is left of those groups among the spawner's children is killed at the end.
    leaders: Vec<i32>,
}

fn cstring(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| "a NUL byte in a program argument or variable".to_string())
}

/// The identity a backend of `block` runs as: cgi.user/cgi.group in force there
/// (the block, then its enclosing ones), else server.username; the bool says
/// cgi.user chose it (its program is then checked as suEXEC checks a handler).
fn identity(cfg: &Config, users: &Users, block: usize) -> Result<(Option<Identity>, bool), String> {
    let chain: Vec<usize> =
        std::iter::successors(Some(block), |&b| cfg.blocks.get(b)?.parent).collect();
    let find = |f: fn(&wick_conf::Patch) -> Option<&String>| {
        chain
            .iter()
            .find_map(|&b| cfg.patches.get(b).and_then(f).filter(|v| !v.is_empty()))
            .cloned()
    };
    let user = find(|p| p.cgi_user());
    let group = find(|p| p.cgi_group());
    let mut id = match &user {
        None => users.default.clone(),
        Some(u) => Some(
            users
                .user(u)
                .cloned()
                .ok_or_else(|| format!("cgi.user \"{u}\" was not resolved"))?,
        ),
    };
    if let Some(g) = &group {
        let gid = users
            .group(g)
            .ok_or_else(|| format!("cgi.group \"{g}\" was not resolved"))?;
        id = Some(Identity::with_group(id.take(), gid));
    }
    Ok((id, user.is_some()))
}

/// A program a cgi.user backend runs must be owned by root or that user and
/// writable by nobody else (suEXEC's rule for a cgi.assign handler).
fn check_owner(program: &Path, id: &Identity) -> Result<(), String> {
    let m = std::fs::metadata(program).map_err(|e| format!("{}: {e}", program.display()))?;
    if m.uid() != 0 && m.uid() != id.uid {
        return Err(format!(
            "{} is owned by uid {}, not root or cgi.user {}",
            program.display(),
            m.uid(),
            id.uid
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others",
            program.display()
        ));
    }
    Ok(())
}

/// The environment of a backend, as lighttpd builds it.
fn environment(b: &Backend, inherited: &[(OsString, OsString)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pair = |(k, v): &(OsString, OsString)| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
    let mut env: Vec<(Vec<u8>, Vec<u8>)> = if b.copy_env.is_empty() {
        inherited.iter().map(pair).collect()
    } else {
        b.copy_env
            .iter()
            .filter_map(|name| {
                inherited
                    .iter()
                    .find(|(k, _)| k.as_bytes() == name.as_bytes())
            })
            .map(pair)
            .collect()
    };
    let mut set = |k: &[u8], v: &[u8]| match env.iter_mut().find(|(n, _)| n == k) {
        Some(e) => e.1 = v.to_vec(),
        None => env.push((k.to_vec(), v.to_vec())),
    };
    for (k, v) in &b.env {
        set(k.as_bytes(), v.as_bytes());
    }
    if !env.iter().any(|(k, _)| k == b"PHP_FCGI_CHILDREN") {
        env.push((b"PHP_FCGI_CHILDREN".to_vec(), b"1".to_vec()));
    }
    env
}

/// SIGKILL to the spawner's children that belong to a backend's process group
/// (a backend's children it left behind: they came to the spawner, a
/// subreaper). A child not yet reaped is ours, its pid no one else's; what a
/// CGI script left running in a session of its own is left alone.
fn kill_children(leaders: &[i32]) {
    if leaders.is_empty() {
        return;
    }
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // After the parenthesised command name: state, ppid, pgrp.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().take(3).collect();
        let pgrp = f.get(2).and_then(|g| g.parse::<i32>().ok());
        if f.get(1) == Some(&me.as_str()) && pgrp.is_some_and(|g| leaders.contains(&g)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn signal(n: i32) -> Signal {
    Signal::try_from(n).unwrap_or(Signal::SIGTERM)
}

impl Backends {
    /// Decide every backend of `cfg` (before the sandbox: users are resolved,
    /// /dev/null and the programs' directories opened).
    pub fn plan(cfg: &Config, users: &Users) -> Result<Backends, String> {
        let list = wick_conf::spawn::backends(cfg)?;
        let mut me = Backends::default();
        if list.is_empty() {
            return Ok(me);
        }
        me.devnull = Some(
            nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(|e| format!("/dev/null: {e}"))?,
        );
        let inherited: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !INTERNAL_ENV.iter().any(|i| k.as_bytes() == i.as_bytes()))
            .collect();
        for b in list {
            let at = |e: String| {
                format!(
                    "{}: {} \"bin-path\" => \"{}\": {e}",
                    b.at,
                    b.gateway.key(),
                    b.bin_path
                )
            };
            let (creds, suexec) = identity(cfg, users, b.block).map_err(at)?;
            let first = b.argv.first().cloned().unwrap_or_default();
            let path =
                std::path::absolute(Path::new(&first)).unwrap_or_else(|_| PathBuf::from(&first));
            if let (true, Some(id)) = (suexec, creds.as_ref()) {
                check_owner(&path, id).map_err(at)?;
            }
            let dir = path.parent().and_then(|d| {
                nix::fcntl::open(
                    d,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            });
            let env = environment(&b, &inherited)
                .into_iter()
                .map(|(mut k, v)| {
                    k.push(b'=');
                    k.extend_from_slice(&v);
                    cstring(&k)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            let argv = b
                .argv
                .iter()
                .map(|a| cstring(a.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            let spec = me.specs.len();
            for addr in b.addrs() {
                me.procs.push(Proc {
                    spec,
                    addr,
                    sock: None,
                    pid: None,
                    started: Instant::now(),
                    quick: 0,
                    restart_at: None,
                });
            }
            me.specs.push(Spec {
                program: cstring(path.as_os_str().as_bytes()).map_err(at)?,
                argv,
                env,
                dir,
                creds,
                b,
            });
        }
        Ok(me)
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// The error log the backends write their stderr to (after a reopen too).
    pub fn set_stderr(&mut self, fd: Option<OwnedFd>) {
        self.stderr = fd;
    }

    fn describe(&self, p: &Proc) -> String {
        let s = &self.specs[p.spec].b;
        format!(
            "{} backend {} ({})",
            s.gateway.key(),
            p.addr.name(),
            s.bin_path
        )
    }

    /// Start every process: all sockets bound under temporary names, then every
    /// process started, then the names given. A failure leaves no process and no
    /// name behind (a graceful restart that fails keeps the old generation's
    /// sockets in place). Returns lines for the log.
    pub fn start(&mut self) -> Result<Vec<String>, String> {
        let r = self.start_all();
        if r.is_err() {
            for i in 0..self.procs.len() {
                if let Some(pid) = self.procs[i].pid.take() {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
                }
                if let Some(mut s) = self.procs[i].sock.take() {
                    s.discard();
                }
            }
        }
        r
    }

    fn start_all(&mut self) -> Result<Vec<String>, String> {
        for i in 0..self.procs.len() {
            let s = &self.specs[self.procs[i].spec].b;
            let b = listen::bind_listen(&self.procs[i].addr, s.backlog).map_err(|e| {
                let hint = match (&self.procs[i].addr, e.kind()) {
                    (Listen::Unix(_), std::io::ErrorKind::PermissionDenied) => format!(
                        " (the spawner binds as uid {}: the socket's directory must be writable by it, as by lighttpd's server.username)",
                        nix::unistd::geteuid()
                    ),
                    _ => String::new(),
                };
                format!("{}: {}: {e}{hint}", s.at, self.describe(&self.procs[i]))
            })?;
            self.procs[i].sock = Some(b);
        }
        let mut lines = Vec::new();
        for i in 0..self.procs.len() {
            let pid = self.spawn(i)?;
            lines.push(format!(
                "{} started, pid {pid}",
                self.describe(&self.procs[i])
            ));
        }
        for i in 0..self.procs.len() {
            let at = self.specs[self.procs[i].spec].b.at.clone();
            if let Some(s) = self.procs[i].sock.as_mut() {
                s.commit().map_err(|e| format!("{at}: {e}"))?;
            }
        }
        Ok(lines)
    }

    /// Start process `i` on its (bound) socket.
    fn spawn(&mut self, i: usize) -> Result<i32, String> {
        let p = &self.procs[i];
        let spec = &self.specs[p.spec];
        let Some(sock) = p.sock.as_ref() else {
            return Err(format!("{}: no socket", self.describe(p)));
        };
        let devnull = self.devnull.as_ref().map_or(-1, |f| f.as_raw_fd());
        // Without an error log file: the spawner's own stderr, copied above 2.
        let own_err = match &self.stderr {
            Some(_) => None,
            None => std::io::stderr().as_fd().try_clone_to_owned().ok(),
        };
        let stderr_fd = self
            .stderr
            .as_ref()
            .or(own_err.as_ref())
            .map_or(-1, |f| f.as_raw_fd());
        let exec = BackendExec {
            program: &spec.program,
            argv: &spec.argv,
            env: &spec.env,
            listener: sock.fd.as_raw_fd(),
            stdout: devnull,
            stderr: stderr_fd,
            dir: spec.dir.as_ref().map(|d| d.as_raw_fd()),
            creds: spec.creds.as_ref(),
            pdeathsig: spec.b.kill_signal,
        };
        let r = launch::start_backend(&exec);
        drop(own_err);
        let pid = r.map_err(|e| {
            format!(
                "{}: {}: gw-backend failed to start: {e}",
                spec.b.at,
                self.describe(p)
            )
        })?;
        // (bounded: a backend restarted for months leaves few groups alive)
        self.leaders.retain(|&l| l != pid);
        if self.leaders.len() >= 1024 {
            self.leaders.remove(0);
        }
        self.leaders.push(pid);
        let p = &mut self.procs[i];
        p.pid = Some(pid);
        p.started = Instant::now();
        p.restart_at = None;
        Ok(pid)
    }

    /// A child was reaped: if it is one of ours, a line for the log, and its
    /// restart planned.
    pub fn reaped(&mut self, pid: i32, status: ExitStatus, now: Instant) -> Option<String> {
        let i = self.procs.iter().position(|p| p.pid == Some(pid))?;
        let name = self.describe(&self.procs[i]);
        let kill_signal = self.specs[self.procs[i].spec].b.kill_signal;
        let p = &mut self.procs[i];
        p.pid = None;
        let how = match status {
            ExitStatus::Exited(c) => format!("exited with status {c}"),
            ExitStatus::Signaled(s) => format!("died of signal {s}"),
        };
        if self.stopping {
            // lighttpd logs neither a stop by kill-signal nor an exit then.
            let quiet = matches!(status, ExitStatus::Exited(_))
                || matches!(status, ExitStatus::Signaled(s) if s == kill_signal || s == libc::SIGTERM || s == libc::SIGINT || s == libc::SIGKILL);
            return (!quiet).then(|| format!("{name}, pid {pid}, {how}"));
        }
        if now.duration_since(p.started) < STABLE {
            p.quick += 1;
        } else {
            p.quick = 0;
        }
        let delay = match p.quick {
            0 | 1 => Duration::ZERO,
            n => (Duration::from_secs(1) * (1u32 << (n - 2).min(8))).min(MAX_DELAY),
        };
        p.restart_at = Some(now + delay);
        if delay.is_zero() {
            return Some(format!("{name}, pid {pid}, {how}; starting it again"));
        }
        // Nobody reads the queue meanwhile: close it, so workers fail over now.
        if let Some(mut s) = p.sock.take() {
            s.remove_if_ours();
        }
        if self.draining {
            p.restart_at = None;
            return Some(format!(
                "{name}, pid {pid}, {how} within a second of its start; not started again while its generation drains"
            ));
        }
        Some(format!(
            "{name}, pid {pid}, {how} within a second of its start; starting it again in {} s (its socket closed meanwhile)",
            delay.as_secs()
        ))
    }

    /// Restarts that are due, the SIGKILL after a stop; lines for the log.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        if self.stopping {
            if self.kill_at.is_some_and(|t| t <= now) {
                self.kill_at = None;
                self.kill_groups();
            }
            return out;
        }
        for i in 0..self.procs.len() {
            if self.procs[i].restart_at.is_none_or(|t| t > now) {
                continue;
            }
            self.procs[i].restart_at = None;
            match self.restart(i) {
                Ok(pid) => out.push(format!(
                    "{} started again, pid {pid}",
                    self.describe(&self.procs[i])
                )),
                Err(e) => {
                    let p = &mut self.procs[i];
                    p.quick += 1;
                    let delay = (Duration::from_secs(1) * (1u32 << p.quick.min(5))).min(MAX_DELAY);
                    p.restart_at = Some(now + delay);
                    out.push(format!("{e}; trying again in {} s", delay.as_secs()));
                }
            }
        }
        out
    }

    fn restart(&mut self, i: usize) -> Result<i32, String> {
        if self.procs[i].sock.is_none() {
            let s = &self.specs[self.procs[i].spec].b;
            let b = listen::bind_listen(&self.procs[i].addr, s.backlog)
                .map_err(|e| format!("{}: {e}", self.describe(&self.procs[i])))?;
            self.procs[i].sock = Some(b);
            let pid = self.spawn(i)?;
            if let Some(s) = self.procs[i].sock.as_mut() {
                s.commit().map_err(|e| e.to_string())?;
            }
            return Ok(pid);
        }
        self.spawn(i)
    }

    /// When the next restart or SIGKILL is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.stopping {
            return self.kill_at;
        }
        self.procs.iter().filter_map(|p| p.restart_at).min()
    }

    /// Stop every process: kill-signal now, SIGKILL to its group after [`GRACE`];
    /// none is started again.
    pub fn stop(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let mut any = false;
        for p in &self.procs {
            if let Some(pid) = p.pid {
                let sig = signal(self.specs[p.spec].b.kill_signal);
                let _ = kill(Pid::from_raw(pid), sig);
                any = true;
            }
        }
        self.kill_at = any.then_some(now + GRACE);
    }

    pub fn stopping(&self) -> bool {
        self.stopping
    }

    /// The generation drains: a process that dies is still started again on
    /// its socket (old workers may have connections queued there), but a
    /// socket is never bound again: its name is the next generation's.
    pub fn drain(&mut self) {
        self.draining = true;
        for p in &mut self.procs {
            if p.sock.is_none() {
                p.restart_at = None;
            }
        }
    }

    /// No process of ours is running.
    pub fn idle(&self) -> bool {
        self.procs.iter().all(|p| p.pid.is_none())
    }

    /// SIGKILL to the process group of each process still running (ours, not
    /// yet reaped: its pid cannot have been reused).
    fn kill_groups(&mut self) {
        for p in &self.procs {
            if let Some(pid) = p.pid {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }

    /// On the way out: whatever is left of the process groups is killed, with
    /// what a dead backend left behind (its children come to the spawner, a
    /// subreaper), and each socket's name removed while it is still ours.
    pub fn finish(&mut self) {
        self.stopping = true;
        self.kill_groups();
        kill_children(&self.leaders);
        for p in &mut self.procs {
            if let Some(mut s) = p.sock.take() {
                s.remove_if_ours();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(copy: &[&str], env: &[(&str, &str)]) -> Backend {
        Backend {
            gateway: wick_conf::spawn::Gateway::FastCgi,
            at: "t:1".into(),
            block: 0,
            bin_path: "/bin/true".into(),
            argv: vec!["/bin/true".into()],
            program: "/bin/true".into(),
            listen: Listen::Unix("/tmp/x".into()),
            procs: 1,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            copy_env: copy.iter().map(|s| s.to_string()).collect(),
            kill_signal: 15,
            backlog: 16,
            adaptive: None,
        }
    }

    fn text(env: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
        env.iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    #[test]
    fn environment_as_lighttpd_builds_it() {
        let inherited: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), "/bin".into()),
            ("HOME".into(), "/root".into()),
            ("USER".into(), "www".into()),
        ];
        // Without bin-copy-environment: everything, then bin-environment.
        let e = environment(&backend(&[], &[("USER", "php"), ("A", "1")]), &inherited);
        assert_eq!(
            text(&e),
            [
                "PATH=/bin",
                "HOME=/root",
                "USER=php",
                "A=1",
                "PHP_FCGI_CHILDREN=1"
            ]
        );
        // With it: only those (that exist), in its order; PHP_FCGI_CHILDREN kept.
        let e = environment(
            &backend(&["USER", "NOPE", "PATH"], &[("PHP_FCGI_CHILDREN", "4")]),
            &inherited,
        );
        assert_eq!(text(&e), ["USER=www", "PATH=/bin", "PHP_FCGI_CHILDREN=4"]);
    }

    #[test]
    fn identity_from_the_block_chain() {
        let mut users = Users::default();
        users.default = Some(Identity {
            name: "www".into(),
            uid: 33,
            gid: 33,
            groups: vec![33],
        });
        let mut cfg = Config {
            main_file: "t".into(),
            blocks: vec![
                wick_conf::Block {
                    parent: None,
                    cond: None,
                    else_of: None,
                    settings: Vec::new(),
                    loc: Default::default(),
                };
                2
            ],
            server: Default::default(),
            patches: vec![wick_conf::Patch::default(); 2],
            listeners: Vec::new(),
            warnings: Vec::new(),
        };
        cfg.blocks[1].parent = Some(0);
        let (id, suexec) = identity(&cfg, &users, 1).expect("ok");
        assert_eq!(id.map(|i| i.uid), Some(33));
        assert!(!suexec);
        cfg.patches[0].put(wick_conf::PatchValue::cgi_user("nobody-at-all".into()));
        assert!(identity(&cfg, &users, 1).is_err(), "unresolved cgi.user");
    }

    #[test]
    fn quick_deaths_back_off_and_close_the_socket() {
        let mut be = Backends::default();
        be.specs.push(Spec {
            b: backend(&[], &[]),
            program: CString::new("/bin/true").expect("c"),
            argv: Vec::new(),
            env: Vec::new(),
            dir: None,
            creds: None,
        });
        be.procs.push(Proc {
            spec: 0,
            addr: Listen::Unix("/nonexistent/x-0".into()),
            sock: None,
            pid: Some(999_999),
            started: Instant::now(),
            quick: 0,
            restart_at: None,
        });
        let now = Instant::now();
        let line = be
            .reaped(999_999, ExitStatus::Exited(1), now)
            .expect("ours");
        assert!(line.contains("starting it again"), "{line}");
        assert_eq!(be.next_deadline(), Some(now), "first quick death: at once");
        be.procs[0].pid = Some(999_999);
        let line = be
            .reaped(999_999, ExitStatus::Exited(1), now)
            .expect("ours");
        assert!(line.contains("in 1 s"), "{line}");
        assert_eq!(be.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(
            be.reaped(1, ExitStatus::Exited(0), now).is_none(),
            "not ours"
        );
        be.stop(now);
        assert!(be.stopping() && be.idle());
        assert_eq!(be.next_deadline(), None);
    }
}
