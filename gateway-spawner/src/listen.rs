//! The listening sockets of the backends the spawner starts (bin-path hosts),
//! made as the spawner's user (server.username), as lighttpd makes them after
//! dropping root: the workers, running as that user too, may connect.
//!
//! A unix socket is bound under a short temporary name in its directory and,
//! once its process runs, renamed over the configured path: the path names a
//! listening socket at every moment. Across a graceful restart the new
//! generation's socket replaces the old one by that rename; a connection made
//! before it (an old worker's) is queued on the old socket and served by the old
//! generation's process, one made after it by the new one. On the way out the
//! path is removed only while it still names our socket (device and inode), so
//! an old generation never removes the socket of the one that replaced it.
//! (lighttpd unlinks and binds again, with a moment in which the path is gone.)
//!
//! A TCP socket has SO_REUSEADDR and SO_REUSEPORT: the new generation binds the
//! same port while the old one still listens (both run as the same user, which
//! SO_REUSEPORT requires). A one-instruction classic BPF program on the group
//! then sends every new connection to the newest socket (its index in the
//! group: the listeners counted in /proc/net/tcp, ours the last to join), so the
//! old generation's processes get only what was queued before. When an older
//! socket leaves, the kernel moves the last one into its place; the index the
//! program returns is then past the end and the kernel falls back to its hash,
//! over what is left (ours alone, after one restart).

use nix::sys::socket::{
    self, bind, listen, setsockopt, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use wick_conf::spawn::{Listen, MAX_UNIX_PATH};

/// A bound, listening socket and where it is (or will be) named.
#[derive(Debug)]
pub struct Bound {
    pub fd: OwnedFd,
    pub addr: Listen,
    /// Unix: the temporary name it is bound under until [`Bound::commit`].
    temp: Option<PathBuf>,
    /// Unix: device and inode of our socket file, once it has its name.
    ident: Option<(u64, u64)>,
}

/// Temporary names made by this process (pid and a count keep them unique).
static SEQ: AtomicU32 = AtomicU32::new(0);

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn backlog(n: i32) -> Backlog {
    Backlog::new(n.clamp(0, libc::SOMAXCONN)).unwrap_or(Backlog::MAXCONN)
}

/// A short temporary name beside `path`, or None when none fits in sun_path.
fn temp_name(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = format!(".wickd{}.{n}", std::process::id());
    let p = match dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    };
    (p.as_os_str().len() <= MAX_UNIX_PATH).then_some(p)
}

fn ident_of(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Bind and listen on `addr` (a unix socket under a temporary name).
pub fn bind_listen(addr: &Listen, backlog_len: i32) -> io::Result<Bound> {
    match addr {
        Listen::Unix(path) => {
            let fd = socket::socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(errno)?;
            let temp = temp_name(path);
            let at = match &temp {
                Some(t) => {
                    let _ = std::fs::remove_file(t);
                    t.clone()
                }
                // No room for a temporary name: lighttpd's way, unlink and bind.
                None => {
                    let _ = std::fs::remove_file(path);
                    path.clone()
                }
            };
            let ua = UnixAddr::new(&at).map_err(errno)?;
            bind(fd.as_raw_fd(), &ua).map_err(|e| {
                io::Error::new(errno(e).kind(), format!("bind {}: {e}", at.display()))
            })?;
            let mut b = Bound {
                fd,
                addr: addr.clone(),
                temp: temp.clone(),
                ident: None,
            };
            if let Err(e) = listen(&b.fd, backlog(backlog_len)) {
                b.discard();
                return Err(errno(e));
            }
            if temp.is_none() {
                b.ident = ident_of(path);
            }
            Ok(b)
        }
        Listen::Tcp(sa) => {
            let family = if sa.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
                .map_err(errno)?;
            setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(errno)?;
            setsockopt(&fd, sockopt::ReusePort, &true).map_err(errno)?;
            let r = match sa {
                std::net::SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(*a)),
                std::net::SocketAddr::V6(a) => bind(fd.as_raw_fd(), &SockaddrIn6::from(*a)),
            };
            r.map_err(|e| io::Error::new(errno(e).kind(), format!("bind {sa}: {e}")))?;
            listen(&fd, backlog(backlog_len)).map_err(errno)?;
            steer_to_newest(&fd, sa);
            Ok(Bound {
                fd,
                addr: addr.clone(),
                temp: None,
                ident: None,
            })
        }
    }
}

/// Listening TCP sockets on exactly `sa` owned by `uid` (SO_REUSEPORT's group),
/// from /proc/net/tcp or tcp6.
fn listeners_on(sa: &std::net::SocketAddr, uid: u32) -> Option<usize> {
    let (table, addr) = match sa.ip() {
        std::net::IpAddr::V4(ip) => (
            "/proc/net/tcp",
            format!("{:08X}", u32::from_ne_bytes(ip.octets())),
        ),
        std::net::IpAddr::V6(ip) => (
            "/proc/net/tcp6",
            ip.octets()
                .chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
    };
    let want = format!("{addr}:{:04X}", sa.port());
    let uid = uid.to_string();
    let text = std::fs::read_to_string(table).ok()?;
    Some(
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A"))
            .filter(|f| f.get(7) == Some(&uid.as_str()))
            .count(),
    )
}

/// Send the group's new connections to this socket, the last to join (see the
/// module's text). Best effort: without it the kernel spreads them by hash.
fn steer_to_newest(fd: &OwnedFd, sa: &std::net::SocketAddr) {
    let Some(n) = listeners_on(sa, nix::unistd::geteuid().as_raw()).filter(|&n| n > 1) else {
        return;
    };
    // BPF_RET | BPF_K: return the constant, the index of our socket.
    let mut prog = [libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: (n - 1) as u32,
    }];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: prog.as_mut_ptr(),
    };
    let _ = setsockopt(fd, sockopt::AttachReusePortCbpf, &fprog);
}

impl Bound {
    /// Give a unix socket its configured name (atomically replacing what was
    /// there, a previous generation's socket included).
    pub fn commit(&mut self) -> io::Result<()> {
        let (Some(temp), Listen::Unix(path)) = (self.temp.take(), &self.addr) else {
            return Ok(());
        };
        if let Err(e) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(io::Error::new(
                e.kind(),
                format!("rename {} to {}: {e}", temp.display(), path.display()),
            ));
        }
        self.ident = ident_of(path);
        Ok(())
    }

    /// Not used after all: its temporary name goes (a committed name stays to
    /// [`Bound::remove_if_ours`]).
    pub fn discard(&mut self) {
        if let Some(t) = self.temp.take() {
            let _ = std::fs::remove_file(t);
        }
    }

    /// Remove the unix socket's name if it still names our socket.
    pub fn remove_if_ours(&mut self) {
        self.discard();
        if let (Some(id), Listen::Unix(path)) = (self.ident.take(), &self.addr) {
            if ident_of(path) == Some(id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// The rename replaces a socket that listens: connections made before stay
    /// with the old one, those after reach the new one; the old one's removal
    /// leaves the new name alone.
    #[test]
    fn unix_socket_replaced_by_rename() {
        let dir = std::env::temp_dir().join(format!("wick-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("s.sock");
        let addr = Listen::Unix(path.clone());
        let mut old = bind_listen(&addr, 16).expect("bind old");
        assert!(
            UnixStream::connect(&path).is_err(),
            "not named before commit"
        );
        old.commit().expect("commit old");
        let before = UnixStream::connect(&path).expect("connect old");
        let mut new = bind_listen(&addr, 16).expect("bind new");
        new.commit().expect("commit new");
        let after = UnixStream::connect(&path).expect("connect new");
        for b in [&old, &new] {
            nix::fcntl::fcntl(
                &b.fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .expect("nonblocking");
        }
        let accept = |b: &Bound| {
            // SAFETY: accept4 on our listening fd with null address pointers.
            let fd = unsafe {
                libc::accept4(
                    b.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: a descriptor accept4 just returned, ours alone.
                unsafe { libc::close(fd) };
            }
            fd >= 0
        };
        assert!(accept(&old) && !accept(&old), "old got exactly one");
        assert!(accept(&new) && !accept(&new), "new got exactly one");
        old.remove_if_ours();
        assert!(path.exists(), "the new socket keeps its name");
        new.remove_if_ours();
        assert!(!path.exists());
        drop((before, after));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn nonblocking_accepts(b: &Bound) -> usize {
        nix::fcntl::fcntl(
            &b.fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("nonblocking");
        let mut n = 0;
        // SAFETY: accept4 on our listening fd with null address pointers; the
        // descriptors it returns are closed at once.
        while let fd @ 0.. = unsafe {
            libc::accept4(
                b.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        } {
            // SAFETY: ours alone, see above.
            unsafe { libc::close(fd) };
            n += 1;
        }
        n
    }

    /// A second socket on the same TCP port takes every new connection; once
    /// the first is gone it still takes them (the kernel's fallback).
    #[test]
    fn tcp_newest_socket_takes_new_connections() {
        // A port found free can be taken by a parallel test before the bind:
        // then another one.
        let (port, addr, old) = (0..20)
            .find_map(|_| {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .ok()?
                    .port();
                let addr = Listen::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
                let old = bind_listen(&addr, 64).ok()?;
                Some((port, addr, old))
            })
            .expect("bind old");
        let early: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        let new = bind_listen(&addr, 64).expect("bind new (SO_REUSEPORT)");
        let late: Vec<_> = (0..20)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        assert_eq!(nonblocking_accepts(&old), 3, "only what came before");
        assert_eq!(nonblocking_accepts(&new), 20, "every new connection");
        drop(old);
        let after: Vec<_> = (0..5)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        assert_eq!(nonblocking_accepts(&new), 5);
        drop((early, late, after));
    }
}
