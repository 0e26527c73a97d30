//! Request and response bodies kept on disk (lighttpd's server.upload-dirs):
//! `Uploads`, the directories opened before the sandbox, and `Spool`, one
//! request body's temporary file (a response's is a bare fd: cgi/respool.rs). A file is made with O_TMPFILE (no name, mode 0600, gone with its fd);
//! where the file system lacks it, under a random O_EXCL name unlinked at once.
//! Directories are tried in turn from the one after the last used, as lighttpd
//! does; the first that takes the file serves it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// Bytes of a body kept in memory before it goes to a file (lighttpd's
/// chunkqueue keeps as much in memory before a temporary file).
pub const SPILL: usize = 64 * 1024;

/// The upload directories, each with a directory fd opened before the sandbox.
#[derive(Debug, Default)]
pub struct Uploads {
    dirs: Vec<(String, OwnedFd)>,
    next: usize,
    made: u64,
}

impl Uploads {
    /// Open `dirs` (inside `chroot` when it is set: the worker resolves them
    /// before it enters it). A dir that cannot be opened is skipped with a log
    /// line; start-up warned about it already.
    pub fn open(dirs: &[String], chroot: Option<&str>, log: &mut Vec<String>) -> Uploads {
        let mut out = Uploads::default();
        for d in dirs {
            let path = match chroot.filter(|c| !c.is_empty()) {
                Some(c) => format!("{}/{}", c.trim_end_matches('/'), d.trim_start_matches('/')),
                None => d.clone(),
            };
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_PATH)
                .open(&path);
            match opened {
                Ok(f) => out.dirs.push((d.clone(), OwnedFd::from(f))),
                Err(e) => log.push(format!(
                    "server.upload-dirs {d}: cannot be opened: {e}; request bodies are not spooled there"
                )),
            }
        }
        out
    }

    /// A new temporary file; Err names every directory that refused.
    pub fn create(&mut self) -> Result<Spool, String> {
        self.create_fd().map(|fd| Spool {
            file: File::from(fd),
            len: 0,
            pos: 0,
        })
    }

    /// A new temporary file as a bare fd (a response's spool, sent by sendfile).
    pub fn create_fd(&mut self) -> Result<OwnedFd, String> {
        let mut why = Vec::new();
        for i in 0..self.dirs.len() {
            let k = (self.next + i) % self.dirs.len();
            let (name, dir) = &self.dirs[k];
            match tmpfile(dir, &mut self.made) {
                Ok(fd) => {
                    self.next = k + 1;
                    return Ok(fd);
                }
                Err(e) => why.push(format!("{name}: {e}")),
            }
        }
        if why.is_empty() {
            why.push("no server.upload-dirs could be opened".into());
        }
        Err(why.join("; "))
    }
}

/// O_TMPFILE, else a random name made and unlinked at once.
fn tmpfile(dir: &OwnedFd, made: &mut u64) -> io::Result<OwnedFd> {
    match crate::sys::open_tmpfile(dir.as_raw_fd()) {
        Ok(fd) => return Ok(fd),
        // EOPNOTSUPP / EISDIR: the file system (or the kernel) has no O_TMPFILE.
        Err(e) if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
            return Err(e)
        }
        Err(_) => {}
    }
    named_tmpfile(dir, made)
}

/// A random name made with O_EXCL (no symlink followed) and unlinked at once.
fn named_tmpfile(dir: &OwnedFd, made: &mut u64) -> io::Result<OwnedFd> {
    use std::hash::BuildHasher;
    *made += 1;
    let r = std::collections::hash_map::RandomState::new().hash_one(*made);
    let name = std::ffi::CString::new(format!(".wickd-body-{r:016x}"))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fd = crate::sys::create_excl_in(dir.as_raw_fd(), &name)?;
    crate::sys::unlink_in(dir.as_raw_fd(), &name)?;
    Ok(fd)
}

/// One request body's temporary file: written to its end, read from `pos`.
#[derive(Debug)]
pub struct Spool {
    file: File,
    len: u64,
    pos: u64,
}

impl Spool {
    /// Append `d` (a regular file takes it whole or fails: disk full, EIO).
    pub fn append(&mut self, d: &[u8]) -> io::Result<()> {
        self.file.write_all(d)?;
        self.len += d.len() as u64;
        Ok(())
    }

    /// Bytes written.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// Bytes written and not read back yet.
    pub fn pending(&self) -> u64 {
        self.len - self.pos
    }

    /// Read up to `max` bytes from where the last read ended onto `dst`.
    pub fn read_into(&mut self, dst: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let n = (self.pending().min(max as u64)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let at = dst.len();
        dst.resize(at + n, 0);
        let got = crate::sys::pread(self.file.as_raw_fd(), &mut dst[at..], self.pos);
        let got = match got {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            r => r,
        };
        match got {
            Ok(k) => {
                dst.truncate(at + k);
                self.pos += k as u64;
                Ok(k)
            }
            Err(e) => {
                dst.truncate(at);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_gives_back_what_it_took_and_leaves_no_name() {
        let dir = std::env::temp_dir().join(format!("wick-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let d = dir.to_string_lossy().into_owned();
        let mut log = Vec::new();
        let mut up = Uploads::open(&[format!("{d}/missing"), d.clone()], None, &mut log);
        assert_eq!(log.len(), 1, "{log:?}");
        let mut s = up.create().expect("a spool in the second dir");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        s.append(&data[..70_000]).expect("append");
        s.append(&data[70_000..]).expect("append");
        assert_eq!((s.written(), s.pending()), (200_000, 200_000));
        let mut back = Vec::new();
        while s.pending() > 0 {
            assert!(s.read_into(&mut back, SPILL).expect("read") > 0);
        }
        assert!(back == data);
        assert_eq!(s.read_into(&mut back, SPILL).expect("at the end"), 0);
        let names = std::fs::read_dir(&dir).expect("list").count();
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(names, 0, "the temporary file has a name");
        let mut none = Uploads::open(&[], None, &mut log);
        assert!(none.create().is_err());
    }

    #[test]
    fn without_o_tmpfile_the_name_is_gone_at_once() {
        let dir = std::env::temp_dir().join(format!("wick-named-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let dfd: OwnedFd = std::fs::File::open(&dir).expect("open dir").into();
        let mut made = 0;
        let a = named_tmpfile(&dfd, &mut made).expect("first");
        let b = named_tmpfile(&dfd, &mut made).expect("second");
        let names = std::fs::read_dir(&dir).expect("list").count();
        let mut f = File::from(a);
        f.write_all(b"kept").expect("write");
        let mode = f.metadata().expect("stat").permissions();
        drop((f, b));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(names, 0);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
}
