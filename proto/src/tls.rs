//! TLS material the master reads (as root) and hands to workers, which never open
//! a key file: certificates and keys parsed to DER, CA lists, OCSP responses, and
//! the session-ticket keys every worker of every generation shares.

use serde::{Deserialize, Serialize};

/// Everything a worker needs to build its TLS configurations.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TlsMaterial {
    /// Each file an ssl.* key names, read once even when named twice.
    pub files: Vec<TlsFile>,
    pub tickets: TicketKeys,
}

impl TlsMaterial {
    pub fn file(&self, path: &str) -> Option<&TlsFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// One file as read: its PEM objects by kind (DER), or its bytes when the file is
/// not PEM (an OCSP response).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TlsFile {
    /// As the config names it.
    pub path: String,
    /// CERTIFICATE / TRUSTED CERTIFICATE blocks, in file order.
    pub certs: Vec<Vec<u8>>,
    /// The first private key (PKCS#8, SEC1 or PKCS#1), if any.
    pub key: Option<PrivateKey>,
    /// X509 CRL blocks.
    pub crls: Vec<Vec<u8>>,
    /// The raw bytes, for ssl.stapling-file (DER OCSP response).
    pub raw: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    Pkcs8,
    Sec1,
    Pkcs1,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrivateKey {
    pub kind: KeyKind,
    pub der: Vec<u8>,
}

/// Session-ticket keys: the newest seals new tickets; all open them. The master
/// makes them (or reads ssl.stek-file) and sends them to every worker, so a client
/// resumes on any worker, before and after a reload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketKeys {
    /// Newest first; empty: tickets off.
    pub keys: Vec<TicketKey>,
    /// Seconds a ticket is good for (the client's hint).
    pub lifetime: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketKey {
    /// Sent in the clear at the start of each ticket, to find the key again.
    pub name: [u8; 16],
    /// AES-256-GCM key.
    pub secret: [u8; 32],
}
