//! The socket to one backend: a non-blocking connect (TCP or unix stream), its
//! completion seen as the first writable edge (SO_ERROR), then reads and writes.
//! Registered edge-triggered for both directions once, under the connection's
//! gateway token, so that its readiness steps the connection's handler; closing
//! it takes it out of the poll set.

use super::config::Addr;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};

/// A connected (or connecting) backend socket.
#[derive(Debug)]
pub enum Backend {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Backend {
    /// Start a connect (EINPROGRESS is not an error); registered with `reg`.
    pub fn connect(addr: &Addr, reg: &Registry, token: Token) -> io::Result<Backend> {
        let mut b = match addr {
            Addr::Tcp(sa) => {
                let s = TcpStream::connect(*sa)?;
                // Records are written whole; no Nagle wait for the last one.
                let _ = s.set_nodelay(true);
                Backend::Tcp(s)
            }
            Addr::Unix(p) => Backend::Unix(UnixStream::connect(p)?),
        };
        let i = Interest::READABLE | Interest::WRITABLE;
        match &mut b {
            Backend::Tcp(s) => reg.register(s, token, i)?,
            Backend::Unix(s) => reg.register(s, token, i)?,
        }
        Ok(b)
    }

    /// After a writable edge: Ok(true) connected, Ok(false) still connecting, Err
    /// the connect failed.
    pub fn connected(&self) -> io::Result<bool> {
        let err = match self {
            Backend::Tcp(s) => s.take_error()?,
            Backend::Unix(s) => s.take_error()?,
        };
        if let Some(e) = err {
            return Err(e);
        }
        // A connect under way has no error yet and is not writable: a zero-length
        // write tells them apart without sending anything.
        match self.write(&[]) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Backend::Tcp(s) => (&*s).read(buf),
            Backend::Unix(s) => (&*s).read(buf),
        }
    }

    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Backend::Tcp(s) => (&*s).write(buf),
            Backend::Unix(s) => (&*s).write(buf),
        }
    }
}
