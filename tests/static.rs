//! Static files through the real server, checked byte for byte where it matters:
//! headers, index files and directory redirects, ranges, conditional requests, 304,
//! OPTIONS and 405, symlinks, path info, error documents, the stat cache.

mod common;

use common::wire;

use common::Server;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

fn conf(extra: &str) -> String {
    format!(
        r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 1
server.tag = "wick-test"
index-file.names = ( "index.html", "index.htm" )
mimetype.assign = ( ".html" => "text/html", ".txt" => "text/plain", ".css" => "text/css" )
{extra}
"#
    )
}

const DIGITS: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

fn files(d: &Path) {
    let w = d.join("www");
    std::fs::create_dir_all(w.join("dir")).expect("mkdir");
    std::fs::create_dir_all(w.join("noindex")).expect("mkdir");
    std::fs::create_dir_all(w.join("err")).expect("mkdir");
    std::fs::write(w.join("index.html"), "<p>home</p>\n").expect("write");
    std::fs::write(w.join("digits.txt"), DIGITS).expect("write");
    std::fs::write(w.join("long.txt"), DIGITS.repeat(10)).expect("write");
    std::fs::write(w.join("dir/index.htm"), "dir index\n").expect("write");
    std::fs::write(w.join("style.css"), "p{}\n").expect("write");
    std::fs::write(w.join("data.bin"), vec![7u8; 100_000]).expect("write");
    std::fs::write(w.join("Upper.TXT"), "upper\n").expect("write");
    std::fs::write(w.join("lower.txt"), "lower\n").expect("write");
    std::fs::write(w.join("err/404.html"), "custom not found\n").expect("write");
    std::fs::write(w.join("handler.html"), "handler page\n").expect("write");
    std::fs::write(d.join("outside.txt"), "outside the docroot\n").expect("write");
    symlink("../outside.txt", w.join("escape")).expect("symlink");
    symlink("digits.txt", w.join("inside")).expect("symlink");
}

fn start(extra: &str) -> Server {
    Server::start_with(&conf(extra), &[], files)
}

fn get(s: &Server, path: &str, headers: &str) -> wire::Resp {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
    wire::exchange(s.port, req.as_bytes()).expect("response")
}

#[test]
fn file_headers_exactly() {
    let s = start("");
    let r = get(&s, "/digits.txt", "");
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "ETag",
            "Last-Modified",
            "Content-Length",
            "Accept-Ranges",
            "Date",
            "Server"
        ]
    );
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("Content-Length"), Some("36"));
    assert_eq!(r.header("Accept-Ranges"), Some("bytes"));
    let etag = r.header("ETag").expect("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    let lm = r.header("Last-Modified").expect("lm");
    assert!(lm.len() == 29 && lm.ends_with(" GMT"), "{lm}");
    assert_eq!(r.text(), DIGITS);
    // The same validators on every request.
    let again = get(&s, "/digits.txt", "");
    assert_eq!(again.header("ETag"), Some(etag));
    // HEAD: the same head, no body.
    let mut c = wire::Conn::new(s.port);
    c.send(b"HEAD /digits.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let h = c.response_to(true).expect("head");
    assert_eq!(h.header("Content-Length"), Some("36"));
    assert_eq!(h.header("ETag"), Some(etag));
    assert!(c.alive(), "HEAD sent a body");
}

#[test]
fn large_file_with_sendfile() {
    let s = start("");
    let r = get(&s, "/data.bin", "");
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(r.body.len(), 100_000);
    assert!(r.body.iter().all(|&b| b == 7));
}

/// Send-Q (bytes written but not acknowledged) of the server's side of the TCP
/// connection from client port `client` to `server`, from /proc/net/tcp.
fn server_send_queue(server: u16, client: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{server:04X}");
    let remote = format!(":{client:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 4 && f[1].ends_with(&local) && f[2].ends_with(&remote) {
            let (tx, _) = f[4].split_once(':')?;
            u64::from_str_radix(tx, 16).ok()
        } else {
            None
        }
    })
}

#[test]
fn a_client_that_stops_reading_pins_little_socket_memory() {
    // A large body is paced with TCP_NOTSENT_LOWAT: the kernel holds little more
    // than what is in flight, not the whole send buffer (4 MiB by default).
    let s = Server::start_with(&conf(""), &[], |d| {
        files(d);
        std::fs::write(d.join("www/big.bin"), vec![1u8; 16 << 20]).expect("write");
    });
    let mut c = wire::Conn::new(s.port);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let client = c.s.local_addr().expect("addr").port();
    let mut queued = Vec::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        queued.push(server_send_queue(s.port, client).expect("connection in /proc/net/tcp"));
    }
    let most = queued.iter().copied().max().unwrap_or(0);
    assert!(most <= 512 << 10, "server socket queued {queued:?} bytes");
    // Pacing slows nothing: the whole body still arrives.
    let r = c.response().expect("response");
    assert_eq!(r.body.len(), 16 << 20);
}

#[test]
fn directories_index_files_and_redirects() {
    let s = start("");
    assert_eq!(get(&s, "/", "").text(), "<p>home</p>\n");
    assert_eq!(get(&s, "/dir/", "").text(), "dir index\n");
    let r = get(&s, "/dir", "");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/dir/"));
    let r = get(&s, "/dir?a=1&b=2", "");
    assert_eq!(r.header("Location"), Some("/dir/?a=1&b=2"));
    assert_eq!(get(&s, "/noindex/", "").status, 403);
    assert_eq!(get(&s, "/nothing/", "").status, 404);
}

#[test]
fn single_suffix_and_open_ranges() {
    let s = start("");
    let r = get(&s, "/digits.txt", "Range: bytes=0-4\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 0-4/36"));
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.text(), "01234");
    let r = get(&s, "/digits.txt", "Range: bytes=-3\r\n");
    assert_eq!((r.status, r.text().as_str()), (206, "xyz"));
    assert_eq!(r.header("Content-Range"), Some("bytes 33-35/36"));
    let r = get(&s, "/digits.txt", "Range: bytes=30-\r\n");
    assert_eq!(r.text(), "uvwxyz");
    let r = get(&s, "/digits.txt", "Range: bytes=30-1000\r\n");
    assert_eq!(r.header("Content-Range"), Some("bytes 30-35/36"));
    let r = get(&s, "/data.bin", "Range: bytes=99990-\r\n");
    assert_eq!((r.status, r.body.len()), (206, 10));
}

#[test]
fn multipart_byteranges_exactly() {
    let s = start("");
    // Ranges close together are coalesced (as lighttpd does); far apart, two parts.
    let r = get(&s, "/digits.txt", "Range: bytes=0-1,5-6\r\n");
    assert_eq!(
        (r.status, r.header("Content-Range")),
        (206, Some("bytes 0-6/36"))
    );
    let r = get(&s, "/long.txt", "Range: bytes=0-1,330-331\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("Content-Type").expect("ct");
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    let want = format!(
        "\r\n--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/360\r\n\r\n01\
         \r\n--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 330-331/360\r\n\r\n67\
         \r\n--{b}--\r\n",
        b = boundary
    );
    assert_eq!(r.text(), want);
    assert_eq!(
        r.header("Content-Length"),
        Some(want.len().to_string().as_str())
    );
}

#[test]
fn unsatisfiable_and_ignored_ranges() {
    let s = start("");
    let r = get(&s, "/digits.txt", "Range: bytes=100-200\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some("bytes */36"));
    assert_eq!(get(&s, "/digits.txt", "Range: bytes=5-2\r\n").status, 416);
    // Other units are ignored: the whole file.
    let r = get(&s, "/digits.txt", "Range: items=0-3\r\n");
    assert_eq!((r.status, r.body.len()), (200, 36));
}

#[test]
fn if_range() {
    let s = start("");
    let base = get(&s, "/digits.txt", "");
    let etag = base.header("ETag").expect("etag").to_string();
    let lm = base.header("Last-Modified").expect("lm").to_string();
    let r = get(
        &s,
        "/digits.txt",
        &format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!(r.status, 206);
    let r = get(
        &s,
        "/digits.txt",
        "Range: bytes=0-1\r\nIf-Range: \"other\"\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 36));
    let r = get(
        &s,
        "/digits.txt",
        &format!("Range: bytes=0-1\r\nIf-Range: {lm}\r\n"),
    );
    assert_eq!(r.status, 206);
    let r = get(
        &s,
        "/digits.txt",
        "Range: bytes=0-1\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn range_requests_off_per_condition() {
    let s = start("$HTTP[\"url\"] =^ \"/data\" { server.range-requests = \"disable\" }");
    let r = get(&s, "/data.bin", "Range: bytes=0-1\r\n");
    assert_eq!((r.status, r.body.len()), (200, 100_000));
    assert_eq!(r.header("Accept-Ranges"), None);
    assert_eq!(get(&s, "/digits.txt", "Range: bytes=0-1\r\n").status, 206);
}

#[test]
fn conditional_requests_and_304() {
    let s = start("");
    let base = get(&s, "/digits.txt", "");
    let etag = base.header("ETag").expect("etag").to_string();
    let lm = base.header("Last-Modified").expect("lm").to_string();

    let r = get(&s, "/digits.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["ETag", "Last-Modified", "Date", "Server"],
        "{}",
        r.head
    );
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    // Weak comparison, lists, *.
    assert_eq!(
        get(&s, "/digits.txt", &format!("If-None-Match: W/{etag}\r\n")).status,
        304
    );
    assert_eq!(
        get(
            &s,
            "/digits.txt",
            &format!("If-None-Match: \"x\", {etag}\r\n")
        )
        .status,
        304
    );
    assert_eq!(get(&s, "/digits.txt", "If-None-Match: *\r\n").status, 304);
    assert_eq!(
        get(&s, "/digits.txt", "If-None-Match: \"x\"\r\n").status,
        200
    );
    // If-Modified-Since.
    assert_eq!(
        get(&s, "/digits.txt", &format!("If-Modified-Since: {lm}\r\n")).status,
        304
    );
    assert_eq!(
        get(
            &s,
            "/digits.txt",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        )
        .status,
        200
    );
    // If-None-Match wins over If-Modified-Since.
    let r = get(
        &s,
        "/digits.txt",
        &format!("If-None-Match: \"x\"\r\nIf-Modified-Since: {lm}\r\n"),
    );
    assert_eq!(r.status, 200);
    // If-Match and If-Unmodified-Since: 412.
    assert_eq!(get(&s, "/digits.txt", "If-Match: \"x\"\r\n").status, 412);
    assert_eq!(
        get(&s, "/digits.txt", &format!("If-Match: W/{etag}\r\n")).status,
        412
    );
    assert_eq!(
        get(&s, "/digits.txt", &format!("If-Match: {etag}\r\n")).status,
        200
    );
    assert_eq!(get(&s, "/digits.txt", "If-Match: *\r\n").status, 200);
    assert_eq!(
        get(
            &s,
            "/digits.txt",
            "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        )
        .status,
        412
    );
    assert_eq!(
        get(&s, "/digits.txt", &format!("If-Unmodified-Since: {lm}\r\n")).status,
        200
    );
    // If-Match is checked before If-None-Match.
    let r = get(
        &s,
        "/digits.txt",
        &format!("If-Match: \"x\"\r\nIf-None-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 412);
    // If-None-Match on a POST: 412, not 304.
    let req = format!("POST /digits.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        wire::exchange(s.port, req.as_bytes()).expect("post").status,
        412
    );
}

/// Issue 12 item 11: a date whose weekday does not match is compared by its date
/// (RFC 9110 5.6.7; lighttpd does), not ignored as a whole.
#[test]
fn conditional_dates_ignore_the_weekday() {
    let s = start("");
    let lm = get(&s, "/digits.txt", "")
        .header("Last-Modified")
        .expect("lm")
        .to_string();
    let wrong = if lm.starts_with("Mon") { "Tue" } else { "Mon" };
    let ims = format!("{wrong}{}", &lm[3..]);
    let r = get(&s, "/digits.txt", &format!("If-Modified-Since: {ims}\r\n"));
    assert_eq!(r.status, 304, "{ims}");
    let r = get(
        &s,
        "/digits.txt",
        "If-Unmodified-Since: Mon, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(r.status, 412);
    // RFC 850 and asctime forms with a wrong weekday, far in the future: 304.
    for d in ["Friday, 01-Jan-60 00:00:00 GMT", "Fri Jan  1 00:00:00 2060"] {
        let r = get(&s, "/digits.txt", &format!("If-Modified-Since: {d}\r\n"));
        assert_eq!(r.status, 304, "{d}");
    }
}

#[test]
fn etag_options() {
    let s = start("$HTTP[\"url\"] =^ \"/dir/\" { static-file.etags = \"disable\" }\n$HTTP[\"url\"] == \"/style.css\" { etag.use-inode = \"disable\" etag.use-mtime = \"disable\" etag.use-size = \"disable\" }");
    assert!(get(&s, "/digits.txt", "").header("ETag").is_some());
    assert!(get(&s, "/dir/index.htm", "").header("ETag").is_none());
    assert!(get(&s, "/style.css", "").header("ETag").is_none());
}

#[test]
fn options_405_and_501() {
    let s = start("");
    for target in ["*", "/digits.txt"] {
        let req = format!("OPTIONS {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = wire::exchange(s.port, req.as_bytes()).expect("options");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Allow"), Some("OPTIONS, GET, HEAD, POST"));
        assert_eq!(r.header("Content-Length"), Some("0"));
    }
    let r = wire::exchange(
        s.port,
        b"PUT /digits.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
    )
    .expect("put");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("OPTIONS, GET, HEAD, POST"));
    assert!(r.text().contains("405 Method Not Allowed"));
    assert_eq!(
        wire::exchange(s.port, b"DELETE /digits.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("delete")
            .status,
        405
    );
    assert_eq!(
        wire::exchange(s.port, b"BREW /digits.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("brew")
            .status,
        501
    );
}

#[test]
fn symlinks() {
    let s = start("");
    assert_eq!(get(&s, "/inside", "").text(), DIGITS);
    let r = get(&s, "/escape", "");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("outside"));
    let s = start("server.follow-symlink = \"disable\"");
    assert_eq!(get(&s, "/inside", "").status, 403);
    assert_eq!(get(&s, "/digits.txt", "").status, 200);
}

/// Issue 12 item 13: with server.follow-symlink, an absolute symlink whose target is
/// inside the document root is served; one whose target leaves it stays 403.
#[test]
fn absolute_symlinks_inside_the_docroot() {
    let prepare = |d: &Path| {
        files(d);
        let w = d.join("www");
        symlink(w.join("digits.txt"), w.join("abs-in")).expect("symlink");
        symlink(w.join("dir"), w.join("abs-dir")).expect("symlink");
        symlink(d.join("outside.txt"), w.join("abs-out")).expect("symlink");
        symlink(w.join("../outside.txt"), w.join("abs-dotdot")).expect("symlink");
    };
    let s = Server::start_with(&conf(""), &[], prepare);
    let r = get(&s, "/abs-in", "");
    assert_eq!((r.status, r.text().as_str()), (200, DIGITS));
    assert_eq!(get(&s, "/abs-dir/index.htm", "").text(), "dir index\n");
    assert_eq!(get(&s, "/abs-dir/", "").text(), "dir index\n");
    for p in ["/abs-out", "/abs-dotdot"] {
        let r = get(&s, p, "");
        assert_eq!(r.status, 403, "{p}");
        assert!(!r.text().contains("outside"), "{p}");
    }
    let s = Server::start_with(&conf("server.follow-symlink = \"disable\""), &[], prepare);
    assert_eq!(get(&s, "/abs-in", "").status, 403);
}

#[test]
fn pathinfo_exclude_extensions_and_lowercase() {
    let s = start("static-file.exclude-extensions = ( \".css\" )");
    assert_eq!(get(&s, "/digits.txt/extra/info", "").text(), DIGITS);
    assert_eq!(get(&s, "/style.css", "").status, 403);
    let s = start(
        "static-file.disable-pathinfo = \"enable\"\nserver.force-lowercase-filenames = \"enable\"",
    );
    assert_eq!(get(&s, "/digits.txt/extra", "").status, 404);
    assert_eq!(get(&s, "/LOWER.TXT", "").text(), "lower\n");
}

#[test]
fn error_documents() {
    let s = start("server.errorfile-prefix = \"@DOCROOT@/err/\"");
    let r = get(&s, "/missing", "");
    assert_eq!((r.status, r.text().as_str()), (404, "custom not found\n"));
    assert_eq!(r.header("Content-Type"), Some("text/html"));

    let s = start("server.error-handler-404 = \"/handler.html\"");
    let r = get(&s, "/missing", "");
    assert_eq!((r.status, r.text().as_str()), (200, "handler page\n"));

    let s = start("server.error-handler = \"/handler.html\"");
    let r = get(&s, "/missing", "");
    assert_eq!((r.status, r.text().as_str()), (404, "handler page\n"));
    assert_eq!(get(&s, "/noindex/", "").status, 403);

    let s = start("");
    let r = get(&s, "/missing", "");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("<h1>404 Not Found</h1>"));
}

#[test]
fn default_mimetypes_without_mimetype_assign() {
    let c = conf("").replace("mimetype.assign = ( \".html\" => \"text/html\", \".txt\" => \"text/plain\", \".css\" => \"text/css\" )", "");
    let s = Server::start_with(&c, &[], files);
    assert_eq!(
        get(&s, "/style.css", "").header("Content-Type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        get(&s, "/index.html", "").header("Content-Type"),
        Some("text/html")
    );
}

/// Issue 12 item 12: the extension matches mimetype.assign in any case, as in
/// lighttpd; with a large table (the built-in one) the longest extension wins.
#[test]
fn content_type_matches_the_extension_in_any_case() {
    let s = start("");
    let r = get(&s, "/Upper.TXT", "");
    assert_eq!(
        (r.status, r.header("Content-Type")),
        (200, Some("text/plain"))
    );
    let c = conf("").replace("mimetype.assign = ( \".html\" => \"text/html\", \".txt\" => \"text/plain\", \".css\" => \"text/css\" )", "");
    let s = Server::start_with(&c, &[], |d| {
        files(d);
        std::fs::write(d.join("www/photo.JPG"), "jpeg").expect("write");
        std::fs::write(d.join("www/b.TAR.gz"), "tgz").expect("write");
    });
    assert_eq!(
        get(&s, "/photo.JPG", "").header("Content-Type"),
        Some("image/jpeg")
    );
    assert_eq!(
        get(&s, "/b.TAR.gz", "").header("Content-Type"),
        Some("application/x-tgz")
    );
}

#[test]
fn changed_files_are_served_within_a_second() {
    let s = start("");
    assert_eq!(get(&s, "/lower.txt", "").text(), "lower\n");
    std::fs::write(s.docroot().join("lower.txt"), "changed content\n").expect("write");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&s, "/lower.txt", "").text(), "changed content\n");
    std::fs::remove_file(s.docroot().join("lower.txt")).expect("rm");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&s, "/lower.txt", "").status, 404);
}

/// A file that cannot be opened for a reason other than its absence or its
/// permissions (here: the worker is out of descriptors) is a 500, and the reason
/// goes to the error log.
#[test]
fn open_failure_is_500_and_logged() {
    let s = Server::start_with(&conf("server.max-fds = 64"), &[], |d| {
        files(d);
        for i in 0..100 {
            // Larger than the stat cache's in-memory limit: each keeps an fd.
            std::fs::write(d.join(format!("www/f{i}.bin")), vec![b'x'; 40_000]).expect("write");
        }
    });
    let mut c = wire::Conn::new(s.port);
    let mut statuses = Vec::new();
    for i in 0..100 {
        c.send(format!("GET /f{i}.bin HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        statuses.push(c.response().expect("response").status);
        if statuses.last() == Some(&500) {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&500), "{statuses:?}");
    common::wait_until(Duration::from_secs(3), || s.error_log().contains("-> 500"));
    let log = s.error_log();
    assert!(
        log.contains("Too many open files") && log.contains("-> 500"),
        "{log}"
    );
}

/// A unix socket in the document root is not a file to serve: 403, as lighttpd
/// answers for anything that is not a regular file.
#[test]
fn socket_file_is_403() {
    let s = Server::start_with(&conf(""), &[], |d| {
        files(d);
        // The socket file stays after the listener is dropped.
        drop(std::os::unix::net::UnixListener::bind(d.join("www/app.sock")).expect("bind"));
    });
    assert_eq!(get(&s, "/app.sock", "").status, 403);
}

/// Issue 13 item 3: an error handler runs the request again for its target, through
/// the conditions (lighttpd's http_response_call_error_handler): a block matching
/// the handler's URL decides its document root and headers.
#[test]
fn error_handler_target_is_evaluated_as_a_request() {
    let extra = "server.modules = ( \"mod_setenv\" )\n\
                 server.error-handler-404 = \"/errors/nf.html\"\n\
                 $HTTP[\"url\"] =~ \"^/errors/\" {\n\
                   server.document-root = \"@DIR@/errdocs\"\n\
                   setenv.add-response-header = ( \"X-Error-Page\" => \"yes\" )\n\
                 }\n";
    let s = Server::start_with(&conf(extra), &[], |d| {
        files(d);
        std::fs::create_dir_all(d.join("errdocs/errors")).expect("mkdir");
        std::fs::write(d.join("errdocs/errors/nf.html"), "from errdocs\n").expect("write");
    });
    let r = get(&s, "/missing", "");
    assert_eq!((r.status, r.text().as_str()), (200, "from errdocs\n"));
    assert_eq!(r.header("X-Error-Page"), Some("yes"));
    // The request's own block did not match: a file found is served without it.
    let r = get(&s, "/digits.txt", "");
    assert_eq!((r.status, r.header("X-Error-Page")), (200, None));
}

/// A request body sent to a missing path with an error handler is read and dropped
/// while the handler's page waits: the connection stays usable.
#[test]
fn error_handler_answer_waits_for_the_body_and_keeps_the_connection() {
    let s = start("server.error-handler = \"/handler.html\"");
    let mut c = wire::Conn::new(s.port);
    c.send(b"POST /missing HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.response().expect("response");
    assert_eq!((r.status, r.text().as_str()), (404, "handler page\n"));
    c.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response().expect("second response");
    assert_eq!((r.status, r.text().as_str()), (200, DIGITS));
}
