//! One connection's TLS: the ClientHello awaited (its SNI picks the
//! configuration, as lighttpd evaluates `$HTTP["host"]` at the handshake), then a
//! rustls `ServerConnection` the transport reads and writes plaintext through.

use super::Profile;
use crate::mods::status::count;
use crate::sys;
use rustls::server::{Accepted, Acceptor};
use rustls::ServerConnection;
use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::rc::Rc;

/// Plaintext of a file read into the TLS layer per call (one record's worth).
pub const FILE_CHUNK: usize = 16 << 10;
/// TLS bytes read from the socket per call: a full record and its overhead.
const RAW_CHUNK: usize = 17 << 10;

pub enum Session {
    Hello(Box<Acceptor>),
    /// Handshaking or done, under the profile its ClientHello chose.
    Up(Box<ServerConnection>, Rc<Profile>),
    /// The handshake failed: nothing more goes through.
    Dead,
}

/// The socket as rustls reads and writes it.
struct FdIo(RawFd);

impl Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.0, buf)
    }
}

impl Write for FdIo {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        sys::send(self.0, b, false)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        sys::writev(self.0, bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Hello {
    /// More of the ClientHello is needed.
    Need,
    Ready(Box<Accepted>),
    /// The peer closed before a ClientHello.
    Closed,
    /// Not TLS: a plain HTTP request (no alert is sent, as lighttpd sends none).
    PlainHttp,
    /// Not TLS, or a ClientHello rustls refused (the alert is sent).
    Failed(String),
}

impl Default for Session {
    /// A connection that has sent nothing yet.
    fn default() -> Session {
        Session::Hello(Box::default())
    }
}

impl Session {
    /// Read what has come of the ClientHello.
    pub fn hello(&mut self, fd: RawFd) -> Hello {
        let Session::Hello(acc) = self else {
            return Hello::Failed("no handshake in progress".into());
        };
        loop {
            match acc.read_tls(&mut FdIo(fd)) {
                Ok(0) => return Hello::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Hello::Need,
                Err(e) => return Hello::Failed(e.to_string()),
            }
            match acc.accept() {
                Ok(Some(a)) => return Hello::Ready(Box::new(a)),
                Ok(None) => {}
                Err((e, mut alert)) => {
                    *self = Session::Dead;
                    count::tls(count::TLS_FAILED);
                    // Not TLS at all (a plain HTTP request): lighttpd closes
                    // without a byte; anything else gets rustls's alert.
                    if let rustls::Error::InvalidMessage(
                        rustls::InvalidMessage::InvalidContentType,
                    ) = e
                    {
                        return Hello::PlainHttp;
                    }
                    let _ = alert.write_all(&mut FdIo(fd));
                    return Hello::Failed(e.to_string());
                }
            }
        }
    }

    /// Go on with the handshake under `cfg`.
    pub fn start(&mut self, a: Accepted, profile: Rc<Profile>, fd: RawFd) -> Result<(), String> {
        match a.into_connection(profile.config.clone()) {
            Ok(c) => {
                *self = Session::Up(Box::new(c), profile);
                Ok(())
            }
            Err((e, mut alert)) => {
                let _ = alert.write_all(&mut FdIo(fd));
                *self = Session::Dead;
                count::tls(count::TLS_FAILED);
                Err(e.to_string())
            }
        }
    }

    pub fn connection(&self) -> Option<(&ServerConnection, &Profile)> {
        match self {
            Session::Up(c, p) => Some((c, p)),
            _ => None,
        }
    }

    pub fn accepting(&self) -> bool {
        matches!(self, Session::Hello(_))
    }

    /// TLS bytes wait to be written (handshake, alerts, records).
    pub fn wants_write(&self) -> bool {
        match self {
            Session::Up(c, _) => c.wants_write(),
            _ => false,
        }
    }

    /// Write what rustls holds. Ok(true): nothing left.
    pub fn flush(&mut self, fd: RawFd) -> io::Result<bool> {
        let Session::Up(c, _) = self else {
            return Ok(true);
        };
        while c.wants_write() {
            match c.write_tls(&mut FdIo(fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Plaintext into `buf`. The socket is read into a buffer of ours and fed to
    /// rustls, so that a short read tells, as on a plain connection, that the
    /// socket is empty (edge-triggered: no extra read to see EAGAIN). At most as
    /// many TLS bytes are read as `buf` has room for, so the plaintext always
    /// fits. Ok((n, closed)): n bytes, and whether the peer has closed (its
    /// close_notify or its FIN came, maybe with the data: no edge will follow).
    /// Ok((0, false)) is never returned: that is WouldBlock.
    pub fn read(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        let Session::Up(c, _) = self else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake not done",
            ));
        };
        let shaking = c.is_handshaking();
        let (filled, eof) = RAW.with_borrow_mut(|raw| read_plain(c, fd, buf, raw))?;
        if shaking && !c.is_handshaking() {
            let resumed = c.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            count::tls(if resumed {
                count::TLS_RESUMED
            } else {
                count::TLS_FULL
            });
        }
        // Handshake replies, tickets, alerts go out now (or on the next writable edge).
        self.flush(fd)?;
        if filled > 0 || eof {
            Ok((filled, eof))
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// Take some of `b` as plaintext. With `more`, records are only queued (the
    /// next call sends them together); else they go out now.
    pub fn write(&mut self, fd: RawFd, b: &[u8], more: bool) -> io::Result<usize> {
        if !self.flush(fd)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let Session::Up(c, _) = self else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake not done",
            ));
        };
        let n = c.writer().write(b)?;
        if !more {
            self.flush(fd)?;
        }
        Ok(n)
    }

    /// Up to `n` bytes of `file` from `off`, read into the TLS layer a record at a
    /// time and sent as it goes (records a `write` with `more` queued go with the
    /// first). Ok(0): the file ended early, as sendfile reports it.
    pub fn send_file(&mut self, fd: RawFd, file: RawFd, off: u64, n: usize) -> io::Result<usize> {
        let Session::Up(c, _) = self else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake not done",
            ));
        };
        let mut chunk = [0u8; FILE_CHUNK];
        let mut done = 0;
        let mut ended = false;
        while done < n {
            let want = (n - done).min(FILE_CHUNK);
            let got = sys::pread(file, &mut chunk[..want], off + done as u64)?;
            if got == 0 {
                ended = true;
                break;
            }
            // rustls takes less (or nothing) when its send buffer is full.
            let took = c.writer().write(&chunk[..got])?;
            done += took;
            let mut sent_all = true;
            while c.wants_write() {
                match c.write_tls(&mut FdIo(fd)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        sent_all = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !sent_all {
                break; // the socket is full; what rustls took goes on the next edge
            }
        }
        if done == 0 && !ended {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(done)
    }

    /// close_notify (sent as far as the socket takes it), then the caller's FIN.
    pub fn close(&mut self, fd: RawFd) {
        if let Session::Up(c, _) = self {
            c.send_close_notify();
            let _ = self.flush(fd);
        }
    }
}

thread_local! {
    /// The socket's TLS bytes on their way into rustls: one buffer per worker,
    /// made once (an array on the stack was zeroed, 17 KiB, at every read).
    static RAW: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; RAW_CHUNK].into_boxed_slice());
}

/// `Session::read`'s work: plaintext into `buf` through `raw`. Ok((n, eof)).
fn read_plain(
    c: &mut ServerConnection,
    fd: RawFd,
    buf: &mut [u8],
    raw: &mut [u8],
) -> io::Result<(usize, bool)> {
    let mut filled = 0;
    let mut eof = false;
    let mut drained = false;
    loop {
        match c.reader().read(&mut buf[filled..]) {
            Ok(0) if filled < buf.len() => eof = true, // close_notify
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => eof = true,
            Err(e) => return Err(e),
        }
        if filled == buf.len() || eof || drained {
            break;
        }
        let room = (buf.len() - filled).min(RAW_CHUNK);
        let n = match sys::read(fd, &mut raw[..room]) {
            Ok(0) => {
                eof = true;
                0
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        };
        drained = n < room;
        let mut rest = &raw[..n];
        while !rest.is_empty() {
            if c.read_tls(&mut rest)? == 0 {
                return Err(io::Error::other("TLS input not taken"));
            }
            match c.process_new_packets() {
                Ok(st) => eof |= st.peer_has_closed(),
                Err(e) => {
                    if c.is_handshaking() {
                        count::tls(count::TLS_FAILED);
                    }
                    let _ = c.write_tls(&mut FdIo(fd));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // Room was counted: what these bytes decrypt to fits.
            match c.reader().read(&mut buf[filled..]) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => eof = true,
                Err(e) => return Err(e),
            }
        }
    }
    Ok((filled, eof))
}
