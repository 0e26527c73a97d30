//! HTTP/2 through the real server (issue 16): negotiation (h2c prior knowledge,
//! Upgrade: h2c, ALPN h2, server.h2proto and server.h2c turned off), every
//! feature of a request served per stream, RFC 9113's connection and stream
//! errors, the flood defences, graceful restart and shutdown with streams under
//! way, and real clients (curl, nghttp, h2load). The frame-level client is
//! tests/common/h2.rs; TLS certificates are made at run time (tests/common/tls.rs).
//!
//! One test binary; the tests are in tests/h2/ by concern (negotiate, features,
//! flow, rfc, defences, lifecycle, clients), the helpers they share are here.

mod common;
#[path = "common/h2.rs"]
mod h2c;
#[path = "common/tls.rs"]
mod tls_kit;

use common::{wait_until, Server};
use h2c::Client;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "h2/clients.rs"]
mod clients;
#[path = "h2/defences.rs"]
mod defences;
#[path = "h2/features.rs"]
mod features;
#[path = "h2/flow.rs"]
mod flow;
#[path = "h2/lifecycle.rs"]
mod lifecycle;
#[path = "h2/negotiate.rs"]
mod negotiate;
#[path = "h2/rfc.rs"]
mod rfc;

const INDEX: &str = "hello over h2\n";

/// One site with every module a stream goes through; `extra` is appended.
fn conf(extra: &str) -> String {
    format!(
        r#"server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_access", "mod_redirect", "mod_rewrite", "mod_setenv",
                  "mod_dirlisting", "mod_cgi", "mod_accesslog")
accesslog.filename = "@DIR@/access.log"
index-file.names = ("index.html")
url.redirect = ( "^/old/(.*)$" => "/new/$1" )
url.rewrite-once = ( "^/alias/(.*)$" => "/$1" )
setenv.add-response-header = ( "X-H2-Test" => "yes" )
server.feature-flags = ( "request.trailer-whitelist" => "X-Trailer-Test" )
$HTTP["url"] =^ "/cgi-bin/" {{
    cgi.assign = ( ".sh" => "/bin/sh" )
}}
$HTTP["url"] =^ "/list/" {{
    dir-listing.activate = "enable"
}}
$HTTP["url"] =^ "/pages/" {{
    server.errorfile-prefix = "@DOCROOT@/err/"
}}
$HTTP["url"] =^ "/h404/" {{
    server.error-handler-404 = "/handler.html"
}}
{extra}
"#
    )
}

/// The CGI environment, as text.
const ENV_SH: &str = "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv\n";
/// The request body back, with the script's view of its length.
const ECHO_SH: &str = "printf 'Content-Type: application/octet-stream\\r\\nX-Content-Length: %s\\r\\n\\r\\n' \"$CONTENT_LENGTH\"\nexec cat\n";
/// A second's wait, then an answer.
const SLOW_SH: &str = "sleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow done\\n'\n";
/// Waits 3 s before it reads its body (the stream's window fills).
const LAZY_SH: &str =
    "sleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec cat >/dev/null\n";

/// Deterministic bytes that show a dropped, doubled or reordered frame.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// 2 MiB and a bit: more than the connection's and any stream's window.
const BIG: usize = 2 * 1024 * 1024 + 4321;

/// The document root's files: index.html, big.bin (`BIG`), err/404.html,
/// handler.html, list/ with two files, the CGI scripts.
fn files(d: &Path) {
    let w = d.join("www");
    std::fs::write(w.join("index.html"), INDEX).expect("index");
    std::fs::write(w.join("big.bin"), pattern(BIG)).expect("big");
    std::fs::create_dir_all(w.join("err")).expect("err");
    std::fs::write(w.join("err/404.html"), "custom not found\n").expect("404");
    std::fs::write(w.join("handler.html"), "handler page\n").expect("handler");
    std::fs::create_dir_all(w.join("list")).expect("list");
    std::fs::write(w.join("list/alpha.txt"), "a\n").expect("alpha");
    std::fs::write(w.join("list/beta.txt"), "b\n").expect("beta");
    std::fs::create_dir_all(w.join("new")).expect("new");
    std::fs::write(w.join("new/page.txt"), "new page\n").expect("new page");
    for (name, body) in [
        ("env.sh", ENV_SH),
        ("echo.sh", ECHO_SH),
        ("slow.sh", SLOW_SH),
        ("lazy.sh", LAZY_SH),
    ] {
        let p = w.join("cgi-bin").join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("cgi-bin");
        std::fs::write(&p, body).expect("script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// A server with `conf(extra)` and `files`.
fn start(extra: &str) -> Server {
    Server::start_with(&conf(extra), &[], files)
}

/// A frame-level client, connected and past the SETTINGS exchange.
fn client(s: &Server) -> Client {
    Client::connect(s.port, &[])
}

fn env_map(body: &[u8]) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Is `tool` on PATH (and, for curl, built with HTTP/2)? Prints why a test is
/// skipped when not.
fn have(tool: &str, test: &str) -> bool {
    let ok = match tool {
        "curl" => Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("HTTP2")),
        _ => Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
    };
    if !ok {
        eprintln!(
            "SKIP {test}: {tool} (with HTTP/2) is not installed (Debian: curl, nghttp2-client)"
        );
    }
    ok
}

/// What curl reported for one request.
#[derive(Debug, Default)]
struct CurlOut {
    code: Option<i32>,
    /// %{http_version}: "2", "1.1".
    version: String,
    status: u16,
    /// The final response's head as curl printed it.
    head: String,
    body: Vec<u8>,
    stderr: String,
}

/// curl `url` with `args`; the body goes to a file in `dir`.
fn curl(dir: &Path, url: &str, args: &[&str]) -> CurlOut {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body: PathBuf = dir.join(format!("curl-body-{n}"));
    let head: PathBuf = dir.join(format!("curl-head-{n}"));
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "--path-as-is"])
        .arg("-o")
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_version} %{http_code}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let w = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = w.split_whitespace();
    let version = it.next().unwrap_or("").to_string();
    let status = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let heads = std::fs::read_to_string(&head).unwrap_or_default();
    // After a 101 the file holds two heads: the last is the answer.
    let last = heads
        .trim_end()
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_string();
    let r = CurlOut {
        code: out.status.code(),
        version,
        status,
        head: last,
        body: std::fs::read(&body).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let _ = std::fs::remove_file(&body);
    let _ = std::fs::remove_file(&head);
    r
}

/// The master's worker processes.
fn workers(s: &Server) -> Vec<u32> {
    let mut w: Vec<u32> = s
        .children()
        .into_iter()
        .filter(|p| common::cmdline(*p).contains("worker"))
        .collect();
    w.sort_unstable();
    w
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    st.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The access log's lines, once at least `n` are there (5 s bound).
fn access_lines(s: &Server, n: usize) -> Vec<String> {
    let path = s.dir.path().join("access.log");
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    wait_until(Duration::from_secs(5), || read().lines().count() >= n);
    read().lines().map(str::to_string).collect()
}

/// Wait until the error log says the server is up (workers ready).
fn started(s: &Server) {
    assert!(
        wait_until(Duration::from_secs(15), || s
            .error_log()
            .contains("server started")),
        "not started: {}",
        s.error_log()
    );
}

/// Elapsed-time guard for loops that write until the server stops them.
struct Bound {
    t: Instant,
    limit: Duration,
}

impl Bound {
    fn new(limit: Duration) -> Bound {
        Bound {
            t: Instant::now(),
            limit,
        }
    }
    fn over(&self) -> bool {
        self.t.elapsed() > self.limit
    }
}
