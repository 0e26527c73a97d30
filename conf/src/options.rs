//! Typed options. Server-wide keys live in [`ServerOptions`] (global block only);
//! keys that may differ per request (lighttpd's "patchable" keys) are declared once in
//! `request_options!`, which generates the owned [`RequestOptions`] (defaults), the
//! per-block [`Patch`] (only what the block sets) and the borrowed [`View`] that a
//! request builds by applying the patches of its true blocks: pointer copies, no
//! allocation per request.

use crate::model::Value;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Conversion of a config [`Value`] into a typed option; the error is a message
/// for the user (the caller adds file:line:column).
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

/// lighttpd booleans: enable/enabled/true/1 and disable/disabled/false/0, any case;
/// integers work as booleans.
pub fn parse_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Int(i) => Ok(*i != 0),
        Value::Str(s) => match s.to_ascii_lowercase().as_str() {
            "enable" | "enabled" | "true" | "1" => Ok(true),
            "disable" | "disabled" | "false" | "0" => Ok(false),
            _ => Err(format!("expected a boolean (enable/disable), got \"{s}\"")),
        },
        Value::Array(_) => Err("expected a boolean, got an array".into()),
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        parse_bool(v)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Array(_) => Err("expected a string, got an array".into()),
        }
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                let n: i64 = match v {
                    Value::Int(i) => *i,
                    Value::Str(s) => s.trim().parse().map_err(|_| format!("expected an integer, got \"{s}\""))?,
                    Value::Array(_) => return Err("expected an integer, got an array".into()),
                };
                <$t>::try_from(n).map_err(|_| format!("integer {n} out of range"))
            }
        }
    )*};
}
int_from_value!(u16, u32, u64, i64, usize);

/// A list of strings: `( "a", "b" )`; a single string is a list of one.
impl FromValue for Vec<String> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Str(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items.iter().map(|(_, v)| String::from_value(v)).collect(),
            Value::Int(_) => Err("expected a list of strings, got an integer".into()),
        }
    }
}

/// A `key => value` map of strings, in order.
impl FromValue for Vec<(String, String)> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|(k, v)| match k {
                    Some(k) => Ok((k.clone(), String::from_value(v)?)),
                    None => Err("expected \"key\" => \"value\" elements".to_string()),
                })
                .collect(),
            _ => Err("expected an array of \"key\" => \"value\"".into()),
        }
    }
}

/// Any value kept as written, for modules that interpret it themselves.
impl FromValue for Value {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(v.clone())
    }
}

macro_rules! request_options {
    ($( $(#[$m:meta])* $field:ident : $ty:ty = $key:literal, default $def:expr; )*) => {
        /// Per-request options with their lighttpd defaults.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub struct RequestOptions { $( $(#[$m])* pub $field: $ty, )* }

        impl Default for RequestOptions {
            fn default() -> Self { Self { $( $field: $def, )* } }
        }

        /// One option a block sets, by field name.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum PatchValue { $( $field($ty), )* }

        impl PatchValue {
            /// The lighttpd key this value is for.
            pub fn key(&self) -> &'static str {
                match self { $( PatchValue::$field(_) => $key, )* }
            }
        }

        /// What one block sets: only the options it sets, one entry each, so that
        /// a block costs what its own settings need (shared hosting has thousands
        /// of blocks that set one key).
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        pub struct Patch { set: Box<[PatchValue]> }

        /// The options in force for one request: references into the defaults and
        /// the patches of the blocks that matched.
        #[derive(Clone, Copy, Debug)]
        pub struct View<'a> { $( pub $field: &'a $ty, )* }

        impl RequestOptions {
            pub fn view(&self) -> View<'_> { View { $( $field: &self.$field, )* } }
        }

        impl<'a> View<'a> {
            /// lighttpd's config_patch_config: a later block wins.
            #[inline]
            pub fn apply(&mut self, p: &'a Patch) {
                for v in p.set.iter() {
                    match v { $( PatchValue::$field(x) => self.$field = x, )* }
                }
            }
        }

        impl Patch {
            /// Set `key` from `v`. Ok(false): not a per-request key.
            pub fn set(&mut self, key: &str, v: &Value) -> Result<bool, String> {
                let value = match key {
                    $( $key => PatchValue::$field(<$ty as FromValue>::from_value(v)?), )*
                    _ => return Ok(false),
                };
                self.put(value);
                Ok(true)
            }

            /// Set one option, replacing what the block set for it before.
            pub fn put(&mut self, value: PatchValue) {
                let mut set = std::mem::take(&mut self.set).into_vec();
                match set.iter().position(|x| x.key() == value.key()) {
                    Some(i) => set[i] = value,
                    None => set.push(value),
                }
                self.set = set.into_boxed_slice();
            }

            /// The options set, in no particular order.
            pub fn values(&self) -> &[PatchValue] {
                &self.set
            }

            /// Whether the block sets nothing per request.
            pub fn is_empty(&self) -> bool {
                self.set.is_empty()
            }

            /// A copy with only the options `keep` names (lighttpd keys).
            pub fn only(&self, keep: &[&str]) -> Patch {
                Patch { set: self.set.iter().filter(|v| keep.contains(&v.key())).cloned().collect() }
            }

            $(
                #[doc = concat!("`", $key, "` if this block sets it.")]
                pub fn $field(&self) -> Option<&$ty> {
                    self.set.iter().find_map(|v| match v {
                        PatchValue::$field(x) => Some(x),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    })
                }
            )*
        }

        /// Every per-request key wickd understands.
        pub const REQUEST_KEYS: &[&str] = &[$($key),*];
    };
}

// One line per key: field, type, lighttpd key, lighttpd's default.
// Modules add their keys here.
request_options! {
    document_root: String = "server.document-root", default String::new();
    server_tag: String = "server.tag", default concat!("wickd/", env!("CARGO_PKG_VERSION")).to_string();
    server_name: String = "server.name", default String::new();
    index_files: Vec<String> = "index-file.names", default vec!["index.html".into(), "index.htm".into()];
    /// Without any mimetype.assign: the built-in table (lighttpd 1.4.71+), see `mime`.
    mimetypes: Vec<(String, String)> = "mimetype.assign", default crate::mime::default_mimetypes();
    follow_symlink: bool = "server.follow-symlink", default true;
    range_requests: bool = "server.range-requests", default true;
    force_lowercase_filenames: bool = "server.force-lowercase-filenames", default false;
    etags: bool = "static-file.etags", default true;
    etag_use_inode: bool = "etag.use-inode", default true;
    etag_use_mtime: bool = "etag.use-mtime", default true;
    etag_use_size: bool = "etag.use-size", default true;
    static_exclude_extensions: Vec<String> = "static-file.exclude-extensions", default Vec::new();
    static_disable_pathinfo: bool = "static-file.disable-pathinfo", default false;
    /// KiB; 0 = unlimited.
    max_request_size: u64 = "server.max-request-size", default 0;
    max_read_idle: u64 = "server.max-read-idle", default 60;
    max_write_idle: u64 = "server.max-write-idle", default 360;
    /// 0: a body is received whole (spooled) before a backend gets it; 1: it
    /// streams, read ahead of the backend into the spool; 2: it streams with at
    /// most 64 KiB held (the backend back-pressures the client).
    stream_request_body: u64 = "server.stream-request-body", default 0;
    /// 0 and 1: a response the client is slow to take is spooled to a file in
    /// server.upload-dirs so the script or backend is read to its end; 2: the
    /// script or backend is not read while 256 KiB wait for the client.
    stream_response_body: u64 = "server.stream-response-body", default 0;
    errorfile_prefix: String = "server.errorfile-prefix", default String::new();
    error_handler: String = "server.error-handler", default String::new();
    error_handler_404: String = "server.error-handler-404", default String::new();
    // mod_cgi (cgi.user / cgi.group are wick's: run the block's scripts as that user)
    cgi_assign: Vec<(String, String)> = "cgi.assign", default Vec::new();
    cgi_execute_x_only: bool = "cgi.execute-x-only", default false;
    cgi_x_sendfile: bool = "cgi.x-sendfile", default false;
    cgi_x_sendfile_docroot: Vec<String> = "cgi.x-sendfile-docroot", default Vec::new();
    cgi_local_redir: bool = "cgi.local-redir", default false;
    cgi_upgrade: bool = "cgi.upgrade", default false;
    cgi_limits: Value = "cgi.limits", default Value::Array(Vec::new());
    cgi_user: String = "cgi.user", default String::new();
    cgi_group: String = "cgi.group", default String::new();
    // mod_fastcgi (fastcgi.server is parsed by the worker's gateway module, which
    // refuses bad values at start-up)
    fastcgi_server: Value = "fastcgi.server", default Value::Array(Vec::new());
    fastcgi_balance: String = "fastcgi.balance", default String::new();
    fastcgi_map_extensions: Vec<(String, String)> = "fastcgi.map-extensions", default Vec::new();
    fastcgi_debug: u64 = "fastcgi.debug", default 0;
    // mod_scgi, on the same gateway module (scgi.protocol: "scgi" or "uwsgi",
    // checked at start-up)
    scgi_server: Value = "scgi.server", default Value::Array(Vec::new());
    scgi_balance: String = "scgi.balance", default String::new();
    scgi_map_extensions: Vec<(String, String)> = "scgi.map-extensions", default Vec::new();
    scgi_protocol: String = "scgi.protocol", default String::new();
    // mod_proxy, on the same gateway module (proxy.server, proxy.forwarded and
    // proxy.header are checked at start-up by the worker's gateway module)
    proxy_server: Value = "proxy.server", default Value::Array(Vec::new());
    proxy_balance: String = "proxy.balance", default String::new();
    proxy_map_extensions: Vec<(String, String)> = "proxy.map-extensions", default Vec::new();
    proxy_debug: u64 = "proxy.debug", default 0;
    proxy_replace_http_host: bool = "proxy.replace-http-host", default false;
    proxy_forwarded: Value = "proxy.forwarded", default Value::Array(Vec::new());
    proxy_header: Value = "proxy.header", default Value::Array(Vec::new());
    // mod_wstunnel, on the same gateway module (wstunnel.server and
    // wstunnel.balance are checked at start-up by the worker's gateway module)
    wstunnel_server: Value = "wstunnel.server", default Value::Array(Vec::new());
    wstunnel_balance: String = "wstunnel.balance", default String::new();
    wstunnel_map_extensions: Vec<(String, String)> = "wstunnel.map-extensions", default Vec::new();
    wstunnel_debug: u64 = "wstunnel.debug", default 0;
    wstunnel_frame_type: String = "wstunnel.frame-type", default String::new();
    wstunnel_origins: Vec<String> = "wstunnel.origins", default Vec::new();
    wstunnel_ping_interval: u64 = "wstunnel.ping-interval", default 0;
    // mod_auth, mod_authn_file (auth.require and auth.cache are parsed by the worker's
    // mods::auth, which refuses bad values at start-up with file:line)
    auth_backend: String = "auth.backend", default String::new();
    auth_require: Value = "auth.require", default Value::Array(Vec::new());
    auth_cache: Value = "auth.cache", default Value::Array(Vec::new());
    auth_extern_authn: bool = "auth.extern-authn", default false;
    auth_plain_userfile: String = "auth.backend.plain.userfile", default String::new();
    auth_plain_groupfile: String = "auth.backend.plain.groupfile", default String::new();
    auth_htpasswd_userfile: String = "auth.backend.htpasswd.userfile", default String::new();
    auth_htdigest_userfile: String = "auth.backend.htdigest.userfile", default String::new();
    // mod_access
    url_access_deny: Vec<String> = "url.access-deny", default Vec::new();
    url_access_allow: Vec<String> = "url.access-allow", default Vec::new();
    // mod_alias
    alias_url: Vec<(String, String)> = "alias.url", default Vec::new();
    // mod_redirect (url.redirect-code 0: 301, or 308 for other methods than GET/HEAD from HTTP/1.1)
    url_redirect: Vec<(String, String)> = "url.redirect", default Vec::new();
    url_redirect_code: u16 = "url.redirect-code", default 0;
    // mod_rewrite
    url_rewrite_once: Vec<(String, String)> = "url.rewrite-once", default Vec::new();
    url_rewrite_final: Vec<(String, String)> = "url.rewrite-final", default Vec::new();
    url_rewrite: Vec<(String, String)> = "url.rewrite", default Vec::new();
    url_rewrite_repeat: Vec<(String, String)> = "url.rewrite-repeat", default Vec::new();
    url_rewrite_if_not_file: Vec<(String, String)> = "url.rewrite-if-not-file", default Vec::new();
    url_rewrite_repeat_if_not_file: Vec<(String, String)> = "url.rewrite-repeat-if-not-file", default Vec::new();
    // mod_setenv
    setenv_add_request_header: Vec<(String, String)> = "setenv.add-request-header", default Vec::new();
    setenv_set_request_header: Vec<(String, String)> = "setenv.set-request-header", default Vec::new();
    setenv_add_response_header: Vec<(String, String)> = "setenv.add-response-header", default Vec::new();
    setenv_set_response_header: Vec<(String, String)> = "setenv.set-response-header", default Vec::new();
    setenv_add_environment: Vec<(String, String)> = "setenv.add-environment", default Vec::new();
    setenv_set_environment: Vec<(String, String)> = "setenv.set-environment", default Vec::new();
    // mod_expire
    expire_url: Vec<(String, String)> = "expire.url", default Vec::new();
    expire_mimetypes: Vec<(String, String)> = "expire.mimetypes", default Vec::new();
    // mod_deflate (the compress.* names are read as these: keys::ALIASES).
    // max-compress-size in KiB (lighttpd's default: 128 MiB), min-compress-size in
    // bytes, compression-level -1: each encoder's default, max-loadavg "" = none.
    deflate_mimetypes: Vec<String> = "deflate.mimetypes", default Vec::new();
    deflate_allowed_encodings: Vec<String> = "deflate.allowed-encodings", default Vec::new();
    deflate_cache_dir: String = "deflate.cache-dir", default String::new();
    deflate_max_compress_size: u64 = "deflate.max-compress-size", default 128 * 1024;
    deflate_min_compress_size: u64 = "deflate.min-compress-size", default 256;
    deflate_compression_level: i64 = "deflate.compression-level", default -1;
    deflate_output_buffer_size: u64 = "deflate.output-buffer-size", default 0;
    deflate_work_block_size: u64 = "deflate.work-block-size", default 2048;
    deflate_max_loadavg: String = "deflate.max-loadavg", default String::new();
    // mod_extforward
    extforward_forwarder: Vec<(String, String)> = "extforward.forwarder", default Vec::new();
    extforward_headers: Vec<String> = "extforward.headers", default Vec::new();
    extforward_params: Vec<(String, String)> = "extforward.params", default Vec::new();
    // mod_dirlisting (load.rs sets server.dir-listing, its old name, here too;
    // likewise server.indexfiles for index-file.names: keys::ALIASES)
    dirlist_activate: bool = "dir-listing.activate", default false;
    dirlist_hide_dotfiles: bool = "dir-listing.hide-dotfiles", default true;
    dirlist_exclude: Vec<String> = "dir-listing.exclude", default Vec::new();
    dirlist_external_css: String = "dir-listing.external-css", default String::new();
    dirlist_external_js: String = "dir-listing.external-js", default String::new();
    dirlist_encoding: String = "dir-listing.encoding", default String::new();
    dirlist_show_readme: String = "dir-listing.show-readme", default String::new();
    dirlist_hide_readme_file: bool = "dir-listing.hide-readme-file", default false;
    dirlist_show_header: String = "dir-listing.show-header", default String::new();
    dirlist_hide_header_file: bool = "dir-listing.hide-header-file", default false;
    dirlist_set_footer: String = "dir-listing.set-footer", default String::new();
    dirlist_encode_readme: bool = "dir-listing.encode-readme", default true;
    dirlist_encode_header: bool = "dir-listing.encode-header", default true;
    dirlist_auto_layout: bool = "dir-listing.auto-layout", default true;
    dirlist_sort: bool = "dir-listing.sort", default true;
    dirlist_cache: Value = "dir-listing.cache", default Value::Array(Vec::new());
    // mod_simple_vhost
    svhost_server_root: String = "simple-vhost.server-root", default String::new();
    svhost_default_host: String = "simple-vhost.default-host", default String::new();
    svhost_document_root: String = "simple-vhost.document-root", default String::new();
    svhost_debug: bool = "simple-vhost.debug", default false;
    // mod_evhost
    evhost_path_pattern: String = "evhost.path-pattern", default String::new();
    // mod_userdir (userdir.path unset: the module is off; see mods::userdir)
    userdir_path: String = "userdir.path", default String::new();
    userdir_exclude_user: Vec<String> = "userdir.exclude-user", default Vec::new();
    userdir_include_user: Vec<String> = "userdir.include-user", default Vec::new();
    userdir_basepath: String = "userdir.basepath", default String::new();
    userdir_letterhomes: bool = "userdir.letterhomes", default false;
    userdir_active: bool = "userdir.active", default true;
    // mod_accesslog (empty format: lighttpd's default, see mods::accesslog)
    accesslog_filename: String = "accesslog.filename", default String::new();
    accesslog_format: String = "accesslog.format", default String::new();
    accesslog_use_syslog: bool = "accesslog.use-syslog", default false;
    accesslog_syslog_level: u16 = "accesslog.syslog-level", default 6;
    accesslog_escaping: String = "accesslog.escaping", default String::new();
    // mod_status (an empty URL: that page is off; status.metrics-url is wickd's)
    status_url: String = "status.status-url", default String::new();
    status_config_url: String = "status.config-url", default String::new();
    status_statistics_url: String = "status.statistics-url", default String::new();
    status_enable_sort: bool = "status.enable-sort", default true;
    status_metrics_url: String = "status.metrics-url", default String::new();
}

/// Where a listener is bound.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One listening socket the master binds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub addr: ListenAddr,
    /// The `$SERVER["socket"]` text as written (`":8080"`, `"[::]:80"`, `"/run/x.sock"`),
    /// or the server.bind/server.port pair for the global listener.
    pub spec: String,
    /// The `$SERVER["socket"] == ...` block that created it, if any.
    pub block: Option<crate::model::BlockId>,
    /// Socket-scope options: the global values, overridden by that block's.
    pub socket: SocketOptions,
    /// A host name to resolve when binding (server.bind or `$SERVER["socket"]`
    /// text): until [`crate::resolve_listeners`] runs, `addr` holds only its port,
    /// so that reading a configuration (-p, -t) never touches the network.
    pub host: Option<String>,
}

/// Options lighttpd reads per listening socket (global scope or
/// `$SERVER["socket"] == "..."`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketOptions {
    /// server.listen-backlog
    pub listen_backlog: u32,
    /// server.use-ipv6: a ":port" listener binds `[::]` instead of 0.0.0.0.
    pub use_ipv6: bool,
    /// server.set-v6only
    pub set_v6only: bool,
    /// server.socket-perms (octal text, unix sockets), if set.
    pub socket_perms: Option<String>,
    /// ssl.engine
    pub ssl_engine: bool,
    /// server.defer-accept: TCP_DEFER_ACCEPT seconds (0: off). wickd defaults to 1
    /// where lighttpd defaults to 0 (see wickd.conf(5)).
    pub defer_accept: u32,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            listen_backlog: 1024,
            use_ipv6: false,
            set_v6only: true,
            socket_perms: None,
            ssl_engine: false,
            defer_accept: 1,
        }
    }
}

/// Server-wide options (global scope; socket-scope keys may also be set in
/// `$SERVER["socket"]` blocks, see [`Listener`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerOptions {
    pub port: u16,
    pub bind: Option<String>,
    /// 0 in lighttpd means "no workers"; wickd always runs at least one.
    pub max_worker: u32,
    pub modules: Vec<String>,
    pub errorlog: Option<String>,
    pub errorlog_use_syslog: bool,
    pub max_connections: u32,
    pub max_fds: u32,
    pub listen_backlog: u32,
    pub username: Option<String>,
    pub groupname: Option<String>,
    pub chroot: Option<String>,
    pub pid_file: Option<String>,
    pub max_keep_alive_requests: u32,
    pub max_keep_alive_idle: u32,
    pub max_request_field_size: u32,
    pub graceful_shutdown_timeout: u32,
    pub systemd_socket_activation: bool,
    /// server.compat-module-load (default on): see [`ServerOptions::effective_modules`].
    pub compat_module_load: bool,
    /// server.upload-dirs
    pub upload_dirs: Vec<String>,
    /// server.syslog-facility
    pub syslog_facility: Option<String>,
    /// server.breakagelog
    pub breakagelog: Option<String>,
    /// server.feature-flags, as written.
    pub feature_flags: Vec<(String, Value)>,
    /// debug.log-request-header-on-error: a refused request's reason and head go
    /// to the error log.
    pub log_request_header_on_error: bool,
    /// server.min-request-body-rate (wickd's): bytes a second a request body must
    /// average once server.max-read-idle seconds have passed; 0: no minimum.
    pub min_request_body_rate: u32,
    /// What the blocks set that decides which modules lighttpd loads by itself.
    pub module_facts: crate::keys::ModuleFacts,
    /// server.http-parseopts and the old server.http-parseopt-* keys.
    pub http_parseopts: crate::parseopts::ParseOpts,
    /// server.h2proto (or the feature flag): HTTP/2 by ALPN and on cleartext.
    pub h2proto: bool,
    /// server.h2c (or the feature flag): HTTP/2 on cleartext (prior knowledge).
    pub h2c: bool,
}

impl ServerOptions {
    /// The modules in force, in order: server.modules plus what lighttpd loads by
    /// itself (see [`crate::keys::compat_load`]).
    pub fn effective_modules(&self) -> Vec<String> {
        crate::keys::effective_modules(&self.modules, self.compat_module_load, &self.module_facts)
    }

    /// The directories request bodies are spooled to (server.upload-dirs, as
    /// lighttpd: /var/tmp when unset), or none when no module in force hands a
    /// body to a backend (mod_cgi, mod_fastcgi, mod_scgi, mod_proxy).
    pub fn body_spool_dirs(&self) -> Vec<String> {
        let spools = self.effective_modules().iter().any(|m| {
            matches!(
                m.as_str(),
                "mod_cgi" | "mod_fastcgi" | "mod_scgi" | "mod_proxy"
            )
        });
        if !spools {
            return Vec::new();
        }
        let dirs: Vec<String> = self
            .upload_dirs
            .iter()
            .filter(|d| !d.is_empty())
            .cloned()
            .collect();
        if dirs.is_empty() {
            vec!["/var/tmp".to_string()]
        } else {
            dirs
        }
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            port: 80,
            bind: None,
            max_worker: 0,
            modules: Vec::new(),
            errorlog: None,
            errorlog_use_syslog: false,
            max_connections: 0,
            max_fds: 0,
            listen_backlog: 1024,
            username: None,
            groupname: None,
            chroot: None,
            pid_file: None,
            max_keep_alive_requests: 1000,
            max_keep_alive_idle: 5,
            max_request_field_size: 8192,
            graceful_shutdown_timeout: 8,
            systemd_socket_activation: false,
            compat_module_load: true,
            upload_dirs: Vec::new(),
            syslog_facility: None,
            breakagelog: None,
            feature_flags: Vec::new(),
            log_request_header_on_error: false,
            min_request_body_rate: 64,
            module_facts: Default::default(),
            http_parseopts: Default::default(),
            h2proto: true,
            h2c: true,
        }
    }
}
