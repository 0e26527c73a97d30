//! mod_fastcgi, mod_scgi, mod_proxy and mod_wstunnel as modules of the handler
//! stage: the
//! `*.server` in force for the request decides, as lighttpd's gw_check_extension
//! does, whether a backend takes it: a URL prefix key, or a suffix key of the URL
//! path (check-local disabled, as it always is for mod_proxy) or of a file that
//! exists (check-local, the default; path info split off as for CGI). The claimed
//! request becomes a [`GatewayJob`] with its CGI environment, in the wire format
//! of the module (and of scgi.protocol), or, for mod_proxy, with its HTTP
//! exchange (proxy.header and proxy.forwarded in force), or, for mod_wstunnel
//! (only a WebSocket opening handshake), with its WebSocket state.

use super::job::{GatewayJob, Start, Wire};
use super::proxy;
use super::{Balance, Pool};
use crate::handler::Handler;
use crate::mods::{hook, Gateways, HandlerCx, Module};
use std::cell::RefCell;
use std::rc::Rc;
use wick_conf::{Config, Value, View};
use wick_proto::cgienv::{self, CgiFacts, Derived};

/// Which gateway module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    FastCgi,
    Scgi,
    Proxy,
    WsTunnel,
}

impl Kind {
    fn module(self) -> &'static str {
        match self {
            Kind::FastCgi => "mod_fastcgi",
            Kind::Scgi => "mod_scgi",
            Kind::Proxy => "mod_proxy",
            Kind::WsTunnel => "mod_wstunnel",
        }
    }

    /// Its keys' prefix: `fastcgi`, `scgi`, `proxy`.
    fn prefix(self) -> &'static str {
        match self {
            Kind::FastCgi => "fastcgi",
            Kind::Scgi => "scgi",
            Kind::Proxy => "proxy",
            Kind::WsTunnel => "wstunnel",
        }
    }

    /// Its `*.server` value parsed (mod_proxy's leaves unknown host options out,
    /// as lighttpd ignores them).
    fn parse(self, v: &Value) -> Result<super::Table, String> {
        let what = format!("{}.server", self.prefix());
        match self {
            Kind::Proxy => super::parse_lenient(v, &what),
            _ => super::parse(v, &what),
        }
    }

    /// The module's keys in force for a request: `*.server`, `*.balance`,
    /// `*.map-extensions`, and the wire (scgi.protocol).
    fn keys<'v>(self, view: &'v View) -> Keys<'v> {
        match self {
            Kind::FastCgi => Keys {
                server: view.fastcgi_server,
                balance: view.fastcgi_balance,
                map_extensions: view.fastcgi_map_extensions,
                wire: Wire::FastCgi,
            },
            Kind::Scgi => Keys {
                server: view.scgi_server,
                balance: view.scgi_balance,
                map_extensions: view.scgi_map_extensions,
                wire: if view.scgi_protocol == "uwsgi" {
                    Wire::Uwsgi
                } else {
                    Wire::Scgi
                },
            },
            Kind::Proxy => Keys {
                server: view.proxy_server,
                balance: view.proxy_balance,
                map_extensions: view.proxy_map_extensions,
                wire: Wire::Http,
            },
            Kind::WsTunnel => Keys {
                server: view.wstunnel_server,
                balance: view.wstunnel_balance,
                map_extensions: view.wstunnel_map_extensions,
                wire: Wire::WebSocket,
            },
        }
    }
}

struct Keys<'v> {
    server: &'v Value,
    balance: &'v str,
    map_extensions: &'v [(String, String)],
    wire: Wire,
}

/// The name of each host of a pool (empty: unnamed).
type HostNames = Rc<Vec<String>>;

pub struct GatewayModule {
    kind: Kind,
    /// Parsed `*.server` values with their hosts' state, found by the address of
    /// the value in the compiled configuration (which lives as long as the
    /// worker): one pool per block that sets the key; with each host's name
    /// (proxy.replace-http-host).
    pools: RefCell<Vec<(*const Value, Rc<Pool>, HostNames)>>,
    /// mod_proxy: parsed proxy.header values, found the same way.
    headers: RefCell<Vec<(*const Value, Rc<proxy::Header>)>>,
    /// mod_proxy: server.feature-flags "proxy.force-http10", the default of
    /// proxy.header's force-http10.
    force_http10: bool,
}

impl GatewayModule {
    /// Every value of the module's keys is checked here, so that a bad one stops
    /// the start (the master's check does the same).
    pub fn new(cfg: &Config, kind: Kind) -> Result<GatewayModule, String> {
        check(cfg, kind)?;
        let force_http10 = cfg
            .server
            .feature_flags
            .iter()
            .find(|(k, _)| k == "proxy.force-http10")
            .is_some_and(|(_, v)| wick_conf::options::parse_bool(v).unwrap_or(false));
        Ok(GatewayModule {
            kind,
            pools: RefCell::new(Vec::new()),
            headers: RefCell::new(Vec::new()),
            force_http10,
        })
    }

    fn pool(&self, v: &Value) -> Option<(Rc<Pool>, HostNames)> {
        let mut pools = self.pools.borrow_mut();
        if let Some((_, p, n)) = pools.iter().find(|(k, _, _)| std::ptr::eq(*k, v)) {
            return Some((p.clone(), n.clone()));
        }
        // (checked at start: a value that does not parse cannot be in force)
        let mut t = self.kind.parse(v).ok()?;
        if matches!(self.kind, Kind::Proxy | Kind::WsTunnel) {
            // lighttpd's mod_proxy and mod_wstunnel clear check-local on every host.
            for h in &mut t.hosts {
                h.check_local = false;
            }
        }
        let p = Rc::new(Pool::new(t));
        let names = Rc::new(host_names(v));
        pools.push((v as *const Value, p.clone(), names.clone()));
        Some((p, names))
    }

    /// Whether the pool of `v` has no key that could take `path` (parsed
    /// first, once; None: `v` does not parse): the answer for every static
    /// request (asked twice, for the authorizers and the responders), found
    /// without the pool's handles, the balance or the hash key a claim needs.
    fn declines(
        &self,
        v: &Value,
        view: &View,
        map: &[(String, String)],
        path: &[u8],
        auth: bool,
    ) -> Option<bool> {
        let find = |pools: &[(*const Value, Rc<Pool>, HostNames)]| {
            pools.iter().position(|(k, _, _)| std::ptr::eq(*k, v))
        };
        if find(&self.pools.borrow()).is_none() {
            self.pool(v)?;
        }
        let pools = self.pools.borrow();
        let (_, pool, _) = &pools[find(&pools)?];
        Some(
            (auth && !pool.table.exts.iter().any(|e| e.authorizer))
                || (uri_key(pool, map, path, auth).is_none()
                    && !could_select(pool, view, map, path, auth)),
        )
    }

    /// A CONNECT is mod_proxy's to tunnel: proxy.header "connect" is on, and
    /// the request is HTTP/1.x (an HTTP/2 stream is no byte stream of its own).
    fn tunnels(&self, x: &HandlerCx) -> bool {
        x.base.head.version != crate::request::Version::Http2
            && self.header(x.view.proxy_header).connect
    }

    /// proxy.header in force, parsed once per value.
    fn header(&self, v: &Value) -> Rc<proxy::Header> {
        let mut headers = self.headers.borrow_mut();
        if let Some((_, h)) = headers.iter().find(|(k, _)| std::ptr::eq(*k, v)) {
            return h.clone();
        }
        // (checked at start; the default value is the empty list)
        let h = Rc::new(proxy::header(v, self.force_http10).unwrap_or_default());
        headers.push((v as *const Value, h.clone()));
        h
    }
}

/// The name of each host of a `*.server` tree, in `parse`'s order (empty for
/// an unnamed one): lighttpd's host id, the Host proxy.replace-http-host sends.
fn host_names(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Value::Array(items) = v else {
        return out;
    };
    for (_, hosts) in items {
        let Value::Array(list) = hosts else {
            continue;
        };
        let direct = list
            .iter()
            .all(|(k, v)| k.is_some() && !matches!(v, Value::Array(_)));
        if direct && !list.is_empty() {
            out.push(String::new());
        } else {
            out.extend(list.iter().map(|(k, _)| k.clone().unwrap_or_default()));
        }
    }
    out
}

/// The module's `*.server`, `*.balance` (and scgi.protocol) as wickd reads them,
/// in every block.
pub fn check(cfg: &Config, kind: Kind) -> Result<(), String> {
    let p = kind.prefix();
    let (server, balance) = (format!("{p}.server"), format!("{p}.balance"));
    for s in cfg.blocks.iter().flat_map(|b| &b.settings) {
        let at = format!("{}:{}", s.loc.file, s.loc.line);
        if s.key.eq_ignore_ascii_case(&server) {
            let t = kind.parse(&s.value).map_err(|e| format!("{at}: {e}"))?;
            if kind == Kind::WsTunnel && t.exts.iter().any(|e| e.authorizer) {
                return Err(format!(
                    "{at}: {server} must not define any hosts with attribute \"mode\" = \"authorizer\""
                ));
            }
        } else if s.key.eq_ignore_ascii_case(&balance) {
            if let Value::Str(b) = &s.value {
                Balance::parse(b).map_err(|e| format!("{at}: {balance}: {e}"))?;
            }
        } else if kind == Kind::Proxy && s.key.eq_ignore_ascii_case("proxy.header") {
            proxy::header(&s.value, false).map_err(|e| format!("{at}: {e}"))?;
        } else if kind == Kind::Proxy && s.key.eq_ignore_ascii_case("proxy.forwarded") {
            proxy::forwarded(&s.value).map_err(|e| format!("{at}: {e}"))?;
        } else if kind == Kind::Scgi
            && s.key.eq_ignore_ascii_case("scgi.protocol")
            && !matches!(&s.value, Value::Str(v) if v == "scgi" || v == "uwsgi")
        {
            return Err(format!(
                "{at}: unexpected type for key: scgi.protocol expected \"scgi\" or \"uwsgi\""
            ));
        }
    }
    Ok(())
}

/// A suffix (or a `*.map-extensions` suffix mapped to one) of `name`: the index
/// of the key it selects.
/// `auth`: among the authorizers' keys, else the responders'.
fn suffix_key(pool: &Pool, map: &[(String, String)], name: &[u8], auth: bool) -> Option<usize> {
    let exts = &pool.table.exts;
    if let Some((_, to)) = map
        .iter()
        .find(|(from, _)| !from.is_empty() && name.ends_with(from.as_bytes()))
    {
        if let Some(i) = exts
            .iter()
            .position(|e| e.authorizer == auth && e.key == *to)
        {
            return Some(i);
        }
    }
    exts.iter()
        .position(|e| e.authorizer == auth && !e.is_prefix() && name.ends_with(e.key.as_bytes()))
}

/// The first key the URL path matches: a prefix, or a suffix of the whole path
/// (`auth`: among the authorizers' keys, else the responders').
fn uri_key(pool: &Pool, map: &[(String, String)], path: &[u8], auth: bool) -> Option<usize> {
    let exts = &pool.table.exts;
    let mapped = map
        .iter()
        .find(|(from, _)| !from.is_empty() && path.ends_with(from.as_bytes()))
        .and_then(|(_, to)| {
            exts.iter()
                .position(|e| e.authorizer == auth && e.key == *to)
        });
    mapped.or_else(|| {
        exts.iter().position(|e| {
            if e.authorizer != auth {
                false
            } else if e.is_prefix() {
                path.starts_with(e.key.as_bytes())
            } else {
                path.ends_with(e.key.as_bytes())
            }
        })
    })
}

/// Could the file pass select this path? A prefix key starts it, a suffix key
/// (or a map-extensions one) is in it (path info may follow), or it names a
/// directory and an index file has such a suffix. Cheap and without allocation;
/// with server.force-lowercase-filenames always yes.
fn could_select(
    pool: &Pool,
    view: &View,
    map: &[(String, String)],
    path: &[u8],
    auth: bool,
) -> bool {
    if *view.force_lowercase_filenames {
        return true;
    }
    let suffixes = || {
        pool.table
            .exts
            .iter()
            .filter(|e| e.authorizer == auth && !e.is_prefix())
            .map(|e| e.key.as_str())
            .chain(map.iter().map(|(k, _)| k.as_str()))
            .filter(|k| !k.is_empty())
    };
    let has_suffix =
        |name: &[u8]| suffixes().any(|k| memchr::memmem::find(name, k.as_bytes()).is_some());
    pool.table
        .exts
        .iter()
        .any(|e| e.authorizer == auth && e.is_prefix() && path.starts_with(e.key.as_bytes()))
        || has_suffix(path)
        || (path.ends_with(b"/") && view.index_files.iter().any(|i| has_suffix(i.as_bytes())))
}

/// REQUEST_URI with a host's strip-request-uri prefix taken off (None: kept as
/// it is), as lighttpd's gw_backend does: only a prefix that ends at a '/', '?'
/// or the end.
fn strip_request_uri(strip: &str, target: &str) -> Option<String> {
    let strip = strip.trim_end_matches('/');
    let rest = target.strip_prefix(strip).filter(|_| !strip.is_empty())?;
    if rest.starts_with('/') {
        Some(rest.to_string())
    } else if rest.is_empty() || rest.starts_with('?') {
        Some(format!("/{rest}"))
    } else {
        None
    }
}

/// A backend job takes its host's settings: its name for log lines, X-Sendfile
/// (with the mimetypes for the file it names); no local redirects (lighttpd's
/// gateways run with opts.local_redir 0).
fn for_host(job: &mut crate::cgi::Job, host: &super::config::Host, view: &View) {
    job.backend = host.name.clone();
    job.xsendfile = host.xsendfile;
    job.xsendfile_docroot = host.xsendfile_docroot.clone();
    if host.xsendfile {
        job.mimetypes = view.mimetypes.clone();
    }
    job.local_redir = false;
}

/// SCRIPT_NAME's length for a prefix key without check-local (lighttpd: the
/// prefix and what follows it up to the next '/'; fix-root-scriptname on a "/"
/// key: empty, all of the path is PATH_INFO). Suffix keys: the whole path.
fn prefix_script_len(key: &str, fix_root: bool, path: &[u8]) -> usize {
    if !key.starts_with('/') {
        return path.len();
    }
    if key.len() == 1 && fix_root {
        return 0;
    }
    if path.len() > key.len() {
        if let Some(i) = memchr::memchr(b'/', &path[key.len()..]) {
            return key.len() + i;
        }
    }
    path.len()
}

impl Module for GatewayModule {
    fn name(&self) -> &'static str {
        self.kind.module()
    }

    fn hooks(&self) -> u16 {
        hook::CLAIM
    }

    /// lighttpd's gw_check_extension, first part: the authorizers' keys (not
    /// again once one granted this request), before any module claims it.
    fn authorize(&self, x: &mut HandlerCx, gw: &mut Gateways) -> Option<Box<dyn Handler>> {
        match x.rq.grant {
            None => self.claim_as(x, gw, true),
            Some(_) => None,
        }
    }

    /// The responders' keys.
    fn claim(&self, x: &mut HandlerCx, gw: &mut Gateways) -> Option<Box<dyn Handler>> {
        self.claim_as(x, gw, false)
    }
}

impl GatewayModule {
    /// Claim the request for a host of the authorizers' keys (`auth`) or of the
    /// responders'.
    fn claim_as(
        &self,
        x: &mut HandlerCx,
        gw: &mut Gateways,
        auth: bool,
    ) -> Option<Box<dyn Handler>> {
        let view = x.view;
        let keys = self.kind.keys(view);
        let v = keys.server;
        if matches!(v, Value::Array(a) if a.is_empty()) {
            return None;
        }
        if self.kind == Kind::WsTunnel && (auth || !super::wstunnel::wanted(x.base)) {
            // Not a WebSocket handshake: not mod_wstunnel's (it has no authorizers).
            return None;
        }
        if self.kind == Kind::Proxy && x.base.method() == b"CONNECT" && !self.tunnels(x) {
            // Not forwarded as a request: left to the core's 405.
            return None;
        }
        let map = keys.map_extensions;
        if self.declines(v, view, map, gw.path, auth)? {
            return None;
        }
        let (pool, names) = self.pool(v)?;
        let wire = keys.wire;
        let now = x.env.clock.mono;
        let balance = Balance::parse(keys.balance).unwrap_or(Balance::LeastConnection);
        // What hash and sticky spread over the hosts (nothing for the others).
        let hkey = match balance {
            Balance::Hash => {
                let mut k = gw.path.to_vec();
                if let Some(h) = x.base.head.host {
                    k.extend_from_slice(h.of(x.base.buf));
                }
                k
            }
            Balance::Sticky => gw.remote.0.to_string().into_bytes(),
            _ => Vec::new(),
        };
        // The URL pass (lighttpd's handle_uri_clean): a host without check-local
        // takes the request as the URL names it.
        let mut chosen = None;
        if let Some(ext) = uri_key(&pool, map, gw.path, auth) {
            let pick = pool.pick(ext, balance, &hkey, now, &[]);
            let Some(pick) = pick else {
                return Some(self.unavailable(x, gw, &pool, ext));
            };
            let host = pool.host(pick.host);
            if !host.check_local {
                let key = &pool.table.exts[ext].key;
                // (an authorizer's path is not split: no PATH_INFO)
                let len = match auth {
                    true => gw.path.len(),
                    false => prefix_script_len(key, host.fix_root_scriptname, gw.path),
                };
                let path = gw.path.to_vec();
                if self.kind == Kind::Proxy {
                    return Some(self.start_proxy(x, gw, &pool, &names, pick, balance, hkey));
                }
                if self.kind == Kind::WsTunnel {
                    return Some(self.start_wstunnel(x, gw, &pool, pick, balance, hkey));
                }
                let how = (wire, balance);
                return Some(self.start(x, gw, &pool, pick, how, hkey, &path, len));
            }
            chosen = Some(pick);
        }
        // The file pass (handle_subrequest_start): the file must exist. Not looked
        // up for a path no key could select (every static request passes here).
        if chosen.is_none() && !could_select(&pool, view, map, gw.path, auth) {
            return None;
        }
        let env = &mut *x.env;
        let exts = &pool.table.exts;
        let sel = crate::cgi::select_with(
            env.roots,
            env.cache,
            now,
            view,
            gw.path,
            false,
            |phys, url| {
                suffix_key(&pool, map, phys, auth).is_some()
                    || exts.iter().any(|e| {
                        e.authorizer == auth && e.is_prefix() && url.starts_with(e.key.as_bytes())
                    })
            },
        )?;
        let path = sel.path.unwrap_or_else(|| gw.path.to_vec());
        let script = &path[..sel.script_len];
        let mut phys = view.document_root.trim_end_matches('/').as_bytes().to_vec();
        phys.extend_from_slice(script);
        let ext = suffix_key(&pool, map, &phys, auth).or_else(|| {
            exts.iter().position(|e| {
                e.authorizer == auth && e.is_prefix() && script.starts_with(e.key.as_bytes())
            })
        })?;
        let pick = match chosen.filter(|p| p.ext == ext) {
            Some(p) => p,
            None => match pool.pick(ext, balance, &hkey, now, &[]) {
                Some(p) => p,
                None => return Some(self.unavailable(x, gw, &pool, ext)),
            },
        };
        let len = sel.script_len;
        Some(self.start(x, gw, &pool, pick, (wire, balance), hkey, &path, len))
    }
}

impl GatewayModule {
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        x: &mut HandlerCx,
        gw: &mut Gateways,
        pool: &Rc<Pool>,
        pick: super::Pick,
        (wire, balance): (Wire, Balance),
        hkey: Vec<u8>,
        path: &[u8],
        script_len: usize,
    ) -> Box<dyn Handler> {
        let host = pool.host(pick.host);
        let internal = match host.authorizer {
            true => gw.internal.clone(),
            false => None,
        };
        let key = gw.cgi.current;
        let module = self.kind.module();
        // An authorizer's variables first (lighttpd's r->env has them before
        // the second run's mod_setenv adds its own).
        let rq = x.rq;
        let granted = rq.grant.as_ref().map_or(&[][..], |g| &g.env[..]);
        let extra = &rq.env;
        crate::cgi::with_begin(x, gw, path, script_len, |p, view, b| {
            let clock_mono = p.clock.mono;
            let (mut job, env) = crate::cgi::begin_socket(p, view, b, module, |req, server| {
                let server = server();
                let docroot = match host.docroot.is_empty() {
                    true => view.document_root.trim_end_matches('/'),
                    false => host.docroot.as_str(),
                };
                let script_name = req.path.get(..req.script_name_len).unwrap_or(req.path);
                let mut script_filename = String::with_capacity(docroot.len() + req.path.len());
                script_filename.push_str(docroot);
                script_filename.push_str(script_name);
                if host.broken_scriptfilename {
                    script_filename.push_str(&req.path[script_name.len()..]);
                }
                let stripped = strip_request_uri(&host.strip_request_uri, req.target);
                let req = &CgiFacts {
                    target: stripped.as_deref().unwrap_or(req.target),
                    ..*req
                };
                cgienv::build(
                    req,
                    &Derived {
                        docroot,
                        script_filename: &script_filename,
                        server_tag: view.server_tag,
                        server_name: view.server_name,
                        server,
                        granted,
                        extra,
                        passthrough: &[],
                    },
                )
            });
            for_host(&mut job, host, view);
            let Some(env) = env else {
                return Box::new(GatewayJob::failed(job)) as Box<dyn Handler>;
            };
            let j = GatewayJob::new(Start {
                wire,
                job,
                pool: pool.clone(),
                pick,
                balance,
                hkey,
                env,
                key,
                now: clock_mono,
                http: None,
                ws: None,
                idle: 0,
            });
            match host.authorizer {
                true => Box::new(j.authorizer(&host.docroot, internal)) as Box<dyn Handler>,
                false => Box::new(j) as Box<dyn Handler>,
            }
        })
    }

    /// mod_proxy's request: the job, and the exchange that makes its HTTP head
    /// (proxy.header and proxy.forwarded in force) once a backend is connected.
    #[allow(clippy::too_many_arguments)]
    fn start_proxy(
        &self,
        x: &mut HandlerCx,
        gw: &mut Gateways,
        pool: &Rc<Pool>,
        names: &HostNames,
        pick: super::Pick,
        balance: Balance,
        hkey: Vec<u8>,
    ) -> Box<dyn Handler> {
        let view = x.view;
        let host = pool.host(pick.host);
        let key = gw.cgi.current;
        let header = self.header(view.proxy_header);
        // (checked at start)
        let forwarded = proxy::forwarded(view.proxy_forwarded).unwrap_or(0);
        // The target as lighttpd's r->target: normalised (or rewritten), its query.
        let mut target = Vec::with_capacity(x.req.raw_path.len() + x.req.query.len() + 1);
        crate::parseopts::normalize_target(x.req.raw_path, x.rq.parseopts, &mut target);
        if !x.req.query.is_empty() {
            target.push(b'?');
            target.extend_from_slice(x.req.query);
        }
        let base = x.base;
        let by = (forwarded & proxy::fwd::BY != 0).then(|| {
            crate::sys::sockname(base.fd)
                .map(|a| a.to_string())
                .or_else(
                    || match gw.cfg.listeners.get(base.listener).map(|l| &l.addr) {
                        Some(wick_conf::ListenAddr::Unix(p)) => Some(p.display().to_string()),
                        _ => None,
                    },
                )
                .unwrap_or_default()
        });
        let (peer, tls, scheme) = (base.peer, base.tls.is_some(), gw.scheme);
        let version = base.head.version;
        let scheme = if scheme == "https" { "https" } else { "http" };
        let replace_host = *view.proxy_replace_http_host;
        let idle = *view.max_read_idle;
        let names = names.clone();
        let path = gw.path.to_vec();
        let module = self.kind.module();
        crate::cgi::with_begin(x, gw, &path, path.len(), |p, view, b| {
            let clock_mono = p.clock.mono;
            let (mut job, request) = crate::cgi::begin_socket(p, view, b, module, |req, _| {
                let host = req.host.map(str::to_string);
                let request = proxy::Request {
                    method: req.method.to_string(),
                    target,
                    version,
                    host: host.clone(),
                    headers: req.headers.to_owned_list(),
                    peer,
                    scheme,
                    tls,
                    by,
                    remote_user: req.auth.map(|(u, _)| u.to_string()),
                    replace_host,
                    host_ids: names,
                    forwarded,
                };
                (request, proxy::Remap::new(header, host, tls))
            });
            for_host(&mut job, host, view);
            let Some((request, remap)) = request else {
                return Box::new(GatewayJob::failed(job)) as Box<dyn Handler>;
            };
            Box::new(GatewayJob::new(Start {
                wire: Wire::Http,
                job,
                pool: pool.clone(),
                pick,
                balance,
                hkey,
                env: Default::default(),
                key,
                now: clock_mono,
                http: Some(Box::new(proxy::Exchange::new(request, remap))),
                ws: None,
                idle,
            })) as Box<dyn Handler>
        })
    }

    /// mod_wstunnel's request: the handshake checked now (a refusal is answered
    /// without a backend), answered once a backend is connected.
    fn start_wstunnel(
        &self,
        x: &mut HandlerCx,
        gw: &mut Gateways,
        pool: &Rc<Pool>,
        pick: super::Pick,
        balance: Balance,
        hkey: Vec<u8>,
    ) -> Box<dyn Handler> {
        let view = x.view;
        let host = pool.host(pick.host);
        let key = gw.cgi.current;
        let handshake = super::wstunnel::handshake(x.base, view, x.env.clock.mono);
        let idle = *view.max_read_idle;
        let path = gw.path.to_vec();
        let module = self.kind.module();
        crate::cgi::with_begin(x, gw, &path, path.len(), |p, view, b| {
            let (clock, pages) = (p.clock, p.pages);
            let (mut job, begun) = crate::cgi::begin_socket(p, view, b, module, |_, _| ());
            for_host(&mut job, host, view);
            let ws = match (begun, handshake) {
                (Some(()), Ok(ws)) => ws,
                (Some(()), Err(status)) => {
                    // (the connection closes after it, as lighttpd's does)
                    job.keep_alive = false;
                    crate::cgi::fail(&mut job, clock, pages, status);
                    return Box::new(GatewayJob::failed(job)) as Box<dyn Handler>;
                }
                (None, _) => return Box::new(GatewayJob::failed(job)) as Box<dyn Handler>,
            };
            Box::new(GatewayJob::new(Start {
                wire: Wire::WebSocket,
                job,
                pool: pool.clone(),
                pick,
                balance,
                hkey,
                env: Default::default(),
                key,
                now: clock.mono,
                http: None,
                ws: Some(Box::new(ws)),
                idle,
            })) as Box<dyn Handler>
        })
    }

    /// Every host of the key is disabled: 503, as lighttpd answers when
    /// gw_host_get finds none.
    fn unavailable(
        &self,
        x: &mut HandlerCx,
        gw: &mut Gateways,
        pool: &Pool,
        ext: usize,
    ) -> Box<dyn Handler> {
        let key = pool.table.exts[ext].key.clone();
        let module = self.kind.module();
        gw.cgi.log.push(format!(
            "{module}: no backend of \"{key}\" is up (all disabled after failed connects)"
        ));
        let path = gw.path.to_vec();
        let len = path.len();
        crate::cgi::with_begin(x, gw, &path, len, |p, view, b| {
            let (clock, pages) = (p.clock, p.pages);
            let (mut job, _) = crate::cgi::begin_socket(p, view, b, module, |_, _| ());
            crate::cgi::fail(&mut job, clock, pages, 503);
            Box::new(GatewayJob::failed(job)) as Box<dyn Handler>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_name_of_prefix() {
        assert_eq!(prefix_script_len("/app", false, b"/app/x/y"), 4);
        assert_eq!(prefix_script_len("/app", false, b"/app.fcgi/x/y"), 9);
        assert_eq!(prefix_script_len("/", true, b"/a/b"), 0);
        assert_eq!(prefix_script_len("/", false, b"/a/b"), 2);
        assert_eq!(prefix_script_len(".php", false, b"/a/b.php"), 8);
    }
}
