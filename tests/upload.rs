//! server.stream-request-body and server.upload-dirs through the real server and
//! the tests' FastCGI responder (tests/common/fcgi.rs, `mode=sum`): in mode 0 (the
//! default) a body dribbled by the client reaches the backend only once complete,
//! while blocks with modes 1 and 2 stream it; 100 MiB in each mode arrive intact
//! with the worker's RSS bounded; a mode-0 body's temporary file is in the
//! configured dir only, unnamed, and gone afterwards; a chunked body gets
//! CONTENT_LENGTH; a client that vanishes mid-upload leaves no file and no backend
//! request; a client that stops sending meets server.max-read-idle; a backend
//! that does not read holds the client back in mode 2, while modes 0 and 1 read
//! the whole body into the spool; a CGI script in mode 0 starts only once the
//! body is in; an
//! upload dir that does not exist is warned about (file:line) and a body that
//! needs it gets 500.

mod common;

use common::fcgi::{now_ms, Responder};
use common::{wait_until, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn start(be: &Responder, upload: &str) -> Server {
    start_with(be, upload, "")
}

fn start_with(be: &Responder, upload: &str, extra: &str) -> Server {
    let conf = format!(
        r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.modules = ("mod_fastcgi")
server.upload-dirs = ( "@DIR@/{upload}" )
fastcgi.server = ( ".php" => ( ( "host" => "127.0.0.1", "port" => {} ) ) )
$HTTP["url"] =^ "/stream/" {{
    server.stream-request-body = 2
    server.stream-response-body = 2
}}
$HTTP["url"] =^ "/ahead/" {{
    server.stream-request-body = 1
}}
{extra}
"#,
        be.port
    );
    Server::start_with(&conf, &[], |dir| {
        std::fs::create_dir_all(dir.join("up")).expect("mkdir up");
        for sub in ["stream", "ahead"] {
            std::fs::create_dir_all(dir.join("www").join(sub)).expect("mkdir");
            std::fs::write(dir.join("www").join(sub).join("t.php"), "x").expect("write");
        }
        std::fs::write(dir.join("www/t.php"), "x").expect("write");
    })
}

/// The one worker of a `server.max-worker = 1` server.
fn worker(s: &Server) -> u32 {
    let mut w = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            w = s
                .children()
                .into_iter()
                .filter(|p| common::cmdline(*p).contains("worker"))
                .collect();
            w.len() == 1
        }),
        "one worker expected, found {w:?}"
    );
    w[0]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The files the worker holds open in `dir` (root: the worker is not dumpable).
fn open_in(pid: u32, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                if t.starts_with(dir) && t != dir {
                    out.push(t.display().to_string());
                }
            }
        }
    }
    out
}

/// Every temporary file the worker holds anywhere but `dir` (not sockets,
/// pipes, the log, the config, /dev): there must be none.
fn files_elsewhere(pid: u32, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let s = t.display().to_string();
                if s.contains("(deleted)") && !t.starts_with(dir) {
                    out.push(s);
                }
            }
        }
    }
    out
}

fn fields(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The body byte at `i` (the test's and the check's pattern).
fn byte(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 13)) as u8
}

struct Fnv(u64);
impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, d: &[u8]) {
        for &b in d {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn read_response(c: &mut TcpStream) -> common::Response {
    let mut raw = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = c.read_to_end(&mut raw);
    common::parse_response(&raw)
}

/// Upload `total` bytes of the pattern to `path` with Content-Length (or chunked),
/// calling `during` after each MiB; the response, and the body's FNV.
fn upload(
    s: &Server,
    path: &str,
    total: u64,
    chunked: bool,
    mut during: impl FnMut(u64),
) -> (common::Response, String) {
    let mut c = s.connect();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {total}")
    };
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{framing}\r\n\r\n"
    )
    .expect("head");
    let mut fnv = Fnv::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(buf.len() as u64) as usize;
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = byte(sent + k as u64);
        }
        fnv.add(&buf[..n]);
        // (a refused body may meet a closed connection: the answer still counts)
        let wrote = if chunked {
            write!(c, "{n:x}\r\n")
                .and_then(|_| c.write_all(&buf[..n]))
                .and_then(|_| c.write_all(b"\r\n"))
        } else {
            c.write_all(&buf[..n])
        };
        if wrote.is_err() {
            break;
        }
        sent += n as u64;
        during(sent);
    }
    if chunked {
        let _ = c.write_all(b"0\r\n\r\n");
    }
    (read_response(&mut c), format!("{:016x}", fnv.0))
}

#[test]
fn mode_0_holds_the_backend_until_the_body_is_complete_mode_2_does_not() {
    let be = Responder::tcp();
    let s = start(&be, "up");
    for (path, whole) in [
        ("/t.php?mode=sum", true),
        ("/stream/t.php?mode=sum", false),
        ("/ahead/t.php?mode=sum", false),
    ] {
        let mut c = s.connect();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4000\r\n\r\n"
        )
        .expect("head");
        let mut last = 0;
        for k in 0..4 {
            std::thread::sleep(Duration::from_millis(300));
            c.write_all(&[b'a' + k; 1000]).expect("part");
            last = now_ms();
        }
        let r = read_response(&mut c);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let f = fields(&r.body);
        let begin: u128 = f["begin"].parse().expect("begin");
        let first: u128 = f["first"].parse().expect("first");
        println!(
            "{path}: backend contacted {} ms, first body byte {} ms after the client's last byte",
            begin as i128 - last as i128,
            first as i128 - last as i128
        );
        assert_eq!(f["len"], "4000");
        if whole {
            assert!(
                begin + 5 >= last,
                "mode 0: the backend was contacted {} ms before the body was complete",
                last - begin
            );
        } else {
            assert!(
                first + 500 < last,
                "mode 1/2: the body's first byte reached the backend only {} ms before its last was sent",
                last as i128 - first as i128
            );
        }
    }
}

#[test]
fn a_100_mib_upload_in_every_mode_arrives_intact_with_the_worker_small() {
    let be = Responder::tcp();
    let s = start(&be, "up");
    let w = worker(&s);
    let up = s.dir.path().join("up");
    let root = common::is_root();
    if !root {
        eprintln!("not root: the worker's open files (not dumpable) are not looked at");
    }
    // Warm the worker up (buffers of a first request) before the baseline.
    let (r, _) = upload(&s, "/t.php?mode=sum", 1000, false, |_| {});
    assert_eq!(r.status, 200);
    let total = 100u64 << 20;
    for path in [
        "/t.php?mode=sum",
        "/stream/t.php?mode=sum",
        "/ahead/t.php?mode=sum",
    ] {
        let before = rss_kib(w);
        let mut peak = before;
        let mut seen_file = Vec::new();
        let mut elsewhere = Vec::new();
        let started = Instant::now();
        let (r, fnv) = upload(&s, path, total, false, |sent| {
            peak = peak.max(rss_kib(w));
            if root && sent % (8 << 20) == 0 {
                seen_file.extend(open_in(w, &up));
                elsewhere.extend(files_elsewhere(w, &up));
            }
        });
        let took = started.elapsed();
        peak = peak.max(rss_kib(w));
        let after = rss_kib(w);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let f = fields(&r.body);
        println!(
            "{path}: 100 MiB in {took:?}; worker VmRSS before {before} KiB, peak {peak} KiB, after {after} KiB; temp files seen: {:?}",
            seen_file.iter().take(1).collect::<Vec<_>>()
        );
        assert_eq!(f["len"], total.to_string(), "{path}: length at the backend");
        assert_eq!(f["fnv"], fnv, "{path}: the body changed on the way");
        assert_eq!(f["cl"], total.to_string());
        assert!(
            peak < before + 16 * 1024,
            "{path}: the worker grew from {before} KiB to {peak} KiB"
        );
        assert!(
            elsewhere.is_empty(),
            "temporary files elsewhere: {elsewhere:?}"
        );
        // The directory shows nothing: the file has no name.
        let listed: Vec<_> = std::fs::read_dir(&up).expect("up").flatten().collect();
        assert!(listed.is_empty(), "files in the upload dir: {listed:?}");
        if root {
            if path.starts_with("/t.php") {
                assert!(
                    !seen_file.is_empty(),
                    "mode 0: no temporary file in {} while 100 MiB came in",
                    up.display()
                );
                assert!(
                    seen_file
                        .iter()
                        .all(|f| f.contains("(deleted)") || f.contains("/#")),
                    "a temporary file with a name: {seen_file:?}"
                );
            } else if path.starts_with("/stream/") {
                assert!(seen_file.is_empty(), "mode 2 spooled: {seen_file:?}");
            }
            assert!(
                open_in(w, &up).is_empty(),
                "the temporary file outlived its request"
            );
        }
    }
}

#[test]
fn a_chunked_body_is_spooled_and_gets_content_length() {
    let be = Responder::tcp();
    let s = start(&be, "up");
    for path in ["/t.php?mode=sum", "/stream/t.php?mode=sum"] {
        let total = 3u64 << 20;
        let (r, fnv) = upload(&s, path, total, true, |_| {});
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let f = fields(&r.body);
        assert_eq!(f["cl"], total.to_string(), "{path}: CONTENT_LENGTH");
        assert_eq!(
            (f["len"].as_str(), f["fnv"].as_str()),
            (total.to_string().as_str(), fnv.as_str())
        );
    }
}

#[test]
fn a_client_that_vanishes_mid_upload_leaves_no_file_and_no_backend_request() {
    let be = Responder::tcp();
    let s = start(&be, "up");
    let w = worker(&s);
    let up: PathBuf = s.dir.path().join("up");
    let mut c = s.connect();
    write!(
        c,
        "POST /t.php?mode=sum HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        10 << 20
    )
    .expect("head");
    c.write_all(&vec![b'x'; 2 << 20]).expect("part");
    if common::is_root() {
        assert!(
            wait_until(Duration::from_secs(5), || !open_in(w, &up).is_empty()),
            "no temporary file while 2 MiB waited"
        );
    }
    drop(c);
    if common::is_root() {
        assert!(
            wait_until(Duration::from_secs(5), || open_in(w, &up).is_empty()),
            "the temporary file outlived the client: {:?}",
            open_in(w, &up)
        );
    } else {
        eprintln!("not root: the worker's open files (not dumpable) are not looked at");
    }
    // The worker is still there, and answers the next request.
    let (r, _) = upload(&s, "/t.php?mode=sum", 10, false, |_| {});
    assert_eq!(r.status, 200);
    assert_eq!(worker(&s), w);
    assert_eq!(
        be.connections.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the vanished client's request reached the backend"
    );
    assert_eq!(std::fs::read_dir(&up).expect("up").count(), 0);
}

#[test]
fn a_backend_that_does_not_read_holds_the_client_back_in_mode_2_only() {
    let be = Responder::tcp();
    let s = start(&be, "up");
    let w = worker(&s);
    let before = rss_kib(w);
    let total: usize = 64 << 20;
    let accepted = |path: &str, answer: bool| -> usize {
        let mut c = s.connect();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {total}\r\n\r\n"
        )
        .expect("head");
        c.set_nonblocking(true).expect("nonblocking");
        let buf = vec![b'y'; 1 << 20];
        let mut sent = 0;
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until && sent < total {
            match c.write(&buf[..buf.len().min(total - sent)]) {
                Ok(n) => sent += n,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        if answer {
            c.set_nonblocking(false).expect("blocking");
            let r = read_response(&mut c);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert_eq!(fields(&r.body)["len"], total.to_string(), "{path}");
        }
        sent
    };
    // mode 2: the backend sleeps 3 s before it reads STDIN; mode 0: the backend
    // is not even contacted, the whole body goes to the spool.
    let held = accepted("/stream/t.php?mode=sum&stall=3000", false);
    let peak = rss_kib(w);
    let spooled = accepted("/t.php?mode=sum&stall=3000", false);
    // mode 1: streams, and reads ahead of the backend into the spool.
    let ahead = accepted("/ahead/t.php?mode=sum&stall=3000", true);
    println!(
        "with a backend that does not read: mode 2 took {} MiB of 64, mode 0 {} MiB, mode 1 {} MiB; worker VmRSS {before} KiB, {peak} KiB during mode 2",
        held >> 20,
        spooled >> 20,
        ahead >> 20
    );
    assert!(
        held < 40 << 20,
        "mode 2 read {held} bytes the backend did not take"
    );
    assert_eq!(spooled, total, "mode 0 did not take the whole body");
    assert_eq!(ahead, total, "mode 1 did not read ahead of the backend");
    assert!(peak < before + 16 * 1024, "the worker grew to {peak} KiB");
}

#[test]
fn an_upload_dir_that_does_not_exist_is_warned_about_and_gives_500() {
    let be = Responder::tcp();
    let s = start(&be, "missing");
    let warned = |log: &str| {
        log.lines()
            .find(|l| l.contains("server.upload-dirs") && l.contains("missing"))
            .map(str::to_string)
    };
    wait_until(Duration::from_secs(5), || warned(&s.error_log()).is_some());
    let log = s.error_log();
    let line =
        warned(&log).unwrap_or_else(|| panic!("no warning about the missing upload dir:\n{log}"));
    assert!(line.contains("wickd.conf:"), "no file:line in {line}");
    // Small bodies stay in memory and need no dir; a large one does.
    let (r, _) = upload(&s, "/t.php?mode=sum", 1000, false, |_| {});
    assert_eq!(r.status, 200);
    let (r, _) = upload(&s, "/t.php?mode=sum", 1 << 20, false, |_| {});
    assert_eq!(r.status, 500);
    let (r, fnv) = upload(&s, "/stream/t.php?mode=sum", 1 << 20, false, |_| {});
    assert_eq!((r.status, fields(&r.body)["fnv"].clone()), (200, fnv));
    assert_eq!(be.connections.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[test]
fn a_client_that_stops_sending_its_body_meets_max_read_idle() {
    let be = Responder::tcp();
    let s = start_with(&be, "up", "server.max-read-idle = 2");
    let mut c = s.connect();
    write!(
        c,
        "POST /t.php?mode=sum HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
    )
    .expect("head");
    c.write_all(&[b'z'; 200_000]).expect("part");
    let t = Instant::now();
    let r = read_response(&mut c);
    println!(
        "a stalled body was answered {} after {:?}",
        r.status,
        t.elapsed()
    );
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert_eq!(be.connections.load(std::sync::atomic::Ordering::Relaxed), 0);
}

/// A CGI script that says when it started, how much body it read and its
/// CONTENT_LENGTH.
const TIMED: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"start=$(date +%s%3N)\"\necho \"len=$(wc -c)\"\necho \"cl=$CONTENT_LENGTH\"\n";

#[test]
fn cgi_in_mode_0_starts_once_the_body_is_in_and_reads_it_from_the_spool() {
    let conf = r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_cgi")
server.upload-dirs = ( "@DIR@/up" )
cgi.assign = (".sh" => "/bin/sh")
$HTTP["url"] =^ "/stream/" {
    server.stream-request-body = 1
}
"#;
    let s = Server::start_with(conf, &[], |dir| {
        std::fs::create_dir_all(dir.join("up")).expect("mkdir up");
        std::fs::create_dir_all(dir.join("www/stream")).expect("mkdir");
        std::fs::write(dir.join("www/t.sh"), TIMED).expect("write");
        std::fs::write(dir.join("www/stream/t.sh"), TIMED).expect("write");
    });
    for (path, whole) in [("/t.sh", true), ("/stream/t.sh", false)] {
        let mut c = s.connect();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4000\r\n\r\n"
        )
        .expect("head");
        let mut last = 0;
        for k in 0..4 {
            std::thread::sleep(Duration::from_millis(300));
            c.write_all(&[b'a' + k; 1000]).expect("part");
            last = now_ms();
        }
        let r = read_response(&mut c);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let f = fields(&r.body);
        let start: u128 = f["start"].parse().expect("start");
        println!(
            "{path}: the script started {} ms after the client's last byte",
            start as i128 - last as i128
        );
        assert_eq!((f["len"].as_str(), f["cl"].as_str()), ("4000", "4000"));
        if whole {
            assert!(
                start + 5 >= last,
                "mode 0: the script started {} ms early",
                last - start
            );
        } else {
            assert!(
                start + 500 < last,
                "mode 1: the script started only after the body"
            );
        }
    }
    // 3 MiB, chunked and in mode 1: still received whole (spooled), with its length.
    let (r, _) = upload(&s, "/stream/t.sh", 3 << 20, true, |_| {});
    assert_eq!(r.status, 200, "{}", r.text());
    let f = fields(&r.body);
    let n = (3u64 << 20).to_string();
    assert_eq!(
        (f["len"].as_str(), f["cl"].as_str()),
        (n.as_str(), n.as_str())
    );
}

#[test]
fn a_slow_client_does_not_hold_the_backend_unless_mode_2() {
    let be = Responder::tcp();
    let s = start(&be, "up");
    let w = worker(&s);
    let up = s.dir.path().join("up");
    let n: usize = 50 << 20;
    for (path, spooled) in [("/t.php", true), ("/stream/t.php", false)] {
        let before = rss_kib(w);
        let done_before = be.finished.load(std::sync::atomic::Ordering::Relaxed);
        let mut c = s.connect();
        write!(c, "GET {path}?mode=bytes&n={n} HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
        // The client reads nothing for a while.
        let freed = wait_until(Duration::from_secs(3), || {
            be.finished.load(std::sync::atomic::Ordering::Relaxed) > done_before
        });
        let peak = rss_kib(w);
        let files = open_in(w, &up);
        let r = read_response(&mut c);
        assert_eq!(r.status, 200, "{path}");
        println!(
            "{path}: backend done while the client did not read: {freed}; worker VmRSS {before} KiB, {peak} KiB then; response files {files:?}"
        );
        assert_eq!(r.body.len(), n, "{path}: the response's length");
        assert!(
            r.body.iter().all(|&b| b == b'x'),
            "{path}: the response changed"
        );
        assert_eq!(
            freed, spooled,
            "{path}: backend freed before the client read"
        );
        assert!(
            peak < before + 16 * 1024,
            "{path}: the worker grew to {peak} KiB"
        );
        if common::is_root() {
            assert_eq!(!files.is_empty(), spooled, "{path}: files {files:?}");
            assert!(
                wait_until(Duration::from_secs(3), || open_in(w, &up).is_empty()),
                "the response's file outlived it"
            );
        }
        assert_eq!(std::fs::read_dir(&up).expect("up").count(), 0);
    }
}
