//! server.http-parseopts end to end: lighttpd 1.4.69's defaults, each option group
//! enabled or disabled, wickd staying strict where it says so, and the options read
//! at start-up with lighttpd's errors (file:line). Each request goes on its own
//! connection, as a refused one closes it.

mod common;

use common::{wickd_bin, wire, Server, TempDir};
use std::process::{Command, Stdio};

fn conf(opts: &str) -> String {
    format!(
        r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.modules = ( "mod_setenv" )
mimetype.assign = ( "" => "text/plain" )
$HTTP["querystring"] == "q=a+b" {{
  setenv.add-response-header = ( "X-Query" => "plus" )
}}
$HTTP["querystring"] == "q=a%20b" {{
  setenv.add-response-header = ( "X-Query" => "encoded" )
}}
{opts}
"#
    )
}

fn start(opts: &str) -> Server {
    Server::start_with(&conf(opts), &[], |d| {
        let www = d.join("www");
        std::fs::create_dir_all(www.join("a")).expect("mkdir");
        std::fs::write(www.join("a/b"), "a/b\n").expect("a/b");
        std::fs::write(www.join("a\\b"), "a-backslash-b\n").expect("a\\b");
        std::fs::write(www.join("a%2Fb"), "literal\n").expect("a%2Fb");
    })
}

/// One request on a fresh connection: (status, body, X-Query).
fn ask(s: &Server, req: &str) -> (u16, String, Option<String>) {
    let mut c = wire::Conn::new(s.port);
    c.send(req.as_bytes());
    let r = c.response_to(req.starts_with("HEAD")).expect("a response");
    let q = r.header("X-Query").map(str::to_string);
    (r.status, r.text(), q)
}

fn get(s: &Server, target: &str) -> (u16, String, Option<String>) {
    ask(
        s,
        &format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn lighttpds_defaults() {
    let s = start("");
    // %2F reaches the file system as /, dot segments are resolved.
    assert_eq!(get(&s, "/a%2Fb").1, "a/b\n");
    assert_eq!(get(&s, "/x/../a/./b").1, "a/b\n");
    assert_eq!(get(&s, "/a\\b").1, "a-backslash-b\n");
    // url-invalid-utf8-reject, url-ctrls-reject (the query too).
    assert_eq!(get(&s, "/a%ff").0, 400);
    assert_eq!(get(&s, "/a/b?x=%c0").0, 400);
    assert_eq!(get(&s, "/a/b?x=%01").0, 400);
    // url-query-20-plus is off: the query is as sent.
    assert_eq!(get(&s, "/a/b?q=a%20b").2.as_deref(), Some("encoded"));
    // method-get-body off: GET or HEAD with a body is 400; an empty one is not a body.
    let body = "GET /a/b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(ask(&s, body).0, 400);
    let body = "HEAD /a/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(ask(&s, body).0, 400);
    let empty = "GET /a/b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(ask(&s, empty).0, 200);
    // host-strict: lighttpd's host name rules.
    for host in ["a_b", "127.1", "-a.b", "1.2.3.4:0x50"] {
        let r = ask(&s, &format!("GET /a/b HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(r.0, 400, "{host}");
    }
    for host in ["EXAMPLE.com.", "1.2.3.4:8080", "[::1]"] {
        let r = ask(
            &s,
            &format!("GET /a/b HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.0, 200, "{host}");
    }
}

#[test]
fn path_2f_reject() {
    let s = start(
        r#"server.http-parseopts = ( "url-path-2f-decode" => "disable", "url-path-2f-reject" => "enable" )"#,
    );
    assert_eq!(get(&s, "/a%2Fb").0, 400);
    assert_eq!(get(&s, "/a%2fb").0, 400);
    assert_eq!(get(&s, "/a/b?next=%2F").0, 200, "the query may hold %2F");
}

#[test]
fn path_2f_decode_disabled_still_maps_to_the_file_lighttpd_serves() {
    // lighttpd decodes %2F for the file system whatever url-path-2f-decode says.
    let s = start(r#"server.http-parseopts = ( "url-path-2f-decode" => "disable" )"#);
    assert_eq!(get(&s, "/a%2Fb").1, "a/b\n");
}

#[test]
fn path_dotseg_reject() {
    let s = start(
        r#"server.http-parseopts = ( "url-path-dotseg-remove" => "disable", "url-path-dotseg-reject" => "enable" )"#,
    );
    for t in ["/x/../a/b", "/a/./b", "/a//b", "/a/%2e%2E/a/b", "/a/b/.."] {
        assert_eq!(get(&s, t).0, 400, "{t}");
    }
    assert_eq!(get(&s, "/a/b").0, 200);
    assert_eq!(get(&s, "/a/b?x=/../").0, 200);
}

#[test]
fn query_20_plus() {
    let s = start(r#"server.http-parseopts = ( "url-query-20-plus" => "enable" )"#);
    let r = get(&s, "/a/b?q=a%20b");
    assert_eq!((r.0, r.2.as_deref()), (200, Some("plus")));
    // The path keeps its %20 (a space).
    assert_eq!(get(&s, "/a%20b").0, 404);
}

#[test]
fn relaxed_options() {
    let s = start(
        r#"server.http-parseopts = (
  "url-invalid-utf8-reject" => "disable",
  "url-ctrls-reject" => "disable",
  "method-get-body" => "enable",
  "host-strict" => "disable",
  "header-strict" => "disable",
  "url-path-backslash-trans" => "enable",
)"#,
    );
    // Invalid UTF-8 passes: the file is just not there.
    assert_eq!(get(&s, "/a%ff").0, 404);
    assert_eq!(get(&s, "/a/b?x=%c0").0, 200);
    // Control bytes may be in the query, never in the path (wickd stays strict).
    assert_eq!(get(&s, "/a/b?x=%01").0, 200);
    assert_eq!(get(&s, "/a%01").0, 400);
    // A GET with a body is answered (the body read and dropped).
    let body = "GET /a/b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
    assert_eq!(ask(&s, body), (200, "a/b\n".into(), None));
    // host-strict off: lighttpd's rules no longer apply; wickd's own still do.
    let lax = "GET /a/b HTTP/1.1\r\nHost: a_b\r\nConnection: close\r\n\r\n";
    assert_eq!(ask(&s, lax).0, 200);
    assert_eq!(ask(&s, "GET /a/b HTTP/1.1\r\nHost: a b\r\n\r\n").0, 400);
    // header-strict off: control bytes in a header are still 400.
    assert_eq!(
        ask(&s, "GET /a/b HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n").0,
        400
    );
    // url-path-backslash-trans does nothing on Linux, as in lighttpd.
    assert_eq!(get(&s, "/a\\b").1, "a-backslash-b\n");
}

#[test]
fn url_normalize_disabled_keeps_the_path_safe() {
    let s = start(r#"server.http-parseopts = ( "url-normalize" => "disable" )"#);
    assert_eq!(get(&s, "/a%ff").0, 404);
    assert_eq!(get(&s, "/x/../a/b").1, "a/b\n");
    assert_eq!(get(&s, "/../../etc/passwd").0, 404);
    assert_eq!(get(&s, "/a%00").0, 400);
}

/// lighttpd's start-up errors, with file:line; warnings where wickd stays strict.
#[test]
fn options_are_checked_at_start_up() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("www")).expect("mkdir");
    let tt = |opts: &str| {
        let p = dir.path().join("t.conf");
        let text = format!(
            "server.document-root = \"{}\"\nserver.http-parseopts = ( {opts} )\n",
            dir.path().join("www").display()
        );
        std::fs::write(&p, text).expect("write");
        let o = Command::new(wickd_bin())
            .args(["-tt", "-f"])
            .arg(&p)
            .stdin(Stdio::null())
            .output()
            .expect("run wickd");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, e) = tt("\"url-frob\" => \"enable\"");
    assert!(
        !ok && e.contains("t.conf:2")
            && e.contains("unrecognized key for server.http-parseopts: url-frob"),
        "{e}"
    );
    let (ok, e) = tt("\"url-path-2f-reject\" => \"enable\"");
    assert!(
        !ok && e.contains("conflicting options in server.http-parseopts"),
        "{e}"
    );
    let (ok, e) = tt("\"host-strict\" => \"sometimes\"");
    assert!(!ok && e.contains("unrecognized value"), "{e}");
    let (ok, e) = tt("\"header-strict\" => \"disable\"");
    assert!(
        ok && e.contains("header-strict disabled: wickd still refuses"),
        "{e}"
    );
    assert!(!e.contains("not acted on"), "{e}");
}

/// url.redirect (like url.rewrite) matches lighttpd's normalised target:
/// unreserved escapes decoded, %2F decoded, dot segments removed; and the query
/// conditions see is normalised too. With url-normalize disabled, the target as sent.
#[test]
fn redirect_sees_the_normalised_target() {
    let rules = r#"
server.modules += ( "mod_redirect" )
url.redirect = ( "^/old/([^?]*)(?:\?(.*))?$" => "/new/$1;$2" )
$HTTP["querystring"] == "q=A" {
  setenv.add-response-header = ( "X-Query" => "normalised" )
}"#;
    let location = |s: &Server, target: &str| {
        let mut c = wire::Conn::new(s.port);
        c.send(format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes());
        let r = c.response_to(false).expect("a response");
        (r.status, r.header("Location").map(str::to_string))
    };
    let s = start(rules);
    assert_eq!(location(&s, "/%6Fld/x"), (301, Some("/new/x;".into())));
    assert_eq!(
        location(&s, "/old%2Fx%2fy"),
        (301, Some("/new/x/y;".into()))
    );
    assert_eq!(
        location(&s, "/a/../old/x?b=%2f%41"),
        (301, Some("/new/x;b=%2FA".into()))
    );
    assert_eq!(get(&s, "/a/b?q=%41").2.as_deref(), Some("normalised"));
    let s = start(&format!(
        "{rules}\nserver.http-parseopts = ( \"url-path-2f-decode\" => \"disable\", \"url-path-dotseg-remove\" => \"disable\" )"
    ));
    assert_eq!(location(&s, "/%6Fld/x"), (301, Some("/new/x;".into())));
    assert_eq!(location(&s, "/old%2Fx").0, 404);
    assert_eq!(location(&s, "/a/../old/x").0, 404);
    let s = start(&format!(
        "{rules}\nserver.http-parseopts = ( \"url-normalize\" => \"disable\" )"
    ));
    assert_eq!(location(&s, "/%6Fld/x").0, 404);
    assert_eq!(get(&s, "/a/b?q=%41").2, None);
}

/// host-strict (which implies host-normalize) and host-normalize: the Host
/// conditions see has its trailing dot and default port dropped and an IPv6
/// literal in canonical form; a port strtol cannot read whole is 400.
#[test]
fn host_normalize() {
    let rules = r#"
$HTTP["host"] == "example.com" {
  setenv.add-response-header = ( "X-Query" => "example" )
}
$HTTP["host"] == "[::1]:8080" {
  setenv.add-response-header = ( "X-Query" => "v6" )
}"#;
    let host = |s: &Server, h: &str| {
        ask(
            s,
            &format!("GET /a/b HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"),
        )
    };
    let s = start(rules);
    assert_eq!(host(&s, "Example.COM.").2.as_deref(), Some("example"));
    assert_eq!(host(&s, "example.com.:80").2.as_deref(), Some("example"));
    assert_eq!(host(&s, "[::0001]:8080").2.as_deref(), Some("v6"));
    assert_eq!(host(&s, "a.b:081").0, 400);
    let s = start(&format!(
        "{rules}\nserver.http-parseopts = ( \"host-strict\" => \"disable\" )"
    ));
    assert_eq!(host(&s, "example.com.").2, None);
    assert_eq!(host(&s, "a.b:081").0, 200);
    let s = start(&format!(
        "{rules}\nserver.http-parseopts = ( \"host-strict\" => \"disable\", \"host-normalize\" => \"enable\" )"
    ));
    assert_eq!(
        host(&s, "example.com.").2,
        None,
        "the dot stays without host-strict"
    );
    assert_eq!(host(&s, "[::0001]:8080").2.as_deref(), Some("v6"));
    assert_eq!(host(&s, "a.b:081").0, 400);
}

/// Without a module that hooks a request stage (the plain path), conditions see
/// the normalised Host too.
#[test]
fn host_normalize_without_modules() {
    let conf = r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.modules = ( )
mimetype.assign = ( "" => "text/plain" )
$HTTP["host"] == "example.com" {
  server.document-root = "@DIR@/other"
}
"#;
    let s = Server::start_with(conf, &[], |d| {
        std::fs::create_dir_all(d.join("www/a")).expect("mkdir");
        std::fs::write(d.join("www/a/b"), "main\n").expect("main");
        std::fs::create_dir_all(d.join("other/a")).expect("mkdir");
        std::fs::write(d.join("other/a/b"), "other\n").expect("other");
    });
    for (h, want) in [
        ("example.com", "other\n"),
        ("example.com.:80", "other\n"),
        ("elsewhere", "main\n"),
    ] {
        let r = ask(
            &s,
            &format!("GET /a/b HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!((r.0, r.1.as_str()), (200, want), "{h}");
    }
}
