//! status.metrics-url: the whole server in the Prometheus text exposition format
//! (version 0.0.4), written by hand: `# HELP` and `# TYPE` once per family
//! before its samples, label values escaped (`\\`, `\"`, `\n`), histogram buckets
//! cumulative up to `+Inf`.

use super::Snapshot;
use std::fmt::Write;
use wick_proto::counters::{BUCKETS_US, CAUSES, CLASSES, METHODS, ROLES, STATES, TLS};

pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped.
fn label(o: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

/// The family's `# HELP` and `# TYPE` lines.
fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample; `labels` as (name, value) pairs.
fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    o.push_str(name);
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(k);
            o.push_str("=\"");
            label(o, v);
            o.push('"');
        }
        o.push('}');
    }
    let _ = writeln!(o, " {value}");
}

/// Microseconds as seconds.
fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

pub(super) fn render(s: &Snapshot) -> Vec<u8> {
    let t = &s.totals;
    let mut o = String::with_capacity(4096);

    family(
        &mut o,
        "wickd_requests_total",
        "counter",
        "Responses completed, by request method and status class.",
    );
    let mut any = false;
    for (m, row) in METHODS.iter().zip(&t.requests) {
        for (c, &n) in CLASSES.iter().zip(row) {
            if n > 0 {
                sample(
                    &mut o,
                    "wickd_requests_total",
                    &[("method", m), ("code", c)],
                    n,
                );
                any = true;
            }
        }
    }
    if !any {
        sample(
            &mut o,
            "wickd_requests_total",
            &[("method", "GET"), ("code", "2xx")],
            0,
        );
    }

    family(
        &mut o,
        "wickd_request_duration_seconds",
        "histogram",
        "From the start of the event-loop turn that took the request up to the end of the turn that completed its response.",
    );
    let mut cum = 0u64;
    for (i, &n) in t.duration.iter().enumerate() {
        cum += n;
        let le = match BUCKETS_US.get(i) {
            Some(&b) => secs(b).to_string(),
            None => "+Inf".to_string(),
        };
        sample(
            &mut o,
            "wickd_request_duration_seconds_bucket",
            &[("le", &le)],
            cum,
        );
    }
    sample(
        &mut o,
        "wickd_request_duration_seconds_sum",
        &[],
        secs(t.duration_us),
    );
    sample(&mut o, "wickd_request_duration_seconds_count", &[], cum);

    family(
        &mut o,
        "wickd_received_bytes_total",
        "counter",
        "Bytes read from clients (TLS: after decryption).",
    );
    sample(&mut o, "wickd_received_bytes_total", &[], t.bytes_in);
    family(
        &mut o,
        "wickd_sent_bytes_total",
        "counter",
        "Bytes written to clients (TLS: before encryption).",
    );
    sample(&mut o, "wickd_sent_bytes_total", &[], t.bytes_out);

    family(
        &mut o,
        "wickd_connections",
        "gauge",
        "Open connections by state (states as the workers saw them within the last second).",
    );
    for ((_, name), &n) in STATES.iter().zip(&t.states_now()) {
        sample(&mut o, "wickd_connections", &[("state", name)], n);
    }
    family(
        &mut o,
        "wickd_connections_accepted_total",
        "counter",
        "Connections accepted.",
    );
    sample(&mut o, "wickd_connections_accepted_total", &[], t.opened);
    family(
        &mut o,
        "wickd_connections_limit",
        "gauge",
        "server.max-connections summed over the live workers.",
    );
    sample(&mut o, "wickd_connections_limit", &[], t.max_conns);
    family(
        &mut o,
        "wickd_workers",
        "gauge",
        "Worker processes alive, of every generation.",
    );
    sample(&mut o, "wickd_workers", &[], t.workers);

    family(
        &mut o,
        "wickd_tls_handshakes_total",
        "counter",
        "TLS handshakes: completed in full, resumed (session ticket), failed.",
    );
    for (k, &n) in TLS.iter().zip(&t.tls) {
        sample(&mut o, "wickd_tls_handshakes_total", &[("result", k)], n);
    }

    backends(&mut o, s);

    family(
        &mut o,
        "wickd_reloads_total",
        "counter",
        "Reloads (SIGUSR1): the new generation went into service, or not.",
    );
    sample(
        &mut o,
        "wickd_reloads_total",
        &[("outcome", "ok")],
        s.reloads[0],
    );
    sample(
        &mut o,
        "wickd_reloads_total",
        &[("outcome", "failed")],
        s.reloads[1],
    );
    family(
        &mut o,
        "wickd_last_reload_timestamp_seconds",
        "gauge",
        "When the last reload went into service (0: none yet).",
    );
    sample(
        &mut o,
        "wickd_last_reload_timestamp_seconds",
        &[],
        s.last_reload,
    );
    family(
        &mut o,
        "wickd_restarts_total",
        "counter",
        "Children of the serving generation that died and were started again, by role and cause.",
    );
    for (role, row) in ROLES.iter().zip(&s.restarts) {
        for (cause, &n) in CAUSES.iter().zip(row) {
            sample(
                &mut o,
                "wickd_restarts_total",
                &[("role", role), ("cause", cause)],
                n,
            );
        }
    }
    family(
        &mut o,
        "wickd_config_generation",
        "gauge",
        "The configuration generation serving (1 at start, one more per reload attempt).",
    );
    sample(&mut o, "wickd_config_generation", &[], s.generation);
    family(
        &mut o,
        "wickd_start_time_seconds",
        "gauge",
        "When the master started, in seconds since the epoch.",
    );
    sample(&mut o, "wickd_start_time_seconds", &[], s.started);
    o.into_bytes()
}

/// The FastCGI backends the configuration names.
fn backends(o: &mut String, s: &Snapshot) {
    if s.backends.is_empty() {
        return;
    }
    let each = |o: &mut String, name: &str, f: &dyn Fn(&super::BackendView) -> String| {
        for b in &s.backends {
            sample(o, name, &[("backend", &b.name)], f(b));
        }
    };
    family(
        o,
        "wickd_backend_requests_total",
        "counter",
        "Requests sent to a FastCGI backend.",
    );
    each(o, "wickd_backend_requests_total", &|b| {
        b.requests.to_string()
    });
    family(
        o,
        "wickd_backend_connect_failures_total",
        "counter",
        "Connects to a FastCGI backend that failed (each disables it for its disable-time).",
    );
    each(o, "wickd_backend_connect_failures_total", &|b| {
        b.failures.to_string()
    });
    family(
        o,
        "wickd_backend_active_requests",
        "gauge",
        "Requests under way on a FastCGI backend.",
    );
    each(o, "wickd_backend_active_requests", &|b| b.load.to_string());
    family(
        o,
        "wickd_backend_disabled_workers",
        "gauge",
        "Live workers that skip a FastCGI backend now, after a failed connect.",
    );
    each(o, "wickd_backend_disabled_workers", &|b| {
        b.disabled.to_string()
    });
    family(
        o,
        "wickd_backend_up",
        "gauge",
        "1 unless some worker skips the FastCGI backend now.",
    );
    each(o, "wickd_backend_up", &|b| {
        u8::from(b.disabled == 0).to_string()
    });
    family(
        o,
        "wickd_backend_response_seconds",
        "summary",
        "From connect to the end of a FastCGI backend's response.",
    );
    each(o, "wickd_backend_response_seconds_sum", &|b| {
        secs(b.latency_us).to_string()
    });
    each(o, "wickd_backend_response_seconds_count", &|b| {
        b.done.to_string()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut o = String::new();
        sample(&mut o, "m", &[("b", "unix:/a\"b\\c\nd")], 1);
        assert_eq!(o, "m{b=\"unix:/a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn bucket_bounds_read_as_seconds() {
        assert_eq!(secs(BUCKETS_US[0]).to_string(), "0.0005");
        assert_eq!(secs(BUCKETS_US[10]).to_string(), "1");
        assert_eq!(secs(2_500_000).to_string(), "2.5");
    }
}
