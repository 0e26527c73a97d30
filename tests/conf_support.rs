//! What wickd does not do, it says out loud: a key it accepts without acting on it
//! draws one warning with its module and file:line (at -tt and at start-up); a key
//! whose absence would open access (auth.require without mod_auth, ssl.engine, secdownload.*, magnet.*) stops
//! -tt, start-up and a graceful restart, naming key and file:line; -p and -t still
//! accept it, as lighttpd does. A document root that does not exist is a warning
//! (requests for it get 404), as lighttpd starts with it.

mod common;

use common::{wait_until, wickd_bin, Server, TempDir};
use nix::sys::signal::Signal;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const AUTH: &str = "auth.require = ( \"/private\" => ( \"method\" => \"basic\", \"realm\" => \"r\", \"require\" => \"valid-user\" ) )";

fn run(args: &[&str]) -> Output {
    Command::new(wickd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wickd")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config in a fresh directory with a document root; `extra` appended.
fn conf(dir: &TempDir, extra: &str) -> String {
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).expect("mkdir www");
    let p = dir.path().join("wickd.conf");
    std::fs::write(
        &p,
        format!(
            "server.bind = \"127.0.0.1\"\nserver.port = {}\nserver.document-root = \"{}\"\n{extra}\n",
            common::free_port(),
            www.display()
        ),
    )
    .expect("write conf");
    p.to_string_lossy().into_owned()
}

#[test]
fn tt_refuses_keys_that_would_open_access_and_names_them() {
    for (line, key) in [
        (AUTH, "auth.require"),
        ("secdownload.secret = \"s\"", "secdownload.secret"),
    ] {
        let d = TempDir::new();
        let c = conf(&d, line);
        let at = 4;
        let o = run(&["-tt", "-f", &c]);
        assert_eq!(o.status.code(), Some(1), "{key}: {}", err(&o));
        let e = err(&o);
        assert!(e.contains(&format!("{c}:{at}: {key}: ")), "{e}");
        assert!(
            e.contains("wickd refuses to start with this configuration"),
            "{e}"
        );
        // -p prints it (saying start-up would refuse), -t checks the syntax only.
        let o = run(&["-p", "-f", &c]);
        assert_eq!(o.status.code(), Some(0), "-p {key}: {}", err(&o));
        assert!(
            err(&o).contains("wickd will not start with this"),
            "{}",
            err(&o)
        );
        let o = run(&["-t", "-f", &c]);
        assert_eq!(o.status.code(), Some(0), "-t {key}: {}", err(&o));
    }
}

/// Start `wickd -D -f conf`, which must refuse: its stderr. A server that starts
/// instead is stopped and the test fails.
fn start_refused(conf: &str, what: &str) -> String {
    let mut child = Command::new(wickd_bin())
        .args(["-D", "-f", conf])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wickd");
    let mut status = None;
    let exited = wait_until(Duration::from_secs(10), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("wickd started with {what}");
    }
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{what}");
    err(&child.wait_with_output().expect("stderr"))
}

#[test]
fn start_up_refuses_auth_require_before_binding() {
    let d = TempDir::new();
    let c = conf(&d, AUTH);
    let e = start_refused(&c, "auth.require, serving /private to anyone");
    assert!(e.contains(&format!("{c}:4: auth.require: ")), "{e}");
    assert!(e.contains("mod_auth"), "{e}");
}

#[test]
fn start_up_refuses_a_module_lighttpd_does_not_have() {
    let d = TempDir::new();
    let c = conf(&d, "server.modules = ( \"mod_access\", \"mod_evasive\" )");
    let e = start_refused(&c, "a module lighttpd 1.4.69 fails to load");
    assert!(
        e.contains(&format!(
            "{c}:4: server.modules: unknown module \"mod_evasive\""
        )),
        "{e}"
    );
}

#[test]
fn ignored_keys_warn_once_with_module_and_place() {
    let d = TempDir::new();
    let c = conf(
        &d,
        "server.modules = (\"mod_webdav\")\nwebdav.activate = \"enable\"\n\
         $HTTP[\"host\"] == \"a\" {\nwebdav.activate = \"disable\"\n}\nserver.core-files = \"enable\"",
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let e = err(&o);
    let warned = |what: &str| e.lines().filter(|l| l.contains(what)).count();
    assert_eq!(
        warned(&format!(
            "{c}:5: webdav.activate (mod_webdav) is accepted but not acted on by wickd (ignored)"
        )),
        1,
        "{e}"
    );
    assert_eq!(
        warned("webdav.activate (mod_webdav)"),
        1,
        "once per key: {e}"
    );
    assert_eq!(
        warned(&format!(
            "{c}:9: server.core-files (core) is accepted but not acted on"
        )),
        1,
        "{e}"
    );
    assert_eq!(
        warned(&format!(
            "{c}:4: server.modules: mod_webdav is not built into wickd"
        )),
        1,
        "{e}"
    );
}

const SERVED: &str = r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.modules = ( "mod_webdav" )
webdav.activate = "enable"
"#;

#[test]
fn start_up_logs_what_it_ignores() {
    let s = Server::start(SERVED);
    assert!(
        wait_until(Duration::from_secs(10), || s.error_log().contains(
            "webdav.activate (mod_webdav) is accepted but not acted on"
        )),
        "{}",
        s.error_log()
    );
    let log = s.error_log();
    assert!(
        log.contains(&format!("{}:7: webdav.activate", s.conf.display())),
        "{log}"
    );
    assert!(
        log.contains("server.modules: mod_webdav is not built into wickd"),
        "{log}"
    );
}

#[test]
fn graceful_restart_to_auth_require_keeps_the_running_config() {
    let s = Server::start_with(SERVED, &[], |d| {
        std::fs::create_dir_all(d.join("www/private")).expect("mkdir");
        std::fs::write(d.join("www/private/secret.txt"), "secret\n").expect("write");
    });
    assert!(
        wait_until(Duration::from_secs(15), || s
            .error_log()
            .contains("server started")),
        "{}",
        s.error_log()
    );
    let text = common::render(SERVED, s.port, s.dir.path());
    std::fs::write(&s.conf, format!("{text}{AUTH}\n")).expect("rewrite conf");
    s.signal(Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(15), || s
            .error_log()
            .contains("graceful restart failed")),
        "{}",
        s.error_log()
    );
    let log = s.error_log();
    assert!(
        log.contains(&format!("{}:8: auth.require", s.conf.display())),
        "{log}"
    );
    assert!(!log.contains("graceful restart: generation "), "{log}");
    // The running configuration serves on, as before.
    assert_eq!(s.get("/private/secret.txt").status, 200);
}

const GONE_ROOT: &str = r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
$HTTP["host"] == "gone.example" {
  server.document-root = "@DIR@/gone"
}
"#;

#[test]
fn a_document_root_that_does_not_exist_starts_with_a_warning_and_404() {
    let s = Server::start_with(GONE_ROOT, &[], |d| {
        std::fs::write(d.join("www/index.html"), "here\n").expect("write");
    });
    let o = run(&["-tt", "-f", &s.conf.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let warning = format!(
        "{}:7: server.document-root {}/gone: no such directory",
        s.conf.display(),
        s.dir.path().display()
    );
    assert!(err(&o).contains(&warning), "{}", err(&o));
    assert!(
        wait_until(Duration::from_secs(10), || s.error_log().contains(&warning)),
        "{}",
        s.error_log()
    );
    let r = common::curl(&s.url("/index.html"), &["-H", "Host: gone.example"]);
    assert_eq!(r.status, 404);
    assert_eq!(s.get("/index.html").status, 200);
}

#[test]
fn a_host_name_in_server_bind_is_resolved_when_binding() {
    let d = TempDir::new();
    let port = common::free_port();
    let c = d.path().join("wickd.conf");
    std::fs::write(
        &c,
        format!(
            "server.bind = \"localhost\"\nserver.port = {port}\nserver.document-root = \"/tmp\"\n"
        ),
    )
    .expect("write conf");
    let mut child = Command::new(wickd_bin())
        .arg("-D")
        .arg("-f")
        .arg(&c)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn wickd");
    // localhost is 127.0.0.1 or ::1, whichever the resolver gives first.
    let up = wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("localhost", port)).is_ok()
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    );
    let _ = child.wait();
    assert!(up, "wickd did not listen on localhost:{port}");
}

#[test]
fn lighttpd_internals_are_quiet_or_refused_as_lighttpd_refuses_them_on_linux() {
    let d = TempDir::new();
    let c = conf(
        &d,
        "server.event-handler = \"linux-sysepoll\"\nserver.network-backend = \"linux-sendfile\"\nserver.stat-cache-engine = \"simple\"",
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(err(&o), "", "accepted quietly");
    let c = conf(&d, "server.event-handler = \"freebsd-kqueue\"");
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "{c}:4: the selected event-handler in unknown or not supported: freebsd-kqueue"
        )),
        "{}",
        err(&o)
    );
    // lighttpd checks it at start, not when reading: -p and -t accept it.
    let o = run(&["-t", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn server_indexfiles_is_index_file_names() {
    let s = Server::start_with(
        "server.bind = \"127.0.0.1\"\nserver.port = @PORT@\nserver.document-root = \"@DOCROOT@\"\nserver.indexfiles = ( \"home.html\" )\n",
        &[],
        |d| std::fs::write(d.join("www/home.html"), "home\n").expect("write"),
    );
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"home\n");
}

#[test]
fn a_php_site_is_refused_rather_than_served_as_source() {
    let d = TempDir::new();
    // mod_fastcgi is built: with it in force the site starts (-tt checks it).
    let gw = "fastcgi.server = ( \".php\" => (( \"socket\" => \"/run/php-fpm.sock\" )) )";
    let c = conf(&d, &format!("server.modules = ( \"mod_fastcgi\" )\n{gw}"));
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // Without the module in force, lighttpd would send the files as they are.
    let c = conf(&d, &format!("server.modules = ( \"mod_access\" )\n{gw}"));
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "{c}:5: fastcgi.server: mod_fastcgi is not in server.modules: files ending in \".php\" would be served as they are"
        )),
        "{}",
        err(&o)
    );
    let c = conf(
        &d,
        &format!("static-file.exclude-extensions = ( \".php\" )\nserver.modules = ( \"mod_access\" )\n{gw}"),
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // A fastcgi.server wickd cannot read refuses the start with file and line.
    let c = conf(
        &d,
        "server.modules = ( \"mod_fastcgi\" )\nfastcgi.server = ( \".php\" => (( \"host\" => \"localhost\", \"port\" => 9000 )) )",
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("{c}:5: fastcgi.server")),
        "{}",
        err(&o)
    );
}

/// Debian's 20-deflate.conf alone, started as root without server.username: its
/// deflate.cache-dir lies under a directory of another user (0750), which
/// lighttpd, still root, makes it in. The worker makes it before giving up root's
/// capabilities, so wickd starts too; -tt agrees. With server.username a user who
/// cannot make it, -tt and the start both refuse, as lighttpd's do.
#[test]
fn a_deflate_cache_dir_is_made_with_the_rights_lighttpd_makes_it_with() {
    if common::skip_unless_root(
        "a_deflate_cache_dir_is_made_with_the_rights_lighttpd_makes_it_with",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let prepare = |dir: &std::path::Path| {
        let owned = dir.join("owned");
        std::fs::create_dir_all(&owned).expect("mkdir");
        std::fs::set_permissions(&owned, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        nix::unistd::chown(&owned, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
    };
    let s = Server::start_with(
        "server.bind = \"127.0.0.1\"\nserver.port = @PORT@\nserver.document-root = \"@DOCROOT@\"\nserver.modules = (\"mod_deflate\")\ndeflate.cache-dir = \"@DIR@/owned/compress/\"\n",
        &[],
        prepare,
    );
    // Made when the workers start, after the port answers.
    let made = || s.dir.path().join("owned/compress").is_dir();
    assert!(wait_until(Duration::from_secs(10), made), "made");
    let o = run(&["-tt", "-f", &s.conf.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    drop(s);

    let d = TempDir::new();
    prepare(d.path());
    d.open_up();
    let c = conf(
        &d,
        &format!(
            "server.username = \"daemon\"\nserver.modules = (\"mod_deflate\")\ndeflate.cache-dir = \"{}/owned/compress/\"\n",
            d.path().display()
        ),
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "deflate.cache-dir {}/owned/compress/: {}/owned is not searchable for daemon",
            d.path().display(),
            d.path().display()
        )),
        "{}",
        err(&o)
    );
    // Bounded: a start that wrongly succeeded would otherwise serve on.
    let o = Command::new("timeout")
        .arg("20")
        .arg(wickd_bin())
        .args(["-D", "-f", &c])
        .stdin(Stdio::null())
        .output()
        .expect("run wickd");
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("can't create deflate.cache-dir"),
        "{}",
        err(&o)
    );
}

/// Alias targets and a userdir.basepath that do not exist: lighttpd starts and
/// answers 404 for them (checked against lighttpd 1.4.69); so does wickd, with a
/// warning naming each at start-up and -tt.
#[test]
fn missing_alias_and_userdir_targets_start_with_warnings_and_404() {
    let s = Server::start_with(
        "server.bind = \"127.0.0.1\"\nserver.port = @PORT@\nserver.document-root = \"@DOCROOT@\"\nserver.errorlog = \"@DIR@/error.log\"\nserver.modules = (\"mod_alias\", \"mod_userdir\")\nalias.url = ( \"/a/\" => \"@DIR@/noalias/\" )\nuserdir.path = \"public_html\"\nuserdir.basepath = \"@DIR@/homes/\"\n",
        &[],
        |d| std::fs::write(d.join("www/index.html"), "here\n").expect("write"),
    );
    let o = run(&["-tt", "-f", &s.conf.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let dir = s.dir.path().display().to_string();
    let conf = s.conf.display().to_string();
    for w in [
        format!("{conf}:6: alias.url \"/a/\" => {dir}/noalias/: no such file or directory; requests for it get 404"),
        format!("{conf}:8: userdir.basepath {dir}/homes/: no such directory; requests for it get 404"),
    ] {
        assert!(err(&o).contains(&w), "{}", err(&o));
        assert!(
            wait_until(Duration::from_secs(10), || s.error_log().contains(&w)),
            "{}",
            s.error_log()
        );
    }
    for path in ["/a/x", "/~bob/", "/~bob/x.html"] {
        assert_eq!(s.get(path).status, 404, "{path}");
    }
    assert_eq!(s.get("/index.html").status, 200);
}
