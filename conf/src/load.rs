//! From the evaluated blocks to the typed [`Config`]: server options, per-block
//! patches, listeners, and the warnings lighttpd prints (unknown keys, keys set in
//! the wrong scope, modules it loads implicitly) and wickd's (keys it does not act
//! on, see [`crate::support`]).

use crate::error::ConfError;
use crate::eval::{read_source, suggest, Eval};
use crate::keys::{self, Scope};
use crate::lexer::Source;
use crate::model::{Block, BlockId, CondField, CondOp, Config, Setting, Value};
use crate::options::{FromValue, ListenAddr, Listener, Patch, ServerOptions, SocketOptions};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// Read, evaluate and type-check the configuration in `path` (lighttpd's `-f FILE`).
/// Relative `include`s are taken from the directory of `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut ev = Eval::new(base);
    let src = read_source(path)?;
    ev.parse_source(&src)?;
    finish(ev, path.to_path_buf())
}

/// The same for a configuration given as text (`-f -` reads stdin): `name` is used in
/// messages, `base_dir` resolves relative includes (empty: the current directory).
pub fn load_str(text: &str, name: &str, base_dir: &Path) -> Result<Config, ConfError> {
    let mut ev = Eval::new(base_dir.to_path_buf());
    ev.parse_source(&Source {
        name: name.to_string(),
        text: text.to_string(),
    })?;
    finish(ev, PathBuf::from(name))
}

fn is_var(key: &str) -> bool {
    key.len() >= 4 && key.as_bytes()[..4].eq_ignore_ascii_case(b"var.")
}

fn finish(ev: Eval, main_file: PathBuf) -> Result<Config, ConfError> {
    let blocks: Vec<Block> = ev
        .blocks
        .iter()
        .map(|b| Block {
            parent: b.parent,
            cond: b.cond.clone(),
            else_of: b.else_of,
            settings: b
                .entries
                .iter()
                .filter(|e| !is_var(&e.key))
                .map(|e| Setting {
                    key: e.key.clone(),
                    value: e.value.clone(),
                    loc: e.loc.clone(),
                })
                .collect(),
            loc: b.loc.clone(),
        })
        .collect();

    let server = server_options(&ev, &blocks)?;
    let (effective, implicit) = keys::compat_load(
        &server.modules,
        server.compat_module_load,
        &server.module_facts,
    );
    let mut warnings = ev.warnings.clone();
    warnings.extend(implicit);
    warnings.extend(check_keys(&blocks, &effective));
    let parseopts_at = blocks[0].settings.iter().find(|s| {
        s.key.eq_ignore_ascii_case("server.http-parseopts")
            || crate::parseopts::legacy_bit(&s.key).is_some()
    });
    if let Some(s) = parseopts_at {
        for w in server.http_parseopts.kept_strict() {
            warnings.push(format!(
                "WARNING: {}:{}: server.http-parseopts: {w}",
                s.loc.file, s.loc.line
            ));
        }
    }
    warnings.extend(crate::support::warnings(
        &blocks,
        &effective,
        &server.modules,
    ));

    let mut patches = Vec::with_capacity(blocks.len());
    for b in &blocks {
        let mut patch = Patch::default();
        for s in &b.settings {
            let key = s.key.to_ascii_lowercase();
            // Old names (server.dir-listing, server.indexfiles, ...) set the same
            // option as the new one; a later setting in the block wins.
            let key = match keys::alias_of(&key) {
                Some((new, _)) => new.to_string(),
                None => key,
            };
            patch
                .set(&key, &s.value)
                .map_err(|m| ev.error_at(&s.loc, format!("{}: {m}", s.key), None))?;
        }
        patches.push(patch);
    }

    let listeners = listeners(&ev, &blocks, &server)?;
    let mut config = Config {
        main_file,
        blocks,
        server,
        patches,
        listeners,
        warnings,
    };
    // A regex the engine cannot run fails start-up (the master compiles them with
    // cond::Compiled::new before it starts anything); loading it only warns, so
    // that `wickd -p` still prints a configuration lighttpd accepts.
    if let Err(e) = crate::cond::Compiled::new(&config) {
        config.warnings.push(format!(
            "WARNING: {}:{}:{}: {}; wickd will not start with this configuration",
            e.loc.file, e.loc.line, e.loc.col, e.message
        ));
    }
    Ok(config)
}

fn setting<'b>(b: &'b Block, key: &str) -> Option<&'b Setting> {
    b.settings.iter().find(|s| s.key.eq_ignore_ascii_case(key))
}

fn typed<T: FromValue>(ev: &Eval, b: &Block, key: &str) -> Result<Option<T>, ConfError> {
    match setting(b, key) {
        None => Ok(None),
        Some(s) => T::from_value(&s.value)
            .map(Some)
            .map_err(|m| ev.error_at(&s.loc, format!("{key}: {m}"), None)),
    }
}

fn server_options(ev: &Eval, blocks: &[Block]) -> Result<ServerOptions, ConfError> {
    let g = &blocks[0];
    let mut o = ServerOptions::default();
    macro_rules! set {
        ($field:ident, $key:literal) => {
            if let Some(v) = typed(ev, g, $key)? {
                o.$field = v;
            }
        };
        ($field:ident, $key:literal, opt) => {
            if let Some(v) = typed(ev, g, $key)? {
                o.$field = Some(v);
            }
        };
    }
    set!(port, "server.port");
    set!(bind, "server.bind", opt);
    set!(max_worker, "server.max-worker");
    set!(modules, "server.modules");
    set!(errorlog, "server.errorlog", opt);
    set!(errorlog_use_syslog, "server.errorlog-use-syslog");
    set!(max_connections, "server.max-connections");
    set!(max_fds, "server.max-fds");
    set!(listen_backlog, "server.listen-backlog");
    set!(
        log_request_header_on_error,
        "debug.log-request-header-on-error"
    );
    set!(username, "server.username", opt);
    set!(groupname, "server.groupname", opt);
    set!(chroot, "server.chroot", opt);
    set!(pid_file, "server.pid-file", opt);
    set!(max_keep_alive_requests, "server.max-keep-alive-requests");
    set!(max_keep_alive_idle, "server.max-keep-alive-idle");
    set!(max_request_field_size, "server.max-request-field-size");
    set!(min_request_body_rate, "server.min-request-body-rate");
    set!(
        graceful_shutdown_timeout,
        "server.graceful-shutdown-timeout"
    );
    set!(
        systemd_socket_activation,
        "server.systemd-socket-activation"
    );
    set!(compat_module_load, "server.compat-module-load");
    set!(upload_dirs, "server.upload-dirs");
    set!(syslog_facility, "server.syslog-facility", opt);
    set!(breakagelog, "server.breakagelog", opt);
    set!(h2proto, "server.h2proto");
    set!(h2c, "server.h2c");
    if let Some(s) = setting(g, "server.feature-flags") {
        let Value::Array(items) = &s.value else {
            return Err(ev.error_at(
                &s.loc,
                "server.feature-flags: expected a list of \"flag\" => value",
                None,
            ));
        };
        for (k, v) in items {
            let Some(k) = k else {
                return Err(ev.error_at(
                    &s.loc,
                    "server.feature-flags: expected \"flag\" => value elements",
                    None,
                ));
            };
            if k == "server.graceful-shutdown-timeout" {
                o.graceful_shutdown_timeout = u32::from_value(v).map_err(|m| {
                    ev.error_at(&s.loc, format!("server.feature-flags: {k}: {m}"), None)
                })?;
            }
            if k == "server.h2proto" || k == "server.h2c" {
                let on = crate::options::parse_bool(v).map_err(|m| {
                    ev.error_at(&s.loc, format!("server.feature-flags: {k}: {m}"), None)
                })?;
                if k == "server.h2proto" {
                    o.h2proto = on;
                } else {
                    o.h2c = on;
                }
            }
            o.feature_flags.push((k.clone(), v.clone()));
        }
    }
    // lighttpd reads server.http-parseopts before the old single-option keys.
    if let Some(s) = setting(g, "server.http-parseopts") {
        o.http_parseopts
            .apply(&s.value)
            .map_err(|m| ev.error_at(&s.loc, m, None))?;
    }
    for s in &g.settings {
        if let Some(bit) = crate::parseopts::legacy_bit(&s.key) {
            let on = crate::options::parse_bool(&s.value)
                .map_err(|m| ev.error_at(&s.loc, format!("{}: {m}", s.key), None))?;
            let o = &mut o.http_parseopts.0;
            *o = if on { *o | bit } else { *o & !bit };
        }
    }
    let settings = || blocks.iter().flat_map(|b| &b.settings);
    let prefixed = |s: &Setting, p: &str| {
        s.key.len() > p.len() && s.key.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    o.module_facts = keys::ModuleFacts {
        dirlisting: settings().any(|s| {
            (s.key.eq_ignore_ascii_case("dir-listing.activate")
                || s.key.eq_ignore_ascii_case("server.dir-listing"))
                && crate::options::parse_bool(&s.value).unwrap_or(false)
        }),
        ssl: settings().any(|s| prefixed(s, "ssl.")),
        compress: settings().any(|s| prefixed(s, "compress.")),
        auth_backends: settings()
            .filter(|s| s.key.eq_ignore_ascii_case("auth.backend"))
            .filter_map(|s| match &s.value {
                Value::Str(v) => Some(v.clone()),
                _ => None,
            })
            .collect(),
    };
    Ok(o)
}

/// lighttpd's start-up warnings about keys, in file order.
fn check_keys(blocks: &[Block], effective: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (id, b) in blocks.iter().enumerate() {
        for s in &b.settings {
            let key = s.key.as_str();
            let Some((_, module, scope)) = keys::lookup(key) else {
                if key.len() >= 12 && key.as_bytes()[..12].eq_ignore_ascii_case(b"dir-listing.") {
                    continue;
                }
                // lighttpd's text, then where the key is set.
                let mut w = format!("WARNING: unknown config-key: {key} (ignored)");
                if let Some(m) = suggest(key, keys::KEYS.iter().map(|k| k.0)) {
                    w.push_str(&format!("; did you mean {m}?"));
                }
                w.push_str(&format!(" (at {}:{})", s.loc.file, s.loc.line));
                out.push(w);
                continue;
            };
            // lighttpd never warns about dir-listing.* keys (see above).
            if !keys::module_loaded(module, effective) && module != "mod_dirlisting" {
                out.push(format!(
                    "WARNING: unknown config-key: {key} (ignored); {module} is not in server.modules (at {}:{})",
                    s.loc.file, s.loc.line
                ));
                continue;
            }
            if let Some((new, true)) = keys::alias_of(&key.to_ascii_lowercase()) {
                let w = format!("DEPRECATED: {key} replaced with {new}");
                if !out.contains(&w) {
                    out.push(w);
                }
            }
            if id == 0 {
                continue;
            }
            match scope {
                Scope::Server => {
                    out.push(format!(
                        "DEPRECATED: do not set server options in conditionals, variable: {key}"
                    ));
                }
                Scope::Socket => {
                    let socket_eq = matches!(&b.cond, Some(c) if c.field == CondField::ServerSocket && c.op == CondOp::Eq);
                    if !socket_eq {
                        out.push(format!(
                            "WARNING: {key} must be in global scope or $SERVER[\"socket\"] with '==', or else is ignored"
                        ));
                    }
                }
                Scope::Request => {}
            }
        }
    }
    out
}

/// Where `$SERVER["socket"]` text (or server.bind + server.port) listens, without
/// resolving a host name (that waits for [`resolve_listeners`]): "/path" (unix),
/// ":port", "host:port", "[v6]:port", "host" (default port).
enum Spec {
    Addr(ListenAddr),
    /// A host name and port.
    Name(String, u16),
}

fn parse_socket(spec: &str, default_port: u16, use_ipv6: bool) -> Result<Spec, String> {
    if spec.starts_with('/') {
        return Ok(Spec::Addr(ListenAddr::Unix(PathBuf::from(spec))));
    }
    let bad = || format!("invalid socket address \"{spec}\"");
    let port_of = |p: &str| -> Result<u16, String> {
        if p.is_empty() {
            Ok(default_port)
        } else {
            p.parse::<u16>()
                .map_err(|_| format!("invalid port in \"{spec}\""))
        }
    };
    let (host, port): (&str, u16) = if let Some(rest) = spec.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail {
            "" => default_port,
            t => port_of(t.strip_prefix(':').ok_or_else(bad)?)?,
        };
        (h, port)
    } else if spec.matches(':').count() > 1 {
        (spec, default_port) // a bare IPv6 address
    } else if let Some((h, p)) = spec.rsplit_once(':') {
        (h, port_of(p)?)
    } else {
        (spec, default_port)
    };
    let ip: Option<IpAddr> = if host.is_empty() {
        Some(if use_ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        })
    } else {
        host.parse().ok()
    };
    Ok(match ip {
        Some(ip) => Spec::Addr(ListenAddr::Tcp(SocketAddr::new(ip, port))),
        None => Spec::Name(host.to_string(), port),
    })
}

/// The address of a socket spec written with an IP address or a path; a host name
/// is not resolved here (an error).
pub(crate) fn socket_addr(
    spec: &str,
    default_port: u16,
    use_ipv6: bool,
) -> Result<ListenAddr, String> {
    match parse_socket(spec, default_port, use_ipv6)? {
        Spec::Addr(a) => Ok(a),
        Spec::Name(h, _) => Err(format!("\"{h}\" is a host name")),
    }
}

/// The listener address and the host name still to resolve, if any: until then
/// the address is the unspecified one with the right port, never bound
/// (listen.rs refuses a listener whose `host` is set).
fn listen_addr(
    spec: &str,
    default_port: u16,
    use_ipv6: bool,
) -> Result<(ListenAddr, Option<String>), String> {
    Ok(match parse_socket(spec, default_port, use_ipv6)? {
        Spec::Addr(a) => (a, None),
        Spec::Name(h, port) => (
            ListenAddr::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
            Some(h),
        ),
    })
}

/// Resolve the host names of the listeners (server.bind, `$SERVER["socket"]`), as
/// binding needs: at start-up, on a graceful restart and at -tt (as lighttpd's -tt
/// does), never for -p or -t. Two listeners that turn out to be one address merge
/// as they do when written alike.
pub fn resolve_listeners(config: &mut Config) -> Result<(), String> {
    let mut out: Vec<Listener> = Vec::with_capacity(config.listeners.len());
    for mut l in std::mem::take(&mut config.listeners) {
        if let Some(h) = l.host.take() {
            let port = match &l.addr {
                ListenAddr::Tcp(a) => a.port(),
                ListenAddr::Unix(_) => 0,
            };
            let at = match l.block {
                Some(b) => config
                    .blocks
                    .get(b)
                    .and_then(|b| b.cond.as_ref())
                    .map(|c| c.loc.clone()),
                None => config
                    .blocks
                    .first()
                    .and_then(|g| setting(g, "server.bind"))
                    .map(|s| s.loc.clone()),
            }
            .map(|loc| format!("{}:{}: ", loc.file, loc.line))
            .unwrap_or_default();
            l.addr = (h.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("{at}cannot resolve \"{h}\": {e}"))?
                .next()
                .map(ListenAddr::Tcp)
                .ok_or_else(|| format!("{at}\"{h}\" has no address"))?;
        }
        match out.iter_mut().find(|o| o.addr == l.addr) {
            Some(o) => {
                if o.block.is_none() && l.block.is_some() {
                    o.block = l.block;
                    o.socket = l.socket;
                }
            }
            None => out.push(l),
        }
    }
    config.listeners = out;
    Ok(())
}

fn socket_options(ev: &Eval, b: &Block, base: &SocketOptions) -> Result<SocketOptions, ConfError> {
    let mut o = base.clone();
    if let Some(v) = typed(ev, b, "server.listen-backlog")? {
        o.listen_backlog = v;
    }
    if let Some(v) = typed(ev, b, "server.use-ipv6")? {
        o.use_ipv6 = v;
    }
    if let Some(v) = typed(ev, b, "server.set-v6only")? {
        o.set_v6only = v;
    }
    if let Some(v) = typed::<String>(ev, b, "server.socket-perms")? {
        o.socket_perms = Some(v);
    }
    if let Some(v) = typed(ev, b, "ssl.engine")? {
        o.ssl_engine = v;
    }
    if let Some(v) = typed(ev, b, "server.defer-accept")? {
        o.defer_accept = v;
    }
    Ok(o)
}

fn listeners(
    ev: &Eval,
    blocks: &[Block],
    server: &ServerOptions,
) -> Result<Vec<Listener>, ConfError> {
    let global = socket_options(ev, &blocks[0], &SocketOptions::default())?;
    let (spec, (addr, host)) = match server.bind.as_deref() {
        Some(b) if b.starts_with('/') => {
            (b.to_string(), (ListenAddr::Unix(PathBuf::from(b)), None))
        }
        bind => {
            let host = bind.unwrap_or("");
            let host_text = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            let spec = format!("{host_text}:{}", server.port);
            let addr = listen_addr(&spec, server.port, global.use_ipv6).map_err(|m| {
                let loc = setting(&blocks[0], "server.bind")
                    .or(setting(&blocks[0], "server.port"))
                    .map(|s| s.loc.clone());
                match loc {
                    Some(l) => ev.error_at(&l, m, None),
                    None => ev.error_at(&Default::default(), m, None),
                }
            })?;
            (spec, addr)
        }
    };
    let mut out = vec![Listener {
        addr,
        spec,
        block: None,
        socket: global.clone(),
        host,
    }];
    for (id, b) in blocks.iter().enumerate() {
        let Some(c) = &b.cond else { continue };
        if c.field != CondField::ServerSocket || c.op != CondOp::Eq {
            continue;
        }
        let socket = socket_options(ev, b, &global)?;
        let (addr, host) = listen_addr(&c.pattern, server.port, socket.use_ipv6).map_err(|m| {
            ev.error_at(
                &c.loc,
                m,
                Some("write \":port\", \"ip:port\", \"[ipv6]:port\" or a unix socket path"),
            )
        })?;
        match out.iter_mut().find(|l| l.addr == addr && l.host == host) {
            Some(l) => {
                if l.block.is_none() {
                    l.block = Some(id as BlockId);
                    l.socket = socket;
                }
            }
            None => out.push(Listener {
                addr,
                spec: c.pattern.clone(),
                block: Some(id),
                socket,
                host,
            }),
        }
    }
    Ok(out)
}
