//! Listening sockets: bound once by the master (or inherited from systemd), kept
//! by address across reloads so that their queued connections survive, shared
//! with every worker by fd. Never SO_REUSEPORT: closing one of those drops its queue.

use nix::sys::socket::{
    bind, getsockname, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use wick_conf::{Config, ListenAddr, Listener};

struct Bound {
    fd: OwnedFd,
    /// We created this unix socket path, so we remove it when the listener goes.
    unlink: Option<PathBuf>,
}

/// Every listening socket the master holds, by address.
#[derive(Default)]
pub struct ListenerSet {
    bound: HashMap<ListenAddr, Bound>,
    /// Addresses of the sockets systemd passed (never closed by a reload).
    inherited: Vec<ListenAddr>,
}

fn backlog(n: u32) -> Backlog {
    let n = i32::try_from(n)
        .unwrap_or(i32::MAX)
        .min(libc::SOMAXCONN.max(65535));
    Backlog::new(n.max(1)).unwrap_or(Backlog::MAXCONN)
}

/// TCP_DEFER_ACCEPT: a connection reaches accept(2) only once its first bytes
/// are in, so a worker never wakes for a silent connection (nor spends a
/// connection slot on one), and the request is read in the accepting turn.
/// The kernel stops waiting after about `secs` and queues it anyway.
fn set_defer_accept(fd: RawFd, secs: u32) -> io::Result<()> {
    let v = libc::c_int::try_from(secs).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt on a socket we own, with an int option of its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn bind_tcp(addr: &SocketAddr, n: u32, v6only: bool, defer: u32) -> io::Result<OwnedFd> {
    let fam = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        fam,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    // Accepted connections inherit it: a response written in parts (a CGI's last
    // chunk after its body) is not held back by Nagle against the client's delayed ACK.
    setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    if defer > 0 {
        set_defer_accept(fd.as_raw_fd(), defer)?;
    }
    match addr {
        SocketAddr::V4(a) => {
            bind(fd.as_raw_fd(), &SockaddrIn::from(*a))?;
        }
        SocketAddr::V6(a) => {
            // server.set-v6only (default on, as lighttpd): [::]:80 does not also take
            // IPv4, so 0.0.0.0:80 can be bound too.
            setsockopt(&fd, sockopt::Ipv6V6Only, &v6only)?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(*a))?;
        }
    }
    listen(&fd, backlog(n))?;
    Ok(fd)
}

fn bind_unix(path: &Path, n: u32, perms: Option<&str>) -> io::Result<OwnedFd> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "path exists and is not a socket",
            ));
        }
        // A socket file nobody answers on is left over from a previous run.
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(io::Error::new(io::ErrorKind::AddrInUse, "socket is in use")),
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    if let Some(p) = perms {
        let mode = u32::from_str_radix(p.trim(), 8).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("server.socket-perms: not octal: {p}"),
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let fd = OwnedFd::from(l);
    // listen() again sets the configured backlog (std uses 128).
    listen(&fd, backlog(n))?;
    Ok(fd)
}

/// lighttpd prints listeners as "host:port" / "[v6]:port" / the path.
pub fn describe(addr: &ListenAddr) -> String {
    match addr {
        ListenAddr::Tcp(a) => a.to_string(),
        ListenAddr::Unix(p) => p.display().to_string(),
    }
}

fn same_addr(a: &ListenAddr, b: &ListenAddr) -> bool {
    match (a, b) {
        (ListenAddr::Tcp(x), ListenAddr::Tcp(y)) => x.ip() == y.ip() && x.port() == y.port(),
        _ => a == b,
    }
}

impl ListenerSet {
    /// Make sure every listener of `config` is bound; returns the addresses newly
    /// bound (so a failed reload can close them again). On error nothing new stays open.
    pub fn ensure(&mut self, config: &Config) -> Result<Vec<ListenAddr>, String> {
        let mut fresh = Vec::new();
        for l in &config.listeners {
            // Its address is only a port until wick_conf::resolve_listeners ran:
            // never bind that (it would be every address).
            if let Some(h) = &l.host {
                return Err(format!(
                    "can't bind to socket: {}: \"{h}\" is not resolved",
                    l.spec
                ));
            }
            let n = l.socket.listen_backlog;
            if let Some(b) = self.bound.get(&l.addr) {
                // Still wanted: same fd, so its queue survives. Apply a changed backlog
                // and defer-accept (not on sockets systemd passed: its own settings).
                let _ = listen(&b.fd, backlog(n));
                if matches!(l.addr, ListenAddr::Tcp(_)) && !self.inherited.contains(&l.addr) {
                    let _ = set_defer_accept(b.fd.as_raw_fd(), l.socket.defer_accept);
                }
                continue;
            }
            let r = match &l.addr {
                ListenAddr::Tcp(a) => bind_tcp(a, n, l.socket.set_v6only, l.socket.defer_accept)
                    .map(|fd| Bound { fd, unlink: None }),
                ListenAddr::Unix(p) => {
                    bind_unix(p, n, l.socket.socket_perms.as_deref()).map(|fd| {
                        // Absolute, so that it is removed even after the daemon's chdir("/").
                        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                        Bound {
                            fd,
                            unlink: Some(abs),
                        }
                    })
                }
            };
            match r {
                Ok(b) => {
                    self.bound.insert(l.addr.clone(), b);
                    fresh.push(l.addr.clone());
                }
                Err(e) => {
                    for a in &fresh {
                        self.close(a);
                    }
                    return Err(format!("can't bind to socket: {} {e}", describe(&l.addr)));
                }
            }
        }
        Ok(fresh)
    }

    /// The fds for `config.listeners`, in order.
    pub fn fds_for<'a>(&'a self, config: &Config) -> Result<Vec<BorrowedFd<'a>>, String> {
        config
            .listeners
            .iter()
            .map(|l| {
                self.bound
                    .get(&l.addr)
                    .map(|b| b.fd.as_fd())
                    .ok_or_else(|| format!("listener {} is not bound", describe(&l.addr)))
            })
            .collect()
    }

    pub fn close(&mut self, addr: &ListenAddr) {
        if let Some(b) = self.bound.remove(addr) {
            drop(b.fd);
            if let Some(p) = b.unlink {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Close every listener not in `keep`.
    pub fn retain(&mut self, keep: &[&ListenAddr]) {
        let gone: Vec<ListenAddr> = self
            .bound
            .keys()
            .filter(|a| !keep.contains(a))
            .cloned()
            .collect();
        for a in gone {
            self.close(&a);
        }
    }

    pub fn close_all(&mut self) {
        self.retain(&[]);
    }

    /// systemd socket activation (LISTEN_PID/LISTEN_FDS): take the inherited
    /// sockets. [`ListenerSet::apply_inherited`] then fits each config to them.
    pub fn adopt_inherited(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
        for fd in fds {
            let addr = local_addr(fd.as_raw_fd())
                .map_err(|e| format!("socket activation: fd {}: {e}", fd.as_raw_fd()))?;
            self.inherited.push(addr.clone());
            self.bound.insert(addr, Bound { fd, unlink: None });
        }
        Ok(())
    }

    /// With inherited sockets, at start and at every reload: each one that matches
    /// a configured listener serves it; the others are added as listeners with the
    /// global socket options. When the config sets neither server.bind nor
    /// server.port, its default listener is dropped, so nothing but the inherited
    /// sockets (and `$SERVER["socket"]` blocks) is served.
    pub fn apply_inherited(&self, config: &mut Config) {
        if self.inherited.is_empty() {
            return;
        }
        let global = config
            .listeners
            .iter()
            .find(|l| l.block.is_none())
            .map(|l| l.socket.clone())
            .unwrap_or_default();
        if !explicit_global_listener(config) {
            config.listeners.retain(|l| l.block.is_some());
        }
        for addr in &self.inherited {
            match config
                .listeners
                .iter_mut()
                .find(|l| same_addr(&l.addr, addr))
            {
                // The inherited socket's own address is the key it is kept under.
                Some(l) => l.addr = addr.clone(),
                None => config.listeners.push(Listener {
                    addr: addr.clone(),
                    spec: describe(addr),
                    block: None,
                    socket: global.clone(),
                    host: None,
                }),
            }
        }
    }
}

/// Did the global scope set server.bind or server.port?
fn explicit_global_listener(config: &Config) -> bool {
    config.blocks.first().is_some_and(|b| {
        b.settings
            .iter()
            .any(|s| s.key == "server.bind" || s.key == "server.port")
    })
}

fn local_addr(fd: RawFd) -> io::Result<ListenAddr> {
    let ss: SockaddrStorage = getsockname(fd)?;
    if let Some(a) = ss.as_sockaddr_in() {
        return Ok(ListenAddr::Tcp(SocketAddr::V4((*a).into())));
    }
    if let Some(a) = ss.as_sockaddr_in6() {
        return Ok(ListenAddr::Tcp(SocketAddr::V6((*a).into())));
    }
    if let Some(u) = ss.as_unix_addr() {
        if let Some(p) = u.path() {
            return Ok(ListenAddr::Unix(p.to_path_buf()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a TCP or unix path socket",
    ))
}

/// The sockets systemd passed, when LISTEN_PID is this process (lighttpd also
/// accepts "parent:PPID"). Marks them close-on-exec and removes the variables so
/// children do not see them.
pub fn inherited_fds() -> Vec<OwnedFd> {
    let pid_ok = match std::env::var("LISTEN_PID") {
        Ok(p) => match p.strip_prefix("parent:") {
            Some(pp) => pp.parse::<u32>().ok() == Some(std::os::unix::process::parent_id()),
            None => p.parse::<u32>().ok() == Some(std::process::id()),
        },
        Err(_) => false,
    };
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    if !pid_ok || n <= 0 {
        return Vec::new();
    }
    const SD_LISTEN_FDS_START: RawFd = 3;
    (SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + n.min(1024))
        .filter_map(|fd| {
            // SAFETY: fcntl on a plain fd number; F_SETFD fails harmlessly (EBADF)
            // when it is not open. An open one was handed to us by systemd
            // (LISTEN_PID matched) and nothing in this process owns it yet.
            unsafe {
                if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
                    return None;
                }
                Some(OwnedFd::from_raw_fd(fd))
            }
        })
        .collect()
}
