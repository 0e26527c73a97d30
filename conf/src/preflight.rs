//! `wickd -tt`: what start-up would need, checked without binding any socket or
//! creating any file. Refused, as start-up or lighttpd's -tt refuses them: no global
//! document root, a chroot, user or group that does not exist, TLS files that cannot
//! be read (lighttpd loads them at start-up), log and pid files that cannot be
//! written (start-up would fail opening them). Only warned about, as lighttpd starts
//! with them and answers 404: document roots, userdir.basepath and alias targets
//! that do not exist ([`warnings`]). (Modules lighttpd does not know, and keys whose
//! absence opens access, are refused by [`crate::support::check`], at start-up as
//! at -tt.)

use crate::model::{Config, Value};
use nix::unistd::{access, AccessFlags, Group, User};
use std::path::{Path, PathBuf};

/// Keys naming files lighttpd reads at start-up (mod_openssl loads them whenever
/// it is in force, whatever ssl.engine says).
const READ_FILES: &[&str] = &[
    "ssl.pemfile",
    "ssl.privkey",
    "ssl.ca-file",
    "ssl.ca-dn-file",
    "ssl.ca-crl-file",
    "ssl.dh-file",
    "ssl.stapling-file",
];

/// Keys naming files the server writes (append); `|command` and syslog are skipped.
const WRITE_FILES: &[&str] = &["server.errorlog", "accesslog.filename"];

/// Ok, or the first problem found, as one line for the user.
pub fn check(config: &Config) -> Result<(), String> {
    let s = &config.server;
    if let Some(r) = chroot_of(config) {
        if !r.is_dir() {
            return Err(format!("server.chroot {}: not a directory", r.display()));
        }
    }
    if let Some(u) = &s.username {
        if u.parse::<u32>().is_err() && !matches!(User::from_name(u), Ok(Some(_))) {
            return Err(format!("server.username: no such user \"{u}\""));
        }
    }
    if let Some(g) = &s.groupname {
        if g.parse::<u32>().is_err() && !matches!(Group::from_name(g), Ok(Some(_))) {
            return Err(format!("server.groupname: no such group \"{g}\""));
        }
    }
    let root = chroot_of(config);
    let global_root = config
        .patches
        .first()
        .and_then(|p| p.document_root.as_deref())
        .unwrap_or("");
    if global_root.is_empty() {
        return Err("server.document-root is not set".into());
    }
    let tls = crate::keys::module_loaded("mod_openssl", &s.effective_modules());
    for b in &config.blocks {
        for st in &b.settings {
            let key = st.key.to_ascii_lowercase();
            let Value::Str(v) = &st.value else { continue };
            if v.is_empty() {
                continue;
            }
            let at = format!("{}:{}: ", st.loc.file, st.loc.line);
            if tls && READ_FILES.contains(&key.as_str()) {
                std::fs::File::open(v).map_err(|e| {
                    format!(
                        "{at}{key} {v}: cannot be read: {e} (lighttpd does not start without it)"
                    )
                })?;
            } else if WRITE_FILES.contains(&key.as_str()) && !v.starts_with('|') {
                // Log files too are inside the chroot (the master opens them there).
                writable(&inside(&root, v)).map_err(|e| {
                    format!(
                        "{at}{key} {v}: cannot be written: {e} (start-up would fail opening it)"
                    )
                })?;
            }
        }
    }
    if let Some(pid) = &s.pid_file {
        writable(Path::new(pid)).map_err(|e| {
            format!(
                "server.pid-file {pid}: cannot be written: {e} (start-up would fail creating it)"
            )
        })?;
    }
    Ok(())
}

/// server.chroot, if set: the workers open document roots and log files inside it.
fn chroot_of(config: &Config) -> Option<PathBuf> {
    config
        .server
        .chroot
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
}

/// Where a worker finds `p`: inside the chroot when there is one.
fn inside(root: &Option<PathBuf>, p: &str) -> PathBuf {
    match root {
        Some(r) => r.join(p.trim_start_matches('/')),
        None => PathBuf::from(p),
    }
}

/// What start-up goes on with and requests will answer 404 for: document roots,
/// userdir.basepath and alias.url targets that do not exist, one line each with
/// file:line. Printed by -tt and logged at start-up and on reload.
pub fn warnings(config: &Config) -> Vec<String> {
    let root = chroot_of(config);
    let mut out = Vec::new();
    for (id, p) in config.patches.iter().enumerate() {
        if let Some(dr) = p.document_root.as_deref().filter(|d| !d.is_empty()) {
            if !inside(&root, dr).is_dir() {
                out.push(format!(
                    "WARNING: {}server.document-root {dr}: no such directory; requests for it get 404",
                    where_set(config, id, "server.document-root")
                ));
            }
        }
        if let Some(base) = p.userdir_basepath.as_deref().filter(|b| !b.is_empty()) {
            if !inside(&root, base).is_dir() {
                out.push(format!(
                    "WARNING: {}userdir.basepath {base}: no such directory; requests for it get 404",
                    where_set(config, id, "userdir.basepath")
                ));
            }
        }
        // mod_authn_file: lighttpd starts and refuses every login; so does wickd.
        for (key, file) in [
            ("auth.backend.plain.userfile", &p.auth_plain_userfile),
            ("auth.backend.htpasswd.userfile", &p.auth_htpasswd_userfile),
            ("auth.backend.htdigest.userfile", &p.auth_htdigest_userfile),
        ] {
            let Some(f) = file.as_deref().filter(|f| !f.is_empty()) else {
                continue;
            };
            if let Err(e) = std::fs::File::open(inside(&root, f)) {
                out.push(format!(
                    "WARNING: {}{key} {f}: cannot be read: {e}; every login to what auth.require protects with it fails (401) until it can be (a file created later needs a graceful restart, SIGUSR1, to be inside the workers' sandbox)",
                    where_set(config, id, key)
                ));
            }
        }
        for (prefix, target) in p.alias_url.iter().flatten() {
            if !inside(&root, target).exists() {
                out.push(format!(
                    "WARNING: {}alias.url \"{prefix}\" => {target}: no such file or directory; requests for it get 404",
                    where_set(config, id, "alias.url")
                ));
            }
        }
    }
    out
}

fn where_set(config: &Config, id: usize, key: &str) -> String {
    config.blocks[id]
        .settings
        .iter()
        .find(|s| s.key.eq_ignore_ascii_case(key))
        .map(|s| format!("{}:{}: ", s.loc.file, s.loc.line))
        .unwrap_or_default()
}

/// Could the file be opened for appending (or created), without touching it?
fn writable(p: &Path) -> Result<(), String> {
    if p.exists() {
        if p.is_dir() {
            return Err("it is a directory".into());
        }
        return access(p, AccessFlags::W_OK).map_err(|e| e.desc().to_string());
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    access(&dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| format!("directory {}: {}", dir.display(), e.desc()))
}
