//! The HTML pages of mod_status: status.status-url (the whole server's counts,
//! its scoreboard, and each live worker's connections) and status.config-url
//! (what the server runs with). Laid out as lighttpd's pages are (the same
//! sections and class names), written here; every value from a request or the
//! configuration is escaped.

use super::{Snapshot, WorkerView};
use crate::mods::dirlisting::html_escape as esc;
use std::fmt::Write as _;
use std::io::Write as _;
use wick_proto::counters::STATES;

/// Connections per scoreboard line.
const PER_LINE: usize = 50;

pub(super) struct StatusPage<'a> {
    pub snap: &'a Snapshot,
    pub tag: &'a str,
    /// The request's Host, and server.name.
    pub host: &'a [u8],
    pub server_name: &'a str,
    pub query: &'a [u8],
    /// status.enable-sort: the connection tables sort by a click on a column.
    pub sort: bool,
}

/// `v` with k, M, G ... for `base` (1000 or 1024), as lighttpd writes amounts.
fn scaled(v: f64, base: f64, decimals: bool) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut v = v;
    let mut i = 0;
    while v > base && i + 1 < UNITS.len() {
        v /= base;
        i += 1;
    }
    if decimals {
        format!("{v:.2} {}", UNITS[i])
    } else {
        format!("{} {}", v as u64, UNITS[i])
    }
}

/// Seconds as "2 days 3 hours 4 min 5 s" (leading zero parts left out).
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut o = String::new();
    if d > 0 {
        let _ = write!(o, "{d} days ");
    }
    if h > 0 {
        let _ = write!(o, "{h} hours ");
    }
    if m > 0 {
        let _ = write!(o, "{m} min ");
    }
    let _ = write!(o, "{s} s");
    o
}

fn text(o: &mut Vec<u8>, s: &[u8]) {
    esc(o, s);
}

/// `?refresh=N` (N > 0, at most a week): the page reloads itself.
fn refresh(query: &[u8]) -> Option<u64> {
    let digits = query.strip_prefix(b"refresh=")?;
    let n: u64 = std::str::from_utf8(digits)
        .ok()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    (n > 0).then_some(n.min(604_800))
}

const STYLE: &str = "  <style>\n\
    table.status { border: black solid thin; }\n\
    td { white-space: nowrap; }\n\
    td.int { background-color: #f0f0f0; text-align: right }\n\
    td.string { background-color: #f0f0f0; text-align: left }\n\
    th.status { background-color: black; color: white; font-weight: bold; }\n\
    th.status a { color: white; text-decoration: none; display: block; }\n\
  </style>\n";

/// Sorting for status.enable-sort: a click on a column header orders the
/// table's rows by that column, numbers as numbers; again reverses.
const SORT: &str = "  <script>\n\
function sortBy(th) {\n\
  var table = th.closest('table'), col = th.cellIndex;\n\
  var rows = Array.prototype.slice.call(table.rows, 1);\n\
  var down = th.dataset.dir !== 'down';\n\
  th.dataset.dir = down ? 'down' : 'up';\n\
  var key = function (r) { var t = r.cells[col].textContent; var n = parseFloat(t); return r.cells[col].className === 'int' && !isNaN(n) ? n : t.toLowerCase(); };\n\
  rows.sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (down ? 1 : -1); });\n\
  rows.forEach(function (r) { table.tBodies[0].appendChild(r); });\n\
  return false;\n\
}\n\
  </script>\n";

impl StatusPage<'_> {
    pub fn render(&self) -> Vec<u8> {
        let s = self.snap;
        let t = &s.totals;
        let mut o: Vec<u8> = Vec::with_capacity(8192);
        o.extend_from_slice(
            b"<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n  <title>Status</title>\n",
        );
        if let Some(n) = refresh(self.query) {
            let _ = writeln!(o, "  <meta http-equiv=\"refresh\" content=\"{n}\">");
        }
        o.extend_from_slice(STYLE.as_bytes());
        if self.sort {
            o.extend_from_slice(SORT.as_bytes());
        }
        o.extend_from_slice(b" </head>\n<body>\n<h1>Server-Status");
        if !self.tag.is_empty() {
            o.extend_from_slice(b" (");
            text(&mut o, self.tag.as_bytes());
            o.push(b')');
        }
        o.extend_from_slice(b"</h1>\n<table summary=\"status\" class=\"status\">\n");
        o.extend_from_slice(b"<tr><td>Hostname</td><td class=\"string\">");
        text(&mut o, self.host);
        if !self.server_name.is_empty() && self.server_name.as_bytes() != self.host {
            o.extend_from_slice(b" (");
            text(&mut o, self.server_name.as_bytes());
            o.push(b')');
        }
        o.extend_from_slice(b"</td></tr>\n");
        let uptime = s.uptime();
        let per_sec = |v: u64| v as f64 / uptime.max(1) as f64;
        let row = |o: &mut Vec<u8>, k: &str, v: &str| {
            let _ = writeln!(o, "<tr><td>{k}</td><td class=\"string\">{v}</td></tr>");
        };
        row(&mut o, "Uptime", &duration(uptime));
        row(
            &mut o,
            "Started at",
            &wick_proto::log::timestamp(s.started as i64),
        );
        row(
            &mut o,
            "Workers",
            &format!("{} (generation {} serving)", t.workers, s.generation),
        );
        o.extend_from_slice(b"<tr><th colspan=\"2\">absolute (since start)</th></tr>\n");
        row(
            &mut o,
            "Requests",
            &format!("{}req", scaled(t.requests_total() as f64, 1000.0, false)),
        );
        row(
            &mut o,
            "Traffic",
            &format!("{}byte", scaled(t.bytes_out as f64, 1024.0, true)),
        );
        o.extend_from_slice(b"<tr><th colspan=\"2\">average (since start)</th></tr>\n");
        row(
            &mut o,
            "Requests",
            &format!(
                "{}req/s",
                scaled(per_sec(t.requests_total()), 1000.0, false)
            ),
        );
        row(
            &mut o,
            "Traffic",
            &format!("{}byte/s", scaled(per_sec(t.bytes_out), 1024.0, true)),
        );
        o.extend_from_slice(b"<tr><th colspan=\"2\">average (5s sliding average)</th></tr>\n");
        row(
            &mut o,
            "Requests",
            &format!("{}req/s", scaled(s.avg5.0 as f64, 1000.0, false)),
        );
        row(
            &mut o,
            "Traffic",
            &format!("{}byte/s", scaled(s.avg5.1 as f64, 1024.0, true)),
        );
        o.extend_from_slice(b"</table>\n<hr />\n<pre>\n");
        self.scoreboard(&mut o);
        o.extend_from_slice(b"</pre><hr />\n<h2>Connections</h2>\n");
        for w in &s.workers {
            self.worker(&mut o, w);
        }
        o.extend_from_slice(b"</body>\n</html>\n");
        o
    }

    /// The busy connections' letters, 50 a line, and how many are in each state.
    fn scoreboard(&self, o: &mut Vec<u8>) {
        let t = &self.snap.totals;
        let states = t.states_now();
        let _ = writeln!(o, "<b>{} connections</b>", t.busy());
        let mut n = 0;
        for (&(letter, _), &count) in STATES.iter().zip(&states) {
            for _ in 0..count {
                o.push(letter as u8);
                n += 1;
                if n % PER_LINE == 0 {
                    o.push(b'\n');
                }
            }
        }
        o.extend_from_slice(b"\n\n<table>\n");
        for (&(letter, name), &count) in STATES.iter().zip(&states) {
            let _ = writeln!(
                o,
                "<tr><td style=\"text-align:right\">{count}</td><td>&nbsp;&nbsp;{letter} = {name}</td></tr>"
            );
        }
        o.extend_from_slice(b"</table>\n");
    }

    fn head(&self, o: &mut Vec<u8>, name: &str) {
        if self.sort {
            let _ = write!(
                o,
                "<th class=\"status\"><a href=\"#\" onclick=\"return sortBy(this.parentNode)\">{name}</a></th>"
            );
        } else {
            let _ = write!(o, "<th class=\"status\">{name}</th>");
        }
    }

    /// One live worker's connections (the first `LISTED` of them, as of its
    /// last second).
    fn worker(&self, o: &mut Vec<u8>, w: &WorkerView) {
        let _ = writeln!(
            o,
            "<h3>worker {} (pid {}, generation {}): {} requests</h3>",
            w.worker_id, w.pid, w.generation, w.requests
        );
        let Some((states, list)) = &w.census else {
            o.extend_from_slice(b"<p>(busy: not read)</p>\n");
            return;
        };
        let open: u64 = states.iter().sum();
        let _ = writeln!(
            o,
            "<p>{open} of {} connections open{}</p>",
            w.max_conns,
            if open > list.len() as u64 {
                format!(", the first {} listed", list.len())
            } else {
                String::new()
            }
        );
        o.extend_from_slice(b"<table summary=\"status\" class=\"status\">\n<tr>");
        for h in ["Client IP", "Port", "State", "Time", "Requests", "TLS"] {
            self.head(o, h);
        }
        o.extend_from_slice(b"</tr>\n");
        for c in list {
            let state = STATES
                .get(usize::from(c.state))
                .map_or("(unknown)", |s| s.1);
            let _ = writeln!(
                o,
                "<tr><td class=\"string\">{}</td><td class=\"int\">{}</td><td class=\"string\">{state}</td><td class=\"int\">{}</td><td class=\"int\">{}</td><td class=\"string\">{}</td></tr>",
                c.ip,
                c.port,
                (self.snap.mono & 0xffff_ffff).saturating_sub(c.since),
                c.requests,
                if c.tls { "yes" } else { "no" }
            );
        }
        o.extend_from_slice(b"</table>\n");
    }
}

/// status.config-url: the features, the event handler, the modules in force.
pub(super) fn config(tag: &str, cfg: &wick_conf::Config, s: &Snapshot) -> Vec<u8> {
    let mut o: Vec<u8> = Vec::with_capacity(2048);
    o.extend_from_slice(
        b"<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n  <title>Status</title>\n </head>\n <body>\n",
    );
    if !tag.is_empty() {
        o.extend_from_slice(b"  <h1>");
        text(&mut o, tag.as_bytes());
        o.extend_from_slice(b"</h1>\n");
    }
    o.extend_from_slice(b"  <table summary=\"status\" border=\"1\">\n");
    let section = |o: &mut Vec<u8>, name: &str| {
        let _ = writeln!(o, "   <tr>\n    <th colspan=\"2\">{name}</th>\n   </tr>");
    };
    let row = |o: &mut Vec<u8>, k: &str, v: &[u8]| {
        let _ = write!(o, "   <tr>\n    <td><b>{k}</b></td>\n    <td>");
        o.extend_from_slice(v);
        o.extend_from_slice(b"</td>\n   </tr>\n");
    };
    section(&mut o, "Server-Features");
    row(&mut o, "RegEx Conditionals", b"enabled");
    section(&mut o, "Network Engine");
    row(&mut o, "fd-Event-Handler", b"linux-sysepoll");
    section(&mut o, "Config-File-Settings");
    let mut mods = Vec::new();
    for (i, m) in cfg.server.effective_modules().iter().enumerate() {
        if i > 0 {
            mods.extend_from_slice(b"<br />");
        }
        text(&mut mods, m.as_bytes());
    }
    row(&mut o, "Loaded Modules", &mods);
    row(
        &mut o,
        "Workers per generation",
        cfg.server.max_worker.max(1).to_string().as_bytes(),
    );
    row(
        &mut o,
        "Generation serving",
        s.generation.to_string().as_bytes(),
    );
    o.extend_from_slice(b"  </table>\n </body>\n</html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_times() {
        assert_eq!(scaled(999.0, 1000.0, false), "999 ");
        assert_eq!(scaled(12_345.0, 1000.0, false), "12 k");
        assert_eq!(scaled(2048.0, 1024.0, true), "2.00 k");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(90_061), "1 days 1 hours 1 min 1 s");
        assert_eq!(refresh(b"refresh=5"), Some(5));
        assert_eq!(refresh(b"refresh=0"), None);
        assert_eq!(refresh(b"refresh=99999999"), Some(604_800));
        assert_eq!(refresh(b"x"), None);
    }
}
