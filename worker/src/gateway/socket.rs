//! The socket to one backend: a non-blocking connect (TCP or unix stream; a unix
//! connect completes or fails at once), then reads and writes. Registered under
//! the connection's gateway token, so that its readiness steps the connection's
//! handler; its interest is derived from what the handler waits for (`sync`):
//! readable always, writable only while a connect is under way or bytes wait
//! that the socket refused (a writable socket would otherwise wake the loop for
//! nothing). Closing it takes it out of the poll set.
//!
//! A FastCGI connection on a unix socket peeks (`peek_reads`): an answer stays
//! on the socket until our next write there, so that taking it does not wake
//! the backend, asleep in read(2) by then, for nothing.
//!
//! [`Idle`]: FastCGI connections whose request ended (FCGI_KEEP_CONN), for the
//! next request of the same loop turn. They are closed before the worker
//! sleeps: a backend that serves one connection at a time (libfcgi, php-cgi)
//! is never held by a worker that is not using it, so no other worker's
//! request waits in the backend's listen queue for it.

use super::config::Addr;
use crate::sys;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

#[derive(Debug)]
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A connected (or connecting) backend socket.
#[derive(Debug)]
pub struct Backend {
    sock: Sock,
    token: Token,
    /// The interest registered now.
    writable: bool,
    /// A TCP connect not known to be complete.
    pub connecting: bool,
    /// Reads peek (a kept FastCGI connection on a unix socket, `peek_reads`).
    peeking: bool,
    /// Bytes peeked and not yet taken off the socket.
    owed: usize,
}

impl Backend {
    /// Start a connect (EINPROGRESS is not an error); registered with `reg`.
    pub fn connect(addr: &Addr, reg: &Registry, token: Token) -> io::Result<Backend> {
        let mut b = match addr {
            Addr::Tcp(sa) => {
                let s = TcpStream::connect(*sa)?;
                // Records are written whole; no Nagle wait for the last one.
                let _ = s.set_nodelay(true);
                let mut b = Backend {
                    sock: Sock::Tcp(s),
                    token,
                    writable: true,
                    connecting: true,
                    peeking: false,
                    owed: 0,
                };
                // A connect that completed at once (loopback, as a rule) is
                // registered for reading only: no second epoll_ctl to drop the
                // writable interest.
                if b.check_connected()? {
                    b.writable = false;
                }
                b
            }
            Addr::Unix(p) => Backend {
                sock: Sock::Unix(UnixStream::connect(p)?),
                token,
                writable: false,
                connecting: false,
                peeking: false,
                owed: 0,
            },
        };
        let i = b.interest();
        match &mut b.sock {
            Sock::Tcp(s) => reg.register(s, token, i)?,
            Sock::Unix(s) => reg.register(s, token, i)?,
        }
        Ok(b)
    }

    fn interest(&self) -> Interest {
        if self.writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Register the interest the handler's state calls for: writable while a
    /// connect is under way or `blocked` (a write met a full socket).
    pub fn sync(&mut self, reg: &Registry, blocked: bool) -> io::Result<()> {
        let want = self.connecting || blocked;
        if want == self.writable {
            return Ok(());
        }
        self.writable = want;
        let (i, t) = (self.interest(), self.token);
        match &mut self.sock {
            Sock::Tcp(s) => reg.reregister(s, t, i),
            Sock::Unix(s) => reg.reregister(s, t, i),
        }
    }

    /// After a writable edge: Ok(true) connected, Ok(false) still connecting, Err
    /// the connect failed.
    pub fn check_connected(&mut self) -> io::Result<bool> {
        if !self.connecting {
            return Ok(true);
        }
        // A zero-length write tells the three apart without sending anything: a
        // connect under way is not writable yet (EAGAIN, ENOTCONN), a failed one
        // reports its error (the socket's pending error, as SO_ERROR would give
        // it: one call instead of two), a complete one takes the nothing.
        match self.write(&[]) {
            Ok(_) => {
                self.connecting = false;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Steps another connection's handler from now on (a kept connection
    /// taken for a new request): its interest is registered again under
    /// `token`, which also reports what is already readable.
    pub fn retoken(&mut self, reg: &Registry, token: Token) -> io::Result<()> {
        if token == self.token && !self.writable {
            return Ok(());
        }
        self.token = token;
        self.writable = false;
        let i = self.interest();
        match &mut self.sock {
            Sock::Tcp(s) => reg.reregister(s, token, i),
            Sock::Unix(s) => reg.reregister(s, token, i),
        }
    }

    /// A kept connection may carry a request: the backend has not closed it
    /// (its FIN, or a reset, would be read now) nor sent anything. A unix
    /// socket is not read for it: one the backend closed fails the write
    /// (EPIPE), and one closed with the request unread fails the read
    /// (ECONNRESET), both before the backend could have seen the request; a
    /// TCP connection can read as merely ended (a FIN before the reset).
    pub fn may_carry(&mut self) -> bool {
        if let Sock::Unix(_) = self.sock {
            return true;
        }
        let mut b = [0u8; 1];
        matches!(self.read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Reads on a unix socket leave the answer in it until the next write
    /// (or the close): taking bytes off a unix socket wakes its writer if it
    /// sleeps on the socket, even in read(2) (unix_write_space wakes every
    /// sleeper, not only POLLOUT ones), and a FastCGI backend sleeps in read
    /// on a kept connection as soon as it has answered. Taken after our next
    /// write, which wakes it anyway, the bytes wake nobody.
    pub fn peek_reads(&mut self) {
        if let Sock::Unix(s) = &self.sock {
            self.peeking = sys::set_peek_offset(s.as_raw_fd());
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.sock {
            Sock::Tcp(s) => (&*s).read(buf),
            Sock::Unix(s) if self.peeking => match sys::recv_peek(s.as_raw_fd(), buf) {
                Ok(n) => {
                    self.owed += n;
                    Ok(n)
                }
                Err(e) => {
                    // The answer goes on later: the backend may wait for room.
                    if e.kind() == io::ErrorKind::WouldBlock {
                        self.settle(buf);
                    }
                    Err(e)
                }
            },
            Sock::Unix(s) => (&*s).read(buf),
        }
    }

    /// Take the peeked bytes off the socket, through `scratch`.
    fn settle(&mut self, scratch: &mut [u8]) {
        let Sock::Unix(s) = &self.sock else {
            return;
        };
        while self.owed > 0 && !scratch.is_empty() {
            let n = self.owed.min(scratch.len());
            match (&*s).read(&mut scratch[..n]) {
                Ok(0) | Err(_) => break,
                Ok(got) => self.owed -= got,
            }
        }
        self.owed = 0;
    }

    /// `settle` where no buffer is at hand: one the size of what is owed (an
    /// answer peeked whole is at most one 64 KiB `rbuf`), so one read, and no
    /// fixed buffer cleared for a few hundred bytes.
    fn settle_here(&mut self) {
        if self.owed > 0 {
            self.settle(&mut vec![0u8; self.owed.min(64 << 10)]);
        }
    }

    /// Our side is done (a tunnel's client sent its FIN): the backend reads the
    /// end, and may still answer.
    pub fn shutdown_write(&self) {
        let _ = match &self.sock {
            Sock::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Sock::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &self.sock {
            Sock::Tcp(s) => (&*s).write(buf)?,
            Sock::Unix(s) => (&*s).write(buf)?,
        };
        if n > 0 {
            // The backend is awake for these bytes: no sleeper to wake.
            self.settle_here();
        }
        Ok(n)
    }
}

impl Drop for Backend {
    /// A backend reads the end of its connection, not a reset (what a close
    /// with unread bytes gives it).
    fn drop(&mut self) {
        self.settle_here();
    }
}

/// Kept FastCGI connections, by backend address, until the worker sleeps.
#[derive(Debug, Default)]
pub struct Idle {
    kept: Vec<(Addr, Backend)>,
}

/// Kept connections at most (more are closed at once).
const IDLE_MAX: usize = 16;

impl Idle {
    /// Keep `b`, connected to `addr`, for a next request.
    pub fn park(&mut self, addr: &Addr, b: Backend) {
        if self.kept.len() < IDLE_MAX {
            self.kept.push((addr.clone(), b));
        }
    }

    /// A kept connection to `addr`, the last parked first.
    pub fn take(&mut self, addr: &Addr) -> Option<Backend> {
        let i = self.kept.iter().rposition(|(a, _)| a == addr)?;
        Some(self.kept.swap_remove(i).1)
    }

    /// Before the worker sleeps: every kept connection closes.
    pub fn close_all(&mut self) {
        self.kept.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Kept connections are found by address, the last parked first, and all
    /// close at once; a TCP one the backend closed is not offered as open.
    #[test]
    fn idle_connections_by_address() {
        let poll = mio::Poll::new().expect("poll");
        let reg = poll.registry();
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = Addr::Tcp(l.local_addr().expect("addr"));
        let other = Addr::Tcp("127.0.0.1:9".parse().expect("addr"));
        let a = Backend::connect(&addr, reg, Token(1)).expect("connect");
        let b = Backend::connect(&addr, reg, Token(2)).expect("connect");
        let (peer_a, _) = l.accept().expect("accept");
        let (_peer_b, _) = l.accept().expect("accept");
        let mut idle = Idle::default();
        idle.park(&addr, a);
        idle.park(&addr, b);
        assert!(idle.take(&other).is_none());
        let mut got = idle.take(&addr).expect("kept");
        assert_eq!(got.token, Token(2), "the last parked first");
        got.retoken(reg, Token(7)).expect("retoken");
        assert_eq!(got.token, Token(7));
        let mut first = idle.take(&addr).expect("kept");
        assert!(first.may_carry(), "open and silent");
        drop(peer_a);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!first.may_carry(), "its backend closed it");
        idle.park(&addr, first);
        idle.close_all();
        assert!(idle.take(&addr).is_none());
    }

    fn unsent(s: &std::os::unix::net::UnixStream) -> usize {
        sys::unix_unread(s.as_raw_fd()).expect("SIOCOUTQ")
    }

    /// A peeking connection leaves an answer on the socket until its next
    /// write; mid-answer (nothing more to read yet) it takes what it read, as
    /// the backend may wait for room; dropped, it takes the rest before the
    /// close, so the backend reads an end, not a reset.
    #[test]
    fn peeked_bytes_are_taken_after_the_next_write() {
        use std::io::{Read, Write};
        let poll = mio::Poll::new().expect("poll");
        let path = std::env::temp_dir().join(format!("wick-peek-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let addr = Addr::Unix(path.clone());
        let mut b = Backend::connect(&addr, poll.registry(), Token(1)).expect("connect");
        b.peek_reads();
        let (mut peer, _) = l.accept().expect("accept");
        let _ = std::fs::remove_file(&path);
        let mut buf = [0u8; 64];

        peer.write_all(b"answer").expect("write");
        assert_eq!(b.read(&mut buf).expect("read"), 6);
        assert_eq!(&buf[..6], b"answer");
        assert!(unsent(&peer) > 0, "taken at once");
        assert_eq!(b.write(b"next").expect("write"), 4);
        assert_eq!(unsent(&peer), 0, "not taken after the write");

        peer.write_all(b"more").expect("write");
        assert_eq!(b.read(&mut buf).expect("read"), 4);
        assert_eq!(&buf[..4], b"more", "a peek went back");
        assert!(matches!(b.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        assert_eq!(unsent(&peer), 0, "mid-answer bytes left on the socket");

        peer.write_all(b"tail").expect("write");
        assert_eq!(b.read(&mut buf).expect("read"), 4);
        drop(b);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).expect("an end, not a reset");
        assert_eq!(got, b"next");
    }
}
