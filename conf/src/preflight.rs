//! `wickd -tt`: what start-up would need, checked without binding any socket or
//! creating any file: the global document root is set, every document root exists,
//! the user, group and chroot exist, files to be read are readable, log files can
//! be written. (Modules lighttpd does not know, and keys whose absence opens access,
//! are refused by [`crate::support::check`], at start-up as at -tt.)

use crate::model::{Config, Value};
use nix::unistd::{access, AccessFlags, Group, User};
use std::path::{Path, PathBuf};

/// Keys naming files the server reads at start-up.
const READ_FILES: &[&str] = &[
    "ssl.pemfile",
    "ssl.privkey",
    "ssl.ca-file",
    "ssl.ca-dn-file",
    "ssl.ca-crl-file",
    "ssl.dh-file",
    "ssl.stapling-file",
    "auth.backend.plain.userfile",
    "auth.backend.plain.groupfile",
    "auth.backend.htpasswd.userfile",
    "auth.backend.htdigest.userfile",
];

/// Keys naming files the server writes (append); `|command` and syslog are skipped.
const WRITE_FILES: &[&str] = &[
    "server.errorlog",
    "server.breakagelog",
    "accesslog.filename",
];

/// Ok, or the first problem found, as one line for the user.
pub fn check(config: &Config) -> Result<(), String> {
    let s = &config.server;
    let root = s.chroot.as_deref().map(PathBuf::from);
    if let Some(r) = &root {
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
    let global_root = config
        .patches
        .first()
        .and_then(|p| p.document_root.as_deref())
        .unwrap_or("");
    if global_root.is_empty() {
        return Err("server.document-root is not set".into());
    }
    // Paths the workers open after chroot are inside it.
    let inside = |p: &str| -> PathBuf {
        match &root {
            Some(r) => r.join(p.trim_start_matches('/')),
            None => PathBuf::from(p),
        }
    };
    for (id, p) in config.patches.iter().enumerate() {
        if let Some(dr) = &p.document_root {
            let path = inside(dr);
            if !path.is_dir() {
                let at = where_set(config, id, "server.document-root");
                return Err(format!("{at}server.document-root {dr}: no such directory"));
            }
        }
    }
    for b in &config.blocks {
        for st in &b.settings {
            let key = st.key.to_ascii_lowercase();
            let Value::Str(v) = &st.value else { continue };
            if v.is_empty() {
                continue;
            }
            let at = format!("{}:{}: ", st.loc.file, st.loc.line);
            if READ_FILES.contains(&key.as_str()) {
                std::fs::File::open(v)
                    .map_err(|e| format!("{at}{key} {v}: cannot be read: {e}"))?;
            } else if WRITE_FILES.contains(&key.as_str()) && !v.starts_with('|') {
                // Log files too are inside the chroot (the master opens them there).
                writable(&inside(v))
                    .map_err(|e| format!("{at}{key} {v}: cannot be written: {e}"))?;
            }
        }
    }
    if let Some(pid) = &s.pid_file {
        writable(Path::new(pid))
            .map_err(|e| format!("server.pid-file {pid}: cannot be written: {e}"))?;
    }
    Ok(())
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
