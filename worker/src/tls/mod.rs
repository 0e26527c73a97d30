//! TLS with rustls for mod_openssl's keys. The master reads every file an ssl.*
//! key names and sends the material (wick_proto::tls); a worker builds one rustls
//! configuration per distinct set of ssl.* options in force at a handshake, chosen
//! as lighttpd chooses them: the blocks that test only `$SERVER["socket"]`,
//! `$HTTP["scheme"]` and `$HTTP["host"]`, evaluated with the SNI name as host.

pub mod acme;
pub mod build;
pub mod cipher;
pub mod env;
pub mod session;
pub mod settings;
pub mod tickets;

use rustls::ServerConfig;
use settings::{Patches, TlsSettings};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use tickets::Tickets;
use wick_conf::cond::{Compiled, CondState, Facts};
use wick_conf::model::BlockId;
use wick_conf::Config;
use wick_proto::tls::TlsMaterial;

/// What a handshake decided: the configuration, and the options for what the
/// connection does later (client-certificate variables for CGI).
pub struct Profile {
    pub config: Arc<ServerConfig>,
    pub settings: TlsSettings,
    /// The strict client-certificate verifier (ssl.verifyclient.activate).
    pub verifier: Option<build::Verifier>,
}

/// SNI names remembered per worker before the cache starts over.
const SNI_CACHE: usize = 4096;

/// A worker's TLS state.
pub struct TlsSite {
    patches: Patches,
    material: TlsMaterial,
    tickets: Arc<Tickets>,
    /// Listener index → it has ssl.engine.
    tls_listeners: Vec<bool>,
    profiles: HashMap<TlsSettings, Rc<Profile>>,
    by_name: HashMap<(u16, String), Rc<Profile>>,
    state: Option<CondState>,
    /// debug.log-ssl-noise: log failed handshakes too.
    pub log_noise: bool,
    /// server.h2proto: ALPN offers h2.
    h2: bool,
}

/// A TLS connection failed: a client certificate refused is logged, as lighttpd
/// logs its verify errors; other failures (alerts, bad records) only with
/// debug.log-ssl-noise.
pub fn log_failure(ctx: &mut crate::ctx::Ctx, e: &std::io::Error, peer: IpAddr) {
    let tls_error = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>());
    let certificate = matches!(
        tls_error,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    );
    let noise = ctx.tls.as_ref().is_some_and(|t| t.log_noise);
    if certificate {
        ctx.log
            .push(format!("SSL: client certificate refused: {e} ({peer})"));
    } else if noise && tls_error.is_some() {
        ctx.log.push(format!("SSL: {e} ({peer})"));
    }
}

/// Does any listener of `cfg` speak TLS?
pub fn enabled(cfg: &Config) -> bool {
    cfg.listeners.iter().any(|l| l.socket.ssl_engine)
}

/// The settings in force for a block's chain (global, then each enclosing block,
/// then the block), for the checks the master makes.
fn chain_settings(cfg: &Config, p: &Patches, id: BlockId) -> TlsSettings {
    let mut chain = vec![id];
    let mut at = id;
    while let Some(parent) = cfg.blocks.get(at).and_then(|b| b.parent) {
        chain.push(parent);
        at = parent;
    }
    if !chain.contains(&0) {
        chain.push(0);
    }
    let mut s = TlsSettings::default();
    for b in chain.into_iter().rev() {
        if let Some(patch) = p.by_block.get(b) {
            s.apply(patch);
        }
    }
    s
}

/// The settings each TLS listener starts from, and those of every block that
/// names a certificate, each with where it comes from.
fn profiles_to_check(cfg: &Config, p: &Patches) -> Vec<(String, TlsSettings)> {
    let mut out = Vec::new();
    for l in &cfg.listeners {
        if !l.socket.ssl_engine {
            continue;
        }
        let s = chain_settings(cfg, p, l.block.unwrap_or(0));
        out.push((format!("listener {}", l.spec), s));
    }
    for (id, patch) in p.by_block.iter() {
        if id == 0 || (patch.pemfile.is_none() && patch.privkey.is_none()) {
            continue;
        }
        let s = chain_settings(cfg, p, id);
        let loc = &cfg.blocks[id].loc;
        out.push((format!("{}:{}", loc.file, loc.line), s));
    }
    out
}

/// Every file the master must read for `cfg` (empty: no TLS).
pub fn files(cfg: &Config) -> Result<Vec<String>, String> {
    if !enabled(cfg) {
        return Ok(Vec::new());
    }
    let p = Patches::new(cfg)?;
    let mut out: Vec<String> = Vec::new();
    // Every file an eligible block names (settings in force only ever combine
    // these), whether or not that block sets a certificate.
    for patch in p.by_block.values() {
        let mut s = TlsSettings::default();
        s.apply(patch);
        for f in s.files() {
            if !out.iter().any(|o| o == f) {
                out.push(f.to_string());
            }
        }
    }
    Ok(out)
}

/// Build every configuration the master can foresee (each TLS listener's, each
/// block's that names a certificate). Err names the place and the reason.
/// Ok: warnings (ssl.* keys no handshake can apply).
pub fn check(cfg: &Config, m: &TlsMaterial) -> Result<Vec<String>, String> {
    if !enabled(cfg) {
        return Ok(Vec::new());
    }
    let p = Patches::new(cfg)?;
    check_files(&p, m)?;
    let tickets = Arc::new(Tickets::new(&m.tickets));
    for (place, s) in profiles_to_check(cfg, &p) {
        build::server_config(&s, m, &tickets, cfg.server.h2proto)
            .map_err(|e| format!("{place}: {e}"))?;
    }
    Ok(p.ineligible
        .iter()
        .map(|(_, what)| {
            format!(
                "{what}: ssl.* keys apply at the TLS handshake only under $SERVER[\"socket\"], \
                 $HTTP[\"scheme\"] and $HTTP[\"host\"]; this block tests something else, so its \
                 value is ignored (as lighttpd ignores it)"
            )
        })
        .collect())
}

/// Each file holds what its key needs (lighttpd loads them all at start-up,
/// whether a handshake would use them or not): an empty or non-PEM file is an
/// error naming it.
fn check_files(p: &Patches, m: &TlsMaterial) -> Result<(), String> {
    for patch in p.by_block.values() {
        let named = [
            ("ssl.pemfile", &patch.pemfile, 'c'),
            ("ssl.privkey", &patch.privkey, 'k'),
            ("ssl.ca-file", &patch.ca_file, 'c'),
            ("ssl.ca-dn-file", &patch.ca_dn_file, 'c'),
            ("ssl.verifyclient.ca-file", &patch.verify_ca_file, 'c'),
            ("ssl.verifyclient.ca-dn-file", &patch.verify_ca_dn_file, 'c'),
            ("ssl.ca-crl-file", &patch.ca_crl_file, 'r'),
            (
                "ssl.verifyclient.ca-crl-file",
                &patch.verify_ca_crl_file,
                'r',
            ),
            ("ssl.stapling-file", &patch.stapling_file, 'o'),
        ];
        for (key, path, want) in named {
            let Some(path) = path.as_deref().filter(|p| !p.is_empty()) else {
                continue;
            };
            let Some(f) = m.file(path) else {
                return Err(format!("{key} \"{path}\": not read"));
            };
            let (ok, what) = match want {
                'c' => (!f.certs.is_empty(), "no PEM certificate"),
                'k' => (f.key.is_some(), "no PEM private key"),
                'r' => (!f.crls.is_empty(), "no PEM X509 CRL"),
                _ => (
                    !f.raw.is_empty(),
                    "an empty file, or PEM where a DER OCSP response belongs",
                ),
            };
            if !ok {
                return Err(format!("{key} \"{path}\": {what} in it"));
            }
        }
    }
    Ok(())
}

impl TlsSite {
    /// None when no listener speaks TLS. Builds each listener's default
    /// configuration now: before the sandbox (aws-lc sets up its RNG on first use).
    pub fn new(
        cfg: &Config,
        compiled: &Compiled,
        material: TlsMaterial,
    ) -> Result<Option<TlsSite>, String> {
        if !enabled(cfg) {
            return Ok(None);
        }
        let patches = Patches::new(cfg)?;
        let tickets = Arc::new(Tickets::new(&material.tickets));
        let mut site = TlsSite {
            tls_listeners: cfg.listeners.iter().map(|l| l.socket.ssl_engine).collect(),
            patches,
            material,
            tickets,
            profiles: HashMap::new(),
            by_name: HashMap::new(),
            state: Some(CondState::new(compiled)),
            h2: cfg.server.h2proto,
            log_noise: cfg.blocks[0].settings.iter().any(|s| {
                s.key.eq_ignore_ascii_case("debug.log-ssl-noise")
                    && wick_conf::options::parse_bool(&s.value).unwrap_or(false)
            }),
        };
        for (i, l) in cfg.listeners.iter().enumerate() {
            if l.socket.ssl_engine {
                site.choose(compiled, i as u16, None, crate::site::unspecified())?;
            }
        }
        Ok(Some(site))
    }

    pub fn is_tls(&self, listener: u16) -> bool {
        self.tls_listeners
            .get(usize::from(listener))
            .copied()
            .unwrap_or(false)
    }

    /// New ticket keys from the master.
    pub fn ticket_keys(&self, t: &wick_proto::tls::TicketKeys) {
        self.tickets.replace(t);
    }

    /// A new OCSP response for ssl.stapling-file `path`: handshakes from now on
    /// staple it (configurations are built again as they are needed; those of
    /// connections already up stay as they are).
    pub fn stapling(&mut self, path: &str, ocsp: Vec<u8>) {
        if let Some(f) = self.material.files.iter_mut().find(|f| f.path == path) {
            f.raw = ocsp;
            self.profiles.clear();
            self.by_name.clear();
        }
    }

    /// The profile for a handshake on `listener` naming `sni`.
    pub fn choose(
        &mut self,
        compiled: &Compiled,
        listener: u16,
        sni: Option<&str>,
        peer: IpAddr,
    ) -> Result<Rc<Profile>, String> {
        let host = sni.unwrap_or("");
        if let Some(p) = self.by_name.get(&(listener, host.to_string())) {
            return Ok(p.clone());
        }
        let none = |_: &str| None;
        let facts = Facts {
            host,
            url_path: "",
            query: "",
            remote_ip: peer,
            scheme: "https",
            method: "",
            listener: usize::from(listener),
            header: &none,
        };
        let mut state = self
            .state
            .take()
            .unwrap_or_else(|| CondState::new(compiled));
        let _ = compiled.evaluate(&facts, &mut state);
        let mut s = TlsSettings::default();
        if let Some(p) = self.patches.by_block.get(0) {
            s.apply(p);
        }
        for id in state.matched() {
            if id == 0 {
                continue;
            }
            if let Some(p) = self.patches.by_block.get(id) {
                s.apply(p);
            }
        }
        self.state = Some(state);
        let profile = match self.profiles.get(&s) {
            Some(p) => p.clone(),
            None => {
                let built = build::server_config(&s, &self.material, &self.tickets, self.h2)?;
                let p = Rc::new(Profile {
                    config: built.config,
                    settings: s.clone(),
                    verifier: built.verifier,
                });
                self.profiles.insert(s, p.clone());
                p
            }
        };
        if self.by_name.len() >= SNI_CACHE {
            self.by_name.clear();
        }
        self.by_name
            .insert((listener, host.to_string()), profile.clone());
        Ok(profile)
    }
}
