//! mod_userdir: `/~user/rest` is served from the user's home + userdir.path (or
//! userdir.basepath + [first letter +] user + userdir.path) + `/rest`, with
//! userdir.include-user, exclude-user, letterhomes and active as in lighttpd.
//!
//! Home directories come from the passwd database, which the sandbox hides: they
//! are read once when the worker starts (before the sandbox), not per request as
//! lighttpd's getpwnam does. Accounts added later, and uid 0, are not served.

use super::confine::{join, DirCheck};
use super::{hook, Cx, Flow, Module};
use std::collections::HashMap;
use wick_conf::Config;

pub struct Userdir {
    /// user name → home directory, read at start-up.
    homes: HashMap<String, String>,
    dirs: DirCheck,
}

/// Does any block name a home-based user directory (userdir.path without a
/// global userdir.basepath)? Then the passwd database is read.
fn needs_homes(cfg: &Config) -> bool {
    let path_set = cfg.patches.iter().any(|p| p.userdir_path().is_some());
    let global_base = cfg
        .patches
        .first()
        .and_then(|p| p.userdir_basepath().map(|x| &x[..]))
        .is_some_and(|b| !b.is_empty());
    let base_cleared = cfg
        .patches
        .iter()
        .any(|p| p.userdir_basepath().map(|x| &x[..]) == Some(""));
    path_set && (!global_base || base_cleared)
}

/// The accounts whose homes may be served: those of userdir.include-user when the
/// global block restricts to a list (every block then has one), else all.
fn wanted(cfg: &Config) -> Option<Vec<String>> {
    let global = cfg.patches.first()?.userdir_include_user()?;
    if global.is_empty() {
        return None;
    }
    let mut all: Vec<String> = Vec::new();
    for p in &cfg.patches {
        match p.userdir_include_user() {
            Some(l) if l.is_empty() => return None,
            Some(l) => all.extend(l.iter().cloned()),
            None => {}
        }
    }
    Some(all)
}

/// Read the passwd database (before the sandbox hides it).
pub fn read_homes(only: Option<&[String]>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(list) = only {
        for name in list {
            if let Ok(Some(u)) = nix::unistd::User::from_name(name) {
                if !u.uid.is_root() {
                    out.insert(u.name, u.dir.to_string_lossy().into_owned());
                }
            }
        }
        return out;
    }
    for (name, dir) in crate::sys::passwd_homes() {
        out.entry(name).or_insert(dir);
    }
    out
}

impl Userdir {
    pub fn new(cfg: &Config) -> Userdir {
        let homes = if needs_homes(cfg) {
            read_homes(wanted(cfg).as_deref())
        } else {
            HashMap::new()
        };
        Userdir::with_homes(homes)
    }

    pub fn with_homes(homes: HashMap<String, String>) -> Userdir {
        Userdir {
            homes,
            dirs: DirCheck::new(),
        }
    }
}

/// lighttpd's check for a name under userdir.basepath: letters, digits, `-_.`,
/// and not `.` or `..`.
fn valid_user(u: &[u8]) -> bool {
    !(u == b"." || u == b"..")
        && u.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// What `/~user...` maps to.
#[derive(Debug, PartialEq, Eq)]
pub enum Map {
    /// Not a user directory request (or not for this user): go on.
    Pass,
    /// `/~user` without the slash: redirect to `/~user/`.
    Slash,
    /// Serve from this directory; the rest of the path starts at this offset.
    Dir(String, usize),
}

pub struct Opts<'a> {
    pub path: &'a str,
    pub basepath: &'a str,
    pub letterhomes: bool,
    pub include: &'a [String],
    pub exclude: &'a [String],
    pub lowercase: bool,
}

impl Userdir {
    /// Map a decoded request path. `dir_ok` checks that a home-based directory exists.
    pub fn map(&self, p: &[u8], o: &Opts, dir_ok: impl Fn(&str) -> bool) -> Map {
        let Some(rest) = p.strip_prefix(b"/~") else {
            return Map::Pass;
        };
        let Some(slash) = memchr::memchr(b'/', rest) else {
            return if rest.is_empty() {
                Map::Pass
            } else {
                Map::Slash
            };
        };
        let user = &rest[..slash];
        if user.is_empty() {
            return Map::Pass;
        }
        let excluded = o.exclude.iter().any(|e| {
            if o.lowercase {
                e.as_bytes().eq_ignore_ascii_case(user)
            } else {
                e.as_bytes() == user
            }
        });
        if excluded {
            return Map::Pass;
        }
        if !o.include.is_empty() && !o.include.iter().any(|i| i.as_bytes() == user) {
            return Map::Pass;
        }
        let off = 2 + slash;
        if o.basepath.is_empty() {
            let Ok(name) = std::str::from_utf8(user) else {
                return Map::Pass;
            };
            let Some(home) = self.homes.get(name) else {
                return Map::Pass;
            };
            let dir = join(home, o.path);
            if !dir_ok(&dir) {
                return Map::Pass;
            }
            return Map::Dir(dir, off);
        }
        if !valid_user(user) {
            return Map::Pass;
        }
        let mut u = String::from_utf8_lossy(user).into_owned();
        if o.lowercase {
            u.make_ascii_lowercase();
        }
        let mut dir = o.basepath.to_string();
        if o.letterhomes {
            if u.starts_with('.') {
                return Map::Pass;
            }
            dir = join(&dir, &u[..1]);
        }
        dir = join(&join(&dir, &u), o.path);
        Map::Dir(dir, off)
    }
}

impl Module for Userdir {
    fn name(&self) -> &'static str {
        "mod_userdir"
    }

    fn hooks(&self) -> u16 {
        hook::PHYSICAL
    }

    fn physical(&self, x: &mut Cx) -> Flow {
        if !x.rq.path.starts_with(b"/~") || !*x.view.userdir_active {
            return Flow::Go;
        }
        // userdir.path never set: the module is off (lighttpd: set to "" is on).
        if x.block_of(|p| p.userdir_path().is_some()) == 0
            && x.compiled.patch(0).userdir_path().is_none()
        {
            return Flow::Go;
        }
        let v = &x.view;
        let o = Opts {
            path: v.userdir_path,
            basepath: v.userdir_basepath,
            letterhomes: *v.userdir_letterhomes,
            include: v.userdir_include_user,
            exclude: v.userdir_exclude_user,
            lowercase: *v.force_lowercase_filenames,
        };
        let now = x.fs.clock.mono;
        match self.map(&x.rq.path, &o, |d| self.dirs.is_dir(d, now)) {
            Map::Pass => Flow::Go,
            Map::Slash => {
                let rq = &mut *x.rq;
                let mut loc = std::mem::take(&mut rq.location);
                loc.clear();
                loc.extend_from_slice(rq.target_path());
                loc.push(b'/');
                rq.location = loc;
                if !rq.query.is_empty() {
                    rq.location.push(b'?');
                    rq.location.extend_from_slice(&rq.query);
                }
                Flow::Status(301)
            }
            Map::Dir(dir, off) => {
                let rq = &mut *x.rq;
                rq.docroot = dir;
                rq.rel.clear();
                rq.rel.extend_from_slice(&rq.path[off..]);
                Flow::Go
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ud() -> Userdir {
        let mut h = HashMap::new();
        h.insert("alice".to_string(), "/home/alice".to_string());
        h.insert("bob".to_string(), "/home/bob".to_string());
        Userdir::with_homes(h)
    }

    fn o<'a>(basepath: &'a str, inc: &'a [String], exc: &'a [String]) -> Opts<'a> {
        Opts {
            path: "public_html",
            basepath,
            letterhomes: false,
            include: inc,
            exclude: exc,
            lowercase: false,
        }
    }

    #[test]
    fn homes() {
        let u = ud();
        let yes = |_: &str| true;
        assert_eq!(
            u.map(b"/~alice/a/b.html", &o("", &[], &[]), yes),
            Map::Dir("/home/alice/public_html".into(), 7)
        );
        assert_eq!(u.map(b"/~alice", &o("", &[], &[]), yes), Map::Slash);
        assert_eq!(u.map(b"/~", &o("", &[], &[]), yes), Map::Pass);
        assert_eq!(u.map(b"/~/x", &o("", &[], &[]), yes), Map::Pass);
        assert_eq!(u.map(b"/~carol/", &o("", &[], &[]), yes), Map::Pass);
        assert_eq!(u.map(b"/x/~alice/", &o("", &[], &[]), yes), Map::Pass);
        assert_eq!(u.map(b"/~alice/", &o("", &[], &[]), |_| false), Map::Pass);
        let bob = ["bob".to_string()];
        assert_eq!(u.map(b"/~alice/", &o("", &bob, &[]), yes), Map::Pass);
        assert!(matches!(
            u.map(b"/~bob/", &o("", &bob, &[]), yes),
            Map::Dir(..)
        ));
        assert_eq!(u.map(b"/~bob/", &o("", &[], &bob), yes), Map::Pass);
    }

    #[test]
    fn basepath() {
        let u = ud();
        let yes = |_: &str| true;
        assert_eq!(
            u.map(b"/~Carol/x", &o("/srv/users", &[], &[]), yes),
            Map::Dir("/srv/users/Carol/public_html".into(), 7)
        );
        let mut opts = o("/srv/users/", &[], &[]);
        opts.letterhomes = true;
        opts.lowercase = true;
        assert_eq!(
            u.map(b"/~Carol/x", &opts, yes),
            Map::Dir("/srv/users/c/carol/public_html".into(), 7)
        );
        assert_eq!(u.map(b"/~../x", &opts, yes), Map::Pass);
        assert_eq!(u.map(b"/~.x/", &opts, yes), Map::Pass);
        assert_eq!(u.map(b"/~a%b/", &opts, yes), Map::Pass);
        let exc = ["CAROL".to_string()];
        opts.exclude = &exc;
        assert_eq!(u.map(b"/~carol/", &opts, yes), Map::Pass);
    }
}
