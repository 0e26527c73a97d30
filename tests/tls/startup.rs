//! Start-up and -tt: pem files refused by name, the expired-certificate warning,
//! keys only root can read with workers as nobody.

use super::*;

fn run_wickd(args: &[&str]) -> Output {
    Command::new(wickd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wickd")
}

/// A TLS config (`body`) in a fresh directory whose files `write` prepares; (dir,
/// conf path, a.pem's path).
fn refusal_conf(body: &str, write: impl FnOnce(&Path, &Ca)) -> (common::TempDir, String, String) {
    let d = common::TempDir::new();
    std::fs::create_dir_all(d.path().join("www")).expect("www");
    let ca = Ca::new("wick test CA");
    ca.write(&d.path().join("ca.pem"));
    std::fs::write(d.path().join("www/index.html"), INDEX).expect("index");
    write(d.path(), &ca);
    let text = common::render(&conf("", body), free_port(), d.path());
    let c = d.path().join("wickd.conf");
    std::fs::write(&c, text).expect("conf");
    let pem = d.path().join("a.pem").display().to_string();
    (d, c.display().to_string(), pem)
}

/// `wickd -D -f conf` must exit by itself (10 s bound): its exit code and what it
/// said (stderr and the error log).
fn start_must_fail(d: &Path, conf: &str, what: &str) -> (Option<i32>, String) {
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
    let out = child.wait_with_output().expect("output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
    );
    (status.and_then(|s| s.code()), said)
}

/// -tt and start-up both refuse `body` with the files `make` writes, naming
/// `file` (in the test's directory).
fn refused(body: &str, file: &str, make: impl FnOnce(&Path, &Ca), what: &str) {
    let (d, c, _) = refusal_conf(body, make);
    let named = d.path().join(file).display().to_string();
    let o = run_wickd(&["-tt", "-f", &c]);
    let said = format!(
        "{}{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(d.path().join("error.log")).unwrap_or_default()
    );
    assert_ne!(o.status.code(), Some(0), "-tt accepted {what}: {said}");
    assert!(said.contains(&named), "-tt does not name {named}: {said}");
    let (code, said) = start_must_fail(d.path(), &c, what);
    assert_ne!(code, Some(0), "{what}: {said}");
    assert!(
        said.contains(&named),
        "start-up does not name {named}: {said}"
    );
}

#[test]
fn start_up_refuses_a_key_that_does_not_match_the_certificate() {
    refused(
        GLOBAL_TLS,
        "a.pem",
        |d, ca| {
            let a = ca.server(&["a.test"]);
            let b = ca.server(&["a.test"]);
            std::fs::write(d.join("a.pem"), format!("{}{}", a.cert_pem, b.key_pem)).expect("pem");
        },
        "a key that does not match its certificate",
    );
}

#[test]
fn start_up_refuses_a_missing_pemfile() {
    refused(GLOBAL_TLS, "a.pem", |_, _| {}, "a missing ssl.pemfile");
}

#[test]
fn start_up_refuses_a_pemfile_without_a_key() {
    refused(
        GLOBAL_TLS,
        "a.pem",
        |d, ca| std::fs::write(d.join("a.pem"), ca.server(&["a.test"]).cert_pem).expect("pem"),
        "a pem with no private key",
    );
}

#[test]
fn start_up_refuses_an_ssl_privkey_that_does_not_match() {
    let body =
        "ssl.engine = \"enable\"\nssl.pemfile = \"@DIR@/s.crt\"\nssl.privkey = \"@DIR@/s.key\"\n";
    refused(
        body,
        "s.key",
        |d, ca| {
            std::fs::write(d.join("s.crt"), ca.server(&["a.test"]).cert_pem).expect("crt");
            std::fs::write(d.join("s.key"), ca.server(&["a.test"]).key_pem).expect("key");
        },
        "an ssl.privkey of another certificate",
    );
}

#[test]
fn start_up_refuses_a_missing_pemfile_in_a_host_block() {
    // Only SNI b.test would use it; lighttpd still loads it at start-up.
    let body = format!(
        "{GLOBAL_TLS}$HTTP[\"host\"] == \"b.test\" {{\n    ssl.pemfile = \"@DIR@/b.pem\"\n}}\n"
    );
    refused(
        &body,
        "b.pem",
        |d, ca| ca.server(&["a.test"]).write_pem(&d.join("a.pem")),
        "a missing ssl.pemfile for an SNI host",
    );
}

#[test]
fn an_expired_certificate_starts_with_a_warning_naming_the_file() {
    // lighttpd 1.4.69 warns "SSL: inactive/expired X509 certificate '<file>'" on
    // stderr and serves.
    let (d, c, pem) = refusal_conf(GLOBAL_TLS, |d, ca| {
        ca.leaf("a.test", None, &["a.test"], Role::Server, Validity::Expired)
            .write_pem(&d.join("a.pem"))
    });
    let o = run_wickd(&["-tt", "-f", &c]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(d.path().join("error.log")).unwrap_or_default()
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "-tt refused an expired certificate: {said}"
    );
    assert!(
        said.contains(&pem) && said.to_lowercase().contains("expired"),
        "-tt: {said}"
    );
    // Start it for real, stderr kept: lighttpd warns there, before its error log
    // is open.
    let port = free_port();
    std::fs::write(&c, common::render(&conf("", GLOBAL_TLS), port, d.path())).expect("conf");
    let stderr = std::fs::File::create(d.path().join("stderr")).expect("stderr file");
    let server = Spawned(
        Command::new(wickd_bin())
            .args(["-D", "-f", &c])
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn wickd"),
    );
    assert!(
        wait_until(Duration::from_secs(15), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "did not start with an expired certificate: {}",
        said_in(d.path())
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let said = said_in(d.path());
            said.contains(&pem) && said.to_lowercase().contains("expired")
        }),
        "no warning naming {pem}: {}",
        said_in(d.path())
    );
    // Served; a verifying client refuses it, as it should.
    let ca_file = d.path().join("ca.pem");
    let (code, r, err) = curl_https(port, "a.test", "/index.html", &ca_file, &["-k"]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    let (code, _, _) = curl_https(port, "a.test", "/index.html", &ca_file, &[]);
    assert_ne!(code, Some(0), "curl accepted an expired certificate");
    drop(server);
}

/// What a server started by hand in `d` said: its stderr and its error log.
fn said_in(d: &Path) -> String {
    format!(
        "{}{}",
        std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
        std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
    )
}

/// A server process started by hand, stopped (SIGTERM, then SIGKILL) on drop.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let gone = wait_until(Duration::from_secs(5), || {
            self.0.try_wait().ok().flatten().is_some()
        });
        if !gone {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn root_only_keys_serve_with_server_username_nobody() {
    if common::skip_unless_root("root_only_keys_serve_with_server_username_nobody") {
        return;
    }
    let body = r#"server.username = "nobody"
ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/s.crt"
    ssl.privkey = "@DIR@/s.key"
}
"#;
    let site = start_site(&conf("", body), |d, ca| {
        let l = ca.server(&["a.test"]);
        std::fs::write(d.join("s.crt"), &l.cert_pem).expect("crt");
        std::fs::write(d.join("s.key"), &l.key_pem).expect("key");
        for f in ["a.pem", "s.key"] {
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600))
                .expect("chmod 600");
        }
        // The directory open to nobody (the document root), the keys not.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // lighttpd opens its error log after dropping privileges: the same config
        // must start there too.
        let log = d.join("error.log");
        std::fs::write(&log, "").expect("error.log");
        let nobody = nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .expect("nobody");
        nix::unistd::chown(&log, Some(nobody.uid), Some(nobody.gid)).expect("chown error.log");
    });
    started(&site.s);
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("nobody");
    // The workers really are nobody, who cannot open the keys.
    let ws = workers(&site.s);
    assert!(!ws.is_empty());
    for w in &ws {
        let status = std::fs::read_to_string(format!("/proc/{w}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("");
        assert_eq!(uid, nobody.uid.to_string(), "worker {w}: {status}");
    }
    for (port, what) in [(site.s.port, "a.pem 0600"), (site.tls_port, "s.key 0600")] {
        let (code, r, err) = curl_https(port, "a.test", "/index.html", &site.ca_file(), &[]);
        assert_eq!(
            (code, r.status),
            (Some(0), 200),
            "{what}: {err}\n{}",
            site.s.error_log()
        );
        assert_eq!(r.text(), INDEX);
    }
    // A reload reads them again as root.
    reload(&site.s, true);
    let (code, r, err) = curl_https(site.tls_port, "a.test", "/index.html", &site.ca_file(), &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "after reload: {err}\n{}",
        site.s.error_log()
    );
}

#[test]
fn an_empty_or_non_pem_ca_file_is_refused_by_name() {
    // lighttpd loads ssl.ca-file at start-up even when no client certificates
    // are asked for: -tt parses it, not just opens it.
    let body =
        "ssl.engine = \"enable\"\nssl.pemfile = \"@DIR@/a.pem\"\nssl.ca-file = \"@DIR@/cas.pem\"\n";
    for content in ["", "not a certificate\n"] {
        refused(
            body,
            "cas.pem",
            |d, ca| {
                let a = ca.server(&["a.test"]);
                std::fs::write(d.join("a.pem"), format!("{}{}", a.cert_pem, a.key_pem))
                    .expect("pem");
                std::fs::write(d.join("cas.pem"), content).expect("cas");
            },
            "an ssl.ca-file without a certificate",
        );
    }
}
