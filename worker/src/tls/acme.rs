//! ssl.acme-tls-1: the TLS-ALPN-01 challenge of ACME (RFC 8737). A client that
//! offers only the "acme-tls/1" protocol gets the challenge certificate its ACME
//! client left in the directory, `<dir>/<name>.crt.pem` and `<dir>/<name>.key.pem`
//! (lighttpd's layout), and the connection ends after the handshake. These are
//! throw-away certificates made for minutes; unlike the server's own keys, the
//! worker reads them itself (the directory is in its Landlock read set), since
//! they appear while it runs.

use super::build::ALPN_ACME;
use super::tickets::Tickets;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ClientHello;
use rustls::ServerConfig;
use std::sync::Arc;

/// Is this a TLS-ALPN-01 validation (ALPN offers acme-tls/1 and nothing else)?
pub fn is_challenge(hello: &ClientHello<'_>) -> bool {
    let Some(mut alpn) = hello.alpn() else {
        return false;
    };
    alpn.next() == Some(ALPN_ACME) && alpn.next().is_none()
}

/// The challenge configuration for `name` from `dir`.
pub fn config(dir: &str, name: &str) -> Result<Arc<ServerConfig>, String> {
    // A DNS name only: no path tricks through the SNI.
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    if !ok {
        return Err(format!(
            "acme-tls/1 for a name that is no host name: {name:?}"
        ));
    }
    let base = std::path::Path::new(dir);
    let crt = std::fs::read(base.join(format!("{name}.crt.pem")))
        .map_err(|e| format!("{dir}/{name}.crt.pem: {e}"))?;
    let key = std::fs::read(base.join(format!("{name}.key.pem")))
        .map_err(|e| format!("{dir}/{name}.key.pem: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{name}.crt.pem: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("{name}.key.pem: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{name}: {e}"))?;
    cfg.alpn_protocols = vec![ALPN_ACME.to_vec()];
    cfg.send_tls13_tickets = 0;
    cfg.ticketer = Arc::new(Tickets::new(&Default::default()));
    Ok(Arc::new(cfg))
}
