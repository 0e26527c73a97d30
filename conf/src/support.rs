//! What wickd does with each key lighttpd knows: acts on it; accepts it without
//! acting on it, with one warning naming the key, its module and where it is set; or
//! refuses to start, where ignoring the key would give access the configuration
//! denies (auth.require without mod_auth, or with a backend wickd lacks,
//! ssl.engine, signed download links, access scripts).
//! man/wickd.conf.5 keeps the same table (conf/tests/manpage.rs compares them).

use crate::keys;
use crate::model::{Block, Config, Setting, Value};
use crate::options::parse_bool;

/// What wickd does with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Acted,
    /// Parsed and checked, not acted on: one warning at start-up and by -tt.
    Ignored,
    /// Not acted on, and serving without it would open access: start-up and -tt
    /// refuse. The text says what would be open.
    Refused(&'static str),
}

/// Modules wickd has (worker/src/mods, the CGI gateway, and the core's static file
/// and index handling).
pub const BUILT: &[&str] = &[
    "mod_access",
    "mod_accesslog",
    "mod_alias",
    "mod_auth",
    "mod_authn_file",
    "mod_cgi",
    "mod_deflate",
    "mod_dirlisting",
    "mod_evhost",
    "mod_expire",
    "mod_extforward",
    "mod_fastcgi",
    "mod_indexfile",
    "mod_openssl",
    "mod_proxy",
    "mod_redirect",
    "mod_rewrite",
    "mod_scgi",
    "mod_setenv",
    "mod_simple_vhost",
    "mod_staticfile",
    "mod_status",
    "mod_userdir",
    "mod_wstunnel",
];

/// Keys of the core and of built modules that wickd accepts and does not act on.
const IGNORED: &[&str] = &[
    "server.upload-temp-file-size",
    "server.core-files",
    "server.chunkqueue-chunk-sz",
    "server.graceful-restart-bg",
    "server.breakagelog",
    "mimetype.xattr-name",
    "debug.log-state-handling",
    "server.bsd-accept-filter",
    "server.v4mapped",
    "server.error-intercept",
    "server.kbytes-per-second",
    "connection.kbytes-per-second",
    "server.protocol-http11",
    "server.http-pathinfo",
    "mimetype.use-xattr",
    "debug.log-file-not-found",
    "debug.log-request-handling",
    "debug.log-response-header",
    "debug.log-request-header",
    "debug.log-condition-handling",
    "debug.log-timeouts",
    "cgi.upgrade",
    "simple-vhost.debug",
    "extforward.hap-proxy",
    "extforward.hap-proxy-ssl-client-verify",
    "auth.debug",
    "fastcgi.debug",
    "scgi.debug",
    "proxy.debug",
    "wstunnel.debug",
    // mod_openssl: what rustls has no use for (no DHE suites, no SSLv2/SSLv3, no
    // compression, no empty fragments), what is not built yet
    "ssl.dh-file",
    "ssl.use-sslv2",
    "ssl.use-sslv3",
    "ssl.use-compression",
    "ssl.empty-fragments",
    "ssl.session-cache",
    "ssl.ech-opts",
    "ssl.ech-public-name",
    "ssl.ech-keydir",
    "ssl.ech-only",
    "deflate.params",
    "deflate.sync-flush",
];

/// Keys (or, ending in '.', key prefixes) whose absence opens access, and what
/// would be open. Only the keys that restrict by themselves: auth.backend without
/// auth.require protects nothing, ssl.pemfile without ssl.engine encrypts nothing
/// (lighttpd then serves in clear text too); those are ignored with a warning.
/// Refused whether or not their module is in server.modules: a configuration that
/// sets them means to restrict access, and serving it open is never the safe guess.
const REFUSED: &[(&str, &str)] = &[
    (
        "secdownload.",
        "mod_secdownload is not built into wickd: what it protects would be served without a valid link",
    ),
    (
        "magnet.",
        "mod_magnet is not built into wickd: its Lua scripts, which may restrict access, would not run",
    ),
];

fn has_prefix(key: &str, prefix: &str) -> bool {
    key.len() > prefix.len()
        && key.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn refused_by(key: &str, pattern: &str) -> bool {
    if pattern.ends_with('.') {
        has_prefix(key, pattern)
    } else {
        key.eq_ignore_ascii_case(pattern)
    }
}

/// What wickd does with `key` (any case).
pub fn support(key: &str) -> Support {
    if let Some((_, why)) = REFUSED.iter().find(|(p, _)| refused_by(key, p)) {
        return Support::Refused(why);
    }
    let Some((k, module, _)) = keys::lookup(key) else {
        // Unknown keys draw lighttpd's own warning (load.rs).
        return Support::Acted;
    };
    if IGNORED.contains(&k) || !(module.is_empty() || BUILT.contains(&module)) {
        Support::Ignored
    } else {
        Support::Acted
    }
}

/// Does this setting restrict anything? `ssl.engine = "disable"` and empty values
/// do not: serving without them is what they ask for.
fn restricts(s: &Setting) -> bool {
    match &s.value {
        Value::Str(v) if v.is_empty() => false,
        Value::Array(a) if a.is_empty() => false,
        v if s.key.eq_ignore_ascii_case("ssl.engine") => parse_bool(v).unwrap_or(true),
        _ => true,
    }
}

fn module_of(key: &str) -> &'static str {
    match keys::lookup(key) {
        Some((_, "", _)) | None => "core",
        Some((_, m, _)) => m,
    }
}

fn at(s: &Setting) -> String {
    format!("{}:{}", s.loc.file, s.loc.line)
}

/// Start-up warnings: one per key that is not acted on (where it is first set; keys
/// of modules that are not loaded already draw lighttpd's "unknown config-key"), and
/// one per module in force that wickd does not have.
pub fn warnings(blocks: &[Block], effective: &[String], listed: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let modules_at = blocks
        .first()
        .and_then(|g| {
            g.settings
                .iter()
                .find(|s| s.key.eq_ignore_ascii_case("server.modules"))
        })
        .map(|s| format!("{}: ", at(s)))
        .unwrap_or_default();
    for m in effective {
        if BUILT.contains(&m.as_str()) || !keys::is_known_module(m) {
            continue;
        }
        let how = if listed.contains(m) {
            ""
        } else {
            " (lighttpd loads it implicitly)"
        };
        out.push(format!(
            "WARNING: {modules_at}server.modules: {m}{how} is not built into wickd; its keys are not acted on"
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for s in blocks.iter().flat_map(|b| &b.settings) {
        let key = s.key.to_ascii_lowercase();
        if support(&key) != Support::Ignored || seen.contains(&key) {
            continue;
        }
        let module = module_of(&s.key);
        if module != "core" && !keys::module_loaded(module, effective) {
            continue;
        }
        let note = if HANDLERS.contains(&key.as_str()) {
            "; files it would hand to a backend are served as they are (their source) \
             unless static-file.exclude-extensions or url.access-deny names them"
        } else {
            ""
        };
        out.push(format!(
            "WARNING: {}: {} ({module}) is accepted but not acted on by wickd (ignored){note}",
            at(s),
            s.key
        ));
        seen.push(key);
    }
    // Gateway hosts with "bin-path": lighttpd's adaptive spawning is not done.
    out.extend(crate::spawn::warnings(blocks, effective));
    // mod_proxy starts no backend (nor does lighttpd's): a bin-path there is said.
    for s in blocks.iter().flat_map(|b| &b.settings) {
        if s.key.eq_ignore_ascii_case("proxy.server") && has_option(&s.value, "bin-path") {
            out.push(format!(
                "WARNING: {}: proxy.server \"bin-path\" is not acted on: mod_proxy starts no backend (lighttpd's neither); start the program by other means on the \"host\"/\"port\" or \"socket\" given",
                at(s)
            ));
        }
        if s.key.eq_ignore_ascii_case("wstunnel.server") && has_option(&s.value, "bin-path") {
            out.push(format!(
                "WARNING: {}: wstunnel.server \"bin-path\" is not acted on: wickd starts backends for fastcgi.server and scgi.server only; start the program by other means on the \"host\"/\"port\" or \"socket\" given",
                at(s)
            ));
        }
    }
    // proxy.server host options lighttpd does not know either: left out.
    for s in blocks.iter().flat_map(|b| &b.settings) {
        if !s.key.eq_ignore_ascii_case("proxy.server")
            || !keys::module_loaded("mod_proxy", effective)
        {
            continue;
        }
        let mut unknown = Vec::new();
        unknown_host_options(&s.value, &mut unknown);
        for o in unknown {
            out.push(format!(
                "WARNING: {}: proxy.server: host option \"{o}\" is not one lighttpd 1.4.69 reads (it ignores it): ignored",
                at(s)
            ));
        }
    }
    // server.feature-flags: a flag wickd does not act on is said, as a key is.
    for s in blocks.iter().flat_map(|b| &b.settings) {
        if !s.key.eq_ignore_ascii_case("server.feature-flags") {
            continue;
        }
        let Value::Array(items) = &s.value else {
            continue;
        };
        for (flag, _) in items {
            let Some(flag) = flag.as_deref() else {
                continue;
            };
            if !FEATURE_FLAGS_ACTED.contains(&flag) {
                out.push(format!(
                    "WARNING: {}: server.feature-flags \"{flag}\" is accepted but not acted on by wickd (ignored)",
                    at(s)
                ));
            }
        }
    }
    // Per-request keys of lighttpd's that wickd reads from the global block only.
    let mut seen: Vec<&str> = Vec::new();
    for s in blocks.iter().skip(1).flat_map(|b| &b.settings) {
        let Some(k) = GLOBAL_ONLY.iter().find(|k| s.key.eq_ignore_ascii_case(k)) else {
            continue;
        };
        if !seen.contains(k) {
            seen.push(k);
            out.push(format!(
                "WARNING: {}: {} in a condition is not acted on by wickd (only the global value is used)",
                at(s),
                s.key
            ));
        }
    }
    out
}

/// Keyed scalar entries of a gateway tree that are not gw_backend host options.
fn unknown_host_options(v: &Value, out: &mut Vec<String>) {
    let Value::Array(items) = v else {
        return;
    };
    for (k, v) in items {
        match (k, v) {
            (_, Value::Array(_)) => unknown_host_options(v, out),
            (Some(k), _)
                if !keys::GW_HOST_OPTIONS
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(k))
                    && !out.contains(k) =>
            {
                out.push(k.clone())
            }
            _ => {}
        }
    }
}

/// Does a (nested) `key => value` list name `option` anywhere?
fn has_option(v: &Value, option: &str) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|(k, v)| {
            k.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(option)) || has_option(v, option)
        }),
        _ => false,
    }
}

/// lighttpd reads these per request; wickd only from the global block.
const GLOBAL_ONLY: &[&str] = &[
    "server.errorlog",
    "server.max-keep-alive-requests",
    "server.max-keep-alive-idle",
];

/// Keys that hand requests for files to a program wickd does not have: without
/// them those files would be sent as they are, so their warning says so.
const HANDLERS: &[&str] = &["ajp13.server", "ssi.extension"];

/// Gateways that run files found by suffix (ajp13.server ".jsp" => ...): wickd
/// does not have mod_ajp13, so such a file would be sent as it is, its source
/// (database passwords and all) to anyone. Refused unless the global static-file.
/// exclude-extensions or url.access-deny keeps those files from being served (as
/// Debian's lighttpd.conf does for .php): a configuration that runs them means
/// them unread. mod_fastcgi and mod_scgi are built: their suffixes are refused only
/// when they are not in force (lighttpd would then serve them as files too).
const GATEWAYS: &[(&str, &str)] = &[
    ("fastcgi.server", "mod_fastcgi"),
    ("scgi.server", "mod_scgi"),
    ("ajp13.server", "mod_ajp13"),
];

fn exposed_scripts(config: &Config) -> Vec<String> {
    let global = |key: &str| -> Vec<String> {
        config
            .blocks
            .first()
            .and_then(|g| g.settings.iter().find(|s| s.key.eq_ignore_ascii_case(key)))
            .and_then(|s| <Vec<String> as crate::options::FromValue>::from_value(&s.value).ok())
            .unwrap_or_default()
    };
    let mut guarded = global("static-file.exclude-extensions");
    guarded.extend(global("url.access-deny"));
    let mut out = Vec::new();
    for s in config.blocks.iter().flat_map(|b| &b.settings) {
        let Some((key, module)) = GATEWAYS.iter().find(|(k, _)| s.key.eq_ignore_ascii_case(k))
        else {
            continue;
        };
        if BUILT.contains(module)
            && config
                .server
                .effective_modules()
                .iter()
                .any(|m| m == module)
        {
            continue;
        }
        let Value::Array(items) = &s.value else {
            continue;
        };
        // A key starting with '/' is a URL prefix; any other is a file suffix.
        let open: Vec<&str> = items
            .iter()
            .filter_map(|(k, _)| k.as_deref())
            .filter(|k| !k.is_empty() && !k.starts_with('/'))
            .filter(|k| {
                !guarded
                    .iter()
                    .any(|g| !g.is_empty() && k.ends_with(g.as_str()))
            })
            .collect();
        if !open.is_empty() {
            let why = if BUILT.contains(module) {
                "is not in server.modules"
            } else {
                "is not built into wickd"
            };
            out.push(format!(
                "{}: {key}: {module} {why}: files ending in {} would be served as they are (their source); name them in static-file.exclude-extensions to start without it",
                at(s),
                open.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out
}

/// Keys that choose a lighttpd internal wickd replaces (it always uses epoll,
/// sendfile/writev and its own stat cache): the values lighttpd 1.4.69 accepts on
/// Linux (Debian's build), and its message for the others. Exact and case-sensitive,
/// as lighttpd compares them; set in a condition, lighttpd ignores them.
const INTERNALS: &[(&str, &[&str], &str)] = &[
    (
        "server.event-handler",
        &["select", "poll", "linux-sysepoll", "epoll", "libev"],
        "the selected event-handler in unknown or not supported: ",
    ),
    (
        "server.network-backend",
        &["", "sendfile", "linux-sendfile", "freebsd-sendfile", "solaris-sendfilev", "writev", "write"],
        "server.network-backend has an unknown value: ",
    ),
    (
        "server.stat-cache-engine",
        &["", "disable", "none", "simple", "inotify", "fam"],
        "server.stat-cache-engine can be one of \"disable\", \"simple\", \"inotify\", \"fam\", but not: ",
    ),
];

/// Why wickd will not start with this configuration, one line each: keys whose
/// absence opens access, modules lighttpd does not have (it fails to load them), and
/// values of lighttpd internals that lighttpd refuses on Linux.
pub fn refusals(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = config.blocks.first().and_then(|g| {
        g.settings
            .iter()
            .find(|s| s.key.eq_ignore_ascii_case("server.modules"))
    }) {
        for m in &config.server.modules {
            if !keys::is_known_module(m) {
                out.push(format!(
                    "{}: server.modules: unknown module \"{m}\" (lighttpd 1.4.69 has no such module)",
                    at(s)
                ));
            }
        }
    }
    out.extend(exposed_scripts(config));
    out.extend(auth_refusals(config));
    for s in config.blocks.iter().take(1).flat_map(|b| &b.settings) {
        let Some((_, accepted, message)) = INTERNALS
            .iter()
            .find(|(k, _, _)| s.key.eq_ignore_ascii_case(k))
        else {
            continue;
        };
        let v = match &s.value {
            Value::Str(v) => v.clone(),
            Value::Int(i) => i.to_string(),
            Value::Array(_) => "(a list)".to_string(),
        };
        if !accepted.contains(&v.as_str()) {
            out.push(format!("{}: {message}{v}", at(s)));
        }
    }
    for s in config.blocks.iter().flat_map(|b| &b.settings) {
        if let Support::Refused(why) = support(&s.key) {
            if restricts(s) {
                out.push(format!("{}: {}: {why}", at(s), s.key));
            }
        }
    }
    out
}

/// server.feature-flags entries wickd acts on (see wickd.conf(5)); any other draws
/// a warning.
pub const FEATURE_FLAGS_ACTED: &[&str] = &[
    "server.graceful-shutdown-timeout",
    "request.trailer-whitelist",
    "auth.delay-invalid-creds",
    "server.h2proto",
    "server.h2c",
    "proxy.force-http10",
];

/// auth.backend values wickd's mod_authn_file has; lighttpd's others are modules
/// wickd does not have.
pub const AUTH_BACKENDS: &[&str] = &["plain", "htpasswd", "htdigest"];

/// auth.require that wickd would not enforce as lighttpd does: mod_auth not in
/// force (lighttpd then ignores the key; serving open is never the safe guess), a
/// backend wickd lacks. (A user file that cannot be read is a warning, as lighttpd
/// starts: logins fail closed, `preflight::warnings`.)
fn auth_refusals(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let require: Vec<&Setting> = config
        .blocks
        .iter()
        .flat_map(|b| &b.settings)
        .filter(|s| s.key.eq_ignore_ascii_case("auth.require") && restricts(s))
        .collect();
    if require.is_empty() {
        return out;
    }
    let effective = config.server.effective_modules();
    if !effective.iter().any(|m| m == "mod_auth") {
        for s in &require {
            out.push(format!(
                "{}: auth.require: mod_auth is not in server.modules: what it protects would be served without authentication",
                at(s)
            ));
        }
        return out;
    }
    for s in config.blocks.iter().flat_map(|b| &b.settings) {
        let key = s.key.to_ascii_lowercase();
        let Value::Str(v) = &s.value else { continue };
        if key == "auth.backend" && !v.is_empty() && !AUTH_BACKENDS.contains(&v.as_str()) {
            out.push(format!(
                "{}: auth.backend \"{v}\": only \"plain\", \"htpasswd\" and \"htdigest\" are built into wickd: what auth.require protects would be served without authentication",
                at(s)
            ));
        }
    }
    out
}

/// The user files of mod_authn_file.
pub const AUTH_FILES: &[&str] = &[
    "auth.backend.plain.userfile",
    "auth.backend.htpasswd.userfile",
    "auth.backend.htdigest.userfile",
];

/// Ok, or every refusal and a last line that says what happens.
pub fn check(config: &Config) -> Result<(), String> {
    let r = refusals(config);
    if r.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\nwickd refuses to start with this configuration (see \"Refused\" in wickd.conf(5))",
        r.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(support("server.document-root"), Support::Acted);
        assert_eq!(support("url.rewrite-once"), Support::Acted);
        assert_eq!(support("server.stat-cache-engine"), Support::Acted);
        assert_eq!(support("server.h2proto"), Support::Acted);
        assert_eq!(support("fastcgi.server"), Support::Acted);
        assert_eq!(support("fastcgi.debug"), Support::Ignored);
        assert_eq!(support("scgi.server"), Support::Acted);
        assert_eq!(support("scgi.protocol"), Support::Acted);
        assert_eq!(support("scgi.debug"), Support::Ignored);
        assert_eq!(support("proxy.server"), Support::Acted);
        assert_eq!(support("proxy.header"), Support::Acted);
        assert_eq!(support("proxy.debug"), Support::Ignored);
        assert_eq!(support("Auth.Require"), Support::Acted);
        assert_eq!(support("ssl.engine"), Support::Acted);
        assert_eq!(support("ssl.pemfile"), Support::Acted);
        assert_eq!(support("ssl.dh-file"), Support::Ignored);
        assert_eq!(support("auth.backend"), Support::Acted);
        assert_eq!(support("auth.backend.ldap.hostname"), Support::Ignored);
        assert!(matches!(support("secdownload.secret"), Support::Refused(_)));
        assert_eq!(support("no.such-key"), Support::Acted);
    }

    #[test]
    fn every_built_module_is_a_lighttpd_module() {
        for m in BUILT {
            assert!(keys::is_known_module(m), "{m}");
        }
        for k in IGNORED {
            assert!(keys::lookup(k).is_some(), "{k}");
        }
    }
}
