//! The spawner role end to end: this test binary plays the master and a worker, and
//! re-executes itself as the spawner (WICK_SPAWNER_ROLE set, channel on fd 3), so the
//! spawner runs single-threaded and confined exactly as under wickd.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use wick_proto::setup::{SpawnerFds, SpawnerSetup, WorkerSetup};
use wick_proto::spawner::{
    CgiRequest, ExitStatus, FinishReason, FromWorkerToSpawner, HttpVersion, SpawnerToWorker,
};
use wick_proto::{Channel, FromWorker, ToWorker, PROTO_VERSION};

const ROLE: &str = "WICK_SPAWNER_ROLE";

fn main() {
    if std::env::var_os(ROLE).is_some() {
        // SAFETY: started by `start_spawner` below with the channel dup'ed onto fd 3.
        let chan = unsafe { Channel::from_inherited() };
        std::process::exit(wick_gateway_spawner::run(chan));
    }
    let tests: &[(&str, fn())] = &[
        ("run_script_env_stdin_exit", run_script_env_stdin_exit),
        (
            "forged_requests_refused_and_logged",
            forged_requests_refused_and_logged,
        ),
        (
            "client_gone_kills_process_group",
            client_gone_kills_process_group,
        ),
        (
            "worker_gone_kills_its_scripts",
            worker_gone_kills_its_scripts,
        ),
        ("root_confinement_and_user", root_confinement_and_user),
        (
            "anything_but_its_setup_first_fails",
            anything_but_its_setup_first_fails,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    for (name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|p| name.contains(p.as_str())) {
            continue;
        }
        let ok = std::panic::catch_unwind(f).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    if failed > 0 {
        println!("{failed} failed");
        std::process::exit(101);
    }
}

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A spawner child, the test's master channel to it, one worker channel, the log file.
struct Harness {
    child: Child,
    master: Channel,
    worker: Channel,
    dir: Tmp,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join("www/cgi-bin").join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, body).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// This binary re-executed as the spawner, its channel on fd 3.
fn launch() -> (Child, Channel) {
    let (ours, theirs) = Channel::pair().expect("pair");
    let exe = std::env::current_exe().expect("exe");
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.env(ROLE, "1");
    // SAFETY: dup2 is async-signal-safe; it puts the channel on fd 3 without CLOEXEC.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn spawner");
    drop(theirs);
    (child, ours)
}

fn start(extra_conf: &str) -> Harness {
    let base = std::env::temp_dir().join("wick-spawner-proto-XXXXXX");
    let dir = Tmp(nix::unistd::mkdtemp(&base).expect("mkdtemp"));
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script(
        &dir.0,
        "env.cgi",
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"uid=$(id -u)\"\necho \"pwd=$(pwd)\"\n\
         grep CapEff /proc/self/status\n\
         env | sort\necho body:\ncat\necho to-stderr >&2\n",
    );
    script(
        &dir.0,
        "group.cgi",
        "#!/bin/sh\nsleep 30 &\nprintf 'Content-Type: text/plain\\r\\n\\r\\nstarted\\n'\nexec sleep 30\n",
    );
    let conf = format!(
        "server.document-root = \"{d}/www\"\nserver.port = 8080\nserver.modules = (\"mod_cgi\")\n\
         $HTTP[\"url\"] =^ \"/cgi-bin/\" {{\n  cgi.assign = (\".cgi\" => \"\")\n}}\n{extra_conf}\n",
        d = dir.0.display()
    );
    let cfg = wick_conf::load_str(&conf, "test.conf", &dir.0).expect("config");
    let (child, ours) = launch();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.0.join("error.log"))
        .expect("log");
    let log: OwnedFd = log.into();
    // What the master sends: the spawner's slice of the config, the log fd.
    let fds = SpawnerFds {
        error_log: Some(log.as_fd()),
    };
    let setup = SpawnerSetup {
        proto: PROTO_VERSION,
        generation: 1,
        config: wick_gateway_spawner::policy::slice(&cfg),
        fds: fds.counts(),
    };
    ours.send(
        &ToWorker::SpawnerSetup(Box::new(setup)),
        &fds.into_vec().expect("fds"),
    )
    .expect("setup");
    let (spawner_end, worker) = Channel::pair().expect("pair");
    ours.send(
        &ToWorker::SpawnerChannel { worker_id: 1 },
        &[spawner_end.as_fd()],
    )
    .expect("worker");
    drop(spawner_end);
    let mut h = Harness {
        child,
        master: ours,
        worker,
        dir,
    };
    match h.master.recv::<FromWorker>().expect("recv").expect("msg").0 {
        FromWorker::Ready { .. } => {}
        other => panic!("expected Ready, got {other:?}: {}", h.log()),
    }
    h
}

impl Harness {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default()
    }

    fn run(&mut self, id: u64, path: &str, script_len: usize) -> (SpawnerToWorker, Vec<OwnedFd>) {
        let req = CgiRequest {
            id,
            method: "POST".into(),
            version: Some(HttpVersion::Http11),
            target: format!("{path}?q=1"),
            path: path.into(),
            script_name_len: script_len as u32,
            query: "q=1".into(),
            host: Some("localhost:8080".into()),
            remote_addr: "127.0.0.1".parse().ok(),
            remote_port: 5555,
            headers: vec![
                ("Host".into(), "localhost:8080".into()),
                ("Proxy".into(), "x".into()),
            ],
            content_length: 5,
            blocks: vec![0, 1],
            ..Default::default()
        };
        self.worker
            .send(&FromWorkerToSpawner::Run(Box::new(req)), &[])
            .expect("send run");
        self.answer()
    }

    fn answer(&mut self) -> (SpawnerToWorker, Vec<OwnedFd>) {
        self.worker
            .recv::<SpawnerToWorker>()
            .expect("recv")
            .expect("answer")
    }
}

fn group_alive(pgid: u32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid as i32), None).is_ok()
}

fn wait_gone(pgid: u32, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if !group_alive(pgid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn run_script_env_stdin_exit() {
    let mut h = start("");
    let req = CgiRequest {
        id: 42,
        method: "POST".into(),
        version: Some(HttpVersion::Http11),
        target: "/cgi-bin/env.cgi/more?q=1".into(),
        path: "/cgi-bin/env.cgi/more".into(),
        script_name_len: "/cgi-bin/env.cgi".len() as u32,
        query: "q=1".into(),
        host: Some("localhost:8080".into()),
        remote_addr: "127.0.0.1".parse().ok(),
        remote_port: 5555,
        headers: vec![
            ("Host".into(), "localhost:8080".into()),
            ("Proxy".into(), "x".into()),
        ],
        content_length: 5,
        blocks: vec![0, 1],
        ..Default::default()
    };
    h.worker
        .send(&FromWorkerToSpawner::Run(Box::new(req)), &[])
        .expect("send run");
    let (msg, fds) = h.answer();
    let SpawnerToWorker::Started { id: 42, pid } = msg else {
        panic!("not started: {msg:?}: {}", h.log())
    };
    let [stdin, stdout, stderr]: [OwnedFd; 3] = fds.try_into().expect("three fds");
    File::from(stdin).write_all(b"hello").expect("stdin");
    let mut out = String::new();
    File::from(stdout).read_to_string(&mut out).expect("stdout");
    let mut err = String::new();
    File::from(stderr).read_to_string(&mut err).expect("stderr");
    assert!(out.starts_with("Content-Type: text/plain\r\n\r\n"), "{out}");
    let docroot = h.dir.0.join("www");
    for want in [
        "GATEWAY_INTERFACE=CGI/1.1".to_string(),
        "REQUEST_METHOD=POST".into(),
        "SCRIPT_NAME=/cgi-bin/env.cgi".into(),
        "PATH_INFO=/more".into(),
        format!("PATH_TRANSLATED={}/more", docroot.display()),
        format!("SCRIPT_FILENAME={}/cgi-bin/env.cgi", docroot.display()),
        format!("DOCUMENT_ROOT={}", docroot.display()),
        "REQUEST_URI=/cgi-bin/env.cgi/more?q=1".into(),
        "QUERY_STRING=q=1".into(),
        "SERVER_NAME=localhost".into(),
        "SERVER_PORT=8080".into(),
        "SERVER_PROTOCOL=HTTP/1.1".into(),
        "REMOTE_ADDR=127.0.0.1".into(),
        "REMOTE_PORT=5555".into(),
        "CONTENT_LENGTH=5".into(),
        "REDIRECT_STATUS=200".into(),
        "HTTP_HOST=localhost:8080".into(),
        format!("pwd={}/cgi-bin", docroot.display()),
        "body:\nhello".into(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("HTTP_PROXY"), "httpoxy: {out}");
    assert!(!out.contains(ROLE), "spawner environment leaked: {out}");
    assert_eq!(err, "to-stderr\n");
    match h.answer().0 {
        SpawnerToWorker::Exited {
            id: 42,
            status: ExitStatus::Exited(0),
        } => {}
        other => panic!("expected exit: {other:?}"),
    }
    h.worker
        .send(
            &FromWorkerToSpawner::Finish {
                id: 42,
                reason: FinishReason::Done,
            },
            &[],
        )
        .expect("finish");
    assert!(wait_gone(pid, Duration::from_secs(2)));
    h.master.send(&ToWorker::Terminate, &[]).expect("terminate");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(st)) = h.child.try_wait() {
            assert!(st.success(), "{st}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("spawner did not exit on Terminate");
}

fn forged_requests_refused_and_logged() {
    let mut h = start("");
    std::fs::write(h.dir.0.join("outside.cgi"), "#!/bin/sh\necho pwned\n").expect("write");
    std::fs::set_permissions(
        h.dir.0.join("outside.cgi"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let cases: &[(&str, usize, u16)] = &[
        ("/cgi-bin/../../outside.cgi", 26, 400),
        ("/cgi-bin/nope.cgi", 17, 404),
        ("/cgi-bin/env.cgi", 5, 400),
        ("/index.cgi", 10, 403),
    ];
    for (i, (path, n, status)) in cases.iter().enumerate() {
        match h.run(i as u64, path, *n).0 {
            SpawnerToWorker::Refused {
                id,
                status: s,
                reason,
            } => {
                assert_eq!(id, i as u64);
                assert_eq!(s, *status, "{path}: {reason}");
            }
            other => panic!("{path}: not refused: {other:?}"),
        }
    }
    let log = h.log();
    assert_eq!(log.matches("cgi refused").count(), cases.len(), "{log}");
    assert!(log.contains("(gateway-spawner)"), "{log}");
}

fn client_gone_kills_process_group() {
    let mut h = start("");
    let SpawnerToWorker::Started { id: 7, pid } = ({
        let req = CgiRequest {
            id: 7,
            method: "GET".into(),
            target: "/cgi-bin/group.cgi".into(),
            path: "/cgi-bin/group.cgi".into(),
            script_name_len: 18,
            blocks: vec![0, 1],
            ..Default::default()
        };
        h.worker
            .send(&FromWorkerToSpawner::Run(Box::new(req)), &[])
            .expect("run");
        let (m, fds) = h.answer();
        let mut out = File::from(fds.into_iter().nth(1).expect("stdout"));
        let mut buf = [0u8; 64];
        let n = out.read(&mut buf).expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("Content-Type"));
        m
    }) else {
        panic!("not started: {}", h.log())
    };
    assert!(group_alive(pid));
    h.worker
        .send(
            &FromWorkerToSpawner::Finish {
                id: 7,
                reason: FinishReason::ClientGone,
            },
            &[],
        )
        .expect("finish");
    assert!(
        wait_gone(pid, Duration::from_secs(4)),
        "process group {pid} still alive"
    );
}

fn worker_gone_kills_its_scripts() {
    let mut h = start("");
    let req = CgiRequest {
        id: 9,
        method: "GET".into(),
        target: "/cgi-bin/group.cgi".into(),
        path: "/cgi-bin/group.cgi".into(),
        script_name_len: 18,
        blocks: vec![0, 1],
        ..Default::default()
    };
    h.worker
        .send(&FromWorkerToSpawner::Run(Box::new(req)), &[])
        .expect("run");
    let SpawnerToWorker::Started { pid, .. } = h.answer().0 else {
        panic!("not started: {}", h.log())
    };
    // The worker dies: its end of the channel closes.
    let (dummy, _keep) = Channel::pair().expect("pair");
    h.worker = dummy;
    assert!(
        wait_gone(pid, Duration::from_secs(4)),
        "process group {pid} still alive"
    );
}

fn root_confinement_and_user() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP root_confinement_and_user: needs root (privilege drop to nobody)");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("nobody");
    let mut h = start("server.username = \"nobody\"\n");
    let status = std::fs::read_to_string(format!("/proc/{}/status", h.child.id())).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_default()
    };
    // CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7).
    assert_eq!(field("CapEff:"), "00000000000000e0", "{status}");
    assert_eq!(field("CapPrm:"), "00000000000000e0", "{status}");
    assert_eq!(field("CapBnd:"), "00000000000000e0", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    assert!(
        field("Uid:").starts_with(&nobody.uid.to_string()),
        "{status}"
    );
    let (msg, fds) = h.run(1, "/cgi-bin/env.cgi", 16);
    let SpawnerToWorker::Started { .. } = msg else {
        panic!("not started: {msg:?}: {}", h.log())
    };
    let [stdin, stdout, _stderr]: [OwnedFd; 3] = fds.try_into().expect("three fds");
    drop(stdin);
    let mut out = String::new();
    File::from(stdout).read_to_string(&mut out).expect("stdout");
    assert!(out.contains(&format!("uid={}", nobody.uid)), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

/// The first message must be the spawner's setup: a worker's setup, or a later
/// message, makes it answer Failed with the reason and exit.
fn anything_but_its_setup_first_fails() {
    let dir = std::env::temp_dir();
    let cfg = wick_conf::load_str("server.port = 8080\n", "test.conf", &dir).expect("config");
    let worker_setup = ToWorker::WorkerSetup(Box::new(WorkerSetup {
        proto: PROTO_VERSION,
        generation: 1,
        worker_id: 1,
        config: cfg.for_worker(),
        report_activity: false,
        tls: None,
        counter_slot: None,
        fds: Default::default(),
    }));
    for (msg, want) in [
        (worker_setup, "got a worker's setup"),
        (
            ToWorker::Drain { timeout_ms: 0 },
            "expected the setup first, got Drain",
        ),
    ] {
        let (mut child, mut master) = launch();
        master.send(&msg, &[]).expect("send");
        let reason = loop {
            match master.recv::<FromWorker>().expect("recv") {
                Some((FromWorker::Failed { reason }, _)) => break reason,
                Some((FromWorker::Log { .. }, _)) => continue,
                other => panic!("expected Failed, got {other:?}"),
            }
        };
        assert!(reason.contains(want), "{reason}");
        let st = child.wait().expect("wait");
        assert_eq!(st.code(), Some(1));
    }
}
