//! mod_cgi through the real server: the worker asks the gateway-spawner, which runs
//! the script; environment, request bodies both ways, response heads (Status,
//! Location, NPH, no headers, malformed), local redirects, X-Sendfile, error
//! handlers, stderr to the error log, timeouts and disconnects killing the script's
//! process group, cgi.user, and many requests at once.

mod common;

use common::{curl, wait_until, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const CONF: &str = r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_cgi")
$HTTP["url"] =^ "/cgi-bin/" {
    cgi.assign = (".cgi" => "", ".sh" => "/bin/sh")
}
"#;

fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join("www/cgi-bin").join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, body).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

const ENV: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n";
const ECHO: &str =
    "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec cat\n";

fn start(extra: &str, scripts: &[(&str, &str)]) -> Server {
    let conf = format!("{CONF}{extra}");
    Server::start_with(&conf, &[], |dir| {
        for (n, b) in scripts {
            script(dir, n, b);
        }
    })
}

fn env_map(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One raw request, the whole answer (the request asks the server to close).
fn raw(port: u16, req: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(req).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn group_alive(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

fn read_pid(p: &Path) -> i32 {
    let mut pid = 0;
    wait_until(Duration::from_secs(5), || {
        pid = std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    });
    assert!(
        pid > 0,
        "the script did not write its pid to {}",
        p.display()
    );
    pid
}

#[test]
fn environment_variables_one_by_one() {
    let s = start("", &[("env.cgi", ENV)]);
    let r = curl(
        &s.url("/cgi-bin/env.cgi/extra/info?a=1&b=two"),
        &[
            "-H",
            "X-Custom-Thing: yes",
            "-H",
            "Proxy: http://evil.example/",
            "-H",
            "Content-Type: text/x-test",
            "-d",
            "abc",
        ],
    );
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    let docroot = s.docroot().display().to_string();
    let port = s.port.to_string();
    let want: &[(&str, String)] = &[
        ("GATEWAY_INTERFACE", "CGI/1.1".into()),
        ("SERVER_SOFTWARE", "wickd/0.1.0".into()),
        ("SERVER_NAME", "127.0.0.1".into()),
        ("SERVER_ADDR", "127.0.0.1".into()),
        ("SERVER_PORT", port.clone()),
        ("SERVER_PROTOCOL", "HTTP/1.1".into()),
        ("REQUEST_METHOD", "POST".into()),
        (
            "REQUEST_URI",
            "/cgi-bin/env.cgi/extra/info?a=1&b=two".into(),
        ),
        ("REQUEST_SCHEME", "http".into()),
        ("SCRIPT_NAME", "/cgi-bin/env.cgi".into()),
        ("SCRIPT_FILENAME", format!("{docroot}/cgi-bin/env.cgi")),
        ("PATH_INFO", "/extra/info".into()),
        ("PATH_TRANSLATED", format!("{docroot}/extra/info")),
        ("QUERY_STRING", "a=1&b=two".into()),
        ("CONTENT_TYPE", "text/x-test".into()),
        ("CONTENT_LENGTH", "3".into()),
        ("REMOTE_ADDR", "127.0.0.1".into()),
        ("DOCUMENT_ROOT", docroot.clone()),
        ("REDIRECT_STATUS", "200".into()),
        ("HTTP_X_CUSTOM_THING", "yes".into()),
        ("HTTP_HOST", format!("127.0.0.1:{port}")),
    ];
    for (k, v) in want {
        assert_eq!(env.get(*k), Some(v), "{k} in {env:?}");
    }
    let rport: u16 = env
        .get("REMOTE_PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(rport > 0, "REMOTE_PORT {env:?}");
    // httpoxy, and variables the script must not get.
    for k in [
        "HTTP_PROXY",
        "HTTPS",
        "REMOTE_USER",
        "AUTH_TYPE",
        "WICKD_ROLE",
    ] {
        assert!(!env.contains_key(k), "{k} set: {env:?}");
    }
    // No PATH_INFO without extra path; GET has CONTENT_LENGTH 0.
    let r = s.get("/cgi-bin/env.cgi");
    let env = env_map(&r.body);
    assert!(!env.contains_key("PATH_INFO"), "{env:?}");
    assert_eq!(env.get("CONTENT_LENGTH").map(String::as_str), Some("0"));
    assert_eq!(env.get("REQUEST_METHOD").map(String::as_str), Some("GET"));
}

#[test]
fn post_of_several_mib_echoed_intact() {
    let s = start("", &[("echo.cgi", ECHO)]);
    let data: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = s.dir.path().join("upload.bin");
    std::fs::write(&file, &data).expect("write upload");
    let at = format!("@{}", file.display());
    for extra in [&[][..], &["-H", "Transfer-Encoding: chunked"][..]] {
        let mut args = vec!["--data-binary", at.as_str()];
        args.extend_from_slice(extra);
        let r = curl(&s.url("/cgi-bin/echo.cgi"), &args);
        assert_eq!(r.status, 200, "{}", s.error_log());
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert!(
            r.body.len() == data.len() && r.body == data,
            "body differs ({} bytes)",
            r.body.len()
        );
    }
}

#[test]
fn response_heads_status_location_nph_and_no_headers() {
    let s = start(
        "",
        &[
            ("status.cgi", "#!/bin/sh\nprintf 'Status: 418 I am a teapot\\r\\nContent-Type: text/plain\\r\\nX-Mine: 1\\r\\n\\r\\nshort'\n"),
            ("loc.cgi", "#!/bin/sh\nprintf 'Location: http://example.com/x\\n\\n'\n"),
            ("nph-x.cgi", "#!/bin/sh\nprintf 'HTTP/1.1 202 Accepted\\r\\nContent-Type: text/plain\\r\\nContent-Length: 3\\r\\n\\r\\nabcdef'\n"),
            ("bare.cgi", "#!/bin/sh\necho just text\n"),
            ("len.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\nContent-Length: 4\\n\\n1234'\n"),
        ],
    );
    let r = s.get("/cgi-bin/status.cgi");
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-mine"), Some("1"));
    assert_eq!(r.header("status"), None);
    assert_eq!(r.text(), "short");
    let r = s.get("/cgi-bin/loc.cgi");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://example.com/x"));
    let r = s.get("/cgi-bin/nph-x.cgi");
    assert_eq!(r.status, 202);
    assert_eq!(r.text(), "abc");
    let r = s.get("/cgi-bin/bare.cgi");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "just text\n");
    let r = s.get("/cgi-bin/len.cgi");
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), "1234");
    // HTTP/1.0: no chunked encoding, the end of the body is the end of the connection.
    let out = raw(s.port, b"GET /cgi-bin/bare.cgi HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("transfer-encoding"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\njust text\n"), "{text}");
    // HEAD: the head only.
    let r = curl(&s.url("/cgi-bin/len.cgi"), &["-I"]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

/// A head that comes in pieces (gathered until its blank line), and a 1xx head
/// before the real one (dropped) with the body's first bytes in the same write.
#[test]
fn response_heads_in_pieces_and_after_1xx() {
    let s = start(
        "",
        &[
            (
                "split.cgi",
                "#!/bin/sh
printf 'Content-Type: text/pl'
sleep 0.3
printf 'ain\r\nX-A: '
sleep 0.3
printf '1\r\n\r\nbody'
",
            ),
            (
                "early.cgi",
                "#!/bin/sh
printf 'Status: 103 Early Hints\r\nLink: </a.css>\r\n\r\nStatus: 201 Created\r\nX-B: 2\r\n\r\nmade'
",
            ),
        ],
    );
    let r = s.get("/cgi-bin/split.cgi");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-a"), Some("1"));
    assert_eq!(r.text(), "body");
    let r = s.get("/cgi-bin/early.cgi");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-b"), Some("2"));
    assert_eq!(r.header("link"), None);
    assert_eq!(r.text(), "made");
}

#[test]
fn malformed_headers_are_500_with_a_log_line() {
    let s = start(
        "",
        &[
            (
                "bad.cgi",
                "#!/bin/sh\nprintf 'Content-Type: text/plain\\nthis is not a header\\n\\nbody'\n",
            ),
            ("badstatus.cgi", "#!/bin/sh\nprintf 'Status: abc\\n\\n'\n"),
            ("silent.cgi", "#!/bin/sh\nexit 3\n"),
            (
                "nph-bad.cgi",
                "#!/bin/sh\nprintf 'HTTP/1.1 2x0 OK\\r\\n\\r\\n'\n",
            ),
        ],
    );
    for p in [
        "/cgi-bin/bad.cgi",
        "/cgi-bin/badstatus.cgi",
        "/cgi-bin/silent.cgi",
    ] {
        assert_eq!(s.get(p).status, 500, "{p}");
    }
    // An NPH status line that is not one: Bad Gateway, as lighttpd answers.
    assert_eq!(s.get("/cgi-bin/nph-bad.cgi").status, 502);
    let ok = wait_until(Duration::from_secs(3), || {
        let log = s.error_log();
        log.contains("malformed response from")
            && log.contains("has no colon")
            && log.contains("invalid Status")
            && log.contains("ended without a response")
    });
    assert!(ok, "{}", s.error_log());
}

/// A script that cannot be executed (its interpreter is missing; here a file
/// with a "#!" line naming no program): 500, and the reason in the error log.
#[test]
fn a_failed_exec_is_500_with_a_log_line() {
    let s = start(
        "",
        &[
            ("noint.cgi", "#!/no/such/interpreter\n"),
            (
                "ok.cgi",
                "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok'\n",
            ),
        ],
    );
    assert_eq!(s.get("/cgi-bin/noint.cgi").status, 500);
    let ok = wait_until(Duration::from_secs(3), || {
        let log = s.error_log();
        // Told by the spawner (posix_spawn) or by the forked child (another user).
        log.contains("noint.cgi failed: ")
            && (log.contains("errno 2") || log.contains("(os error 2)"))
    });
    assert!(ok, "{}", s.error_log());
    // The spawner carries on.
    assert_eq!(s.get("/cgi-bin/ok.cgi").text(), "ok");
}

#[test]
fn stderr_lines_go_to_the_error_log() {
    let s = start("", &[("err.cgi", "#!/bin/sh\necho 'first problem' >&2\nprintf 'Content-Type: text/plain\\n\\nok'\necho 'second problem' >&2\n")]);
    assert_eq!(s.get("/cgi-bin/err.cgi").text(), "ok");
    let ok = wait_until(Duration::from_secs(3), || {
        let log = s.error_log();
        log.contains("/cgi-bin/err.cgi: first problem")
            && log.contains("/cgi-bin/err.cgi: second problem")
    });
    assert!(ok, "{}", s.error_log());
}

#[test]
fn local_redirect_and_x_sendfile() {
    let extra = r#"
$HTTP["url"] =^ "/cgi-bin/" {
    cgi.local-redir = "enable"
    cgi.x-sendfile = "enable"
    cgi.x-sendfile-docroot = ( "@DIR@/files" )
}
"#;
    let conf = format!("{CONF}{extra}");
    let s = Server::start_with(&conf, &[], |dir| {
        std::fs::create_dir_all(dir.join("files")).expect("mkdir");
        std::fs::write(dir.join("files/f.txt"), "the file\n").expect("write");
        for (n, b) in [
            ("redir.cgi", "#!/bin/sh\nprintf 'Location: /cgi-bin/target.cgi?from=redir\\n\\n'\n"),
            ("target.cgi", ENV),
            ("send.cgi", "#!/bin/sh\nprintf \"X-Sendfile: $DOCUMENT_ROOT/../files/f.txt\\nContent-Type: text/x-sent\\n\\nignored\"\n"),
            ("escape.cgi", "#!/bin/sh\nprintf 'X-Sendfile: /etc/passwd\\n\\n'\n"),
        ] {
            script(dir, n, b);
        }
    });
    let r = s.get("/cgi-bin/redir.cgi");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SCRIPT_NAME").map(String::as_str),
        Some("/cgi-bin/target.cgi")
    );
    assert_eq!(
        env.get("QUERY_STRING").map(String::as_str),
        Some("from=redir")
    );
    assert_eq!(
        env.get("REQUEST_URI").map(String::as_str),
        Some("/cgi-bin/redir.cgi")
    );
    assert_eq!(
        env.get("REDIRECT_URI").map(String::as_str),
        Some("/cgi-bin/target.cgi?from=redir")
    );
    let r = s.get("/cgi-bin/send.cgi");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), "the file\n");
    assert_eq!(r.header("content-type"), Some("text/x-sent"));
    assert_eq!(r.header("x-sendfile"), None);
    assert_eq!(s.get("/cgi-bin/escape.cgi").status, 403);
}

#[test]
fn error_handler_404_runs_a_cgi() {
    let extra = "server.error-handler-404 = \"/cgi-bin/notfound.cgi\"\n";
    let s = start(extra, &[("notfound.cgi", ENV)]);
    let r = s.get("/missing/page.html?q=1");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    assert_eq!(
        env.get("REDIRECT_STATUS").map(String::as_str),
        Some("404"),
        "{env:?}"
    );
    assert_eq!(
        env.get("REQUEST_URI").map(String::as_str),
        Some("/missing/page.html?q=1")
    );
    assert_eq!(
        env.get("SCRIPT_NAME").map(String::as_str),
        Some("/cgi-bin/notfound.cgi")
    );
    // The handler's source is never served as a file.
    assert!(!r.text().contains("#!/bin/sh"));
}

#[test]
fn timeout_kills_the_process_group() {
    let extra = "cgi.limits = ( \"read-timeout\" => 1 )\n";
    let body = "#!/bin/sh\necho $$ > \"$DOCUMENT_ROOT/../slow.pid\"\nsleep 60 &\nexec sleep 60\n";
    let s = start(extra, &[("slow.cgi", body)]);
    let t = Instant::now();
    let r = s.get("/cgi-bin/slow.cgi");
    assert_eq!(r.status, 504, "{}", s.error_log());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let pgid = read_pid(&s.dir.path().join("slow.pid"));
    assert!(
        wait_until(Duration::from_secs(4), || !group_alive(pgid)),
        "process group {pgid} still alive"
    );
    // The worker writes its log lines after the loop turn that answered.
    assert!(
        wait_until(Duration::from_secs(5), || s
            .error_log()
            .contains("read timeout on CGI")),
        "{}",
        s.error_log()
    );
}

#[test]
fn client_disconnect_leaves_no_process() {
    let body = "#!/bin/sh\necho $$ > \"$DOCUMENT_ROOT/../talk.pid\"\nprintf 'Content-Type: text/plain\\n\\n'\n\
                sleep 60 &\nwhile :; do echo tick; sleep 0.05; done\n";
    let s = start("", &[("talk.cgi", body)]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.write_all(b"GET /cgi-bin/talk.cgi HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let pgid = read_pid(&s.dir.path().join("talk.pid"));
    assert!(group_alive(pgid));
    drop(c);
    assert!(
        wait_until(Duration::from_secs(5), || !group_alive(pgid)),
        "process group {pgid} still alive"
    );
}

#[test]
fn symlink_escape_and_unassigned_files_are_not_run() {
    let s = start("", &[("ok.cgi", ENV)]);
    let outside = s.dir.path().join("outside.cgi");
    std::fs::write(
        &outside,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\npwned'\n",
    )
    .expect("write");
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink(&outside, s.docroot().join("cgi-bin/evil.cgi")).expect("symlink");
    let r = s.get("/cgi-bin/evil.cgi");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("pwned"));
    // Outside the cgi.assign block a .cgi file is just a file.
    std::fs::write(s.docroot().join("plain.cgi"), "#!/bin/sh\necho hi\n").expect("write");
    let r = s.get("/plain.cgi");
    assert!(r.text().contains("#!/bin/sh"), "{}", r.text());
}

#[test]
fn cgi_user_runs_the_script_as_that_user() {
    if common::skip_unless_root("cgi_user_runs_the_script_as_that_user") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("nobody");
    let extra = "$HTTP[\"url\"] =^ \"/cgi-bin/\" {\n    cgi.user = \"nobody\"\n}\n";
    let s = Server::start_with(&format!("{CONF}{extra}"), &[], |dir| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script(
            dir,
            "id.cgi",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nid -u\nid -g\n",
        );
        let bin = dir.join("www/cgi-bin");
        for p in [bin.clone(), bin.join("id.cgi")] {
            nix::unistd::chown(&p, Some(nobody.uid), Some(nobody.gid)).expect("chown");
        }
    });
    let r = s.get("/cgi-bin/id.cgi");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), format!("{}\n{}\n", nobody.uid, nobody.gid));
    // A script that is not the user's own is refused (suEXEC's ownership rule).
    let other = s.docroot().join("cgi-bin/other.cgi");
    std::fs::write(&other, ENV).expect("write");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let r = s.get("/cgi-bin/other.cgi");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        wait_until(Duration::from_secs(2), || s
            .error_log()
            .contains("not by cgi.user")),
        "{}",
        s.error_log()
    );
}

#[test]
fn two_hundred_concurrent_requests_complete() {
    let s = start(
        "",
        &[(
            "hello.cgi",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello %s\\n' \"$QUERY_STRING\"\n",
        )],
    );
    let port = s.port;
    let t = Instant::now();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let req = format!(
                    "GET /cgi-bin/hello.cgi?{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let out = raw(port, req.as_bytes());
                let text = String::from_utf8_lossy(&out).into_owned();
                text.starts_with("HTTP/1.1 200") && text.contains(&format!("hello {i}\n"))
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .filter_map(|h| h.join().ok())
        .filter(|&b| b)
        .count();
    assert_eq!(ok, 200, "{}", s.error_log());
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn tcp_fin_propagate_signals_the_script() {
    let extra = "cgi.limits = ( \"tcp-fin-propagate\" => \"SIGUSR1\" )\n";
    let body = "#!/bin/sh\ntrap 'echo got-signal; exit 0' USR1\nprintf 'Content-Type: text/plain\\n\\n'\necho ready\n\
                i=0\nwhile [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done\necho no-signal\n";
    let s = start(extra, &[("fin.cgi", body)]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /cgi-bin/fin.cgi HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("ready") {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    let _ = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("got-signal"), "{text}");
    assert!(!text.contains("no-signal"), "{text}");
}

#[test]
fn a_killed_spawner_is_replaced_and_workers_reconnect() {
    let hello = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello'\n";
    let s = start("server.max-worker = 2\n", &[("hello.cgi", hello)]);
    assert_eq!(s.get("/cgi-bin/hello.cgi").text(), "hello");
    let spawner = || {
        s.children()
            .into_iter()
            .find(|p| common::cmdline(*p).contains("gateway-spawner"))
    };
    // Start-up ends when every child is ready (one worker can serve before the
    // other is): a spawner lost before that fails the start, as it should.
    assert!(
        wait_until(Duration::from_secs(10), || s
            .error_log()
            .contains("server started")),
        "{}",
        s.error_log()
    );
    let old = spawner().expect("a gateway-spawner child of the master");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let back = wait_until(Duration::from_secs(10), || {
        spawner().is_some_and(|p| p != old)
            && (0..4).all(|_| s.get("/cgi-bin/hello.cgi").text() == "hello")
    });
    assert!(
        back,
        "CGI did not come back after the spawner was killed: {}",
        s.error_log()
    );
}

#[test]
fn with_server_username_scripts_run_as_that_user() {
    if common::skip_unless_root("with_server_username_scripts_run_as_that_user") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("nobody");
    let conf = format!("{CONF}server.username = \"nobody\"\n");
    let s = Server::start_with(&conf, &[], |dir| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script(dir, "id.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nid -u\ngrep CapEff /proc/self/status\n");
    });
    let r = s.get("/cgi-bin/id.cgi");
    assert_eq!(r.status, 200, "{}", s.error_log());
    let text = r.text();
    assert!(text.starts_with(&format!("{}\n", nobody.uid)), "{text}");
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
}

/// A response that ends while the worker holds it gets Content-Length (lighttpd
/// buffers responses too) and keeps the connection; one that goes on streams,
/// chunked, after at most about a second of silence.
#[test]
fn small_responses_get_content_length_long_ones_stream() {
    let hello = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello'\n";
    let slow =
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nfirst'\nsleep 4\nprintf second\n";
    let s = start("", &[("hello.cgi", hello), ("slow.cgi", slow)]);
    let mut c = common::wire::Conn::new(s.port);
    for _ in 0..3 {
        c.send(b"GET /cgi-bin/hello.cgi HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.response().expect("answer");
        assert_eq!(r.header("Content-Length"), Some("5"), "{}", r.head);
        assert_eq!(r.header("Transfer-Encoding"), None);
        assert_eq!(r.text(), "hello");
    }
    let r = raw(s.port, b"GET /cgi-bin/hello.cgi HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&r);
    assert!(text.contains("Content-Length: 5\r\n"), "{text}");

    let mut t = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    t.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    t.write_all(b"GET /cgi-bin/slow.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("write");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("first") {
        let n = t.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        start.elapsed() < Duration::from_millis(3500),
        "the first part waited for the end: {:?}",
        start.elapsed()
    );
    let _ = t.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("Transfer-Encoding: chunked"), "{text}");
    assert!(text.ends_with("6\r\nsecond\r\n0\r\n\r\n"), "{text}");
}

/// REMOTE_ADDR follows mod_extforward (REMOTE_PORT is then 0, as in lighttpd) and
/// request headers set by mod_setenv reach the script as HTTP_*.
#[test]
fn extforward_and_setenv_headers_reach_the_script() {
    let conf = r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_extforward", "mod_setenv", "mod_cgi")
extforward.forwarder = ("127.0.0.1" => "trust")
setenv.add-request-header = ("X-Added" => "yes")
setenv.set-request-header = ("X-Custom" => "replaced")
cgi.assign = (".cgi" => "")
"#;
    let s = Server::start_with(conf, &[], |dir| script(dir, "env.cgi", ENV));
    let r = curl(
        &s.url("/cgi-bin/env.cgi"),
        &[
            "-H",
            "X-Forwarded-For: 203.0.113.9",
            "-H",
            "X-Custom: original",
        ],
    );
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    assert_eq!(
        env.get("REMOTE_ADDR").map(String::as_str),
        Some("203.0.113.9"),
        "{env:?}"
    );
    assert_eq!(
        env.get("REMOTE_PORT").map(String::as_str),
        Some("0"),
        "{env:?}"
    );
    assert_eq!(
        env.get("HTTP_X_ADDED").map(String::as_str),
        Some("yes"),
        "{env:?}"
    );
    assert_eq!(
        env.get("HTTP_X_CUSTOM").map(String::as_str),
        Some("replaced"),
        "{env:?}"
    );
    // Without a forwarded address the client's own port stays.
    let env = env_map(&s.get("/cgi-bin/env.cgi").body);
    assert_eq!(
        env.get("REMOTE_ADDR").map(String::as_str),
        Some("127.0.0.1")
    );
    assert_ne!(env.get("REMOTE_PORT").map(String::as_str), Some("0"));
}

/// Request trailers as lighttpd 1.4.7x: checked, and passed to the script (as
/// HTTP_*) only when server.feature-flags' request.trailer-whitelist names them.
#[test]
fn request_trailers_are_checked_and_whitelisted() {
    let extra = "server.feature-flags = ( \"request.trailer-whitelist\" => \"X-Sum\" )\n";
    let s = start(extra, &[("env.cgi", ENV)]);
    let post = |trailer_hdr: &str, trailers: &str| {
        let req = format!(
            "POST /cgi-bin/env.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Transfer-Encoding: chunked\r\n{trailer_hdr}\r\n3\r\nabc\r\n0\r\n{trailers}\r\n"
        );
        raw(s.port, req.as_bytes())
    };
    let r = post("", "X-Sum: 42\r\nX-Other: 1\r\n");
    let text = String::from_utf8_lossy(&r);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP_X_SUM=42"), "{text}");
    assert!(!text.contains("HTTP_X_OTHER"), "{text}");
    // A field that may not be a trailer, a blank value, one the Trailer header
    // does not name: 400.
    for (hdr, t) in [
        ("", "Content-Length: 3\r\n"),
        ("", "X-Sum: \r\n"),
        ("Trailer: X-Else\r\n", "X-Sum: 42\r\n"),
    ] {
        let r = post(hdr, t);
        let text = String::from_utf8_lossy(&r);
        assert!(text.starts_with("HTTP/1.1 400"), "{hdr}{t}: {text}");
    }
    let r = post("Trailer: X-Sum\r\n", "X-Sum: 7\r\n");
    assert!(String::from_utf8_lossy(&r).contains("HTTP_X_SUM=7"));
}

/// A script's own chunked trailers reach an HTTP/1.1 client of a streamed response.
#[test]
fn response_trailers_of_a_chunked_script_pass_through() {
    let body = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n3\\r\\nabc\\r\\n'\n\
                sleep 2.5\nprintf '0\\r\\nX-Check: yes\\r\\n\\r\\n'\n";
    let s = start("", &[("trail.cgi", body)]);
    let r = raw(
        s.port,
        b"GET /cgi-bin/trail.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&r);
    assert!(text.contains("Transfer-Encoding: chunked"), "{text}");
    assert!(
        text.ends_with("3\r\nabc\r\n0\r\nX-Check: yes\r\n\r\n"),
        "{text}"
    );
}

/// lighttpd runs the response_start hooks on a backend's response too: mod_setenv's
/// response headers and mod_expire apply to what a script answers.
#[test]
fn response_headers_of_modules_apply_to_script_responses() {
    let extra = "server.modules += ( \"mod_setenv\", \"mod_expire\" )\n\
                 setenv.add-response-header = ( \"X-Frame-Options\" => \"DENY\" )\n\
                 setenv.set-response-header = ( \"X-Powered-By\" => \"\" )\n\
                 expire.url = ( \"/cgi-bin/\" => \"access plus 1 hours\" )\n";
    let body =
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-Powered-By: sh\\r\\n\\r\\nhello\\n'\n";
    let s = start(extra, &[("hello.cgi", body)]);
    let r = s.get("/cgi-bin/hello.cgi");
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.text(), "hello\n");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-powered-by"), None, "set to empty: removed");
    assert_eq!(r.header("cache-control"), Some("max-age=3600"));
    // A script that sets its own Cache-Control keeps it.
    let own =
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nCache-Control: no-store\\r\\n\\r\\nx'\n";
    let s = start(extra, &[("own.cgi", own)]);
    let r = s.get("/cgi-bin/own.cgi");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}
