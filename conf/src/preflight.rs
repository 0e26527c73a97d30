//! `wickd -tt`: what start-up would need, checked without binding any socket or
//! creating any file. Refused, as lighttpd 1.4.69's -tt refuses them: no global
//! document root, a chroot, user or group that does not exist, TLS files that cannot
//! be read (lighttpd loads them at start-up), a deflate.cache-dir the worker's
//! user could not make (lighttpd makes it as that user at -tt too). Log and pid files that cannot be
//! written are not refused, as lighttpd's -tt does not open them: [`start_failures`]
//! says that the real start-up will fail on them (it does, naming the file). Only
//! warned about, as lighttpd starts with them and answers 404: document roots,
//! userdir.basepath and alias targets that do not exist ([`warnings`]). (Modules
//! lighttpd does not know, and keys whose absence opens access, are refused by
//! [`crate::support::check`], at start-up as at -tt.)

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
    document_root(config)?;
    cache_dirs(config)?;
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
            }
        }
    }
    Ok(())
}

/// What lighttpd's -tt does not check but the real start-up fails on: log files
/// (server.errorlog, accesslog.filename with mod_accesslog in force) and the pid
/// file that cannot be written. One warning each, printed by -tt only; the start
/// itself then fails naming the file, as lighttpd's does.
pub fn start_failures(config: &Config) -> Vec<String> {
    let root = chroot_of(config);
    let accesslog = crate::keys::module_loaded("mod_accesslog", &config.server.effective_modules());
    let mut out = Vec::new();
    for st in config.blocks.iter().flat_map(|b| &b.settings) {
        let key = st.key.to_ascii_lowercase();
        let Value::Str(v) = &st.value else { continue };
        let log = key == "server.errorlog" || (accesslog && key == "accesslog.filename");
        if !log || v.is_empty() || v.starts_with('|') {
            continue;
        }
        // Log files too are inside the chroot (the master opens them there).
        if let Err(e) = writable(&inside(&root, v)) {
            out.push(format!(
                "WARNING: {}:{}: {key} {v}: cannot be written: {e}; start-up will fail opening it (lighttpd's -tt does not check log files either)",
                st.loc.file, st.loc.line
            ));
        }
    }
    if let Some(pid) = config.server.pid_file.as_deref().filter(|p| !p.is_empty()) {
        if let Err(e) = writable(Path::new(pid)) {
            out.push(format!(
                "WARNING: server.pid-file {pid}: cannot be written: {e}; start-up will fail creating it (lighttpd's -tt does not check the pid file either)"
            ));
        }
    }
    out
}

/// The global block sets server.document-root: lighttpd refuses to start (and
/// its -tt fails) without it; so do wickd's start, graceful restart and -tt.
pub fn document_root(config: &Config) -> Result<(), String> {
    let global_root = config
        .patches
        .first()
        .and_then(|p| p.document_root().map(String::as_str))
        .unwrap_or("");
    if global_root.is_empty() {
        return Err("server.document-root is not set".into());
    }
    Ok(())
}

/// deflate.cache-dir (or compress.cache-dir) with mod_deflate in force: a worker
/// makes it (0700) at start-up as server.username, after the chroot and without
/// capabilities, and fails if it cannot; lighttpd's mod_deflate makes it as that
/// user at -tt too and refuses to start when it cannot. So it must be a directory,
/// or one the worker's user can create: every existing directory on the way
/// searchable by it, the deepest writable.
fn cache_dirs(config: &Config) -> Result<(), String> {
    if !crate::keys::module_loaded("mod_deflate", &config.server.effective_modules()) {
        return Ok(());
    }
    let root = chroot_of(config);
    let mut who: Option<Option<(String, u32, Vec<u32>)>> = None;
    for st in config.blocks.iter().flat_map(|b| &b.settings) {
        let key = st.key.to_ascii_lowercase();
        if key != "deflate.cache-dir" && key != "compress.cache-dir" {
            continue;
        }
        let Value::Str(v) = &st.value else { continue };
        if v.is_empty() {
            continue;
        }
        let Some((name, uid, groups)) = who.get_or_insert_with(|| worker_identity(config)) else {
            // Root without server.username: made with root's rights, as lighttpd.
            return Ok(());
        };
        if let Err(why) = creatable(&inside(&root, v), *uid, groups) {
            return Err(format!(
                "{}:{}: {key} {v}: {why} for {name} (lighttpd does not start without it either)",
                st.loc.file, st.loc.line
            ));
        }
    }
    Ok(())
}

/// The worker's user when it makes the cache dirs (name for messages, uid,
/// groups): server.username (its groups as initgroups gives them) and
/// server.groupname when wickd runs as root; who runs wickd when not root; None
/// for root without server.username (the worker still holds root's rights then).
fn worker_identity(config: &Config) -> Option<(String, u32, Vec<u32>)> {
    let s = &config.server;
    let root = nix::unistd::geteuid().is_root();
    if !root {
        let uid = nix::unistd::getuid().as_raw();
        let mut groups = vec![nix::unistd::getgid().as_raw()];
        groups.extend(
            nix::unistd::getgroups()
                .unwrap_or_default()
                .iter()
                .map(|g| g.as_raw()),
        );
        return Some((format!("uid {uid}"), uid, groups));
    }
    let user = s
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .and_then(|u| match u.parse::<u32>() {
            Ok(id) => User::from_uid(nix::unistd::Uid::from_raw(id))
                .ok()
                .flatten(),
            Err(_) => User::from_name(u).ok().flatten(),
        })?;
    let group = s
        .groupname
        .as_deref()
        .filter(|g| !g.is_empty())
        .and_then(|g| match g.parse::<u32>() {
            Ok(id) => Group::from_gid(nix::unistd::Gid::from_raw(id))
                .ok()
                .flatten(),
            Err(_) => Group::from_name(g).ok().flatten(),
        });
    let gid = group.as_ref().map(|g| g.gid).unwrap_or(user.gid);
    let mut groups = vec![gid.as_raw()];
    if let Ok(c) = std::ffi::CString::new(user.name.as_str()) {
        if let Ok(list) = nix::unistd::getgrouplist(&c, gid) {
            groups.extend(list.iter().map(|g| g.as_raw()).filter(|&g| g != 0));
        }
    }
    Some((user.name, user.uid.as_raw(), groups))
}

/// Could `uid` (in `groups`, with no capability) have `dir` as a directory,
/// making what is missing of it?
fn creatable(dir: &Path, uid: u32, groups: &[u32]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let allows = |m: &std::fs::Metadata, want: u32| {
        let bits = if m.uid() == uid {
            m.mode() >> 6
        } else if groups.contains(&m.gid()) {
            m.mode() >> 3
        } else {
            m.mode()
        };
        bits & want == want
    };
    let mut walked = PathBuf::new();
    for part in dir.components() {
        let parent = walked.clone();
        walked.push(part);
        match std::fs::metadata(&walked) {
            Ok(m) if m.is_dir() => {
                if !allows(&m, 0o1) {
                    return Err(format!("{} is not searchable", walked.display()));
                }
            }
            Ok(_) => return Err(format!("{} is not a directory", walked.display())),
            Err(_) => {
                // The first missing part: made in `parent`.
                let parent = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent
                };
                let m =
                    std::fs::metadata(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
                return if allows(&m, 0o3) {
                    Ok(())
                } else {
                    Err(format!(
                        "cannot be created: {} is not writable",
                        parent.display()
                    ))
                };
            }
        }
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
        if let Some(dr) = p
            .document_root()
            .map(String::as_str)
            .filter(|d| !d.is_empty())
        {
            if !inside(&root, dr).is_dir() {
                out.push(format!(
                    "WARNING: {}server.document-root {dr}: no such directory; requests for it get 404",
                    where_set(config, id, "server.document-root")
                ));
            }
        }
        if let Some(base) = p
            .userdir_basepath()
            .map(String::as_str)
            .filter(|b| !b.is_empty())
        {
            if !inside(&root, base).is_dir() {
                out.push(format!(
                    "WARNING: {}userdir.basepath {base}: no such directory; requests for it get 404",
                    where_set(config, id, "userdir.basepath")
                ));
            }
        }
        // mod_authn_file: lighttpd starts and refuses every login; so does wickd.
        for (key, file) in [
            ("auth.backend.plain.userfile", p.auth_plain_userfile()),
            ("auth.backend.htpasswd.userfile", p.auth_htpasswd_userfile()),
            ("auth.backend.htdigest.userfile", p.auth_htdigest_userfile()),
        ] {
            let Some(f) = file.filter(|f| !f.is_empty()) else {
                continue;
            };
            if let Err(e) = std::fs::File::open(inside(&root, f)) {
                out.push(format!(
                    "WARNING: {}{key} {f}: cannot be read: {e}; every login to what auth.require protects with it fails (401) until it can be (a file created later needs a graceful restart, SIGUSR1, to be inside the workers' sandbox)",
                    where_set(config, id, key)
                ));
            }
        }
        for (prefix, target) in p.alias_url().into_iter().flatten() {
            if !inside(&root, target).exists() {
                out.push(format!(
                    "WARNING: {}alias.url \"{prefix}\" => {target}: no such file or directory; requests for it get 404",
                    where_set(config, id, "alias.url")
                ));
            }
        }
    }
    // Request bodies past 64 KiB for CGI/FastCGI/SCGI are spooled there; without
    // one that works such a request gets 500 (and the error log says why).
    for d in config.server.body_spool_dirs() {
        if !inside(&root, &d).is_dir() {
            let at = (0..config.blocks.len())
                .map(|id| where_set(config, id, "server.upload-dirs"))
                .find(|w| !w.is_empty())
                .unwrap_or_default();
            out.push(format!(
                "WARNING: {at}server.upload-dirs {d}: no such directory; a request body over 64 KiB for a CGI, FastCGI or SCGI backend that must be received whole cannot be spooled there (500 when no upload dir can)"
            ));
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
