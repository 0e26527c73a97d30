//! TLS material, read here (as root: 0600 keys work) and nowhere else: every
//! file an ssl.* key names, parsed to DER and checked by building the workers'
//! own configurations (wick_worker::tls::check) before any worker sees it; and the
//! session-ticket keys every worker shares, rotated here (or read from
//! ssl.stek-file, lighttpd's format) and pushed to the workers.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use wick_conf::{Config, Value};
use wick_proto::tls::{KeyKind, PrivateKey, TicketKey, TicketKeys, TlsFile};

/// A new ticket key this often; lighttpd's mod_openssl does the same.
const ROTATE: Duration = Duration::from_secs(8 * 3600);
/// Keys kept: the newest seals, all open (a ticket lives up to 24 h).
const KEEP: usize = 3;
/// The lifetime hint sent with a ticket: what the oldest kept key still covers.
const LIFETIME: u32 = 16 * 3600;
/// How often ssl.stek-file and ssl.stapling-file are looked at for a change.
const POLL: Duration = Duration::from_secs(60);

/// What `load` read, and what to warn of (an expired certificate, a chain out
/// of order, ssl.* keys no handshake can apply).
pub struct Loaded {
    pub files: Vec<TlsFile>,
    pub warnings: Vec<String>,
}

/// Read and check what `cfg`'s TLS listeners need. Ok(None): no TLS.
pub fn load(cfg: &Config) -> Result<Option<Loaded>, String> {
    if !wick_worker::tls::enabled(cfg) {
        return Ok(None);
    }
    let names = wick_worker::tls::files(cfg)?;
    let mut files = Vec::with_capacity(names.len());
    let mut warnings = Vec::new();
    for name in names {
        let f = read_file(&name)?;
        warnings.extend(cert_warnings(&f));
        files.push(f);
    }
    let m = wick_proto::tls::TlsMaterial {
        files,
        tickets: TicketKeys::default(),
    };
    warnings.extend(wick_worker::tls::check(cfg, &m)?);
    Ok(Some(Loaded {
        files: m.files,
        warnings,
    }))
}

fn read_file(path: &str) -> Result<TlsFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("\"{path}\": {e}"))?;
    let mut f = TlsFile {
        path: path.to_string(),
        ..Default::default()
    };
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|e| format!("\"{path}\": {e}"))?;
        f.certs.push(c.to_vec());
    }
    for c in CertificateRevocationListDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|e| format!("\"{path}\": {e}"))?;
        f.crls.push(c.to_vec());
    }
    if let Ok(k) = PrivateKeyDer::from_pem_slice(&bytes) {
        let (kind, der) = match &k {
            PrivateKeyDer::Pkcs8(d) => (KeyKind::Pkcs8, d.secret_pkcs8_der().to_vec()),
            PrivateKeyDer::Sec1(d) => (KeyKind::Sec1, d.secret_sec1_der().to_vec()),
            PrivateKeyDer::Pkcs1(d) => (KeyKind::Pkcs1, d.secret_pkcs1_der().to_vec()),
            _ => {
                return Err(format!(
                    "\"{path}\": a private key of a kind wickd cannot use"
                ))
            }
        };
        f.key = Some(PrivateKey { kind, der });
    } else if bytes.windows(10).any(|w| w == b"PRIVATE KE") {
        return Err(format!(
            "\"{path}\": a private key wickd cannot read (encrypted keys are not supported, as in lighttpd)"
        ));
    }
    if f.certs.is_empty() && f.crls.is_empty() && f.key.is_none() {
        // Not PEM: a DER OCSP response (ssl.stapling-file).
        f.raw = bytes;
    }
    Ok(f)
}

/// An expired (or not yet valid) leaf, and a chain whose next certificate did
/// not issue the one before: warnings, as OpenSSL serves them too.
fn cert_warnings(f: &TlsFile) -> Vec<String> {
    let mut out = Vec::new();
    let parsed: Vec<_> = f
        .certs
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c).ok().map(|(_, x)| x))
        .collect();
    if let Some(leaf) = parsed.first() {
        let now = x509_parser::time::ASN1Time::now();
        let v = leaf.validity();
        if v.not_after < now {
            out.push(format!(
                "\"{}\": the certificate expired on {}",
                f.path, v.not_after
            ));
        } else if v.not_before > now {
            out.push(format!(
                "\"{}\": the certificate is not valid before {}",
                f.path, v.not_before
            ));
        }
    }
    for pair in parsed.windows(2) {
        if pair[0].issuer() != pair[1].subject() {
            out.push(format!(
                "\"{}\": certificate chain out of order: \"{}\" is not the issuer of \"{}\"",
                f.path,
                pair[1].subject(),
                pair[0].subject()
            ));
            break;
        }
    }
    out
}

/// The session-ticket keys of the whole server.
pub struct Tickets {
    keys: Vec<TicketKey>,
    rotated: Instant,
    /// ssl.stek-file and the modification time last read.
    stek: Option<(PathBuf, Option<SystemTime>)>,
    stek_checked: Instant,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The kernel's CSPRNG; the master is not sandboxed.
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b
}

fn new_key() -> TicketKey {
    TicketKey {
        name: random(),
        secret: random(),
    }
}

impl Tickets {
    pub fn new() -> Tickets {
        Tickets {
            keys: vec![new_key()],
            rotated: Instant::now(),
            stek: None,
            stek_checked: Instant::now(),
        }
    }

    pub fn current(&self) -> TicketKeys {
        TicketKeys {
            keys: self.keys.clone(),
            lifetime: LIFETIME,
        }
    }

    /// ssl.stek-file of `cfg` (global scope), read now. Err: unreadable.
    pub fn configure(&mut self, cfg: &Config) -> Result<(), String> {
        let path = cfg.blocks[0]
            .settings
            .iter()
            .find(|s| s.key.eq_ignore_ascii_case("ssl.stek-file"))
            .and_then(|s| match &s.value {
                Value::Str(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => None,
            });
        match path {
            None => {
                if self.stek.take().is_some() {
                    self.keys = vec![new_key()];
                    self.rotated = Instant::now();
                }
                Ok(())
            }
            Some(p) => {
                self.stek = Some((p, None));
                self.read_stek().map(drop)
            }
        }
    }

    /// lighttpd's STEK file: version (4 bytes, 0), activation and expiration
    /// times (4 + 4), key name (16), HMAC key (32), AES key (32). The name and the
    /// AES key make our key. Ok(true): a new key.
    fn read_stek(&mut self) -> Result<bool, String> {
        let Some((path, seen)) = &mut self.stek else {
            return Ok(false);
        };
        let mtime = std::fs::metadata(&*path).and_then(|m| m.modified()).ok();
        if mtime.is_some() && mtime == *seen {
            return Ok(false);
        }
        let b = std::fs::read(&*path)
            .map_err(|e| format!("ssl.stek-file \"{}\": {e}", path.display()))?;
        if b.len() < 92 || b[..4] != [0, 0, 0, 0] {
            return Err(format!(
                "ssl.stek-file \"{}\": expected 92 bytes of lighttpd's STEK format (version 0)",
                path.display()
            ));
        }
        *seen = mtime;
        let mut k = TicketKey {
            name: [0; 16],
            secret: [0; 32],
        };
        k.name.copy_from_slice(&b[12..28]);
        k.secret.copy_from_slice(&b[60..92]);
        if self.keys.first() == Some(&k) {
            return Ok(false);
        }
        self.keys.retain(|o| o.name != k.name);
        self.keys.insert(0, k);
        self.keys.truncate(KEEP);
        Ok(true)
    }

    pub fn next_deadline(&self) -> Instant {
        match self.stek {
            Some(_) => self.stek_checked + POLL,
            None => self.rotated + ROTATE,
        }
    }

    /// Rotate when due, or take a changed ssl.stek-file. Ok(true): the workers
    /// need the new keys.
    pub fn on_timer(&mut self, now: Instant) -> Result<bool, String> {
        if self.stek.is_some() {
            if now < self.stek_checked + POLL {
                return Ok(false);
            }
            self.stek_checked = now;
            return self.read_stek();
        }
        if now < self.rotated + ROTATE {
            return Ok(false);
        }
        self.rotated = now;
        self.keys.insert(0, new_key());
        self.keys.truncate(KEEP);
        Ok(true)
    }
}

/// ssl.stapling-file: OCSP responses are renewed often (hours), so the master
/// looks at each file every minute and sends a changed one to the workers.
#[derive(Default)]
pub struct Stapling {
    /// Path and modification time when last read.
    files: Vec<(String, Option<SystemTime>)>,
    checked: Option<Instant>,
}

fn mtime(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Stapling {
    /// Watch the OCSP files among `files` (the ones that are not PEM).
    pub fn watch(&mut self, files: &[TlsFile]) {
        self.files = files
            .iter()
            .filter(|f| !f.raw.is_empty())
            .map(|f| (f.path.clone(), mtime(&f.path)))
            .collect();
        self.checked = Some(Instant::now());
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        if self.files.is_empty() {
            return None;
        }
        self.checked.map(|c| c + POLL)
    }

    /// Files that changed since: (path, new bytes, or why they cannot be read).
    pub fn on_timer(&mut self, now: Instant) -> Vec<(String, Result<Vec<u8>, String>)> {
        match self.checked {
            Some(c) if now >= c + POLL && !self.files.is_empty() => {}
            _ => return Vec::new(),
        }
        self.checked = Some(now);
        let mut out = Vec::new();
        for (path, seen) in &mut self.files {
            let m = mtime(path);
            if m == *seen {
                continue;
            }
            *seen = m;
            let r = match std::fs::read(&*path) {
                Ok(b) if b.is_empty() => Err("empty".to_string()),
                Ok(b) => Ok(b),
                Err(e) => Err(e.to_string()),
            };
            out.push((path.clone(), r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wick-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn a_changed_stapling_file_is_sent_at_the_next_look() {
        let p = tmp("ocsp");
        std::fs::write(&p, b"first").expect("write");
        let path = p.to_string_lossy().into_owned();
        let mut s = Stapling::default();
        s.watch(&[TlsFile {
            path: path.clone(),
            raw: b"first".to_vec(),
            ..Default::default()
        }]);
        let later = Instant::now() + POLL + Duration::from_secs(1);
        assert!(s.on_timer(later).is_empty(), "unchanged");
        std::fs::write(&p, b"second, longer").expect("write");
        // A new mtime (filesystems with coarse times: set it explicitly).
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_modified(SystemTime::now() + Duration::from_secs(5))
            .expect("mtime");
        let got = s.on_timer(later + POLL + Duration::from_secs(1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.as_deref().ok(), Some(&b"second, longer"[..]));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn a_stek_file_in_lighttpds_format_gives_the_key_and_keeps_the_old() {
        let p = tmp("stek");
        let mut b = vec![0u8; 12];
        b.extend([7u8; 16]);
        b.extend([1u8; 32]);
        b.extend([9u8; 32]);
        std::fs::write(&p, &b).expect("write");
        let mut t = Tickets::new();
        let first = t.keys[0].clone();
        t.stek = Some((p.clone(), None));
        assert_eq!(t.read_stek(), Ok(true));
        assert_eq!(t.keys[0].name, [7u8; 16]);
        assert_eq!(t.keys[0].secret, [9u8; 32]);
        assert_eq!(t.keys[1], first, "the key before still opens tickets");
        std::fs::write(&p, b"short").expect("write");
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_modified(SystemTime::now() + Duration::from_secs(5))
            .expect("mtime");
        assert!(t.read_stek().is_err());
        let _ = std::fs::remove_file(&p);
    }
}
