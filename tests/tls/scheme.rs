//! $HTTP["scheme"] per socket, the http→https redirect recipe, what CGI sees of TLS.

use super::*;

const SCHEMES: &str = r#"$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/a.pem"
}
$HTTP["scheme"] == "https" {
    setenv.add-response-header = ("Strict-Transport-Security" => "max-age=63072000")
}
$HTTP["scheme"] == "http" {
    $HTTP["host"] =~ ".*" {
        url.redirect = (".*" => "https://%0$0")
    }
}
"#;

#[test]
fn scheme_conditions_apply_per_socket_and_http_redirects_to_https() {
    let site = start_site(
        &conf(", \"mod_setenv\", \"mod_redirect\"", SCHEMES),
        |_, _| {},
    );
    let (code, r, err) = site.curl("a.test", "/index.html?q=1", &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    assert_eq!(r.text(), INDEX);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=63072000"),
        "{:?}",
        r.headers
    );
    // The plain socket: redirected to https with host (and port) and target kept,
    // as lighttpd's %0 is the whole Host match.
    let port = site.s.port;
    let r = common::curl(
        &format!("http://h.test:{port}/index.html?q=1"),
        &["--resolve", &format!("h.test:{port}:127.0.0.1")],
    );
    assert_eq!(r.status, 301, "{:?}", r.headers);
    assert_eq!(
        r.header("location"),
        Some(format!("https://h.test:{port}/index.html?q=1").as_str())
    );
    assert_eq!(r.header("strict-transport-security"), None);
}

#[test]
fn cgi_on_the_tls_port_sees_https_on() {
    let body = r#"$SERVER["socket"] == "127.0.0.1:@TLSPORT@" {
    ssl.engine = "enable"
    ssl.pemfile = "@DIR@/a.pem"
}
cgi.assign = (".sh" => "/bin/sh")
"#;
    let site = start_site(&conf(", \"mod_cgi\"", body), |d, _| {
        write_script(d, "env.sh", ENV_SH)
    });
    let (code, r, err) = site.curl("a.test", "/env.sh", &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    assert_eq!(env.get("HTTPS").map(String::as_str), Some("on"), "{env:?}");
    assert_eq!(
        env.get("REQUEST_SCHEME").map(String::as_str),
        Some("https"),
        "{env:?}"
    );
    assert_eq!(
        env.get("SERVER_PORT"),
        Some(&site.tls_port.to_string()),
        "{env:?}"
    );
    // mod_openssl's SSL_PROTOCOL names the version (lighttpd: "TLSv1.3"), and
    // SSL_CIPHER is set; without client verification there is no SSL_CLIENT_*.
    for (args, want) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let (code, r, err) = site.curl("a.test", "/env.sh", args);
        assert_eq!((code, r.status), (Some(0), 200), "{args:?}: {err}");
        let env = env_map(&r.body);
        assert_eq!(
            env.get("SSL_PROTOCOL").map(String::as_str),
            Some(want),
            "{env:?}"
        );
        assert!(
            env.get("SSL_CIPHER").is_some_and(|c| !c.is_empty()),
            "{env:?}"
        );
        assert!(!env.keys().any(|k| k.starts_with("SSL_CLIENT_")), "{env:?}");
    }
    // The same script on the plain socket.
    let r = site.s.get("/env.sh");
    assert_eq!(r.status, 200);
    let env = env_map(&r.body);
    assert_eq!(env.get("HTTPS"), None, "{env:?}");
    assert!(!env.keys().any(|k| k.starts_with("SSL_")), "{env:?}");
    assert_eq!(
        env.get("REQUEST_SCHEME").map(String::as_str),
        Some("http"),
        "{env:?}"
    );
}
