//! A client connection's byte stream: the seam between HTTP and the wire. Plain
//! TCP (or a unix socket, or `wickd -1`'s pipe pair), or TLS (tls/session.rs)
//! behind the same calls, its sendfile reading the file into the TLS layer.
//! EINTR and EAGAIN are handled below it (sys.rs). An HTTP/2 stream's exchange
//! has a third kind: an in-memory pipe to its connection (h2/pipe.rs).

use crate::h2::pipe::Pipe;
use crate::mods::status::count;
use crate::sys;
use crate::tls::session::Session;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Unsent bytes the kernel may queue on a connection sending a large body.
const NOTSENT_LOWAT: libc::c_int = 32 << 10;

pub struct Transport {
    /// None for an HTTP/2 stream (`wfd` is then its connection's socket, for
    /// getsockname only).
    fd: Option<OwnedFd>,
    /// Write side: the socket itself, or a separate fd (`wickd -1` on a pipe pair).
    wfd: RawFd,
    is_socket: bool,
    /// TLS on this connection (a listener with ssl.engine).
    pub tls: Option<Box<Session>>,
    /// The TLS peer closed (close_notify or FIN) in a read that also brought
    /// data: the connection must read again, no edge will say so.
    pub peer_closed: bool,
    /// An HTTP/2 stream's exchange reads and writes this instead of a socket.
    pub pipe: Option<Box<Pipe>>,
}

impl Transport {
    pub fn new(fd: OwnedFd, is_socket: bool) -> Transport {
        let wfd = fd.as_raw_fd();
        Transport {
            fd: Some(fd),
            wfd,
            is_socket,
            tls: None,
            peer_closed: false,
            pipe: None,
        }
    }

    /// The byte stream of an HTTP/2 stream on the connection whose socket is
    /// `socket` (borrowed: the stream lives inside that connection).
    pub fn stream(socket: RawFd, pipe: Box<Pipe>) -> Transport {
        Transport {
            fd: None,
            wfd: socket,
            is_socket: false,
            tls: None,
            peer_closed: false,
            pipe: Some(pipe),
        }
    }

    /// Write to `wfd` instead (it must live as long as this transport).
    pub fn write_to(&mut self, wfd: RawFd) {
        self.wfd = wfd;
    }

    /// The read side, for the poller and getsockname.
    pub fn fd(&self) -> RawFd {
        self.fd.as_ref().map_or(self.wfd, |f| f.as_raw_fd())
    }

    /// A socket (not a pipe): send flags, shutdown and socket options apply.
    pub fn is_socket(&self) -> bool {
        self.is_socket
    }

    /// A TLS connection waiting for its ClientHello.
    pub fn tls_accepting(&self) -> bool {
        self.pipe.is_none() && self.tls.as_deref().is_some_and(Session::accepting)
    }

    /// Bytes of ours wait for the socket to take them (TLS records): the poller
    /// must report writability whatever the HTTP state.
    pub fn wants_write(&self) -> bool {
        self.pipe.is_none() && self.tls.as_deref().is_some_and(Session::wants_write)
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = self.pipe.as_deref_mut() {
            return p.read(buf);
        }
        let fd = self.fd();
        let n = match self.tls.as_deref_mut() {
            Some(t) => {
                let (n, closed) = t.read(fd, buf)?;
                self.peer_closed |= closed;
                n
            }
            None => sys::read(fd, buf)?,
        };
        count::bytes_in(n);
        Ok(n)
    }

    /// Write some of `b`; `more`: further bytes follow at once (MSG_MORE).
    pub fn write(&mut self, b: &[u8], more: bool) -> io::Result<usize> {
        if let Some(p) = self.pipe.as_deref_mut() {
            // An HTTP/2 stream: counted when its connection writes the frames.
            p.output.put(b);
            return Ok(b.len());
        }
        let n = if let Some(t) = self.tls.as_deref_mut() {
            t.write(self.wfd, b, more)?
        } else if self.is_socket {
            sys::send(self.wfd, b, more)?
        } else {
            sys::write(self.wfd, b)?
        };
        count::bytes_out(n);
        Ok(n)
    }

    /// Send up to `n` bytes of `file` from `off` without copying them through us.
    pub fn sendfile(&mut self, file: RawFd, off: u64, n: usize) -> io::Result<usize> {
        if self.pipe.is_some() {
            // Out::flush hands a stream its file ranges whole (Pipe::take).
            return Err(io::ErrorKind::Unsupported.into());
        }
        let n = match self.tls.as_deref_mut() {
            Some(t) => t.send_file(self.wfd, file, off, n)?,
            None => sys::sendfile(self.wfd, file, off, n)?,
        };
        count::bytes_out(n);
        Ok(n)
    }

    /// Everything accepted by `write`/`sendfile` is on the wire. Ok(false): the
    /// socket is full (TLS records wait).
    pub fn finish(&mut self) -> io::Result<bool> {
        if self.pipe.is_some() {
            return Ok(true);
        }
        match self.tls.as_deref_mut() {
            Some(t) => t.flush(self.wfd),
            None => Ok(true),
        }
    }

    /// A clean end of a TLS connection about to be closed: close_notify, so the
    /// client can tell a complete response from a cut one (nothing for plain TCP).
    pub fn close_notify(&mut self) {
        if self.pipe.is_some() {
            return;
        }
        if let Some(t) = self.tls.as_deref_mut() {
            t.close(self.wfd);
        }
    }

    /// Our side is done (the FIN goes out); false when there is no such thing
    /// (a pipe), and the caller just closes.
    pub fn shutdown_write(&mut self) -> bool {
        if self.pipe.is_some() {
            return false;
        }
        if let Some(t) = self.tls.as_deref_mut() {
            t.close(self.wfd);
        }
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
