//! TLS (mod_openssl's ssl.* keys) through the real server, against what lighttpd
//! 1.4.69 with mod_openssl does: HTTPS with the pem in the global scope or a socket
//! block, TLS 1.2 and 1.3, scheme conditions and the http→https recipe, SNI
//! certificates, plain HTTP and stalled handshakes on the TLS port, session
//! resumption across workers and reloads, client certificates, certificates
//! renewed or broken at reload, start-up refusals, root-only keys, big bodies,
//! keep-alive and pipelining, and clients that vanish. Certificates are made at run
//! time (tests/common/tls.rs); clients are curl, openssl s_client and rustls.
//!
//! One test binary; the tests are in tests/tls/ by concern (serve, scheme, sni,
//! closing, resumption, client_cert, reload, startup, transfer), the helpers
//! they share are here.

mod common;
#[path = "common/tls.rs"]
mod tls_kit;

use common::{free_port, wait_until, wickd_bin, Server};
use nix::sys::signal::Signal;
use rustls::{HandshakeKind, ProtocolVersion};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tls_kit::{
    client_config, curl_https, handshake, s_client, Ca, ClientSpec, KeyKind, Leaf, Role,
    TaggedStore, Validity,
};

#[path = "tls/client_cert.rs"]
mod client_cert;
#[path = "tls/closing.rs"]
mod closing;
#[path = "tls/reload.rs"]
mod reload;
#[path = "tls/resumption.rs"]
mod resumption;
#[path = "tls/scheme.rs"]
mod scheme;
#[path = "tls/serve.rs"]
mod serve;
#[path = "tls/sni.rs"]
mod sni;
#[path = "tls/startup.rs"]
mod startup;
#[path = "tls/transfer.rs"]
mod transfer;

const INDEX: &str = "hello over tls\n";

/// The common head of every config; `@TLSPORT@` is a second port for the TLS
/// socket when the main one (`@PORT@`) stays plain.
fn conf(modules: &str, body: &str) -> String {
    format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_openssl"{modules})
{body}
"#
    )
}

/// TLS on the main port, in the global scope.
const GLOBAL_TLS: &str = r#"ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
"#;

/// A running server with the CA that signed its certificates.
struct Site {
    s: Server,
    ca: Ca,
    /// The port TLS is served on (the main port, or @TLSPORT@).
    tls_port: u16,
}

impl Site {
    fn ca_file(&self) -> PathBuf {
        self.s.dir.path().join("ca.pem")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.s.dir.path().join(name)
    }
    /// curl GET https://`name`:tls_port`path`, trusting the test CA.
    fn curl(
        &self,
        name: &str,
        path: &str,
        extra: &[&str],
    ) -> (Option<i32>, common::Response, String) {
        curl_https(self.tls_port, name, path, &self.ca_file(), extra)
    }
    /// A rustls client that verifies against the test CA.
    fn verifying(&self, version: Option<ProtocolVersion>) -> Arc<rustls::ClientConfig> {
        client_config(&ClientSpec {
            version,
            ca: Some(&self.ca),
            ..ClientSpec::default()
        })
    }
}

/// Start wickd with `template` (see `conf`), a CA written to ca.pem, the server
/// certificate for a.test (SAN a.test, localhost) to a.pem, index.html in the
/// document root, then `prepare` for more files.
fn start_site(template: &str, prepare: impl FnOnce(&Path, &Ca)) -> Site {
    let ca = Ca::new("wick test CA");
    let a = ca.server(&["a.test", "localhost"]);
    let tls_port = if template.contains("@TLSPORT@") {
        free_port()
    } else {
        0
    };
    let template = template.replace("@TLSPORT@", &tls_port.to_string());
    let s = Server::start_with(&template, &[], |d| {
        ca.write(&d.join("ca.pem"));
        a.write_pem(&d.join("a.pem"));
        std::fs::write(d.join("www/index.html"), INDEX).expect("index");
        prepare(d, &ca);
    });
    let tls_port = if tls_port == 0 { s.port } else { tls_port };
    // The harness waited for @PORT@; a second listener is bound with it, but check.
    let listening = || {
        TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
            || TcpStream::connect(("::1", tls_port)).is_ok()
    };
    assert!(
        wait_until(Duration::from_secs(10), listening),
        "TLS port {tls_port} not listening: {}",
        s.error_log()
    );
    Site { s, ca, tls_port }
}

/// Wait until the master logged that every worker is up.
fn started(s: &Server) {
    assert!(
        wait_until(Duration::from_secs(15), || s
            .error_log()
            .contains("server started")),
        "not started: {}",
        s.error_log()
    );
}

/// The master's worker processes (its children titled as workers).
fn workers(s: &Server) -> Vec<u32> {
    let mut w: Vec<u32> = s
        .children()
        .into_iter()
        .filter(|p| common::cmdline(*p).contains("worker"))
        .collect();
    w.sort_unstable();
    w
}

/// SIGUSR1, then wait until a new generation of workers serves (none of `before`
/// left) or the log reports a failed reload (`expect_ok` false).
fn reload(s: &Server, expect_ok: bool) {
    let failed = |log: &str| log.matches("graceful restart failed").count();
    let before_failed = failed(&s.error_log());
    let before = workers(s);
    s.signal(Signal::SIGUSR1);
    if expect_ok {
        assert!(
            wait_until(Duration::from_secs(20), || {
                let now = workers(s);
                !now.is_empty() && now.iter().all(|p| !before.contains(p))
            }),
            "no new generation of workers after SIGUSR1 (before {before:?}, now {:?}): {}",
            workers(s),
            s.error_log()
        );
    } else {
        assert!(
            wait_until(Duration::from_secs(20), || failed(&s.error_log())
                > before_failed),
            "the reload did not report a failure: {}",
            s.error_log()
        );
    }
}

fn env_map(body: &[u8]) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const ENV_SH: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n";

fn write_script(d: &Path, name: &str, body: &str) {
    let p = d.join("www").join(name);
    std::fs::write(&p, body).expect("script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Deterministic, non-repeating-looking bytes (a file a dropped or reordered
/// record would show in).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

const TWO_WORKERS: &str = "server.max-worker = 2\n";

/// The certificate new connections get now (no verification: a test of which).
fn served_cert(site: &Site) -> Vec<u8> {
    handshake(
        site.tls_port,
        "a.test",
        &client_config(&ClientSpec::default()),
    )
    .map(|s| s.peer_cert)
    .unwrap_or_default()
}

const BIG: usize = 3 * 1024 * 1024 + 12_345;

/// A TLS server with big.bin (`BIG` bytes) in its document root; `extra` config.
fn big_site(extra: &str) -> (Site, Vec<u8>) {
    let data = pattern(BIG);
    let d2 = data.clone();
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{extra}")), move |d, _| {
        std::fs::write(d.join("www/big.bin"), &d2).expect("big")
    });
    (site, data)
}

/// Read a TLS session to its end: (bytes, ended by close_notify).
fn read_to_close(sess: &mut tls_kit::Session) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let t = Instant::now();
    loop {
        match sess.conn.s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return (got, false),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no end after {} bytes",
            got.len()
        );
    }
}
