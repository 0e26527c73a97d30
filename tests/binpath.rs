//! Backends wickd starts itself: fastcgi.server and scgi.server hosts with
//! "bin-path", started and supervised by the gateway-spawner, reached by the
//! workers under their sandbox.
//!
//! The backend programs are this test binary itself: run as
//! `binpath-<hash> fcgi-backend` (or `scgi-backend`) it serves tests/common's
//! FastCGI (SCGI) responder on the listening socket it finds on fd 0, as
//! spawn-fcgi and lighttpd pass it. harness = false (master/Cargo.toml) for
//! that: `main` either is a backend or runs the tests one after the other, with
//! name filters and `--list` as libtest.

mod common;

use common::{children_of, cmdline, wait_until, Server};
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    ("fastcgi_unix_backend_serves", fastcgi_unix_backend_serves),
    ("max_procs_two_processes", max_procs_two_processes),
    ("scgi_tcp_backend_through_sh", scgi_tcp_backend_through_sh),
    (
        "environment_reaches_the_backend",
        environment_reaches_the_backend,
    ),
    ("killed_backend_is_restarted", killed_backend_is_restarted),
    (
        "reload_under_load_loses_no_request",
        reload_under_load_loses_no_request,
    ),
    (
        "reload_tcp_backend_under_load",
        reload_tcp_backend_under_load,
    ),
    ("shutdown_leaves_no_backend", shutdown_leaves_no_backend),
    (
        "backend_runs_as_the_server_user",
        backend_runs_as_the_server_user,
    ),
    ("php_cgi_debian_style", php_cgi_debian_style),
    ("start_up_errors_and_tt", start_up_errors_and_tt),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A backend started by wickd: serve on fd 0 until killed.
    match args.first().map(String::as_str) {
        Some("fcgi-backend") => {
            let _r = common::fcgi::Responder::inherited();
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Some("scgi-backend") => {
            let _r = common::scgi::Responder::inherited(common::scgi::Protocol::Scgi);
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        _ => {}
    }
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
        let t = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok ({} ms)", t.elapsed().as_millis()),
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

// ---------------------------------------------------------------- helpers ---

/// This binary, as a bin-path: `<exe> <role>`.
fn backend(role: &str) -> String {
    format!("{} {role}", self_exe().display())
}

fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

/// A config with mod_fastcgi (and mod_scgi), an error log, `extra` after it.
fn conf(extra: &str) -> String {
    format!(
        r#"server.document-root = "@DOCROOT@"
server.port = @PORT@
server.bind = "127.0.0.1"
server.errorlog = "@DIR@/error.log"
server.modules = ( "mod_fastcgi", "mod_scgi" )
{extra}
"#
    )
}

/// A FastCGI "/app" host running this binary on `socket`.
fn fcgi_app(socket: &str, more: &str) -> String {
    format!(
        r#"fastcgi.server = ( "/app" => ( "app" => (
    "bin-path" => "{}",
    "socket" => "{socket}",
    "check-local" => "disable",
    {more}
) ) )"#,
        backend("fcgi-backend")
    )
}

/// The port answers as soon as the master bound it; the workers (and, before
/// them, the backends) come a moment later: wait for an answer from `target`.
fn serving(s: &Server, target: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || get(s.port, target).0 == 200),
        "{target} never answered 200: {}",
        s.error_log()
    );
}

fn mkdir_run(dir: &Path) {
    std::fs::create_dir_all(dir.join("run")).expect("mkdir run");
}

/// GET over HTTP/1.0 (the body ends with the connection): (status, body).
fn get(port: u16, target: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {target} HTTP/1.0\r\nHost: t\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let r = common::parse_response(&out);
    (r.status, r.text())
}

/// The `process` answer of a backend: (pid, its lines).
fn process(port: u16, target: &str) -> (u32, String) {
    let (st, body) = get(port, target);
    assert_eq!(st, 200, "{target}: {body}");
    let pid = field(&body, "pid").parse().expect("pid");
    (pid, body)
}

fn field(body: &str, name: &str) -> String {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or("")
        .to_string()
}

/// The spawner of this server (a direct child titled so).
fn spawner_of(s: &Server) -> u32 {
    let mut found = 0;
    wait_until(Duration::from_secs(5), || {
        found = s
            .children()
            .into_iter()
            .find(|&p| cmdline(p).contains("gateway-spawner"))
            .unwrap_or(0);
        found != 0
    });
    assert_ne!(found, 0, "no gateway-spawner under {}", s.pid());
    found
}

fn ppid(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

fn count(log: &str, what: &str) -> usize {
    log.matches(what).count()
}

/// SIGUSR1 and wait until the log says a new generation serves.
fn reload(s: &Server) {
    let before = count(&s.error_log(), "graceful restart: generation ");
    s.signal(Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(15), || count(
            &s.error_log(),
            "graceful restart: generation "
        ) > before),
        "reload did not finish: {}",
        s.error_log()
    );
}

// ------------------------------------------------------------------ tests ---

/// The Debian shape: one process on "<socket>-0", made by the spawner (the
/// backend is its child), the request served through it.
fn fastcgi_unix_backend_serves() {
    let s = Server::start_with(
        &conf(&fcgi_app("@DIR@/run/app.sock", r#""max-procs" => 1,"#)),
        &[],
        mkdir_run,
    );
    let (st, body) = get(s.port, "/app/x?mode=env");
    assert_eq!(st, 200, "{body}\n{}", s.error_log());
    assert!(body.contains("SCRIPT_NAME=/app"), "{body}");
    assert!(body.contains("PATH_INFO=/x"), "{body}");
    let sock = s.dir.path().join("run/app.sock-0");
    assert!(is_socket(&sock), "{} is not a socket", sock.display());
    assert!(
        !s.dir.path().join("run/app.sock").exists(),
        "lighttpd names it -0"
    );
    let (pid, text) = process(s.port, "/app?mode=process");
    assert_eq!(ppid(pid), spawner_of(&s), "the spawner started it");
    // lighttpd runs it in its program's directory.
    let dir = self_exe().parent().expect("dir").to_path_buf();
    assert_eq!(field(&text, "cwd"), dir.display().to_string());
    assert!(s.error_log().contains("started, pid"), "{}", s.error_log());
}

/// max-procs 2: two processes on "-0" and "-1"; a request while the first is
/// busy goes to the second.
fn max_procs_two_processes() {
    let s = Server::start_with(
        &conf(&fcgi_app("@DIR@/run/two.sock", r#""max-procs" => 2,"#)),
        &[],
        mkdir_run,
    );
    serving(&s, "/app?mode=length");
    for i in 0..2 {
        let p = s.dir.path().join(format!("run/two.sock-{i}"));
        assert!(is_socket(&p), "{}", p.display());
    }
    let port = s.port;
    let slow = std::thread::spawn(move || process(port, "/app?mode=process&ms=1500").0);
    std::thread::sleep(Duration::from_millis(400));
    let (quick, _) = process(s.port, "/app?mode=process");
    let busy = slow.join().expect("slow request");
    assert_ne!(quick, busy, "both requests went to one process");
    let spawner = spawner_of(&s);
    assert_eq!(ppid(quick), spawner);
    assert_eq!(ppid(busy), spawner);
    let backends: Vec<u32> = children_of(spawner)
        .into_iter()
        .filter(|&p| cmdline(p).contains("fcgi-backend"))
        .collect();
    assert_eq!(backends.len(), 2, "{backends:?}");
}

/// scgi.server on TCP: a bin-path with an argument runs through /bin/sh -c
/// "exec ...", as lighttpd's mod_scgi runs it; the port is the configured one.
fn scgi_tcp_backend_through_sh() {
    let port = common::free_port();
    let extra = format!(
        r#"scgi.server = ( "/s" => ( (
    "bin-path" => "{}",
    "host" => "127.0.0.1",
    "port" => {port},
    "check-local" => "disable",
    "max-procs" => 1,
) ) )"#,
        backend("scgi-backend")
    );
    let s = Server::start(&conf(&extra));
    let (st, body) = get(s.port, "/s/y?mode=env");
    assert_eq!(st, 200, "{body}\n{}", s.error_log());
    assert!(body.contains("SCGI=1"), "{body}");
    let (pid, _) = process(s.port, "/s?mode=process");
    assert_eq!(ppid(pid), spawner_of(&s));
    assert!(
        cmdline(pid).contains("scgi-backend"),
        "exec replaced the shell"
    );
    // The backend listens on exactly that port.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
}

/// bin-environment and bin-copy-environment as lighttpd builds them: with
/// bin-copy-environment only those variables of wickd's environment, without it
/// all of them; bin-environment on top; PHP_FCGI_CHILDREN=1 unless set.
fn environment_reaches_the_backend() {
    std::env::set_var("WICK_T_COPY", "copied");
    std::env::set_var("WICK_T_OTHER", "other");
    let extra = format!(
        r#"fastcgi.server = (
  "/a" => ( ( "bin-path" => "{bin}", "socket" => "@DIR@/run/a.sock", "check-local" => "disable", "max-procs" => 1,
        "bin-environment" => ( "WICK_T_SET" => "set", "PHP_FCGI_CHILDREN" => "7" ),
        "bin-copy-environment" => ( "WICK_T_COPY" ) ) ),
  "/b" => ( ( "bin-path" => "{bin}", "socket" => "@DIR@/run/b.sock", "check-local" => "disable", "max-procs" => 1 ) )
)"#,
        bin = backend("fcgi-backend")
    );
    let s = Server::start_with(&conf(&extra), &[], mkdir_run);
    std::env::remove_var("WICK_T_COPY");
    std::env::remove_var("WICK_T_OTHER");
    let (_, a) = process(s.port, "/a?mode=process");
    assert!(a.contains("env:WICK_T_SET=set\n"), "{a}");
    assert!(a.contains("env:WICK_T_COPY=copied\n"), "{a}");
    assert!(a.contains("env:PHP_FCGI_CHILDREN=7\n"), "{a}");
    assert!(
        !a.contains("WICK_T_OTHER"),
        "not in bin-copy-environment: {a}"
    );
    assert!(!a.contains("env:PATH="), "not in bin-copy-environment: {a}");
    let (_, b) = process(s.port, "/b?mode=process");
    assert!(b.contains("env:WICK_T_OTHER=other\n"), "{b}");
    assert!(b.contains("env:WICK_T_COPY=copied\n"), "{b}");
    assert!(b.contains("env:PHP_FCGI_CHILDREN=1\n"), "{b}");
    assert!(!b.contains("WICK_T_SET"), "{b}");
    assert!(!b.contains("WICKD_ROLE"), "wickd's own variable: {b}");
}

/// A backend killed is started again by the spawner on the socket it had: the
/// next request succeeds (it may wait in the socket's queue meanwhile).
fn killed_backend_is_restarted() {
    let s = Server::start_with(
        &conf(&fcgi_app("@DIR@/run/k.sock", r#""max-procs" => 1,"#)),
        &[],
        mkdir_run,
    );
    let (first, _) = process(s.port, "/app?mode=process");
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), Signal::SIGKILL)
        .expect("kill backend");
    // The very next request: the socket is still there, the new process serves it.
    let (st, body) = get(s.port, "/app?mode=process");
    let took = killed.elapsed();
    assert_eq!(st, 200, "{body}\n{}", s.error_log());
    let second: u32 = field(&body, "pid").parse().expect("pid");
    assert_ne!(second, first);
    assert_eq!(ppid(second), spawner_of(&s));
    println!("  restart: kill to the next answer {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        wait_until(Duration::from_secs(2), || s
            .error_log()
            .contains("died of signal 9; starting it again")),
        "{}",
        s.error_log()
    );
    // And once more: a second death soon after its start is still restarted.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(second as i32), Signal::SIGKILL)
        .expect("kill backend");
    let mut third = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (st, body) = get(s.port, "/app?mode=process");
            third = field(&body, "pid").parse().unwrap_or(0);
            st == 200 && third != second
        }),
        "{}",
        s.error_log()
    );
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut v = self.errors.lock().expect("lock");
        if v.len() < 20 {
            v.push(e);
        }
    }
}

/// One keep-alive client: `/app?mode=length` ("hello", with Content-Length)
/// back to back, a new connection when the server says close; at most `max`
/// requests.
fn client(port: u16, stop: &AtomicBool, t: &Tally, max: usize) {
    let req = b"GET /app?mode=length HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    for _ in 0..max {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if conn.is_none() {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                    let r = BufReader::new(c.try_clone().expect("clone"));
                    conn = Some((c, r));
                }
                Err(e) => {
                    t.fail(format!("connect: {e}"));
                    continue;
                }
            }
        }
        let Some((w, r)) = conn.as_mut() else {
            continue;
        };
        let res = w.write_all(req).and_then(|()| read_response(r));
        match res {
            Ok((200, body, close)) if body == "hello" => {
                t.ok.fetch_add(1, Ordering::Relaxed);
                if close {
                    conn = None;
                }
            }
            Ok(other) => {
                t.fail(format!("unexpected {other:?}"));
                conn = None;
            }
            Err(e) => {
                t.fail(format!("{e}"));
                conn = None;
            }
        }
    }
}

/// (status, body, connection: close) of a Content-Length response.
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String, bool)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("status line {line:?}")))?;
    let (mut len, mut close) = (0usize, false);
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower == "connection: close" {
            close = true;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned(), close))
}

/// Graceful restarts under load: the new generation's backends take the socket
/// name over (rename) before its workers start; the old ones keep serving what
/// the old workers sent them and stop once those workers are gone. No request
/// fails; the backends are replaced.
fn reload_under_load_loses_no_request() {
    reload_under_load(&fcgi_app("@DIR@/run/r.sock", r#""max-procs" => 2,"#));
    println!("  (unix sockets)");
}

/// The same on TCP: the new generation's sockets join the port's SO_REUSEPORT
/// group and take every new connection; the old processes only finish theirs.
fn reload_tcp_backend_under_load() {
    let port = common::free_port();
    reload_under_load(&format!(
        r#"fastcgi.server = ( "/app" => ( ( "bin-path" => "{}", "host" => "127.0.0.1", "port" => {port}, "check-local" => "disable", "max-procs" => 1 ) ) )"#,
        backend("fcgi-backend")
    ));
    println!("  (TCP)");
}

fn reload_under_load(app: &str) {
    let s = Server::start_with(
        &conf(&format!("server.max-worker = 2\n{app}")),
        &[],
        mkdir_run,
    );
    let (before, _) = process(s.port, "/app?mode=process");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (stop, t, port) = (Arc::clone(&stop), Arc::clone(&tally), s.port);
            std::thread::spawn(move || client(port, &stop, &t, 5000))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        reload(&s);
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client");
    }
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let errors = tally.errors.lock().expect("lock").clone();
    println!("  reload under load: {ok} requests, {failed} failed");
    assert_eq!(
        failed,
        0,
        "{failed} failed ({ok} ok): {errors:#?}\n{}",
        s.error_log()
    );
    assert!(ok > 50, "only {ok} requests");
    let (after, _) = process(s.port, "/app?mode=process");
    assert_ne!(before, after, "the backends were replaced");
    // The old generations' backends stop once their workers are gone.
    assert!(
        wait_until(Duration::from_secs(10), || !alive(before)),
        "old backend {before} still runs"
    );
    let spawners: Vec<u32> = s
        .children()
        .into_iter()
        .filter(|&p| cmdline(p).contains("gateway-spawner"))
        .collect();
    assert!(
        wait_until(Duration::from_secs(10), || s
            .children()
            .into_iter()
            .filter(|&p| cmdline(p).contains("gateway-spawner"))
            .count()
            == 1),
        "old spawners left: {spawners:?}"
    );
}

/// SIGINT (graceful) and SIGTERM: no backend process is left, nor its socket.
fn shutdown_leaves_no_backend() {
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let mut s = Server::start_with(
            &conf(&fcgi_app("@DIR@/run/x.sock", r#""max-procs" => 2,"#)),
            &[],
            mkdir_run,
        );
        serving(&s, "/app?mode=length");
        let spawner = spawner_of(&s);
        let backends: Vec<u32> = children_of(spawner)
            .into_iter()
            .filter(|&p| cmdline(p).contains("fcgi-backend"))
            .collect();
        assert_eq!(backends.len(), 2, "{backends:?}");
        assert_eq!(get(s.port, "/app?mode=length").0, 200);
        s.signal(sig);
        assert!(
            s.wait_exit(Duration::from_secs(10)).is_some(),
            "{sig}: wickd runs on"
        );
        assert!(
            wait_until(Duration::from_secs(3), || backends
                .iter()
                .all(|&p| !alive(p))),
            "{sig}: backends {backends:?} left running"
        );
        for i in 0..2 {
            let p = s.dir.path().join(format!("run/x.sock-{i}"));
            assert!(!p.exists(), "{sig}: {} left", p.display());
        }
        let log = s.error_log();
        assert!(!log.contains("died of signal"), "{sig}: {log}");
    }
}

/// As root: the backend runs as server.username (and, in a block with
/// cgi.user, as that user), its socket made so that the workers, running as
/// server.username, connect.
fn backend_runs_as_the_server_user() {
    if common::skip_unless_root("backend_runs_as_the_server_user") {
        return;
    }
    let (Some(nobody), Some(daemon)) = (uid_of("nobody"), uid_of("daemon")) else {
        eprintln!("SKIP backend_runs_as_the_server_user: no nobody/daemon user");
        return;
    };
    // The program must be reachable by those users: a copy in the test's
    // directory (this binary's own may sit beneath a private directory).
    let extra = r#"server.username = "nobody"
server.groupname = "nogroup"
fastcgi.server = ( "/app" => ( ( "bin-path" => "@DIR@/bin/backend fcgi-backend", "socket" => "@DIR@/run/u.sock", "check-local" => "disable", "max-procs" => 1 ) ) )
$HTTP["url"] =^ "/d" {
  cgi.user = "daemon"
  fastcgi.server = ( "/d" => ( ( "bin-path" => "@DIR@/bin/backend fcgi-backend", "socket" => "@DIR@/run/d.sock", "check-local" => "disable", "max-procs" => 1 ) ) )
}
"#;
    let group = if group_exists("nogroup") {
        "nogroup"
    } else {
        "nobody"
    };
    let extra = extra.replace("\"nogroup\"", &format!("\"{group}\""));
    let s = Server::start_with(&conf(&extra), &[], |dir| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        std::fs::copy(self_exe(), bin.join("backend")).expect("copy backend");
        std::fs::set_permissions(bin.join("backend"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod backend");
        mkdir_run(dir);
        // The spawner binds as nobody: the directory is nobody's.
        nix::unistd::chown(
            &dir.join("run"),
            Some(nix::unistd::Uid::from_raw(nobody)),
            None,
        )
        .expect("chown run");
    });
    let (pid, text) = process(s.port, "/app?mode=process");
    assert_eq!(field(&text, "uid"), nobody.to_string(), "{text}");
    let meta = std::fs::metadata(s.dir.path().join("run/u.sock-0")).expect("socket");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), nobody, "made by the spawner as nobody");
    assert_eq!(ppid(pid), spawner_of(&s));
    let (_, d) = process(s.port, "/d?mode=process");
    assert_eq!(
        field(&d, "uid"),
        daemon.to_string(),
        "cgi.user's backend: {d}"
    );
}

fn uid_of(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

fn group_exists(name: &str) -> bool {
    nix::unistd::Group::from_name(name).ok().flatten().is_some()
}

/// Debian's 15-fastcgi-php.conf shape with the real php-cgi: a PHP page.
fn php_cgi_debian_style() {
    let php = Path::new("/usr/bin/php-cgi");
    if !php.exists() {
        eprintln!("SKIP php_cgi_debian_style: /usr/bin/php-cgi is not installed");
        return;
    }
    let extra = r#"fastcgi.server += ( ".php" =>
	((
		"bin-path" => "/usr/bin/php-cgi",
		"socket" => "@DIR@/run/php.socket",
		"max-procs" => 1,
		"bin-environment" => (
			"PHP_FCGI_CHILDREN" => "4",
			"PHP_FCGI_MAX_REQUESTS" => "10000"
		),
		"bin-copy-environment" => (
			"PATH", "SHELL", "USER"
		),
		"broken-scriptfilename" => "enable"
	))
)
index-file.names = ( "index.php" )
"#;
    let mut s = Server::start_with(&conf(extra), &[], |dir| {
        mkdir_run(dir);
        std::fs::write(
            dir.join("www/index.php"),
            "<?php echo \"sum=\", 6 * 7, \"\\n\"; echo \"sapi=\", php_sapi_name(), \"\\n\"; echo \"script=\", $_SERVER['SCRIPT_NAME'], \"\\n\";",
        )
        .expect("write index.php");
    });
    let (st, body) = get(s.port, "/index.php");
    assert_eq!(st, 200, "{body}\n{}", s.error_log());
    assert!(body.contains("sum=42"), "{body}");
    assert!(body.contains("sapi=cgi-fcgi"), "{body}");
    assert!(body.contains("script=/index.php"), "{body}");
    // The directory index reaches it too.
    let (st, body) = get(s.port, "/");
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("sum=42"), "{body}");
    // Pipelined, POSTs among them: each request after the first goes on the
    // connection the one before kept (FCGI_KEEP_CONN), as php-cgi allows.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reqs = String::new();
    for i in 0..6 {
        reqs.push_str(&match i % 2 {
            0 => "GET /index.php HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            _ => "POST /index.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1".to_string(),
        });
    }
    reqs.push_str("GET /index.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    c.write_all(reqs.as_bytes()).expect("pipelined");
    let mut raw = String::new();
    let _ = c.read_to_string(&mut raw);
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 7, "{raw}");
    assert_eq!(raw.matches("sum=42").count(), 7, "{raw}");
    // php-cgi with PHP_FCGI_CHILDREN=4: its master and four children, all gone
    // at shutdown.
    let spawner = spawner_of(&s);
    let php_master = children_of(spawner)
        .into_iter()
        .find(|&p| cmdline(p).contains("php-cgi"))
        .expect("php-cgi under the spawner");
    let mut family = vec![php_master];
    wait_until(Duration::from_secs(3), || {
        children_of(php_master).len() == 4
    });
    family.extend(children_of(php_master));
    assert_eq!(family.len(), 5, "{family:?}");
    // Its master killed: a new one (and four children) is started; the old
    // children, orphans now, are the spawner's, and go at shutdown too.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(php_master as i32),
        Signal::SIGKILL,
    )
    .expect("kill php-cgi");
    let mut second = 0;
    assert!(
        wait_until(Duration::from_secs(5), || {
            second = children_of(spawner)
                .into_iter()
                .find(|&p| {
                    p != php_master && cmdline(p).contains("php-cgi") && !family.contains(&p)
                })
                .unwrap_or(0);
            second != 0 && children_of(second).len() == 4
        }),
        "no new php-cgi: {}",
        s.error_log()
    );
    assert_eq!(get(s.port, "/index.php").0, 200);
    family.push(second);
    family.extend(children_of(second));
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        wait_until(Duration::from_secs(3), || family.iter().all(|&p| !alive(p))),
        "php-cgi processes left: {family:?}"
    );
}

/// A socket in a directory that does not exist, a program that is not there:
/// the start fails saying where (file:line); -tt says so and passes, as
/// lighttpd's -tt does.
fn start_up_errors_and_tt() {
    let dir = common::TempDir::new();
    let run = |conf_text: &str, args: &[&str]| {
        let conf = dir.path().join("wickd.conf");
        std::fs::create_dir_all(dir.path().join("www")).expect("www");
        std::fs::write(
            &conf,
            common::render(conf_text, common::free_port(), dir.path()),
        )
        .expect("conf");
        let out = std::process::Command::new(common::wickd_bin())
            .args(args)
            .arg("-f")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run wickd");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let no_dir = conf(&fcgi_app("@DIR@/nope/app.sock", r#""max-procs" => 1,"#));
    let (code, err) = run(&no_dir, &["-D"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("wickd.conf:6") && err.contains("nope"),
        "{err}"
    );
    let (code, err) = run(&no_dir, &["-tt"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("start-up will fail"), "{err}");
    let no_prog = conf(
        r#"fastcgi.server = ( "/app" => ( ( "bin-path" => "/nonexistent/prog", "socket" => "@DIR@/p.sock", "check-local" => "disable" ) ) )"#,
    );
    let (code, err) = run(&no_prog, &["-tt"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("invalid \"bin-path\""), "{err}");
    let (code, err) = run(&no_prog, &["-D"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("invalid \"bin-path\"") && err.contains("wickd.conf:6"),
        "{err}"
    );
    // Two programs on one socket: refused (lighttpd: duplicate unixsocket path).
    let dup = conf(
        r#"fastcgi.server = ( "/a" => ( ( "bin-path" => "/bin/true", "socket" => "@DIR@/d.sock" ) ),
                   "/b" => ( ( "bin-path" => "/bin/false", "socket" => "@DIR@/d.sock" ) ) )"#,
    );
    let (code, err) = run(&dup, &["-tt"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("duplicate socket"), "{err}");
}
