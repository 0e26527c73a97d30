//! FastCGI authorizers (fastcgi.server mode "authorizer") through the real
//! server, against the tests' own FastCGI program (tests/common/fcgi.rs), which
//! answers the AUTHORIZER role by the request's X-Allow header: a granted request
//! is served by whatever serves it (a static file, a FastCGI responder that sees
//! the authorizer's Variable- values), a denied one gets the authorizer's answer;
//! the request body is not the authorizer's and reaches the responder whole;
//! the host's docroot becomes the document root; nothing the client sends makes
//! a grant or a variable; a grant is one request's alone; an authorizer that is
//! down or breaks serves nothing (503, 502); an internal request (the 404
//! handler) is checked too; HTTP/2 streams go the same way.

mod common;

use common::fcgi::Responder;
use common::{curl, free_port, parse_response, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

const ALLOW: &[&str] = &["-H", "X-Allow: yes"];

/// An authorizer on "/private/" and "/auth-down/" (URL prefixes), one with a
/// docroot on "/docs/", one that is not listening on "/down/", a responder for
/// ".php"; all on `be` but the one that is down.
fn start(be: &Responder, extra: &str) -> Server {
    start_mods(be, r#""mod_fastcgi""#, extra)
}

/// `start` with these server.modules.
fn start_mods(be: &Responder, mods: &str, extra: &str) -> Server {
    let (p, dead) = (be.port, free_port());
    let conf = format!(
        r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ({mods})
index-file.names = ("index.html")
fastcgi.server = (
  "/private/" => ( ( "host" => "127.0.0.1", "port" => {p}, "mode" => "authorizer", "check-local" => "disable" ) ),
  "/auth-down/" => ( ( "host" => "127.0.0.1", "port" => {p}, "mode" => "authorizer", "check-local" => "disable" ) ),
  "/docs/" => ( ( "host" => "127.0.0.1", "port" => {p}, "mode" => "authorizer", "check-local" => "disable", "docroot" => "@DIR@/alt" ) ),
  "/down/" => ( ( "host" => "127.0.0.1", "port" => {dead}, "mode" => "authorizer", "check-local" => "disable" ) ),
  ".guarded" => ( ( "host" => "127.0.0.1", "port" => {p}, "mode" => "authorizer" ) ),
  "/app/" => (
    "auth" => ( "host" => "127.0.0.1", "port" => {p}, "mode" => "authorizer", "check-local" => "disable" ),
    "resp" => ( "host" => "127.0.0.1", "port" => {p}, "check-local" => "disable" ),
  ),
  ".php" => ( ( "host" => "127.0.0.1", "port" => {p} ) ),
)
{extra}
"#
    );
    Server::start_with(&conf, &[], |dir| {
        let www = dir.join("www");
        for d in ["private", "docs", "down", "auth-down"] {
            std::fs::create_dir_all(www.join(d)).expect("mkdir");
        }
        std::fs::create_dir_all(dir.join("alt/docs")).expect("mkdir");
        for f in [
            "private/secret.txt",
            "down/secret.txt",
            "auth-down/secret.txt",
        ] {
            std::fs::write(www.join(f), "secret\n").expect("write");
        }
        for f in ["private/t.php", "pub.php"] {
            std::fs::write(www.join(f), "<?php source ?>").expect("write");
        }
        std::fs::write(www.join("index.html"), "public\n").expect("write");
        std::fs::write(www.join("x.guarded"), "guarded file\n").expect("write");
        std::fs::write(
            www.join("private/run.sh"),
            "printf 'Content-Type: text/plain\\r\\n\\r\\nscript ran for %s\\n' \"$USER_TIER\"\n",
        )
        .expect("write");
        std::fs::write(www.join("docs/page.txt"), "from the main root\n").expect("write");
        std::fs::write(
            dir.join("alt/docs/page.txt"),
            "from the authorizer's root\n",
        )
        .expect("write");
    })
}

fn env_map(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn granted_static_file_served_denied_gets_the_authorizers_answer() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let r = curl(&s.url("/private/secret.txt"), ALLOW);
    assert_eq!((r.status, r.text().as_str()), (200, "secret\n"));
    // The authorizer's fields and body are not the response's.
    assert_eq!(r.header("x-authorizer"), None);
    assert!(!r.text().contains("authorizer's body"));
    let asked = be.requests.load(Ordering::Relaxed);
    assert_eq!(asked, 1, "one authorizer request");

    let r = s.get("/private/secret.txt");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "denied by the authorizer\n");
    assert_eq!(r.header("x-authorizer"), Some("said no"));
    let r = curl(&s.url("/private/secret.txt"), &["-H", "X-Allow: no"]);
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("secret"));

    // Paths no authorizer guards are not sent to one.
    let before = be.requests.load(Ordering::Relaxed);
    assert_eq!(s.get("/index.html").text(), "public\n");
    assert_eq!(be.requests.load(Ordering::Relaxed), before);
}

#[test]
fn variables_reach_the_responder_and_the_client_cannot_forge_them() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let r = curl(
        &s.url("/private/t.php"),
        &[
            "-H",
            "X-Allow: yes",
            "-H",
            "Variable-EVIL: 1",
            "-H",
            "Variable-USER_TIER: client",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(
        e.get("USER_TIER").map(String::as_str),
        Some("gold"),
        "{e:?}"
    );
    assert_eq!(e["AUTH_SAW_STDIN"], "false");
    assert_eq!(e["SCRIPT_NAME"], "/private/t.php");
    // The client's own Variable- fields stay request headers.
    assert!(!e.contains_key("EVIL"), "{e:?}");
    assert_eq!(e["HTTP_VARIABLE_EVIL"], "1");
    assert_eq!(e["HTTP_VARIABLE_USER_TIER"], "client");
    // Denied: the responder is never asked.
    let before = be.requests.load(Ordering::Relaxed);
    let r = curl(
        &s.url("/private/t.php"),
        &["-H", "Variable-USER_TIER: gold"],
    );
    assert_eq!(r.status, 403);
    assert_eq!(be.requests.load(Ordering::Relaxed), before + 1);
    // A responder request without an authorizer gets no variable.
    let e = env_map(&s.get("/pub.php").body);
    assert!(!e.contains_key("USER_TIER"), "{e:?}");
}

/// Modules listed before mod_fastcgi (mod_cgi, mod_dirlisting) do not serve
/// what an authorizer guards without its grant.
#[test]
fn earlier_modules_do_not_pass_the_authorizer() {
    let be = Responder::tcp();
    let s = start_mods(
        &be,
        r#""mod_cgi", "mod_dirlisting", "mod_fastcgi""#,
        r#"cgi.assign = ( ".sh" => "/bin/sh" )
dir-listing.activate = "enable""#,
    );
    let r = s.get("/private/run.sh");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "denied by the authorizer\n")
    );
    let r = s.get("/private/");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("secret.txt"));
    // Granted: the script runs (without the variables: mod_cgi's environment
    // is the gateway-spawner's), the directory is listed.
    let r = curl(&s.url("/private/run.sh"), ALLOW);
    assert_eq!((r.status, r.text().as_str()), (200, "script ran for \n"));
    let r = curl(&s.url("/private/"), ALLOW);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("secret.txt"), "{}", r.text());
}

/// A suffix key with check-local (the default): a file that exists is asked
/// about, a missing one is 404 without asking.
#[test]
fn suffix_key_with_check_local() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let r = curl(&s.url("/x.guarded"), ALLOW);
    assert_eq!((r.status, r.text().as_str()), (200, "guarded file\n"));
    assert_eq!(s.get("/x.guarded").status, 403);
    let before = be.requests.load(Ordering::Relaxed);
    assert_eq!(curl(&s.url("/missing.guarded"), ALLOW).status, 404);
    assert_eq!(be.requests.load(Ordering::Relaxed), before);
}

/// lighttpd's own test layout: an authorizer and a responder on one key.
#[test]
fn authorizer_and_responder_on_one_key() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let r = curl(&s.url("/app/run/x?q=1"), ALLOW);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(e["USER_TIER"], "gold");
    assert_eq!(e["SCRIPT_NAME"], "/app/run");
    assert_eq!(e["PATH_INFO"], "/x");
    assert_eq!(be.requests.load(Ordering::Relaxed), 2);
    let r = s.get("/app/run/x");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "denied by the authorizer\n")
    );
}

/// A grant is its request's alone: the next request on the same connection
/// (pipelined) is asked about again, and a responder request after it sees no
/// variable.
#[test]
fn a_grant_does_not_outlive_its_request() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let mut c = s.connect();
    c.write_all(
        b"GET /private/t.php HTTP/1.1\r\nHost: x\r\nX-Allow: yes\r\n\r\n\
          GET /private/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /pub.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let heads: Vec<_> = text.match_indices("HTTP/1.1 ").map(|(i, _)| i).collect();
    assert_eq!(heads.len(), 3, "{text}");
    let first = &text[heads[0]..heads[1]];
    let second = &text[heads[1]..heads[2]];
    let third = &text[heads[2]..];
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("USER_TIER=gold"), "{first}");
    assert!(second.starts_with("HTTP/1.1 403"), "{second}");
    assert!(second.contains("denied by the authorizer"), "{second}");
    assert!(third.starts_with("HTTP/1.1 200"), "{third}");
    assert!(!third.contains("USER_TIER"), "{third}");
}

#[test]
fn the_body_is_not_the_authorizers_and_reaches_the_responder() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let dir = common::TempDir::new();
    let file = dir.path().join("body");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &body).expect("write");
    let at = format!("@{}", file.display());
    let r = curl(
        &s.url("/private/t.php?mode=echo"),
        &["-H", "X-Allow: yes", "--data-binary", &at],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "the body came back changed ({} bytes)",
        r.body.len()
    );
    // The authorizer saw none of it; the responder its length.
    let r = curl(
        &s.url("/private/t.php"),
        &["-H", "X-Allow: yes", "--data-binary", "0123456789"],
    );
    let e = env_map(&r.body);
    assert_eq!(e["AUTH_SAW_STDIN"], "false");
    assert_eq!(e["CONTENT_LENGTH"], "10");
    // A client that waits for 100 Continue before its body.
    let r = curl(
        &s.url("/private/t.php?mode=echo"),
        &[
            "-H",
            "X-Allow: yes",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "sent after 100",
        ],
    );
    assert_eq!((r.status, r.text().as_str()), (200, "sent after 100"));
    // Chunked.
    let r = curl(
        &s.url("/private/t.php?mode=echo"),
        &[
            "-H",
            "X-Allow: yes",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at,
        ],
    );
    assert_eq!(r.status, 200);
    assert!(r.body == body, "the chunked body came back changed");
    // Denied with a body: the authorizer's answer, the body never served.
    let r = curl(
        &s.url("/private/t.php?mode=echo"),
        &["--data-binary", "not for anyone"],
    );
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("not for anyone"));
}

#[test]
fn the_authorizers_docroot_is_the_document_root() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let r = curl(&s.url("/docs/page.txt"), ALLOW);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "from the authorizer's root\n")
    );
    assert_eq!(s.get("/docs/page.txt").status, 403);
}

#[test]
fn an_authorizer_down_or_broken_serves_nothing() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let r = curl(&s.url("/down/secret.txt"), ALLOW);
    assert_eq!(r.status, 503);
    assert!(!r.text().contains("secret"));
    // Answered nothing and closed: 502.
    let r = curl(&s.url("/auth-down/secret.txt"), ALLOW);
    assert_eq!(r.status, 502);
    assert!(!r.text().contains("secret"));
}

/// server.error-handler-404 into a guarded path: the internal request is
/// asked about too, and runs as the internal request it is once granted.
#[test]
fn internal_requests_are_checked() {
    let be = Responder::tcp();
    let s = start(&be, r#"server.error-handler-404 = "/private/t.php""#);
    let r = curl(&s.url("/nothing-here"), ALLOW);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = env_map(&r.body);
    assert_eq!(e["USER_TIER"], "gold");
    assert_eq!(e["REQUEST_URI"], "/nothing-here");
    assert_eq!(e["SCRIPT_NAME"], "/private/t.php");
    let r = s.get("/nothing-here");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("USER_TIER"));
}

#[test]
fn over_http2() {
    let be = Responder::tcp();
    let s = start(&be, "");
    let h2 = |path: &str, extra: &[&str]| {
        let mut args = vec!["--http2-prior-knowledge"];
        args.extend_from_slice(extra);
        curl(&s.url(path), &args)
    };
    let r = h2("/private/secret.txt", ALLOW);
    assert_eq!((r.status, r.text().as_str()), (200, "secret\n"));
    let r = h2("/private/secret.txt", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "denied by the authorizer\n")
    );
    let r = h2("/private/t.php", ALLOW);
    assert_eq!(env_map(&r.body)["USER_TIER"], "gold");
    let r = h2(
        "/private/t.php?mode=echo",
        &["-H", "X-Allow: yes", "--data-binary", "a body over h2"],
    );
    assert_eq!((r.status, r.text().as_str()), (200, "a body over h2"));
    // The raw exchange was HTTP/2 (curl's status line says so).
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--http2-prior-knowledge", "-H", "X-Allow: yes"])
        .arg(s.url("/private/secret.txt"))
        .output()
        .expect("curl");
    let first = String::from_utf8_lossy(&out.stdout);
    assert!(first.starts_with("HTTP/2 200"), "{first}");
    let _ = parse_response(&out.stdout);
}
