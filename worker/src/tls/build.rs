//! One rustls `ServerConfig` from the ssl.* options in force and the material the
//! master read: the same code checks a configuration in the master (start-up,
//! -tt, reload) and builds it in the worker, so what passed the check serves.

use super::cipher;
use super::settings::TlsSettings;
use super::tickets::Tickets;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs1KeyDer,
    PrivatePkcs8KeyDer, PrivateSec1KeyDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use std::sync::Arc;
use wick_proto::tls::{KeyKind, TlsFile, TlsMaterial};

/// ALPN protocols offered: h2 (unless server.h2proto is off), HTTP/1.1, and 1.0,
/// which lighttpd accepts too.
const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1", b"http/1.0"];
pub const ALPN_ACME: &[u8] = b"acme-tls/1";

fn file<'a>(m: &'a TlsMaterial, path: &str, what: &str) -> Result<&'a TlsFile, String> {
    m.file(path)
        .ok_or_else(|| format!("{what} \"{path}\": not read"))
}

pub fn private_key(f: &TlsFile) -> Option<PrivateKeyDer<'static>> {
    let k = f.key.as_ref()?;
    let der = k.der.clone();
    Some(match k.kind {
        KeyKind::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        KeyKind::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        KeyKind::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
    })
}

/// ssl.pemfile (+ ssl.privkey) as a certified key; the key must match the leaf.
pub fn certified_key(
    s: &TlsSettings,
    m: &TlsMaterial,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    if s.pemfile.is_empty() {
        return Err("ssl.engine is enabled but no ssl.pemfile is set".into());
    }
    let pem = file(m, &s.pemfile, "ssl.pemfile")?;
    if pem.certs.is_empty() {
        return Err(format!(
            "ssl.pemfile \"{}\": no certificate in it",
            s.pemfile
        ));
    }
    let key_file = if s.privkey.is_empty() {
        pem
    } else {
        file(m, &s.privkey, "ssl.privkey")?
    };
    let Some(key) = private_key(key_file) else {
        return Err(format!("\"{}\": no private key in it", key_file.path));
    };
    let chain: Vec<CertificateDer<'static>> = pem
        .certs
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let mut ck = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        if s.privkey.is_empty() {
            format!("ssl.pemfile \"{}\": {e}", s.pemfile)
        } else {
            format!(
                "ssl.pemfile \"{}\" with ssl.privkey \"{}\": {e}",
                s.pemfile, s.privkey
            )
        }
    })?;
    if !s.stapling_file.is_empty() {
        let f = file(m, &s.stapling_file, "ssl.stapling-file")?;
        if !f.raw.is_empty() {
            ck.ocsp = Some(f.raw.clone());
        }
    }
    Ok(ck)
}

/// The crypto provider these settings allow: suites (ssl.cipher-list,
/// CipherString, Ciphersuites) and groups (ssl.ec-curve, Groups/Curves).
fn provider(s: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    let mut tls12 = None;
    let mut tls13 = None;
    if !s.cipher_list.is_empty() {
        tls12 = Some(
            cipher::tls12_suites(&s.cipher_list).map_err(|e| format!("ssl.cipher-list: {e}"))?,
        );
    }
    let mut groups: Option<String> = (!s.ec_curve.is_empty()).then(|| s.ec_curve.clone());
    for (k, v) in &s.conf_cmd {
        match k.to_ascii_lowercase().as_str() {
            "cipherstring" => {
                tls12 = Some(
                    cipher::tls12_suites(v)
                        .map_err(|e| format!("ssl.openssl.ssl-conf-cmd CipherString: {e}"))?,
                )
            }
            "ciphersuites" => {
                tls13 = Some(
                    cipher::tls13_suites(v)
                        .map_err(|e| format!("ssl.openssl.ssl-conf-cmd Ciphersuites: {e}"))?,
                )
            }
            "groups" | "curves" => groups = Some(v.clone()),
            _ => {}
        }
    }
    let all = p.cipher_suites.clone();
    let t13: Vec<_> = match tls13 {
        Some(v) => v,
        None => all
            .iter()
            .copied()
            .filter(|c| c.tls13().is_some())
            .collect(),
    };
    let t12: Vec<_> = match tls12 {
        Some(v) => v,
        None => all
            .iter()
            .copied()
            .filter(|c| c.tls13().is_none())
            .collect(),
    };
    p.cipher_suites = t13.into_iter().chain(t12).collect();
    if let Some(g) = groups {
        let mut kx = Vec::new();
        for name in g.split([':', ',']).map(str::trim).filter(|n| !n.is_empty()) {
            let want = match name.to_ascii_lowercase().as_str() {
                "x25519" => rustls::NamedGroup::X25519,
                "p-256" | "prime256v1" | "secp256r1" => rustls::NamedGroup::secp256r1,
                "p-384" | "secp384r1" => rustls::NamedGroup::secp384r1,
                "x25519mlkem768" => rustls::NamedGroup::X25519MLKEM768,
                _ => {
                    return Err(format!(
                        "key exchange group \"{name}\" is not one wickd has (X25519, P-256, P-384, X25519MLKEM768)"
                    ))
                }
            };
            if let Some(k) = rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
                .iter()
                .find(|k| k.name() == want)
            {
                kx.push(*k);
            }
        }
        if kx.is_empty() {
            return Err(format!("no key exchange group left from \"{g}\""));
        }
        p.kx_groups = kx;
    }
    Ok(p)
}

/// TLS versions from MinProtocol/MaxProtocol (rustls speaks 1.2 and 1.3).
fn versions(s: &TlsSettings) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str| -> Result<u8, String> {
        match v.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(0),
            "sslv3" => Ok(1),
            "tlsv1" => Ok(2),
            "tlsv1.1" => Ok(3),
            "tlsv1.2" => Ok(4),
            "tlsv1.3" => Ok(5),
            _ => Err(format!("unknown protocol \"{v}\"")),
        }
    };
    let (mut min, mut max) = (4u8, 5u8);
    for (k, v) in &s.conf_cmd {
        match k.to_ascii_lowercase().as_str() {
            "minprotocol" => min = rank(v)?.max(4),
            "maxprotocol" => {
                max = match rank(v)? {
                    0 => 5,
                    r if r < 4 => {
                        return Err(format!(
                    "ssl.openssl.ssl-conf-cmd MaxProtocol {v}: wickd speaks TLS 1.2 and 1.3 only"
                ))
                    }
                    r => r,
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if max >= 5 && min <= 5 {
        out.push(&rustls::version::TLS13);
    }
    if min <= 4 && max >= 4 {
        out.push(&rustls::version::TLS12);
    }
    if out.is_empty() {
        return Err("MinProtocol is above MaxProtocol".into());
    }
    Ok(out)
}

/// What ssl-conf-cmd's Options and the rest ask that is not a suite, group or
/// version: (honor server order, session tickets, TLS 1.3 tickets to send).
struct Options {
    honor_order: bool,
    tickets: bool,
    tls13_tickets: usize,
}

fn options(s: &TlsSettings) -> Result<Options, String> {
    let mut o = Options {
        honor_order: s.honor_cipher_order,
        tickets: true,
        tls13_tickets: 2,
    };
    for (k, v) in &s.conf_cmd {
        match k.to_ascii_lowercase().as_str() {
            "minprotocol" | "maxprotocol" | "cipherstring" | "ciphersuites" | "groups"
            | "curves" => {}
            "numtickets" => {
                o.tls13_tickets = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("ssl.openssl.ssl-conf-cmd NumTickets: \"{v}\" is not a number"))?
            }
            "options" => {
                for opt in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                    let (off, name) = match opt.strip_prefix('-') {
                        Some(n) => (true, n),
                        None => (false, opt),
                    };
                    match name.to_ascii_lowercase().as_str() {
                        "serverpreference" => o.honor_order = !off,
                        "sessionticket" => o.tickets = !off,
                        // rustls never renegotiates, never compresses, never
                        // speaks SSLv2/SSLv3: turning those off is what it does.
                        "clientrenegotiation" | "legacyrenegotiation"
                        | "unsafelegacyrenegotiation" | "compression"
                            if off => {}
                        "norenegotiation" | "nocompression" | "nosslv2" | "nosslv3"
                        | "notlsv1" | "notlsv1.1" | "notlsv1_1" => {}
                        _ => {
                            return Err(format!(
                                "ssl.openssl.ssl-conf-cmd Options {opt}: rustls cannot do this"
                            ))
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "ssl.openssl.ssl-conf-cmd directive \"{k}\" ({other}) cannot be expressed with rustls"
                ))
            }
        }
    }
    Ok(o)
}

fn roots(m: &TlsMaterial, path: &str, what: &str) -> Result<RootCertStore, String> {
    let f = file(m, path, what)?;
    let mut r = RootCertStore::empty();
    for c in &f.certs {
        r.add(CertificateDer::from(c.clone()))
            .map_err(|e| format!("{what} \"{path}\": {e}"))?;
    }
    if r.is_empty() {
        return Err(format!("{what} \"{path}\": no certificate in it"));
    }
    Ok(r)
}

/// The verifier of client certificates (ssl.verifyclient.*), or none asked.
pub type Verifier = Arc<dyn ClientCertVerifier>;

/// Client certificates: the verifier rustls runs, and the strict one behind it
/// (without ssl.verifyclient.enforce a certificate that fails is let through, as
/// lighttpd lets it through, and CGI's SSL_CLIENT_VERIFY says FAILED).
fn client_verifier(
    s: &TlsSettings,
    m: &TlsMaterial,
    provider: &Arc<CryptoProvider>,
) -> Result<(Verifier, Option<Verifier>), String> {
    if !s.verify_activate {
        return Ok((WebPkiClientVerifier::no_client_auth(), None));
    }
    if s.client_ca().is_empty() {
        return Err(
            "ssl.verifyclient.activate needs ssl.verifyclient.ca-file (or ssl.ca-file)".into(),
        );
    }
    let roots = Arc::new(roots(m, s.client_ca(), "ssl.verifyclient.ca-file")?);
    let mut b = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
    if !s.client_crl().is_empty() {
        let f = file(m, s.client_crl(), "ssl.verifyclient.ca-crl-file")?;
        let crls = f
            .crls
            .iter()
            .map(|c| CertificateRevocationListDer::from(c.clone()))
            .collect::<Vec<_>>();
        b = b.with_crls(crls);
    }
    if !s.client_ca_dn().is_empty() {
        let f = file(m, s.client_ca_dn(), "ssl.verifyclient.ca-dn-file")?;
        let mut names = Vec::new();
        for c in &f.certs {
            let der = CertificateDer::from(c.clone());
            let ta = webpki_anchor(&der)
                .map_err(|e| format!("ssl.verifyclient.ca-dn-file \"{}\": {e}", f.path))?;
            names.push(ta);
        }
        b = b.clear_root_hint_subjects().add_root_hint_subjects(names);
    }
    if !s.verify_enforce {
        b = b.allow_unauthenticated();
    }
    let inner = b.build().map_err(|e| format!("ssl.verifyclient: {e}"))?;
    let strict: Verifier = Arc::new(DepthLimit {
        inner,
        depth: s.verify_depth as usize,
        enforce: true,
    });
    if s.verify_enforce {
        return Ok((strict.clone(), Some(strict)));
    }
    let lenient: Verifier = Arc::new(DepthLimit {
        inner: strict.clone(),
        depth: usize::MAX,
        enforce: false,
    });
    Ok((lenient, Some(strict)))
}

/// The subject of a CA certificate, as sent in a CertificateRequest.
fn webpki_anchor(der: &CertificateDer<'_>) -> Result<DistinguishedName, String> {
    let mut r = RootCertStore::empty();
    r.add(der.clone()).map_err(|e| e.to_string())?;
    r.subjects()
        .into_iter()
        .next()
        .ok_or_else(|| "no subject".to_string())
}

/// ssl.verifyclient.depth: at most that many intermediates between the client's
/// certificate and its CA (OpenSSL's verify depth, less the leaf).
/// With `enforce` false, a certificate that fails is let through (the strict
/// verifier tells CGI later).
#[derive(Debug)]
struct DepthLimit {
    inner: Arc<dyn ClientCertVerifier>,
    depth: usize,
    enforce: bool,
}

impl ClientCertVerifier for DepthLimit {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if intermediates.len() > self.depth {
            return Err(rustls::Error::General(format!(
                "client certificate chain longer than ssl.verifyclient.depth {}",
                self.depth
            )));
        }
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(_) if !self.enforce => Ok(ClientCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A built configuration and the strict client verifier (for CGI's
/// SSL_CLIENT_VERIFY), when client certificates are asked for.
pub struct Built {
    pub config: Arc<ServerConfig>,
    pub verifier: Option<Verifier>,
}

/// The whole server configuration for these settings.
pub fn server_config(
    s: &TlsSettings,
    m: &TlsMaterial,
    tickets: &Arc<Tickets>,
    h2: bool,
) -> Result<Built, String> {
    let provider = Arc::new(provider(s)?);
    let versions = versions(s)?;
    let opts = options(s)?;
    let ck = Arc::new(certified_key(s, m, &provider)?);
    let (verifier, strict) = client_verifier(s, m, &provider)?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(ck)));
    cfg.ignore_client_order = !opts.honor_order;
    cfg.alpn_protocols = ALPN_HTTP
        .iter()
        .filter(|p| h2 || **p != b"h2")
        .map(|p| p.to_vec())
        .collect();
    if opts.tickets && !tickets.is_off() {
        cfg.ticketer = tickets.clone();
        cfg.send_tls13_tickets = opts.tls13_tickets;
    } else {
        cfg.send_tls13_tickets = 0;
    }
    Ok(Built {
        config: Arc::new(cfg),
        verifier: strict,
    })
}
