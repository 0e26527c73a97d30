//! What a URL path is on disk, cached for at most one second: regular file (with
//! its bytes when small, else an open fd), directory, or an error. Files are opened
//! with openat2(RESOLVE_BENEATH) against a document-root dirfd, so neither `..` nor
//! a symlink can lead outside the root; with follow-symlink off, no symlink at all.

use std::collections::HashMap;
use std::ffi::CStr;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

/// Files up to this size are kept in memory (one write per response).
pub const SMALL_FILE: u64 = 32 * 1024;
/// Limits of the cache as a whole; past them it starts over.
const MAX_ENTRIES: usize = 4096;
const MAX_BYTES: usize = 16 << 20;
const MAX_FDS: usize = 256;

#[derive(Debug)]
pub enum Body {
    Mem(Rc<[u8]>),
    Fd(Rc<OwnedFd>),
}

#[derive(Debug)]
pub struct FileInfo {
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub body: Body,
    /// `Last-Modified` value.
    pub last_modified: [u8; crate::date::HTTP_DATE_LEN],
}

impl FileInfo {
    fn same_file(&self, st: &libc::stat) -> bool {
        self.ino == st.st_ino
            && self.dev == st.st_dev
            && self.size == st.st_size as u64
            && self.mtime == st.st_mtime
            && self.mtime_ns == st.st_mtime_nsec
    }

    /// lighttpd's ETag: the enabled parts (inode, size, mtime) hashed to one number.
    pub fn etag(&self, inode: bool, size: bool, mtime: bool, out: &mut Vec<u8>) -> bool {
        if !(inode || size || mtime) {
            return false;
        }
        let mut h: u32 = 0x811c_9dc5;
        let mut mix = |v: u64| {
            for b in v.to_le_bytes() {
                h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
        };
        if inode {
            mix(self.ino);
        }
        if size {
            mix(self.size);
        }
        if mtime {
            mix(self.mtime as u64);
            mix(self.mtime_ns as u64);
        }
        out.clear();
        out.push(b'"');
        crate::response::put_u64(out, u64::from(h));
        out.push(b'"');
        true
    }
}

/// What a path resolved to.
#[derive(Clone, Debug)]
pub enum Found {
    /// A regular file; `file_len` bytes of the looked-up path name it, the rest is
    /// path info (`/file.html/extra`).
    File {
        info: Rc<FileInfo>,
        file_len: usize,
    },
    Dir,
    NotFound,
    Forbidden,
    /// Out of fds or memory, an I/O error (the errno): 500, and not cached.
    Error(i32),
}

struct Entry {
    checked: u64,
    found: Found,
}

/// FNV-1a: paths are short; SipHash's DoS resistance is not needed for a cache
/// that is bounded and cleared.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

#[derive(Default)]
pub struct StatCache {
    map: HashMap<Box<[u8]>, Entry, BuildHasherDefault<Fnv>>,
    bytes: usize,
    fds: usize,
    key: Vec<u8>,
    cpath: Vec<u8>,
}

/// How to open: beneath a root dirfd (and whether symlinks may be followed), or an
/// absolute path (error files named by the config).
#[derive(Clone, Copy)]
pub enum Root {
    Beneath {
        dirfd: RawFd,
        id: u32,
        symlinks: bool,
    },
    Absolute,
}

impl StatCache {
    pub fn new() -> StatCache {
        StatCache::default()
    }

    /// Resolve `path` (normalised, starting with `/`) under `root`. `now`: monotonic
    /// seconds; an entry is trusted only within the second it was checked.
    pub fn lookup(&mut self, root: Root, path: &[u8], now: u64) -> Found {
        self.key.clear();
        match root {
            Root::Beneath { id, symlinks, .. } => {
                self.key.extend_from_slice(&id.to_le_bytes());
                self.key.push(symlinks as u8);
            }
            Root::Absolute => self.key.extend_from_slice(&[0xff; 5]),
        }
        self.key.extend_from_slice(path);
        if let Some(e) = self.map.get_mut(&self.key[..]) {
            if e.checked == now {
                return e.found.clone();
            }
        }
        let old = self.map.get(&self.key[..]).map(|e| e.found.clone());
        let found = self.resolve(root, path, old.as_ref());
        if matches!(found, Found::Error(_)) {
            return found;
        }
        if let Some(Found::File { info, .. }) = &old {
            self.forget(info);
        }
        if let Found::File { info, .. } = &found {
            match &info.body {
                Body::Mem(m) => self.bytes += m.len(),
                Body::Fd(_) => self.fds += 1,
            }
        }
        if self.map.len() >= MAX_ENTRIES || self.bytes > MAX_BYTES || self.fds > MAX_FDS {
            self.map.clear();
            self.bytes = 0;
            self.fds = 0;
        }
        self.map.insert(
            self.key.clone().into_boxed_slice(),
            Entry {
                checked: now,
                found: found.clone(),
            },
        );
        found
    }

    fn forget(&mut self, info: &FileInfo) {
        match &info.body {
            Body::Mem(m) => self.bytes = self.bytes.saturating_sub(m.len()),
            Body::Fd(_) => self.fds = self.fds.saturating_sub(1),
        }
    }

    fn resolve(&mut self, root: Root, path: &[u8], old: Option<&Found>) -> Found {
        let old_info = match old {
            Some(Found::File { info, file_len }) => Some((info, *file_len)),
            _ => None,
        };
        // Try the whole path, then each parent (path info), as lighttpd does.
        let mut end = path.len();
        loop {
            let part = &path[..end];
            match self.open(root, part) {
                Ok(fd) => {
                    let st = match fstat(fd.as_raw_fd()) {
                        Ok(st) => st,
                        Err(e) => return Found::Error(e.raw_os_error().unwrap_or(0)),
                    };
                    let fmt = st.st_mode & libc::S_IFMT;
                    if fmt == libc::S_IFDIR {
                        // A directory in the middle of the path: the file is missing.
                        return if end == path.len() {
                            Found::Dir
                        } else {
                            Found::NotFound
                        };
                    }
                    if fmt != libc::S_IFREG {
                        return Found::Forbidden;
                    }
                    // "/file.html/" names the file, with path info "/".
                    let flen = if part.len() > 1 && part.ends_with(b"/") {
                        end - 1
                    } else {
                        end
                    };
                    if let Some((info, len)) = old_info {
                        if len == flen && info.same_file(&st) {
                            return Found::File {
                                info: info.clone(),
                                file_len: flen,
                            };
                        }
                    }
                    return match load(fd, &st) {
                        Ok(info) => Found::File {
                            info: Rc::new(info),
                            file_len: flen,
                        },
                        Err(e) => Found::Error(e.raw_os_error().unwrap_or(0)),
                    };
                }
                Err(e) => match e.raw_os_error().unwrap_or(0) {
                    libc::ENOENT | libc::ENOTDIR => {
                        // Up one segment: "/a/b/c" -> "/a/b".
                        match memchr::memrchr(b'/', &path[..end]) {
                            Some(i) if i > 0 => end = i,
                            _ => return Found::NotFound,
                        }
                    }
                    // ENXIO: a socket or device special file, not a regular file.
                    libc::EACCES | libc::EPERM | libc::EXDEV | libc::ELOOP | libc::ENXIO => {
                        return Found::Forbidden
                    }
                    libc::ENAMETOOLONG => return Found::NotFound,
                    errno => return Found::Error(errno),
                },
            }
        }
    }

    fn open(&mut self, root: Root, path: &[u8]) -> io::Result<OwnedFd> {
        self.cpath.clear();
        let (dirfd, resolve) = match root {
            Root::Beneath {
                dirfd, symlinks, ..
            } => {
                let rel = path.strip_prefix(b"/").unwrap_or(path);
                let rel = rel.strip_suffix(b"/").unwrap_or(rel);
                if rel.is_empty() {
                    self.cpath.push(b'.');
                } else {
                    self.cpath.extend_from_slice(rel);
                }
                let mut r = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
                if !symlinks {
                    r |= RESOLVE_NO_SYMLINKS;
                }
                (dirfd, r)
            }
            Root::Absolute => {
                self.cpath.extend_from_slice(path);
                (libc::AT_FDCWD, 0)
            }
        };
        self.cpath.push(0);
        let c = CStr::from_bytes_with_nul(&self.cpath)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        openat2(
            dirfd,
            c,
            (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64,
            resolve,
        )
    }
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2): the kernel resolves the path and refuses to leave `dirfd`'s tree.
pub fn openat2(dirfd: RawFd, path: &CStr, flags: u64, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags,
        mode: 0,
        resolve,
    };
    loop {
        // SAFETY: path is NUL-terminated, how is a valid open_how of the size passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-buffer; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, st is writable.
    let r = unsafe { libc::fstat(fd, &mut st) };
    if r == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn load(fd: OwnedFd, st: &libc::stat) -> io::Result<FileInfo> {
    let size = st.st_size.max(0) as u64;
    let mut last_modified = [0u8; crate::date::HTTP_DATE_LEN];
    crate::date::format_http_date(st.st_mtime, &mut last_modified);
    let body = if size <= SMALL_FILE {
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: the destination range is inside buf.
            let r = unsafe {
                libc::pread(
                    fd.as_raw_fd(),
                    buf[got..].as_mut_ptr().cast(),
                    buf.len() - got,
                    got as libc::off_t,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                break;
            }
            got += r as usize;
        }
        if got != buf.len() {
            // Changed while reading: serve it from the fd; the next check reloads it.
            Body::Fd(Rc::new(fd))
        } else {
            Body::Mem(buf.into())
        }
    } else {
        Body::Fd(Rc::new(fd))
    };
    Ok(FileInfo {
        size,
        mtime: st.st_mtime,
        mtime_ns: st.st_mtime_nsec,
        ino: st.st_ino,
        dev: st.st_dev,
        body,
        last_modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(dir: &std::path::Path, symlinks: bool) -> (OwnedFd, Root) {
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("cstr");
        let fd = openat2(
            libc::AT_FDCWD,
            &c,
            (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
            0,
        )
        .expect("open root");
        let raw = fd.as_raw_fd();
        (
            fd,
            Root::Beneath {
                dirfd: raw,
                id: 1,
                symlinks,
            },
        )
    }

    #[test]
    fn resolves_files_dirs_pathinfo_and_escapes() {
        let base = std::env::temp_dir().join(format!("wick-sc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let www = base.join("www");
        std::fs::create_dir_all(www.join("d")).expect("mkdir");
        std::fs::write(www.join("a.txt"), b"hello").expect("write");
        std::fs::write(base.join("secret"), b"no").expect("write");
        symlink("../secret", www.join("out")).expect("symlink");
        symlink("a.txt", www.join("in")).expect("symlink");
        let (_keep, r) = root(&www, true);
        let mut c = StatCache::new();
        match c.lookup(r, b"/a.txt", 1) {
            Found::File { info, file_len } => {
                assert_eq!(info.size, 5);
                assert_eq!(file_len, 6);
                assert!(matches!(&info.body, Body::Mem(m) if &m[..] == b"hello"));
            }
            f => panic!("{f:?}"),
        }
        assert!(matches!(
            c.lookup(r, b"/a.txt/more/x", 1),
            Found::File { file_len: 6, .. }
        ));
        assert!(matches!(c.lookup(r, b"/d", 1), Found::Dir));
        assert!(matches!(c.lookup(r, b"/d/", 1), Found::Dir));
        assert!(matches!(c.lookup(r, b"/", 1), Found::Dir));
        assert!(matches!(c.lookup(r, b"/nope", 1), Found::NotFound));
        assert!(matches!(c.lookup(r, b"/d/nope", 1), Found::NotFound));
        assert!(matches!(c.lookup(r, b"/out", 1), Found::Forbidden));
        assert!(matches!(c.lookup(r, b"/in", 1), Found::File { .. }));
        let (_keep2, strict) = root(&www, false);
        assert!(matches!(c.lookup(strict, b"/in", 1), Found::Forbidden));
        // Changes show within the next second, not before.
        std::fs::write(www.join("a.txt"), b"changed!").expect("write");
        assert!(
            matches!(c.lookup(r, b"/a.txt", 1), Found::File { ref info, .. } if info.size == 5)
        );
        assert!(
            matches!(c.lookup(r, b"/a.txt", 2), Found::File { ref info, .. } if info.size == 8)
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
