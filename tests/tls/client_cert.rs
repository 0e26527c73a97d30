//! Client certificates: ssl.verifyclient.* enforced or not, against the right CA
//! or another, and what CGI scripts see (SSL_CLIENT_*, REMOTE_USER).

use super::*;

/// A TLS server that asks for client certificates; `enforce` and the key naming
/// the CA file (ssl.verifyclient.ca-file or ssl.ca-file) vary.
/// (site, alice's file stem, mallory's file stem, alice's certificate).
fn client_cert_site(enforce: bool, ca_key: &str) -> (Site, PathBuf, PathBuf, Leaf) {
    let body = format!(
        r#"ssl.engine = "enable"
ssl.pemfile = "@DIR@/a.pem"
{ca_key} = "@DIR@/ca.pem"
ssl.verifyclient.activate = "enable"
ssl.verifyclient.enforce = "{}"
ssl.verifyclient.username = "SSL_CLIENT_S_DN_CN"
ssl.verifyclient.exportcert = "enable"
cgi.assign = (".sh" => "/bin/sh")
"#,
        if enforce { "enable" } else { "disable" }
    );
    let mut alice_leaf = None;
    let site = start_site(&conf(", \"mod_cgi\"", &body), |d, ca| {
        write_script(d, "env.sh", ENV_SH);
        let alice = ca.client("alice", Some("Wick Test"));
        std::fs::write(d.join("alice.crt"), &alice.cert_pem).expect("crt");
        std::fs::write(d.join("alice.key"), &alice.key_pem).expect("key");
        alice_leaf = Some(alice);
        let other = Ca::new("another CA");
        let mallory = other.client("mallory", None);
        std::fs::write(d.join("mallory.crt"), &mallory.cert_pem).expect("crt");
        std::fs::write(d.join("mallory.key"), &mallory.key_pem).expect("key");
    });
    let d = site.s.dir.path().to_path_buf();
    let alice = alice_leaf.expect("alice");
    (site, d.join("alice"), d.join("mallory"), alice)
}

fn cert_args(stem: &Path) -> [String; 4] {
    [
        "--cert".into(),
        stem.with_extension("crt").display().to_string(),
        "--key".into(),
        stem.with_extension("key").display().to_string(),
    ]
}

fn curl_with(
    site: &Site,
    path: &str,
    args: &[String],
    more: &[&str],
) -> (Option<i32>, common::Response, String) {
    let mut v: Vec<&str> = args.iter().map(String::as_str).collect();
    v.extend_from_slice(more);
    site.curl("a.test", path, &v)
}

#[test]
fn client_certificate_enforced_admits_only_the_right_ca() {
    for ca_key in ["ssl.verifyclient.ca-file", "ssl.ca-file"] {
        let (site, alice, mallory, _) = client_cert_site(true, ca_key);
        for tls in [&["--tlsv1.3"][..], &["--tlsv1.2", "--tls-max", "1.2"][..]] {
            let (code, r, err) = curl_with(&site, "/index.html", &cert_args(&alice), tls);
            assert_eq!(
                (code, r.status),
                (Some(0), 200),
                "{ca_key} {tls:?}: the right CA's client refused: {err}\n{}",
                site.s.error_log()
            );
            assert_eq!(r.text(), INDEX);
            let (code, r, err) = curl_with(&site, "/index.html", &[], tls);
            assert!(
                code != Some(0) && r.status == 0,
                "{ca_key} {tls:?}: served without a client certificate: {code:?} {} {err}",
                r.status
            );
            let (code, r, err) = curl_with(&site, "/index.html", &cert_args(&mallory), tls);
            assert!(
                code != Some(0) && r.status == 0,
                "{ca_key} {tls:?}: served with another CA's certificate: {code:?} {} {err}",
                r.status
            );
        }
        // The refusals are logged, as lighttpd logs its verify errors.
        let logged = common::wait_until(Duration::from_secs(5), || {
            site.s.error_log().contains("client certificate refused")
        });
        assert!(logged, "{ca_key}: no log line:\n{}", site.s.error_log());
        // rustls: the same three.
        let ok = client_config(&ClientSpec {
            ca: Some(&site.ca),
            client_cert: Some(&site.ca.client("carol", None)),
            ..ClientSpec::default()
        });
        let r = tls_kit::get(site.tls_port, "a.test", &ok, "/index.html");
        assert_eq!(
            r.map(|r| r.status),
            Some(200),
            "{ca_key}: rustls with a certificate"
        );
        let none = site.verifying(None);
        assert!(
            tls_kit::get(site.tls_port, "a.test", &none, "/index.html").is_none(),
            "{ca_key}: rustls without a certificate was served"
        );
    }
}

#[test]
fn client_certificate_fields_reach_cgi_and_remote_user() {
    let (site, alice, _, leaf) = client_cert_site(true, "ssl.verifyclient.ca-file");
    let (code, r, err) = curl_with(&site, "/env.sh", &cert_args(&alice), &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    for (k, v) in [
        ("SSL_CLIENT_VERIFY", "SUCCESS"),
        ("SSL_CLIENT_S_DN_CN", "alice"),
        ("SSL_CLIENT_S_DN_O", "Wick Test"),
        ("REMOTE_USER", "alice"),
        ("AUTH_TYPE", "SSL_CLIENT_VERIFY"),
        ("HTTPS", "on"),
        ("REQUEST_SCHEME", "https"),
        ("SSL_CLIENT_M_SERIAL", &format!("{:X}", leaf.serial)),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}: {env:?}");
    }
    // ssl.verifyclient.exportcert: the certificate as PEM (its lines follow the
    // first in `env`'s output).
    let text = r.text();
    assert!(
        text.contains("SSL_CLIENT_CERT=-----BEGIN CERTIFICATE-----"),
        "{text}"
    );
    for line in leaf
        .cert_pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        assert!(
            text.contains(line),
            "SSL_CLIENT_CERT lacks {line:?}: {text}"
        );
    }
}

#[test]
fn client_certificate_not_enforced_serves_without_one_and_trusts_no_foreign_one() {
    let (site, alice, mallory, _) = client_cert_site(false, "ssl.verifyclient.ca-file");
    // No certificate: served, SSL_CLIENT_VERIFY=NONE, nobody authenticated.
    let (code, r, err) = curl_with(&site, "/env.sh", &[], &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "{err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SSL_CLIENT_VERIFY").map(String::as_str),
        Some("NONE"),
        "{env:?}"
    );
    assert_eq!(env.get("REMOTE_USER"), None, "{env:?}");
    assert_eq!(env.get("SSL_CLIENT_S_DN_CN"), None, "{env:?}");
    // Another CA's certificate: lighttpd serves, says FAILED, and takes no name
    // from it.
    let (code, r, err) = curl_with(&site, "/env.sh", &cert_args(&mallory), &[]);
    assert_eq!(
        (code, r.status),
        (Some(0), 200),
        "lighttpd serves a foreign certificate when not enforced: {err}\n{}",
        site.s.error_log()
    );
    let env = env_map(&r.body);
    assert!(
        env.get("SSL_CLIENT_VERIFY")
            .is_some_and(|v| v.starts_with("FAILED")),
        "{env:?}"
    );
    assert_eq!(
        env.get("REMOTE_USER"),
        None,
        "a foreign certificate's CN became REMOTE_USER: {env:?}"
    );
    assert_ne!(
        env.get("SSL_CLIENT_S_DN_CN").map(String::as_str),
        Some("mallory"),
        "{env:?}"
    );
    // The right CA's: verified as before.
    let (code, r, err) = curl_with(&site, "/env.sh", &cert_args(&alice), &[]);
    assert_eq!((code, r.status), (Some(0), 200), "{err}");
    let env = env_map(&r.body);
    assert_eq!(
        env.get("SSL_CLIENT_VERIFY").map(String::as_str),
        Some("SUCCESS")
    );
    assert_eq!(env.get("REMOTE_USER").map(String::as_str), Some("alice"));
}
