//! Test harness: start the real `wickd` with a real config on a free port, talk to it
//! over TCP, and always stop it (Drop), even when the test fails.
//!
//! A config template may use `@PORT@`, `@DIR@` (the test's temporary directory) and
//! `@DOCROOT@` (`@DIR@/www`, created empty), replaced before the file is written.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
pub mod fcgi;
pub mod scgi;
pub mod wire;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn wickd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wickd"))
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (return true, printing why) unless running as root.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        false
    } else {
        eprintln!("SKIP {test}: needs root (privilege drop, chroot)");
        true
    }
}

/// A fresh 0700 temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let base = std::env::temp_dir().join("wick-test-XXXXXX");
        let path = nix::unistd::mkdtemp(&base).expect("mkdtemp");
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Open the directory up (0755) for a server that runs as `nobody`.
    pub fn open_up(&self) {
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
/// Poll `f` every 20 ms until it holds or `limit` has passed; its last answer.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind :0");
    l.local_addr().expect("addr").port()
}

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: TempDir,
    pub conf: PathBuf,
}

impl Server {
    /// Write `template` (see module doc) and start `wickd -D -f conf`; wait until it answers.
    pub fn start(template: &str) -> Server {
        Self::start_with(template, &[], |_| {})
    }

    /// Like `start`, with extra command-line arguments and a hook that prepares files
    /// in the directory before the server starts.
    pub fn start_with(template: &str, args: &[&str], prepare: impl FnOnce(&Path)) -> Server {
        let dir = TempDir::new();
        std::fs::create_dir_all(dir.path().join("www")).expect("mkdir www");
        prepare(dir.path());
        let conf = dir.path().join("wickd.conf");
        let mut s = Server {
            child: None,
            port: 0,
            dir,
            conf,
        };
        // A free port can be taken by a server of a parallel test between
        // free_port() and our bind: then start again on another one.
        for _ in 0..5 {
            s.port = free_port();
            std::fs::write(&s.conf, render(template, s.port, s.dir.path())).expect("write conf");
            let child = Command::new(wickd_bin())
                .arg("-D")
                .arg("-f")
                .arg(&s.conf)
                .args(args)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn wickd");
            s.child = Some(child);
            match s.wait_start(Duration::from_secs(15)) {
                Start::Ready => return s,
                Start::PortTaken => s.child = None,
            }
        }
        panic!("no free port after 5 attempts");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn wait_ready(&mut self, limit: Duration) {
        if let Start::PortTaken = self.wait_start(limit) {
            panic!("port {} is held by another process", self.port);
        }
    }

    /// Ready once a connection succeeds and the 127.0.0.1 listener on our port is
    /// the master's own (not a parallel test's server that took the port).
    fn wait_start(&mut self, limit: Duration) -> Start {
        let start = Instant::now();
        loop {
            let ours = tcp_listener_inode(self.port).map(|ino| owns_socket(self.pid(), ino));
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    if ours == Some(false) {
                        return Start::PortTaken;
                    }
                    panic!("wickd exited during start-up: {st}");
                }
            }
            // None: not a 127.0.0.1 TCP listener (IPv6, unix); the connect decides.
            if ours != Some(false) && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Start::Ready;
            }
            if start.elapsed() > limit {
                panic!(
                    "wickd did not answer on port {} within {limit:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// Send raw bytes, read until the server closes (or the 10 s timeout).
    pub fn raw(&self, req: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(req).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// One request with a real client (curl): returns (status, headers, body).
    pub fn get(&self, path: &str) -> Response {
        curl(&format!("http://127.0.0.1:{}{}", self.port, path), &[])
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn docroot(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig);
    }

    /// Wait for the master to exit (None on timeout).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Some(st);
                }
            } else {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The pids of this master's direct children (workers, spawner).
    pub fn children(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    /// Lines of the server's error log file (if the config sets one at @DIR@/error.log).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

enum Start {
    Ready,
    PortTaken,
}

/// Inode of the listening socket on 127.0.0.1:`port`, from /proc/net/tcp.
fn tcp_listener_inode(port: u16) -> Option<u64> {
    let want = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9)?.parse().ok())
            .flatten()
    })
}

/// Whether process `pid` holds the socket with that inode.
fn owns_socket(pid: u32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
        })
        .unwrap_or(false)
}

pub fn render(template: &str, port: u16, dir: &Path) -> String {
    template
        .replace("@PORT@", &port.to_string())
        .replace("@DOCROOT@", &dir.join("www").to_string_lossy())
        .replace("@DIR@", &dir.to_string_lossy())
}

/// Direct children of `pid`, from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // ppid is the 2nd field after the parenthesised comm.
                if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                    let ppid: u32 = rest
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if ppid == pid {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// The command line of a process, NULs as spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    /// Header lines of the final response, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Run curl (a real HTTP client) on `url` with extra arguments.
pub fn curl(url: &str, extra: &[&str]) -> Response {
    let out = Command::new("curl")
        .args(["-s", "-S", "-i", "--max-time", "10", "--path-as-is"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    parse_response(&out.stdout)
}

/// Parse one raw HTTP/1.x response (the last one, after any 100 Continue).
pub fn parse_response(raw: &[u8]) -> Response {
    let mut rest = raw;
    loop {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            return Response::default();
        };
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let body = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status == 100 {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Response {
            status,
            headers,
            body: body.to_vec(),
        };
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
