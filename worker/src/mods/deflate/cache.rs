//! deflate.cache-dir: a static file compressed once, kept on disk and reused while
//! its ETag holds. Entries are named as lighttpd 1.4.69 names them: the cache dir,
//! the file's physical path, "-", the ETag without its quotes ('/' as '~') and
//! "-" with the coding, e.g. `/var/cache/lighttpd/compress/srv/www/index.html-305653054-gzip`.
//! A changed file has another ETag, so another name: a stale entry is never served.
//!
//! Everything is opened beneath the cache dir's fd with RESOLVE_BENEATH and
//! RESOLVE_NO_SYMLINKS, so a symlink planted in the tree leads nowhere; entries
//! are written to a temporary name (O_EXCL, mode 0600) and renamed into place, so
//! a reader never sees half a file; an entry is used only when it is a regular
//! file owned by the cache dir's owner. Found entries stay open in a bounded
//! per-worker map, so a hit costs no system call but the sendfile: small entries
//! are not copied into memory, which measured ~10 % more CPU per response than
//! sendfile for a 14 KiB entry.

use crate::stat_cache::{
    fstat, openat2, openat2_mode, Fnv, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};
use std::collections::HashMap;
use std::ffi::CString;
use std::hash::BuildHasherDefault;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

/// Entries kept open; past this the map starts over.
const MAX_FDS: usize = 128;

const RESOLVE: u64 = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/// A compressed body from the cache: its open file and length.
#[derive(Clone, Debug)]
pub struct Entry {
    pub fd: Rc<OwnedFd>,
    pub len: u64,
}

/// One deflate.cache-dir value, opened on first use (inside the sandbox, whose
/// Landlock rule covers it); `uid` owns it and every entry we use.
struct Dir {
    path: String,
    fd: Option<(OwnedFd, u32)>,
    /// Monotonic second of the last failed open (tried again a second later).
    failed: u64,
}

#[derive(Default)]
pub struct Cache {
    dirs: Vec<Dir>,
    map: HashMap<Box<[u8]>, Entry, BuildHasherDefault<Fnv>>,
    key: Vec<u8>,
    /// Temporary names: pid and a counter, unique across the workers.
    seq: u64,
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl Cache {
    /// The fd of cache dir `path`, and its owner.
    fn dir(&mut self, path: &str, now: u64) -> io::Result<(RawFd, u32)> {
        let i = match self.dirs.iter().position(|d| d.path == path) {
            Some(i) => i,
            None => {
                self.dirs.push(Dir {
                    path: path.to_string(),
                    fd: None,
                    failed: u64::MAX,
                });
                self.dirs.len() - 1
            }
        };
        let d = &mut self.dirs[i];
        if d.fd.is_none() && d.failed != now {
            let c = cstr(path.as_bytes())?;
            let flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
            match openat2(libc::AT_FDCWD, &c, flags, 0).and_then(|fd| {
                let uid = fstat(fd.as_raw_fd())?.st_uid;
                Ok((fd, uid))
            }) {
                Ok(x) => d.fd = Some(x),
                Err(e) => {
                    d.failed = now;
                    return Err(e);
                }
            }
        }
        d.fd.as_ref()
            .map(|(fd, uid)| (fd.as_raw_fd(), *uid))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn key(&mut self, dir: &str, rel: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(dir.as_bytes());
        self.key.push(0);
        self.key.extend_from_slice(rel);
    }

    fn remember(&mut self, e: &Entry) {
        if self.map.len() >= MAX_FDS {
            self.map.clear();
        }
        self.map
            .insert(self.key.clone().into_boxed_slice(), e.clone());
    }

    /// The entry `rel` (its path below the cache dir, no leading '/') of cache
    /// dir `dir`, if there is a usable one.
    pub fn get(&mut self, dir: &str, rel: &[u8], now: u64) -> Option<Entry> {
        self.key(dir, rel);
        if let Some(e) = self.map.get(&self.key[..]) {
            return Some(e.clone());
        }
        let (dfd, uid) = self.dir(dir, now).ok()?;
        let c = cstr(rel).ok()?;
        let flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK) as u64;
        let fd = openat2(dfd, &c, flags, RESOLVE).ok()?;
        let st = fstat(fd.as_raw_fd()).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != uid || st.st_size <= 0 {
            return None;
        }
        let e = Entry {
            fd: Rc::new(fd),
            len: st.st_size as u64,
        };
        self.remember(&e);
        Some(e)
    }

    /// Store `data` as entry `rel` of `dir`: its directories made (0700), a
    /// temporary file written and renamed into place. The entry, to serve now.
    pub fn put(&mut self, dir: &str, rel: &[u8], data: &[u8], now: u64) -> io::Result<Entry> {
        let (dfd, _) = self.dir(dir, now)?;
        let (parent, base) = match memchr::memrchr(b'/', rel) {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        let pfd = make_dirs(dfd, parent)?;
        let pfd = pfd.as_ref().map_or(dfd, |f| f.as_raw_fd());
        self.seq += 1;
        let mut tmp = base.to_vec();
        tmp.extend_from_slice(format!(".{}.{}", std::process::id(), self.seq).as_bytes());
        let tmp = cstr(&tmp)?;
        let flags = (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC) as u64;
        let fd = openat2_mode(pfd, &tmp, flags, 0o600, RESOLVE)?;
        let wrote = write_all(fd.as_raw_fd(), data)
            .and_then(|()| crate::sys::rename_in(pfd, &tmp, &cstr(base)?));
        if let Err(e) = wrote {
            let _ = crate::sys::unlink_in(pfd, &tmp);
            return Err(e);
        }
        self.key(dir, rel);
        let e = Entry {
            fd: Rc::new(fd),
            len: data.len() as u64,
        };
        self.remember(&e);
        Ok(e)
    }
}

/// Open (making what is missing, mode 0700) the directories `rel` beneath
/// `dfd`, one component at a time and never through a symlink. None: `rel` is
/// empty (the cache dir itself).
fn make_dirs(dfd: RawFd, rel: &[u8]) -> io::Result<Option<OwnedFd>> {
    let mut cur: Option<OwnedFd> = None;
    let flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    for comp in rel
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        if comp == b".." {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        let at = cur.as_ref().map_or(dfd, |f| f.as_raw_fd());
        let c = cstr(comp)?;
        let next = match openat2(at, &c, flags, RESOLVE) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match crate::sys::mkdirat(at, &c, 0o700) {
                    Ok(()) => {}
                    // Another worker made it meanwhile.
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                openat2(at, &c, flags, RESOLVE)?
            }
            Err(e) => return Err(e),
        };
        cur = Some(next);
    }
    Ok(cur)
}

fn write_all(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = crate::sys::write(fd, data)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        data = &data[n..];
    }
    Ok(())
}

/// The entry name of a file (lighttpd's mod_deflate_cache_file_name): its
/// physical path `docroot` + `rel`, "-", the encoded ETag's text without quotes
/// ('/' as '~'; a weak tag's W/ dropped). Written into `out`, without a leading '/'.
pub fn entry_name(docroot: &str, rel: &[u8], etag: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let root = docroot.trim_end_matches('/').trim_start_matches('/');
    out.extend_from_slice(root.as_bytes());
    if !rel.starts_with(b"/") && !root.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(if root.is_empty() {
        rel.strip_prefix(b"/").unwrap_or(rel)
    } else {
        rel
    });
    out.push(b'-');
    let tag = etag.strip_prefix(b"W/").unwrap_or(etag);
    let tag = tag.strip_prefix(b"\"").unwrap_or(tag);
    let tag = tag.strip_suffix(b"\"").unwrap_or(tag);
    out.extend(tag.iter().map(|&c| if c == b'/' { b'~' } else { c }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_lighttpd() {
        let mut out = Vec::new();
        entry_name(
            "/tmp/ltd/www",
            b"/index.html",
            b"\"305653054-gzip\"",
            &mut out,
        );
        assert_eq!(out, b"tmp/ltd/www/index.html-305653054-gzip");
        entry_name("/srv/www/", b"/a/b.css", b"W/\"1/2-br\"", &mut out);
        assert_eq!(out, b"srv/www/a/b.css-1~2-br");
    }

    #[test]
    fn put_then_get_beneath_the_dir() {
        let dir = std::env::temp_dir().join(format!("wick-deflate-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let d = dir.to_str().expect("utf8").to_string();
        let mut c = Cache::default();
        assert!(c.get(&d, b"srv/www/x.html-1-gzip", 1).is_none());
        let big = vec![b'z'; 40_000];
        let e = c.put(&d, b"srv/www/x.html-1-gzip", &big, 1).expect("put");
        assert_eq!(e.len, 40_000);
        let mut fresh = Cache::default();
        let again = fresh.get(&d, b"srv/www/x.html-1-gzip", 1).expect("get");
        assert_eq!(again.len, 40_000);
        let small = fresh.put(&d, b"srv/www/y-2-br", b"tiny", 1).expect("put");
        assert_eq!(small.len, 4);
        let m = std::fs::metadata(dir.join("srv/www/y-2-br")).expect("meta");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        // A symlink planted in the tree is not followed.
        std::os::unix::fs::symlink("/etc", dir.join("srv/etc")).expect("symlink");
        assert!(fresh.put(&d, b"srv/etc/passwd-1-gzip", b"x", 1).is_err());
        std::os::unix::fs::symlink("/etc/hostname", dir.join("srv/www/h-1-gzip")).expect("ln");
        assert!(fresh.get(&d, b"srv/www/h-1-gzip", 1).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
