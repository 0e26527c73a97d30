//! A client connection's byte stream: the seam between HTTP and the wire. Plain
//! TCP (or a unix socket, or `wickd -1`'s pipe pair) today; TLS will be a second
//! kind behind the same calls, its sendfile falling back to read and write
//! through the TLS layer. EINTR and EAGAIN are handled below it (sys.rs).

use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Unsent bytes the kernel may queue on a connection sending a large body.
const NOTSENT_LOWAT: libc::c_int = 32 << 10;

#[derive(Debug)]
pub struct Transport {
    fd: OwnedFd,
    /// Write side: the socket itself, or a separate fd (`wickd -1` on a pipe pair).
    wfd: RawFd,
    is_socket: bool,
}

impl Transport {
    pub fn new(fd: OwnedFd, is_socket: bool) -> Transport {
        let wfd = fd.as_raw_fd();
        Transport { fd, wfd, is_socket }
    }

    /// Write to `wfd` instead (it must live as long as this transport).
    pub fn write_to(&mut self, wfd: RawFd) {
        self.wfd = wfd;
    }

    /// The read side, for the poller and getsockname.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A socket (not a pipe): send flags, shutdown and socket options apply.
    pub fn is_socket(&self) -> bool {
        self.is_socket
    }

    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.fd(), buf)
    }

    /// Write some of `b`; `more`: further bytes follow at once (MSG_MORE).
    pub fn write(&self, b: &[u8], more: bool) -> io::Result<usize> {
        if self.is_socket {
            sys::send(self.wfd, b, more)
        } else {
            sys::write(self.wfd, b)
        }
    }

    /// Send up to `n` bytes of `file` from `off` without copying them through us.
    pub fn sendfile(&self, file: RawFd, off: u64, n: usize) -> io::Result<usize> {
        sys::sendfile(self.wfd, file, off, n)
    }

    /// Our side is done (the FIN goes out); false when there is no such thing
    /// (a pipe), and the caller just closes.
    pub fn shutdown_write(&self) -> bool {
        if self.is_socket {
            sys::shutdown_write(self.fd());
        }
        self.is_socket
    }

    /// Let the socket hold only NOTSENT_LOWAT unsent bytes beyond those in
    /// flight: a large body then leaves in our own sendfile calls, and a client
    /// that stops reading pins no megabytes of kernel memory.
    pub fn limit_unsent(&self) {
        if self.is_socket {
            sys::set_int_option(
                self.fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                NOTSENT_LOWAT,
            );
        }
    }
}
