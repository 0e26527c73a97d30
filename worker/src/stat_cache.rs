//! What a URL path is on disk, cached for at most one second: regular file (with
//! its bytes when small, else an open fd), directory, or an error. Files are opened
//! with openat2(RESOLVE_BENEATH) against a document-root dirfd, so neither `..` nor
//! a symlink can lead outside the root; with follow-symlink off, no symlink at all.
//! An absolute symlink (which RESOLVE_BENEATH always refuses) is followed when its
//! target names a place under the root's configured path: the path is rewritten
//! without it and opened beneath the root again, so the kernel still keeps it inside.

use std::cell::RefCell;
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
        let flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64;
        match root {
            Root::Beneath {
                dirfd, symlinks, ..
            } => open_beneath(dirfd, path, flags, symlinks, &mut self.cpath),
            Root::Absolute => {
                self.cpath.clear();
                self.cpath.extend_from_slice(path);
                self.cpath.push(0);
                let c = CStr::from_bytes_with_nul(&self.cpath)
                    .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
                openat2(libc::AT_FDCWD, c, flags, 0)
            }
        }
    }
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
/// Symlinks one lookup may follow, as the kernel's MAXSYMLINKS.
const MAX_LINKS: u32 = 40;

thread_local! {
    /// The configured path of each root dirfd (Roots registers them as it opens
    /// them), to decide whether an absolute symlink's target lies under the root.
    static ROOT_PATHS: RefCell<Vec<(RawFd, Box<[u8]>)>> = const { RefCell::new(Vec::new()) };
}

/// Remember that `dirfd` is the directory `path` (as configured, absolute).
pub fn register_root(dirfd: RawFd, path: &[u8]) {
    ROOT_PATHS.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|(fd, _)| *fd != dirfd);
        r.push((dirfd, path.into()));
    });
}

fn root_path(dirfd: RawFd) -> Option<Box<[u8]>> {
    ROOT_PATHS.with(|r| {
        r.borrow()
            .iter()
            .find(|(fd, _)| *fd == dirfd)
            .map(|(_, p)| p.clone())
    })
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// Open `path` (from the root, `/`-separated) beneath `dirfd` with openat2 `flags`:
/// never outside it, and through symlinks only when `symlinks`. `cpath` is scratch.
pub fn open_beneath(
    dirfd: RawFd,
    path: &[u8],
    flags: u64,
    symlinks: bool,
    cpath: &mut Vec<u8>,
) -> io::Result<OwnedFd> {
    let mut resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    if !symlinks {
        resolve |= RESOLVE_NO_SYMLINKS;
    }
    let rel = path.strip_prefix(b"/").unwrap_or(path);
    let rel = rel.strip_suffix(b"/").unwrap_or(rel);
    let r = open_rel(dirfd, rel, flags, resolve, cpath);
    match r {
        // EXDEV: the walk met an absolute symlink or left the root.
        Err(ref e) if symlinks && e.raw_os_error() == Some(libc::EXDEV) => {
            let base = root_path(dirfd).ok_or_else(|| errno(libc::EXDEV))?;
            let rel = without_absolute_links(dirfd, &base, rel)?;
            open_rel(dirfd, &rel, flags, resolve, cpath)
        }
        r => r,
    }
}

fn open_rel(
    dirfd: RawFd,
    rel: &[u8],
    flags: u64,
    resolve: u64,
    cpath: &mut Vec<u8>,
) -> io::Result<OwnedFd> {
    cpath.clear();
    cpath.extend_from_slice(if rel.is_empty() { b"." } else { rel });
    cpath.push(0);
    let c = CStr::from_bytes_with_nul(cpath).map_err(|_| errno(libc::ENOENT))?;
    openat2(dirfd, c, flags, resolve)
}

/// `rel` with every symlink on its way replaced by its target, walked one component
/// at a time beneath `dirfd` (whose configured path is `base`): a relative target
/// against the directories walked so far (real ones, so `..` is exact), an absolute
/// one only when it lies under `base`, else EXDEV. Stops at the first missing
/// component or non-directory and leaves the rest to the caller's open.
fn without_absolute_links(dirfd: RawFd, base: &[u8], rel: &[u8]) -> io::Result<Vec<u8>> {
    let mut walked: Vec<u8> = Vec::with_capacity(rel.len());
    let mut rest: Vec<u8> = rel.to_vec();
    let mut pos = 0;
    let mut links = 0;
    let mut cpath = Vec::new();
    let mut target = Vec::new();
    let flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    while pos < rest.len() {
        let end = memchr::memchr(b'/', &rest[pos..]).map_or(rest.len(), |i| pos + i);
        let next = (end + 1).min(rest.len());
        match &rest[pos..end] {
            b"" | b"." => {
                pos = next;
                continue;
            }
            b".." => {
                // Above the root: out.
                if walked.is_empty() {
                    return Err(errno(libc::EXDEV));
                }
                let cut = memchr::memrchr(b'/', &walked).unwrap_or(0);
                walked.truncate(cut);
                pos = next;
                continue;
            }
            _ => {}
        }
        let mark = walked.len();
        if !walked.is_empty() {
            walked.push(b'/');
        }
        walked.extend_from_slice(&rest[pos..end]);
        let fd = match open_rel(dirfd, &walked, flags, resolve, &mut cpath) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                walked.extend_from_slice(&rest[end..]);
                return Ok(walked);
            }
            Err(e) => return Err(e),
        };
        let fmt = fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT;
        if fmt != libc::S_IFLNK {
            if fmt != libc::S_IFDIR {
                walked.extend_from_slice(&rest[end..]);
                return Ok(walked);
            }
            pos = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(errno(libc::ELOOP));
        }
        walked.truncate(mark);
        readlink_fd(fd.as_raw_fd(), &mut target)?;
        let mut new_rest = Vec::with_capacity(target.len() + rest.len() - end);
        if target.first() == Some(&b'/') {
            new_rest.extend_from_slice(under(base, &target).ok_or_else(|| errno(libc::EXDEV))?);
            walked.clear();
        } else {
            new_rest.extend_from_slice(&target);
        }
        new_rest.extend_from_slice(&rest[end..]);
        rest = new_rest;
        pos = 0;
    }
    Ok(walked)
}

/// What follows `base` in the absolute path `target`, compared by components (so
/// `//` and `/./` do not matter); None when `target` is not `base` or below it.
fn under<'a>(base: &[u8], target: &'a [u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    for want in base
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        loop {
            while target.get(i) == Some(&b'/') {
                i += 1;
            }
            let end = memchr::memchr(b'/', &target[i..]).map_or(target.len(), |j| i + j);
            let got = &target[i..end];
            i = end;
            if got == b"." {
                continue;
            }
            if got != want {
                return None;
            }
            break;
        }
    }
    Some(&target[i..])
}

/// The target of the symlink `fd` (an O_PATH|O_NOFOLLOW descriptor) into `out`.
fn readlink_fd(fd: RawFd, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.resize(libc::PATH_MAX as usize, 0);
    // SAFETY: an empty path with a symlink's O_PATH fd reads that link; out is
    // writable for out.len() bytes.
    let n = unsafe { libc::readlinkat(fd, c"".as_ptr(), out.as_mut_ptr().cast(), out.len()) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    if n == 0 || n >= out.len() {
        return Err(errno(libc::ENAMETOOLONG));
    }
    out.truncate(n);
    Ok(())
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2): the kernel resolves the path and refuses to leave `dirfd`'s tree.
pub fn openat2(dirfd: RawFd, path: &CStr, flags: u64, resolve: u64) -> io::Result<OwnedFd> {
    openat2_mode(dirfd, path, flags, 0, resolve)
}

/// openat2(2) with the mode of a file it creates (O_CREAT).
pub fn openat2_mode(
    dirfd: RawFd,
    path: &CStr,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags,
        mode,
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

    #[test]
    fn absolute_symlinks_inside_the_root_only() {
        let base = std::env::temp_dir().join(format!("wick-sca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let www = base.join("www");
        std::fs::create_dir_all(www.join("d")).expect("mkdir");
        std::fs::create_dir_all(base.join("wwwx")).expect("mkdir");
        std::fs::write(www.join("a.txt"), b"hello").expect("write");
        std::fs::write(www.join("d/b.txt"), b"bee").expect("write");
        std::fs::write(base.join("secret"), b"no").expect("write");
        std::fs::write(base.join("wwwx/a.txt"), b"no").expect("write");
        let w = www.to_str().expect("utf8");
        let b = base.to_str().expect("utf8");
        for (name, target) in [
            ("abs_in", format!("{w}/a.txt")),
            ("abs_dir", format!("{w}/d")),
            ("abs_root", format!("{w}/")),
            ("abs_slashes", format!("{w}//./d/../a.txt")),
            ("abs_missing", format!("{w}/nope")),
            ("rel_to_abs", "abs_in".to_string()),
            ("abs_out", format!("{b}/secret")),
            ("abs_dotdot", format!("{w}/../secret")),
            ("abs_sibling", format!("{b}/wwwx/a.txt")),
            ("abs_to_out", format!("{w}/d/up")),
            ("d/up", "../../secret".to_string()),
            ("loop1", format!("{w}/loop2")),
            ("loop2", format!("{w}/loop1")),
        ] {
            symlink(target, www.join(name)).expect("symlink");
        }
        let (_keep, r) = root(&www, true);
        let Root::Beneath { dirfd, .. } = r else {
            unreachable!()
        };
        let mut c = StatCache::new();
        // Not registered: no configured path to compare with, refused.
        assert!(matches!(c.lookup(r, b"/abs_in", 1), Found::Forbidden));
        register_root(dirfd, format!("{w}/").as_bytes());
        let mut c = StatCache::new();
        let file = |f: Found| match f {
            Found::File { info, file_len } => Some((info.size, file_len)),
            _ => None,
        };
        assert_eq!(file(c.lookup(r, b"/abs_in", 1)), Some((5, 7)));
        assert_eq!(file(c.lookup(r, b"/abs_in/extra", 1)), Some((5, 7)));
        assert_eq!(file(c.lookup(r, b"/abs_dir/b.txt", 1)), Some((3, 14)));
        assert_eq!(file(c.lookup(r, b"/abs_root/a.txt", 1)), Some((5, 15)));
        assert_eq!(file(c.lookup(r, b"/abs_slashes", 1)), Some((5, 12)));
        assert_eq!(file(c.lookup(r, b"/rel_to_abs", 1)), Some((5, 11)));
        assert!(matches!(c.lookup(r, b"/abs_dir", 1), Found::Dir));
        assert!(matches!(c.lookup(r, b"/abs_dir/", 1), Found::Dir));
        assert!(matches!(c.lookup(r, b"/abs_missing", 1), Found::NotFound));
        for out in [
            &b"/abs_out"[..],
            b"/abs_dotdot",
            b"/abs_sibling",
            b"/abs_to_out",
            b"/loop1",
        ] {
            let f = c.lookup(r, out, 1);
            assert!(
                matches!(f, Found::Forbidden),
                "{}: {f:?}",
                String::from_utf8_lossy(out)
            );
        }
        let (_keep2, strict) = root(&www, false);
        assert!(matches!(c.lookup(strict, b"/abs_in", 1), Found::Forbidden));
        let _ = std::fs::remove_dir_all(&base);
    }
}
