//! TLS test kit: certificates made at run time (a CA and the leaves it signs; no
//! private key is ever committed) and clients that report what they saw: a rustls
//! client (peer certificate, protocol, ALPN, resumed or full handshake), curl and
//! `openssl s_client` over HTTPS.
#![allow(dead_code)]

use crate::common::wire::{Conn, Resp};
use crate::common::{parse_response, Response};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, NamedGroup,
    ProtocolVersion, RootCertStore, SignatureScheme, StreamOwned,
};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A certificate with its key, as the server or a client holds them.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate as sent on the wire: what a client compares against.
    pub der: Vec<u8>,
    pub serial: u64,
}

impl Leaf {
    /// lighttpd's ssl.pemfile: the certificate, then its key, in one file.
    pub fn pem_with_key(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
    /// Write the combined pem to `path` (atomically: a reloading server never sees
    /// half a file).
    pub fn write_pem(&self, path: &Path) {
        write_atomic(path, &self.pem_with_key());
    }
    pub fn cert_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.der.clone())
    }
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        let kp = KeyPair::from_pem(&self.key_pem).expect("own key parses");
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der()))
    }
}

pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).expect("write pem");
    std::fs::rename(&tmp, path).expect("rename pem");
}

/// Serial numbers unique within the test run, so a renewed certificate differs.
fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    0x5157_0000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A certificate authority (CA:TRUE, keyCertSign): webpki refuses a self-signed
/// CA certificate as an end entity, so servers and clients get leaves it signs.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub pem: String,
    pub der: Vec<u8>,
}

/// What a leaf is for.
#[derive(Clone, Copy, PartialEq)]
pub enum Role {
    Server,
    Client,
}

/// The key type of a leaf.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum KeyKind {
    /// ECDSA P-256 (rcgen's default).
    EcP256,
    Rsa2048,
}

impl KeyKind {
    fn generate(self) -> KeyPair {
        match self {
            KeyKind::EcP256 => KeyPair::generate().expect("EC key"),
            KeyKind::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                    .expect("RSA key")
            }
        }
    }
}

/// Validity of a leaf: now (a day back to a year ahead) or long expired.
#[derive(Clone, Copy, PartialEq)]
pub enum Validity {
    Current,
    Expired,
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn, Some("wick test CA"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.serial_number = Some(SerialNumber::from(next_serial()));
        set_window(&mut p, Validity::Current);
        let cert = p.self_signed(&key).expect("CA certificate");
        let pem = cert.pem();
        let der = cert.der().to_vec();
        Ca {
            cert,
            key,
            pem,
            der,
        }
    }

    /// A server certificate for `names` (the first is also the subject CN).
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names[0], None, names, Role::Server, Validity::Current)
    }

    /// A client certificate with subject CN (and O, if given).
    pub fn client(&self, cn: &str, org: Option<&str>) -> Leaf {
        self.leaf(cn, org, &[], Role::Client, Validity::Current)
    }

    pub fn leaf(
        &self,
        cn: &str,
        org: Option<&str>,
        names: &[&str],
        role: Role,
        validity: Validity,
    ) -> Leaf {
        self.leaf_with(KeyKind::EcP256, cn, org, names, role, validity)
    }

    /// A server certificate for `names` with a key of `kind`.
    pub fn server_with(&self, kind: KeyKind, names: &[&str]) -> Leaf {
        self.leaf_with(kind, names[0], None, names, Role::Server, Validity::Current)
    }

    pub fn leaf_with(
        &self,
        kind: KeyKind,
        cn: &str,
        org: Option<&str>,
        names: &[&str],
        role: Role,
        validity: Validity,
    ) -> Leaf {
        let key = kind.generate();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut p = CertificateParams::new(names).expect("leaf params");
        p.distinguished_name = dn(cn, org);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![match role {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        p.use_authority_key_identifier_extension = true;
        let serial = next_serial();
        p.serial_number = Some(SerialNumber::from(serial));
        set_window(&mut p, validity);
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            serial,
        }
    }

    /// An intermediate CA this one signs (as a public CA's issuing CA is); its
    /// `pem` is the certificate a server sends after its own.
    pub fn intermediate(&self, cn: &str) -> Ca {
        let key = KeyPair::generate().expect("intermediate key");
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn, Some("wick test CA"));
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.use_authority_key_identifier_extension = true;
        p.serial_number = Some(SerialNumber::from(next_serial()));
        set_window(&mut p, Validity::Current);
        let cert = p
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign intermediate");
        let pem = cert.pem();
        let der = cert.der().to_vec();
        Ca {
            cert,
            key,
            pem,
            der,
        }
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.pem).expect("write CA pem");
    }

    /// The CA's private key (for `openssl ocsp` to sign a response with).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn roots(&self) -> RootCertStore {
        let mut r = RootCertStore::empty();
        r.add(CertificateDer::from(self.der.clone()))
            .expect("CA into the root store");
        r
    }
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    if let Some(o) = org {
        d.push(DnType::OrganizationName, o);
    }
    d
}

/// Set the validity of `p`: current (2024 to 2090) or expired (January 2020).
fn set_window(p: &mut CertificateParams, v: Validity) {
    let (from, to) = match v {
        Validity::Current => ((2024, 1, 1), (2090, 1, 1)),
        Validity::Expired => ((2020, 1, 1), (2020, 2, 1)),
    };
    p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// How a rustls client is set up.
pub struct ClientSpec<'a> {
    /// None: both TLS 1.2 and 1.3; Some: only this version.
    pub version: Option<ProtocolVersion>,
    /// Verify the server against this CA; None: accept any certificate (the test
    /// then looks at which one it got).
    pub ca: Option<&'a Ca>,
    pub client_cert: Option<&'a Leaf>,
    pub sni: bool,
    pub alpn: &'a [&'a str],
    /// Where sessions go (None: a fresh in-memory store of this config's own).
    pub store: Option<Arc<TaggedStore>>,
    /// Offer only these suites (None: the provider's defaults).
    pub suites: Option<Vec<rustls::SupportedCipherSuite>>,
    /// With `ca` None: where the stapled OCSP response the server sent goes.
    pub ocsp: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Default for ClientSpec<'_> {
    fn default() -> Self {
        ClientSpec {
            version: None,
            ca: None,
            client_cert: None,
            sni: true,
            alpn: &[],
            store: None,
            suites: None,
            ocsp: None,
        }
    }
}

/// A rustls client configuration; one `Arc` shares its session store between
/// connections (resumption).
pub fn client_config(spec: &ClientSpec) -> Arc<ClientConfig> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match spec.version {
        Some(ProtocolVersion::TLSv1_2) => vec![&rustls::version::TLS12],
        Some(ProtocolVersion::TLSv1_3) => vec![&rustls::version::TLS13],
        Some(v) => panic!("no such version in rustls: {v:?}"),
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(suites) = &spec.suites {
        p.cipher_suites = suites.clone();
    }
    let b = ClientConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(&versions)
        .expect("protocol versions");
    let b = match spec.ca {
        Some(ca) => b.with_root_certificates(ca.roots()),
        None => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider(), spec.ocsp.clone()))),
    };
    let mut c = match spec.client_cert {
        Some(l) => b
            .with_client_auth_cert(vec![l.cert_der()], l.key_der())
            .expect("client certificate"),
        None => b.with_no_client_auth(),
    };
    c.enable_sni = spec.sni;
    c.alpn_protocols = spec.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    c.resumption = match &spec.store {
        Some(store) => Resumption::store(store.clone()),
        None => Resumption::in_memory_sessions(64),
    };
    Arc::new(c)
}

/// Accepts whatever certificate the server sends (signatures still checked), for
/// tests that look at which certificate that was; keeps the stapled OCSP response.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>, Option<Arc<Mutex<Vec<u8>>>>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(sink) = &self.1 {
            *sink.lock().expect("ocsp sink") = ocsp.to_vec();
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client session store for one server that remembers which connection each
/// session (TLS 1.2 session, TLS 1.3 ticket) came from and which one a handshake
/// offered: a test can then tell a session resumed on another worker than the
/// one that issued it from one resumed where it was made.
#[derive(Default)]
pub struct TaggedStore(Mutex<Tagged>);

#[derive(Default)]
struct Tagged {
    /// The connection now being made; sessions stored from now on are its.
    now: usize,
    /// The connection whose session the current handshake offered.
    offered: Option<usize>,
    kx_hint: Option<NamedGroup>,
    tls12: Option<(Tls12ClientSessionValue, usize)>,
    /// Newest last; a ticket is used once.
    tls13: Vec<(Tls13ClientSessionValue, usize)>,
}

impl TaggedStore {
    /// Connection `i` begins: what it stores is tagged `i`.
    pub fn begin(&self, i: usize) {
        let mut t = self.0.lock().expect("store lock");
        t.now = i;
        t.offered = None;
    }
    /// The connection whose session the last handshake offered, if any.
    pub fn offered(&self) -> Option<usize> {
        self.0.lock().expect("store lock").offered
    }
    /// Sessions held now (TLS 1.2 session and TLS 1.3 tickets).
    pub fn held(&self) -> usize {
        let t = self.0.lock().expect("store lock");
        t.tls13.len() + usize::from(t.tls12.is_some())
    }
}

impl std::fmt::Debug for TaggedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaggedStore")
    }
}

impl ClientSessionStore for TaggedStore {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.0.lock().expect("store lock").kx_hint = Some(group);
    }
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.lock().expect("store lock").kx_hint
    }
    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        let mut t = self.0.lock().expect("store lock");
        let now = t.now;
        t.tls12 = Some((value, now));
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let mut t = self.0.lock().expect("store lock");
        let (v, from) = t.tls12.as_ref().map(|(v, from)| (v.clone(), *from))?;
        t.offered = Some(from);
        Some(v)
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.0.lock().expect("store lock").tls12 = None;
    }
    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        let mut t = self.0.lock().expect("store lock");
        let now = t.now;
        if t.tls13.len() >= 8 {
            t.tls13.remove(0);
        }
        t.tls13.push((value, now));
    }
    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        let mut t = self.0.lock().expect("store lock");
        let (v, from) = t.tls13.pop()?;
        t.offered = Some(from);
        Some(v)
    }
}

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// What one completed handshake showed.
pub struct Session {
    pub conn: Conn<Tls>,
    pub peer_cert: Vec<u8>,
    pub version: Option<ProtocolVersion>,
    pub kind: Option<HandshakeKind>,
    pub alpn: Option<Vec<u8>>,
    pub suite: Option<rustls::CipherSuite>,
}

/// Connect to 127.0.0.1:`port` naming the server `name` (an IP address sends no
/// SNI) and finish the handshake (10 s bound). Err: the handshake failed.
pub fn handshake(port: u16, name: &str, config: &Arc<ClientConfig>) -> std::io::Result<Session> {
    handshake_at((std::net::Ipv4Addr::LOCALHOST, port).into(), name, config)
}

/// `handshake` to another local address (::1).
pub fn handshake_at(
    addr: std::net::SocketAddr,
    name: &str,
    config: &Arc<ClientConfig>,
) -> std::io::Result<Session> {
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let conn = ClientConnection::new(config.clone(), server_name).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let peer_cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let version = tls.conn.protocol_version();
    let kind = tls.conn.handshake_kind();
    let alpn = tls.conn.alpn_protocol().map(|p| p.to_vec());
    let suite = tls.conn.negotiated_cipher_suite().map(|s| s.suite());
    Ok(Session {
        conn: Conn::over(tls),
        peer_cert,
        version,
        kind,
        alpn,
        suite,
    })
}

/// One GET on a fresh TLS connection: the response, or None if the handshake or
/// the exchange failed.
pub fn get(port: u16, name: &str, config: &Arc<ClientConfig>, path: &str) -> Option<Resp> {
    use std::io::Write;
    let mut s = handshake(port, name, config).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    // A server that refused the session fails the write or the read: None.
    s.conn.s.write_all(req.as_bytes()).ok()?;
    s.conn.s.flush().ok()?;
    s.conn.response()
}

/// curl over HTTPS to `name` (resolved to 127.0.0.1:`port`), trusting `ca_file`;
/// (exit status, response, stderr).
pub fn curl_https(
    port: u16,
    name: &str,
    path: &str,
    ca_file: &Path,
    extra: &[&str],
) -> (Option<i32>, Response, String) {
    let resolve = format!("{name}:{port}:127.0.0.1");
    let url = format!("https://{name}:{port}{path}");
    let out = Command::new("curl")
        .args(["-s", "-S", "-i", "--max-time", "10", "--path-as-is"])
        .arg("--cacert")
        .arg(ca_file)
        .args(["--resolve", &resolve])
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    (
        out.status.code(),
        parse_response(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openssl s_client` for one HTTP/1.0 request, saving the session to `sess_out`
/// and offering `sess_in`; its stdout (handshake report, then the response).
pub fn s_client(
    port: u16,
    name: &str,
    ca_file: &Path,
    sess_in: Option<&Path>,
    sess_out: Option<&Path>,
    extra: &[&str],
) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", name, "-CAfile"])
        .arg(ca_file)
        .args(["-ign_eof", "-verify_return_error"])
        .args(extra);
    if let Some(p) = sess_in {
        cmd.arg("-sess_in").arg(p);
    }
    if let Some(p) = sess_out {
        cmd.arg("-sess_out").arg(p);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ =
            stdin.write_all(format!("GET /index.html HTTP/1.0\r\nHost: {name}\r\n\r\n").as_bytes());
    }
    let out = child.wait_with_output().expect("s_client output");
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
