//! The master as a supervisor: process titles, a killed worker replaced, no
//! worker outliving the master, SIGTERM and SIGINT stops.

mod common;

use common::{children_of, cmdline, wait_until, Server};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;

const CONF: &str = r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 2
"#;

fn start() -> Server {
    Server::start_with(CONF, &[], |d| {
        std::fs::write(d.join("www/index.html"), "hello from wick\n").expect("index");
    })
}

/// Process state letter from /proc/PID/stat, None when the pid is gone.
fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn alive(pid: u32) -> bool {
    state(pid).is_some_and(|c| c != 'Z' && c != 'X')
}

/// The master's `n` workers, once each is past its exec (a child between fork
/// and exec still shows the master's title; one bound to a busy CPU stays
/// there a while).
fn workers(s: &Server, n: usize) -> Vec<u32> {
    let mut kids = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            kids = children_of(s.pid());
            kids.len() == n
                && kids
                    .iter()
                    .all(|&p| cmdline(p).starts_with("wickd: worker "))
        }),
        "expected {n} workers, have {kids:?}"
    );
    kids.sort_unstable();
    kids
}

#[test]
fn ps_shows_the_roles() {
    let s = start();
    assert!(
        cmdline(s.pid()).starts_with("wickd: master"),
        "{}",
        cmdline(s.pid())
    );
    let mut titles: Vec<String> = workers(&s, 2).iter().map(|&p| cmdline(p)).collect();
    titles.sort();
    assert_eq!(titles, ["wickd: worker 1", "wickd: worker 2"]);
    for p in std::iter::once(s.pid()).chain(children_of(s.pid())) {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        assert_eq!(comm.trim(), "wickd", "comm of {p}");
    }
}

#[test]
fn killed_worker_is_replaced() {
    let s = start();
    // Killing a worker before every worker is ready fails the start-up by design.
    assert!(
        wait_until(Duration::from_secs(10), || s
            .error_log()
            .contains("server started")),
        "not ready: {}",
        s.error_log()
    );
    let before = workers(&s, 2);
    let victim = before[0];
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill worker");
    let mut now = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            now = children_of(s.pid());
            // A child between fork and exec still shows the master's title.
            now.len() == 2
                && !now.contains(&victim)
                && now
                    .iter()
                    .all(|&p| cmdline(p).starts_with("wickd: worker "))
        }),
        "worker not replaced: {now:?}; master alive: {}; log:\n{}",
        alive(s.pid()),
        s.error_log()
    );
    let titles: Vec<String> = now.iter().map(|&p| cmdline(p)).collect();
    assert!(
        titles.iter().all(|t| t.starts_with("wickd: worker ")),
        "{titles:?}"
    );
    for _ in 0..10 {
        let r = s.get("/index.html");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hello from wick\n");
    }
    assert!(
        wait_until(Duration::from_secs(5), || s
            .error_log()
            .contains("killed by signal 9 (SIGKILL)")),
        "death not logged: {}",
        s.error_log()
    );
}

#[test]
fn no_worker_outlives_a_killed_master() {
    let mut s = start();
    let kids = workers(&s, 2);
    let mut master = s.child.take().expect("master");
    master.kill().expect("SIGKILL master");
    master.wait().expect("reap master");
    assert!(
        wait_until(Duration::from_secs(5), || kids.iter().all(|&k| !alive(k))),
        "workers still running after the master died: {:?}",
        kids.iter().map(|&k| (k, state(k))).collect::<Vec<_>>()
    );
}

#[test]
fn sigterm_stops_everything() {
    let mut s = start();
    let kids = workers(&s, 2);
    s.signal(Signal::SIGTERM);
    let st = s
        .wait_exit(Duration::from_secs(5))
        .expect("master exits on SIGTERM");
    assert!(st.success(), "{st}");
    assert!(wait_until(Duration::from_secs(3), || kids
        .iter()
        .all(|&k| !alive(k))));
    let log = std::fs::read_to_string(s.dir.path().join("error.log")).unwrap_or_default();
    assert!(log.contains("server stopped by UID ="), "{log}");
}

#[test]
fn sigint_stops_gracefully() {
    let mut s = start();
    let kids = workers(&s, 2);
    assert_eq!(s.get("/index.html").status, 200);
    s.signal(Signal::SIGINT);
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("master exits on SIGINT");
    assert!(st.success(), "{st}");
    assert!(wait_until(Duration::from_secs(3), || kids
        .iter()
        .all(|&k| !alive(k))));
    let log = std::fs::read_to_string(s.dir.path().join("error.log")).unwrap_or_default();
    assert!(log.contains("graceful shutdown started"), "{log}");
    // The listening socket is gone with the server.
    assert!(std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err());
}

#[test]
fn binds_ipv4_ipv6_and_unix_sockets() {
    let v6 = common::free_port();
    let conf = format!(
        "{CONF}$SERVER[\"socket\"] == \"[::1]:{v6}\" {{ }}\n$SERVER[\"socket\"] == \"@DIR@/wickd.sock\" {{ }}\n"
    );
    let mut s = Server::start_with(&conf, &[], |d| {
        std::fs::write(d.join("www/index.html"), "hello from wick\n").expect("index");
    });
    let sock = s.dir.path().join("wickd.sock");
    assert_eq!(s.get("/index.html").text(), "hello from wick\n");
    let r = common::curl(&format!("http://[::1]:{v6}/index.html"), &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "hello from wick\n"));
    let r = common::curl(
        "http://localhost/index.html",
        &["--unix-socket", &sock.to_string_lossy()],
    );
    assert_eq!((r.status, r.text().as_str()), (200, "hello from wick\n"));
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(Duration::from_secs(5)).is_some());
    assert!(!sock.exists(), "the unix socket is removed at exit");
}

#[test]
fn a_binary_replaced_on_disk_does_not_reach_new_children() {
    let dir = common::TempDir::new();
    std::fs::create_dir_all(dir.path().join("www")).expect("www");
    std::fs::write(dir.path().join("www/index.html"), "hello from wick\n").expect("index");
    let bin = dir.path().join("wickd");
    std::fs::copy(common::wickd_bin(), &bin).expect("copy wickd");
    let port = common::free_port();
    let conf = dir.path().join("wickd.conf");
    std::fs::write(&conf, common::render(CONF, port, dir.path())).expect("conf");
    // Another test thread may fork while the copy is open for writing; its child
    // holds the fd until exec, and exec of the copy fails with ETXTBSY meanwhile.
    let child = (0..50)
        .find_map(|_| {
            match std::process::Command::new(&bin)
                .args(["-D", "-f"])
                .arg(&conf)
                .stdin(std::process::Stdio::null())
                .spawn()
            {
                Ok(c) => Some(c),
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(20));
                    None
                }
                Err(e) => panic!("spawn: {e}"),
            }
        })
        .expect("spawn: text file busy");
    let mut s = Server {
        child: Some(child),
        port,
        dir,
        conf,
    };
    s.wait_ready(Duration::from_secs(15));
    // Killing a worker before every worker is ready fails the start-up by design.
    assert!(
        wait_until(Duration::from_secs(10), || s
            .error_log()
            .contains("server started")),
        "not ready: {}",
        s.error_log()
    );
    let before = workers(&s, 2);
    // A package upgrade renames a new file over the old one; here the "new
    // version" would fail at once if a child were started from it.
    let fake = s.dir.path().join("wickd.new");
    std::fs::write(&fake, "#!/bin/sh\nexit 99\n").expect("fake");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::rename(&fake, &bin).expect("replace");
    kill(Pid::from_raw(before[0] as i32), Signal::SIGKILL).expect("kill worker");
    let mut now = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            now = children_of(s.pid());
            now.len() == 2 && !now.contains(&before[0])
        }),
        "no replacement: {now:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    for p in children_of(s.pid()) {
        assert!(cmdline(p).starts_with("wickd: worker "), "{}", cmdline(p));
    }
    assert_eq!(s.get("/index.html").text(), "hello from wick\n");
    assert!(!s.error_log().contains("status 99"), "{}", s.error_log());
}

/// The CPUs in /proc/PID/status's Cpus_allowed_list ("0-3,6").
fn allowed_cpus(pid: u32) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
            cpus.extend(a..=b);
        }
    }
    cpus
}

/// As many workers as CPUs: each worker is bound to a CPU of its own; one
/// more worker than CPUs: all of them are left to the scheduler.
#[test]
fn workers_bind_to_a_cpu_each_when_there_is_one_each() {
    let cpus = allowed_cpus(std::process::id());
    if cpus.len() < 2 || cpus.len() > 16 {
        eprintln!(
            "skipped: {} CPUs allowed here; binding needs 2 to 16 (as many workers)",
            cpus.len()
        );
        return;
    }
    for (count, bound) in [(cpus.len(), true), (cpus.len() + 1, false)] {
        let conf = CONF.replace(
            "server.max-worker = 2",
            &format!("server.max-worker = {count}"),
        );
        let s = Server::start_with(&conf, &[], |d| {
            std::fs::write(d.join("www/index.html"), "hello\n").expect("index");
        });
        let sets: Vec<Vec<usize>> = workers(&s, count)
            .iter()
            .map(|&p| allowed_cpus(p))
            .collect();
        if bound {
            let mut each: Vec<usize> = sets.iter().flatten().copied().collect();
            each.sort_unstable();
            assert!(sets.iter().all(|c| c.len() == 1), "{sets:?}");
            assert_eq!(each, cpus, "not one CPU each: {sets:?}");
        } else {
            assert!(sets.iter().all(|c| *c == cpus), "{sets:?}");
        }
        assert!(
            !s.error_log().contains("could not be bound"),
            "{}",
            s.error_log()
        );
        assert_eq!(s.get("/index.html").status, 200);
    }
}
