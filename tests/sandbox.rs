//! The worker sandbox, proved from outside.
//!
//! Two kinds of test. Probes fork a child that enters the very sandbox a worker
//! enters (`wick_worker::sandbox::enter_with`), then tries something it must not
//! do: a forbidden syscall must kill it with SIGSYS, a file outside the roots or
//! a port no backend uses must be refused. Server tests start the real wickd and
//! read /proc/<worker>/status, /proc/<worker>/root and the master's capabilities,
//! and check that files are still served under the full sandbox.
//!
//! harness = false (see master/Cargo.toml): a probe forks, which is only sound in a
//! single-threaded process, and libtest runs every test on a thread of its own.
//! `main` below runs the tests one after the other on the main thread; it takes
//! name filters and `--list` like libtest.

mod common;

use common::{children_of, cmdline, curl, is_root, Server, TempDir};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wick_worker::sandbox::{enter_with, Plan};

type Test = (&'static str, fn());
/// Something a probe child tries; its return value is the exit code.
type Action = Box<dyn Fn() -> i32>;

const TESTS: &[Test] = &[
    (
        "probe_forbidden_syscalls_kill_with_sigsys",
        probe_forbidden_syscalls_kill_with_sigsys,
    ),
    (
        "probe_files_and_ports_are_confined",
        probe_files_and_ports_are_confined,
    ),
    ("probe_chroot", probe_chroot),
    (
        "probe_refuses_root_and_unknown_users",
        probe_refuses_root_and_unknown_users,
    ),
    (
        "worker_status_and_master_capabilities",
        worker_status_and_master_capabilities,
    ),
    ("serving_under_the_sandbox", serving_under_the_sandbox),
    ("serving_chrooted", serving_chrooted),
    ("unknown_user_stops_start_up", unknown_user_stops_start_up),
    (
        "worker_killed_by_sigsys_is_logged_and_replaced",
        worker_killed_by_sigsys_is_logged_and_replaced,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => {
                for (name, _) in TESTS {
                    println!("{name}: test");
                }
                return;
            }
            // libtest options that take a value: skip the value too.
            "--test-threads" | "--format" | "--logfile" | "--skip" | "--color" | "-Z" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => filters.push(s.to_string()),
        }
    }
    let chosen: Vec<&Test> = TESTS
        .iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, test) in chosen.iter().copied() {
        println!("test {name} ...");
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("\ntest result: ok. {} passed", chosen.len());
    } else {
        println!(
            "\ntest result: FAILED. {} failed: {}",
            failed.len(),
            failed.join(", ")
        );
        std::process::exit(101);
    }
}

// ---------------------------------------------------------------- probes ----

/// Fork; the child enters the sandbox of `plan`, runs `action` and exits with
/// its code (2: the sandbox failed, 3: the action panicked). Returns how it ended.
fn probe(plan: &Plan, action: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: this test binary runs its tests on the main thread only (harness =
    // false), so the child is a copy of a single-threaded process.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        ForkResult::Child => {
            let code = match enter_with(plan) {
                Ok(_) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(action)).unwrap_or(3)
                }
                Err(e) => {
                    eprintln!("sandbox failed: {e}");
                    2
                }
            };
            // SAFETY: _exit ends the child without running the parent's atexit
            // handlers or flushing its copied stdio buffers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => wait_bounded(child),
    }
}

/// waitpid with a deadline: a probe that hangs is killed and reported.
fn wait_bounded(child: Pid) -> WaitStatus {
    let start = Instant::now();
    loop {
        match waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).expect("waitpid") {
            WaitStatus::StillAlive => {}
            st => return st,
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            let st = waitpid(child, None).expect("waitpid");
            panic!("probe {child} hung and was killed: {st:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A probe directory: www/ (the document root, index.html, sub/a.txt, a symlink
/// out), secret.txt beside it, up/ (a write dir). Opened up for `nobody`.
struct Layout {
    dir: TempDir,
}

impl Layout {
    fn new() -> Layout {
        let dir = TempDir::new();
        dir.open_up();
        let d = dir.path();
        std::fs::create_dir_all(d.join("www/sub")).expect("mkdir");
        std::fs::write(d.join("www/index.html"), "inside\n").expect("write");
        std::fs::write(d.join("www/sub/a.txt"), "a\n").expect("write");
        std::fs::write(d.join("secret.txt"), "beside the document root\n").expect("write");
        symlink("../secret.txt", d.join("www/out")).expect("symlink");
        std::fs::create_dir(d.join("up")).expect("mkdir");
        std::fs::set_permissions(d.join("up"), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        Layout { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// The plan a worker with this config would get: user nobody when root.
fn plan_for(l: &Layout, backend: Option<u16>) -> Plan {
    Plan {
        username: is_root().then(|| "nobody".to_string()),
        read: vec![l.path("www")],
        write: vec![l.path("up")],
        connect_ports: backend.into_iter().collect(),
        max_fds: Some(1024),
        ..Plan::default()
    }
}

fn probe_forbidden_syscalls_kill_with_sigsys() {
    let l = Layout::new();
    // A backend port, so that TCP sockets may be created at all (bind and listen
    // must still be refused on them).
    let backend = TcpListener::bind("127.0.0.1:0").expect("bind");
    let plan = plan_for(&l, Some(backend.local_addr().expect("addr").port()));
    let true_bin = CString::new("/bin/true").expect("cstr");

    // The control: entering the sandbox and exiting is fine.
    let st = probe(&plan, || 0);
    assert!(
        matches!(st, WaitStatus::Exited(_, 0)),
        "control probe: {st:?}"
    );

    let cases: Vec<(&str, Action)> = vec![
        (
            "execve",
            Box::new(move || {
                let argv = [true_bin.as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                // SAFETY: NUL-terminated argv/envp arrays of valid C strings.
                unsafe { libc::execve(true_bin.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
                10
            }),
        ),
        (
            "fork",
            Box::new(|| {
                // SAFETY: if fork were allowed, the child exits at once.
                if unsafe { libc::fork() } == 0 {
                    // SAFETY: plain _exit in the child.
                    unsafe { libc::_exit(0) }
                }
                10
            }),
        ),
        (
            "ptrace",
            Box::new(|| {
                // SAFETY: PTRACE_TRACEME takes no pointers.
                unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
                10
            }),
        ),
        (
            "socket(AF_PACKET)",
            Box::new(|| {
                // SAFETY: plain syscall with integer arguments.
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
                10
            }),
        ),
        (
            "socket(AF_INET, SOCK_DGRAM)",
            Box::new(|| {
                // SAFETY: plain syscall with integer arguments.
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
                10
            }),
        ),
        ("bind", Box::new(|| tcp_socket_then(bind_any))),
        (
            "listen",
            Box::new(|| {
                tcp_socket_then(|fd| {
                    // SAFETY: listen on an fd this closure owns.
                    unsafe { libc::listen(fd, 1) }
                })
            }),
        ),
        (
            "setresuid(0)",
            Box::new(|| {
                // SAFETY: plain syscall with integer arguments.
                unsafe { libc::setresuid(0, 0, 0) };
                10
            }),
        ),
    ];
    for (name, action) in cases {
        let st = probe(&plan, action);
        assert!(
            matches!(st, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{name} in the sandbox: expected death by SIGSYS, got {st:?}"
        );
    }
}

/// Create a TCP socket (allowed: a backend exists) and run `f` on it.
fn tcp_socket_then(f: impl Fn(i32) -> i32) -> i32 {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return 11;
    }
    f(fd);
    10
}

fn bind_any(fd: i32) -> i32 {
    // SAFETY: a zeroed sockaddr_in is a valid 0.0.0.0:0 address of the right size.
    unsafe {
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        libc::bind(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    }
}

/// What the parent saw of a paused probe child.
struct Seen {
    status: String,
    root: PathBuf,
    cwd: PathBuf,
    end: WaitStatus,
}

/// Like `probe`, but the child, once `action` is done, stops until the parent has
/// read its /proc/<pid>/status and /proc/<pid>/root. Exit code = `action`'s.
fn probe_paused(plan: &Plan, action: impl FnOnce() -> i32) -> Seen {
    let (ready_r, ready_w) = nix::unistd::pipe().expect("pipe");
    let (go_r, go_w) = nix::unistd::pipe().expect("pipe");
    // SAFETY: single-threaded test process (see `probe`).
    match unsafe { nix::unistd::fork() }.expect("fork") {
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            let code = match enter_with(plan) {
                Ok(_) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(action)).unwrap_or(3)
                }
                Err(e) => {
                    eprintln!("sandbox failed: {e}");
                    2
                }
            };
            let mut w = std::fs::File::from(ready_w);
            let _ = w.write_all(&[code as u8]);
            let mut r = std::fs::File::from(go_r);
            let _ = r.read(&mut [0u8; 1]);
            // SAFETY: see `probe`.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            let mut r = std::fs::File::from(ready_r);
            let _ = r.read(&mut [0u8; 1]);
            let status =
                std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
            let root = std::fs::read_link(format!("/proc/{child}/root")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{child}/cwd")).unwrap_or_default();
            drop::<OwnedFd>(go_w);
            Seen {
                status,
                root,
                cwd,
                end: wait_bounded(child),
            }
        }
    }
}

/// The value of `Name:` in a /proc status file.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or("")
}

/// Assert the layers /proc shows: uid/gid, no capabilities, no_new_privs, seccomp.
fn assert_locked(status: &str, who: &str) {
    if is_root() {
        let nobody = nix::unistd::User::from_name("nobody")
            .expect("getpwnam")
            .expect("nobody");
        let uid = nobody.uid.to_string();
        let gid = nobody.gid.to_string();
        assert_eq!(
            field(status, "Uid"),
            [uid.as_str(); 4].join("\t"),
            "{who} Uid\n{status}"
        );
        assert_eq!(
            field(status, "Gid"),
            [gid.as_str(); 4].join("\t"),
            "{who} Gid\n{status}"
        );
        assert_eq!(
            field(status, "CapBnd"),
            "0000000000000000",
            "{who} CapBnd\n{status}"
        );
    }
    for f in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(field(status, f), "0000000000000000", "{who} {f}\n{status}");
    }
    assert_eq!(
        field(status, "NoNewPrivs"),
        "1",
        "{who} NoNewPrivs\n{status}"
    );
    assert_eq!(field(status, "Seccomp"), "2", "{who} Seccomp\n{status}");
}

/// Collect failed expectations inside a probe child; exit code 1 if any.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn ok<T, E: std::fmt::Debug>(&mut self, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(format!("{what}: expected success, got {e:?}"));
                None
            }
        }
    }
    fn denied<T>(&mut self, what: &str, r: std::io::Result<T>) {
        match r {
            Ok(_) => self.0.push(format!("{what}: expected EACCES, it worked")),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            Err(e) => self.0.push(format!("{what}: expected EACCES, got {e}")),
        }
    }
    fn fails<T>(&mut self, what: &str, r: std::io::Result<T>) {
        if r.is_ok() {
            self.0
                .push(format!("{what}: expected a failure, it worked"));
        }
    }
    fn code(&self) -> i32 {
        for f in &self.0 {
            eprintln!("probe: {f}");
        }
        i32::from(!self.0.is_empty())
    }
}

fn probe_files_and_ports_are_confined() {
    let l = Layout::new();
    let backend = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let backend_port = backend.local_addr().expect("addr").port();
    let other_port = other.local_addr().expect("addr").port();
    let plan = plan_for(&l, Some(backend_port));
    let www = l.path("www");
    let (secret, up) = (l.path("secret.txt"), l.path("up"));
    let seen = probe_paused(&plan, move || {
        let mut c = Checks::default();
        if let Some(body) = c.ok(
            "read www/index.html",
            std::fs::read_to_string(www.join("index.html")),
        ) {
            if body != "inside\n" {
                c.0.push(format!("www/index.html read back {body:?}"));
            }
        }
        c.ok("list www/", std::fs::read_dir(&www).map(|d| d.count()));
        c.ok("read www/sub/a.txt", std::fs::read(www.join("sub/a.txt")));
        c.denied(
            "read secret.txt beside the document root",
            std::fs::read(&secret),
        );
        c.denied(
            "read www/out -> ../secret.txt",
            std::fs::read(www.join("out")),
        );
        c.denied(
            "list the parent of the document root",
            std::fs::read_dir(www.join("..")),
        );
        c.fails("read /etc/shadow", std::fs::read("/etc/shadow"));
        c.denied("read /etc/passwd", std::fs::read("/etc/passwd"));
        c.denied(
            "create www/new.txt",
            std::fs::write(www.join("new.txt"), "x"),
        );
        c.ok("create up/new.txt", std::fs::write(up.join("new.txt"), "x"));
        c.ok(
            "connect to the backend port",
            TcpStream::connect(("127.0.0.1", backend_port)),
        );
        c.denied(
            "connect to a port no backend uses",
            TcpStream::connect(("127.0.0.1", other_port)),
        );
        c.code()
    });
    assert!(
        matches!(seen.end, WaitStatus::Exited(_, 0)),
        "probe ended {:?} (see stderr)",
        seen.end
    );
    assert_locked(&seen.status, "probe child");
    assert!(l.path("up/new.txt").exists());
    assert!(!l.path("www/new.txt").exists());
}

fn probe_chroot() {
    if common::skip_unless_root("probe_chroot") {
        return;
    }
    let l = Layout::new();
    let plan = Plan {
        username: Some("nobody".into()),
        chroot: Some(l.dir.path().to_path_buf()),
        // Paths inside the chroot, as lighttpd reads them.
        read: vec![PathBuf::from("/www")],
        ..Plan::default()
    };
    let seen = probe_paused(&plan, || {
        let mut c = Checks::default();
        c.ok(
            "read /www/index.html in the chroot",
            std::fs::read("/www/index.html"),
        );
        c.denied(
            "read /secret.txt in the chroot",
            std::fs::read("/secret.txt"),
        );
        c.fails(
            "read /etc/passwd in the chroot",
            std::fs::read("/etc/passwd"),
        );
        c.code()
    });
    assert!(
        matches!(seen.end, WaitStatus::Exited(_, 0)),
        "probe ended {:?} (see stderr)",
        seen.end
    );
    assert_eq!(seen.root, l.dir.path(), "/proc/<probe>/root");
    assert_eq!(
        seen.cwd,
        l.dir.path(),
        "/proc/<probe>/cwd: chdir(\"/\") after chroot"
    );
    assert_locked(&seen.status, "chrooted probe child");
}

fn probe_refuses_root_and_unknown_users() {
    if common::skip_unless_root("probe_refuses_root_and_unknown_users") {
        return;
    }
    // Resolving the names is the first step: these fail before anything changes,
    // so they can run in this process.
    let e = enter_with(&Plan {
        username: Some("root".into()),
        ..Plan::default()
    })
    .expect_err("uid 0 must be refused");
    assert!(e.contains("I will not set uid to 0"), "{e}");
    let e = enter_with(&Plan {
        username: Some("wick-no-such-user".into()),
        ..Plan::default()
    })
    .expect_err("unknown user");
    assert!(e.contains("can't find username wick-no-such-user"), "{e}");
    let e = enter_with(&Plan {
        username: Some("nobody".into()),
        groupname: Some("wick-no-such-group".into()),
        ..Plan::default()
    })
    .expect_err("unknown group");
    assert!(e.contains("can't find groupname wick-no-such-group"), "{e}");
    let root_group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(0))
        .expect("getgrgid")
        .expect("group 0");
    let e = enter_with(&Plan {
        username: Some("nobody".into()),
        groupname: Some(root_group.name),
        ..Plan::default()
    })
    .expect_err("gid 0 must be refused");
    assert!(e.contains("I will not set gid to 0"), "{e}");
}

// ---------------------------------------------------------- real server ----

/// The master's capabilities after start-up, as wickd.8 (SECURITY) documents them.
const MASTER_CAPS: &[u32] = &[
    1,  // CAP_DAC_OVERRIDE
    5,  // CAP_KILL
    10, // CAP_NET_BIND_SERVICE
];
/// Only in the master's bounding set, for its children.
const CHILDREN_CAPS: &[u32] = &[
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    18, // CAP_SYS_CHROOT
    24, // CAP_SYS_RESOURCE
];

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

fn hex_field(status: &str, name: &str) -> u64 {
    u64::from_str_radix(field(status, name), 16).unwrap_or(u64::MAX)
}

/// Pids of the master's workers (argv[0] "wickd: worker N").
fn workers(s: &Server) -> Vec<u32> {
    children_of(s.pid())
        .into_iter()
        .filter(|p| cmdline(*p).starts_with("wickd: worker"))
        .collect()
}

/// Wait until the master has at least one worker that is past its sandbox.
fn wait_workers(s: &Server) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let w: Vec<u32> = workers(s)
            .into_iter()
            .filter(|p| {
                let st = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
                field(&st, "Seccomp") == "2"
            })
            .collect();
        if !w.is_empty() {
            return w;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no sandboxed worker appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const CONF: &str = r#"
server.port = @PORT@
server.bind = "127.0.0.1"
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.username = "nobody"
server.max-worker = 2
index-file.names = ( "index.html" )
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain" )
server.errorfile-prefix = "@DIR@/err/status-"
"#;

/// www/index.html, www/sub/index.html, www/a.txt, www/out.txt -> ../outside.txt;
/// err/status-403.html, and err/status-404.html -> ../outside.txt.
fn site(dir: &Path) {
    std::fs::create_dir_all(dir.join("www/sub")).expect("mkdir");
    std::fs::write(dir.join("www/index.html"), "<p>home</p>\n").expect("write");
    std::fs::write(dir.join("www/sub/index.html"), "<p>sub</p>\n").expect("write");
    std::fs::write(dir.join("www/a.txt"), "plain text\n").expect("write");
    std::fs::write(dir.join("outside.txt"), "outside the root\n").expect("write");
    symlink("../outside.txt", dir.join("www/out.txt")).expect("symlink");
    std::fs::create_dir_all(dir.join("err")).expect("mkdir");
    std::fs::write(dir.join("err/status-403.html"), "custom 403\n").expect("write");
    symlink("../outside.txt", dir.join("err/status-404.html")).expect("symlink");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn worker_status_and_master_capabilities() {
    if common::skip_unless_root("worker_status_and_master_capabilities") {
        return;
    }
    let s = Server::start_with(CONF, &[], site);
    for w in wait_workers(&s) {
        let st = std::fs::read_to_string(format!("/proc/{w}/status")).expect("worker status");
        assert_locked(&st, &format!("worker {w}"));
    }
    // What the master keeps: exactly the documented sets (within what this test
    // process had to give).
    let ours = std::fs::read_to_string("/proc/self/status").expect("own status");
    let had = hex_field(&ours, "CapBnd");
    let st = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).expect("master status");
    let keep = mask(MASTER_CAPS) & had;
    assert_eq!(hex_field(&st, "CapEff"), keep, "master CapEff\n{st}");
    assert_eq!(hex_field(&st, "CapPrm"), keep, "master CapPrm\n{st}");
    assert_eq!(hex_field(&st, "CapInh"), 0, "master CapInh\n{st}");
    assert_eq!(hex_field(&st, "CapAmb"), 0, "master CapAmb\n{st}");
    assert_eq!(
        hex_field(&st, "CapBnd"),
        (mask(MASTER_CAPS) | mask(CHILDREN_CAPS)) & had,
        "master CapBnd\n{st}"
    );
}

fn serving_under_the_sandbox() {
    // Root: user nobody; otherwise the invoking user. The sandbox applies either way.
    let conf = if is_root() {
        CONF.to_string()
    } else {
        CONF.replace("server.username = \"nobody\"\n", "")
    };
    let s = Server::start_with(&conf, &[], site);
    let w = wait_workers(&s);
    assert!(!w.is_empty());
    let r = s.get("/a.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "plain text\n"),
        "a file"
    );
    let r = s.get("/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "<p>home</p>\n"),
        "index file"
    );
    let r = s.get("/sub");
    assert_eq!(r.status, 301, "directory redirect");
    assert!(
        r.header("location").unwrap_or("").ends_with("/sub/"),
        "{:?}",
        r.headers
    );
    let r = s.get("/sub/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "<p>sub</p>\n"),
        "index file in a subdirectory"
    );
    // server.follow-symlink is on (lighttpd's default): a link that leads out of
    // the document root is still refused, with the configured error page (a file
    // Landlock lets the worker read because server.errorfile-prefix names it).
    let r = s.get("/out.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "custom 403\n"),
        "symlink out of the root"
    );
    // The 404 page is a symlink to a file outside every root. The worker opens
    // error pages by absolute path, following links: only Landlock stands between
    // this request and outside.txt.
    let r = s.get("/missing.html");
    assert_eq!(r.status, 404, "missing file");
    assert!(
        !r.text().contains("outside the root"),
        "Landlock let the worker read outside.txt"
    );
    let log = s.error_log();
    assert!(
        log.contains("landlock=full"),
        "the worker logs the Landlock status:\n{log}"
    );
    if is_root() {
        assert!(
            log.contains("user nobody("),
            "the worker logs its user:\n{log}"
        );
    } else {
        assert!(
            log.contains("not started as root"),
            "the one line for normal users:\n{log}"
        );
    }
}

fn unknown_user_stops_start_up() {
    if common::skip_unless_root("unknown_user_stops_start_up") {
        return;
    }
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("www")).expect("mkdir");
    let conf = dir.path().join("wickd.conf");
    let text = CONF.replace("\"nobody\"", "\"wick-no-such-user\"");
    std::fs::write(
        &conf,
        common::render(&text, common::free_port(), dir.path()),
    )
    .expect("write");
    let out = std::process::Command::new(common::wickd_bin())
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run wickd");
    assert!(
        !out.status.success(),
        "wickd must not start as a user that does not exist"
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
    assert!(
        said.contains("can't find username wick-no-such-user"),
        "the reason names the user:\n{said}"
    );
}

fn serving_chrooted() {
    if common::skip_unless_root("serving_chrooted") {
        return;
    }
    // lighttpd semantics: with server.chroot, the other paths are inside it.
    let conf = r#"
server.port = @PORT@
server.bind = "127.0.0.1"
server.chroot = "@DIR@"
server.document-root = "/www"
server.errorlog = "/error.log"
server.username = "nobody"
index-file.names = ( "index.html" )
"#;
    let s = Server::start_with(conf, &[], site);
    // The error log too is inside the chroot: @DIR@/error.log.
    assert!(
        common::wait_until(Duration::from_secs(5), || s
            .error_log()
            .contains("server started")),
        "error log inside the chroot"
    );
    for w in wait_workers(&s) {
        let root = std::fs::read_link(format!("/proc/{w}/root")).expect("worker root");
        assert_eq!(root, s.dir.path(), "/proc/{w}/root");
        let st = std::fs::read_to_string(format!("/proc/{w}/status")).expect("worker status");
        assert_locked(&st, &format!("chrooted worker {w}"));
    }
    let r = s.get("/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "<p>home</p>\n"),
        "index file, chrooted"
    );
    let r = s.get("/a.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "plain text\n"),
        "a file, chrooted"
    );
    let r = s.get("/sub");
    assert_eq!(r.status, 301, "directory redirect, chrooted");
    let r = s.get("/out.txt");
    assert_eq!(r.status, 403, "symlink out of the document root, chrooted");
}

fn worker_killed_by_sigsys_is_logged_and_replaced() {
    let s = Server::start_with(CONF, &[], site);
    let before = wait_workers(&s);
    let victim = before[0];
    // The kernel's seccomp kill is a SIGSYS; the master cannot tell this one apart.
    nix::sys::signal::kill(Pid::from_raw(victim as i32), Signal::SIGSYS).expect("kill");
    let start = Instant::now();
    loop {
        let now = wait_workers(&s);
        let log = s.error_log();
        if !now.contains(&victim) && now.len() >= before.len() && log.contains("SIGSYS") {
            assert!(
                log.contains("seccomp"),
                "the log line names seccomp:\n{log}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "worker not replaced or not logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = curl(&s.url("/a.txt"), &[]);
    assert_eq!(r.status, 200, "still serving after a worker died");
}
