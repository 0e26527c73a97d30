//! What a TLS connection tells a CGI script, as lighttpd's mod_openssl sets it:
//! SSL_PROTOCOL, SSL_CIPHER and the key sizes always; with
//! ssl.verifyclient.activate, SSL_CLIENT_VERIFY and the client certificate's
//! subject (whole and per field), serial, validity, and with
//! ssl.verifyclient.username a REMOTE_USER from one of them,
//! ssl.verifyclient.exportcert the certificate as PEM.

use super::session::Session;
use rustls::{CipherSuite, ProtocolVersion};

fn cipher_name(s: CipherSuite) -> (&'static str, u32) {
    match s {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        CipherSuite::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => {
            ("ECDHE-ECDSA-AES256-GCM-SHA384", 256)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => {
            ("ECDHE-ECDSA-AES128-GCM-SHA256", 128)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-ECDSA-CHACHA20-POLY1305", 256)
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-RSA-CHACHA20-POLY1305", 256)
        }
        _ => ("UNKNOWN", 0),
    }
}

/// Control characters in certificate text become '?', as lighttpd writes them.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// OpenSSL's short name of a subject field ("CN", "emailAddress"), else the
/// dotted OID.
fn short_name(oid: &str) -> String {
    let n = match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.46" => "dnQualifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        other => other,
    };
    n.to_string()
}

/// "Dec  3 14:32:47 2026 GMT", as OpenSSL prints a certificate time.
fn openssl_time(t: &x509_parser::time::ASN1Time) -> String {
    let s = t.to_string();
    match s.strip_suffix(" +00:00") {
        Some(v) => format!("{v} GMT"),
        None => s,
    }
}

/// The variables for a script on this connection (empty: not TLS).
pub fn cgi_env(session: Option<&Session>) -> Vec<(String, String)> {
    let Some((conn, profile)) = session.and_then(Session::connection) else {
        return Vec::new();
    };
    let mut env = Vec::new();
    let mut add = |k: &str, v: String| env.push((k.to_string(), v));
    let proto = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "",
    };
    add("SSL_PROTOCOL", proto.to_string());
    if let Some(cs) = conn.negotiated_cipher_suite() {
        let (name, bits) = cipher_name(cs.suite());
        add("SSL_CIPHER", name.to_string());
        add("SSL_CIPHER_USEKEYSIZE", bits.to_string());
        add("SSL_CIPHER_ALGKEYSIZE", bits.to_string());
    }
    let s = &profile.settings;
    if !s.verify_activate {
        return env;
    }
    let Some((cert, chain)) = conn.peer_certificates().and_then(|c| c.split_first()) else {
        add("SSL_CLIENT_VERIFY", "NONE".into());
        return env;
    };
    // With ssl.verifyclient.enforce, rustls finished the handshake only with a
    // certificate that verified; without, one that failed got through and is
    // checked again here (lighttpd: FAILED and nothing of the certificate).
    if !s.verify_enforce {
        if let Some(v) = &profile.verifier {
            let now = rustls::pki_types::UnixTime::now();
            if let Err(e) = v.verify_client_cert(cert, chain, now) {
                add("SSL_CLIENT_VERIFY", format!("FAILED:{e}"));
                return env;
            }
        }
    }
    add("SSL_CLIENT_VERIFY", "SUCCESS".into());
    let Ok((_, x)) = x509_parser::parse_x509_certificate(cert) else {
        return env;
    };
    add("SSL_CLIENT_S_DN", clean(&x.subject().to_string()));
    for rdn in x.subject().iter() {
        for atv in rdn.iter() {
            let name = short_name(&atv.attr_type().to_id_string());
            if let Ok(v) = atv.as_str() {
                add(&format!("SSL_CLIENT_S_DN_{name}"), clean(v));
            }
        }
    }
    add("SSL_CLIENT_I_DN", clean(&x.issuer().to_string()));
    let serial = x.raw_serial();
    let start = serial
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(serial.len().saturating_sub(1));
    let hex: String = serial[start..].iter().map(|b| format!("{b:02X}")).collect();
    add("SSL_CLIENT_M_SERIAL", hex);
    add("SSL_CLIENT_V_START", openssl_time(&x.validity().not_before));
    add("SSL_CLIENT_V_END", openssl_time(&x.validity().not_after));
    if !s.verify_username.is_empty() {
        let user = env
            .iter()
            .find(|(k, _)| *k == s.verify_username)
            .map(|(_, v)| v.clone());
        if let Some(u) = user {
            env.push(("REMOTE_USER".into(), u));
            env.push(("AUTH_TYPE".into(), "SSL_CLIENT_VERIFY".into()));
        }
    }
    if s.verify_exportcert {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        env.push(("SSL_CLIENT_CERT".into(), pem));
    }
    env
}
