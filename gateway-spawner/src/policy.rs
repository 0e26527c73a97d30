//! The spawner's decision: from a worker's [`CgiRequest`] (facts only) and the spawner's
//! own copy of the config, what may run, where, as whom, with which environment, or a
//! refusal with its reason. Nothing the worker says is taken as a decision: the
//! conditions are evaluated again (a forged host can only select a vhost the config
//! has), the script is looked up beneath that request's document root with openat2
//! (no `..`, no absolute or escaping symlink), matched by cgi.assign again, and, with
//! cgi.user, checked as Apache's suEXEC checks.

use crate::cgienv::{self, Derived, EnvBuf};
use crate::users::{Identity, Users};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;
use wick_conf::cond::{Compiled, CondState, Facts};
use wick_conf::options::FromValue;
use wick_conf::{Block, Config, Listener, SocketOptions, Value, View};
use wick_proto::spawner::CgiRequest;

/// Everything needed to start one script.
#[derive(Debug)]
pub struct Plan {
    /// argv: the cgi.assign interpreter and the script, or the script alone.
    pub argv: Vec<String>,
    pub env: EnvBuf,
    /// The script's directory (O_PATH), the script's working directory.
    pub dir: OwnedFd,
    /// None: keep the spawner's credentials.
    pub creds: Option<Identity>,
    /// SCRIPT_FILENAME, for log lines.
    pub script: String,
    /// A note for the error log (blocks that differ from the worker's view), if any.
    pub note: Option<String>,
}

/// Not run: the HTTP status for the worker and the reason for the error log.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refuse<T>(status: u16, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        status,
        reason: reason.into(),
    })
}

/// Keys the policy reads from the blocks' settings as written (lighttpd's
/// patching), not from the typed patches.
const ALIAS_URL: &str = "alias.url";
const SETENV_ADD: &str = "setenv.add-environment";
const SETENV_SET: &str = "setenv.set-environment";
/// The gateway keys whose bin-path hosts the spawner starts (`backends`).
const BLOCK_KEYS: [&str; 5] = [
    ALIAS_URL,
    SETENV_ADD,
    SETENV_SET,
    "fastcgi.server",
    "scgi.server",
];

/// The spawner's part of the config, which the master sends in its setup. Kept:
/// every block's condition and place (the conditions are evaluated again), of the
/// blocks' settings only [`BLOCK_KEYS`] (fastcgi.server and scgi.server for the
/// backends it starts), of each block's patch only the options
/// [`Policy`] and start-up read (document root, server tag and name, symlinks,
/// lowercase names, cgi.assign, cgi.execute-x-only, cgi.user, cgi.group), the
/// server options whole (user, group, modules, the port socket conditions need; a
/// few bytes), the listeners without their socket options (it binds nothing).
/// Gone: the start-up warnings, and what only the request path reads (mimetypes,
/// rewrites, redirects, access-log formats, dir-listing, ...). A field cut here
/// holds its default in the spawner, not the configured value: code that starts
/// reading one adds it here.
pub fn slice(cfg: &Config) -> Config {
    let blocks = cfg
        .blocks
        .iter()
        .map(|b| Block {
            parent: b.parent,
            cond: b.cond.clone(),
            else_of: b.else_of,
            settings: b
                .settings
                .iter()
                .filter(|s| BLOCK_KEYS.iter().any(|k| s.key.eq_ignore_ascii_case(k)))
                .cloned()
                .collect(),
            loc: b.loc.clone(),
        })
        .collect();
    let patches = cfg
        .patches
        .iter()
        .map(|p| {
            p.only(&[
                "server.document-root",
                "server.tag",
                "server.name",
                "server.follow-symlink",
                "server.force-lowercase-filenames",
                "cgi.assign",
                "cgi.execute-x-only",
                "cgi.user",
                "cgi.group",
            ])
        })
        .collect();
    let listeners = cfg
        .listeners
        .iter()
        .map(|l| Listener {
            socket: SocketOptions::default(),
            ..l.clone()
        })
        .collect();
    Config {
        main_file: cfg.main_file.clone(),
        blocks,
        server: cfg.server.clone(),
        patches,
        listeners,
        warnings: Vec::new(),
    }
}

/// The spawner's copy of the config, compiled, and the identities it resolved.
pub struct Policy {
    cfg: Config,
    compiled: Compiled,
    state: CondState,
    users: Users,
    passthrough: Vec<(String, String)>,
}

impl Policy {
    pub fn new(
        cfg: Config,
        users: Users,
        passthrough: Vec<(String, String)>,
    ) -> Result<Policy, String> {
        let compiled = Compiled::new(&cfg).map_err(|e| e.to_string())?;
        let state = CondState::new(&compiled);
        Ok(Policy {
            cfg,
            compiled,
            state,
            users,
            passthrough,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Check `req` and work out the plan, or refuse.
    pub fn plan(&mut self, req: &CgiRequest) -> Result<Plan, Refusal> {
        sane(req, self.cfg.listeners.len())?;
        let find = |name: &str| -> Option<&str> {
            req.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let facts = Facts {
            host: req.host.as_deref().unwrap_or(""),
            url_path: &req.path,
            query: &req.query,
            remote_ip: req.remote_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            scheme: if req.tls { "https" } else { "http" },
            method: &req.method,
            listener: req.listener as usize,
            header: &find,
        };
        let view = self.compiled.evaluate(&facts, &mut self.state);
        let matched: Vec<usize> = self.state.matched().collect();
        let ours: Vec<u32> = matched.iter().map(|&b| b as u32).collect();
        let note = (ours != req.blocks).then(|| {
            format!(
                "worker's condition blocks {:?} differ from the spawner's {:?}; using the spawner's",
                req.blocks, ours
            )
        });
        let mut plan = self.decide(req, &view, &matched)?;
        plan.note = note;
        Ok(plan)
    }

    fn decide(
        &self,
        req: &CgiRequest,
        view: &View<'_>,
        matched: &[usize],
    ) -> Result<Plan, Refusal> {
        let script_name = &req.path[..req.script_name_len as usize];
        let lower = *view.force_lowercase_filenames;
        let (docroot, rel) = match self.alias(matched, script_name, lower) {
            Some(found) => found?,
            None => (view.document_root.to_string(), script_name.to_string()),
        };
        if !docroot.starts_with('/') {
            return refuse(500, "no absolute server.document-root for this request");
        }
        let docroot = match docroot.trim_end_matches('/') {
            "" => "/",
            d => d,
        };
        let mut rel = rel.trim_start_matches('/').to_string();
        if lower {
            rel = rel.to_ascii_lowercase();
        }
        if rel.is_empty() {
            return refuse(403, format!("{script_name}: names a directory"));
        }
        let script = if docroot == "/" {
            format!("/{rel}")
        } else {
            format!("{docroot}/{rel}")
        };

        // cgi.assign: the first key that is a suffix of the physical path (lighttpd
        // compares case-sensitively, in order).
        let Some((_, handler)) = view
            .cgi_assign
            .iter()
            .find(|(ext, _)| script.ends_with(ext.as_str()))
        else {
            return refuse(403, format!("{script} is not matched by cgi.assign"));
        };

        let suexec = !view.cgi_user.is_empty();
        let root = open_dir(docroot).map_err(|e| Refusal {
            status: 500,
            reason: format!("document root {docroot}: {e}"),
        })?;
        let mut resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS;
        if !*view.follow_symlink {
            resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
        }
        let mut oflag = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if suexec {
            // suEXEC: the program itself must not be a symlink.
            oflag |= OFlag::O_NOFOLLOW;
        }
        let file = openat2(
            &root,
            rel.as_str(),
            OpenHow::new().flags(oflag).resolve(resolve),
        )
        .map_err(|e| lookup_refusal(&script, e))?;
        let st = fstat(&file).map_err(|e| Refusal {
            status: 500,
            reason: format!("{script}: fstat: {e}"),
        })?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            return refuse(
                403,
                format!("{script} is a symlink (cgi.user scripts may not be)"),
            );
        }
        if kind != SFlag::S_IFREG {
            return refuse(403, format!("{script} is not a regular file"));
        }
        let xbits = Mode::S_IXUSR | Mode::S_IXGRP | Mode::S_IXOTH;
        if *view.cgi_execute_x_only && st.st_mode & xbits.bits() == 0 {
            return refuse(
                403,
                format!("{script} is not executable (cgi.execute-x-only)"),
            );
        }
        let parent = match rel.rfind('/') {
            Some(i) => &rel[..i],
            None => ".",
        };
        let dir = openat2(
            &root,
            parent,
            OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(resolve),
        )
        .map_err(|e| lookup_refusal(&script, e))?;

        let creds = self.credentials(view)?;
        if suexec {
            let id = creds.as_ref().ok_or_else(|| Refusal {
                status: 500,
                reason: "cgi.user set but no identity resolved".into(),
            })?;
            let dst = fstat(&dir).map_err(|e| Refusal {
                status: 500,
                reason: format!("{script}: directory fstat: {e}"),
            })?;
            suexec_checks(&script, &st, &dst, id, handler.is_empty())?;
        }
        if !handler.is_empty() {
            check_handler(handler, creds.as_ref().filter(|_| suexec))?;
        }

        let server = self.server_addr(req);
        let extra = self.setenv(matched);
        let env = cgienv::build(
            &req.facts(),
            &Derived {
                docroot,
                script_filename: &script,
                server_tag: view.server_tag,
                server_name: view.server_name,
                server,
                granted: &[],
                extra: &extra,
                passthrough: &self.passthrough,
            },
        );
        let mut argv = Vec::with_capacity(2);
        if !handler.is_empty() {
            argv.push(handler.clone());
        }
        argv.push(script.clone());
        Ok(Plan {
            argv,
            env,
            dir,
            creds,
            script,
            note: None,
        })
    }

    /// The value of `key` in force for the request: set by the last true block that
    /// sets it (for keys read straight from the blocks, as lighttpd's patching does).
    fn setting(&self, matched: &[usize], key: &str) -> Option<&Value> {
        matched
            .iter()
            .rev()
            .filter_map(|&b| self.cfg.blocks.get(b))
            .find_map(|b| b.settings.iter().rev().find(|s| s.key == key))
            .map(|s| &s.value)
    }

    fn module(&self, name: &str) -> bool {
        self.cfg
            .server
            .effective_modules()
            .iter()
            .any(|m| m == name)
    }

    /// mod_alias: the first alias.url prefix of the path maps it to another base
    /// directory, which then is the root the script must stay beneath. Returns
    /// (base directory, path below it).
    fn alias(
        &self,
        matched: &[usize],
        script_name: &str,
        lower: bool,
    ) -> Option<Result<(String, String), Refusal>> {
        if !self.module("mod_alias") {
            return None;
        }
        let map =
            <Vec<(String, String)> as FromValue>::from_value(self.setting(matched, ALIAS_URL)?)
                .ok()?;
        let (prefix, target) = map.iter().find(|(k, _)| {
            !k.is_empty()
                && script_name.len() >= k.len()
                && script_name.is_char_boundary(k.len())
                && if lower {
                    script_name[..k.len()].eq_ignore_ascii_case(k)
                } else {
                    script_name.starts_with(k.as_str())
                }
        })?;
        let rest = &script_name[prefix.len()..];
        if rest.is_empty() {
            // The alias names the script itself: its directory is the root.
            return Some(match target.rsplit_once('/') {
                Some((dir, file)) if !file.is_empty() => Ok((format!("{dir}/"), file.to_string())),
                _ => refuse(403, format!("{script_name}: alias names a directory")),
            });
        }
        if !target.ends_with('/') && !rest.starts_with('/') {
            // "/x" => "/srv/x" must not make "/xy.cgi" into "/srv/xy.cgi"'s sibling.
            return Some(refuse(
                403,
                format!("{script_name}: alias.url prefix does not end at a path segment"),
            ));
        }
        Some(Ok((target.clone(), rest.to_string())))
    }

    /// mod_setenv's environment: setenv.add-environment, then setenv.set-environment
    /// replacing variables of the same name.
    fn setenv(&self, matched: &[usize]) -> Vec<(String, String)> {
        if !self.module("mod_setenv") {
            return Vec::new();
        }
        let get = |key| {
            self.setting(matched, key)
                .and_then(|v| <Vec<(String, String)> as FromValue>::from_value(v).ok())
                .unwrap_or_default()
        };
        let mut env = get(SETENV_ADD);
        for (k, v) in get(SETENV_SET) {
            env.retain(|(n, _)| !n.eq_ignore_ascii_case(&k));
            env.push((k, v));
        }
        env.retain(|(_, v)| !v.contains('\0'));
        env
    }

    /// cgi.user / cgi.group of the request's blocks, else server.username, else none.
    fn credentials(&self, view: &View<'_>) -> Result<Option<Identity>, Refusal> {
        let mut id = if view.cgi_user.is_empty() {
            self.users.default.clone()
        } else {
            match self.users.user(view.cgi_user) {
                Some(id) => Some(id.clone()),
                None => {
                    return refuse(
                        500,
                        format!("cgi.user \"{}\" was not resolved at start", view.cgi_user),
                    )
                }
            }
        };
        if !view.cgi_group.is_empty() {
            let Some(gid) = self.users.group(view.cgi_group) else {
                return refuse(
                    500,
                    format!("cgi.group \"{}\" was not resolved at start", view.cgi_group),
                );
            };
            id = Some(Identity::with_group(id.take(), gid));
        }
        Ok(id)
    }

    /// SERVER_PORT and SERVER_ADDR as lighttpd derives them from the listener's
    /// "host:port" token: a wildcard address is replaced by the connection's local one.
    fn server_addr(&self, req: &CgiRequest) -> cgienv::ServerAddr {
        cgienv::server_addr(&self.cfg, req.listener, req.local_addr)
    }
}

fn open_dir(path: &str) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn lookup_refusal(script: &str, e: Errno) -> Refusal {
    match e {
        Errno::ENOENT | Errno::ENOTDIR => Refusal {
            status: 404,
            reason: format!("{script}: no such script"),
        },
        Errno::EXDEV => Refusal {
            status: 403,
            reason: format!("{script}: resolves outside the document root"),
        },
        Errno::ELOOP => Refusal {
            status: 403,
            reason: format!(
                "{script}: a symlink that is not allowed here (server.follow-symlink, cgi.user)"
            ),
        },
        Errno::EACCES | Errno::EPERM => Refusal {
            status: 403,
            reason: format!("{script}: {e}"),
        },
        _ => Refusal {
            status: 500,
            reason: format!("{script}: {e}"),
        },
    }
}

/// Apache suEXEC's checks on the program and its directory, for a cgi.user script.
fn suexec_checks(
    script: &str,
    st: &FileStat,
    dir: &FileStat,
    id: &Identity,
    needs_x: bool,
) -> Result<(), Refusal> {
    let w = (Mode::S_IWGRP | Mode::S_IWOTH).bits();
    if id.uid == 0 || id.gid == 0 {
        return refuse(403, format!("{script}: cgi.user/cgi.group may not be root"));
    }
    if dir.st_uid != id.uid || dir.st_gid != id.gid {
        return refuse(
            403,
            format!(
                "{script}: directory owned by {}:{}, not by cgi.user {}:{}",
                dir.st_uid, dir.st_gid, id.uid, id.gid
            ),
        );
    }
    if dir.st_mode & w != 0 {
        return refuse(
            403,
            format!("{script}: directory is writable by group or others"),
        );
    }
    if st.st_uid != id.uid || st.st_gid != id.gid {
        return refuse(
            403,
            format!(
                "{script}: owned by {}:{}, not by cgi.user {}:{}",
                st.st_uid, st.st_gid, id.uid, id.gid
            ),
        );
    }
    if st.st_mode & w != 0 {
        return refuse(403, format!("{script}: writable by group or others"));
    }
    if st.st_mode & (Mode::S_ISUID | Mode::S_ISGID).bits() != 0 {
        return refuse(403, format!("{script}: has the setuid or setgid bit"));
    }
    if needs_x && st.st_mode & Mode::S_IXUSR.bits() == 0 {
        return refuse(403, format!("{script}: not executable by its owner"));
    }
    Ok(())
}

/// The cgi.assign interpreter must exist; for a cgi.user script it must also be
/// owned by root or that user and not writable by anyone else.
fn check_handler(handler: &str, suexec: Option<&Identity>) -> Result<(), Refusal> {
    let st = nix::sys::stat::stat(handler).map_err(|e| Refusal {
        status: 500,
        reason: format!("stat for cgi-handler {handler}: {e}"),
    })?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return refuse(500, format!("cgi-handler {handler} is not a regular file"));
    }
    if let Some(id) = suexec {
        if !handler.starts_with('/') {
            return refuse(
                500,
                format!("cgi-handler {handler} must be an absolute path with cgi.user"),
            );
        }
        if st.st_uid != 0 && st.st_uid != id.uid {
            return refuse(
                403,
                format!(
                    "cgi-handler {handler} is owned by uid {}, not root or cgi.user",
                    st.st_uid
                ),
            );
        }
        if st.st_mode & (Mode::S_IWGRP | Mode::S_IWOTH).bits() != 0 {
            return refuse(
                403,
                format!("cgi-handler {handler} is writable by group or others"),
            );
        }
    }
    Ok(())
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Shape checks: what a well-behaved worker never sends.
fn sane(req: &CgiRequest, listeners: usize) -> Result<(), Refusal> {
    let bad = |what: &str| refuse(400, format!("malformed request from worker: {what}"));
    let p = &req.path;
    let n = req.script_name_len as usize;
    if !p.starts_with('/') || p.contains('\0') {
        return bad("path not absolute");
    }
    if p.contains("//") || p.split('/').any(|s| s == "." || s == "..") {
        return bad("path not normalised");
    }
    if n < 2 || n > p.len() || !p.is_char_boundary(n) {
        return bad("script name length");
    }
    let (script, info) = p.split_at(n);
    if script.ends_with('/') || !(info.is_empty() || info.starts_with('/')) {
        return bad("script name / path info split");
    }
    if req.method.is_empty() || !req.method.bytes().all(is_tchar) {
        return bad("method");
    }
    if req.listener as usize >= listeners {
        return bad("listener index");
    }
    for (k, v) in &req.headers {
        if k.is_empty() || !k.bytes().all(is_tchar) {
            return bad("header name");
        }
        if v.bytes().any(|c| c == 0 || c == b'\r' || c == b'\n') {
            return bad("header value");
        }
    }
    let texts = [
        Some(req.target.as_str()),
        req.redirect_uri.as_deref(),
        Some(req.query.as_str()),
        req.host.as_deref(),
        req.auth.as_ref().map(|a| a.0.as_str()),
        req.auth.as_ref().map(|a| a.1.as_str()),
    ];
    if texts
        .iter()
        .flatten()
        .any(|t| t.bytes().any(|c| c == 0 || c == b'\r' || c == b'\n'))
    {
        return bad("control characters");
    }
    Ok(())
}
