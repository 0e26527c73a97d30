//! Real HTTP/2 clients (Debian's nghttp2-client): nghttp with many streams at
//! once, and a short bounded h2load run that must see no failure.

use super::*;

#[test]
fn nghttp_concurrent_streams() {
    if !have("nghttp", "nghttp_concurrent_streams") {
        return;
    }
    let s = start("");
    // 8 copies of the request on one connection, all at once; -s prints one
    // line per response with its status.
    for path in ["/big.bin", "/cgi-bin/env.sh"] {
        let out = Command::new("timeout")
            .args(["20", "nghttp", "-n", "-s", "-m", "8"])
            .arg(s.url(path))
            .stdin(Stdio::null())
            .output()
            .expect("run nghttp");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "nghttp: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = text
            .lines()
            .filter(|l| l.ends_with(path))
            .filter(|l| l.split_whitespace().any(|w| w == "200"))
            .count();
        assert_eq!(ok, 8, "{text}");
    }
    let lines = access_lines(&s, 16);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("HTTP/2.0\" 200"))
            .count(),
        16,
        "{lines:?}"
    );
}

#[test]
fn h2load_short_run_has_no_failure() {
    if !have("h2load", "h2load_short_run_has_no_failure") {
        return;
    }
    let s = start("");
    let out = Command::new("timeout")
        .args(["30", "h2load", "-n", "2000", "-c", "4", "-m", "8"])
        .arg(s.url("/index.html"))
        .stdin(Stdio::null())
        .output()
        .expect("run h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "h2load: {text}");
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{text}"
    );
    assert!(text.contains("h2"), "h2load did not speak h2: {text}");
    let codes = text
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap_or("");
    assert!(codes.starts_with("status codes: 2000 2xx"), "{text}");
}
