//! mod_status and the metrics endpoint against the real wickd: counts over
//! several workers and across a reload, `?auto` as lighttpd's parsers read it,
//! the Prometheus text checked line by line, a seccomp kill named and counted.

mod common;
// (the certificate and client helpers of tests/tls.rs; this suite uses a few)
#[path = "common/tls.rs"]
mod tls_kit;

use common::fcgi::Responder;
use common::{children_of, cmdline, curl, is_root, skip_unless_root, wait_until, Server};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

const CONF: &str = r#"
server.bind = "127.0.0.1"
server.port = @PORT@
server.document-root = "@DOCROOT@"
server.errorlog = "@DIR@/error.log"
server.max-worker = 2
server.modules = ("mod_access", "mod_status")
status.status-url = "/server-status"
status.config-url = "/server-config"
status.statistics-url = "/server-statistics"
status.metrics-url = "/metrics"
$HTTP["remoteip"] != "127.0.0.1" { url.access-deny = ("") }
"#;

fn start(conf: &str) -> Server {
    Server::start_with(conf, &[], |dir| {
        std::fs::write(dir.join("www/a.txt"), "x".repeat(1024)).expect("write");
    })
}

/// `?auto`: its lines as (key, value), checked against lighttpd's format.
fn auto(s: &Server) -> Vec<(String, String)> {
    let r = s.get("/server-status?auto");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let text = r.text();
    assert!(text.ends_with('\n'), "{text:?}");
    let lines: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not key: value: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let keys: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Total Accesses",
            "Total kBytes",
            "Uptime",
            "BusyServers",
            "IdleServers",
            "Scoreboard"
        ],
        "{text}"
    );
    for (k, v) in &lines[..5] {
        assert!(v.parse::<u64>().is_ok(), "{k}: {v:?} is not a number");
    }
    // The scoreboard: one of lighttpd's state letters per connection, then `_`
    // for each free place: Busy + Idle of them.
    let board = &lines[5].1;
    let num = |k: usize| lines[k].1.parse::<usize>().expect("number");
    assert!(
        board.chars().all(|c| ".qrQRhsWSECk_".contains(c)),
        "{board:?}"
    );
    assert_eq!(board.len(), num(3) + num(4), "{text}");
    assert_eq!(
        board.chars().filter(|&c| c != '_').count(),
        num(3),
        "{text}"
    );
    lines
}

fn auto_value(lines: &[(String, String)], key: &str) -> u64 {
    lines
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {lines:?}"))
}

/// A series: its name and labels.
type Series = (String, BTreeMap<String, String>);

/// The metrics page, checked against the text exposition format 0.0.4, as
/// (name, labels) → value.
fn metrics(s: &Server) -> BTreeMap<Series, f64> {
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&r.text())
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || (colon && f == ':'))
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || (colon && x == ':'))
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("sample value {v:?} is not a float")),
    }
}

/// `{a="x",b="y"}` (escapes `\\`, `\"`, `\n`) and the rest of the line.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut out = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return (out, s);
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return (out, r);
        }
        let (name, r) = rest.split_once("=\"").expect("label=\"");
        assert!(is_name(name, false), "label name {name:?}");
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next().expect("unterminated label value") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape").1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => panic!("bad escape \\{c}"),
                },
                (_, '\n') => panic!("newline in a label value"),
                (_, c) => value.push(c),
            }
        };
        assert!(
            out.insert(name.to_string(), value).is_none(),
            "label {name} twice"
        );
        rest = &r[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample belongs to, given the families' types.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            ) {
                return base;
            }
        }
    }
    name
}

fn parse_exposition(text: &str) -> BTreeMap<Series, f64> {
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: Vec<String> = Vec::new();
    let mut done_families: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut f = c.splitn(3, ' ');
            let (kw, name, rest) = (
                f.next().unwrap_or(""),
                f.next().expect("name"),
                f.next().unwrap_or(""),
            );
            assert!(is_name(name, true), "{line}");
            match kw {
                "HELP" => {
                    assert!(!helps.contains(&name.to_string()), "HELP twice: {name}");
                    assert!(!rest.contains('\n'));
                    helps.push(name.to_string());
                }
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest),
                        "{line}"
                    );
                    assert!(
                        types.insert(name.to_string(), rest.to_string()).is_none(),
                        "TYPE twice: {name}"
                    );
                    assert!(
                        !done_families.contains(&name.to_string())
                            && current.as_deref() != Some(name),
                        "TYPE after samples of {name}"
                    );
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let name_end = line.find(['{', ' ']).expect("sample without value");
        let name = &line[..name_end];
        assert!(is_name(name, true), "metric name {name:?}");
        let (labels, rest) = parse_labels(&line[name_end..]);
        let mut parts = rest.trim_start_matches(' ').split(' ');
        let value = parse_value(parts.next().expect("value"));
        if let Some(ts) = parts.next() {
            ts.parse::<i64>().expect("timestamp");
        }
        let family = family_of(name, &types).to_string();
        assert!(types.contains_key(&family), "no TYPE before {name}");
        if current.as_deref() != Some(family.as_str()) {
            assert!(
                !done_families.contains(&family),
                "samples of {family} are not together"
            );
            if let Some(prev) = current.replace(family.clone()) {
                done_families.push(prev);
            }
        }
        let kind = types[&family].as_str();
        if kind == "counter" {
            assert!(value >= 0.0, "a negative counter: {line}");
        }
        if name.ends_with("_bucket") && kind == "histogram" {
            assert!(labels.contains_key("le"), "bucket without le: {line}");
        }
        assert!(
            out.insert((name.to_string(), labels), value).is_none(),
            "series twice: {line}"
        );
    }
    // Histograms: buckets ascending by le, cumulative, +Inf last and == _count.
    for (fam, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let bucket = format!("{fam}_bucket");
        let mut buckets: Vec<(f64, f64)> = out
            .iter()
            .filter(|((n, _), _)| *n == bucket)
            .map(|((_, l), v)| (parse_value(&l["le"]), *v))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{fam}: not cumulative"
        );
        let last = buckets.last().expect("buckets");
        assert!(last.0.is_infinite(), "{fam}: no +Inf bucket");
        let count = out[&(format!("{fam}_count"), BTreeMap::new())];
        assert_eq!(last.1, count, "{fam}: +Inf bucket != _count");
        assert!(out.contains_key(&(format!("{fam}_sum"), BTreeMap::new())));
    }
    out
}

fn get(m: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let l: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.get(&(name.to_string(), l)).copied().unwrap_or(0.0)
}

/// The workers of the status page: (worker id, generation, requests).
fn page_workers(s: &Server) -> Vec<(u64, u64, u64)> {
    let r = s.get("/server-status");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html"));
    r.text()
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("<h3>worker ")?;
            let (id, rest) = l.split_once(" (pid ")?;
            let (_, rest) = rest.split_once(", generation ")?;
            let (gen, rest) = rest.split_once("): ")?;
            let n = rest.strip_suffix(" requests</h3>")?;
            Some((id.parse().ok()?, gen.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

/// One request on a connection of its own (so that both workers take some).
fn raw(s: &Server, req: &str) -> String {
    let mut c = s.connect();
    c.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn counters_sum_a_known_sequence_over_two_workers() {
    let s = start(CONF);
    // Until both workers have answered some (the kernel hands connections to
    // one at a time; a worker re-arms its listener every 16 accepts).
    let mut gets = 0u64;
    let both = wait_until(Duration::from_secs(20), || {
        for _ in 0..20 {
            let r = raw(
                &s,
                "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            assert!(r.starts_with("HTTP/1.1 200"), "{r}");
            gets += 1;
        }
        let w = page_workers(&s);
        gets += 1; // that page is a GET 200 too
        w.len() == 2 && w.iter().all(|&(_, _, n)| n > 0)
    });
    assert!(
        both,
        "one worker answered everything: {:?}",
        page_workers(&s)
    );
    // A known sequence of other kinds on top.
    for _ in 0..3 {
        let r = raw(
            &s,
            "HEAD /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    for _ in 0..2 {
        let r = raw(
            &s,
            "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    }
    let r = raw(
        &s,
        "DELETE /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 405") || r.starts_with("HTTP/1.1 501"),
        "{r}"
    );
    let bad = raw(&s, "GET /a.txt HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // Three keep-alive requests on one connection.
    let mut c = common::wire::Conn::new(s.port);
    for _ in 0..3 {
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.response().expect("response").status, 200);
    }
    drop(c);

    let lines = auto(&s);
    // Everything so far, the status pages included; not this ?auto itself
    // (counted once its answer is made, as lighttpd counts it a second later).
    let total = gets + 3 + 2 + 1 + 1 + 3;
    assert_eq!(auto_value(&lines, "Total Accesses"), total, "{lines:?}");
    assert!(
        auto_value(&lines, "Total kBytes") >= (gets + 3) * 1024 / 1024,
        "{lines:?}"
    );
    let m = metrics(&s);
    let req = |method: &str, code: &str| {
        get(
            &m,
            "wickd_requests_total",
            &[("method", method), ("code", code)],
        )
    };
    assert_eq!(req("GET", "2xx") as u64, gets + 3 + 1, "{m:?}");
    assert_eq!(req("HEAD", "2xx"), 3.0);
    assert_eq!(req("GET", "4xx"), 3.0, "two 404 and the 400");
    assert_eq!(req("DELETE", "4xx") + req("DELETE", "5xx"), 1.0);
    let all: f64 = m
        .iter()
        .filter(|((n, _), _)| n == "wickd_requests_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(all as u64, total + 1, "the ?auto request counted by now");
    assert_eq!(
        get(&m, "wickd_request_duration_seconds_count", &[]) as u64,
        total + 1
    );
    assert!(get(&m, "wickd_sent_bytes_total", &[]) >= ((gets + 3) * 1024) as f64);
    assert!(get(&m, "wickd_received_bytes_total", &[]) > 0.0);
    // One connection for each request but the three keep-alive ones, and each
    // page asked for on its own (curl): auto, metrics.
    assert!(get(&m, "wickd_connections_accepted_total", &[]) as u64 >= total - 2);
    assert_eq!(get(&m, "wickd_workers", &[]), 2.0);
    // Both workers' numbers are in the totals: the page lists each.
    let w = page_workers(&s);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(
        w.iter().map(|&(_, _, n)| n).sum::<u64>(),
        total + 2,
        "the workers' counts add up to the whole (with ?auto and /metrics): {w:?}"
    );
}

#[test]
fn auto_and_json_read_as_lighttpd_writes_them() {
    let s = start(CONF);
    // Two connections held open: both count as busy.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = common::wire::Conn::new(s.port);
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.response().expect("response").status, 200);
        held.push(c);
    }
    let lines = auto(&s);
    // The two held connections and this request's own.
    assert_eq!(auto_value(&lines, "BusyServers"), 3, "{lines:?}");
    assert!(auto_value(&lines, "Uptime") < 60);
    // After a second the workers' census has them as keep-alive.
    std::thread::sleep(Duration::from_millis(2100));
    let lines = auto(&s);
    let board = &lines[5].1;
    assert!(board.matches('k').count() >= 2, "{board}");
    drop(held);

    let r = s.get("/server-status?json");
    assert_eq!(r.header("content-type"), Some("application/javascript"));
    let t = r.text();
    assert!(t.starts_with("{\n\t\"RequestsTotal\": "), "{t}");
    for key in [
        "RequestsTotal",
        "TrafficTotal",
        "Uptime",
        "BusyServers",
        "IdleServers",
        "RequestAverage5s",
        "TrafficAverage5s",
    ] {
        assert!(t.contains(&format!("\"{key}\":")), "{key} in {t}");
    }
    assert!(t.ends_with("\n}"), "{t}");
    // JSONP: a callback of letters, digits and _ wraps it; anything else does not.
    let r = s.get("/server-status?jsonp=cb_1");
    assert!(r.text().starts_with("cb_1({") && r.text().ends_with("});"));
    let r = s.get("/server-status?jsonp=a%3Cb");
    assert!(r.text().starts_with('{'));
    // The config page lists the modules in force.
    let r = s.get("/server-config");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("mod_status"), "{}", r.text());
    // No backends: the statistics page has nothing to say (204, as lighttpd).
    assert_eq!(s.get("/server-statistics").status, 204);
    // HEAD: the length of the page, not the page.
    let r = curl(&s.url("/server-status?auto"), &["-I"]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[test]
fn the_pages_are_protected_as_any_path() {
    // mod_access denies the metrics path to everyone here.
    let conf = CONF.replace(
        "$HTTP[\"remoteip\"] != \"127.0.0.1\" { url.access-deny = (\"\") }",
        "$HTTP[\"url\"] =~ \"^/(metrics|server-)\" { url.access-deny = (\"\") }",
    );
    let s = start(&conf);
    assert_eq!(s.get("/metrics").status, 403);
    assert_eq!(s.get("/server-status?auto").status, 403);
    assert_eq!(s.get("/a.txt").status, 200);
}

#[test]
fn without_mod_status_the_urls_are_files() {
    let conf = CONF.replace("\"mod_access\", \"mod_status\"", "\"mod_access\"");
    let s = start(&conf);
    assert_eq!(s.get("/server-status?auto").status, 404);
    assert_eq!(s.get("/metrics").status, 404);
    let log = s.error_log();
    assert!(
        log.contains(
            "unknown config-key: status.metrics-url (ignored); mod_status is not in server.modules"
        ),
        "{log}"
    );
}

#[test]
fn counters_continue_across_sigusr1() {
    let s = start(CONF);
    for _ in 0..10 {
        assert_eq!(s.get("/a.txt").status, 200);
    }
    let before = auto_value(&auto(&s), "Total Accesses");
    assert_eq!(before, 10);
    let m = metrics(&s);
    assert_eq!(get(&m, "wickd_config_generation", &[]), 1.0);
    assert_eq!(get(&m, "wickd_reloads_total", &[("outcome", "ok")]), 0.0);
    let log_has = |n: usize| {
        s.error_log()
            .matches("graceful restart: generation ")
            .count()
            >= n
    };
    s.signal(nix::sys::signal::Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(15), || log_has(1)),
        "{}",
        s.error_log()
    );
    // The old generation's workers leave; their counts stay.
    assert!(
        wait_until(Duration::from_secs(15), || page_workers(&s)
            .iter()
            .all(|&(_, gen, _)| gen == 2)),
        "{:?}",
        page_workers(&s)
    );
    let m = metrics(&s);
    let counted: f64 = m
        .iter()
        .filter(|((n, _), _)| n == "wickd_requests_total")
        .map(|(_, v)| v)
        .sum();
    // The ten, the ?auto, the page polls: nothing went back.
    assert!(
        counted as u64 > before,
        "counts went back: {counted} <= {before}"
    );
    assert_eq!(get(&m, "wickd_config_generation", &[]), 2.0);
    assert_eq!(get(&m, "wickd_reloads_total", &[("outcome", "ok")]), 1.0);
    assert!(get(&m, "wickd_last_reload_timestamp_seconds", &[]) > 0.0);
    assert_eq!(get(&m, "wickd_workers", &[]), 2.0);
    for _ in 0..5 {
        assert_eq!(s.get("/a.txt").status, 200);
    }
    let after = auto_value(&auto(&s), "Total Accesses");
    assert_eq!(
        after,
        counted as u64 + 1 + 5,
        "the new generation counts on from the old (with /metrics and five more)"
    );
    // A reload that fails (a broken config) is counted as such.
    let conf = std::fs::read_to_string(&s.conf).expect("conf");
    std::fs::write(&s.conf, format!("{conf}\nserver.port = \"nope\n")).expect("write");
    s.signal(nix::sys::signal::Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(15), || s
            .error_log()
            .contains("graceful restart failed")),
        "{}",
        s.error_log()
    );
    let m = metrics(&s);
    assert_eq!(
        get(&m, "wickd_reloads_total", &[("outcome", "failed")]),
        1.0
    );
    assert_eq!(get(&m, "wickd_config_generation", &[]), 2.0);
}

#[test]
fn metrics_text_is_valid_with_a_backend() {
    let be = Responder::tcp();
    let conf = format!(
        "{CONF}\nserver.modules += (\"mod_fastcgi\")\nfastcgi.server = ( \".php\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 1, \"disable-time\" => 60 ), ( \"host\" => \"127.0.0.1\", \"port\" => {} ) ) )\n",
        be.port
    );
    let s = Server::start_with(&conf, &[], |dir| {
        std::fs::write(dir.join("www/t.php"), "source").expect("write");
    });
    // Every request reaches the live backend: the dead one, first in the list,
    // is tried by each worker once, then skipped for its disable-time.
    for _ in 0..6 {
        let r = s.get("/t.php?mode=length");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let m = metrics(&s);
    let live = format!("127.0.0.1:{}", be.port);
    let dead = "127.0.0.1:1";
    let b = |name: &str, host: &str| get(&m, name, &[("backend", host)]);
    assert_eq!(
        b("wickd_backend_requests_total", &live) + b("wickd_backend_requests_total", dead),
        6.0 + b("wickd_backend_connect_failures_total", dead)
    );
    assert_eq!(b("wickd_backend_response_seconds_count", &live), 6.0);
    assert!(b("wickd_backend_response_seconds_sum", &live) > 0.0);
    assert_eq!(b("wickd_backend_active_requests", &live), 0.0);
    assert!(
        b("wickd_backend_connect_failures_total", dead) >= 1.0,
        "{m:?}"
    );
    assert_eq!(b("wickd_backend_up", dead), 0.0);
    assert!(b("wickd_backend_disabled_workers", dead) >= 1.0);
    assert_eq!(b("wickd_backend_up", &live), 1.0);
    // lighttpd's statistics page has the same numbers.
    let st = s.get("/server-statistics");
    assert_eq!(st.status, 200);
    let text = st.text();
    assert!(
        text.contains(&format!("fastcgi.backend.{live}.connected: ")),
        "{text}"
    );
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "statistics are sorted by name");
    for (name, v) in [
        "wickd_request_duration_seconds_count",
        "wickd_sent_bytes_total",
        "wickd_start_time_seconds",
    ]
    .iter()
    .map(|n| (n, get(&m, n, &[])))
    {
        assert!(v > 0.0, "{name}");
    }
    assert_eq!(
        get(
            &m,
            "wickd_restarts_total",
            &[("role", "worker"), ("cause", "seccomp")]
        ),
        0.0
    );
}

#[test]
fn tls_handshakes_are_counted_full_resumed_and_failed() {
    let ca = tls_kit::Ca::new("wick status CA");
    let leaf = ca.server(&["a.test"]);
    let conf = format!(
        "{CONF}\nserver.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\nssl.pemfile = \"@DIR@/a.pem\"\n"
    );
    let s = Server::start_with(&conf, &[], |d| {
        leaf.write_pem(&d.join("a.pem"));
        std::fs::write(d.join("www/a.txt"), "x").expect("write");
    });
    // One client with one session store: the first handshake is full, those
    // after it offer the ticket the server gave (any worker takes it).
    let store = std::sync::Arc::new(tls_kit::TaggedStore::default());
    let cfg = tls_kit::client_config(&tls_kit::ClientSpec {
        version: Some(rustls::ProtocolVersion::TLSv1_3),
        ca: Some(&ca),
        store: Some(store.clone()),
        ..tls_kit::ClientSpec::default()
    });
    let mut kinds = Vec::new();
    for i in 0..3 {
        store.begin(i);
        let mut sess = tls_kit::handshake(s.port, "a.test", &cfg).expect("handshake");
        sess.conn
            .send(b"GET /a.txt HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
        assert_eq!(sess.conn.response().expect("response").status, 200);
        let _ = sess.conn.closed();
        kinds.push(sess.kind);
    }
    let resumed = kinds
        .iter()
        .filter(|k| **k == Some(rustls::HandshakeKind::Resumed))
        .count() as f64;
    assert!(resumed >= 1.0, "{kinds:?}");
    // Not TLS at all on the TLS port: a failed handshake.
    let mut c = s.connect();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .expect("write");
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut sink);
    // The metrics, over TLS too.
    let m = {
        let mut sess = tls_kit::handshake(s.port, "a.test", &cfg).expect("handshake");
        sess.conn
            .send(b"GET /metrics HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
        let r = sess.conn.response().expect("response");
        assert_eq!(r.status, 200);
        parse_exposition(&r.text())
    };
    let tls = |k: &str| get(&m, "wickd_tls_handshakes_total", &[("result", k)]);
    assert_eq!(
        tls("resumed"),
        resumed + 1.0,
        "the metrics request's own resumed: {m:?}"
    );
    assert_eq!(tls("full"), 3.0 - resumed);
    assert_eq!(tls("failed"), 1.0);
}

// ------------------------------------------------------------ seccomp ----

/// Workers of `s` past their sandbox (seccomp on).
fn sandboxed_workers(s: &Server) -> Vec<u32> {
    children_of(s.pid())
        .into_iter()
        .filter(|p| cmdline(*p).starts_with("wickd: worker"))
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .unwrap_or_default()
                .lines()
                .any(|l| l == "Seccomp:\t2")
        })
        .collect()
}

/// Make `pid` call `nr` instead of its next system call: stop it (ptrace,
/// root), wait for a syscall-entry stop, change the number, let it go. The
/// kernel checks seccomp after the tracer's change, so the filter sees `nr`.
#[cfg(target_arch = "x86_64")]
fn force_syscall(pid: u32, nr: i64) {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::Pid;
    let p = Pid::from_raw(pid as i32);
    let req = |r: libc::c_uint, data: usize| {
        // SAFETY: ptrace requests on a process we trace; no pointers but `data`
        // where noted.
        unsafe { libc::ptrace(r, pid as libc::pid_t, 0usize, data) }
    };
    assert_eq!(
        req(libc::PTRACE_SEIZE, libc::PTRACE_O_TRACESYSGOOD as usize),
        0,
        "PTRACE_SEIZE: {}",
        std::io::Error::last_os_error()
    );
    assert_eq!(req(libc::PTRACE_INTERRUPT, 0), 0);
    waitpid(p, None).expect("the interrupt stop");
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(10), "no syscall stop");
        assert_eq!(req(libc::PTRACE_SYSCALL, 0), 0);
        match waitpid(p, None).expect("waitpid") {
            WaitStatus::PtraceSyscall(_) => {}
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => panic!("the worker went"),
            _ => continue,
        }
        // SAFETY: a zeroed user_regs_struct for PTRACE_GETREGS to fill.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        let addr = &mut regs as *mut libc::user_regs_struct as usize;
        assert_eq!(req(libc::PTRACE_GETREGS, addr), 0);
        // At a syscall-entry stop the kernel has set rax to -ENOSYS.
        if regs.rax as i64 != -i64::from(libc::ENOSYS) {
            continue;
        }
        regs.orig_rax = nr as u64;
        let addr = &regs as *const libc::user_regs_struct as usize;
        assert_eq!(req(libc::PTRACE_SETREGS, addr), 0);
        assert_eq!(req(libc::PTRACE_DETACH, 0), 0);
        return;
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_seccomp_kill_is_named_in_the_log_and_counted() {
    if skip_unless_root("a_seccomp_kill_is_named_in_the_log_and_counted") || !is_root() {
        return;
    }
    let s = start(CONF);
    let mut victims = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        victims = sandboxed_workers(&s);
        victims.len() == 2
    }));
    let victim = victims[0];
    // uname(2) is not in the worker's allowlist.
    force_syscall(victim, libc::SYS_uname);
    let line = format!("refused system call {} (uname)", libc::SYS_uname);
    assert!(
        wait_until(Duration::from_secs(10), || s.error_log().contains(&line)),
        "the log names the call:\n{}",
        s.error_log()
    );
    let log = s.error_log();
    let l = log.lines().find(|l| l.contains(&line)).expect("line");
    assert!(
        l.contains(&format!("pid {victim}")) && l.contains("killed by signal 31 (SIGSYS)"),
        "{l}"
    );
    // Replaced, and counted.
    assert!(wait_until(Duration::from_secs(10), || {
        let w = sandboxed_workers(&s);
        w.len() == 2 && !w.contains(&victim)
    }));
    let m = metrics(&s);
    assert_eq!(
        get(
            &m,
            "wickd_restarts_total",
            &[("role", "worker"), ("cause", "seccomp")]
        ),
        1.0,
        "{m:?}"
    );
    assert_eq!(
        get(
            &m,
            "wickd_restarts_total",
            &[("role", "worker"), ("cause", "signal")]
        ),
        0.0
    );
    // A SIGSYS from kill(2) names no call: a signal, not the filter.
    let other = sandboxed_workers(&s)[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(other as i32),
        nix::sys::signal::Signal::SIGSYS,
    )
    .expect("kill");
    assert!(wait_until(Duration::from_secs(10), || {
        let m = metrics(&s);
        get(
            &m,
            "wickd_restarts_total",
            &[("role", "worker"), ("cause", "signal")],
        ) == 1.0
    }));
    assert_eq!(s.get("/a.txt").status, 200);
}
