//! The worker's system calls on sockets, pipes and the poller: each libc call
//! once, EINTR retried in one place, EAGAIN reported as `WouldBlock`. Nothing
//! else in the request path calls libc for I/O (the transport and the gateway
//! pipes go through here).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Run `call` until it is not interrupted by a signal; its result as a count.
fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// read(2).
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid and writable for its length; fd is the caller's.
    retry(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// write(2) (a pipe, or a socket that is not ours to flag).
pub fn write(fd: RawFd, b: &[u8]) -> io::Result<usize> {
    // SAFETY: b is valid and readable for its length; fd is the caller's.
    retry(|| unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) })
}

/// SO_PEEK_OFF 0 on a socket: MSG_PEEK reads go on from where the last ended.
pub fn set_peek_offset(fd: RawFd) -> bool {
    let zero: libc::c_int = 0;
    // SAFETY: setsockopt on the caller's socket, an int option of its size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&zero as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// What a unix stream socket sent that its peer has not taken yet
/// (SIOCOUTQ): the tests see what wickd leaves on a backend's socket.
#[cfg(test)]
pub fn unix_unread(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int to the pointer given.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// recv(2) with MSG_PEEK: the bytes stay on the socket.
pub fn recv_peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid and writable for its length; fd is the caller's socket.
    retry(|| unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) })
}

/// send(2) without SIGPIPE; `more`: MSG_MORE (more bytes follow at once, so the
/// kernel may hold a partial segment).
pub fn send(fd: RawFd, b: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: b is valid and readable for its length; fd is the caller's socket.
    retry(|| unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), flags) })
}

/// writev(2): several buffers in one call (TLS records queued by rustls).
/// SIGPIPE is ignored in the worker, so a closed peer is an EPIPE error.
pub fn writev(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    // SAFETY: IoSlice is ABI-compatible with iovec; each points at a live
    // buffer for its length; at most UIO_MAXIOV entries.
    retry(|| unsafe { libc::writev(fd, bufs.as_ptr().cast(), n) })
}

/// pread(2): file bytes from `off` without moving the file offset.
pub fn pread(fd: RawFd, buf: &mut [u8], off: u64) -> io::Result<usize> {
    // SAFETY: buf is valid and writable for its length; fd is the caller's.
    retry(|| unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off as libc::off_t) })
}

/// sendfile(2) of up to `n` bytes of `file` from `off`.
pub fn sendfile(out: RawFd, file: RawFd, off: u64, n: usize) -> io::Result<usize> {
    let mut off = off as libc::off_t;
    // SAFETY: both fds are open; off is a valid off_t the kernel updates.
    retry(|| unsafe { libc::sendfile(out, file, &mut off, n) })
}

/// shutdown(SHUT_WR): our side is done; the peer sees the FIN.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: shutdown on the caller's socket; failure (not a socket) is harmless.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// An int socket option (the ones the seccomp filter allows: TCP_NOTSENT_LOWAT).
pub fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: setsockopt on the caller's socket, an int option of its size. It
    // fails harmlessly on a unix socket or a pipe.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// O_NONBLOCK in one call (FIONBIO) rather than fcntl's get and set: three per
/// CGI request for the pipes the spawner passes.
pub fn set_nonblocking(fd: RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: FIONBIO on the caller's fd reads one int from a valid pointer.
    unsafe {
        libc::ioctl(fd, libc::FIONBIO, &on);
    }
}

/// An IPv4 or IPv6 address out of a sockaddr_storage (None for other families).
fn decode(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))))
        }
        _ => None,
    }
}

/// accept4(2), non-blocking and close-on-exec; the peer's IP and port (the
/// unspecified address and 0 for a unix socket).
pub fn accept4(lfd: RawFd) -> io::Result<(OwnedFd, (IpAddr, u16))> {
    // SAFETY: a zeroed sockaddr_storage is a valid out-buffer.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: ss/len describe a writable buffer of the right size.
    let r = unsafe { libc::accept4(lfd, p, &mut len, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(r) };
    let peer = decode(&ss).map_or((crate::site::unspecified(), 0), |a| (a.ip(), a.port()));
    Ok((fd, peer))
}

/// getsockname(2): the local address of a connection.
pub fn sockname(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: a zeroed sockaddr_storage is a valid out-buffer.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: ss/len describe a writable buffer of the right size.
    let r = unsafe { libc::getsockname(fd, p, &mut len) };
    if r != 0 {
        return None;
    }
    decode(&ss)
}

/// Is `fd` a socket (`wickd -1` may be handed one, or a pipe)?
pub fn is_socket(fd: RawFd) -> bool {
    crate::stat_cache::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// Add a listening socket to the poller with EPOLLEXCLUSIVE (mio has no such
/// option), so one connection wakes one worker.
pub fn epoll_add_exclusive(ep: RawFd, fd: RawFd, token: usize) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
        u64: token as u64,
    };
    // SAFETY: ep is mio's epoll fd, fd an open listening socket, ev a valid event.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Remove a listening socket from the poller.
pub fn epoll_del(ep: RawFd, fd: RawFd) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: as above; the event argument is ignored for DEL.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, &mut ev) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// fstatat(2) of `name` in the directory `dirfd`; `follow`: through a symlink.
pub fn stat_at(dirfd: RawFd, name: &std::ffi::CStr, follow: bool) -> Option<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: name is NUL-terminated; st is writable; dirfd is the caller's.
    let r = unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, flags) };
    (r == 0).then_some(st)
}

/// Every account of the passwd database (NSS included) but root's: (name, home).
/// Read before the sandbox, which hides /etc.
pub fn passwd_homes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    // SAFETY: getpwent walks a static buffer; the worker has one thread at start-up
    // and every field is copied out before the next call.
    unsafe {
        libc::setpwent();
        loop {
            let pw = libc::getpwent();
            if pw.is_null() {
                break;
            }
            if (*pw).pw_uid == 0 || (*pw).pw_name.is_null() || (*pw).pw_dir.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
            let dir = std::ffi::CStr::from_ptr((*pw).pw_dir)
                .to_string_lossy()
                .into_owned();
            out.push((name, dir));
        }
        libc::endpwent();
    }
    out
}

/// Whole seconds of a clock (the coarse ones: no syscall through the vDSO).
pub fn clock_secs(id: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; clock_gettime only writes into it.
    let r = unsafe { libc::clock_gettime(id, &mut ts) };
    (r == 0).then_some(ts.tv_sec.max(0) as u64)
}

/// Give the allocator's free pages back to the kernel: start-up reads the whole
/// configuration and keeps a fraction of it (20,000 sites leave megabytes freed
/// between live allocations, which would stay resident otherwise).
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas; the worker has one thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Signals the worker ignores: SIGPIPE (writes to a closed peer return EPIPE; sendfile
/// and pipe writes cannot ask for MSG_NOSIGNAL), and the ones a terminal or a stray
/// kill sends to the whole group (the master tells the workers what to do).
pub fn ignore_signals() {
    // SAFETY: setting dispositions to SIG_IGN, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
    }
}

/// mkdirat(2) of `name` in `dirfd` (mod_deflate's cache subdirectories).
pub fn mkdirat(dirfd: RawFd, name: &std::ffi::CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; dirfd is the caller's directory.
    retry(|| unsafe { libc::mkdirat(dirfd, name.as_ptr(), mode) as isize }).map(|_| ())
}

/// renameat2(2) with no flags, within one directory: an atomic replace.
pub fn rename_in(dirfd: RawFd, from: &std::ffi::CStr, to: &std::ffi::CStr) -> io::Result<()> {
    // The system call itself: glibc's renameat2 with no flags calls renameat,
    // which the seccomp allowlist does not have.
    // SAFETY: both names are NUL-terminated; dirfd is the caller's directory.
    retry(|| unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dirfd,
            from.as_ptr(),
            dirfd,
            to.as_ptr(),
            0 as libc::c_uint,
        ) as isize
    })
    .map(|_| ())
}

/// unlinkat(2) of a file in `dirfd`.
pub fn unlink_in(dirfd: RawFd, name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; dirfd is the caller's directory.
    retry(|| unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) as isize }).map(|_| ())
}

/// The 1-minute load average from sysinfo(2) (/proc/loadavg is out of the
/// sandbox's reach).
pub fn loadavg1() -> Option<f64> {
    // SAFETY: a zeroed sysinfo is a valid out-buffer.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: si is writable and of the size the kernel fills.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return None;
    }
    // loads are fixed point with SI_LOAD_SHIFT (16) fraction bits.
    Some(si.loads[0] as f64 / 65536.0)
}

/// An unnamed temporary file in `dirfd` (open(2) with O_TMPFILE, mode 0600): it
/// has no name anyone could open, and it is gone with its last fd.
pub fn open_tmpfile(dirfd: RawFd) -> io::Result<OwnedFd> {
    let flags = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: the name is a NUL-terminated literal; dirfd is the caller's directory.
    let fd = retry(|| unsafe { libc::openat(dirfd, c".".as_ptr(), flags, 0o600) as isize })?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A new file `name` in `dirfd` (O_EXCL, no symlink followed, mode 0600): where
/// the file system has no O_TMPFILE; the caller unlinks it at once.
pub fn create_excl_in(dirfd: RawFd, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: name is NUL-terminated; dirfd is the caller's directory.
    let fd = retry(|| unsafe { libc::openat(dirfd, name.as_ptr(), flags, 0o600) as isize })?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Let the other runnable processes on this CPU go first (before a poll that
/// would otherwise sleep: what they do may be the next events).
pub fn yield_now() {
    // SAFETY: sched_yield takes no arguments and touches no memory of ours.
    unsafe { libc::sched_yield() };
}
