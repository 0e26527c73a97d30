//! The identities CGI scripts may run as, resolved once at start-up (before the
//! sandbox hides /etc): server.username/groupname, and every cgi.user/cgi.group the
//! config names. A request can only pick one of these.

use nix::unistd::{getgrouplist, Gid, Group, Uid, User};
use std::collections::HashMap;
use std::ffi::CString;

/// Credentials a script runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (initgroups), primary group included.
    pub groups: Vec<u32>,
}

impl Identity {
    /// cgi.group over cgi.user's or server.username's identity (none: the
    /// spawner's own uid): that group as the primary and only one.
    pub fn with_group(id: Option<Identity>, gid: u32) -> Identity {
        let base = id.unwrap_or_else(|| Identity {
            name: String::new(),
            uid: nix::unistd::getuid().as_raw(),
            gid,
            groups: Vec::new(),
        });
        Identity {
            gid,
            groups: vec![gid],
            ..base
        }
    }
}

/// Every identity the config allows.
#[derive(Debug, Default)]
pub struct Users {
    /// server.username (and groupname): what scripts run as without cgi.user.
    /// None: keep the spawner's own credentials (wickd not started as root, or no
    /// server.username), as lighttpd runs CGI as whatever user it runs as.
    pub default: Option<Identity>,
    users: HashMap<String, Identity>,
    groups: HashMap<String, u32>,
}

impl Users {
    pub fn user(&self, name: &str) -> Option<&Identity> {
        self.users.get(name)
    }
    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }

    /// Resolve `username`/`groupname` (server scope) and each cgi.user / cgi.group.
    /// `root`: whether the spawner may switch users at all.
    pub fn resolve(
        username: Option<&str>,
        groupname: Option<&str>,
        cgi_users: &[String],
        cgi_groups: &[String],
        root: bool,
    ) -> Result<Users, String> {
        let mut out = Users::default();
        if root {
            if let Some(u) = username.filter(|s| !s.is_empty()) {
                let mut id = lookup_user(u)?;
                if id.uid == 0 {
                    return Err("server.username: I will not set uid to 0".into());
                }
                if let Some(g) = groupname.filter(|s| !s.is_empty()) {
                    id.gid = lookup_group(g)?;
                    if !id.groups.contains(&id.gid) {
                        id.groups.insert(0, id.gid);
                    }
                }
                if id.gid == 0 {
                    return Err("server.groupname: I will not set gid to 0".into());
                }
                out.default = Some(id);
            }
        }
        let me = Uid::current().as_raw();
        for u in cgi_users {
            if out.users.contains_key(u) {
                continue;
            }
            let id = lookup_user(u)?;
            if id.uid == 0 {
                return Err(format!("cgi.user \"{u}\": CGI scripts never run as root"));
            }
            if !root && id.uid != me {
                return Err(format!(
                    "cgi.user \"{u}\" needs wickd started as root (it runs as uid {me})"
                ));
            }
            out.users.insert(u.clone(), id);
        }
        for g in cgi_groups {
            if out.groups.contains_key(g) {
                continue;
            }
            let gid = lookup_group(g)?;
            if gid == 0 {
                return Err(format!(
                    "cgi.group \"{g}\": CGI scripts never run as group 0"
                ));
            }
            if !root && gid != nix::unistd::getgid().as_raw() {
                return Err(format!("cgi.group \"{g}\" needs wickd started as root"));
            }
            out.groups.insert(g.clone(), gid);
        }
        Ok(out)
    }
}

/// A user by name, or by number written as "#1000" or "1000".
fn lookup_user(name: &str) -> Result<Identity, String> {
    let digits = name.strip_prefix('#').unwrap_or(name);
    let found = match digits.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(name),
    };
    let user = match found {
        Ok(Some(u)) => u,
        Ok(None) => {
            if let Ok(n) = digits.parse::<u32>() {
                // A bare uid without a passwd entry: its own group, no others.
                return Ok(Identity {
                    name: name.into(),
                    uid: n,
                    gid: n,
                    groups: vec![n],
                });
            }
            return Err(format!("unknown user \"{name}\""));
        }
        Err(e) => return Err(format!("looking up user \"{name}\": {e}")),
    };
    let groups = CString::new(user.name.clone())
        .ok()
        .and_then(|c| getgrouplist(&c, user.gid).ok())
        .map(|v| v.into_iter().map(Gid::as_raw).collect())
        .unwrap_or_else(|| vec![user.gid.as_raw()]);
    Ok(Identity {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups,
    })
}

fn lookup_group(name: &str) -> Result<u32, String> {
    let digits = name.strip_prefix('#').unwrap_or(name);
    if let Ok(n) = digits.parse::<u32>() {
        return Ok(n);
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("unknown group \"{name}\"")),
        Err(e) => Err(format!("looking up group \"{name}\": {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_unknown_users_refused() {
        let root = nix::unistd::geteuid().is_root();
        let e = Users::resolve(None, None, &["root".into()], &[], root).expect_err("root");
        assert!(e.contains("never run as root"), "{e}");
        let e = Users::resolve(None, None, &["no-such-user-wick".into()], &[], root)
            .expect_err("unknown");
        assert!(e.contains("unknown user"), "{e}");
        let e = Users::resolve(Some("root"), None, &[], &[], true).expect_err("username root");
        assert!(e.contains("uid to 0"), "{e}");
    }

    #[test]
    fn nobody_resolves() {
        let u =
            Users::resolve(Some("nobody"), None, &["nobody".into()], &[], true).expect("nobody");
        let d = u.default.as_ref().expect("default");
        assert_ne!(d.uid, 0);
        assert_eq!(u.user("nobody"), Some(d));
    }
}
