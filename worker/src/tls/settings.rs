//! The ssl.* keys of the blocks that can decide them at the handshake: lighttpd
//! applies them under `$SERVER["socket"]`, `$HTTP["scheme"]` and `$HTTP["host"]`
//! (SNI) only, so a block whose conditions test anything else is not eligible and
//! its ssl.* keys draw a warning.

use wick_conf::model::{Block, BlockId, CondField, Setting};
use wick_conf::options::parse_bool;
use wick_conf::{Config, Value};

/// What one block sets (None: not set there).
#[derive(Clone, Debug, Default)]
pub struct TlsPatch {
    pub pemfile: Option<String>,
    pub privkey: Option<String>,
    pub ca_file: Option<String>,
    pub ca_dn_file: Option<String>,
    pub ca_crl_file: Option<String>,
    pub cipher_list: Option<String>,
    pub honor_cipher_order: Option<bool>,
    pub conf_cmd: Option<Vec<(String, String)>>,
    pub ec_curve: Option<String>,
    pub verify_activate: Option<bool>,
    pub verify_enforce: Option<bool>,
    pub verify_depth: Option<u32>,
    pub verify_username: Option<String>,
    pub verify_exportcert: Option<bool>,
    pub verify_ca_file: Option<String>,
    pub verify_ca_dn_file: Option<String>,
    pub verify_ca_crl_file: Option<String>,
    pub stapling_file: Option<String>,
    pub acme_tls_1: Option<String>,
}

/// The ssl.* options in force for one handshake (lighttpd's defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    pub pemfile: String,
    pub privkey: String,
    pub ca_file: String,
    pub ca_dn_file: String,
    pub ca_crl_file: String,
    pub cipher_list: String,
    pub honor_cipher_order: bool,
    pub conf_cmd: Vec<(String, String)>,
    pub ec_curve: String,
    pub verify_activate: bool,
    pub verify_enforce: bool,
    pub verify_depth: u32,
    pub verify_username: String,
    pub verify_exportcert: bool,
    pub verify_ca_file: String,
    pub verify_ca_dn_file: String,
    pub verify_ca_crl_file: String,
    pub stapling_file: String,
    pub acme_tls_1: String,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            pemfile: String::new(),
            privkey: String::new(),
            ca_file: String::new(),
            ca_dn_file: String::new(),
            ca_crl_file: String::new(),
            cipher_list: String::new(),
            honor_cipher_order: true,
            conf_cmd: Vec::new(),
            ec_curve: String::new(),
            verify_activate: false,
            verify_enforce: true,
            verify_depth: 9,
            verify_username: String::new(),
            verify_exportcert: false,
            verify_ca_file: String::new(),
            verify_ca_dn_file: String::new(),
            verify_ca_crl_file: String::new(),
            stapling_file: String::new(),
            acme_tls_1: String::new(),
        }
    }
}

impl TlsSettings {
    /// Later blocks win, as for every other key.
    pub fn apply(&mut self, p: &TlsPatch) {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &p.$f { self.$f = v.clone(); } )* };
        }
        take!(
            pemfile,
            privkey,
            ca_file,
            ca_dn_file,
            ca_crl_file,
            cipher_list,
            honor_cipher_order,
            conf_cmd,
            ec_curve,
            verify_activate,
            verify_enforce,
            verify_depth,
            verify_username,
            verify_exportcert,
            verify_ca_file,
            verify_ca_dn_file,
            verify_ca_crl_file,
            stapling_file,
            acme_tls_1
        );
    }

    /// The CA list client certificates are checked against: verifyclient.ca-file,
    /// else ssl.ca-file (lighttpd 1.4.69).
    pub fn client_ca(&self) -> &str {
        if self.verify_ca_file.is_empty() {
            &self.ca_file
        } else {
            &self.verify_ca_file
        }
    }

    pub fn client_ca_dn(&self) -> &str {
        if self.verify_ca_dn_file.is_empty() {
            &self.ca_dn_file
        } else {
            &self.verify_ca_dn_file
        }
    }

    pub fn client_crl(&self) -> &str {
        if self.verify_ca_crl_file.is_empty() {
            &self.ca_crl_file
        } else {
            &self.verify_ca_crl_file
        }
    }

    /// Every file these settings name, for the master to read.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        [
            &self.pemfile,
            &self.privkey,
            &self.ca_file,
            &self.ca_dn_file,
            &self.ca_crl_file,
            &self.verify_ca_file,
            &self.verify_ca_dn_file,
            &self.verify_ca_crl_file,
            &self.stapling_file,
        ]
        .into_iter()
        .map(|s| s.as_str())
        .filter(|s| !s.is_empty())
    }
}

/// The ssl.* keys of each block that sets some and is eligible (whose
/// conditions the handshake can decide).
pub struct Patches {
    pub by_block: crate::mods::ByBlock<TlsPatch>,
    /// Blocks that set ssl.* keys under conditions the handshake cannot know.
    pub ineligible: Vec<(BlockId, String)>,
}

impl Patches {
    pub fn new(cfg: &Config) -> Result<Patches, String> {
        let mut by_block = Vec::new();
        let mut ineligible = Vec::new();
        for (id, b) in cfg.blocks.iter().enumerate() {
            let ssl: Vec<&Setting> = b
                .settings
                .iter()
                .filter(|s| s.key.len() > 4 && s.key[..4].eq_ignore_ascii_case("ssl."))
                .collect();
            if ssl.is_empty() {
                continue;
            }
            if !eligible(&cfg.blocks, id) {
                for s in &ssl {
                    ineligible.push((id, describe(s)));
                }
                continue;
            }
            let mut p = TlsPatch::default();
            for s in ssl {
                set(&mut p, s).map_err(|m| {
                    format!(
                        "{}:{}:{}: {}: {m}",
                        s.loc.file, s.loc.line, s.loc.col, s.key
                    )
                })?;
            }
            by_block.push((id, p));
        }
        Ok(Patches {
            by_block: by_block.into_iter().collect(),
            ineligible,
        })
    }
}

fn describe(s: &Setting) -> String {
    format!("{}:{}: {}", s.loc.file, s.loc.line, s.key)
}

/// A block the handshake can decide: it, its parents and the branches its `else`
/// follows test only the socket, the scheme or the host.
fn eligible(blocks: &[Block], id: BlockId) -> bool {
    let mut todo = vec![id];
    while let Some(i) = todo.pop() {
        let Some(b) = blocks.get(i) else {
            return false;
        };
        if let Some(c) = &b.cond {
            if !matches!(
                c.field,
                CondField::ServerSocket | CondField::Host | CondField::Scheme
            ) {
                return false;
            }
        }
        todo.extend(b.parent.filter(|&p| p != 0));
        todo.extend(b.else_of);
    }
    true
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Array(_) => Err("expected a string, got an array".into()),
    }
}

fn set(p: &mut TlsPatch, s: &Setting) -> Result<(), String> {
    let v = &s.value;
    let key = s.key.to_ascii_lowercase();
    match key.as_str() {
        "ssl.pemfile" => p.pemfile = Some(string(v)?),
        "ssl.privkey" => p.privkey = Some(string(v)?),
        "ssl.ca-file" => p.ca_file = Some(string(v)?),
        "ssl.ca-dn-file" => p.ca_dn_file = Some(string(v)?),
        "ssl.ca-crl-file" => p.ca_crl_file = Some(string(v)?),
        "ssl.cipher-list" => p.cipher_list = Some(string(v)?),
        "ssl.honor-cipher-order" => p.honor_cipher_order = Some(parse_bool(v)?),
        "ssl.ec-curve" => p.ec_curve = Some(string(v)?),
        "ssl.openssl.ssl-conf-cmd" => {
            let Value::Array(items) = v else {
                return Err("expected ( \"Directive\" => \"value\", ... )".into());
            };
            let mut out = Vec::new();
            for (k, val) in items {
                let Some(k) = k else {
                    return Err("expected ( \"Directive\" => \"value\", ... )".into());
                };
                out.push((k.clone(), string(val)?));
            }
            p.conf_cmd = Some(out);
        }
        "ssl.verifyclient.activate" => p.verify_activate = Some(parse_bool(v)?),
        "ssl.verifyclient.enforce" => p.verify_enforce = Some(parse_bool(v)?),
        "ssl.verifyclient.depth" => {
            let d = match v {
                Value::Int(i) => *i,
                Value::Str(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected a number, got \"{s}\""))?,
                Value::Array(_) => return Err("expected a number".into()),
            };
            p.verify_depth = Some(d.clamp(0, 255) as u32);
        }
        "ssl.verifyclient.username" => p.verify_username = Some(string(v)?),
        "ssl.verifyclient.exportcert" => p.verify_exportcert = Some(parse_bool(v)?),
        "ssl.verifyclient.ca-file" => p.verify_ca_file = Some(string(v)?),
        "ssl.verifyclient.ca-dn-file" => p.verify_ca_dn_file = Some(string(v)?),
        "ssl.verifyclient.ca-crl-file" => p.verify_ca_crl_file = Some(string(v)?),
        "ssl.stapling-file" => p.stapling_file = Some(string(v)?),
        "ssl.acme-tls-1" => p.acme_tls_1 = Some(string(v)?),
        // Socket-scope, server-wide, or what rustls always does: read elsewhere
        // (ssl.engine: the listener; ssl.stek-file: the master) or nothing to do.
        _ => {}
    }
    Ok(())
}
