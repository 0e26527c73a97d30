//! Becoming server.username: resolving the user and group (while /etc is still
//! readable), the fd limit, chroot, setgroups/setresgid/setresuid, and tying the
//! worker's life to the master's (PR_SET_PDEATHSIG, after the uid change that
//! clears it).

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Group, Pid, Uid, User};
use std::ffi::CString;
use std::path::Path;

/// Who the worker becomes, resolved before anything hides /etc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups (lighttpd calls initgroups for server.username).
    pub groups: Vec<Gid>,
    /// What to say in the report: `nobody(65534):nogroup(65534)`.
    pub name: String,
}

/// lighttpd's rules (server.c): a named group must exist and not be gid 0; a named
/// user must exist and not be uid 0; without a group the user's primary group is
/// used. `Ok(None)`: neither is set, the uid stays.
pub fn resolve(
    username: Option<&str>,
    groupname: Option<&str>,
) -> Result<Option<Identity>, String> {
    let group = match groupname {
        Some(g) => Some(
            Group::from_name(g)
                .map_err(|e| format!("can't find groupname {g} (server.groupname): {e}"))?
                .ok_or_else(|| format!("can't find groupname {g} (server.groupname)"))?,
        ),
        None => None,
    };
    let user = match username {
        Some(u) => Some(
            User::from_name(u)
                .map_err(|e| format!("can't find username {u} (server.username): {e}"))?
                .ok_or_else(|| format!("can't find username {u} (server.username)"))?,
        ),
        None => None,
    };
    if let Some(u) = &user {
        if u.uid.is_root() {
            return Err(format!(
                "I will not set uid to 0 (server.username = \"{}\")",
                u.name
            ));
        }
    }
    let gid = match (&group, &user) {
        (Some(g), _) => g.gid,
        (None, Some(u)) => u.gid,
        (None, None) => return Ok(None),
    };
    if gid.as_raw() == 0 {
        return Err(
            "I will not set gid to 0 (server.groupname, or the primary group of server.username)"
                .into(),
        );
    }
    let gname = match &group {
        Some(g) => g.name.clone(),
        None => Group::from_gid(gid)
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_default(),
    };
    // initgroups(user, gid), minus group 0: a worker never holds root's group.
    let mut groups = vec![gid];
    if let Some(u) = &user {
        let c = CString::new(u.name.as_str())
            .map_err(|_| "server.username contains a NUL byte".to_string())?;
        let list = nix::unistd::getgrouplist(&c, gid)
            .map_err(|e| format!("getgrouplist({}): {e}", u.name))?;
        groups.extend(list.into_iter().filter(|g| g.as_raw() != 0 && *g != gid));
    }
    let uid = user.as_ref().map(|u| u.uid).unwrap_or_else(Uid::current);
    let uname = user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| "-".into());
    Ok(Some(Identity {
        uid,
        gid,
        groups,
        name: format!("{uname}({uid}):{gname}({gid})"),
    }))
}

/// RLIMIT_NOFILE from server.max-fds: soft and hard both, so the worker cannot
/// raise it again. Without the key, lighttpd raises the soft limit to 4096 when the
/// hard limit allows.
pub fn limit_fds(max_fds: Option<u64>, root: bool) -> Result<String, String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    let (new_soft, new_hard) = match max_fds {
        Some(n) if root => (n, n),
        Some(n) => (n.min(hard), n.min(hard)),
        None => (soft.max(4096.min(hard)), hard),
    };
    match setrlimit(Resource::RLIMIT_NOFILE, new_soft, new_hard) {
        Ok(()) => Ok(format!("RLIMIT_NOFILE {new_soft}")),
        // Raising the hard limit needs CAP_SYS_RESOURCE, which a container may lack.
        Err(nix::errno::Errno::EPERM) if new_hard > hard => {
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
                .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {hard}): {e}"))?;
            Ok(format!(
                "warning: server.max-fds {new_soft} is above the hard limit {hard}, which this \
                 process may not raise; RLIMIT_NOFILE {hard}"
            ))
        }
        Err(e) => Err(format!("setrlimit(RLIMIT_NOFILE, {new_soft}): {e}")),
    }
}

/// chroot(dir) and chdir("/"), as lighttpd does; config paths are then inside it.
pub fn chroot(dir: &Path) -> Result<(), String> {
    nix::unistd::chroot(dir).map_err(|e| format!("chroot({}): {e}", dir.display()))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir(/) in chroot {}: {e}", dir.display()))
}

/// setgroups, setresgid, setresuid, in that order, each checked (spawn-fcgi's
/// unchecked setuid is the classic way to keep running as root by accident).
pub fn become_user(id: &Identity) -> Result<(), String> {
    nix::unistd::setgroups(&id.groups).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setresgid(id.gid, id.gid, id.gid)
        .map_err(|e| format!("setresgid({}): {e}", id.gid))?;
    nix::unistd::setresuid(id.uid, id.uid, id.uid)
        .map_err(|e| format!("setresuid({}): {e}", id.uid))?;
    // Paranoia: a setresuid that "succeeded" without effect must not go unnoticed.
    if nix::unistd::getresuid()
        .map(|r| (r.real, r.effective, r.saved))
        .ok()
        != Some((id.uid, id.uid, id.uid))
        || nix::unistd::getresgid()
            .map(|r| (r.real, r.effective, r.saved))
            .ok()
            != Some((id.gid, id.gid, id.gid))
    {
        return Err(format!("uid/gid did not change to {}", id.name));
    }
    Ok(())
}

/// Die with the master: PR_SET_PDEATHSIG(SIGKILL), set after the uid change
/// (which clears it). A master that died before this line is caught by comparing
/// getppid() with the parent seen at start.
pub fn die_with_parent(parent: Pid) -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    if nix::unistd::getppid() != parent {
        return Err(format!("master (pid {parent}) exited during start-up"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_user_and_group_are_named() {
        let e = resolve(Some("wick-no-such-user"), None).expect_err("must fail");
        assert!(e.contains("can't find username wick-no-such-user"), "{e}");
        let e = resolve(None, Some("wick-no-such-group")).expect_err("must fail");
        assert!(e.contains("can't find groupname wick-no-such-group"), "{e}");
    }

    #[test]
    fn root_is_refused() {
        let e = resolve(Some("root"), None).expect_err("must fail");
        assert!(e.contains("I will not set uid to 0"), "{e}");
        if Group::from_gid(Gid::from_raw(0)).ok().flatten().is_some() {
            let name = Group::from_gid(Gid::from_raw(0))
                .ok()
                .flatten()
                .map(|g| g.name);
            let e = resolve(None, name.as_deref()).expect_err("must fail");
            assert!(e.contains("I will not set gid to 0"), "{e}");
        }
    }

    #[test]
    fn nobody_resolves() {
        let Some(nobody) = User::from_name("nobody").ok().flatten() else {
            return;
        };
        let id = resolve(Some("nobody"), None)
            .expect("resolves")
            .expect("some");
        assert_eq!(id.uid, nobody.uid);
        assert_eq!(id.gid, nobody.gid);
        assert!(!id.groups.iter().any(|g| g.as_raw() == 0));
        assert_eq!(resolve(None, None).expect("ok"), None);
    }
}
