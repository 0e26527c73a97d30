//! The file-system modules through the real server: mod_dirlisting (every option,
//! hostile file names, ?json, the cache, a large directory), mod_simple_vhost and
//! mod_evhost (and their confinement), mod_userdir (basepath forms, include/exclude,
//! redirect), mod_accesslog (a known request field by field, every directive,
//! escaping, per-block files, piped loggers restarted when they die, nothing lost at
//! shutdown, SIGHUP reopen).

mod common;

use common::{curl, parse_response, Response, Server};
use std::path::Path;
use std::time::{Duration, Instant};

fn conf(modules: &str, extra: &str) -> String {
    format!(
        r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.tag = "wick-test"
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain" )
server.modules = ( {modules} )
{extra}
"#
    )
}

fn put(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, body).expect("write");
}

fn get(s: &Server, path: &str, extra: &[&str]) -> Response {
    curl(&s.url(path), extra)
}

fn host(s: &Server, host: &str, path: &str) -> Response {
    get(s, path, &["-H", &format!("Host: {host}")])
}

/// Poll a file until `pred` holds on its text (the log is flushed once a second).
fn wait_file(p: &Path, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let t = std::fs::read_to_string(p).unwrap_or_default();
        if pred(&t) || start.elapsed() > Duration::from_secs(10) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------ mod_dirlisting

#[test]
fn dirlisting_hostile_names_are_escaped() {
    let s = Server::start_with(&conf("", "dir-listing.activate = \"enable\""), &[], |d| {
        let w = d.join("www");
        for n in [
            "<script>alert(1)",
            "q\"uote'd",
            "new\nline",
            "amp&lt;.txt",
            "spa ce%20.txt",
        ] {
            std::fs::write(w.join(n), "x").expect("write");
        }
        std::fs::create_dir(w.join("<b>dir")).expect("mkdir");
    });
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html"));
    let t = r.text();
    for raw in ["<script>alert", "q\"uote", "new\nline", "<b>dir", "amp&lt;"] {
        assert!(!t.contains(raw), "raw name {raw:?} in page:\n{t}");
    }
    for escaped in [
        "href=\"%3Cscript%3Ealert(1)\">&#x3C;script&#x3E;alert(1)</a>",
        "href=\"q%22uote%27d\">q&#x22;uote&#x27;d</a>",
        "href=\"new%0Aline\">new&#x0A;line</a>",
        "href=\"amp%26lt%3B.txt\">amp&#x26;lt;.txt</a>",
        "href=\"spa%20ce%2520.txt\">spa ce%20.txt</a>",
        "<tr class=\"d\"><td class=\"n\"><a href=\"%3Cb%3Edir/\">&#x3C;b&#x3E;dir</a>/</td>",
    ] {
        assert!(t.contains(escaped), "missing {escaped:?} in page:\n{t}");
    }
    // The links lead to the files.
    assert_eq!(s.get("/%3Cscript%3Ealert(1)").status, 200);
    assert_eq!(
        s.get("/new%0Aline").status,
        400,
        "control bytes in paths are refused"
    );
    // Sub-directory: title, parent link, escaped.
    let t = s.get("/%3Cb%3Edir/").text();
    assert!(
        t.contains("<title>Index of /&#x3C;b&#x3E;dir/</title>"),
        "{t}"
    );
    assert!(t.contains("<a href=\"../\">..</a>/"), "{t}");
}

#[test]
fn dirlisting_off_by_default_and_in_blocks() {
    let s = Server::start_with(
        &conf(
            "",
            r#"
$HTTP["url"] =^ "/pub/" { dir-listing.activate = "enable" }
$HTTP["url"] =^ "/old/" { server.dir-listing = "enable" }
$HTTP["url"] =^ "/old/no/" { dir-listing.activate = "disable" }
index-file.names = ( "index.html" )
"#,
        ),
        &[],
        |d| {
            put(d, "www/priv/f.txt", "x");
            put(d, "www/pub/f.txt", "x");
            put(d, "www/pub/idx/index.html", "INDEX");
            put(d, "www/old/f.txt", "x");
            put(d, "www/old/no/f.txt", "x");
        },
    );
    assert_eq!(s.get("/priv/").status, 403);
    assert!(s.get("/pub/").text().contains(">f.txt</a>"));
    assert!(
        s.get("/old/").text().contains(">f.txt</a>"),
        "server.dir-listing"
    );
    assert_eq!(s.get("/old/no/").status, 403, "a later block turns it off");
    assert_eq!(s.get("/pub/idx/").text(), "INDEX", "an index file wins");
    // HEAD: same head, no body; POST: not a listing.
    let h = get(&s, "/pub/", &["-I"]);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    let len: usize = h
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(len, s.get("/pub/").body.len());
    assert_ne!(get(&s, "/pub/", &["-X", "POST", "-d", "x"]).status, 200);
}

#[test]
fn dirlisting_options() {
    let s = Server::start_with(
        &conf(
            "",
            r#"
dir-listing.activate = "enable"
$HTTP["url"] =^ "/a/" {
  dir-listing.hide-dotfiles = "disable"
  dir-listing.exclude = ( "\.bak$", "^tmp" )
  dir-listing.show-readme = "enable"
  dir-listing.show-header = "enable"
  dir-listing.external-css = "/style.css"
  dir-listing.external-js = "/sort.js"
  dir-listing.encoding = "utf-8"
  dir-listing.set-footer = "<i>Footer</i>"
}
$HTTP["url"] =^ "/b/" {
  dir-listing.show-readme = "notes.txt"
  dir-listing.hide-readme-file = "enable"
  dir-listing.show-header = "top.txt"
  dir-listing.hide-header-file = "enable"
  dir-listing.encode-readme = "disable"
  dir-listing.encode-header = "disable"
  dir-listing.auto-layout = "disable"
}
$HTTP["url"] =^ "/c/" { dir-listing.sort = "disable" }
$HTTP["url"] =^ "/d/" { dir-listing.show-readme = "@DIR@/notes/about.txt" }
"#,
        ),
        &[],
        |d| {
            for f in [
                ".dot",
                "keep.txt",
                "x.bak",
                "tmpfile",
                "README.txt",
                "HEADER.txt",
            ] {
                put(d, &format!("www/a/{f}"), "<readme & header>");
            }
            put(d, "www/b/notes.txt", "<b>NOTES</b>");
            put(d, "www/b/top.txt", "<i>TOP</i>");
            put(d, "www/b/other.txt", "x");
            put(d, "www/b/.dot", "x");
            for f in ["m.txt", "a.txt", "z.txt", "b.txt"] {
                put(d, &format!("www/c/{f}"), "x");
            }
            put(d, "www/d/f.txt", "x");
            // Outside every root: the sandbox opens it for this key.
            put(d, "notes/about.txt", "ABOUT");
        },
    );
    let a = s.get("/a/");
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let t = a.text();
    assert!(t.contains("<meta charset=\"utf-8\">"), "{t}");
    assert!(t.contains(">.dot</a>"), "hide-dotfiles disabled: {t}");
    assert!(t.contains(">keep.txt</a>"));
    assert!(
        !t.contains("x.bak") && !t.contains("tmpfile"),
        "excluded: {t}"
    );
    assert!(
        t.contains(">README.txt</a>") && t.contains(">HEADER.txt</a>"),
        "not hidden"
    );
    assert!(
        t.contains("<pre class=\"readme\">&#x3C;readme &#x26; header&#x3E;</pre>"),
        "{t}"
    );
    assert!(
        t.contains("<pre class=\"header\">&#x3C;readme &#x26; header&#x3E;</pre>"),
        "{t}"
    );
    let (hdr, h2, rd) = (
        t.find("<pre class=\"header\">").unwrap_or(usize::MAX),
        t.find("<h2>").unwrap_or(0),
        t.find("<pre class=\"readme\">").unwrap_or(0),
    );
    assert!(hdr < h2 && h2 < rd, "header above, readme below the table");
    assert!(
        t.contains("<link rel=\"stylesheet\" type=\"text/css\" href=\"/style.css\">"),
        "{t}"
    );
    assert!(!t.contains("<style>"), "{t}");
    assert!(
        t.contains("<script type=\"text/javascript\" src=\"/sort.js\"></script>"),
        "{t}"
    );
    assert!(t.contains("<div class=\"foot\"><i>Footer</i></div>"), "{t}");

    let t = s.get("/b/").text();
    assert!(
        t.contains("<b>NOTES</b>") && t.contains("<i>TOP</i>"),
        "not encoded: {t}"
    );
    assert!(
        !t.contains(">notes.txt</a>") && !t.contains(">top.txt</a>"),
        "hidden: {t}"
    );
    assert!(!t.contains(">.dot</a>"), "dot files hidden by default");
    assert!(
        t.starts_with("<i>TOP</i><h2>Index of /b/</h2>"),
        "no layout: {t}"
    );
    assert!(
        !t.contains("<html>") && !t.contains("<script") && !t.contains("foot"),
        "{t}"
    );

    // Sorted by name on the server (default); with sort disabled the page sorts
    // itself on the client.
    assert!(s.get("/").text().contains("})(true);"));
    let t = s.get("/c/").text();
    assert!(t.contains("})(false);"), "{t}");
    let names: Vec<usize> = ["a.txt", "b.txt", "m.txt", "z.txt"]
        .iter()
        .map(|n| t.find(&format!(">{n}</a>")).expect("listed"))
        .collect();
    assert_eq!(names.len(), 4);
    let t = s.get("/d/").text();
    assert!(
        t.contains("<pre class=\"readme\">ABOUT</pre>"),
        "absolute readme: {t}"
    );
    let dflt = s.get("/").text();
    assert!(
        dflt.contains("<div class=\"foot\">wick-test</div>"),
        "server.tag as footer"
    );
    let order: Vec<usize> = ["a/", "b/", "c/"]
        .iter()
        .map(|n| dflt.find(&format!("href=\"{n}\"")).expect("listed"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "sorted: {dflt}");
}

#[test]
fn dirlisting_json_cache_and_many_files() {
    let s = Server::start_with(
        &conf(
            "",
            r#"
dir-listing.activate = "enable"
$HTTP["url"] =^ "/cached/" { dir-listing.cache = ( "max-age" => 60 ) }
"#,
        ),
        &[],
        |d| {
            put(d, "www/j/f\"1.txt", "12345");
            std::fs::create_dir_all(d.join("www/j/sub")).expect("mkdir");
            put(d, "www/cached/one.txt", "1");
            for i in 0..3000 {
                put(d, &format!("www/many/file-{i:05}.txt"), "x");
            }
        },
    );
    let r = s.get("/j/?json");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let t = r.text();
    assert!(t.starts_with("[{\"name\":\"sub\",\"type\":\"dir\""), "{t}");
    assert!(
        t.contains("{\"name\":\"f\\\"1.txt\",\"type\":\"file\",\"size\":5,\"mtime\":"),
        "{t}"
    );

    assert!(s.get("/cached/").text().contains(">one.txt</a>"));
    put(s.dir.path(), "www/cached/two.txt", "2");
    assert!(
        !s.get("/cached/").text().contains("two.txt"),
        "cached listing"
    );
    assert!(
        s.get("/j/").text().contains(">f&#x22;1.txt</a>"),
        "no cache elsewhere"
    );

    let t = s.get("/many/").text();
    assert_eq!(t.matches("<tr><td class=\"n\">").count(), 3000);
    let first = t.find("file-00000.txt").expect("first");
    let last = t.find("file-02999.txt").expect("last");
    assert!(first < last);
}

#[test]
fn dirlisting_large_directory_does_not_hold_up_others() {
    use std::io::{Read, Write};
    let s = Server::start_with(
        &conf(
            "\"mod_accesslog\", \"mod_setenv\"",
            "dir-listing.activate = \"enable\"\naccesslog.filename = \"@DIR@/access.log\"\naccesslog.format = \"%s %b %U\"\nsetenv.add-response-header = ( \"X-Listing\" => \"yes\" )",
        ),
        &[],
        |d| {
            put(d, "www/small.txt", "SMALL");
            let big = d.join("www/big");
            std::fs::create_dir_all(&big).expect("mkdir");
            for i in 0..40_000 {
                std::fs::File::create(big.join(format!("entry-{i:06}"))).expect("create");
            }
        },
    );
    // The listing is built over many event-loop turns: a request that arrives
    // meanwhile on another connection is answered before the listing's first byte.
    let mut a = s.connect();
    // A request pipelined behind the listing is answered after it, in order.
    a.write_all(b"GET /big/ HTTP/1.1\r\nHost: x\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let reader = std::thread::spawn(move || {
        let mut first = [0u8; 1];
        a.read_exact(&mut first).expect("first byte");
        let at = Instant::now();
        let mut rest = Vec::new();
        let _ = a.read_to_end(&mut rest);
        (at, rest)
    });
    let r =
        parse_response(&s.raw(b"GET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    let small_done = Instant::now();
    assert_eq!(r.text(), "SMALL");
    let (first_byte, rest) = reader.join().expect("reader");
    assert!(
        small_done < first_byte,
        "the small file waited for the listing"
    );
    let page = String::from_utf8_lossy(&rest);
    assert_eq!(page.matches("<tr><td class=\"n\">").count(), 40_000);
    assert!(page.find("entry-000000").expect("first") < page.find("entry-039999").expect("last"));
    let second = page
        .find("HTTP/1.1 200 OK")
        .expect("the pipelined response");
    assert!(page.ends_with("SMALL"), "pipelined response last");
    let listing = parse_response(&[b"H", &rest[..second]].concat());
    // Response headers of the modules apply to it as to any response.
    assert_eq!(listing.header("x-listing"), Some("yes"));
    assert_eq!(listing.header("content-type"), Some("text/html"));
    // Its access log line is written when it is complete, with its real size.
    let log = wait_file(&s.dir.path().join("access.log"), |t| t.lines().count() >= 3);
    let want = format!("200 {} /big/", listing.body.len());
    assert!(log.lines().any(|l| l == want), "{want:?} in {log}");
    assert!(log.lines().any(|l| l == "200 5 /small.txt"), "{log}");
}

// ----------------------------------------------------------- virtual hosts

#[test]
fn simple_vhost_and_confinement() {
    let s = Server::start_with(
        &conf(
            "\"mod_simple_vhost\", \"mod_accesslog\"",
            r#"
simple-vhost.server-root = "@DIR@/vhosts/"
simple-vhost.document-root = "htdocs"
simple-vhost.default-host = "default.test"
accesslog.filename = "@DIR@/access.log"
accesslog.format = "%V %v %s"
"#,
        ),
        &[],
        |d| {
            put(d, "www/f.txt", "GLOBAL");
            put(d, "vhosts/a.test/htdocs/f.txt", "A");
            put(d, "vhosts/default.test/htdocs/f.txt", "DEFAULT");
            // Inside a root the sandbox opens (the document root): only the vhost
            // confinement keeps a symlink in the server root from leading there.
            put(d, "www/secret/htdocs/f.txt", "SECRET");
            std::os::unix::fs::symlink(d.join("www/secret"), d.join("vhosts/evil.test"))
                .expect("symlink");
            std::os::unix::fs::symlink("a.test", d.join("vhosts/alias.test")).expect("symlink");
        },
    );
    assert_eq!(host(&s, "a.test", "/f.txt").text(), "A");
    assert_eq!(
        host(&s, "A.Test:8080", "/f.txt").text(),
        "A",
        "case and port"
    );
    assert_eq!(
        host(&s, "alias.test", "/f.txt").text(),
        "A",
        "symlink inside"
    );
    assert_eq!(host(&s, "other.test", "/f.txt").text(), "DEFAULT");
    assert_eq!(
        host(&s, "evil.test", "/f.txt").text(),
        "DEFAULT",
        "symlink out refused"
    );
    for bad in ["../../etc", "..", "a.test/../../secret", ".hidden"] {
        let r = host(&s, bad, "/f.txt");
        assert!(
            r.status == 400 || r.text() == "DEFAULT",
            "Host {bad:?}: {} {}",
            r.status,
            r.text()
        );
    }
    let r = parse_response(&s.raw(b"GET /f.txt HTTP/1.0\r\n\r\n"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "DEFAULT", "no Host: the default host");
    // The host served is the server name (%v), as in lighttpd.
    let log = wait_file(&s.dir.path().join("access.log"), |t| t.lines().count() >= 6);
    assert!(log.contains("a.test:8080 a.test 200\n"), "{log}");
    assert!(log.contains("other.test default.test 200\n"), "{log}");
}

#[test]
fn simple_vhost_falls_back_to_document_root() {
    let s = Server::start_with(
        &conf(
            "\"mod_simple_vhost\"",
            r#"
simple-vhost.server-root = "@DIR@/vhosts"
$HTTP["host"] == "plain.test" { simple-vhost.server-root = "" }
"#,
        ),
        &[],
        |d| {
            put(d, "www/f.txt", "GLOBAL");
            put(d, "vhosts/b.test/f.txt", "B");
            put(d, "vhosts/plain.test/f.txt", "PLAIN");
        },
    );
    assert_eq!(host(&s, "b.test", "/f.txt").text(), "B");
    assert_eq!(host(&s, "nope.test", "/f.txt").text(), "GLOBAL");
    assert_eq!(
        host(&s, "plain.test", "/f.txt").text(),
        "GLOBAL",
        "server-root unset"
    );
}

#[test]
fn evhost_patterns_and_confinement() {
    let s = Server::start_with(
        &conf(
            "\"mod_evhost\"",
            r#"
evhost.path-pattern = "@DIR@/sites/%0/%3/"
$HTTP["host"] =~ "\.org$" { evhost.path-pattern = "@DIR@/org/%{2.1}/%2-%1/%_/" }
"#,
        ),
        &[],
        |d| {
            put(d, "www/f.txt", "GLOBAL");
            put(d, "sites/example.com/www/f.txt", "WWW");
            put(d, "sites/example.com/blog/f.txt", "BLOG");
            put(d, "org/e/example-org/www.example.org/f.txt", "ORG");
            put(d, "www/outside/www/f.txt", "OUT");
            std::os::unix::fs::symlink(d.join("www/outside"), d.join("sites/evil.com"))
                .expect("symlink");
        },
    );
    assert_eq!(host(&s, "www.example.com", "/f.txt").text(), "WWW");
    assert_eq!(host(&s, "blog.example.com:81", "/f.txt").text(), "BLOG");
    assert_eq!(host(&s, "www.example.org", "/f.txt").text(), "ORG");
    assert_eq!(host(&s, "nope.example.com", "/f.txt").text(), "GLOBAL");
    assert_eq!(
        host(&s, "www.evil.com", "/f.txt").text(),
        "GLOBAL",
        "symlink out refused"
    );
    assert_eq!(host(&s, "../../etc", "/f.txt").status, 400);
}

#[test]
fn evhost_bad_pattern_stops_start_up() {
    let dir = common::TempDir::new();
    let conf_path = dir.path().join("bad.conf");
    let text = common::render(
        &conf("\"mod_evhost\"", "evhost.path-pattern = \"/srv/%x/\""),
        common::free_port(),
        dir.path(),
    );
    std::fs::create_dir_all(dir.path().join("www")).expect("mkdir");
    std::fs::write(&conf_path, text).expect("write");
    let out = std::process::Command::new(common::wickd_bin())
        .args(["-D", "-f"])
        .arg(&conf_path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid evhost.path-pattern: /srv/%x/"),
        "{err}"
    );
}

// ------------------------------------------------------------- mod_userdir

#[test]
fn userdir_basepath_forms() {
    let s = Server::start_with(
        &conf(
            "\"mod_userdir\"",
            r#"
userdir.path = "public_html"
userdir.basepath = "@DIR@/users/"
userdir.exclude-user = ( "bob" )
$HTTP["host"] == "letters.test" { userdir.letterhomes = "enable" }
$HTTP["host"] == "only.test" { userdir.include-user = ( "carol" ) }
$HTTP["host"] == "off.test" { userdir.active = "disable" }
"#,
        ),
        &[],
        |d| {
            put(d, "users/alice/public_html/index.html", "ALICE");
            put(d, "users/alice/public_html/sub/f.txt", "ALICE-F");
            put(d, "users/bob/public_html/f.txt", "BOB");
            put(d, "users/carol/public_html/f.txt", "CAROL");
            put(d, "users/a/alice/public_html/f.txt", "LETTER");
            put(d, "www/~alice/f.txt", "DOCROOT");
        },
    );
    assert_eq!(s.get("/~alice/sub/f.txt").text(), "ALICE-F");
    let r = s.get("/~alice?x=1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/~alice/?x=1"));
    assert_eq!(
        s.get("/~bob/f.txt").status,
        404,
        "excluded: not a user directory"
    );
    assert_eq!(s.get("/~..%2F..%2Fetc/passwd").status, 404);
    assert_eq!(host(&s, "letters.test", "/~alice/f.txt").text(), "LETTER");
    assert_eq!(host(&s, "only.test", "/~alice/sub/f.txt").status, 404);
    assert_eq!(host(&s, "only.test", "/~carol/f.txt").text(), "CAROL");
    assert_eq!(host(&s, "off.test", "/~alice/f.txt").text(), "DOCROOT");
}

#[test]
fn userdir_needs_path_set() {
    let s = Server::start_with(
        &conf("\"mod_userdir\"", "userdir.basepath = \"@DIR@/users/\""),
        &[],
        |d| {
            put(d, "users/alice/f.txt", "ALICE");
            put(d, "www/~alice/f.txt", "DOCROOT");
        },
    );
    assert_eq!(s.get("/~alice/f.txt").text(), "DOCROOT");
}

#[test]
fn userdir_homes_skip_root() {
    // Homes come from the passwd database; uid 0 is never served.
    let s = Server::start(&conf("\"mod_userdir\"", "userdir.path = \"\""));
    assert_eq!(s.get("/~root/").status, 404);
}

#[test]
fn userdir_homes_from_passwd() {
    // An account (not uid 0) whose home directory exists: its home is served.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let found = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let (name, uid, home) = (*f.first()?, f.get(2)?.parse::<u32>().ok()?, *f.get(5)?);
        let ok = uid != 0
            && home.len() > 1
            && Path::new(home).is_dir()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        ok.then(|| name.to_string())
    });
    let Some(user) = found else {
        eprintln!("SKIP userdir_homes_from_passwd: no account with a home directory");
        return;
    };
    let s = Server::start(&conf(
        "\"mod_userdir\"",
        "userdir.path = \"\"\ndir-listing.activate = \"enable\"",
    ));
    let r = s.get(&format!("/~{user}/"));
    assert_eq!(r.status, 200, "/~{user}/");
    assert!(
        r.text()
            .contains(&format!("<title>Index of /~{user}/</title>")),
        "{}",
        r.text()
    );
    assert_eq!(s.get("/~no-such-user-here/").status, 404);
}

// ----------------------------------------------------------- mod_accesslog

const ALL: &str = "%h|%a|%{mask}a|%A|%p|%{remote}p|%V|%v|%u|%l|%%|%r|%s|%>s|%b|%O|%I|%m|%H|%U|%q|%k|%X|%{X-Test}i|%{Content-Type}o|%{sid}C|%{FOO}e|%f|%{sec}t|%{%Y}t|%T|%D|%{ms}T|%P.";

#[test]
fn accesslog_fields_of_a_known_request() {
    let s = Server::start_with(
        &conf(
            "\"mod_accesslog\", \"mod_setenv\"",
            &format!(
                r#"
accesslog.filename = "@DIR@/access.log"
$HTTP["url"] =^ "/all" {{
  accesslog.format = "{ALL}"
  setenv.set-environment = ( "FOO" => "bar baz" )
}}
"#
            ),
        ),
        &[],
        |d| put(d, "www/all.txt", "0123456789"),
    );
    let raw = b"GET /all.txt?q=1&x=%22 HTTP/1.1\r\nHost: Example.Test:81\r\nX-Test: a\"b\\c\td\r\nCookie: a=1; sid=xyz\r\n\r\n";
    let r = parse_response(&s.raw(&[&raw[..], b"GET /other HTTP/1.1\r\nHost: h\r\nUser-Agent: ua \"1\"\r\nReferer: http://r/\r\nConnection: close\r\n\r\n"].concat()));
    assert_eq!(r.status, 200);
    let log = wait_file(&s.dir.path().join("access.log"), |t| t.lines().count() >= 2);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    // Line 1: every directive.
    let f: Vec<&str> = lines[0].split('|').collect();
    let year = std::process::Command::new("date")
        .arg("+%Y")
        .output()
        .expect("date");
    let year = String::from_utf8_lossy(&year.stdout).trim().to_string();
    let expect = [
        "127.0.0.1",
        "127.0.0.1",
        "127.0.0.0",
        "127.0.0.1",
        &s.port.to_string(),
        f[5], // %{remote}p: the client's port, checked below
        "example.test:81",
        "example.test",
        "-",
        "-",
        "%",
        "GET /all.txt?q=1&x=%22 HTTP/1.1",
        "200",
        "200",
        "10",
    ];
    assert_eq!(&f[..expect.len()], &expect[..], "{}", lines[0]);
    assert!(
        f[5].parse::<u16>().is_ok_and(|p| p > 0),
        "%{{remote}}p: {}",
        f[5]
    );
    let bytes_out: u64 = f[15].parse().expect("%O");
    assert!(bytes_out > 10, "%O counts the head: {bytes_out}");
    assert_eq!(f[16], (raw.len()).to_string(), "%I: the request head");
    assert_eq!(
        &f[17..25],
        [
            "GET",
            "HTTP/1.1",
            "/all.txt",
            "q=1&x=%22",
            "0",
            "+",
            "a\\\"b\\\\c\\td",
            "text/plain"
        ]
    );
    assert_eq!(f[25], "xyz", "%{{sid}}C");
    assert_eq!(f[26], "bar baz", "%{{FOO}}e");
    assert_eq!(f[27], format!("{}/all.txt", s.docroot().display()), "%f");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let t: u64 = f[28].parse().expect("%{sec}t");
    assert!(t <= now && now - t < 30, "%{{sec}}t {t} vs {now}");
    assert_eq!(f[29], year, "%{{%Y}}t");
    assert_eq!(f[30], "0", "%T");
    let d: i64 = f[31].parse().expect("%D");
    assert!((0..5_000_000).contains(&d), "%D {d}");
    let ms: i64 = f[32].parse().expect("%{{ms}}T");
    assert!((0..5_000).contains(&ms));
    assert_eq!(f[33], ".", "%P prints nothing");
    assert_eq!(f.len(), 34);

    // Line 2: lighttpd's default format, second request on the connection.
    let l = lines[1];
    assert!(l.starts_with("127.0.0.1 h - ["), "{l}");
    let page = s.get("/other").body.len();
    assert!(
        l.ends_with(&format!(
            "] \"GET /other HTTP/1.1\" 404 {page} \"http://r/\" \"ua \\\"1\\\"\""
        )),
        "{l}"
    );
    let ts = &l[l.find('[').expect("[") + 1..l.find(']').expect("]")];
    // [dd/Mon/yyyy:hh:mm:ss +zzzz]
    assert_eq!(ts.len(), 26, "{ts}");
    assert_eq!(&ts[2..3], "/");
    assert_eq!(&ts[6..11], &format!("/{year}"));
}

#[test]
fn accesslog_json_escaping_and_blocks() {
    let s = Server::start_with(
        &conf(
            "\"mod_accesslog\"",
            r#"
accesslog.filename = "@DIR@/main.log"
accesslog.format = "%{User-Agent}i"
$HTTP["url"] =^ "/json" { accesslog.escaping = "json" }
$HTTP["url"] =^ "/quiet" { accesslog.filename = "" }
$HTTP["url"] =^ "/other" { accesslog.filename = "@DIR@/other.log" }
"#,
        ),
        &[],
        |_| {},
    );
    let ua = "u\u{e9}\"\\\tx";
    get(&s, "/plain", &["-A", ua]);
    get(&s, "/json", &["-A", ua]);
    get(&s, "/quiet", &["-A", "quiet"]);
    get(&s, "/other", &["-A", "other"]);
    let main = wait_file(&s.dir.path().join("main.log"), |t| t.lines().count() >= 2);
    assert_eq!(
        main, "u\\xC3\\xA9\\\"\\\\\\tx\nu\u{e9}\\\"\\\\\\tx\n",
        "default escaping, then json"
    );
    let other = wait_file(&s.dir.path().join("other.log"), |t| !t.is_empty());
    assert_eq!(other, "other\n");
}

#[test]
fn accesslog_bad_format_stops_start_up() {
    let dir = common::TempDir::new();
    let conf_path = dir.path().join("bad.conf");
    let text = common::render(
        &conf("\"mod_accesslog\"", "accesslog.format = \"%h %{bogus}T\""),
        common::free_port(),
        dir.path(),
    );
    std::fs::create_dir_all(dir.path().join("www")).expect("mkdir");
    std::fs::write(&conf_path, text).expect("write");
    let out = std::process::Command::new(common::wickd_bin())
        .args(["-D", "-f"])
        .arg(&conf_path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("parsing accesslog-definition failed"), "{err}");
    assert!(err.contains("bad.conf:"), "names the file: {err}");
}

#[test]
fn accesslog_nothing_lost_at_shutdown_and_reopened_on_sighup() {
    let mut s = Server::start(&conf(
        "\"mod_accesslog\"",
        "accesslog.filename = \"@DIR@/access.log\"\naccesslog.format = \"%U\"",
    ));
    let log = s.dir.path().join("access.log");
    s.get("/one");
    wait_file(&log, |t| t.contains("/one"));
    std::fs::rename(&log, s.dir.path().join("access.log.1")).expect("rename");
    s.signal(nix::sys::signal::Signal::SIGHUP);
    // The worker gets the new fd over its channel: requests after it land in the new file.
    let start = Instant::now();
    loop {
        s.get("/two");
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("/two"))
            || start.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("/two"));
    // Many requests, then at once a graceful stop: every line is written.
    for i in 0..100 {
        s.get(&format!("/last{i}"));
    }
    s.signal(nix::sys::signal::Signal::SIGINT);
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    let text = std::fs::read_to_string(&log).expect("log");
    for i in 0..100 {
        assert!(
            text.contains(&format!("/last{i}\n")),
            "line {i} lost:\n{text}"
        );
    }
}

#[test]
fn accesslog_survives_reload() {
    let s = Server::start(&conf(
        "\"mod_accesslog\"",
        "accesslog.filename = \"@DIR@/access.log\"\naccesslog.format = \"%U\"",
    ));
    let log = s.dir.path().join("access.log");
    s.get("/before");
    s.signal(nix::sys::signal::Signal::SIGUSR1);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(4) {
        s.get(&format!("/during{n}"));
        n += 1;
    }
    let text = wait_file(&log, |t| t.contains(&format!("/during{}\n", n - 1)));
    assert!(text.contains("/before\n"));
    for i in 0..n {
        assert!(
            text.contains(&format!("/during{i}\n")),
            "line {i} lost:\n{text}"
        );
    }
}

#[test]
fn piped_logger_restarted_after_it_dies() {
    let s = Server::start(&conf(
        "\"mod_accesslog\"",
        "accesslog.filename = \"|exec cat >> @DIR@/piped.log\"\naccesslog.format = \"%U\"",
    ));
    let log = s.dir.path().join("piped.log");
    s.get("/first");
    wait_file(&log, |t| t.contains("/first"));
    // The logger runs outside the worker sandbox, as a child of the master.
    let logger = logger_pid(&s).expect("a piped logger runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(logger as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill logger");
    // Lines written while no logger runs wait in the pipe for the next one.
    s.get("/while-dead");
    let start = Instant::now();
    let mut next = None;
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(p) = logger_pid(&s).filter(|&p| p != logger) {
            next = Some(p);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        next.is_some(),
        "no new logger; error log:\n{}",
        s.error_log()
    );
    s.get("/after");
    let text = wait_file(&log, |t| t.contains("/after"));
    assert_eq!(text, "/first\n/while-dead\n/after\n");
    assert!(
        s.error_log().contains("piped access logger"),
        "{}",
        s.error_log()
    );
}

/// The pid of the master's child that runs `cat` (the piped logger).
fn logger_pid(s: &Server) -> Option<u32> {
    s.children()
        .into_iter()
        .find(|&p| common::cmdline(p).starts_with("cat"))
}

#[test]
fn accesslog_to_syslog() {
    use std::os::unix::net::UnixDatagram;
    let sock = Path::new("/dev/log");
    if sock.exists() {
        eprintln!("SKIP accesslog_to_syslog: a syslog daemon owns /dev/log");
        return;
    }
    if common::skip_unless_root("accesslog_to_syslog") {
        return;
    }
    /// Removes the test's /dev/log, whatever happens.
    struct Gone<'a>(&'a Path);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let rx = UnixDatagram::bind(sock).expect("bind /dev/log");
    let _gone = Gone(sock);
    rx.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let s = Server::start(&conf(
        "\"mod_accesslog\"",
        r#"
server.syslog-facility = "local3"
accesslog.filename = "@DIR@/access.log"
accesslog.format = "%U %s"
$HTTP["url"] =^ "/sys" {
  accesslog.use-syslog = "enable"
  accesslog.syslog-level = 3
}
"#,
    ));
    s.get("/sys/one");
    s.get("/file");
    let mut buf = [0u8; 2048];
    let n = rx.recv(&mut buf).expect("a syslog datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    // local3 (19) * 8 + err (3) = 155
    assert!(msg.starts_with("<155>"), "{msg}");
    assert!(msg.ends_with("/sys/one 404"), "{msg}");
    let file = wait_file(&s.dir.path().join("access.log"), |t| t.contains("/file"));
    assert_eq!(file, "/file 404\n", "the syslog line is not in the file");
}

#[test]
fn accesslog_cgi_requests() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start_with(
        &conf(
            "\"mod_cgi\", \"mod_accesslog\"",
            r#"
accesslog.filename = "@DIR@/access.log"
accesslog.format = "%s %b %O %U %{X-Script}o %X"
cgi.assign = ( ".cgi" => "" )
"#,
        ),
        &[],
        |d| {
            for (n, body) in [
                (
                    "ok.cgi",
                    "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-Script: yes\\r\\n\\r\\n'\nprintf 'hello world'\n",
                ),
                ("gone.cgi", "#!/bin/sh\nprintf 'Status: 410\\r\\n\\r\\ngone'\n"),
            ] {
                let p = d.join("www").join(n);
                std::fs::write(&p, body).expect("write");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        },
    );
    let ok = s.get("/ok.cgi");
    assert_eq!(ok.text(), "hello world");
    let gone = s.get("/gone.cgi");
    assert_eq!(gone.status, 410);
    let log = wait_file(&s.dir.path().join("access.log"), |t| t.lines().count() >= 2);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "one line per CGI request: {log}");
    // HTTP/1.1 without a length from the script: chunked, the count is what was sent.
    let f: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(f[0], "200");
    let (body, all): (u64, u64) = (f[1].parse().expect("%b"), f[2].parse().expect("%O"));
    assert!(body >= 11 && all > body, "{}", lines[0]);
    assert_eq!(&f[3..], ["/ok.cgi", "yes", "+"]);
    assert!(lines[1].starts_with("410 "), "{}", lines[1]);
    assert!(lines[1].ends_with(" /gone.cgi - +"), "{}", lines[1]);
}

#[test]
fn accesslog_keys_without_the_module_open_nothing() {
    let s = Server::start(&conf("", "accesslog.filename = \"@DIR@/access.log\""));
    assert_eq!(s.get("/").status, 403);
    assert!(!s.dir.path().join("access.log").exists());
    assert!(
        s.error_log().contains("accesslog.filename"),
        "warned: {}",
        s.error_log()
    );
}

#[test]
fn accesslog_remote_port() {
    let s = Server::start_with(
        &conf(
            "\"mod_accesslog\"",
            "accesslog.filename = \"@DIR@/access.log\"\naccesslog.format = \"%h %{remote}p %U\"",
        ),
        &[],
        |_| {},
    );
    let mut c = common::wire::Conn::new(s.port);
    let port = c.s.local_addr().expect("addr").port();
    c.send(b"GET /p HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(c.response().is_some());
    let log = wait_file(&s.dir.path().join("access.log"), |t| !t.is_empty());
    assert_eq!(log, format!("127.0.0.1 {port} /p\n"));
}

/// Refused requests are logged too, as lighttpd logs every response: by the
/// global options, the first line as received and escaped.
#[test]
fn accesslog_logs_refused_requests() {
    let s = Server::start_with(
        &conf(
            "\"mod_accesslog\"",
            "accesslog.filename = \"@DIR@/access.log\"\naccesslog.format = \"%h %s %r|%b\"",
        ),
        &[],
        |_| {},
    );
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let mut c = common::wire::Conn::new(s.port);
        c.send(raw);
        assert!(c.response().is_some());
    }
    let log = wait_file(&s.dir.path().join("access.log"), |t| t.lines().count() >= 3);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].starts_with("127.0.0.1 400 GET / HTTP/1.1|"),
        "{log}"
    );
    assert!(
        lines[1]
            .starts_with("127.0.0.1 400 \\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03|"),
        "{log}"
    );
    assert!(
        lines[2].starts_with("127.0.0.1 404 GET /ok HTTP/1.1|"),
        "{log}"
    );
    let bytes: u64 = lines[0]
        .rsplit('|')
        .next()
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    assert!(bytes > 0, "%b of the 400 page: {log}");
}

/// A client that pipelines a request behind a large listing and half-closes at
/// once gets both responses: its FIN, seen while the listing is built, does not
/// drop the request already received behind it.
#[test]
fn half_close_behind_a_deferred_listing_keeps_the_pipelined_request() {
    use std::io::{Read, Write};
    let s = Server::start_with(&conf("", "dir-listing.activate = \"enable\""), &[], |d| {
        put(d, "www/small.txt", "SMALL");
        let big = d.join("www/big");
        std::fs::create_dir_all(&big).expect("mkdir");
        for i in 0..20_000 {
            std::fs::File::create(big.join(format!("entry-{i:06}"))).expect("create");
        }
    });
    for _ in 0..3 {
        let mut a = s.connect();
        a.write_all(
            b"GET /big/ HTTP/1.1\r\nHost: x\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .expect("write");
        a.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut all = Vec::new();
        a.read_to_end(&mut all).expect("read");
        let text = String::from_utf8_lossy(&all);
        assert_eq!(
            text.matches("HTTP/1.1 200 OK").count(),
            2,
            "{}",
            &text[..200.min(text.len())]
        );
        assert!(text.ends_with("SMALL"), "pipelined response last");
    }
}

/// An error handler's answer is the request's one access-log line, and %r shows
/// the request as the client sent it (lighttpd's r->target_orig), not the
/// handler's URL.
#[test]
fn error_handler_run_is_logged_once_with_the_client_request_line() {
    let s = Server::start_with(
        &conf(
            "\"mod_accesslog\"",
            "accesslog.filename = \"@DIR@/access.log\"\naccesslog.format = \"%s %r\"\nserver.error-handler-404 = \"/handler.txt\"",
        ),
        &[],
        |d| put(d, "www/handler.txt", "handler page\n"),
    );
    let r = parse_response(
        &s.raw(b"GET /missing?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "handler page\n"));
    let log = wait_file(&s.dir.path().join("access.log"), |t| !t.is_empty());
    assert_eq!(log.trim_end(), "200 GET /missing?q=1 HTTP/1.1", "{log}");
}
