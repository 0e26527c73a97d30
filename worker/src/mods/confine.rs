//! Document roots that come from the request (virtual hosts, user directories):
//! the host name checked before it becomes a path component, and the directory
//! opened beneath its configured base with openat2(RESOLVE_BENEATH), so neither
//! a crafted Host nor a symlink leads outside the base. Results are cached for the
//! second they were checked in, as the stat cache does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;

/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 4096;

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;

/// The host part of a Host value, lower-cased, without the port; None when it
/// could not safely be a directory name (empty, `.`/`..`, a leading dot, a slash,
/// a byte outside letters, digits and `-._:[]`).
pub fn host_name(host: &[u8]) -> Option<String> {
    let name = if host.first() == Some(&b'[') {
        let close = memchr::memchr(b']', host)?;
        &host[..=close]
    } else {
        match memchr::memchr(b':', host) {
            Some(i) => &host[..i],
            None => host,
        }
    };
    if name.is_empty() || name[0] == b'.' {
        return None;
    }
    let ok = name.iter().all(|&c| {
        c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b':' | b'[' | b']')
    });
    if !ok {
        return None;
    }
    Some(String::from_utf8_lossy(name).to_ascii_lowercase())
}

/// Does `rel` (relative, `/`-separated) stay inside its base without help from
/// `..`? (openat2 refuses the escape as well; this keeps the check lexical first.)
pub fn clean_relative(rel: &str) -> bool {
    rel.split('/').all(|seg| seg != "..") && !rel.contains('\0')
}

/// "Is `base`/`rel` a directory inside `base`?", cached per second.
#[derive(Default)]
pub struct DirCheck {
    /// "base\0rel" → (second checked, result).
    seen: RefCell<HashMap<String, (u64, bool)>>,
    /// The key being looked up (kept to avoid an allocation per request).
    key: RefCell<String>,
}

impl DirCheck {
    pub fn new() -> DirCheck {
        DirCheck::default()
    }

    pub fn is_dir_beneath(&self, base: &str, rel: &str, now: u64) -> bool {
        self.check(base, rel, now, true)
    }

    /// "Is `path` a directory?", symlinks followed (no base to stay in).
    pub fn is_dir(&self, path: &str, now: u64) -> bool {
        self.check(path, "", now, false)
    }

    fn check(&self, base: &str, rel: &str, now: u64, beneath: bool) -> bool {
        let mut seen = self.seen.borrow_mut();
        let mut key = self.key.borrow_mut();
        key.clear();
        key.push_str(base);
        key.push('\0');
        key.push_str(rel);
        if let Some(&(at, ok)) = seen.get(key.as_str()) {
            if at == now {
                return ok;
            }
        }
        let ok = if beneath {
            dir_beneath(base, rel)
        } else {
            dir_beneath(base, "")
        };
        if seen.len() >= MAX_ENTRIES {
            seen.clear();
        }
        match seen.get_mut(key.as_str()) {
            Some(e) => *e = (now, ok),
            None => {
                seen.insert(key.clone(), (now, ok));
            }
        }
        ok
    }
}

/// Open `base` and then `rel` beneath it as a directory.
pub fn dir_beneath(base: &str, rel: &str) -> bool {
    if base.is_empty() || !clean_relative(rel) {
        return false;
    }
    let Ok(b) = CString::new(base) else {
        return false;
    };
    let flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    let Ok(bfd) = crate::stat_cache::openat2(libc::AT_FDCWD, &b, flags, 0) else {
        return false;
    };
    let rel = rel.trim_matches('/');
    if rel.is_empty() {
        return true;
    }
    let Ok(r) = CString::new(rel) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    crate::stat_cache::openat2(
        bfd.as_raw_fd(),
        &r,
        flags,
        RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    )
    .is_ok()
}

/// `a` + `/` + `b` with exactly one slash between them (either may be empty).
pub fn join(a: &str, b: &str) -> String {
    let mut s = String::with_capacity(a.len() + b.len() + 1);
    s.push_str(a);
    if !b.is_empty() {
        if !s.is_empty() && !s.ends_with('/') {
            s.push('/');
        }
        s.push_str(b.strip_prefix('/').unwrap_or(b));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(
            host_name(b"Example.ORG:8080").as_deref(),
            Some("example.org")
        );
        assert_eq!(host_name(b"[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(host_name(b"a_b-c.d").as_deref(), Some("a_b-c.d"));
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"../../etc",
            b".hidden",
            b"a/b",
            b"a\\b",
            b"a b",
            b"a\0",
        ] {
            assert_eq!(host_name(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn beneath_only() {
        let d = std::env::temp_dir().join(format!("wick-confine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/site/htdocs")).expect("mkdir");
        std::fs::create_dir_all(d.join("outside")).expect("mkdir");
        std::os::unix::fs::symlink(d.join("outside"), d.join("root/evil")).expect("symlink");
        std::os::unix::fs::symlink("site", d.join("root/alias")).expect("symlink");
        let base = d.join("root");
        let base = base.to_str().expect("utf8");
        assert!(dir_beneath(base, "site/htdocs/"));
        assert!(dir_beneath(base, "alias/htdocs"));
        assert!(!dir_beneath(base, "evil"));
        assert!(!dir_beneath(base, "../outside"));
        assert!(!dir_beneath(base, "missing"));
        let c = DirCheck::new();
        assert!(c.is_dir_beneath(base, "site", 1));
        std::fs::remove_dir_all(d.join("root/site")).expect("rm");
        assert!(
            c.is_dir_beneath(base, "site", 1),
            "cached within the second"
        );
        assert!(!c.is_dir_beneath(base, "site", 2));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn joins() {
        assert_eq!(join("/srv/", "/a/"), "/srv/a/");
        assert_eq!(join("/srv", "a"), "/srv/a");
        assert_eq!(join("/srv", ""), "/srv");
    }
}
