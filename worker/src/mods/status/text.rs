//! The machine-read pages of mod_status: `?auto` and `?json` in lighttpd's
//! formats (what monitoring plugins written for lighttpd parse), and
//! status.statistics-url's `name: value` lines.

use super::Snapshot;
use std::fmt::Write;
use wick_proto::counters::STATES;

/// `?auto`: lighttpd's lines, for the whole server. BusyServers counts open
/// connections (lighttpd's meaning), IdleServers the room left below the live
/// workers' server.max-connections; the Scoreboard has a letter per open
/// connection (grouped by state) and `_` per free place.
pub(super) fn auto(s: &Snapshot) -> Vec<u8> {
    let t = &s.totals;
    let mut o = String::with_capacity(256);
    let _ = write!(
        o,
        "Total Accesses: {}\nTotal kBytes: {}\nUptime: {}\nBusyServers: {}\nIdleServers: {}\nScoreboard: ",
        t.requests_total(),
        t.bytes_out / 1024,
        s.uptime(),
        t.busy(),
        s.idle(),
    );
    scoreboard(&mut o, s);
    o.push('\n');
    o.into_bytes()
}

/// A letter per open connection, then `_` per free place.
pub(super) fn scoreboard(o: &mut String, s: &Snapshot) {
    for (&(letter, _), &n) in STATES.iter().zip(&s.totals.states_now()) {
        o.extend(std::iter::repeat_n(letter, n as usize));
    }
    o.extend(std::iter::repeat_n('_', s.idle() as usize));
}

/// `?json` (and `?jsonp=f`, wrapped in a call of `f`): lighttpd's fields;
/// traffic in KiB.
pub(super) fn json(s: &Snapshot, query: &[u8]) -> Vec<u8> {
    let t = &s.totals;
    let mut o = String::with_capacity(256);
    let callback = jsonp(query);
    if let Some(f) = callback {
        o.push_str(f);
        o.push('(');
    }
    let _ = write!(
        o,
        "{{\n\t\"RequestsTotal\": {},\n\t\"TrafficTotal\": {},\n\t\"Uptime\": {},\n\t\"BusyServers\": {},\n\t\"IdleServers\": {},\n\t\"RequestAverage5s\":{},\n\t\"TrafficAverage5s\":{}\n}}",
        t.requests_total(),
        t.bytes_out / 1024,
        s.uptime(),
        t.busy(),
        s.idle(),
        s.avg5.0,
        s.avg5.1 / 1024,
    );
    if callback.is_some() {
        o.push_str(");");
    }
    o.into_bytes()
}

/// The function name of `?jsonp=NAME`, as lighttpd takes it: the whole query
/// after `jsonp=`, letters, digits and `_`, a letter first; anything else is no
/// callback (it is not escaped, so it is never echoed).
fn jsonp(query: &[u8]) -> Option<&str> {
    let f = query.strip_prefix(b"jsonp=")?;
    let ok = f.first().is_some_and(u8::is_ascii_alphabetic)
        && f.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    ok.then(|| std::str::from_utf8(f).ok()).flatten()
}

/// status.statistics-url: `name: value` lines sorted by name, as lighttpd's
/// plugin statistics (wickd has those of mod_fastcgi); empty: nothing to show
/// (204, as lighttpd).
pub(super) fn statistics(s: &Snapshot) -> Vec<u8> {
    let mut lines: Vec<(String, u64)> = Vec::new();
    if !s.backends.is_empty() {
        lines.push((
            "fastcgi.active-requests".into(),
            s.backends.iter().map(|b| b.load).sum(),
        ));
        lines.push((
            "fastcgi.requests".into(),
            s.backends.iter().map(|b| b.requests).sum(),
        ));
    }
    for b in &s.backends {
        let key = |what: &str| format!("fastcgi.backend.{}.{what}", b.name);
        lines.push((key("connected"), b.requests));
        lines.push((key("died"), b.failures));
        lines.push((key("disabled"), b.disabled));
        lines.push((key("load"), b.load));
    }
    lines.sort();
    let mut o = String::new();
    for (k, v) in lines {
        let _ = writeln!(o, "{k}: {v}");
    }
    o.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonp_names_only() {
        assert_eq!(jsonp(b"jsonp=cb_1"), Some("cb_1"));
        assert_eq!(jsonp(b"json"), None);
        assert_eq!(jsonp(b"json&jsonp=f"), None);
        assert_eq!(jsonp(b"jsonp=1f"), None);
        assert_eq!(jsonp(b"jsonp=a(b)"), None);
        assert_eq!(jsonp(b"jsonp=a%3Cb"), None);
        assert_eq!(jsonp(b"jsonp="), None);
    }
}
