//! mod_scgi through the real server against an SCGI and a uwsgi responder of the
//! tests' own (tests/common/scgi.rs), on TCP ports and unix sockets: the request
//! head in each protocol, the same CGI environment as mod_fastcgi's (compared
//! against tests/common/fcgi.rs for the same request), check-local and URL
//! prefixes, request bodies (plain and chunked), large responses, an NPH status
//! line, scgi.balance, a backend that is down (the next one; none: 503), one that
//! closes without answering (502), read-timeout (504), and scgi.protocol values
//! lighttpd refuses.

mod common;

use common::scgi::{Protocol, Responder};
use common::{curl, wickd_bin, Server, TempDir};
use std::collections::HashMap;
use std::process::{Command, Stdio};

fn conf(modules: &str, keys: &str) -> String {
    format!(
        r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ({modules})
index-file.names = ("index.py", "index.html")
{keys}
"#
    )
}

fn start(keys: &str) -> Server {
    start_with("\"mod_scgi\"", keys)
}

fn start_with(modules: &str, keys: &str) -> Server {
    Server::start_with(&conf(modules, keys), &[], |dir| {
        let www = dir.join("www");
        std::fs::create_dir_all(www.join("sub")).expect("mkdir");
        for f in ["t.py", "t.php", "index.py", "sub/index.py"] {
            std::fs::write(www.join(f), "print('source')").expect("write");
        }
        std::fs::write(www.join("plain.html"), "static").expect("write");
    })
}

fn tcp_host(port: u16) -> String {
    format!("( \"host\" => \"127.0.0.1\", \"port\" => {port} )")
}

/// The `K=V` lines in the order the backend got them.
fn vars(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn map(v: &[(String, String)]) -> HashMap<String, String> {
    v.iter().cloned().collect()
}

#[test]
fn scgi_environment_over_tcp_with_check_local() {
    let be = Responder::tcp(Protocol::Scgi);
    let s = start(&format!(
        "scgi.server = ( \".py\" => ( {} ) )",
        tcp_host(be.port)
    ));
    let docroot = s.docroot();
    let docroot = docroot.to_str().expect("utf-8");
    let r = s.get("/t.py/a/b?x=1&y");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = vars(&r.body);
    // The responder refuses a head without CONTENT_LENGTH first or SCGI=1;
    // lighttpd puts SCGI last.
    assert_eq!(v.first().map(|(k, _)| k.as_str()), Some("CONTENT_LENGTH"));
    assert_eq!(v.last(), Some(&("SCGI".to_string(), "1".to_string())));
    let e = map(&v);
    assert_eq!(e["SCRIPT_NAME"], "/t.py");
    assert_eq!(e["PATH_INFO"], "/a/b");
    assert_eq!(e["SCRIPT_FILENAME"], format!("{docroot}/t.py"));
    assert_eq!(e["DOCUMENT_ROOT"], docroot);
    assert_eq!(e["QUERY_STRING"], "x=1&y");
    assert_eq!(e["REQUEST_URI"], "/t.py/a/b?x=1&y");
    assert_eq!(e["REQUEST_METHOD"], "GET");
    assert_eq!(e["SERVER_PORT"], s.port.to_string());
    assert_eq!(e["REMOTE_ADDR"], "127.0.0.1");
    assert!(!r.text().contains("source"));
    // check-local: a file that does not exist is not the backend's.
    assert_eq!(s.get("/none.py").status, 404);
    // An index file with the suffix goes to the backend.
    let r = s.get("/sub/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(map(&vars(&r.body))["SCRIPT_NAME"], "/sub/index.py");
    // Other files stay static.
    assert_eq!(s.get("/plain.html").text(), "static");
}

/// mod_scgi builds mod_fastcgi's environment: the same request to both gives
/// the same variables (SCGI=1 aside).
#[test]
fn the_environment_is_mod_fastcgis() {
    let sc = Responder::tcp(Protocol::Scgi);
    let fc = common::fcgi::Responder::tcp();
    let s = start_with(
        "\"mod_scgi\", \"mod_fastcgi\"",
        &format!(
            "scgi.server = ( \".py\" => ( {} ) )\nfastcgi.server = ( \".php\" => ( {} ) )",
            tcp_host(sc.port),
            tcp_host(fc.port)
        ),
    );
    let get = |path: &str| {
        let r = curl(
            &s.url(path),
            &["-H", "X-Test: 1", "-H", "Cookie: a=b", "-u", "u:p"],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let mut e = map(&vars(&r.body));
        e.remove("SCGI");
        e.remove("REMOTE_PORT"); // two connections
                                 // The responder's own name and the file it names differ by suffix.
        for k in ["SCRIPT_NAME", "SCRIPT_FILENAME", "REQUEST_URI"] {
            let v = e.remove(k).unwrap_or_default();
            e.insert(k.to_string(), v.replace(".php", ".py"));
        }
        e
    };
    let scgi = get("/t.py/x?q=1");
    let fcgi = get("/t.php/x?q=1");
    assert!(scgi.len() > 20, "{scgi:?}");
    assert_eq!(scgi, fcgi);
}

#[test]
fn uwsgi_over_a_unix_socket_with_an_nph_status_line() {
    let d = TempDir::new();
    let sock = d.path().join("uwsgi.sock");
    let _be = Responder::unix(Protocol::Uwsgi, &sock);
    let s = start(&format!(
        "scgi.protocol = \"uwsgi\"\nscgi.server = ( \"/app\" => ( ( \"socket\" => \"{}\", \"check-local\" => \"disable\" ) ) )",
        sock.display()
    ));
    let r = s.get("/app/x/y?mode=nph");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("X-Backend"), Some("uwsgi-style"));
    let e = map(&vars(&r.body));
    assert_eq!(e["SCRIPT_NAME"], "/app");
    assert_eq!(e["PATH_INFO"], "/x/y");
    assert!(!e.contains_key("SCGI"), "uwsgi gets no SCGI=1: {e:?}");
    // A plain CGI-style answer too.
    let r = s.get("/app/?q=2");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(map(&vars(&r.body))["QUERY_STRING"], "q=2");
}

#[test]
fn request_bodies_reach_the_backend_in_both_protocols() {
    for proto in [Protocol::Scgi, Protocol::Uwsgi] {
        let be = Responder::tcp(proto);
        let p = if proto == Protocol::Uwsgi {
            "uwsgi"
        } else {
            "scgi"
        };
        let s = start(&format!(
            "scgi.protocol = \"{p}\"\nscgi.server = ( \".py\" => ( {} ) )",
            tcp_host(be.port)
        ));
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let d = TempDir::new();
        let f = d.path().join("body");
        std::fs::write(&f, &body).expect("write");
        let at = format!("@{}", f.display());
        let r = curl(&s.url("/t.py?mode=echo"), &["--data-binary", &at]);
        assert_eq!(
            r.status,
            200,
            "{p}: {}",
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        );
        assert!(r.body == body, "{p}: {} bytes back", r.body.len());
        // Chunked: collected, then sent with its length.
        let r = curl(
            &s.url("/t.py?mode=echo"),
            &["--data-binary", &at, "-H", "Transfer-Encoding: chunked"],
        );
        assert_eq!(
            r.status,
            200,
            "{p}: {} / {}",
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)]),
            std::fs::read_to_string(s.dir.path().join("error.log")).unwrap_or_default()
        );
        assert!(r.body == body, "{p} chunked: {} bytes back", r.body.len());
    }
}

#[test]
fn a_large_response_streams_through() {
    let be = Responder::tcp(Protocol::Scgi);
    let s = start(&format!(
        "scgi.server = ( \".py\" => ( {} ) )",
        tcp_host(be.port)
    ));
    let n = 5 * 1024 * 1024;
    let r = curl(&s.url(&format!("/t.py?mode=bytes&n={n}")), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert!(r.body.iter().all(|&b| b == b'x'));
}

#[test]
fn balance_failover_and_failures() {
    let a = Responder::tcp(Protocol::Scgi);
    let b = Responder::tcp(Protocol::Scgi);
    // A port nobody listens on: its host is disabled and the next one used.
    let dead = common::free_port();
    let s = start(&format!(
        "scgi.balance = \"round-robin\"\nscgi.server = ( \".py\" => ( {}, {}, {} ), \"/down\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {dead}, \"check-local\" => \"disable\" ) ), \"/slow\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => {}, \"check-local\" => \"disable\", \"read-timeout\" => 1 ) ) )",
        tcp_host(a.port),
        tcp_host(dead),
        tcp_host(b.port),
        a.port
    ));
    for _ in 0..6 {
        assert_eq!(s.get("/t.py").status, 200);
    }
    let (na, nb) = (
        a.requests.load(std::sync::atomic::Ordering::Relaxed),
        b.requests.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(
        na >= 2 && nb >= 2,
        "round-robin over the live hosts: {na} {nb}"
    );
    // None alive: 503.
    assert_eq!(s.get("/down/x").status, 503);
    // A backend that closes before answering: 502.
    assert_eq!(s.get("/t.py?mode=diehead").status, 502);
    // read-timeout: 504.
    assert_eq!(s.get("/slow/x?mode=slow").status, 504);
    // The worker writes its log lines after the loop turn that answered.
    let log_path = s.dir.path().join("error.log");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    common::wait_until(std::time::Duration::from_secs(3), || {
        read_log().contains("mod_scgi: read timeout on backend")
    });
    let log = read_log();
    assert!(
        log.contains(&format!(
            "mod_scgi: connect to backend 127.0.0.1:{dead} failed"
        )),
        "{log}"
    );
    assert!(log.contains("mod_scgi: read timeout on backend"), "{log}");
}

#[test]
fn scgi_server_without_mod_scgi_and_bad_protocols_are_refused() {
    let d = TempDir::new();
    let www = d.path().join("www");
    std::fs::create_dir_all(&www).expect("mkdir");
    let run = |modules: &str, keys: &str| {
        let c = d.path().join("wickd.conf");
        std::fs::write(
            &c,
            format!(
                "server.document-root = \"{}\"\nserver.port = 8080\nserver.modules = ({modules})\n{keys}\n",
                www.display()
            ),
        )
        .expect("write");
        Command::new(wickd_bin())
            .args(["-tt", "-f"])
            .arg(&c)
            .stdin(Stdio::null())
            .output()
            .expect("run wickd")
    };
    let py = "scgi.server = ( \".py\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 4000 ) ) )";
    let o = run("\"mod_scgi\"", py);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Without mod_scgi lighttpd would send the .py files as they are.
    let o = run("\"mod_access\"", py);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("scgi.server: mod_scgi is not in server.modules"));
    let o = run("\"mod_scgi\"", &format!("{py}\nscgi.protocol = \"fcgi\""));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("scgi.protocol expected \"scgi\" or \"uwsgi\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
