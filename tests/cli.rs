//! wickd's command line, as lighttpd's: -v, -V, -h, -t, -tt, -p, -f -, and the
//! messages and exit statuses of a wrong command line.

mod common;

use common::{wickd_bin, TempDir};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str]) -> Output {
    Command::new(wickd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wickd")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn conf(dir: &TempDir, text: &str) -> String {
    let p = dir.path().join("wickd.conf");
    std::fs::write(&p, text).expect("write conf");
    p.to_string_lossy().into_owned()
}

const GOOD: &str = "server.port = 8080\nserver.document-root = \"/tmp\"\n";

#[test]
fn version() {
    let o = run(&["-v"]);
    assert_eq!(o.status.code(), Some(0));
    let s = out(&o);
    assert!(
        s.starts_with(concat!("wickd/", env!("CARGO_PKG_VERSION"), " ")),
        "{s}"
    );
    assert_eq!(s.lines().count(), 1, "{s}");
}

#[test]
fn features_as_lighttpd_prints_them() {
    let o = run(&["-V"]);
    assert_eq!(o.status.code(), Some(0));
    let s = out(&o);
    assert!(s.starts_with("wickd/"), "{s}");
    assert!(s.contains("\nFeatures:\n\n"), "{s}");
    // Regex conditions work, so PCRE support is announced the way tools grep for it.
    assert!(s.contains("\n\t+ PCRE support\n"), "{s}");
    assert!(s.contains("\n\t+ IPv6 support\n"), "{s}");
    for line in s.lines().filter(|l| l.starts_with('\t')) {
        assert!(
            line.starts_with("\t+ ") || line.starts_with("\t- "),
            "{line:?}"
        );
    }
}

#[test]
fn help_on_stdout() {
    let o = run(&["-h"]);
    assert_eq!(o.status.code(), Some(0));
    let s = out(&o);
    assert!(
        s.contains("usage:") && s.contains(" -f <name>") && s.contains(" -tt "),
        "{s}"
    );
}

#[test]
fn unknown_option_is_usage_and_255() {
    let o = run(&["-x"]);
    assert_eq!(o.status.code(), Some(255));
    let e = err(&o);
    assert!(e.contains("invalid option") && e.contains("usage:"), "{e}");
    assert!(out(&o).is_empty());

    let o = run(&["-f"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(err(&o).contains("requires an argument"), "{}", err(&o));
}

#[test]
fn no_config_is_an_error() {
    let o = run(&["-D"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err(&o).contains("No configuration available. Try using -f option."),
        "{}",
        err(&o)
    );
}

#[test]
fn only_one_config_file() {
    let d = TempDir::new();
    let c = conf(&d, GOOD);
    let o = run(&["-t", "-f", &c, "-f", &c]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        err(&o).contains("Can only read one config file"),
        "{}",
        err(&o)
    );
}

#[test]
fn syntax_ok() {
    let d = TempDir::new();
    let c = conf(&d, GOOD);
    let o = run(&["-t", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "Syntax OK\n");
}

#[test]
fn syntax_error_names_file_line_column() {
    let d = TempDir::new();
    let c = conf(&d, "server.port = 8080\nserver.tag = \"unterminated\n");
    let o = run(&["-t", "-f", &c]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(e.contains(&format!("{c}:2:")), "{e}");
    assert!(
        e.contains("server.tag = \"unterminated"),
        "the line is shown: {e}"
    );
    assert!(!out(&o).contains("Syntax OK"));
}

#[test]
fn config_from_stdin() {
    let mut child = Command::new(wickd_bin())
        .args(["-t", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(GOOD.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "Syntax OK\n");
}

#[test]
fn print_normalised() {
    let d = TempDir::new();
    let c = conf(
        &d,
        "server.port = 8080\nserver.document-root = \"/tmp\"\nserver.tag = \"a\" + \"b\"\n",
    );
    let o = run(&["-p", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let s = out(&o);
    assert!(s.contains("8080") && s.contains("\"ab\""), "{s}");
}

#[test]
fn preflight() {
    let d = TempDir::new();
    let c = conf(&d, &format!("{GOOD}foo.bar = 1\n"));
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "WARNING: unknown config-key: foo.bar (ignored) (at {c}:3)"
        )),
        "{}",
        err(&o)
    );

    // A document root that does not exist is a warning, as with lighttpd (requests
    // for it get 404); a user that does not exist is refused, as by lighttpd.
    let c = conf(
        &d,
        "server.port = 8080\nserver.document-root = \"/nonexistent/wick\"\n",
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "WARNING: {c}:2: server.document-root /nonexistent/wick: no such directory"
        )),
        "{}",
        err(&o)
    );
    let c = conf(
        &d,
        &format!("{GOOD}server.username = \"wick-no-such-user\"\n"),
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(err(&o).contains("no such user"), "{}", err(&o));

    // An error log whose directory does not exist: lighttpd's -tt does not open
    // logs, so -tt passes and says the start will fail; the start does fail.
    let log = d.path().join("no-such-dir/error.log");
    let c = conf(
        &d,
        &format!(
            "server.bind = \"127.0.0.1\"\nserver.port = 0\nserver.document-root = \"/tmp\"\nserver.errorlog = \"{}\"\n",
            log.display()
        ),
    );
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains(&format!(
            "WARNING: {c}:4: server.errorlog {}: cannot be written",
            log.display()
        )) && err(&o).contains("start-up will fail opening it"),
        "{}",
        err(&o)
    );
    let o = run(&["-D", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("opening errorlog '{}' failed", log.display())),
        "{}",
        err(&o)
    );
}

/// No server.document-root: -t says Syntax OK, -tt and the start refuse, as
/// lighttpd's do.
#[test]
fn a_missing_document_root_refuses_the_start_not_the_syntax_check() {
    let d = TempDir::new();
    let c = conf(&d, "server.bind = \"127.0.0.1\"\nserver.port = 0\n");
    let o = run(&["-t", "-f", &c]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    for mode in ["-tt", "-D"] {
        let o = Command::new("timeout")
            .arg("20")
            .arg(wickd_bin())
            .args([mode, "-f", &c])
            .stdin(Stdio::null())
            .output()
            .expect("run wickd");
        assert_eq!(o.status.code(), Some(1), "{mode}: {}", err(&o));
        assert!(
            err(&o).contains("server.document-root is not set"),
            "{mode}: {}",
            err(&o)
        );
    }
}

#[test]
fn bad_idle_value() {
    let d = TempDir::new();
    let c = conf(&d, GOOD);
    let o = run(&["-D", "-i", "soon", "-f", &c]);
    assert_eq!(o.status.code(), Some(255));
    assert!(
        err(&o).contains("Invalid idle timeout value: soon"),
        "{}",
        err(&o)
    );
}

#[test]
fn bind_failure_is_reported() {
    let d = TempDir::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let c = conf(
        &d,
        &format!(
            "server.bind = \"127.0.0.1\"\nserver.port = {port}\nserver.document-root = \"/tmp\"\n"
        ),
    );
    let o = run(&["-D", "-f", &c]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!("can't bind to socket: 127.0.0.1:{port}")),
        "{}",
        err(&o)
    );
}

#[test]
fn host_names_are_resolved_for_binding_only() {
    let d = TempDir::new();
    let c = conf(
        &d,
        "server.bind = \"no-such-host.invalid\"\nserver.port = 8080\nserver.document-root = \"/tmp\"\n",
    );
    // -p and -t read the configuration and never look the name up.
    for flag in ["-p", "-t"] {
        let o = run(&[flag, "-f", &c]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", err(&o));
    }
    // -tt resolves, as lighttpd's does, and names the setting.
    let o = run(&["-tt", "-f", &c]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("{c}:1: cannot resolve \"no-such-host.invalid\"")),
        "{}",
        err(&o)
    );
}
