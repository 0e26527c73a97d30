//! What a worker's sandbox allows, derived from the config alone: the user and
//! group to become, the chroot, the fd limit, the trees it may read and write, and
//! the TCP ports of the backends it may connect to.
//!
//! Paths are taken as written: with server.chroot set they are inside the chroot,
//! as in lighttpd. Every block counts (a conditional document root is still a root).

use std::path::{Path, PathBuf};
use wick_conf::{Config, Value};

/// Everything `enter_with` needs; plain data, so tests can build one by hand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// server.username (only used when started as root).
    pub username: Option<String>,
    /// server.groupname (only used when started as root).
    pub groupname: Option<String>,
    /// server.chroot (only used when started as root).
    pub chroot: Option<PathBuf>,
    /// server.max-fds; `None` = lighttpd's default (raise the soft limit to 4096).
    pub max_fds: Option<u64>,
    /// Read-only trees (a directory: files and listings beneath it; a file: itself).
    pub read: Vec<PathBuf>,
    /// server.errorfile-prefix values: every existing file whose path starts with
    /// the prefix becomes readable.
    pub read_prefixes: Vec<PathBuf>,
    /// Directories whose files (not listings) may be read: those of mod_auth's
    /// user files, so that a file replaced by rename (an editor's save, `htpasswd
    /// -c`: a new inode, outside a rule made on the old one) is read again.
    pub read_files_in: Vec<PathBuf>,
    /// Trees the config names for writing (cache dirs): read + write.
    pub write: Vec<PathBuf>,
    /// server.upload-dirs (/var/tmp when unset) where a module hands request
    /// bodies to backends: temporary files made, written, read back and (without
    /// O_TMPFILE) unlinked there; nothing listed, nothing else read.
    pub upload: Vec<PathBuf>,
    /// Directories the worker makes (mode 0700, as its own user, before its
    /// Landlock write rule): deflate.cache-dir when mod_deflate is loaded, as
    /// lighttpd makes it at start-up.
    pub create: Vec<PathBuf>,
    /// TCP ports of configured backends (FastCGI, SCGI, proxy, ...).
    pub connect_ports: Vec<u16>,
    /// A backend is reached over a unix socket.
    pub unix_backends: bool,
    /// mod_userdir without a basepath: homes come from the passwd database, which
    /// the sandbox hides, so their `userdir.path` subdirs are resolved at entry.
    pub userdir: Option<UserDir>,
}

/// mod_userdir settings that name home directories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDir {
    /// userdir.path (e.g. `public_html`); empty means the home itself.
    pub path: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// Keys whose values are read-only directory (or file) paths.
const READ_KEYS: &[&str] = &[
    "server.document-root",
    "simple-vhost.server-root",
    "userdir.basepath",
    "secdownload.document-root",
    "cgi.x-sendfile-docroot",
    "auth.backend.plain.userfile",
    "auth.backend.plain.groupfile",
    "auth.backend.htpasswd.userfile",
    "auth.backend.htdigest.userfile",
    // ACME challenge certificates appear while the worker runs (tls/acme.rs);
    // the server's own certificates and keys never are the worker's to read.
    "ssl.acme-tls-1",
    "magnet.attract-raw-url-to",
    "magnet.attract-physical-path-to",
    "magnet.attract-response-start-to",
];

/// mod_auth's user files: their directories get [`Plan::read_files_in`].
const USER_FILE_KEYS: &[&str] = &[
    "auth.backend.plain.userfile",
    "auth.backend.plain.groupfile",
    "auth.backend.htpasswd.userfile",
    "auth.backend.htdigest.userfile",
];

/// The directory a user file is replaced in, unless that is `/` or a directory
/// directly beneath it (`/etc`, `/srv`): opening one of those to the worker would
/// undo the sandbox; such a file is the rule's alone, and one replaced by rename
/// is read again after a graceful restart (SIGUSR1).
fn user_file_dir(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    (dir.is_absolute() && dir.components().count() > 2).then(|| dir.to_path_buf())
}

/// Keys whose values are directories the worker writes into.
const WRITE_KEYS: &[&str] = &["deflate.cache-dir", "compress.cache-dir"];

/// Gateway keys: `ext => ( ( "host" => .., "port" => .. ), .. )` trees.
const BACKEND_KEYS: &[&str] = &[
    "fastcgi.server",
    "scgi.server",
    "proxy.server",
    "ajp13.server",
    "sockproxy.server",
    "wstunnel.server",
];

impl Plan {
    /// Derive the plan from every block of `cfg`.
    pub fn from_config(cfg: &Config) -> Plan {
        let s = &cfg.server;
        let mut p = Plan {
            username: s.username.clone().filter(|u| !u.is_empty()),
            groupname: s.groupname.clone().filter(|g| !g.is_empty()),
            chroot: s
                .chroot
                .as_ref()
                .filter(|c| !c.is_empty())
                .map(PathBuf::from),
            max_fds: (s.max_fds > 0).then_some(u64::from(s.max_fds)),
            upload: s.body_spool_dirs().into_iter().map(PathBuf::from).collect(),
            ..Plan::default()
        };
        let userdir_loaded = s.modules.iter().any(|m| m == "mod_userdir");
        let deflate_loaded = s.effective_modules().iter().any(|m| m == "mod_deflate");
        let mut userdir = UserDir::default();
        let mut userdir_basepath = false;
        let mut userdir_path = None;
        for st in cfg.blocks.iter().flat_map(|b| b.settings.iter()) {
            let key = st.key.as_str();
            if USER_FILE_KEYS.contains(&key) {
                let files = strings(&st.value).filter(|f| !f.is_empty());
                p.read_files_in
                    .extend(files.filter_map(|f| user_file_dir(Path::new(&f))));
            }
            if READ_KEYS.contains(&key) {
                p.read.extend(strings(&st.value).map(PathBuf::from));
                userdir_basepath |= key == "userdir.basepath";
            } else if WRITE_KEYS.contains(&key) {
                p.write.extend(strings(&st.value).map(PathBuf::from));
                if deflate_loaded && key.ends_with(".cache-dir") {
                    p.create.extend(strings(&st.value).map(PathBuf::from));
                }
            } else if BACKEND_KEYS.contains(&key) {
                p.backends(&st.value);
            } else {
                match key {
                    // url-prefix => path
                    "alias.url" => p.read.extend(values(&st.value).map(PathBuf::from)),
                    "server.errorfile-prefix" => p
                        .read_prefixes
                        .extend(strings(&st.value).map(PathBuf::from)),
                    "evhost.path-pattern" => p
                        .read
                        .extend(strings(&st.value).filter_map(|v| pattern_base(&v))),
                    // mod_dirlisting: a readme/header file named by absolute path
                    "dir-listing.show-readme" | "dir-listing.show-header" => p.read.extend(
                        strings(&st.value)
                            .filter(|v| v.starts_with('/'))
                            .map(PathBuf::from),
                    ),
                    "userdir.path" => userdir_path = strings(&st.value).next(),
                    "userdir.include-user" => userdir.include.extend(strings(&st.value)),
                    "userdir.exclude-user" => userdir.exclude.extend(strings(&st.value)),
                    _ => {}
                }
            }
        }
        // mod_userdir does nothing until userdir.path is set.
        if let (true, false, Some(path)) = (userdir_loaded, userdir_basepath, userdir_path) {
            userdir.path = path;
            p.userdir = Some(userdir);
        }
        p.read.retain(|r| !r.as_os_str().is_empty());
        p.write.retain(|w| !w.as_os_str().is_empty());
        p.create.retain(|w| !w.as_os_str().is_empty());
        p.read_prefixes.retain(|r| !r.as_os_str().is_empty());
        for v in [
            &mut p.read,
            &mut p.write,
            &mut p.upload,
            &mut p.read_prefixes,
            &mut p.read_files_in,
            &mut p.create,
        ] {
            v.sort();
            v.dedup();
        }
        // A bin-path backend's processes listen on port + i (and a host without
        // a port on 80): every one of them is connected to.
        for b in wick_conf::spawn::backends(cfg).unwrap_or_default() {
            for a in b.addrs() {
                match a {
                    wick_conf::spawn::Listen::Tcp(sa) => p.connect_ports.push(sa.port()),
                    wick_conf::spawn::Listen::Unix(_) => p.unix_backends = true,
                }
            }
        }
        p.connect_ports.sort_unstable();
        p.connect_ports.dedup();
        p
    }

    /// Collect ports and unix sockets from a gateway tree (any depth: lighttpd
    /// allows `ext => ( host, .. )` and `ext => ( "name" => ( host ), .. )`).
    fn backends(&mut self, v: &Value) {
        let Value::Array(items) = v else { return };
        // An authorizer's docroot is the document root of the requests it
        // grants (gateway/authorizer.rs): the worker serves files from it.
        let authorizer = items.iter().any(|(k, v)| {
            k.as_deref() == Some("mode") && matches!(v, Value::Str(m) if m == "authorizer")
        });
        for (k, item) in items {
            match (k.as_deref(), item) {
                (Some("docroot"), Value::Str(d)) if authorizer && !d.is_empty() => {
                    self.read.push(PathBuf::from(d))
                }
                (Some("port"), Value::Int(n)) => {
                    if let Ok(port) = u16::try_from(*n) {
                        self.connect_ports.push(port);
                    }
                }
                (Some("port"), Value::Str(s)) => {
                    if let Ok(port) = s.trim().parse::<u16>() {
                        self.connect_ports.push(port);
                    }
                }
                (Some("socket"), Value::Str(s)) if !s.is_empty() => self.unix_backends = true,
                // Files a backend may name in X-Sendfile are the worker's to read.
                (Some("x-sendfile-docroot"), v) => self
                    .read
                    .extend(strings(v).filter(|d| !d.is_empty()).map(PathBuf::from)),
                (Some("host"), Value::Str(s)) if s.starts_with('/') => self.unix_backends = true,
                (_, Value::Array(_)) => self.backends(item),
                _ => {}
            }
        }
    }

    /// True when the worker may create sockets and connect (a backend exists).
    pub fn connects(&self) -> bool {
        !self.connect_ports.is_empty() || self.unix_backends
    }
}

/// A string or every string of a (nested) list.
fn strings(v: &Value) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    collect(v, &mut out);
    out.into_iter()
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Str(s) => out.push(s.clone()),
        Value::Int(_) => {}
        Value::Array(items) => items.iter().for_each(|(_, v)| collect(v, out)),
    }
}

/// The values of a `key => value` list (alias.url targets).
fn values(v: &Value) -> impl Iterator<Item = String> + '_ {
    let items: &[(Option<String>, Value)] = match v {
        Value::Array(items) => items,
        _ => &[],
    };
    items.iter().filter_map(|(_, v)| match v {
        Value::Str(s) => Some(s.clone()),
        _ => None,
    })
}

/// The fixed directory in front of an evhost pattern: `/srv/%0/htdocs/` → `/srv`.
fn pattern_base(pattern: &str) -> Option<PathBuf> {
    let fixed = match pattern.find('%') {
        Some(i) => &pattern[..i],
        None => pattern,
    };
    let dir = match fixed.rfind('/') {
        Some(0) => "/",
        Some(i) => &fixed[..i],
        None => return None,
    };
    Some(Path::new(dir).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_conf::{Block, Loc, Setting};

    fn set(key: &str, value: Value) -> Setting {
        Setting {
            key: key.into(),
            value,
            loc: Loc::default(),
        }
    }
    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }
    fn arr(items: Vec<(Option<&str>, Value)>) -> Value {
        Value::Array(
            items
                .into_iter()
                .map(|(k, v)| (k.map(String::from), v))
                .collect(),
        )
    }
    fn config(blocks: Vec<Vec<Setting>>) -> Config {
        Config {
            main_file: "t.conf".into(),
            blocks: blocks
                .into_iter()
                .enumerate()
                .map(|(i, settings)| Block {
                    parent: (i > 0).then_some(0),
                    cond: None,
                    else_of: None,
                    settings,
                    loc: Loc::default(),
                })
                .collect(),
            server: Default::default(),
            patches: Vec::new(),
            listeners: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A user file's directory opens to reads of its files (a file replaced by
    /// rename is a new inode), never `/` or a directory directly beneath it.
    #[test]
    fn user_file_directories() {
        let cfg = config(vec![
            vec![
                set(
                    "auth.backend.htpasswd.userfile",
                    s("/etc/lighttpd/htpasswd"),
                ),
                set("auth.backend.plain.userfile", s("/etc/lighttpd.user")),
            ],
            vec![
                set("auth.backend.htdigest.userfile", s("/srv/auth/d/htdigest")),
                set("auth.backend.plain.groupfile", s("/groups")),
                set("auth.backend.plain.userfile", s("relative/file")),
            ],
        ]);
        let p = Plan::from_config(&cfg);
        assert_eq!(
            p.read_files_in,
            [PathBuf::from("/etc/lighttpd"), PathBuf::from("/srv/auth/d")]
        );
        assert!(p.read.contains(&PathBuf::from("/etc/lighttpd.user")));
    }

    #[test]
    fn roots_from_every_block() {
        let mut cfg = config(vec![
            vec![
                set("server.document-root", s("/srv/www")),
                set("deflate.cache-dir", s("/var/cache/wickd")),
                set("server.errorfile-prefix", s("/srv/errors/status-")),
            ],
            vec![
                set("server.document-root", s("/srv/other")),
                set(
                    "alias.url",
                    arr(vec![(Some("/icons/"), s("/usr/share/icons/"))]),
                ),
                set("evhost.path-pattern", s("/home/vhosts/%0/htdocs/")),
            ],
        ]);
        cfg.server.username = Some("nobody".into());
        cfg.server.max_fds = 2048;
        let p = Plan::from_config(&cfg);
        assert_eq!(p.username.as_deref(), Some("nobody"));
        assert_eq!(p.max_fds, Some(2048));
        let read: Vec<_> = p.read.iter().map(|r| r.to_str().unwrap_or("")).collect();
        assert_eq!(
            read,
            [
                "/home/vhosts",
                "/srv/other",
                "/srv/www",
                "/usr/share/icons/"
            ]
        );
        assert_eq!(p.write, [PathBuf::from("/var/cache/wickd")]);
        // No module hands bodies to a backend: no upload dir.
        assert!(p.upload.is_empty());
        cfg.server.modules = vec!["mod_fastcgi".into()];
        assert_eq!(Plan::from_config(&cfg).upload, [PathBuf::from("/var/tmp")]);
        cfg.server.upload_dirs = vec!["/var/tmp/up".into()];
        assert_eq!(
            Plan::from_config(&cfg).upload,
            [PathBuf::from("/var/tmp/up")]
        );
        assert_eq!(p.read_prefixes, [PathBuf::from("/srv/errors/status-")]);
        assert!(!p.connects());
    }

    #[test]
    fn backend_ports_at_any_depth() {
        let host = |port: Value| arr(vec![(Some("host"), s("127.0.0.1")), (Some("port"), port)]);
        let cfg = config(vec![vec![
            set(
                "fastcgi.server",
                arr(vec![(
                    Some(".php"),
                    arr(vec![(None, host(Value::Int(9000)))]),
                )]),
            ),
            set(
                "proxy.server",
                arr(vec![(
                    Some("/app/"),
                    arr(vec![
                        (Some("one"), host(s("8081"))),
                        (Some("two"), host(Value::Int(8081))),
                    ]),
                )]),
            ),
            set(
                "scgi.server",
                arr(vec![(
                    Some("/s"),
                    arr(vec![(None, arr(vec![(Some("socket"), s("/run/s.sock"))]))]),
                )]),
            ),
        ]]);
        let p = Plan::from_config(&cfg);
        assert_eq!(p.connect_ports, [8081, 9000]);
        assert!(p.unix_backends);
        assert!(p.connects());
    }

    /// An authorizer's docroot is read (the requests it grants are served from
    /// it); a responder's is the backend's own.
    #[test]
    fn authorizer_docroot_is_read() {
        let host = |mode: &str, root: &str| {
            arr(vec![
                (Some("port"), Value::Int(9000)),
                (Some("mode"), s(mode)),
                (Some("docroot"), s(root)),
            ])
        };
        let cfg = config(vec![vec![set(
            "fastcgi.server",
            arr(vec![(
                Some("/"),
                arr(vec![
                    (None, host("authorizer", "/srv/granted")),
                    (None, host("responder", "/backend/only")),
                ]),
            )]),
        )]]);
        let p = Plan::from_config(&cfg);
        assert!(
            p.read.contains(&PathBuf::from("/srv/granted")),
            "{:?}",
            p.read
        );
        assert!(!p.read.contains(&PathBuf::from("/backend/only")));
    }

    /// A bin-path backend on TCP: each of its processes' ports (port + i).
    #[test]
    fn bin_path_process_ports() {
        let mut cfg = config(vec![vec![set(
            "fastcgi.server",
            arr(vec![(
                Some(".php"),
                arr(vec![(
                    None,
                    arr(vec![
                        (Some("bin-path"), s("/usr/bin/php-cgi")),
                        (Some("port"), Value::Int(9100)),
                        (Some("max-procs"), Value::Int(3)),
                    ]),
                )]),
            )]),
        )]]);
        cfg.server.modules = vec!["mod_fastcgi".into()];
        let p = Plan::from_config(&cfg);
        assert_eq!(p.connect_ports, [9100, 9101, 9102]);
    }

    #[test]
    fn evhost_base() {
        assert_eq!(pattern_base("/srv/%0/htdocs/"), Some(PathBuf::from("/srv")));
        assert_eq!(pattern_base("/%_/"), Some(PathBuf::from("/")));
        assert_eq!(pattern_base("rel%0"), None);
    }

    #[test]
    fn userdir_without_basepath_needs_homes() {
        let mut cfg = config(vec![vec![set("userdir.path", s("public_html"))]]);
        cfg.server.modules = vec!["mod_userdir".into()];
        let p = Plan::from_config(&cfg);
        assert_eq!(
            p.userdir.as_ref().map(|u| u.path.as_str()),
            Some("public_html")
        );
        let mut cfg2 = cfg.clone();
        cfg2.blocks[0]
            .settings
            .push(set("userdir.basepath", s("/home/")));
        assert_eq!(Plan::from_config(&cfg2).userdir, None);
    }
}
