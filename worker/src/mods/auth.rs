//! mod_auth with mod_authn_file: HTTP Basic and Digest authentication (and
//! "extern", a REMOTE_USER set before) for the URL paths auth.require names,
//! against the plain, htpasswd or htdigest user files, as lighttpd 1.4.69 does
//! (Digest: `digest.rs`; not with htpasswd files, as in lighttpd).
//!
//! Hooks uri_clean. The first auth.require key (in the order written) that
//! prefixes the URL path decides (case-insensitively with
//! server.force-lowercase-filenames; the key "" prefixes every path, as in
//! lighttpd); a path no key prefixes costs a scan of the
//! list, no allocation, no file access. The user file is read on first use (inside
//! the sandbox, as server.username: it must be readable by that user, as lighttpd
//! requires), looked at again at most once a second, re-read when its inode, size
//! or mtime changed.
//!
//! Logins cannot stall the worker: passwords that verified are kept briefly (a
//! salted SHA-256, not the password) so that bcrypt's cost is not paid per
//! request, and so are the ones that failed (a keyed SHA-256 of user and password):
//! the same wrong password again costs a hash lookup. A new password for a slow
//! hash is checked within the worker's hashing budget (`budget.rs`: a quarter
//! of its time), bcrypt in slices of about 2 ms (`bcrypt_steps.rs`), its request
//! parked in between; no more are taken than would be done within 3 s (503).
//! A failed login's 401 is held back a second (auth.delay-invalid-creds, on by
//! default as in lighttpd), the connection parked meanwhile, not the worker.

mod bcrypt_steps;
mod budget;
mod digest;

use super::{hook, Cx, Flow, Module, Trigger};
use base64::Engine as _;
use sha2::Digest as _;
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;
use subtle::ConstantTimeEq;
use wick_conf::{Config, Value};

/// Verified credentials kept at most this many per worker.
const CACHE_MAX: usize = 1024;
/// Failed credentials kept at most this many per worker (each was paid for with
/// a verification, which the budget bounds).
const FAILED_MAX: usize = 4096;
/// Slow verifications under way at once per worker, at most (fewer when they
/// would not all be done within budget::MAX_WAIT); more are refused (503).
const RUNNING_MAX: usize = 32;
/// Work per bcrypt slice: what a request of another client may wait behind.
const SLICE: std::time::Duration = std::time::Duration::from_millis(2);
/// lighttpd's hold on the answer to wrong credentials (auth.delay-invalid-creds).
const DELAY_INVALID: std::time::Duration = std::time::Duration::from_secs(1);
/// Seconds a verified password is kept without auth.cache (lighttpd checks every
/// request then; a changed user file empties the cache anyway).
const CACHE_TTL: u64 = 10;
/// lighttpd's limit on the base64 credentials (1023 bytes decoded).
const MAX_B64: usize = 1363;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Basic,
    Digest,
    Extern,
}

/// One auth.require entry.
#[derive(Debug)]
struct Require {
    prefix: String,
    method: Method,
    realm: String,
    /// The WWW-Authenticate value of a Basic challenge.
    challenge: Vec<u8>,
    /// Digest: the algorithms accepted ([`digest::MD5`] ... bits; -sess always).
    algos: u8,
    /// Digest: nonce_secret, to check that a nonce is the server's.
    nonce_secret: Option<String>,
    valid_user: bool,
    users: Vec<String>,
    /// Cache key part: which entry verified.
    id: u32,
}

impl Require {
    /// lighttpd's http_auth_match_rules as mod_authn_file calls it: user only
    /// (group= and host= never match with file backends).
    fn allows(&self, user: &[u8]) -> bool {
        self.valid_user || self.users.iter().any(|u| u.as_bytes() == user)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Plain,
    Htpasswd,
    Htdigest,
}

/// A user file as last read.
#[derive(Default)]
struct UserFile {
    /// (user, realm for htdigest or empty, password or hash)
    lines: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// (dev, ino, size, mtime, mtime_nsec) at the last read; None: not read.
    id: Option<(u64, u64, u64, i64, i64)>,
    /// Monotonic second of the last look.
    looked: u64,
    /// Bumped on every re-read: cached verifications of the old content die.
    generation: u64,
    /// The last look failed (logged once).
    failed: bool,
}

/// Verified credentials: require id (4 bytes) and user → (file generation,
/// salted SHA-256 of the password, when). Looked up by a slice ([`Auth::key`]):
/// a cached login allocates nothing.
type Cache = HashMap<Box<[u8]>, (u64, [u8; 32], u64)>;

/// A slow verification under way.
struct Running {
    work: Work,
    /// When it was taken.
    since: Instant,
    /// Monotonic second a request last asked for it.
    touched: u64,
    /// Hashing time spent on it.
    spent: std::time::Duration,
}

enum Work {
    /// bcrypt, a slice at a time.
    Sliced(Box<bcrypt_steps::Stepped>),
    /// Another slow kind, verified whole when its turn comes.
    Whole,
}

/// How far a slow verification got.
enum Slow {
    /// Done (None: a hash kind wickd cannot verify).
    Done(Option<bool>),
    /// Not done: ask again then (the next slice: the next loop turn).
    Later(Instant),
    /// Too many under way: 503, Retry-After.
    Busy(u64),
}

/// What checking a password came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Fail,
    /// Not decided yet (hashing goes on, or waits for the budget): run the
    /// request again then.
    Later(std::time::Instant),
    /// Too many logins being checked: 503, Retry-After this many seconds.
    Busy(u64),
}

pub struct Auth {
    /// Some block requires authentication: else the module hooks nothing, and
    /// requests keep the plain path.
    active: bool,
    /// Per block: its auth.require, parsed (None: not set there).
    requires: super::ByBlock<Vec<Require>>,
    /// User files by path: [other backends, htdigest] (their lines split differently).
    files: RefCell<[HashMap<String, UserFile>; 2]>,
    cache: RefCell<Cache>,
    /// The cache key being looked up, reused.
    key: RefCell<Vec<u8>>,
    /// Credentials that failed: keyed SHA-256 of (generation, require, user,
    /// password) → when.
    failed: RefCell<HashMap<[u8; 32], u64>>,
    /// Time the worker may spend on slow hashes.
    budget: RefCell<budget::Budget>,
    /// Slow verifications under way, by failed-login key.
    running: RefCell<HashMap<[u8; 32], Running>>,
    /// bcrypt rounds per slice, adjusted to take about [`SLICE`].
    rounds: std::cell::Cell<u64>,
    /// Hashing time of a whole slow verification, as lately seen.
    slow_cost: std::cell::Cell<std::time::Duration>,
    /// server.feature-flags "auth.delay-invalid-creds" (default on).
    delay_invalid: bool,
    salt: [u8; 32],
    /// Digest nonces made so far (their random part comes from it and `salt`).
    nonces: std::cell::Cell<u64>,
    /// Error-log lines, written by the trigger.
    log: RefCell<Vec<String>>,
}

fn str_opt<'v>(opts: &'v [(Option<String>, Value)], key: &str) -> Result<Option<&'v str>, String> {
    match opts.iter().rev().find(|(k, _)| k.as_deref() == Some(key)) {
        None => Ok(None),
        Some((_, Value::Str(s))) => Ok(Some(s)),
        Some(_) => Err(format!(
            "a string was expected for: auth.require = ( \"...\" => ( ..., -> \"{key}\" <- => \"...\" ) )"
        )),
    }
}

/// lighttpd's mod_auth_require_parse: "valid-user" or "user=a|user=b|group=g|host=h".
fn parse_rule(r: &mut Require, s: &str) -> Result<(), String> {
    if s == "valid-user" {
        r.valid_user = true;
        return Ok(());
    }
    let expect = "(expecting \"valid-user\" or \"user=a|user=b|group=g|host=h\")";
    for tok in s.split('|').filter(|t| !t.is_empty()) {
        let Some((k, v)) = tok.split_once('=') else {
            return Err(format!(
                "error parsing auth.require 'require' field: missing '=' {expect}. error value: {s} error near: {tok}"
            ));
        };
        if v.is_empty() {
            return Err(format!(
                "error parsing auth.require 'require' field: missing token after '=' {expect}. error value: {s} error near: {tok}"
            ));
        }
        match k {
            "user" => r.users.push(v.to_string()),
            // Kept by lighttpd for other backends; never true with user files.
            "group" | "host" => {}
            "valid-user" => {
                return Err(format!(
                    "error parsing auth.require 'require' field: valid user can not be combined with other require rules {expect}. error value: {s}"
                ))
            }
            _ => {
                return Err(format!(
                    "error parsing auth.require 'require' field: invalid/unsupported token {expect}. error value: {s} error near: {tok}"
                ))
            }
        }
    }
    Ok(())
}

/// One block's auth.require list, checked as lighttpd's mod_auth_require_parse_array.
fn parse_require(v: &Value, next_id: &mut u32) -> Result<Vec<Require>, String> {
    let shape = "unexpected value for auth.require; expected auth.require = ( \"urlpath\" => ( \"option\" => \"value\" ) )";
    let Value::Array(items) = v else {
        return Err(shape.into());
    };
    let mut out = Vec::new();
    for (path, entry) in items {
        let (Some(path), Value::Array(opts)) = (path, entry) else {
            return Err(shape.into());
        };
        for (k, _) in opts {
            match k.as_deref() {
                Some(
                    "method" | "realm" | "require" | "algorithm" | "nonce_secret" | "nonce-secret"
                    | "userhash",
                ) => {}
                Some(k) => {
                    return Err(format!(
                        "the field is unknown in: auth.require = ( \"...\" => ( ..., -> \"{k}\" <- => \"...\" ) )"
                    ))
                }
                None => return Err(shape.into()),
            }
        }
        let method = match str_opt(opts, "method")? {
            None | Some("") => {
                return Err("the method field is missing or blank in: auth.require = ( \"...\" => ( ..., \"method\" => \"...\" ) )".into())
            }
            Some("basic") => Method::Basic,
            Some("extern") => Method::Extern,
            Some("digest") => Method::Digest,
            Some(m) => {
                return Err(format!(
                    "unknown method {m} (e.g. \"basic\", \"digest\" or \"extern\") in auth.require = ( \"...\" => ( ..., \"method\" => \"...\") )"
                ))
            }
        };
        let Some(realm) = str_opt(opts, "realm")? else {
            return Err("the realm field is missing in: auth.require = ( \"...\" => ( ..., \"realm\" => \"...\" ) )".into());
        };
        let require = match str_opt(opts, "require")? {
            Some(r) if !r.trim().is_empty() => r,
            _ => return Err("the require field is missing or blank in: auth.require = ( \"...\" => ( ..., \"require\" => \"...\" ) )".into()),
        };
        let mut algos = digest::SESS;
        match str_opt(opts, "algorithm")? {
            None | Some("") => algos |= digest::MD5,
            Some(a) => {
                for one in a.split('|') {
                    match digest::parse_algorithm(one) {
                        Some(bits) => algos |= bits,
                        None => return Err("invalid algorithm in: auth.require = ( \"...\" => ( ..., \"algorithm\" => \"...\" ) )".into()),
                    }
                }
            }
        }
        let nonce_secret = match str_opt(opts, "nonce_secret")? {
            Some(n) => Some(n.to_string()),
            None => str_opt(opts, "nonce-secret")?.map(str::to_string),
        };
        let mut challenge = b"Basic realm=\"".to_vec();
        challenge.extend_from_slice(realm.as_bytes());
        challenge.extend_from_slice(b"\", charset=\"UTF-8\"");
        let mut r = Require {
            prefix: path.clone(),
            method,
            realm: realm.to_string(),
            challenge,
            algos,
            nonce_secret,
            valid_user: false,
            users: Vec::new(),
            id: *next_id,
        };
        *next_id += 1;
        parse_rule(&mut r, require)?;
        out.push(r);
    }
    Ok(out)
}

fn backend_of(s: &str) -> Option<Backend> {
    match s {
        "plain" => Some(Backend::Plain),
        "htpasswd" => Some(Backend::Htpasswd),
        "htdigest" => Some(Backend::Htdigest),
        _ => None,
    }
}

/// auth.cache's "max-age" (lighttpd's default 600 when the list has none).
fn cache_ttl(v: &Value) -> u64 {
    match v {
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .find(|(k, _)| k.as_deref() == Some("max-age"))
            .and_then(|(_, v)| match v {
                Value::Int(n) => u64::try_from(*n).ok(),
                Value::Str(s) => s.trim().parse().ok(),
                _ => None,
            })
            .unwrap_or(600),
        _ => CACHE_TTL,
    }
}

impl Auth {
    pub fn new(cfg: &Config) -> Result<Auth, String> {
        let mut next_id = 0;
        let mut requires = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            let at = || super::where_set(cfg, id, "auth.require");
            if let Some(v) = p.auth_require() {
                let list = parse_require(v, &mut next_id).map_err(|e| format!("{}{e}", at()))?;
                requires.push((id, list));
            }
            if let Some(b) = p.auth_backend().map(|x| &x[..]).filter(|b| !b.is_empty()) {
                if backend_of(b).is_none() {
                    return Err(format!(
                        "{}auth.backend not supported: {b}",
                        super::where_set(cfg, id, "auth.backend")
                    ));
                }
            }
        }
        let mut salt = [0u8; 32];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read as _;
            let _ = f.read_exact(&mut salt);
        }
        if salt == [0u8; 32] {
            use std::hash::{BuildHasher, Hasher};
            for (i, c) in salt.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                c.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        // lighttpd's config_feature_bool: a value that is not a boolean is the
        // default.
        let delay_invalid = cfg
            .server
            .feature_flags
            .iter()
            .rev()
            .find(|(k, _)| k == "auth.delay-invalid-creds")
            .and_then(|(_, v)| <bool as wick_conf::options::FromValue>::from_value(v).ok())
            .unwrap_or(true);
        Ok(Auth {
            active: requires.iter().any(|(_, r)| !r.is_empty()),
            requires: requires.into_iter().collect(),
            files: RefCell::default(),
            cache: RefCell::default(),
            key: RefCell::default(),
            failed: RefCell::default(),
            budget: RefCell::default(),
            running: RefCell::default(),
            rounds: std::cell::Cell::new(8),
            slow_cost: std::cell::Cell::new(std::time::Duration::from_millis(50)),
            delay_invalid,
            salt,
            nonces: std::cell::Cell::new(0),
            log: RefCell::default(),
        })
    }

    fn log(&self, line: String) {
        let mut l = self.log.borrow_mut();
        if l.len() < 1000 {
            l.push(line);
        }
    }

    /// The Basic check: Go with REMOTE_USER set, or 400/401/500.
    fn basic(&self, x: &mut Cx, req: &Require) -> Flow {
        let challenge = |x: &mut Cx| {
            x.rq.answer_fields
                .push((&b"WWW-Authenticate"[..], req.challenge.clone()));
            Flow::Status(401)
        };
        let view = x.view;
        let backend = match backend_of(view.auth_backend) {
            Some(b) => b,
            None => {
                self.log(format!(
                    "auth.backend not configured for {}",
                    String::from_utf8_lossy(&x.rq.path)
                ));
                return Flow::Status(500);
            }
        };
        let cred = match x.rq.header(x.base, "Authorization") {
            Some(h) if h.len() >= 6 && h[..6].eq_ignore_ascii_case(b"Basic ") => &h[6..],
            _ => return challenge(x),
        };
        if cred.len() > MAX_B64 {
            return challenge(x);
        }
        // (MAX_B64 characters decode to at most 1023 bytes: on the stack)
        let mut buf = [0u8; 1024];
        let decoded = base64::engine::general_purpose::STANDARD.decode_slice(cred, &mut buf);
        let Ok(n) = decoded else {
            self.log(format!(
                "decoding base64-string failed {}",
                String::from_utf8_lossy(cred)
            ));
            return Flow::Status(400);
        };
        let dec = &buf[..n];
        let Some(colon) = dec.iter().position(|&c| c == b':') else {
            self.log(format!("missing ':' in {}", String::from_utf8_lossy(dec)));
            return Flow::Status(400);
        };
        let (user, pw) = (&dec[..colon], &dec[colon + 1..]);
        let file = match backend {
            Backend::Plain => view.auth_plain_userfile,
            Backend::Htpasswd => view.auth_htpasswd_userfile,
            Backend::Htdigest => view.auth_htdigest_userfile,
        };
        let now = x.fs.clock.mono;
        // A user the rule does not allow fails without a hash (as it would after).
        let verdict = match !user.is_empty() && req.allows(user) {
            true => self.verify(
                file,
                backend,
                req,
                (user, pw),
                now,
                cache_ttl(view.auth_cache),
                x.base,
            ),
            false => Verdict::Fail,
        };
        match verdict {
            Verdict::Ok => {}
            Verdict::Fail => {
                self.log(format!(
                    "password doesn't match for {} username: {} IP: {}",
                    String::from_utf8_lossy(&x.rq.path),
                    String::from_utf8_lossy(user),
                    x.rq.remote_ip
                ));
                self.refuse(x);
                return challenge(x);
            }
            Verdict::Later(at) => {
                x.rq.later = Some(at);
                return Flow::Later;
            }
            Verdict::Busy(secs) => {
                self.log(format!(
                    "too many logins to verify; 503 for {} username: {} IP: {}",
                    String::from_utf8_lossy(&x.rq.path),
                    String::from_utf8_lossy(user),
                    x.rq.remote_ip
                ));
                x.rq.answer_fields
                    .push((&b"Retry-After"[..], secs.to_string().into_bytes()));
                self.refuse(x);
                return Flow::Status(503);
            }
        }
        x.rq.remote_user.clear();
        x.rq.remote_user.push_str(&String::from_utf8_lossy(user));
        x.rq.auth_type = "Basic";
        Flow::Go
    }

    /// Wrong credentials: no more guesses on this connection (as lighttpd), and
    /// the answer held back a second (auth.delay-invalid-creds).
    fn refuse(&self, x: &mut Cx) {
        x.rq.close = true;
        if self.delay_invalid {
            x.rq.hold = Some(std::time::Instant::now() + DELAY_INVALID);
        }
    }

    /// A Digest challenge: one WWW-Authenticate per algorithm (strongest first),
    /// or only `stale`'s with stale=true.
    fn digest_challenge(&self, x: &mut Cx, req: &Require, stale: u8) -> Flow {
        let now = x.fs.clock.unix;
        let algos = if stale != 0 { stale } else { req.algos };
        for (bit, name) in [
            (digest::SHA512_256, "SHA-512-256"),
            (digest::SHA256, "SHA-256"),
            (digest::MD5, "MD5"),
        ] {
            if algos & bit == 0 {
                continue;
            }
            let n = self.nonces.get().wrapping_add(1);
            self.nonces.set(n);
            let r = sha2::Sha256::new()
                .chain_update(self.salt)
                .chain_update(n.to_le_bytes())
                .finalize();
            let rnd = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            let nonce = digest::nonce(bit, now, rnd, req.nonce_secret.as_deref());
            let mut v = format!(
                "Digest realm=\"{}\", charset=\"UTF-8\", algorithm={name}, nonce=\"{nonce}\", qop=\"auth\"",
                req.realm
            );
            if stale != 0 {
                v.push_str(", stale=true");
            }
            x.rq.answer_fields
                .push((&b"WWW-Authenticate"[..], v.into_bytes()));
        }
        Flow::Status(401)
    }

    /// The Digest check (lighttpd's mod_auth_check_digest): Go with REMOTE_USER
    /// set, or 400/401/500.
    fn digest(&self, x: &mut Cx, req: &Require) -> Flow {
        let view = x.view;
        let path = || String::from_utf8_lossy(&x.rq.path).into_owned();
        let backend = match backend_of(view.auth_backend) {
            Some(Backend::Htpasswd) => {
                self.log(format!(
                    "auth.require \"method\" => \"digest\" invalid (try \"basic\"?) for {}",
                    path()
                ));
                return Flow::Status(500);
            }
            Some(b) => b,
            None => {
                self.log(format!("auth.backend not configured for {}", path()));
                return Flow::Status(500);
            }
        };
        let hdr = match x.rq.header(x.base, "Authorization") {
            Some(h) if h.len() >= 7 && h[..7].eq_ignore_ascii_case(b"Digest ") => h[7..].to_vec(),
            _ => return self.digest_challenge(x, req, 0),
        };
        let p = digest::parse(&hdr);
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(resp)) =
            (p.username, p.realm, p.nonce, p.uri, p.response)
        else {
            self.log("digest: missing field".into());
            return Flow::Status(400);
        };
        if p.qop.is_some() && (p.nc.is_none() || p.cnonce.is_none()) {
            self.log("digest: missing field".into());
            return Flow::Status(400);
        }
        if realm != req.realm.as_bytes() {
            self.log("digest: realm mismatch".into());
            return self.digest_challenge(x, req, 0);
        }
        let alg_name = String::from_utf8_lossy(p.algorithm.unwrap_or(b""));
        let a = match digest::parse_algorithm(&alg_name) {
            Some(a) if req.algos & a & !digest::SESS != 0 => a,
            _ => {
                self.log(format!("digest: ({alg_name}): invalid"));
                return self.digest_challenge(x, req, 0);
            }
        };
        if a & digest::SESS != 0 && p.cnonce.is_none() {
            self.log(format!("digest: ({alg_name}): missing field"));
            return Flow::Status(400);
        }
        if resp.len() != digest::hex_len(a) || !resp.iter().all(u8::is_ascii_hexdigit) {
            self.log(format!(
                "digest: ({}): invalid format",
                String::from_utf8_lossy(resp)
            ));
            return Flow::Status(400);
        }
        if p.qop.is_some_and(|q| q.eq_ignore_ascii_case(b"auth-int")) {
            self.log("digest: qop=auth-int not supported".into());
            return Flow::Status(400);
        }
        if x.base.head.target.of(x.base.buf) != uri {
            self.log(format!(
                "digest: auth failed: uri mismatch ({} != {}), IP: {}",
                String::from_utf8_lossy(x.base.head.target.of(x.base.buf)),
                String::from_utf8_lossy(uri),
                x.rq.remote_ip
            ));
            return Flow::Status(400);
        }
        let now = x.fs.clock.unix;
        match digest::check_nonce(nonce, a, now, req.nonce_secret.as_deref()) {
            digest::NonceCheck::Ok => {}
            digest::NonceCheck::Stale => return self.digest_challenge(x, req, a & !digest::SESS),
            digest::NonceCheck::Invalid => {
                self.log("digest: nonce invalid".into());
                return Flow::Status(400);
            }
            digest::NonceCheck::Mismatch => {
                self.log("digest: nonce mismatch".into());
                return self.digest_challenge(x, req, 0);
            }
        }
        let file = match backend {
            Backend::Htdigest => view.auth_htdigest_userfile,
            _ => view.auth_plain_userfile,
        };
        let ha1 = self
            .stored(file, backend, user, realm, x.fs.clock.mono)
            .and_then(|stored| match backend {
                Backend::Htdigest => (stored.len() == digest::hex_len(a))
                    .then(|| String::from_utf8_lossy(&stored).to_ascii_lowercase()),
                _ => Some(digest::h(a, &[user, b":", realm, b":", &stored])),
            });
        let Some(ha1) = ha1 else {
            self.refuse(x);
            return self.digest_challenge(x, req, 0);
        };
        let want = digest::response(a, &ha1, &p, x.base.method());
        let ok = bool::from(want.as_bytes().ct_eq(&resp.to_ascii_lowercase()));
        if !ok {
            self.log(format!(
                "digest: auth failed for {}: wrong password, IP: {}",
                String::from_utf8_lossy(user),
                x.rq.remote_ip
            ));
            self.refuse(x);
            return self.digest_challenge(x, req, 0);
        }
        if !req.allows(user) {
            return self.digest_challenge(x, req, 0);
        }
        x.rq.remote_user.clear();
        x.rq.remote_user.push_str(&String::from_utf8_lossy(user));
        x.rq.auth_type = "Digest";
        Flow::Go
    }

    /// The stored password (plain) or HA1 (htdigest, for `realm`) of `user`.
    fn stored(
        &self,
        file: &str,
        backend: Backend,
        user: &[u8],
        realm: &[u8],
        now: u64,
    ) -> Option<Vec<u8>> {
        if file.is_empty() {
            return None;
        }
        let mut files = self.files.borrow_mut();
        let files = &mut files[usize::from(backend == Backend::Htdigest)];
        if !files.contains_key(file) {
            files.insert(file.to_string(), UserFile::default());
        }
        let uf = files.get_mut(file)?;
        self.refresh(file, backend, uf, now);
        uf.lines
            .iter()
            .find(|(u, r, _)| u == user && (backend != Backend::Htdigest || r == realm))
            .map(|(_, _, p)| p.clone())
    }

    /// Does `pw` verify for `user` in `file`? From the caches when it was
    /// checked lately; else by its hash, a slow one only when the budget allows.
    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        file: &str,
        backend: Backend,
        req: &Require,
        (user, pw): (&[u8], &[u8]),
        now: u64,
        ttl: u64,
        base: &super::Base,
    ) -> Verdict {
        if file.is_empty() {
            return Verdict::Fail;
        }
        let mut files = self.files.borrow_mut();
        let files = &mut files[usize::from(backend == Backend::Htdigest)];
        if !files.contains_key(file) {
            files.insert(file.to_string(), UserFile::default());
        }
        let Some(uf) = files.get_mut(file) else {
            return Verdict::Fail;
        };
        self.refresh(file, backend, uf, now);
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(pw);
        let digest: [u8; 32] = h.finalize().into();
        let mut key = self.key.borrow_mut();
        key.clear();
        key.extend_from_slice(&req.id.to_le_bytes());
        key.extend_from_slice(user);
        if let Some((g, d, t)) = self.cache.borrow().get(&key[..]) {
            let fresh = *g == uf.generation && now.saturating_sub(*t) < ttl;
            if fresh && bool::from(d.ct_eq(&digest)) {
                return Verdict::Ok;
            }
        }
        let failed_key = self.failed_key(uf.generation, req.id, user, pw);
        if let Some(t) = self.failed.borrow().get(&failed_key) {
            if now.saturating_sub(*t) < ttl {
                return Verdict::Fail;
            }
        }
        let realm = req.realm.as_bytes();
        let Some((_, _, stored)) = uf
            .lines
            .iter()
            .find(|(u, r, _)| u == user && (backend != Backend::Htdigest || r == realm))
        else {
            return Verdict::Fail;
        };
        // Slow hashing (not for an internal request, which cannot wait) goes
        // through the queue of verifications under way.
        let slow = backend == Backend::Htpasswd && slow_hash(stored) && !base.internal;
        let queued = match slow {
            true => match self.slow_verify(failed_key, stored, pw, now) {
                Slow::Later(at) => return Verdict::Later(at),
                Slow::Busy(secs) => return Verdict::Busy(secs),
                Slow::Done(ok) => ok,
            },
            false => None,
        };
        let ok = match (queued, backend) {
            (Some(ok), _) => ok,
            (None, Backend::Plain) => bool::from(stored.as_slice().ct_eq(pw)),
            (None, Backend::Htdigest) => {
                let mut m = md5::Md5::new();
                m.update(user);
                m.update(b":");
                m.update(realm);
                m.update(b":");
                m.update(pw);
                let hex = hex(&m.finalize());
                bool::from(hex.as_bytes().ct_eq(&stored.to_ascii_lowercase()))
            }
            (None, Backend::Htpasswd) => match check_htpasswd(stored, pw) {
                Some(ok) => ok,
                None => {
                    self.log(format!(
                        "{file}: the password hash of user {} is of a kind wickd cannot verify; the user is refused",
                        String::from_utf8_lossy(user)
                    ));
                    false
                }
            },
        };
        if ok {
            let mut c = self.cache.borrow_mut();
            if c.len() >= CACHE_MAX {
                c.retain(|_, (_, _, t)| now.saturating_sub(*t) < ttl);
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
            }
            c.insert(key[..].into(), (uf.generation, digest, now));
            return Verdict::Ok;
        }
        let mut f = self.failed.borrow_mut();
        if f.len() >= FAILED_MAX {
            f.retain(|_, t| now.saturating_sub(*t) < ttl);
            if f.len() >= FAILED_MAX {
                f.clear();
            }
        }
        f.insert(failed_key, now);
        Verdict::Fail
    }

    /// A slow verification of `pw` against `stored`, as the worker's budget
    /// allows: bcrypt a slice at a time (`bcrypt_steps.rs`), other kinds whole.
    /// Verifications under way are kept by `id` (the failed-login key: one per
    /// user, password and file), so that the same login sent twice shares one;
    /// a new one is taken only while all would be done within
    /// [`budget::MAX_WAIT`] (and at most [`RUNNING_MAX`]), one waiting twice
    /// that is given up: else 503. `Done(None)`: a hash kind wickd cannot verify.
    fn slow_verify(&self, id: [u8; 32], stored: &[u8], pw: &[u8], now: u64) -> Slow {
        let mut running = self.running.borrow_mut();
        let each = self.slow_cost.get() * budget::SHARE_DIV;
        if !running.contains_key(&id) {
            let fits =
                |n: usize| n < RUNNING_MAX && (n == 0 || each * (n as u32 + 1) <= budget::MAX_WAIT);
            if !fits(running.len()) {
                // Those whose clients stopped asking go first.
                running.retain(|_, r| now.saturating_sub(r.touched) < 3);
                if !fits(running.len()) {
                    let wait = each * running.len() as u32;
                    return Slow::Busy(wait.as_secs().max(1));
                }
            }
            let work = match bcrypt_steps::Stepped::new(stored, pw) {
                Some(job) => Work::Sliced(Box::new(job)),
                None => Work::Whole,
            };
            let since = Instant::now();
            running.insert(
                id,
                Running {
                    work,
                    since,
                    touched: now,
                    spent: std::time::Duration::ZERO,
                },
            );
        }
        let Some(r) = running.get_mut(&id) else {
            return Slow::Done(Some(false));
        };
        r.touched = now;
        if r.since.elapsed() > budget::MAX_WAIT * 2 {
            running.remove(&id);
            return Slow::Busy(each.as_secs().max(1));
        }
        let t0 = Instant::now();
        match self.budget.borrow_mut().gate(t0) {
            budget::Gate::Now => {}
            budget::Gate::Later(at) => return Slow::Later(at),
            budget::Gate::Busy(secs) => return Slow::Busy(secs),
        }
        let rounds = self.rounds.get();
        let done = match &mut r.work {
            Work::Sliced(job) => job.step(rounds).map(Some),
            Work::Whole => Some(check_htpasswd(stored, pw)),
        };
        let took = t0.elapsed();
        self.budget.borrow_mut().spent(took, t0 + took);
        r.spent += took;
        if let Work::Sliced(_) = r.work {
            // Rounds for the next slice: about SLICE of work.
            let per_round = (took.as_nanos() / u128::from(rounds.max(1))).max(1);
            let next = (SLICE.as_nanos() / per_round).clamp(1, 1 << 16) as u64;
            self.rounds.set((rounds + next) / 2);
        }
        let Some(verdict) = done else {
            return Slow::Later(Instant::now());
        };
        let spent = r.spent;
        running.remove(&id);
        self.slow_cost.set((self.slow_cost.get() * 3 + spent) / 4);
        Slow::Done(verdict)
    }

    /// The key a failed login is kept under: the worker's secret salt over the
    /// file's generation, the rule, the user and the password (lengths included,
    /// so no two pairs run together).
    fn failed_key(&self, generation: u64, id: u32, user: &[u8], pw: &[u8]) -> [u8; 32] {
        sha2::Sha256::new()
            .chain_update(self.salt)
            .chain_update(b"failed")
            .chain_update(generation.to_le_bytes())
            .chain_update(id.to_le_bytes())
            .chain_update((user.len() as u64).to_le_bytes())
            .chain_update(user)
            .chain_update(pw)
            .finalize()
            .into()
    }

    /// Read `file` again when it changed (looked at once a second at most).
    fn refresh(&self, file: &str, backend: Backend, uf: &mut UserFile, now: u64) {
        if uf.generation != 0 && uf.looked == now {
            return;
        }
        uf.looked = now;
        let meta = match std::fs::metadata(file) {
            Ok(m) => m,
            Err(e) => {
                // Logged when it starts failing, not every second after.
                if uf.id.take().is_some() || !uf.failed {
                    self.log(format!("opening auth user file {file} failed: {e}"));
                }
                uf.failed = true;
                uf.lines.clear();
                uf.generation += 1;
                return;
            }
        };
        let id = (
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
        );
        if uf.id == Some(id) {
            return;
        }
        uf.generation += 1;
        uf.lines.clear();
        match std::fs::read(file) {
            Ok(data) => {
                uf.id = Some(id);
                uf.lines = parse_file(&data, backend, |n| {
                    self.log(format!(
                        "parse error in {file} line {n}: expected 'username:{}'",
                        if backend == Backend::Htdigest {
                            "realm:hashed password"
                        } else {
                            "hashed password"
                        }
                    ))
                });
            }
            Err(e) => {
                uf.id = None;
                if !uf.failed {
                    // Landlock allows the file's directory, or (directly under
                    // `/` or a top-level directory) the inode the worker started with.
                    let hint = match e.kind() {
                        std::io::ErrorKind::PermissionDenied => " (it must be readable by server.username; a user file in / or a directory directly beneath it, replaced by rename, is outside the worker's sandbox until a graceful restart, SIGUSR1)",
                        _ => "",
                    };
                    self.log(format!("opening auth user file {file} failed: {e}{hint}"));
                }
                uf.failed = true;
                return;
            }
        }
        uf.failed = false;
        // Old verifications can no longer match (the generation is in the key):
        // drop what is older than this second.
        self.cache.borrow_mut().retain(|_, (_, _, t)| *t >= now);
        self.failed.borrow_mut().retain(|_, t| *t >= now);
    }
}

/// `user:password` (`user:realm:HA1` for htdigest) lines; blank and `#` lines
/// skipped, bad lines reported and skipped.
fn parse_file(
    data: &[u8],
    backend: Backend,
    mut bad: impl FnMut(usize),
) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (n, line) in data.split(|&c| c == b'\n').enumerate() {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let Some(i) = line.iter().position(|&c| c == b':') else {
            bad(n + 1);
            continue;
        };
        let (user, rest) = (&line[..i], &line[i + 1..]);
        if backend == Backend::Htdigest {
            let Some(j) = rest.iter().position(|&c| c == b':') else {
                bad(n + 1);
                continue;
            };
            out.push((user.to_vec(), rest[..j].to_vec(), rest[j + 1..].to_vec()));
        } else {
            out.push((user.to_vec(), Vec::new(), rest.to_vec()));
        }
    }
    out
}

pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for c in b {
        s.push_str(&format!("{c:02x}"));
    }
    s
}

/// A hash whose check takes milliseconds or more (many rounds): it waits for the
/// worker's budget. {SHA} and the kinds wickd cannot verify do not.
fn slow_hash(stored: &[u8]) -> bool {
    [
        "$2a$", "$2b$", "$2x$", "$2y$", "$5$", "$6$", "$1$", "$apr1$",
    ]
    .iter()
    .any(|p| stored.starts_with(p.as_bytes()))
}

/// Verify `pw` against an htpasswd hash: Some(matches), None for a hash kind wickd
/// cannot verify (DES crypt and others).
fn check_htpasswd(stored: &[u8], pw: &[u8]) -> Option<bool> {
    let s = std::str::from_utf8(stored).ok()?;
    if s.starts_with("$apr1$") || s.starts_with("$1$") {
        let magic = if s.starts_with("$1$") {
            "$1$"
        } else {
            "$apr1$"
        };
        let calc = md5_crypt(pw, &s[magic.len()..], magic);
        return Some(bool::from(calc.as_bytes().ct_eq(stored)));
    }
    if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return Some(bcrypt::verify(pw, s).unwrap_or(false));
    }
    if let Some(b64) = s.strip_prefix("{SHA}") {
        let d = sha1::Sha1::digest(pw);
        let calc = base64::engine::general_purpose::STANDARD.encode(d);
        return Some(bool::from(calc.as_bytes().ct_eq(b64.as_bytes())));
    }
    if s.starts_with("$5$") || s.starts_with("$6$") {
        let Ok(p) = std::str::from_utf8(pw) else {
            return Some(false);
        };
        let r = if s.starts_with("$5$") {
            sha_crypt::sha256_check(p, s)
        } else {
            sha_crypt::sha512_check(p, s)
        };
        return Some(r.is_ok());
    }
    None
}

/// MD5-crypt (`$1$`) and Apache's `$apr1$`: the same algorithm, another magic.
fn md5_crypt(pw: &[u8], rest: &str, magic: &str) -> String {
    let salt = rest.split('$').next().unwrap_or("");
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    let mut alt = md5::Md5::new();
    alt.update(pw);
    alt.update(salt);
    alt.update(pw);
    let alt = alt.finalize();
    let mut ctx = md5::Md5::new();
    ctx.update(pw);
    ctx.update(magic.as_bytes());
    ctx.update(salt);
    let mut n = pw.len();
    while n > 0 {
        ctx.update(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let mut c = md5::Md5::new();
        if i & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(pw);
        }
        if i & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    const ITOA: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(magic);
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    let f = |i: usize| u32::from(fin[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64((f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    to64(f(11), 2);
    out
}

fn prefixed(path: &[u8], prefix: &str, nocase: bool) -> bool {
    let p = prefix.as_bytes();
    path.len() >= p.len()
        && if nocase {
            path[..p.len()].eq_ignore_ascii_case(p)
        } else {
            &path[..p.len()] == p
        }
}

impl Module for Auth {
    fn name(&self) -> &'static str {
        "mod_auth"
    }

    fn hooks(&self) -> u16 {
        if self.active {
            hook::URI_CLEAN
        } else {
            0
        }
    }

    fn uri_clean(&self, x: &mut Cx) -> Flow {
        if matches!(x.view.auth_require, Value::Array(a) if a.is_empty()) {
            return Flow::Go;
        }
        let id = x.block_of(|p| p.auth_require().is_some());
        let Some(list) = self.requires.get(id) else {
            return Flow::Go;
        };
        let nocase = *x.view.force_lowercase_filenames;
        let Some(req) = list
            .iter()
            .find(|r| prefixed(&x.rq.path, &r.prefix, nocase))
        else {
            return Flow::Go;
        };
        if *x.view.auth_extern_authn || req.method == Method::Extern {
            if !x.rq.remote_user.is_empty() && req.allows(x.rq.remote_user.as_bytes()) {
                return Flow::Go;
            }
            if req.method == Method::Extern {
                return Flow::Status(401);
            }
        }
        match req.method {
            Method::Digest => self.digest(x, req),
            _ => self.basic(x, req),
        }
    }

    fn trigger(&self, t: &mut Trigger) {
        let mut l = self.log.borrow_mut();
        t.errors
            .extend(l.drain(..).map(|s| format!("mod_auth: {s}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_crypt_matches_openssl() {
        // openssl passwd -apr1 -salt abcdefgh secret; openssl passwd -1 ...
        let apr1 = b"$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/";
        assert_eq!(check_htpasswd(apr1, b"secret"), Some(true));
        assert_eq!(check_htpasswd(apr1, b"secreT"), Some(false));
        let md5 = b"$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1";
        assert_eq!(check_htpasswd(md5, b"secret"), Some(true));
    }

    #[test]
    fn other_hashes() {
        let sha = b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";
        assert_eq!(check_htpasswd(sha, b"secret"), Some(true));
        assert_eq!(check_htpasswd(sha, b"x"), Some(false));
        let b = b"$2y$05$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYEaDu";
        assert_eq!(check_htpasswd(b, b"secret"), Some(true));
        assert_eq!(check_htpasswd(b, b"nope"), Some(false));
        let s6 = b"$6$5xIyKIqRL0S4wsP8$IIj1mGszOfIFXBduIQpgjgEjmG9b0ceSZCG2ifYXpOx1da3Vpu8xbUFzTlnr.YGcO.h8Omr5oTxPWkwE7z.ZN/";
        assert_eq!(check_htpasswd(s6, b"secret"), Some(true));
        assert_eq!(check_htpasswd(s6, b"secret2"), Some(false));
        // DES crypt: not verifiable
        assert_eq!(check_htpasswd(b"abJnggxhB/yWI", b"secret"), None);
    }

    #[test]
    fn require_rules() {
        let mut id = 0;
        let v = |r: &str| {
            Value::Array(vec![(
                Some("/p".into()),
                Value::Array(vec![
                    (Some("method".into()), Value::Str("basic".into())),
                    (Some("realm".into()), Value::Str("R".into())),
                    (Some("require".into()), Value::Str(r.into())),
                ]),
            )])
        };
        let r = parse_require(&v("user=a|user=b"), &mut id).expect("parses");
        assert!(r[0].allows(b"a") && r[0].allows(b"b") && !r[0].allows(b"c"));
        assert_eq!(r[0].challenge, b"Basic realm=\"R\", charset=\"UTF-8\"");
        assert!(parse_require(&v("valid-user"), &mut id).expect("parses")[0].allows(b"z"));
        assert!(!parse_require(&v("group=g"), &mut id).expect("parses")[0].allows(b"g"));
        assert!(parse_require(&v("user"), &mut id).is_err());
        assert!(parse_require(&v("user="), &mut id).is_err());
        assert!(parse_require(&v("user=a|valid-user=x"), &mut id).is_err());
        assert!(parse_require(&v("bogus=1"), &mut id).is_err());
    }
}
