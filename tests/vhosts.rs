//! Shared hosting at scale (issue 20): 20,000 `$HTTP["host"]` blocks and a long
//! else chain served end to end, each request by the right block; a reload from
//! 20,000 to 20,001 sites under load with no failed request.

mod common;

use common::{parse_response, wait_until, Response, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SITES: usize = 20_000;
const CHAIN: usize = 1_000;

/// `sites` host blocks, each naming itself in a response header; an else chain of
/// CHAIN links ending in a plain else, naming the link in the Server header.
fn config(sites: usize) -> String {
    let mut c = String::from(
        r#"server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 2
server.modules = ("mod_setenv")
server.tag = "global"
"#,
    );
    for i in 0..sites {
        c.push_str(&format!(
            "$HTTP[\"host\"] == \"site{i}.example\" {{ setenv.add-response-header = (\"X-Site\" => \"{i}\") }}\n"
        ));
    }
    for i in 0..CHAIN {
        if i > 0 {
            c.push_str(" else ");
        }
        c.push_str(&format!(
            "$HTTP[\"host\"] == \"chain{i}.example\" {{ server.tag = \"chain{i}\" }}"
        ));
    }
    c.push_str(" else { server.tag = \"no-chain\" }\n");
    c
}

fn get(port: u16, host: &str) -> std::io::Result<Response> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(
        format!("GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut out = Vec::new();
    c.read_to_end(&mut out)?;
    Ok(parse_response(&out))
}

fn start(sites: usize) -> Server {
    let s = Server::start_with(&config(sites), &[], |d| {
        std::fs::write(d.join("www/index.html"), "site page\n").expect("index");
    });
    // Ready when a worker answers (the master accepts before).
    assert!(
        wait_until(Duration::from_secs(60), || get(s.port, "x")
            .is_ok_and(|r| r.status == 200)),
        "no answer"
    );
    s
}

#[test]
fn twenty_thousand_sites_each_get_their_own_block() {
    let s = start(SITES);
    for (host, site, chain) in [
        ("site0.example", Some("0"), "no-chain"),
        ("SITE10000.Example:80", Some("10000"), "no-chain"),
        ("site19999.example", Some("19999"), "no-chain"),
        ("unknown.example", None, "no-chain"),
        ("chain0.example", None, "chain0"),
        ("chain500.example", None, "chain500"),
        ("chain999.example", None, "chain999"),
    ] {
        let r = get(s.port, host).expect("request");
        assert_eq!(r.status, 200, "{host}");
        assert_eq!(r.header("x-site"), site, "{host}");
        assert_eq!(r.header("server"), Some(chain), "{host}");
        assert_eq!(r.body, b"site page\n");
    }
}

/// One client: requests on new connections for the last site and, once the new
/// site exists, for it too; every answer must be a whole 200.
fn client(port: u16, stop: &AtomicBool, ok: &AtomicUsize, failed: &Mutex<Vec<String>>) {
    while !stop.load(Ordering::Relaxed) {
        match get(port, "site19999.example") {
            Ok(r)
                if r.status == 200
                    && r.header("x-site") == Some("19999")
                    && r.body == b"site page\n" =>
            {
                ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => failed
                .lock()
                .expect("lock")
                .push(format!("{} {:?}", r.status, r.headers)),
            Err(e) => failed.lock().expect("lock").push(e.to_string()),
        }
    }
}

#[test]
fn reload_to_one_more_site_under_load_loses_nothing() {
    let s = start(SITES);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed, port) = (
                Arc::clone(&stop),
                Arc::clone(&ok),
                Arc::clone(&failed),
                s.port,
            );
            std::thread::spawn(move || client(port, &stop, &ok, &failed))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(s.port, "site20000.example")
            .expect("get")
            .header("x-site"),
        None
    );
    std::fs::write(
        &s.conf,
        common::render(&config(SITES + 1), s.port, s.dir.path()),
    )
    .expect("conf");
    let t = Instant::now();
    s.signal(nix::sys::signal::Signal::SIGUSR1);
    let served = wait_until(Duration::from_secs(60), || {
        get(s.port, "site20000.example").is_ok_and(|r| r.header("x-site") == Some("20000"))
    });
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client");
    }
    assert!(served, "the new site is not served: {}", s.error_log());
    let failed = failed.lock().expect("lock").clone();
    let ok = ok.load(Ordering::Relaxed);
    assert!(
        failed.is_empty(),
        "{} failed ({ok} ok): {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 20, "only {ok} requests");
    println!("reload 20,000 -> 20,001 sites: new site served {took:?} after SIGUSR1; {ok} requests, none failed");
}
