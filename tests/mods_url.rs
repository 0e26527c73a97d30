//! The URL modules through the real server: mod_redirect and mod_rewrite with every
//! substitution form, mod_access, mod_alias (and its start-up order check),
//! mod_setenv, mod_expire, mod_extforward, and lighttpd's module loading rules
//! (compat loading of mod_indexfile / mod_staticfile, hook order).

mod common;

use common::{curl, parse_response, Response, Server};
use std::path::Path;
use std::process::Command;

fn conf(modules: &str, extra: &str) -> String {
    format!(
        r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.tag = "wick-test"
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain", ".css" => "text/css" )
server.modules = ( {modules} )
{extra}
"#
    )
}

fn put(dir: &Path, rel: &str, body: &str) {
    let p = dir.join("www").join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, body).expect("write");
}

/// A request with extra curl arguments (headers, method).
fn get(s: &Server, path: &str, extra: &[&str]) -> Response {
    curl(&s.url(path), extra)
}

/// One raw request on its own connection (Connection: close added by the caller).
fn raw(s: &Server, req: &str) -> Response {
    parse_response(&s.raw(req.as_bytes()))
}

fn location(r: &Response) -> &str {
    r.header("location").unwrap_or("<none>")
}

// ---------------------------------------------------------------- mod_redirect

const REDIRECTS: &str = r#"
url.redirect = (
  "^/d/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)$" => "/o/$0|$1|$9|${10}|${12}|${13}",
  "^/esc/([^?]*)" => "/o/$1|${1}|${esc:1}|${escape:1}|${noesc:1}|${noescape:1}|${escnde:1}|${escpsnde:1}",
  "^/case/([^?]*)" => "/o/${tolower:1}|${toupper:1}",
  "^/b64/([^/?]*)/([^?]*)" => "/o/${encb64u:1}|${decb64u:2}",
  "^/url/" => "${url.scheme}://${url.authority}|${url.authority.noport}|${url.port}|${url.path}|${url.query}",
  "^/qsa/([^?]*)" => "/o/$1?x=1${qsa}",
  "^/qsb/([^?]*)" => "/o/$1${qsa}",
  "^/lit/" => "/o/%%|$$|%a|$a|100%",
  "^/pct/" => "/o/[%1]",
  "^/stop" => "",
  "^/sto(p)" => "/never",
  "^/post" => "/o/post",
  "^/code/(.*)" => "/o/$1",
)
$HTTP["host"] =~ "^(c)(\w+)\.test$" {
  url.redirect = ( "^/(.*)" => "/h/%0|%1|%2|%{2}|%{toupper:2}|$1|%9" )
}
$HTTP["host"] =~ "^(z)\.test$" {
  url.redirect-code = 307
}
$HTTP["url"] =^ "/code/" {
  url.redirect-code = 302
}
"#;

#[test]
fn redirect_substitutions() {
    let s = Server::start(&conf("\"mod_redirect\"", REDIRECTS));
    let p = s.port;
    let cases: &[(&str, &[&str], String)] = &[
        // $0, $1..$9, ${10}.., a group that does not exist
        (
            "/d/abcdefghijkl",
            &[],
            "/o//d/abcdefghijkl|a|i|j|l|".into(),
        ),
        // unbraced: as matched; braced: escpsnde; esc/escape: everything but
        // unreserved (a % too); noesc: as matched; escnde: also '/'.
        (
            "/esc/a:b%20c/d%41",
            &[],
            "/o/a:b%20c/dA|a%3Ab%20c/dA|a%3Ab%2520c%2FdA|a%3Ab%2520c%2FdA|a:b%20c/dA|a:b%20c/dA|a%3Ab%20c%2FdA|a%3Ab%20c/dA"
                .into(),
        ),
        // %2F is decoded in the target rules match (url-path-2f-decode, lighttpd's default)
        ("/case/AbC%2f", &[], "/o/abc/|ABC/".into()),
        ("/b64/hello/aGk", &[], "/o/aGVsbG8|hi".into()),
        (
            "/url/p?q=1",
            &[],
            format!("http://127.0.0.1:{p}|127.0.0.1|{p}|/url/p|q=1"),
        ),
        ("/qsa/z?a=b", &[], "/o/z?x=1&a=b".into()),
        ("/qsa/z", &[], "/o/z?x=1".into()),
        ("/qsb/z?a=b", &[], "/o/z?a=b".into()),
        ("/lit/", &[], "/o/%|$|%a|$a|100%".into()),
        // %N of the block the list was defined in (block captures, up to 9)
        (
            "/x/y",
            &["-H", "Host: cAbc.test"],
            "/h/cabc.test|c|abc|abc|ABC|x/y|".into(),
        ),
        // the list is global: a matching =~ host block lends no captures
        ("/pct/", &["-H", "Host: z.test"], "/o/[]".into()),
    ];
    for (path, extra, want) in cases {
        let r = get(&s, path, extra);
        assert_eq!(location(&r), want, "{path} {extra:?}: {:?}", r.headers);
        assert!(matches!(r.status, 301 | 307), "{path}: {}", r.status);
    }
    // url.redirect-code from a block; 307 with a host block
    assert_eq!(get(&s, "/pct/", &["-H", "Host: z.test"]).status, 307);
    let r = get(&s, "/code/k", &[]);
    assert_eq!((r.status, location(&r)), (302, "/o/k"));
    // An empty target stops the list: no redirect, the next rule is not tried.
    let r = get(&s, "/stop", &[]);
    assert_eq!((r.status, r.header("location")), (404, None));
    // 301 for GET/HEAD and HTTP/1.0, 308 for other methods from HTTP/1.1.
    assert_eq!(get(&s, "/post", &[]).status, 301);
    assert_eq!(get(&s, "/post", &["-I"]).status, 301);
    assert_eq!(get(&s, "/post", &["-d", "x=1"]).status, 308);
    let r = raw(
        &s,
        "POST /post HTTP/1.0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, location(&r)), (301, "/o/post"));
    assert_eq!(
        r.header("content-length"),
        Some("0"),
        "a redirect has no body"
    );
}

// ---------------------------------------------------------------- mod_rewrite

const REWRITES: &str = r#"
url.rewrite-once = (
  "^/sub/(\w+)/(\w+)(\?.*)?$" => "/show/$2-$1-${url.path}${qsa}",
  "^/esc/(.*)$" => "/show/${esc:1}",
  "^/once/(.*)$" => "/b/$1",
  "^/b/(.*)$" => "/c/$1",
  "^/bad" => "bad-no-slash",
  "^/viacond/(.*)$" => "/cond/$1",
  "^/empty" => "",
  "^/empt(y)" => "/c/x",
)
url.rewrite-repeat = (
  "^/r1/(.*)$" => "/r2/$1",
  "^/r2/(.*)$" => "/r3/$1",
  "^/loop/(.*)$" => "/loop/$1",
)
url.rewrite-if-not-file = ( "^/nf/([^?]*)" => "/fallback.txt?was=$1" )
url.redirect = ( "^/show/(.*)$" => "/S/$1", "^/fallback\.txt\?(.*)$" => "/F/$1" )
$HTTP["url"] =^ "/cond/" {
  server.document-root = "@DIR@/other"
}
$HTTP["host"] =~ "^(\w+)\.rw$" {
  url.rewrite-once = ( "^/(.*)$" => "/show/%1/$1" )
}
$HTTP["host"] == "old.rw2" {
  url.rewrite = ( "^/(.*)$" => "/show/old-$1" )
}
$HTTP["host"] == "final.rw2" {
  url.rewrite-final = ( "^/(.*)$" => "/show/final-$1" )
}
$HTTP["host"] == "rnf.rw2" {
  url.rewrite-repeat-if-not-file = ( "^/ra/(.*)$" => "/rb/$1", "^/rb/(.*)$" => "/rc/$1" )
}
"#;

#[test]
fn rewrite_rules() {
    let s = Server::start_with(
        &conf("\"mod_rewrite\", \"mod_redirect\"", REWRITES),
        &[],
        |d| {
            put(d, "b/x", "b\n");
            put(d, "c/x", "c\n");
            put(d, "r3/x", "r3\n");
            put(d, "rb/x", "rb\n");
            put(d, "rc/y", "rc\n");
            put(d, "nf/real.txt", "real\n");
            put(d, "fallback.txt", "fb\n");
            std::fs::create_dir_all(d.join("other/cond")).expect("mkdir");
            std::fs::write(d.join("other/cond/x"), "other\n").expect("write");
        },
    );
    // The rewritten target, seen through a redirect that runs after mod_rewrite:
    // $N, ${url.path} (the target before the rewrite), ${qsa}.
    let r = get(&s, "/sub/ab/cd?q=1", &[]);
    assert_eq!(location(&r), "/S/cd-ab-/sub/ab/cd?q=1");
    let r = get(&s, "/esc/a:b", &[]);
    assert_eq!(location(&r), "/S/a%3Ab");
    // %N of the host block that defines the rules
    let r = get(&s, "/p", &["-H", "Host: www.rw"]);
    assert_eq!(location(&r), "/S/www/p");
    // url.rewrite and url.rewrite-final are url.rewrite-once
    assert_eq!(
        location(&get(&s, "/p", &["-H", "Host: old.rw2"])),
        "/S/old-p"
    );
    assert_eq!(
        location(&get(&s, "/p", &["-H", "Host: final.rw2"])),
        "/S/final-p"
    );
    // once: no further rewrite after a match (/b/x is not taken on to /c/x)
    assert_eq!(get(&s, "/once/x", &[]).text(), "b\n");
    // an empty target stops the list
    assert_eq!(get(&s, "/empty", &[]).status, 404);
    // repeat: rewritten again and again
    assert_eq!(get(&s, "/r1/x", &[]).text(), "r3\n");
    // endless repeat: 500 after lighttpd's 100 rounds
    assert_eq!(get(&s, "/loop/x", &[]).status, 500);
    // a result that is not a path: 500
    assert_eq!(get(&s, "/bad", &[]).status, 500);
    // the conditions are evaluated again on the rewritten URL
    assert_eq!(get(&s, "/viacond/x", &[]).text(), "other\n");
    // if-not-file: an existing file is served, a missing one rewritten
    assert_eq!(get(&s, "/nf/real.txt", &[]).text(), "real\n");
    let r = get(&s, "/nf/missing", &[]);
    assert_eq!(location(&r), "/F/was=missing");
    // repeat-if-not-file: /ra/x (missing) → /rb/x exists: served; /ra/y → /rb/y
    // (missing) → /rc/y
    let r = get(&s, "/ra/x", &["-H", "Host: rnf.rw2"]);
    assert_eq!(r.text(), "rb\n");
    let r = get(&s, "/ra/y", &["-H", "Host: rnf.rw2"]);
    assert_eq!(r.text(), "rc\n");
}

// ------------------------------------------------- PCRE-only regex features

const PCRE: &str = r#"
$HTTP["url"] =~ "^/(?!(dispatch\.map))" {
  url.rewrite-once = ( "^/(\w+)/\1/(.*?)(\.txt)?$" => "/twice/$2.txt" )
}
$HTTP["url"] =~ "^/go/(?=(\d+))" {
  url.redirect = ( "" => "/n/%1" )
}
$HTTP["url"] =~ "^/u/(.)" {
  url.redirect = ( "" => "/b/%{1}" )
}
$HTTP["url"] =~ "^/evil/(a*)*\1b" {
  url.redirect = ( "" => "/never" )
}
"#;

#[test]
fn pcre_look_ahead_and_back_reference() {
    let s = Server::start_with(&conf("\"mod_rewrite\", \"mod_redirect\"", PCRE), &[], |d| {
        put(d, "twice/f.txt", "twice\n");
        put(d, "dispatch.map", "map\n");
    });
    // back-reference and lazy group in the rule, inside a negative look-ahead block
    assert_eq!(get(&s, "/ab/ab/f.txt", &[]).text(), "twice\n");
    assert_eq!(get(&s, "/ab/ab/f", &[]).text(), "twice\n");
    assert_eq!(get(&s, "/ab/cd/f.txt", &[]).status, 404);
    // the look-ahead excludes this one: served as it is
    assert_eq!(get(&s, "/dispatch.map", &[]).text(), "map\n");
    // %1 captured inside a look-ahead of the condition
    assert_eq!(location(&get(&s, "/go/42x", &[])), "/n/42");
    // `.` is one byte, as in lighttpd: %1 is the first byte of "é"
    assert_eq!(location(&get(&s, "/u/%C3%A9", &[])), "/b/%C3");
    // catastrophic backtracking: cut at the limit, no match, logged once
    let evil = format!("/evil/{}", "a".repeat(40));
    assert_eq!(get(&s, &evil, &[]).status, 404);
    assert_eq!(get(&s, &evil, &[]).status, 404);
    let start = std::time::Instant::now();
    let mut log = s.error_log();
    while !log.contains("counted as no match") && start.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        log = s.error_log();
    }
    assert_eq!(log.matches("counted as no match").count(), 1, "{log}");
    assert!(!log.contains("PCRE feature"), "{log}");
}

// ---------------------------------------------------------------- mod_access

#[test]
fn access_rules() {
    let extra = r#"
url.access-deny = ( "~", ".inc" )
$HTTP["url"] =^ "/private/" { url.access-deny = ( "" ) }
$HTTP["url"] =^ "/only/" { url.access-allow = ( ".txt" ) }
$HTTP["url"] =^ "/lc/" { server.force-lowercase-filenames = "enable" }
index-file.names = ( "index.inc", "index.html" )
"#;
    let s = Server::start_with(&conf("\"mod_access\"", extra), &[], |d| {
        for f in [
            "a.txt",
            "a.txt~",
            "conf.inc",
            "private/p.txt",
            "only/ok.txt",
            "only/no.html",
            "lc/x.inc",
            "idx/index.inc",
            "ok/index.html",
        ] {
            put(d, f, "x\n");
        }
    });
    assert_eq!(s.get("/a.txt").status, 200);
    assert_eq!(s.get("/a.txt~").status, 403);
    assert_eq!(s.get("/conf.inc").status, 403);
    assert_eq!(s.get("/conf%2einc").status, 403, "decoded before matching");
    assert_eq!(s.get("/private/p.txt").status, 403, "\"\" denies all");
    assert_eq!(s.get("/only/ok.txt").status, 200);
    assert_eq!(s.get("/only/no.html").status, 403, "allow list");
    // Case matters, unless server.force-lowercase-filenames is set.
    assert_eq!(s.get("/conf.INC").status, 404);
    assert_eq!(s.get("/lc/X.INC").status, 403);
    // checked again on the index file a directory would serve
    assert_eq!(s.get("/idx/").status, 403);
    assert_eq!(s.get("/ok/").status, 200);
}

// ---------------------------------------------------------------- mod_alias

#[test]
fn alias_maps() {
    let extra = r#"
alias.url = (
  "/static/css/" => "@DIR@/css/",
  "/static/" => "@DIR@/assets/",
  "/one" => "@DIR@/single.txt",
  "/icons" => "@DIR@/icons/",
)
"#;
    let s = Server::start_with(&conf("\"mod_alias\"", extra), &[], |d| {
        std::fs::create_dir_all(d.join("css")).expect("mkdir");
        std::fs::create_dir_all(d.join("assets")).expect("mkdir");
        std::fs::create_dir_all(d.join("icons")).expect("mkdir");
        std::fs::write(d.join("css/site.css"), "css\n").expect("w");
        std::fs::write(d.join("assets/app.txt"), "asset\n").expect("w");
        std::fs::write(d.join("single.txt"), "single\n").expect("w");
        std::fs::write(d.join("icons/i.txt"), "icon\n").expect("w");
        std::fs::write(d.join("secret.txt"), "secret\n").expect("w");
        put(d, "static/app.txt", "docroot\n");
    });
    let r = s.get("/static/app.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "asset\n"));
    // the longest prefix wins
    assert_eq!(s.get("/static/css/site.css").text(), "css\n");
    assert_eq!(
        s.get("/static/css/site.css").header("content-type"),
        Some("text/css")
    );
    // an alias to a file
    assert_eq!(s.get("/one").text(), "single\n");
    assert_eq!(s.get("/icons/i.txt").text(), "icon\n");
    // key without '/', target with: "/icons.." is refused (lighttpd's traversal check)
    assert_eq!(s.get("/icons../secret.txt").status, 403);
    assert_eq!(s.get("/static/nothing").status, 404);
    // the document root still serves the rest
    assert_eq!(s.get("/static").status, 301);
}

#[test]
fn alias_order_is_checked_at_start() {
    let dir = common::TempDir::new();
    let f = dir.path().join("bad.conf");
    std::fs::write(
        &f,
        format!(
            "server.document-root = \"{}\"\nserver.modules = (\"mod_alias\")\nalias.url = ( \"/a/\" => \"/tmp/\", \"/a/b/\" => \"/tmp/\" )\n",
            dir.path().display()
        ),
    )
    .expect("write");
    let out = Command::new(common::wickd_bin())
        .args(["-t", "-f"])
        .arg(&f)
        .output()
        .expect("run wickd -t");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(
        err.contains("alias.url: `/a/b/' will never match as `/a/' matched first"),
        "{err}"
    );
    assert!(err.contains("bad.conf:3"), "names file:line: {err}");
}

// ---------------------------------------------------------------- mod_setenv

#[test]
fn setenv_response_headers() {
    let extra = r#"
setenv.add-response-header = ( "X-A" => "1", "X-Frame-Options" => "DENY" )
setenv.set-response-header = ( "Server" => "replaced", "Content-Type" => "" )
$HTTP["url"] =^ "/two/" {
  setenv.add-response-header = ( "X-A" => "2" )
}
"#;
    let s = Server::start_with(&conf("\"mod_setenv\"", extra), &[], |d| {
        put(d, "a.txt", "a\n");
        put(d, "two/b.txt", "b\n");
    });
    let r = raw(
        &s,
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-a"), Some("1"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("server"), Some("replaced"), "set replaces");
    assert_eq!(r.header("content-type"), None, "set with \"\" removes");
    assert_eq!(r.text(), "a\n", "the body is intact");
    // error responses too
    let r = raw(
        &s,
        "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.header("x-a")), (404, Some("1")));
    // a block's list replaces the global one
    let r = raw(
        &s,
        "GET /two/b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.header("x-a"), Some("2"));
    assert_eq!(r.header("x-frame-options"), None);
    // add: another line even when the name is there
    let extra = "setenv.add-response-header = ( \"X-Dup\" => \"1\" )\n$HTTP[\"url\"] =~ \"\" { setenv.set-response-header = ( \"X-Dup\" => \"0\" ) }\nsetenv.add-response-header += ( \"Vary\" => \"a\" )\n";
    let s2 = Server::start_with(&conf("\"mod_setenv\"", extra), &[], |d| {
        put(d, "a.txt", "a\n");
    });
    let r = raw(
        &s2,
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let dups: Vec<_> = r.headers.iter().filter(|(k, _)| k == "x-dup").collect();
    assert_eq!(dups.len(), 1, "add then set leaves one line: {dups:?}");
    assert_eq!(dups[0].1, "0");
    assert_eq!(r.header("vary"), Some("a"));
}

// ---------------------------------------------------------------- mod_expire

#[test]
fn expire_headers() {
    let extra = r#"
expire.url = ( "/img/" => "access plus 1 hours", "/mod/" => "modification plus 1 hours" )
expire.mimetypes = ( "text/css" => "access plus 2 days 1 minute", "" => "access plus 10 seconds" )
"#;
    let s = Server::start_with(&conf("\"mod_expire\"", extra), &[], |d| {
        put(d, "img/a.txt", "i\n");
        put(d, "s.css", "c\n");
        put(d, "other.html", "o\n");
        put(d, "mod/m.txt", "m\n");
        let f = std::fs::File::options()
            .write(true)
            .open(d.join("www/mod/m.txt"))
            .expect("open");
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(1800);
        f.set_modified(t).expect("mtime");
    });
    let age = |r: &Response| -> i64 {
        r.header("cache-control")
            .and_then(|v| v.strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    let r = s.get("/img/a.txt");
    assert_eq!(age(&r), 3600);
    assert_eq!(r.header("expires"), None, "HTTP/1.1: Cache-Control only");
    assert_eq!(age(&s.get("/s.css")), 2 * 86400 + 60);
    assert_eq!(age(&s.get("/other.html")), 10, "the \"\" fallback");
    let m = age(&s.get("/mod/m.txt"));
    assert!((1795..=1805).contains(&m), "modification: {m}");
    // not on errors, not on other methods
    assert_eq!(s.get("/img/none").header("cache-control"), None);
    assert_eq!(
        get(&s, "/img/a.txt", &["-X", "POST", "-d", "x"]).header("cache-control"),
        None
    );
    // HTTP/1.0: Expires, a date an hour from now
    let r = raw(&s, "GET /img/a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(r.header("cache-control"), None);
    let exp = r.header("expires").expect("Expires");
    let date = r.header("date").expect("Date");
    let now = wick_proto::log::now_unix();
    let secs = |d: &str| wick_worker::date::parse_http_date(d.as_bytes(), now).expect("date");
    let diff = secs(exp) - secs(date);
    assert!((3599..=3601).contains(&diff), "{exp} vs {date}");
}

// ---------------------------------------------------------------- mod_extforward

const EXTFORWARD: &str = r#"
extforward.forwarder = ( "127.0.0.1" => "trust", "10.0.0.0/8" => "trust", "192.0.2.7" => "untrusted" )
url.redirect = ( "who$" => "/ip/none" )
$HTTP["remoteip"] == "1.2.3.4" { url.redirect = ( "who$" => "/ip/1.2.3.4" ) }
$HTTP["remoteip"] == "5.6.7.8" { url.redirect = ( "who$" => "/ip/5.6.7.8" ) }
$HTTP["remoteip"] == "192.0.2.7" { url.redirect = ( "who$" => "/ip/192.0.2.7" ) }
$HTTP["remoteip"] == "2001:db8::1" { url.redirect = ( "who$" => "/ip/v6" ) }
$HTTP["remoteip"] == "127.0.0.1" { url.redirect = ( "who$" => "/ip/peer" ) }
$HTTP["scheme"] == "https" { url.redirect = ( "who$" => "/scheme/https" ) }
$HTTP["url"] =^ "/fwd/" {
  extforward.headers = ( "Forwarded" )
  extforward.params = ( "host" => 1 )
  url.redirect = ( "^/fwd/(.*)" => "/F/${url.scheme}/${url.authority}/$1" )
}
$HTTP["url"] =^ "/real/" {
  extforward.headers = ( "X-Real-IP" )
}
$HTTP["url"] =^ "/nope/" {
  extforward.forwarder = ( "10.0.0.1" => "trust" )
}
"#;

#[test]
fn extforward_trusted_values() {
    let s = Server::start(&conf("\"mod_extforward\", \"mod_redirect\"", EXTFORWARD));
    let who = |path: &str, h: &[&str]| -> String {
        let mut a = Vec::new();
        for x in h {
            a.push("-H");
            a.push(*x);
        }
        location(&get(&s, path, &a)).to_string()
    };
    assert_eq!(who("/who", &[]), "/ip/peer");
    assert_eq!(who("/who", &["X-Forwarded-For: 1.2.3.4"]), "/ip/1.2.3.4");
    // from the end, over trusted proxies (10.0.0.0/8 and the peer)
    assert_eq!(
        who("/who", &["X-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.1.2.3"]),
        "/ip/5.6.7.8"
    );
    // an address listed as untrusted stops the walk
    assert_eq!(
        who("/who", &["X-Forwarded-For: 1.2.3.4, 192.0.2.7"]),
        "/ip/192.0.2.7"
    );
    // the default headers include Forwarded-For
    assert_eq!(who("/who", &["Forwarded-For: 1.2.3.4"]), "/ip/1.2.3.4");
    // X-Forwarded-Proto sets the scheme (conditions follow)
    assert_eq!(
        who(
            "/who",
            &["X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https"]
        ),
        "/scheme/https"
    );
    // a peer that is not a trusted proxy: headers ignored
    assert_eq!(who("/nope/who", &["X-Forwarded-For: 1.2.3.4"]), "/ip/peer");
    // extforward.headers: X-Real-IP
    assert_eq!(who("/real/who", &["X-Real-IP: 1.2.3.4"]), "/ip/1.2.3.4");
    assert_eq!(
        who("/real/who", &["X-Forwarded-For: 1.2.3.4"]),
        "/ip/peer",
        "only the listed header"
    );
    // Forwarded (RFC 7239) with proto and host (extforward.params host)
    assert_eq!(
        who(
            "/fwd/x",
            &["Forwarded: for=9.9.9.9;proto=https;host=Real.Example, for=10.0.0.5"]
        ),
        "/F/https/real.example/x"
    );
    assert_eq!(
        who("/fwd/x", &["Forwarded: for=\"[2001:db8::1]:443\""]),
        "/F/http/127.0.0.1:".to_string() + &s.port.to_string() + "/x"
    );
    let r = get(&s, "/fwd/x", &["-H", "Forwarded: for=\"1.2.3.4"]);
    assert_eq!(r.status, 400, "unterminated quoted-string");
}

#[test]
fn extforward_all_and_ipv6_condition() {
    let extra = r#"
extforward.forwarder = ( "all" => "trust" )
extforward.headers = ( "Forwarded" )
url.redirect = ( "who$" => "/ip/other" )
$HTTP["remoteip"] == "2001:db8::/32" { url.redirect = ( "who$" => "/ip/v6net" ) }
"#;
    let s = Server::start(&conf("\"mod_extforward\", \"mod_redirect\"", extra));
    let r = get(&s, "/who", &["-H", "Forwarded: for=\"[2001:db8::1]\""]);
    assert_eq!(location(&r), "/ip/v6net");
}

// ---------------------------------------------------------------- module loading

#[test]
fn compat_module_loading() {
    let prep = |d: &Path| {
        put(d, "index.html", "<p>i</p>\n");
        put(d, "a.txt", "a\n");
    };
    // No index-file.names: mod_indexfile is not loaded, a directory is 403.
    let s = Server::start_with(&conf("", ""), &[], prep);
    assert_eq!(s.get("/").status, 403);
    assert_eq!(s.get("/a.txt").status, 200);
    drop(s);
    // With it, mod_indexfile is prepended.
    let s = Server::start_with(
        &conf("", "index-file.names = ( \"index.html\" )"),
        &[],
        prep,
    );
    assert_eq!(s.get("/").text(), "<p>i</p>\n");
    drop(s);
    // server.compat-module-load = "disable": no mod_staticfile, nothing serves files.
    let s = Server::start_with(
        &conf(
            "\"mod_indexfile\"",
            "server.compat-module-load = \"disable\"\nindex-file.names = ( \"index.html\" )",
        ),
        &[],
        prep,
    );
    assert_eq!(s.get("/a.txt").status, 403);
    drop(s);
    let s = Server::start_with(
        &conf(
            "\"mod_indexfile\", \"mod_staticfile\"",
            "server.compat-module-load = \"disable\"\nindex-file.names = ( \"index.html\" )",
        ),
        &[],
        prep,
    );
    assert_eq!(s.get("/a.txt").status, 200);
}

#[test]
fn hooks_run_in_module_order() {
    let extra = r#"
setenv.add-response-header = ( "Cache-Control" => "private" )
expire.url = ( "/" => "access plus 1 minutes" )
"#;
    let prep = |d: &Path| put(d, "a.txt", "a\n");
    let lines = |s: &Server| -> Vec<String> {
        let r = raw(
            s,
            "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        r.headers
            .iter()
            .filter(|(k, _)| k == "cache-control")
            .map(|(_, v)| v.clone())
            .collect()
    };
    // setenv first: expire sees a Cache-Control and leaves it alone
    let s = Server::start_with(&conf("\"mod_setenv\", \"mod_expire\"", extra), &[], prep);
    assert_eq!(lines(&s), ["private"]);
    drop(s);
    // expire first: both
    let s = Server::start_with(&conf("\"mod_expire\", \"mod_setenv\"", extra), &[], prep);
    assert_eq!(lines(&s), ["max-age=60", "private"]);
}

#[test]
fn bad_module_settings_fail_at_start() {
    for (extra, want) in [
        (
            "server.modules = (\"mod_rewrite\")\nurl.rewrite-once = ( \"^/(a\" => \"/b\" )",
            "url.rewrite-once",
        ),
        (
            "server.modules = (\"mod_redirect\")\nurl.redirect = ( \"^/(?|(a)|(b))\" => \"/b\" )",
            "branch reset",
        ),
        (
            "server.modules = (\"mod_expire\")\nexpire.url = ( \"/\" => \"access plus 1 fortnight\" )",
            "invalid expire.url",
        ),
        (
            "server.modules = (\"mod_extforward\")\nextforward.params = ( \"proto\" => 1 )",
            "extforward.params keys must be one of",
        ),
    ] {
        let dir = common::TempDir::new();
        let f = dir.path().join("bad.conf");
        std::fs::write(
            &f,
            format!(
                "server.document-root = \"{}\"\n{extra}\n",
                dir.path().display()
            ),
        )
        .expect("write");
        let out = Command::new(common::wickd_bin())
            .args(["-t", "-f"])
            .arg(&f)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}: accepted");
        assert!(err.contains(want), "{extra}: {err}");
    }
}

// ------------------------------------------- what later stages see (access log)

fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = t.lines().map(str::to_string).collect();
        if lines.len() >= n || start.elapsed() > std::time::Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn setenv_request_headers_and_environment() {
    let extra = r#"
accesslog.filename = "@DIR@/access.log"
accesslog.format = "%{X-Added}i|%{X-Set}i|%{X-Gone}i|%{VAR}e|%{VAR2}e"
setenv.add-request-header = ( "X-Added" => "two" )
setenv.set-request-header = ( "X-Set" => "new", "X-Gone" => "" )
setenv.add-environment = ( "VAR" => "a" )
setenv.set-environment = ( "VAR2" => "b" )
"#;
    let s = Server::start_with(
        &conf("\"mod_setenv\", \"mod_accesslog\"", extra),
        &[],
        |d| put(d, "a.txt", "a\n"),
    );
    let r = raw(
        &s,
        "GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Added: one\r\nX-Set: old\r\nX-Gone: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let lines = wait_lines(&s.dir.path().join("access.log"), 1);
    assert_eq!(lines, ["one, two|new|-|a|b"]);
}

#[test]
fn extforward_address_and_user_reach_the_log() {
    let extra = r#"
accesslog.filename = "@DIR@/access.log"
accesslog.format = "%h|%{REMOTE_USER}e"
extforward.forwarder = ( "127.0.0.1" => "trust" )
extforward.headers = ( "Forwarded" )
extforward.params = ( "remote_user" => 1 )
"#;
    let s = Server::start_with(
        &conf("\"mod_extforward\", \"mod_accesslog\"", extra),
        &[],
        |d| put(d, "a.txt", "a\n"),
    );
    let r = get(
        &s,
        "/a.txt",
        &["-H", "Forwarded: for=1.2.3.4;remote_user=\"bob\""],
    );
    assert_eq!(r.status, 200);
    let lines = wait_lines(&s.dir.path().join("access.log"), 1);
    assert_eq!(lines, ["1.2.3.4|bob"]);
}
