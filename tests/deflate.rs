//! mod_deflate through the real server, decoded by real clients (curl
//! --compressed for gzip, br and zstd; python's gzip and zlib): static files
//! compressed into memory and into deflate.cache-dir (a hit, an invalidation when
//! the file changes, a planted symlink not followed), Vary and the ETag's coding
//! suffix with If-None-Match, what is never compressed (Range, HEAD, 304, q=0,
//! other types, no-transform, a file above max-compress-size), CGI responses
//! compressed as they stream, and bad settings refused at start.

mod common;

use common::{curl, wire, Server};
use std::io::Write;
use std::path::Path;
use std::process::Command;

const CONF: &str = r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_deflate", "mod_setenv", "mod_cgi")
mimetype.assign = (".html" => "text/html", ".txt" => "text/plain", ".png" => "image/png",
                   ".cgi" => "text/plain")
deflate.mimetypes = ("text/")
deflate.compression-level = 6
$HTTP["url"] =^ "/cgi/" { cgi.assign = (".cgi" => "") }
$HTTP["url"] == "/keep.html" { setenv.set-response-header = ("Cache-Control" => "no-transform") }
"#;

/// About 100 KiB of HTML that compresses well but not trivially.
fn html() -> Vec<u8> {
    let words = [
        "alpha",
        "beta",
        "<p>",
        "</p>",
        "gamma",
        "delta",
        "<div class=\"x\">",
        "</div>",
    ];
    let mut s = b"<html><body>".to_vec();
    let mut x: u32 = 7;
    while s.len() < 100 * 1024 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        s.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
        s.push(b' ');
    }
    s.truncate(100 * 1024);
    s
}

fn files(dir: &Path) {
    let www = dir.join("www");
    std::fs::write(www.join("index.html"), html()).expect("write");
    std::fs::write(www.join("keep.html"), html()).expect("write");
    std::fs::write(www.join("img.png"), html()).expect("write");
    std::fs::write(www.join("small.txt"), b"tiny\n").expect("write");
}

fn start(extra: &str) -> Server {
    Server::start_with(&format!("{CONF}{extra}"), &[], files)
}

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("www/cgi").join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, body).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Fetch with python's urllib (a second real client) and decode with its gzip or
/// zlib module: prints the Content-Encoding, then the decoded body.
fn python_get(url: &str, accept: &str) -> (String, Vec<u8>) {
    let prog = r#"
import sys, urllib.request, gzip, zlib
req = urllib.request.Request(sys.argv[1], headers={"Accept-Encoding": sys.argv[2]})
r = urllib.request.urlopen(req, timeout=10)
data = r.read()
enc = r.headers.get("Content-Encoding", "")
if enc == "gzip": data = gzip.decompress(data)
elif enc == "deflate": data = zlib.decompress(data)
sys.stdout.buffer.write(enc.encode() + b"\n" + data)
"#;
    let out = Command::new("python3")
        .args(["-c", prog, url, accept])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nl = out.stdout.iter().position(|&c| c == b'\n').expect("line");
    (
        String::from_utf8_lossy(&out.stdout[..nl]).into_owned(),
        out.stdout[nl + 1..].to_vec(),
    )
}

/// curl asking for exactly `coding` and decoding what comes (--compressed).
fn curl_coding(url: &str, coding: &str) -> common::Response {
    curl(
        url,
        &["--compressed", "-H", &format!("Accept-Encoding: {coding}")],
    )
}

#[test]
fn every_coding_round_trips_through_real_clients() {
    let s = start("");
    let url = s.url("/index.html");
    for coding in ["gzip", "br", "zstd", "deflate", "x-gzip"] {
        let r = curl_coding(&url, coding);
        assert_eq!(r.status, 200, "{coding}");
        assert_eq!(r.header("content-encoding"), Some(coding), "{coding}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{coding}");
        assert_eq!(r.header("accept-ranges"), None, "{coding}");
        let n: usize = r
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(n > 0 && n < 30 * 1024, "{coding}: {n} bytes on the wire");
        assert!(r.body == html(), "{coding}: body differs after decoding");
    }
    for coding in ["gzip", "deflate"] {
        let (enc, body) = python_get(&url, coding);
        assert_eq!(enc, coding);
        assert!(body == html(), "python {coding}");
    }
    // A browser's list: lighttpd's order picks zstd; q-values can say otherwise.
    let r = curl_coding(&url, "gzip, deflate, br, zstd");
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    let r = curl_coding(&url, "gzip;q=1.0, br;q=0.5");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    // q=0 refuses a coding, and refusing all leaves the body as it is.
    let r = curl_coding(&url, "zstd;q=0, br;q=0, gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let r = curl(&url, &["-H", "Accept-Encoding: gzip;q=0"]);
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.body == html());
    // Keep-alive: several compressed answers on one connection, then a plain one.
    let mut c = wire::Conn::new(s.port);
    for _ in 0..3 {
        c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
        let r = c.response().expect("response");
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        assert!(r.body.len() < 30 * 1024 && r.body.starts_with(&[0x1f, 0x8b]));
    }
    c.send(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response().expect("response");
    assert_eq!(r.body.len(), 100 * 1024);
}

#[test]
fn vary_etag_and_conditionals() {
    let s = start("");
    let url = s.url("/index.html");
    let plain = curl(&url, &[]);
    let etag = plain.header("etag").expect("etag").to_string();
    // The plain answer of a compressible file varies too; its tag is the file's.
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.header("accept-ranges"), Some("bytes"));
    let gz = curl_coding(&url, "gzip");
    let gz_tag = format!("{}-gzip\"", etag.trim_end_matches('"'));
    assert_eq!(gz.header("etag"), Some(gz_tag.as_str()));
    let br = curl_coding(&url, "br");
    assert_eq!(
        br.header("etag"),
        Some(format!("{}-br\"", etag.trim_end_matches('"')).as_str())
    );
    // If-None-Match with the compressed tag: 304, with the tag and Vary.
    let inm = format!("If-None-Match: {gz_tag}");
    let r = curl(&url, &["-H", "Accept-Encoding: gzip", "-H", &inm]);
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(gz_tag.as_str()));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.is_empty());
    // ... but not for another coding: that representation is new to the client.
    let r = curl(
        &url,
        &["--compressed", "-H", "Accept-Encoding: br", "-H", &inm],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert!(r.body == html());
    // The plain tag still validates the file (as in lighttpd).
    let r = curl(
        &url,
        &[
            "-H",
            "Accept-Encoding: gzip",
            "-H",
            &format!("If-None-Match: {etag}"),
        ],
    );
    assert_eq!(r.status, 304);
    // HEAD: the plain head, as lighttpd answers it (with Vary).
    let r = curl(&url, &["-I", "-H", "Accept-Encoding: gzip"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), Some("102400"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
}

#[test]
fn range_requests_and_what_is_never_compressed() {
    let s = start("deflate.max-compress-size = 1024\n");
    let url = s.url("/index.html");
    // A Range request gets the plain bytes it names.
    let r = curl(
        &url,
        &["-H", "Accept-Encoding: gzip", "-H", "Range: bytes=0-99"],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.body[..] == html()[..100]);
    // Resuming a compressed download: If-Range with the gzip tag does not match
    // the plain file, so the whole compressed answer comes (never mixed bytes).
    let gz_tag = curl_coding(&url, "gzip")
        .header("etag")
        .expect("etag")
        .to_string();
    let r = curl(
        &url,
        &[
            "--compressed",
            "-H",
            "Accept-Encoding: gzip",
            "-H",
            "Range: bytes=10-",
            "-H",
            &format!("If-Range: {gz_tag}"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.body == html());
    // Not in deflate.mimetypes: as it is, and no Vary.
    let r = curl(&s.url("/img.png"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(
        (r.header("content-encoding"), r.header("vary")),
        (None, None)
    );
    // At most deflate.min-compress-size (256 bytes): as it is.
    let r = curl(&s.url("/small.txt"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, b"tiny\n");
    // Cache-Control: no-transform (here set by mod_setenv): as it is.
    let r = curl(&s.url("/keep.html"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("cache-control"), Some("no-transform"));
    // 10 MiB above deflate.max-compress-size (1 MiB here): as it is.
    let big: Vec<u8> = html().iter().cycle().take(10 << 20).copied().collect();
    std::fs::write(s.docroot().join("big.txt"), &big).expect("write");
    let r = curl(&s.url("/big.txt"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), Some("10485760"));
    assert!(r.body == big);
}

/// The cache entry lighttpd 1.4.69 would use: cache dir + physical path +
/// "-" + ETag text + "-" + coding.
fn entry(cache: &Path, docroot: &Path, name: &str, etag: &str, coding: &str) -> std::path::PathBuf {
    let mut p = cache.to_path_buf();
    for c in docroot.join(name).components().skip(1) {
        p.push(c);
    }
    let file = format!(
        "{}-{}-{coding}",
        p.file_name().expect("name").to_string_lossy(),
        etag.trim_matches('"')
    );
    p.set_file_name(file);
    p
}

#[test]
fn cache_dir_is_made_filled_reused_and_follows_the_file() {
    let s = start("deflate.cache-dir = \"@DIR@/cache/\"\n");
    let cache = s.dir.path().join("cache");
    let url = s.url("/index.html");
    // (a worker answered, so it has entered its sandbox)
    let etag = curl(&url, &[]).header("etag").expect("etag").to_string();
    // Made at start by the worker (0700), as lighttpd makes it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache)
        .expect("cache dir made")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let gz = entry(&cache, &s.docroot(), "index.html", &etag, "gzip");
    assert!(!gz.exists());
    let r1 = curl(&url, &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r1.header("content-encoding"), Some("gzip"));
    let meta = std::fs::metadata(&gz).expect("entry written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&gz).expect("read"), r1.body);
    assert_eq!(
        r1.header("content-length"),
        Some(meta.len().to_string().as_str())
    );
    // The second answer is the entry: the same bytes, the file not written again.
    use std::os::unix::fs::MetadataExt;
    let r2 = curl(&url, &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r2.body, r1.body);
    assert_eq!(std::fs::metadata(&gz).expect("entry").ino(), meta.ino());
    let leftovers: Vec<_> = std::fs::read_dir(gz.parent().expect("dir"))
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".html-") && !e.path().eq(&gz))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // br gets its own entry, decoded by curl.
    let r = curl_coding(&url, "br");
    assert!(r.body == html());
    assert!(entry(&cache, &s.docroot(), "index.html", &etag, "br").exists());

    // An entry made by someone else with the same name is what is served: the
    // cache is read, not bypassed (a new file's entry, planted before its first
    // request).
    let other = b"<html>from the cache</html>".repeat(20);
    std::fs::write(s.docroot().join("planted.html"), html()).expect("write");
    let ptag = curl(&s.url("/planted.html"), &[])
        .header("etag")
        .expect("etag")
        .to_string();
    let pentry = entry(&cache, &s.docroot(), "planted.html", &ptag, "gzip");
    std::fs::create_dir_all(pentry.parent().expect("dir")).expect("mkdir");
    let mut gzfile = std::fs::File::create(&pentry).expect("create");
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&other)
        .expect("feed");
    let zipped = child.wait_with_output().expect("gzip out").stdout;
    gzfile.write_all(&zipped).expect("write entry");
    drop(gzfile);
    let r = curl_coding(&s.url("/planted.html"), "gzip");
    assert_eq!(r.body, other);

    // The file changes: a new ETag, a new entry, the new content.
    let mut changed = html();
    changed.extend_from_slice(b"<p>changed</p>");
    std::fs::write(s.docroot().join("index.html"), &changed).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // the stat cache's second
    let r = curl_coding(&url, "gzip");
    assert!(r.body == changed, "stale entry served");
    let new_tag = r
        .header("etag")
        .expect("etag")
        .trim_end_matches("-gzip\"")
        .to_string()
        + "\"";
    assert_ne!(new_tag, etag);
    assert!(entry(&cache, &s.docroot(), "index.html", &new_tag, "gzip").exists());
}

#[test]
fn a_symlink_planted_in_the_cache_is_not_followed() {
    let s = start("deflate.cache-dir = \"@DIR@/cache\"\n");
    let cache = s.dir.path().join("cache");
    // (a worker answered, so it has made the cache dir)
    assert_eq!(curl(&s.url("/small.txt"), &[]).status, 200);
    let elsewhere = s.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    // The entry's first directory is a symlink out of the cache.
    let docroot = s.docroot();
    let first = docroot.components().nth(1).expect("component");
    std::os::unix::fs::symlink(&elsewhere, cache.join(first)).expect("symlink");
    let r = curl_coding(&s.url("/index.html"), "gzip");
    // Still answered compressed (from memory), nothing written through the link.
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.body == html());
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);
    // (the worker writes its log lines after the loop turn)
    let logged = common::wait_until(std::time::Duration::from_secs(5), || {
        s.error_log().contains("mod_deflate: writing")
    });
    assert!(logged, "{}", s.error_log());
}

const STREAM: &str = r#"#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
i=0; while [ $i -lt 200 ]; do echo "first part $i first part"; i=$((i+1)); done
n=0; while [ ! -e "$GO" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
if [ -e "$GO" ]; then echo "second part"; else echo "no signal came"; fi
"#;

#[test]
fn cgi_responses_are_compressed_as_they_stream() {
    let go = std::env::temp_dir().join(format!("wick-deflate-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let extra = format!(
        "setenv.add-environment = (\"GO\" => \"{}\")\n",
        go.display()
    );
    let s = Server::start_with(&format!("{CONF}{extra}"), &[], |d| {
        files(d);
        script(d, "stream.cgi", STREAM);
        script(
            d,
            "short.cgi",
            "#!/bin/sh\nprintf 'Content-Type: text/html\\r\\n\\r\\n'\ni=0; while [ $i -lt 500 ]; do echo \"<p>row $i</p>\"; i=$((i+1)); done\n",
        );
        script(
            d,
            "length.cgi",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Length: 4000\\r\\nETag: \"v1\"\\r\\n\\r\\n'\nhead -c 4000 /dev/zero | tr '\\0' 'a'\n",
        );
        script(
            d,
            "encoded.cgi",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nContent-Encoding: identity\\r\\n\\r\\n'\nhead -c 4000 /dev/zero | tr '\\0' 'b'\n",
        );
    });
    // A short response: whole, compressed, with Content-Length.
    let r = curl_coding(&s.url("/cgi/short.cgi"), "gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.header("content-length").is_some());
    assert!(r.text().starts_with("<p>row 0</p>") && r.text().contains("<p>row 499</p>"));
    let (enc, body) = python_get(&s.url("/cgi/short.cgi"), "deflate");
    assert_eq!(enc, "deflate");
    assert!(String::from_utf8_lossy(&body).contains("<p>row 499</p>"));
    // The script's Content-Length: compressed and chunked, its ETag suffixed.
    let r = curl_coding(&s.url("/cgi/length.cgi"), "br");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("etag"), Some("\"v1-br\""));
    assert_eq!(r.body, vec![b'a'; 4000]);
    // Already encoded: as it is.
    let r = curl(&s.url("/cgi/encoded.cgi"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r.header("content-encoding"), Some("identity"));
    assert_eq!(r.body, vec![b'b'; 4000]);
    // HTTP/1.0: compressed until the close.
    let r = curl(
        &s.url("/cgi/length.cgi"),
        &["-0", "--compressed", "-H", "Accept-Encoding: zstd"],
    );
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(r.body, vec![b'a'; 4000]);

    // A script that waits (for the test's signal) after its first part: that part
    // arrives compressed, decodable, while the script still runs.
    let prog = r#"
import sys, socket, zlib, os
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /cgi/stream.cgi HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, rest = buf.split(b"\r\n\r\n", 1)
assert b"Transfer-Encoding: chunked" in head and b"Content-Encoding: gzip" in head, head
d = zlib.decompressobj(16 + 15)
text = b""
def chunks(data):
    out = b""
    while True:
        if b"\r\n" not in data: return out, data, False
        size, tail = data.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0: return out, b"", True
        if len(tail) < n + 2: return out, data, False
        out += tail[:n]; data = tail[n+2:]
pending, ended, signalled = rest, False, False
while not ended:
    body, pending, ended = chunks(pending)
    text += d.decompress(body)
    if b"first part 199" in text and not signalled:
        assert not os.path.exists(sys.argv[2])
        open(sys.argv[2], "w").close()
        signalled = True
        print("first part decoded before the script went on")
    if not ended:
        more = s.recv(65536)
        if not more: break
        pending += more
text += d.flush()
assert ended and signalled and text.endswith(b"second part\n"), text[-100:]
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", prog, &s.port.to_string(), &go.to_string_lossy()])
        .output()
        .expect("python3");
    let _ = std::fs::remove_file(&go);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("before the script went on"));
}

#[test]
fn compress_keys_are_aliases_and_bad_levels_refuse_to_start() {
    // mod_compress's names, as lighttpd 1.4.69 reads them (with its warning).
    let conf = r#"
server.document-root = "@DOCROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@DIR@/error.log"
server.modules = ("mod_compress")
mimetype.assign = (".html" => "text/html")
compress.filetype = ("text/html")
compress.allowed-encodings = ("gzip")
compress.cache-dir = "@DIR@/c"
"#;
    let s = Server::start_with(conf, &[], files);
    let r = curl_coding(&s.url("/index.html"), "br, gzip");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.body == html());
    assert!(s.dir.path().join("c").is_dir());
    drop(s);
    let dir = common::TempDir::new();
    let f = dir.path().join("bad.conf");
    std::fs::write(
        &f,
        format!(
            "server.document-root = \"{}\"\nserver.modules = (\"mod_deflate\")\ndeflate.compression-level = 12\n",
            dir.path().display()
        ),
    )
    .expect("write");
    let out = Command::new(common::wickd_bin())
        .args(["-t", "-f"])
        .arg(&f)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("compression-level must be between 1 and 9: 12"),
        "{err}"
    );
}

#[test]
fn over_max_loadavg_nothing_is_compressed() {
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    if load < 0.05 {
        eprintln!("SKIP over_max_loadavg_nothing_is_compressed: load {load} is too low to exceed");
        return;
    }
    let s = start("deflate.max-loadavg = \"0.01\"\n");
    let r = curl(&s.url("/index.html"), &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body == html());
}

#[test]
fn directory_listings_are_compressed_small_and_deferred() {
    let conf = format!("{CONF}dir-listing.activate = \"enable\"\n");
    let s = Server::start_with(&conf, &[], |d| {
        let small = d.join("www/small");
        std::fs::create_dir_all(&small).expect("mkdir");
        for i in 0..20 {
            std::fs::write(small.join(format!("file-{i}.txt")), b"x").expect("write");
        }
        // More entries than a listing reads at once: answered over later turns.
        let big = d.join("www/big");
        std::fs::create_dir_all(&big).expect("mkdir");
        for i in 0..1500 {
            std::fs::write(big.join(format!("entry-{i:05}.txt")), b"").expect("write");
        }
    });
    for (path, last) in [("/small/", "file-9.txt"), ("/big/", "entry-01499.txt")] {
        let plain = curl(&s.url(path), &[]);
        assert_eq!(plain.status, 200, "{path}");
        assert!(plain.text().contains(last), "{path}");
        assert_eq!(plain.header("vary"), Some("Accept-Encoding"), "{path}");
        for coding in ["gzip", "br"] {
            let r = curl_coding(&s.url(path), coding);
            assert_eq!(
                r.header("content-encoding"),
                Some(coding),
                "{path} {coding}"
            );
            assert_eq!(r.body, plain.body, "{path} {coding}");
            let n: usize = r
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!(n > 0 && n < plain.body.len() / 2, "{path} {coding}: {n}");
        }
    }
}
