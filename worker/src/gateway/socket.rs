//! The socket to one backend: a non-blocking connect (TCP or unix stream; a unix
//! connect completes or fails at once), then reads and writes. Registered under
//! the connection's gateway token, so that its readiness steps the connection's
//! handler; its interest is derived from what the handler waits for (`sync`):
//! readable always, writable only while a connect is under way or bytes wait
//! that the socket refused (a writable socket would otherwise wake the loop for
//! nothing). Closing it takes it out of the poll set.
//!
//! [`Idle`]: FastCGI connections whose request ended (FCGI_KEEP_CONN), for the
//! next request of the same loop turn. They are closed before the worker
//! sleeps: a backend that serves one connection at a time (libfcgi, php-cgi)
//! is never held by a worker that is not using it, so no other worker's
//! request waits in the backend's listen queue for it.

use super::config::Addr;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};

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
    pub fn may_carry(&self) -> bool {
        if let Sock::Unix(_) = self.sock {
            return true;
        }
        let mut b = [0u8; 1];
        matches!(self.read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.sock {
            Sock::Tcp(s) => (&*s).read(buf),
            Sock::Unix(s) => (&*s).read(buf),
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

    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.sock {
            Sock::Tcp(s) => (&*s).write(buf),
            Sock::Unix(s) => (&*s).write(buf),
        }
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
        let first = idle.take(&addr).expect("kept");
        assert!(first.may_carry(), "open and silent");
        drop(peer_a);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!first.may_carry(), "its backend closed it");
        idle.park(&addr, first);
        idle.close_all();
        assert!(idle.take(&addr).is_none());
    }
}
