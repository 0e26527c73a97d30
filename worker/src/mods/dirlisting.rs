//! mod_dirlisting: an HTML (or, for `?json`, JSON) listing of a directory that has
//! no index file, with lighttpd's options: dir-listing.activate (server.dir-listing),
//! hide-dotfiles, exclude, external-css, external-js, encoding, show-readme,
//! hide-readme-file, show-header, hide-header-file, encode-readme, encode-header,
//! set-footer, auto-layout, sort, cache.
//!
//! Names are escaped twice over: as a URL path segment in `href` (everything but
//! unreserved characters %-encoded, `/` included) and as text (`< > & " '` and
//! control bytes as character references), so no file name can add markup.
//! lighttpd's page structure and class names are kept, so style sheets written for
//! lighttpd's listings apply.

use super::accesslog::{strftime, Tm};
use super::{hook, HandlerCx, Hooks, Job, Module};
use crate::date::Clock;
use crate::request::Method;
use crate::resp_head::ResponseHead;
use crate::response::Out;
use crate::stat_cache::{Body, Found, Root};
use std::cell::RefCell;
use std::collections::HashMap;
use wick_conf::pattern::Pattern;
/// An open directory stream that keeps its place between loop turns.
type Dir = nix::dir::OwningIter;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use wick_conf::{Config, Value, View};

/// Rendered listings kept by dir-listing.cache, at most this many bytes in all.
const CACHE_BYTES: usize = 8 << 20;
/// A readme or header file is included up to this size (encoded ones are read).
const INCLUDE_MAX: u64 = 1 << 20;

/// dir-listing.exclude lists, compiled once.
struct Excludes {
    patterns: Vec<String>,
    res: Vec<Pattern>,
}

struct Cached {
    at: u64,
    ctype: String,
    body: Vec<u8>,
}

/// (document root + path, shape of the listing).
type CacheKey = (Vec<u8>, u64);

/// Listings kept by dir-listing.cache: (document root + path, shape) → page.
#[derive(Default)]
struct Cache {
    map: HashMap<CacheKey, Cached>,
    bytes: usize,
}

impl Cache {
    fn get(&self, key: &CacheKey, now: u64, age: u64) -> Option<(String, Vec<u8>)> {
        self.map
            .get(key)
            .filter(|c| now.saturating_sub(c.at) < age)
            .map(|c| (c.ctype.clone(), c.body.clone()))
    }

    fn put(&mut self, key: CacheKey, now: u64, age: u64, ctype: &str, body: &[u8]) {
        if self.bytes + body.len() > CACHE_BYTES {
            self.map.retain(|_, c| now.saturating_sub(c.at) < age);
            self.bytes = self.map.values().map(|c| c.body.len()).sum();
        }
        if self.bytes + body.len() > CACHE_BYTES {
            return;
        }
        self.bytes += body.len();
        let old = self.map.insert(
            key,
            Cached {
                at: now,
                ctype: ctype.to_string(),
                body: body.to_vec(),
            },
        );
        if let Some(old) = old {
            self.bytes = self.bytes.saturating_sub(old.body.len());
        }
    }
}

/// Entries read (and stat'ed) per event-loop turn once a directory turns out to
/// be large; the first turn reads up to [`FIRST_BATCH`] and answers at once when
/// that was all.
const BATCH: usize = 256;
const FIRST_BATCH: usize = 1024;
/// Rows rendered per turn.
const RENDER_BATCH: usize = 2048;

pub struct Dirlisting {
    excludes: Vec<Excludes>,
    cache: Rc<RefCell<Cache>>,
}

impl Dirlisting {
    pub fn new(cfg: &Config) -> Result<Dirlisting, String> {
        let mut excludes: Vec<Excludes> = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            let Some(list) = p.dirlist_exclude() else {
                continue;
            };
            if excludes.iter().any(|e| &e.patterns == list) {
                continue;
            }
            let mut res = Vec::with_capacity(list.len());
            for pat in list {
                let re = wick_conf::cond::compile_regex(pat).map_err(|(m, _)| {
                    format!(
                        "{}dir-listing.exclude: {m}",
                        super::where_set(cfg, id, "dir-listing.exclude")
                    )
                })?;
                res.push(re);
            }
            excludes.push(Excludes {
                patterns: list.clone(),
                res,
            });
        }
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(v) = p.dirlist_cache() {
                cache_age(v).map_err(|m| {
                    format!("{}{m}", super::where_set(cfg, id, "dir-listing.cache"))
                })?;
            }
        }
        Ok(Dirlisting {
            excludes,
            cache: Rc::new(RefCell::new(Cache::default())),
        })
    }
}

/// dir-listing.cache: `( "max-age" => N, "path" => ... )`; seconds, 0 = off. The
/// listing is kept in the worker's memory ("path" is accepted: the sandbox gives
/// workers no cache directory to write).
fn cache_age(v: &Value) -> Result<u64, String> {
    let Value::Array(items) = v else {
        return Err("dir-listing.cache must be a list of \"key\" => value".into());
    };
    if items.is_empty() {
        return Ok(0);
    }
    let mut age = 15;
    for (k, v) in items {
        match (k.as_deref(), v) {
            (Some("max-age"), Value::Int(n)) => age = (*n).max(0) as u64,
            (Some("max-age"), Value::Str(s)) => {
                age = s.trim().parse().map_err(|_| {
                    format!("dir-listing.cache \"max-age\" must be a number, not \"{s}\"")
                })?
            }
            (Some("path"), Value::Str(_)) => {}
            (Some("path"), _) => {
                return Err("dir-listing.cache \"path\" must have string value".into())
            }
            (Some(other), _) => return Err(format!("dir-listing.cache: unknown key \"{other}\"")),
            (None, _) => return Err("dir-listing.cache must be a list of \"key\" => value".into()),
        }
    }
    Ok(age)
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub dir: bool,
    pub size: u64,
    pub mtime: i64,
}

/// Which entries to leave out.
pub struct Filter<'a> {
    pub hide_dotfiles: bool,
    pub hide: [Option<&'a [u8]>; 2],
    pub excludes: &'a [Pattern],
}

impl Filter<'_> {
    pub fn keep(&self, name: &[u8]) -> bool {
        if name == b"." || name == b".." {
            return false;
        }
        if self.hide_dotfiles && name.first() == Some(&b'.') {
            return false;
        }
        if self.hide.iter().flatten().any(|h| *h == name) {
            return false;
        }
        !self.excludes.iter().any(|re| re.is_match(name))
    }
}

/// Read (and stat) up to `max` more names of `d` into `out`; true at the end.
/// Each entry is a copy of readdir's, so no name outlives the stream's buffer.
fn read_some(d: &mut Dir, filter: &Filter, follow: bool, max: usize, out: &mut Vec<Entry>) -> bool {
    let dirfd = d.as_raw_fd();
    for _ in 0..max {
        let e = match d.next() {
            Some(Ok(e)) => e,
            Some(Err(_)) => continue,
            None => return true,
        };
        let name = e.file_name();
        let bytes = name.to_bytes();
        if !filter.keep(bytes) {
            continue;
        }
        let Some(st) = crate::sys::stat_at(dirfd, name, follow) else {
            continue; // gone since readdir
        };
        out.push(Entry {
            name: bytes.to_vec(),
            dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
            size: st.st_size.max(0) as u64,
            mtime: st.st_mtime,
        });
    }
    false
}

/// Directories first, each group by name, byte order (lighttpd's strcmp).
pub fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
}

/// Directories first, in directory order otherwise (dir-listing.sort disabled).
pub fn group(entries: &mut [Entry]) {
    entries.sort_by_key(|e| std::cmp::Reverse(e.dir));
}

/// Text in HTML: `< > & " ' \``, DEL and control bytes as `&#xHH;` (bytes from
/// 0x80 up pass, UTF-8 names stay readable).
pub fn html_escape(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        if c < 0x20 || matches!(c, b'<' | b'>' | b'&' | b'"' | b'\'' | b'`' | 0x7f) {
            out.extend_from_slice(b"&#x");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
            out.push(b';');
        } else {
            out.push(c);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A name as one URL path segment: all but `A-Z a-z 0-9 - _ . ! ~ * ( )` %-encoded,
/// `/` included.
pub fn url_escape(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        if c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'(' | b')')
        {
            out.push(c);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        }
    }
}

/// A JSON string body (without the quotes).
pub fn json_escape(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            c => out.push(c),
        }
    }
}

/// lighttpd's size column: one decimal and a unit (K, M, G, T, P, E); small
/// non-empty files round up to 0.1K.
pub fn size_text(out: &mut Vec<u8>, size: u64) {
    let mut size = size;
    if size > 0 && size < 100 {
        size += 99;
    }
    let mut unit = 0usize;
    let mut rem;
    loop {
        rem = size & 1023;
        size >>= 10;
        if size & !1023 == 0 {
            break;
        }
        unit += 1;
    }
    let mut rem = (rem / 100).min(9);
    if size > 999 {
        size = 0;
        rem = 9;
        unit += 1;
    }
    out.extend_from_slice(size.to_string().as_bytes());
    out.push(b'.');
    out.push(b'0' + rem as u8);
    out.push(b"KMGTPE"[unit.min(5)]);
}

/// Options of one listing, as the request's view has them.
pub struct Layout<'a> {
    /// The URL path shown as the title (decoded).
    pub uri: &'a [u8],
    pub auto_layout: bool,
    pub external_css: &'a str,
    pub external_js: &'a str,
    pub encoding: &'a str,
    pub footer: &'a str,
    /// The server tag, the footer when set-footer is empty.
    pub tag: &'a str,
    /// The entries are sorted on the server already.
    pub sorted: bool,
}

const STYLE: &str = "<style>\n\
a, a:active {text-decoration: none; color: #1a4fa3;}\n\
a:visited {color: #553f8f;}\n\
a:hover, a:focus {text-decoration: underline; color: #b3261e;}\n\
body {background-color: #f6f6f4; margin: 1em;}\n\
h2 {margin-bottom: 0.6em; font-weight: normal;}\n\
table {margin-left: 0.8em; border-collapse: collapse;}\n\
th, td {font: 90% monospace; text-align: left; padding: 0.1em 1em 0.1em 0;}\n\
th {font-weight: bold; padding-bottom: 0.3em;}\n\
td.s, th.s {text-align: right;}\n\
div.list {background-color: #fff; border-top: 1px solid #777; border-bottom: 1px solid #777; padding: 0.6em 0 0.8em 0;}\n\
div.foot {font: 90% monospace; color: #777; padding-top: 0.3em;}\n\
</style>\n";

/// Client-side sorting: a click on a column head sorts by it (again: reversed);
/// `?C=N|M|S|T&O=A|D` picks the first order; `..` stays on top, directories first.
const SCRIPT: &str = r#"<script>
(function (serverSorted) {
  var table = document.querySelector("div.list table");
  if (!table || !table.tHead || !table.tBodies.length) return;
  var body = table.tBodies[0], col = -1, asc = true;
  var mon = {Jan:1,Feb:2,Mar:3,Apr:4,May:5,Jun:6,Jul:7,Aug:8,Sep:9,Oct:10,Nov:11,Dec:12};
  var unit = {K:1,M:2,G:3,T:4,P:5,E:6};
  function key(row, c) {
    var s = row.cells[c].textContent, m;
    if (c == 1 && (m = /(\d+)-(\w+)-(\d+) (\d+):(\d+):(\d+)/.exec(s)))
      return ((+m[1] * 13 + (mon[m[2]] || 0)) * 32 + +m[3]) * 86400 + m[4] * 3600 + m[5] * 60 + +m[6];
    if (c == 2) { var f = parseFloat(s); return isNaN(f) ? -1 : f * Math.pow(1024, unit[s.slice(-1)] || 0); }
    return s;
  }
  function cmp(x, y) { return x < y ? -1 : x > y ? 1 : 0; }
  function sortBy(c) {
    asc = (c == col) ? !asc : true;
    col = c;
    var up = [], rows = [];
    Array.prototype.forEach.call(body.rows, function (r) {
      (r.cells[0].textContent == "../" ? up : rows).push(r);
    });
    rows.sort(function (a, b) {
      var da = a.className == "d", db = b.className == "d";
      if (da != db) return da ? -1 : 1;
      var r = cmp(key(a, c), key(b, c)) || cmp(key(a, 0), key(b, 0));
      return asc ? r : -r;
    });
    up.concat(rows).forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.style.cursor = "pointer";
    th.onclick = function () { sortBy(i); };
  });
  var q = /[?&;]C=([NMSTD])(?:[&;]O=([AD]))?/.exec(location.search);
  if (q) {
    sortBy({N: 0, M: 1, S: 2, T: 3, D: 3}[q[1]]);
    if (q[2] == "D") sortBy(col);
  } else if (!serverSorted) {
    sortBy(0);
  }
})("#;

/// The page before the rows.
pub fn page_head(out: &mut Vec<u8>, l: &Layout, header: Option<&[u8]>) {
    if l.auto_layout {
        out.extend_from_slice(b"<!DOCTYPE html>\n<html>\n<head>\n");
        if !l.encoding.is_empty() {
            out.extend_from_slice(b"<meta charset=\"");
            html_escape(out, l.encoding.as_bytes());
            out.extend_from_slice(b"\">\n");
        }
        out.extend_from_slice(b"<title>Index of ");
        html_escape(out, l.uri);
        out.extend_from_slice(b"</title>\n");
        if l.external_css.is_empty() {
            out.extend_from_slice(STYLE.as_bytes());
        } else {
            out.extend_from_slice(
                b"<meta name=\"viewport\" content=\"initial-scale=1\">\n<link rel=\"stylesheet\" type=\"text/css\" href=\"",
            );
            html_escape(out, l.external_css.as_bytes());
            out.extend_from_slice(b"\">\n");
        }
        out.extend_from_slice(b"</head>\n<body>\n");
    }
    if let Some(h) = header {
        out.extend_from_slice(h);
    }
    out.extend_from_slice(b"<h2>Index of ");
    html_escape(out, l.uri);
    out.extend_from_slice(
        b"</h2>\n<div class=\"list\">\n<table summary=\"Directory Listing\" cellpadding=\"0\" cellspacing=\"0\">\n\
<thead><tr><th class=\"n\">Name</th><th class=\"m\">Last Modified</th><th class=\"s\">Size</th><th class=\"t\">Type</th></tr></thead>\n\
<tbody>\n",
    );
    if l.uri != b"/" {
        out.extend_from_slice(
            b"<tr class=\"d\"><td class=\"n\"><a href=\"../\">..</a>/</td><td class=\"m\">&nbsp;</td><td class=\"s\">- &nbsp;</td><td class=\"t\">Directory</td></tr>\n",
        );
    }
}

/// One row.
pub fn row(out: &mut Vec<u8>, e: &Entry, ctype: &str) {
    let mut date = Vec::with_capacity(20);
    strftime(&mut date, b"%Y-%b-%d %H:%M:%S", &Tm::local(e.mtime));
    if e.dir {
        out.extend_from_slice(b"<tr class=\"d\"><td class=\"n\"><a href=\"");
        url_escape(out, &e.name);
        out.extend_from_slice(b"/\">");
        html_escape(out, &e.name);
        out.extend_from_slice(b"</a>/</td><td class=\"m\">");
        out.extend_from_slice(&date);
        out.extend_from_slice(
            b"</td><td class=\"s\">- &nbsp;</td><td class=\"t\">Directory</td></tr>\n",
        );
    } else {
        out.extend_from_slice(b"<tr><td class=\"n\"><a href=\"");
        url_escape(out, &e.name);
        out.extend_from_slice(b"\">");
        html_escape(out, &e.name);
        out.extend_from_slice(b"</a></td><td class=\"m\">");
        out.extend_from_slice(&date);
        out.extend_from_slice(b"</td><td class=\"s\">");
        size_text(out, e.size);
        out.extend_from_slice(b"</td><td class=\"t\">");
        html_escape(out, ctype.as_bytes());
        out.extend_from_slice(b"</td></tr>\n");
    }
}

/// The page after the rows.
pub fn page_foot(out: &mut Vec<u8>, l: &Layout, readme: Option<&[u8]>) {
    out.extend_from_slice(b"</tbody>\n</table>\n</div>\n");
    if let Some(r) = readme {
        out.extend_from_slice(r);
    }
    if !l.auto_layout {
        return;
    }
    if !l.footer.is_empty() {
        // set-footer is the administrator's markup, as in lighttpd.
        out.extend_from_slice(b"<div class=\"foot\">");
        out.extend_from_slice(l.footer.as_bytes());
        out.extend_from_slice(b"</div>\n");
    } else if !l.tag.is_empty() {
        out.extend_from_slice(b"<div class=\"foot\">");
        html_escape(out, l.tag.as_bytes());
        out.extend_from_slice(b"</div>\n");
    }
    if l.external_js.is_empty() {
        out.extend_from_slice(SCRIPT.as_bytes());
        out.extend_from_slice(if l.sorted {
            b"true);\n</script>\n"
        } else {
            b"false);\n</script>\n"
        });
    } else {
        out.extend_from_slice(b"<script type=\"text/javascript\" src=\"");
        html_escape(out, l.external_js.as_bytes());
        out.extend_from_slice(b"\"></script>\n");
    }
    out.extend_from_slice(b"</body>\n</html>\n");
}

/// `[{"name":..,"type":"dir"|"file","size":N,"mtime":N},..]`
pub fn json(out: &mut Vec<u8>, entries: &[Entry]) {
    out.push(b'[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_entry(out, e);
    }
    out.extend_from_slice(b"]\n");
}

/// One entry of the JSON listing.
fn json_entry(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(b"{\"name\":\"");
    json_escape(out, &e.name);
    out.extend_from_slice(if e.dir {
        b"\",\"type\":\"dir\",\"size\":"
    } else {
        b"\",\"type\":\"file\",\"size\":"
    });
    out.extend_from_slice(e.size.to_string().as_bytes());
    out.extend_from_slice(b",\"mtime\":");
    out.extend_from_slice(e.mtime.to_string().as_bytes());
    out.push(b'}');
}

/// show-readme / show-header value: "enable" is the default file name, "disable"
/// (or empty) none.
fn include_name<'a>(v: &'a str, default: &'a str) -> Option<&'a str> {
    match v {
        "" | "disable" => None,
        "enable" => Some(default),
        name => Some(name),
    }
}

/// Open the directory `rel` beneath the document root.
fn open_dir(dirfd: RawFd, rel: &[u8], follow: bool) -> Option<OwnedFd> {
    let flags = (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    crate::stat_cache::open_beneath(dirfd, rel, flags, follow, &mut Vec::new()).ok()
}

impl Dirlisting {
    fn excludes_for(&self, list: &[String]) -> &[Pattern] {
        self.excludes
            .iter()
            .find(|e| e.patterns == list)
            .map_or(&[], |e| &e.res)
    }

    /// The readme or header block for the page, read through the stat cache.
    fn include(
        &self,
        x: &mut HandlerCx,
        root: Root,
        name: &str,
        encode: bool,
        class: &str,
    ) -> Option<Vec<u8>> {
        let mut path: Vec<u8>;
        let found = if name.starts_with('/') {
            path = name.as_bytes().to_vec();
            x.env.cache.lookup(Root::Absolute, &path, x.env.clock.mono)
        } else {
            path = x.req.path.to_vec();
            if !path.ends_with(b"/") {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            x.env.cache.lookup(root, &path, x.env.clock.mono)
        };
        let Found::File { info, file_len } = found else {
            return None;
        };
        if file_len != path.len() || info.size == 0 {
            return None;
        }
        let len = info.size.min(INCLUDE_MAX) as usize;
        let mut raw = vec![0u8; len];
        match &info.body {
            Body::Mem(m) => raw.copy_from_slice(&m[..len]),
            Body::Fd(fd) => {
                let mut got = 0;
                while got < len {
                    match nix::sys::uio::pread(&**fd, &mut raw[got..], got as libc::off_t) {
                        Ok(n) if n > 0 => got += n,
                        _ => break,
                    }
                }
                raw.truncate(got);
            }
        }
        if !encode {
            return Some(raw);
        }
        let mut out = Vec::with_capacity(raw.len() + 32);
        out.extend_from_slice(b"<pre class=\"");
        out.extend_from_slice(class.as_bytes());
        out.extend_from_slice(b"\">");
        html_escape(&mut out, &raw);
        out.extend_from_slice(b"</pre>\n");
        Some(out)
    }

    /// A hash of what shapes the listing (for the cache key).
    fn shape(v: &View, json: bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            json,
            *v.dirlist_hide_dotfiles,
            v.dirlist_exclude,
            v.dirlist_external_css,
            v.dirlist_external_js,
            v.dirlist_encoding,
            v.dirlist_show_readme,
            *v.dirlist_hide_readme_file,
        )
            .hash(&mut h);
        (
            v.dirlist_show_header,
            *v.dirlist_hide_header_file,
            v.dirlist_set_footer,
            *v.dirlist_encode_readme,
            *v.dirlist_encode_header,
            *v.dirlist_auto_layout,
            *v.dirlist_sort,
            v.server_tag,
            v.document_root,
        )
            .hash(&mut h);
        h.finish()
    }
}

/// The 200 response with `body`, after `head` (begun, with Content-Type): adds
/// Content-Length and the connection's fields, runs `hooks` (None for a deferred
/// listing, whose head they edited in the handler) and serialises it.
#[allow(clippy::too_many_arguments)]
fn respond(
    out: &mut Out,
    head: &mut ResponseHead,
    hooks: Option<&Hooks>,
    clock: &Clock,
    tag: &str,
    keep_alive: bool,
    head_only: bool,
    body: &[u8],
    deflate: Option<&crate::mods::deflate::stream::Later>,
) {
    head.add_u64(b"Content-Length", body.len() as u64);
    head.finish(clock, tag, keep_alive);
    if let Some(h) = hooks {
        h.run(head);
    }
    // mod_deflate: the page compressed, when it qualifies and the client takes it.
    let zipped = deflate.and_then(|d| d.whole(head, body));
    head.write(out);
    if !head_only {
        out.put(zipped.as_deref().unwrap_or(body));
    }
}

/// A listing being made: the open directory, what is read, how to show it. It is
/// finished in the handler when the directory is small, else one step per
/// event-loop turn (a [`Job`]).
struct Listing {
    dir: Dir,
    follow: bool,
    hide_dotfiles: bool,
    hide: [Option<Vec<u8>>; 2],
    excludes: Vec<Pattern>,
    entries: Vec<Entry>,
    /// None while reading; then the next entry to render.
    rendered: Option<usize>,
    body: Vec<u8>,
    json: bool,
    sort: bool,
    uri: Vec<u8>,
    auto_layout: bool,
    external_css: String,
    external_js: String,
    encoding: String,
    footer: String,
    header: Option<Vec<u8>>,
    readme: Option<Vec<u8>>,
    mimetypes: Vec<(String, String)>,
    keep_alive: bool,
    head_only: bool,
    tag: String,
    /// Where the finished page is kept (dir-listing.cache): cache, key, max-age.
    cache: Option<(Rc<RefCell<Cache>>, CacheKey, u64)>,
    /// A deferred listing's head: status, Content-Type and the response_start
    /// hooks' edits.
    head: ResponseHead,
    /// mod_deflate's part, decided while the request was there (deferred only).
    deflate: Option<Box<crate::mods::deflate::stream::Later>>,
}

impl Listing {
    fn layout(&self) -> Layout<'_> {
        Layout {
            uri: &self.uri,
            auto_layout: self.auto_layout,
            external_css: &self.external_css,
            external_js: &self.external_js,
            encoding: &self.encoding,
            footer: &self.footer,
            tag: &self.tag,
            sorted: self.sort,
        }
    }

    fn ctype(&self) -> String {
        if self.json {
            "application/json".into()
        } else if self.encoding.is_empty() {
            "text/html".into()
        } else {
            format!("text/html; charset={}", self.encoding)
        }
    }

    /// Read up to `max` entries; true once all are read (and ordered).
    fn read(&mut self, max: usize) -> bool {
        let filter = Filter {
            hide_dotfiles: self.hide_dotfiles,
            hide: [self.hide[0].as_deref(), self.hide[1].as_deref()],
            excludes: &self.excludes,
        };
        if !read_some(&mut self.dir, &filter, self.follow, max, &mut self.entries) {
            return false;
        }
        if self.sort {
            sort(&mut self.entries);
        } else {
            group(&mut self.entries);
        }
        true
    }

    /// Render up to `max` rows; true once the page is complete.
    fn render(&mut self, max: usize) -> bool {
        let from = match self.rendered {
            Some(i) => i,
            None => {
                self.body.reserve(1024 + self.entries.len() * 200);
                if self.json {
                    self.body.push(b'[');
                } else {
                    let mut b = std::mem::take(&mut self.body);
                    page_head(&mut b, &self.layout(), self.header.as_deref());
                    self.body = b;
                }
                0
            }
        };
        let to = (from + max).min(self.entries.len());
        for (i, e) in self.entries[from..to].iter().enumerate() {
            if self.json {
                if from + i > 0 {
                    self.body.push(b',');
                }
                json_entry(&mut self.body, e);
            } else {
                let t = if e.dir {
                    ""
                } else {
                    crate::mime::content_type(&self.mimetypes, &e.name)
                };
                row(&mut self.body, e, t);
            }
        }
        self.rendered = Some(to);
        if to < self.entries.len() {
            return false;
        }
        if self.json {
            self.body.extend_from_slice(b"]\n");
        } else {
            let mut b = std::mem::take(&mut self.body);
            page_foot(&mut b, &self.layout(), self.readme.as_deref());
            self.body = b;
        }
        true
    }

    /// The response, once the page is complete, after `head` (begun, with
    /// Content-Type; `hooks` as [`respond`]).
    fn answer(
        &mut self,
        out: &mut Out,
        head: &mut ResponseHead,
        hooks: Option<&Hooks>,
        clock: &Clock,
    ) -> u16 {
        if let Some((cache, key, age)) = self.cache.take() {
            cache
                .borrow_mut()
                .put(key, clock.mono, age, &self.ctype(), &self.body);
        }
        let (tag, keep, head_only) = (&self.tag, self.keep_alive, self.head_only);
        let deflate = match (hooks, &self.deflate) {
            (Some(h), _) => h.deflate_later(),
            (None, d) => d.clone(),
        };
        respond(
            out,
            head,
            hooks,
            clock,
            tag,
            keep,
            head_only,
            &self.body,
            deflate.as_deref(),
        );
        200
    }
}

impl Job for Listing {
    fn step(&mut self, out: &mut Out, clock: &Clock) -> Option<u16> {
        if self.rendered.is_none() && !self.read(BATCH) {
            return None;
        }
        if !self.render(RENDER_BATCH) {
            return None;
        }
        let mut head = std::mem::take(&mut self.head);
        Some(self.answer(out, &mut head, None, clock))
    }
}

impl Module for Dirlisting {
    fn name(&self) -> &'static str {
        "mod_dirlisting"
    }

    fn hooks(&self) -> u16 {
        hook::HANDLER
    }

    fn handler(&self, x: &mut HandlerCx) -> Option<u16> {
        let v = x.view;
        if !*v.dirlist_activate
            || !matches!(x.req.head.method, Method::Get | Method::Head)
            || !x.req.path.ends_with(b"/")
        {
            return None;
        }
        let now = x.env.clock.mono;
        let (dirfd, id) = x.env.roots.get(v.document_root, now)?;
        let follow = *v.follow_symlink;
        let root = Root::Beneath {
            dirfd,
            id,
            symlinks: follow,
        };
        if !matches!(x.env.cache.lookup(root, x.req.path, now), Found::Dir) {
            return None;
        }
        // An index file is the static handler's to serve.
        for name in v.index_files.iter() {
            let mut p = if let Some(abs) = name.strip_prefix('/') {
                let mut p = b"/".to_vec();
                p.extend_from_slice(abs.as_bytes());
                p
            } else {
                let mut p = x.req.path.to_vec();
                p.extend_from_slice(name.as_bytes());
                p
            };
            if *v.force_lowercase_filenames {
                p.make_ascii_lowercase();
            }
            if let Found::File { file_len, .. } = x.env.cache.lookup(root, &p, now) {
                if file_len == p.len() {
                    return None;
                }
            }
        }
        let as_json = x.rq.query == b"json";
        let head_only = x.req.head.method == Method::Head;
        let version = x.req.head.version;
        let age = cache_age(v.dirlist_cache).unwrap_or(0);
        let key = (age > 0).then(|| {
            let mut k = v.document_root.as_bytes().to_vec();
            k.push(0);
            k.extend_from_slice(x.req.path);
            (k, Self::shape(v, as_json))
        });
        if let Some(k) = &key {
            if let Some((ctype, body)) = self.cache.borrow().get(k, now, age) {
                let e = &mut *x.env;
                let keep = x.req.keep_alive;
                e.head
                    .begin(version, 200)
                    .add(b"Content-Type", ctype.as_bytes());
                let tag = v.server_tag;
                let deflate = e.hooks.and_then(|h| h.deflate_later());
                let d = deflate.as_deref();
                respond(
                    e.out, e.head, e.hooks, e.clock, tag, keep, head_only, &body, d,
                );
                return Some(200);
            }
        }

        let readme = include_name(v.dirlist_show_readme, "README.txt");
        let header = include_name(v.dirlist_show_header, "HEADER.txt");
        let Some(dir) = open_dir(dirfd, x.req.path, follow)
            .and_then(|d| nix::dir::Dir::from_fd(d).ok().map(|d| d.into_iter()))
        else {
            return Some(crate::static_file::error(x.req, v, &mut *x.env, 403));
        };
        let (head_text, readme_text) = if as_json {
            (None, None)
        } else {
            (
                header.and_then(|h| self.include(x, root, h, *v.dirlist_encode_header, "header")),
                readme.and_then(|r| self.include(x, root, r, *v.dirlist_encode_readme, "readme")),
            )
        };
        let mut l = Listing {
            dir,
            follow,
            hide_dotfiles: *v.dirlist_hide_dotfiles,
            hide: [
                readme
                    .filter(|_| *v.dirlist_hide_readme_file)
                    .map(|n| n.as_bytes().to_vec()),
                header
                    .filter(|_| *v.dirlist_hide_header_file)
                    .map(|n| n.as_bytes().to_vec()),
            ],
            excludes: self.excludes_for(v.dirlist_exclude).to_vec(),
            entries: Vec::new(),
            rendered: None,
            body: Vec::new(),
            json: as_json,
            sort: *v.dirlist_sort,
            uri: x.rq.path.clone(),
            auto_layout: *v.dirlist_auto_layout,
            external_css: v.dirlist_external_css.clone(),
            external_js: v.dirlist_external_js.clone(),
            encoding: v.dirlist_encoding.clone(),
            footer: v.dirlist_set_footer.clone(),
            header: head_text,
            readme: readme_text,
            mimetypes: v.mimetypes.clone(),
            keep_alive: x.req.keep_alive,
            head_only,
            tag: v.server_tag.clone(),
            cache: key.map(|k| (Rc::clone(&self.cache), k, age)),
            head: ResponseHead::default(),
            deflate: None,
        };
        // A small directory is answered at once; a large one over the next turns
        // (not with a request body to read: that path holds the response itself).
        let mut done = l.read(FIRST_BATCH);
        if !done && x.req.head.body != crate::request::BodyKind::None {
            while !l.read(BATCH) {}
            done = true;
        }
        let e = &mut *x.env;
        if done {
            l.render(usize::MAX);
            e.head
                .begin(version, 200)
                .add(b"Content-Type", l.ctype().as_bytes());
            return Some(l.answer(e.out, e.head, e.hooks, e.clock));
        }
        // The response_start hooks edit the head now, as for any response (the
        // request's context is gone when the listing is done).
        let ctype = l.ctype();
        l.head
            .begin(version, 200)
            .add(b"Content-Type", ctype.as_bytes());
        if let Some(h) = e.hooks {
            h.run(&mut l.head);
            l.deflate = h.deflate_later();
        }
        x.rq.job.replace(Some(Box::new(l)));
        Some(200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_lighttpd() {
        let s = |n| {
            let mut o = Vec::new();
            size_text(&mut o, n);
            String::from_utf8(o).expect("utf8")
        };
        assert_eq!(s(0), "0.0K");
        assert_eq!(s(1), "0.1K");
        assert_eq!(s(1023), "0.9K");
        assert_eq!(s(2048), "2.0K");
        assert_eq!(s(1536), "1.5K");
        assert_eq!(s(1 << 20), "1.0M");
        assert_eq!(s(5 << 30), "5.0G");
        assert_eq!(s(1000 * 1024), "0.9M");
    }

    #[test]
    fn hostile_names_cannot_add_markup() {
        let e = Entry {
            name: b"<script>alert(\"x\")</script>'\n&.txt".to_vec(),
            dir: false,
            size: 5,
            mtime: 0,
        };
        let mut o = Vec::new();
        row(&mut o, &e, "text/plain");
        let s = String::from_utf8(o).expect("utf8");
        assert!(!s.contains("<script"), "{s}");
        assert!(!s.contains("\"x\""), "{s}");
        assert!(
            s.contains("href=\"%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E%27%0A%26.txt\""),
            "{s}"
        );
        assert!(s.contains(">&#x3C;script&#x3E;alert(&#x22;x&#x22;)&#x3C;/script&#x3E;&#x27;&#x0A;&#x26;.txt</a>"), "{s}");
        let mut j = Vec::new();
        json(&mut j, &[e]);
        assert_eq!(
            String::from_utf8(j).expect("utf8"),
            "[{\"name\":\"<script>alert(\\\"x\\\")</script>'\\n&.txt\",\"type\":\"file\",\"size\":5,\"mtime\":0}]\n"
        );
    }

    #[test]
    fn filter_and_order() {
        let res = [Pattern::new(r"\.bak$").expect("re")];
        let f = Filter {
            hide_dotfiles: true,
            hide: [Some(b"README.txt"), None],
            excludes: &res,
        };
        assert!(!f.keep(b"."));
        assert!(!f.keep(b".."));
        assert!(!f.keep(b".git"));
        assert!(!f.keep(b"README.txt"));
        assert!(!f.keep(b"x.bak"));
        assert!(f.keep(b"x.bak2"));
        let mut v = vec![
            Entry {
                name: b"b".to_vec(),
                dir: false,
                size: 0,
                mtime: 0,
            },
            Entry {
                name: b"z".to_vec(),
                dir: true,
                size: 0,
                mtime: 0,
            },
            Entry {
                name: b"a".to_vec(),
                dir: false,
                size: 0,
                mtime: 0,
            },
            Entry {
                name: b"c".to_vec(),
                dir: true,
                size: 0,
                mtime: 0,
            },
        ];
        sort(&mut v);
        let names: Vec<_> = v.iter().map(|e| e.name[0]).collect();
        assert_eq!(names, b"czab");
    }

    #[test]
    fn cache_values() {
        assert_eq!(cache_age(&Value::Array(vec![])), Ok(0));
        let v = Value::Array(vec![
            (Some("path".into()), Value::Str("/tmp/x".into())),
            (Some("max-age".into()), Value::Int(3)),
        ]);
        assert_eq!(cache_age(&v), Ok(3));
        let v = Value::Array(vec![(Some("path".into()), Value::Str("/tmp/x".into()))]);
        assert_eq!(cache_age(&v), Ok(15));
        assert!(cache_age(&Value::Str("x".into())).is_err());
    }
}
