//! Every config key lighttpd 1.4 knows, with the module that reads it and its scope,
//! so that a real configuration loads with warnings, never errors, for modules wickd
//! does not implement yet; and the list of lighttpd's module names.

/// Where a key may be set (lighttpd's T_CONFIG_SCOPE_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Global block only; inside a condition lighttpd warns and ignores it.
    Server,
    /// Global block or `$SERVER["socket"] == "..."`.
    Socket,
    /// Any block: patched per request.
    Request,
}

use serde::{Deserialize, Serialize};
use Scope::{Request as R, Server as S, Socket as K};

/// (key, module, scope). Module "" is the core, always loaded.
pub const KEYS: &[(&str, &str, Scope)] = &[
    // core, server-wide
    ("server.modules", "", S),
    ("server.compat-module-load", "", S),
    ("server.systemd-socket-activation", "", S),
    ("server.port", "", S),
    ("server.bind", "", S),
    ("server.chroot", "", S),
    ("server.username", "", S),
    ("server.groupname", "", S),
    ("server.pid-file", "", S),
    ("server.max-worker", "", S),
    ("server.max-fds", "", S),
    ("server.max-connections", "", S),
    ("server.event-handler", "", S),
    ("server.network-backend", "", S),
    ("server.upload-dirs", "", S),
    ("server.upload-temp-file-size", "", S),
    ("server.stat-cache-engine", "", S),
    ("server.http-parseopts", "", S),
    ("server.http-parseopt-header-strict", "", S),
    ("server.http-parseopt-host-strict", "", S),
    ("server.http-parseopt-host-normalize", "", S),
    ("server.feature-flags", "", S),
    ("server.errorlog-use-syslog", "", S),
    ("server.syslog-facility", "", S),
    ("server.core-files", "", S),
    ("server.max-request-field-size", "", S),
    ("server.chunkqueue-chunk-sz", "", S),
    ("server.h2proto", "", S),
    ("server.h2c", "", S),
    ("server.graceful-shutdown-timeout", "", S),
    ("server.graceful-restart-bg", "", S),
    ("server.breakagelog", "", S),
    ("server.reject-expect-100-with-417", "", S),
    ("server.min-request-body-rate", "", S),
    ("server.max-keep-alive-requests", "", R),
    ("server.max-keep-alive-idle", "", R),
    ("mimetype.xattr-name", "", S),
    ("debug.log-request-header-on-error", "", S),
    ("debug.log-state-handling", "", S),
    // core, per listening socket
    ("server.listen-backlog", "", K),
    ("server.use-ipv6", "", K),
    ("server.set-v6only", "", K),
    ("server.socket-perms", "", K),
    ("server.defer-accept", "", K),
    ("server.bsd-accept-filter", "", K),
    ("server.v4mapped", "", K),
    // core, per request
    ("server.document-root", "", R),
    ("server.name", "", R),
    ("server.tag", "", R),
    ("server.max-request-size", "", R),
    ("server.max-read-idle", "", R),
    ("server.max-write-idle", "", R),
    ("server.error-handler", "", R),
    ("server.error-handler-404", "", R),
    ("server.errorfile-prefix", "", R),
    ("server.error-intercept", "", R),
    ("server.follow-symlink", "", R),
    ("server.force-lowercase-filenames", "", R),
    ("server.range-requests", "", R),
    ("server.stream-request-body", "", R),
    ("server.stream-response-body", "", R),
    ("server.kbytes-per-second", "", R),
    ("connection.kbytes-per-second", "", R),
    ("server.protocol-http11", "", R),
    ("server.errorlog", "", R),
    ("server.http-pathinfo", "", R),
    ("mimetype.assign", "", R),
    ("mimetype.use-xattr", "", R),
    ("etag.use-inode", "", R),
    ("etag.use-mtime", "", R),
    ("etag.use-size", "", R),
    ("debug.log-file-not-found", "", R),
    ("debug.log-request-handling", "", R),
    ("debug.log-response-header", "", R),
    ("debug.log-request-header", "", R),
    ("debug.log-condition-handling", "", R),
    ("debug.log-timeouts", "", R),
    // modules
    ("index-file.names", "mod_indexfile", R),
    ("server.indexfiles", "mod_indexfile", R),
    ("static-file.exclude-extensions", "mod_staticfile", R),
    ("static-file.etags", "mod_staticfile", R),
    ("static-file.disable-pathinfo", "mod_staticfile", R),
    ("dir-listing.activate", "mod_dirlisting", R),
    ("server.dir-listing", "mod_dirlisting", R),
    ("dir-listing.exclude", "mod_dirlisting", R),
    ("dir-listing.hide-dotfiles", "mod_dirlisting", R),
    ("dir-listing.external-css", "mod_dirlisting", R),
    ("dir-listing.external-js", "mod_dirlisting", R),
    ("dir-listing.encoding", "mod_dirlisting", R),
    ("dir-listing.show-readme", "mod_dirlisting", R),
    ("dir-listing.hide-readme-file", "mod_dirlisting", R),
    ("dir-listing.show-header", "mod_dirlisting", R),
    ("dir-listing.hide-header-file", "mod_dirlisting", R),
    ("dir-listing.set-footer", "mod_dirlisting", R),
    ("dir-listing.encode-readme", "mod_dirlisting", R),
    ("dir-listing.encode-header", "mod_dirlisting", R),
    ("dir-listing.auto-layout", "mod_dirlisting", R),
    ("dir-listing.sort", "mod_dirlisting", R),
    ("dir-listing.cache", "mod_dirlisting", R),
    ("url.access-deny", "mod_access", R),
    ("url.access-allow", "mod_access", R),
    ("alias.url", "mod_alias", R),
    ("url.redirect", "mod_redirect", R),
    ("url.redirect-code", "mod_redirect", R),
    ("url.rewrite", "mod_rewrite", R),
    ("url.rewrite-once", "mod_rewrite", R),
    ("url.rewrite-final", "mod_rewrite", R),
    ("url.rewrite-repeat", "mod_rewrite", R),
    ("url.rewrite-if-not-file", "mod_rewrite", R),
    ("url.rewrite-repeat-if-not-file", "mod_rewrite", R),
    ("accesslog.filename", "mod_accesslog", R),
    ("accesslog.format", "mod_accesslog", R),
    ("accesslog.use-syslog", "mod_accesslog", R),
    ("accesslog.syslog-level", "mod_accesslog", R),
    ("accesslog.escaping", "mod_accesslog", R),
    ("fastcgi.server", "mod_fastcgi", R),
    ("fastcgi.balance", "mod_fastcgi", R),
    ("fastcgi.debug", "mod_fastcgi", R),
    ("fastcgi.map-extensions", "mod_fastcgi", R),
    ("scgi.server", "mod_scgi", R),
    ("scgi.balance", "mod_scgi", R),
    ("scgi.debug", "mod_scgi", R),
    ("scgi.map-extensions", "mod_scgi", R),
    ("scgi.protocol", "mod_scgi", R),
    ("proxy.server", "mod_proxy", R),
    ("proxy.balance", "mod_proxy", R),
    ("proxy.debug", "mod_proxy", R),
    ("proxy.map-extensions", "mod_proxy", R),
    ("proxy.replace-http-host", "mod_proxy", R),
    ("proxy.forwarded", "mod_proxy", R),
    ("proxy.header", "mod_proxy", R),
    ("ajp13.server", "mod_ajp13", R),
    ("ajp13.balance", "mod_ajp13", R),
    ("ajp13.debug", "mod_ajp13", R),
    ("ajp13.map-extensions", "mod_ajp13", R),
    ("sockproxy.server", "mod_sockproxy", R),
    ("sockproxy.balance", "mod_sockproxy", R),
    ("sockproxy.debug", "mod_sockproxy", R),
    ("wstunnel.server", "mod_wstunnel", R),
    ("wstunnel.balance", "mod_wstunnel", R),
    ("wstunnel.debug", "mod_wstunnel", R),
    ("wstunnel.map-extensions", "mod_wstunnel", R),
    ("wstunnel.frame-type", "mod_wstunnel", R),
    ("wstunnel.origins", "mod_wstunnel", R),
    ("wstunnel.ping-interval", "mod_wstunnel", R),
    ("cgi.assign", "mod_cgi", R),
    ("cgi.execute-x-only", "mod_cgi", R),
    ("cgi.x-sendfile", "mod_cgi", R),
    ("cgi.x-sendfile-docroot", "mod_cgi", R),
    ("cgi.local-redir", "mod_cgi", R),
    ("cgi.upgrade", "mod_cgi", R),
    ("cgi.limits", "mod_cgi", R),
    // wick: the user and group a block's CGI scripts run as
    ("cgi.user", "mod_cgi", R),
    ("cgi.group", "mod_cgi", R),
    ("auth.backend", "mod_auth", R),
    ("auth.require", "mod_auth", R),
    ("auth.cache", "mod_auth", R),
    ("auth.extern-authn", "mod_auth", R),
    ("auth.debug", "mod_auth", R),
    ("auth.backend.plain.userfile", "mod_authn_file", R),
    ("auth.backend.plain.groupfile", "mod_authn_file", R),
    ("auth.backend.htpasswd.userfile", "mod_authn_file", R),
    ("auth.backend.htdigest.userfile", "mod_authn_file", R),
    ("auth.backend.ldap.hostname", "mod_authn_ldap", R),
    ("auth.backend.ldap.base-dn", "mod_authn_ldap", R),
    ("auth.backend.ldap.filter", "mod_authn_ldap", R),
    ("auth.backend.ldap.ca-file", "mod_authn_ldap", R),
    ("auth.backend.ldap.starttls", "mod_authn_ldap", R),
    ("auth.backend.ldap.bind-dn", "mod_authn_ldap", R),
    ("auth.backend.ldap.bind-pw", "mod_authn_ldap", R),
    ("auth.backend.ldap.allow-empty-pw", "mod_authn_ldap", R),
    ("auth.backend.ldap.groupmember", "mod_authn_ldap", R),
    ("auth.backend.ldap.timeout", "mod_authn_ldap", R),
    ("auth.backend.pam.opts", "mod_authn_pam", R),
    ("auth.backend.sasl.opts", "mod_authn_sasl", R),
    ("auth.backend.gssapi.keytab", "mod_authn_gssapi", R),
    ("auth.backend.gssapi.principal", "mod_authn_gssapi", R),
    ("auth.backend.gssapi.store-creds", "mod_authn_gssapi", R),
    ("auth.backend.dbi", "mod_authn_dbi", R),
    ("ssl.engine", "mod_openssl", K),
    ("ssl.pemfile", "mod_openssl", R),
    ("ssl.privkey", "mod_openssl", R),
    ("ssl.ca-file", "mod_openssl", R),
    ("ssl.ca-dn-file", "mod_openssl", R),
    ("ssl.ca-crl-file", "mod_openssl", R),
    ("ssl.cipher-list", "mod_openssl", R),
    ("ssl.honor-cipher-order", "mod_openssl", R),
    ("ssl.dh-file", "mod_openssl", R),
    ("ssl.ec-curve", "mod_openssl", R),
    ("ssl.openssl.ssl-conf-cmd", "mod_openssl", R),
    ("ssl.verifyclient.activate", "mod_openssl", R),
    ("ssl.verifyclient.enforce", "mod_openssl", R),
    ("ssl.verifyclient.depth", "mod_openssl", R),
    ("ssl.verifyclient.username", "mod_openssl", R),
    ("ssl.verifyclient.exportcert", "mod_openssl", R),
    ("ssl.verifyclient.ca-file", "mod_openssl", R),
    ("ssl.verifyclient.ca-dn-file", "mod_openssl", R),
    ("ssl.verifyclient.ca-crl-file", "mod_openssl", R),
    ("ssl.disable-client-renegotiation", "mod_openssl", R),
    ("ssl.read-ahead", "mod_openssl", R),
    ("ssl.empty-fragments", "mod_openssl", R),
    ("ssl.use-sslv2", "mod_openssl", R),
    ("ssl.use-sslv3", "mod_openssl", R),
    ("ssl.use-compression", "mod_openssl", R),
    ("ssl.stapling-file", "mod_openssl", R),
    ("ssl.stek-file", "mod_openssl", R),
    ("ssl.acme-tls-1", "mod_openssl", R),
    ("ssl.session-cache", "mod_openssl", R),
    ("ssl.ech-opts", "mod_openssl", R),
    ("ssl.ech-public-name", "mod_openssl", R),
    ("ssl.ech-keydir", "mod_openssl", R),
    ("ssl.ech-only", "mod_openssl", R),
    ("debug.log-ssl-noise", "mod_openssl", R),
    ("deflate.mimetypes", "mod_deflate", R),
    ("deflate.allowed-encodings", "mod_deflate", R),
    ("deflate.cache-dir", "mod_deflate", R),
    ("deflate.max-compress-size", "mod_deflate", R),
    ("deflate.min-compress-size", "mod_deflate", R),
    ("deflate.compression-level", "mod_deflate", R),
    ("deflate.output-buffer-size", "mod_deflate", R),
    ("deflate.work-block-size", "mod_deflate", R),
    ("deflate.max-loadavg", "mod_deflate", R),
    ("deflate.params", "mod_deflate", R),
    ("deflate.sync-flush", "mod_deflate", R),
    ("compress.filetype", "mod_deflate", R),
    ("compress.allowed-encodings", "mod_deflate", R),
    ("compress.cache-dir", "mod_deflate", R),
    ("compress.max-filesize", "mod_deflate", R),
    ("compress.max-loadavg", "mod_deflate", R),
    ("setenv.add-request-header", "mod_setenv", R),
    ("setenv.add-response-header", "mod_setenv", R),
    ("setenv.add-environment", "mod_setenv", R),
    ("setenv.set-request-header", "mod_setenv", R),
    ("setenv.set-response-header", "mod_setenv", R),
    ("setenv.set-environment", "mod_setenv", R),
    ("expire.url", "mod_expire", R),
    ("expire.mimetypes", "mod_expire", R),
    ("extforward.forwarder", "mod_extforward", R),
    ("extforward.headers", "mod_extforward", R),
    ("extforward.params", "mod_extforward", R),
    ("extforward.hap-proxy", "mod_extforward", R),
    (
        "extforward.hap-proxy-ssl-client-verify",
        "mod_extforward",
        R,
    ),
    ("simple-vhost.server-root", "mod_simple_vhost", R),
    ("simple-vhost.default-host", "mod_simple_vhost", R),
    ("simple-vhost.document-root", "mod_simple_vhost", R),
    ("simple-vhost.debug", "mod_simple_vhost", R),
    ("evhost.path-pattern", "mod_evhost", R),
    ("vhostdb.backend", "mod_vhostdb", R),
    ("vhostdb.cache", "mod_vhostdb", R),
    ("vhostdb.dbi", "mod_vhostdb_dbi", R),
    ("vhostdb.ldap", "mod_vhostdb_ldap", R),
    ("vhostdb.mysql", "mod_vhostdb_mysql", R),
    ("vhostdb.pgsql", "mod_vhostdb_pgsql", R),
    ("userdir.path", "mod_userdir", R),
    ("userdir.exclude-user", "mod_userdir", R),
    ("userdir.include-user", "mod_userdir", R),
    ("userdir.basepath", "mod_userdir", R),
    ("userdir.letterhomes", "mod_userdir", R),
    ("userdir.active", "mod_userdir", R),
    ("status.status-url", "mod_status", R),
    ("status.config-url", "mod_status", R),
    ("status.statistics-url", "mod_status", R),
    ("status.enable-sort", "mod_status", R),
    // wickd's: the Prometheus text endpoint
    ("status.metrics-url", "mod_status", R),
    ("ssi.extension", "mod_ssi", R),
    ("ssi.content-type", "mod_ssi", R),
    ("ssi.conditional-requests", "mod_ssi", R),
    ("ssi.exec", "mod_ssi", R),
    ("ssi.recursion-max", "mod_ssi", R),
    ("webdav.activate", "mod_webdav", R),
    ("webdav.is-readonly", "mod_webdav", R),
    ("webdav.sqlite-db-name", "mod_webdav", R),
    ("webdav.log-xml", "mod_webdav", R),
    ("webdav.opts", "mod_webdav", R),
    ("magnet.attract-raw-url-to", "mod_magnet", R),
    ("magnet.attract-physical-path-to", "mod_magnet", R),
    ("magnet.attract-response-start-to", "mod_magnet", R),
    ("maxminddb.activate", "mod_maxminddb", R),
    ("maxminddb.db", "mod_maxminddb", R),
    ("maxminddb.env", "mod_maxminddb", R),
    ("rrdtool.binary", "mod_rrdtool", S),
    ("rrdtool.db-name", "mod_rrdtool", R),
    // Gone from lighttpd before 1.4.69 (it points to mod_magnet); still in real configs.
    ("secdownload.secret", "mod_secdownload", R),
    ("secdownload.document-root", "mod_secdownload", R),
    ("secdownload.uri-prefix", "mod_secdownload", R),
    ("secdownload.timeout", "mod_secdownload", R),
    ("secdownload.algorithm", "mod_secdownload", R),
    ("secdownload.path-segments", "mod_secdownload", R),
    ("secdownload.hash-querystr", "mod_secdownload", R),
];

/// The host options of a gateway's `*.server` list that lighttpd 1.4.69's
/// gw_backend reads (fastcgi, scgi, proxy, ...). It accepts any other without a
/// word; wickd's mod_proxy leaves such an option out with a warning.
pub const GW_HOST_OPTIONS: &[&str] = &[
    "host",
    "port",
    "socket",
    "mode",
    "docroot",
    "bin-path",
    "bin-environment",
    "bin-copy-environment",
    "check-local",
    "strip-request-uri",
    "fix-root-scriptname",
    "broken-scriptfilename",
    "x-sendfile",
    "x-sendfile-docroot",
    "allow-x-send-file",
    "connect-timeout",
    "read-timeout",
    "write-timeout",
    "disable-time",
    "max-procs",
    "min-procs",
    "max-load-per-proc",
    "idle-timeout",
    "kill-signal",
    "listen-backlog",
    "tcp-fin-propagate",
    "upgrade",
];

/// Old names lighttpd 1.4.69 still reads as another key, and whether it says so
/// (with "DEPRECATED: OLD replaced with NEW", when the module is loaded); the
/// others it takes without a word.
pub const ALIASES: &[(&str, &str, bool)] = &[
    ("server.dir-listing", "dir-listing.activate", false),
    ("server.indexfiles", "index-file.names", false),
    ("compress.filetype", "deflate.mimetypes", true),
    (
        "compress.allowed-encodings",
        "deflate.allowed-encodings",
        true,
    ),
    ("compress.cache-dir", "deflate.cache-dir", true),
    ("compress.max-filesize", "deflate.max-compress-size", true),
    ("compress.max-loadavg", "deflate.max-loadavg", true),
];

/// The key an old name stands for (lowercase in, lowercase out), if it is one.
pub fn alias_of(key: &str) -> Option<(&'static str, bool)> {
    ALIASES
        .iter()
        .find(|(old, _, _)| *old == key)
        .map(|(_, new, warn)| (*new, *warn))
}

/// Modules lighttpd 1.4 (1.4.7x/8x) ships. `mod_compress` is accepted: lighttpd maps
/// it to mod_deflate.
pub const MODULES: &[&str] = &[
    "mod_access",
    "mod_accesslog",
    "mod_ajp13",
    "mod_alias",
    "mod_auth",
    "mod_authn_dbi",
    "mod_authn_file",
    "mod_authn_gssapi",
    "mod_authn_ldap",
    "mod_authn_pam",
    "mod_authn_sasl",
    "mod_boringssl",
    "mod_cgi",
    "mod_compress",
    "mod_deflate",
    "mod_dirlisting",
    "mod_echo",
    "mod_evhost",
    "mod_expire",
    "mod_extforward",
    "mod_fastcgi",
    "mod_gnutls",
    "mod_h2",
    "mod_indexfile",
    "mod_magnet",
    "mod_maxminddb",
    "mod_mbedtls",
    "mod_nss",
    "mod_openssl",
    "mod_proxy",
    "mod_redirect",
    "mod_rewrite",
    "mod_rrdtool",
    "mod_scgi",
    "mod_setenv",
    "mod_simple_vhost",
    "mod_sockproxy",
    "mod_ssi",
    "mod_staticfile",
    "mod_status",
    "mod_userdir",
    "mod_vhostdb",
    "mod_vhostdb_dbi",
    "mod_vhostdb_ldap",
    "mod_vhostdb_mysql",
    "mod_vhostdb_pgsql",
    "mod_webdav",
    "mod_wolfssl",
    "mod_wstunnel",
];

/// The entry for `key` (compared without regard to ASCII case, as lighttpd does).
pub fn lookup(key: &str) -> Option<(&'static str, &'static str, Scope)> {
    KEYS.iter()
        .copied()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
}

/// Is `module` one lighttpd knows?
pub fn is_known_module(module: &str) -> bool {
    MODULES.contains(&module)
}

/// The TLS modules: any of them reads the ssl.* keys.
pub const TLS_MODULES: &[&str] = &[
    "mod_openssl",
    "mod_gnutls",
    "mod_mbedtls",
    "mod_wolfssl",
    "mod_nss",
    "mod_boringssl",
];

/// What the blocks set that lighttpd's module loading looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleFacts {
    /// dir-listing.activate / server.dir-listing enabled somewhere.
    pub dirlisting: bool,
    /// Some block sets an ssl.* key.
    pub ssl: bool,
    /// Some block sets a compress.* key.
    pub compress: bool,
    /// The string values of auth.backend, in any block.
    pub auth_backends: Vec<String>,
}

/// The modules in force: server.modules plus what lighttpd 1.4.69 loads by itself
/// (configfile.c, with server.compat-module-load, the default): mod_indexfile first,
/// mod_dirlisting when a listing is enabled (lighttpd always appends it; unused it
/// does nothing), mod_staticfile last, mod_openssl when ssl.* keys are set and no TLS
/// module is listed, mod_authn_file / mod_authn_ldap for the auth.backend in use
/// when mod_auth is listed, mod_auth and mod_vhostdb before their backends. Whatever
/// the compat setting, mod_compress becomes mod_deflate when compress.* keys are set
/// and is dropped otherwise. Also lighttpd's warnings for what it loaded implicitly.
pub fn compat_load(listed: &[String], compat: bool, f: &ModuleFacts) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    for m in listed {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    let has = |out: &[String], m: &str| out.iter().any(|x| x == m);
    let mut notes = Vec::new();
    if compat {
        let tls = TLS_MODULES.iter().any(|t| has(&out, t));
        let contains_auth = has(&out, "mod_auth");
        let prepend_auth = !contains_auth && out.iter().any(|m| m.starts_with("mod_authn_"));
        let prepend_vhostdb =
            !has(&out, "mod_vhostdb") && out.iter().any(|m| m.starts_with("mod_vhostdb_"));
        if !has(&out, "mod_indexfile") {
            out.insert(0, "mod_indexfile".into());
        }
        if f.dirlisting && !has(&out, "mod_dirlisting") {
            out.push("mod_dirlisting".into());
        }
        if !has(&out, "mod_staticfile") {
            out.push("mod_staticfile".into());
        }
        if f.ssl && !tls {
            out.push("mod_openssl".into());
            notes.push(
                "Warning: please add \"mod_openssl\" to server.modules list in lighttpd.conf (loaded implicitly: the configuration sets ssl.* keys)".to_string(),
            );
        }
        if contains_auth {
            let backend = |names: &[&str]| {
                f.auth_backends
                    .iter()
                    .find(|b| names.contains(&b.as_str()))
                    .cloned()
            };
            for (module, names) in [
                ("mod_authn_file", &["htdigest", "htpasswd", "plain"][..]),
                ("mod_authn_ldap", &["ldap"][..]),
            ] {
                if has(&out, module) {
                    continue;
                }
                if let Some(v) = backend(names) {
                    out.push(module.into());
                    notes.push(format!(
                        "Warning: please add \"{module}\" to server.modules list in lighttpd.conf (loaded implicitly: auth.backend = \"{v}\")"
                    ));
                }
            }
        }
        if prepend_auth {
            out.insert(0, "mod_auth".into());
        }
        if prepend_vhostdb {
            out.insert(0, "mod_vhostdb".into());
        }
    }
    if let Some(i) = out.iter().position(|m| m == "mod_compress") {
        if f.compress {
            notes.push(
                "Warning: \"mod_compress\" is DEPRECATED and has been replaced with \"mod_deflate\"".to_string(),
            );
        }
        if has(&out, "mod_deflate") || !f.compress {
            out.remove(i);
        } else {
            out[i] = "mod_deflate".into();
        }
    }
    (out, notes)
}

/// [`compat_load`]'s module list.
pub fn effective_modules(listed: &[String], compat: bool, f: &ModuleFacts) -> Vec<String> {
    compat_load(listed, compat, f).0
}

/// Is the module that reads `module`'s keys in force? TLS keys belong to whichever
/// TLS module is loaded; authn backends and mod_auth are loaded together.
pub fn module_loaded(module: &str, effective: &[String]) -> bool {
    let has = |m: &str| effective.iter().any(|x| x == m);
    match module {
        "" => true,
        "mod_openssl" => TLS_MODULES.iter().any(|m| has(m)),
        m if m.starts_with("mod_authn_") || m == "mod_auth" => effective
            .iter()
            .any(|x| x == "mod_auth" || x.starts_with("mod_authn_")),
        m if m.starts_with("mod_vhostdb") => effective.iter().any(|x| x.starts_with("mod_vhostdb")),
        m => has(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_once_and_lowercase() {
        for (i, (k, _, _)) in KEYS.iter().enumerate() {
            assert_eq!(*k, k.to_ascii_lowercase(), "{k}");
            assert!(
                KEYS[i + 1..].iter().all(|(o, _, _)| o != k),
                "duplicate {k}"
            );
        }
    }

    #[test]
    fn request_option_keys_are_known() {
        for k in crate::options::REQUEST_KEYS {
            assert_eq!(lookup(k).map(|e| e.2), Some(Scope::Request), "{k}");
        }
    }

    #[test]
    fn compat_module_load() {
        let facts = ModuleFacts {
            dirlisting: true,
            ..Default::default()
        };
        let m = effective_modules(&["mod_access".into(), "mod_compress".into()], true, &facts);
        assert_eq!(
            m,
            [
                "mod_indexfile",
                "mod_access",
                "mod_dirlisting",
                "mod_staticfile"
            ]
        );
        let m = effective_modules(&["mod_access".into()], false, &facts);
        assert_eq!(m, ["mod_access"]);
    }

    #[test]
    fn implicit_modules_of_lighttpd_1_4_69() {
        let facts = ModuleFacts {
            ssl: true,
            compress: true,
            auth_backends: vec!["htpasswd".into()],
            ..Default::default()
        };
        let (m, notes) = compat_load(&["mod_auth".into(), "mod_compress".into()], true, &facts);
        assert_eq!(
            m,
            [
                "mod_indexfile",
                "mod_auth",
                "mod_deflate",
                "mod_staticfile",
                "mod_openssl",
                "mod_authn_file"
            ]
        );
        assert_eq!(notes.len(), 3, "{notes:?}");
        // An authn backend alone brings mod_auth in front; a TLS module listed
        // keeps mod_openssl out; without compat only mod_compress is rewritten.
        let (m, _) = compat_load(
            &["mod_authn_file".into(), "mod_gnutls".into()],
            true,
            &facts,
        );
        assert_eq!(
            m,
            [
                "mod_auth",
                "mod_indexfile",
                "mod_authn_file",
                "mod_gnutls",
                "mod_staticfile"
            ]
        );
        let (m, _) = compat_load(&["mod_compress".into()], false, &facts);
        assert_eq!(m, ["mod_deflate"]);
    }
}
