//! One end of a SOCK_SEQPACKET socketpair: one datagram = one postcard message, fds
//! attached with SCM_RIGHTS so they can never be separated from their message.
//! Messages larger than one datagram are split into numbered chunks.

use nix::cmsg_space;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, IoSlice, IoSliceMut};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Payload bytes per datagram; well under the default AF_UNIX socket buffer.
const CHUNK: usize = 64 * 1024;
/// Upper bound on a reassembled message, so a peer cannot make us allocate without end.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Most fds one message may carry: the kernel's SCM_MAX_FD (a worker's setup
/// carries its listeners, logs and channels together).
pub const MAX_FDS: usize = 253;

/// Chunk header: 1 byte flags (bit 0: more chunks follow).
const MORE: u8 = 1;

#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// Partly received chunked message.
    pending: Vec<u8>,
    pending_fds: Vec<OwnedFd>,
}

impl Channel {
    /// A connected pair, close-on-exec. The child's end is made inheritable by the
    /// spawner (dup2 onto [`crate::ROLE_IPC_FD`]).
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel::from_fd(a), Channel::from_fd(b)))
    }

    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            pending: Vec::new(),
            pending_fds: Vec::new(),
        }
    }

    /// Take the channel a re-executed child finds on [`crate::ROLE_IPC_FD`].
    ///
    /// # Safety
    /// The caller must be a wickd child started with its channel on that fd, and call
    /// this once, so the fd is owned by nothing else.
    pub unsafe fn from_inherited() -> Channel {
        // SAFETY: the caller guarantees the fd is open and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(crate::ROLE_IPC_FD) };
        let _ = nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Channel::from_fd(fd)
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let flags = nix::fcntl::fcntl(&self.fd, nix::fcntl::FcntlArg::F_GETFL)?;
        let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        flags.set(nix::fcntl::OFlag::O_NONBLOCK, on);
        nix::fcntl::fcntl(&self.fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        Ok(())
    }

    /// Send one message with fds attached (to its first chunk). Blocks if the peer's
    /// queue is full and the socket is blocking.
    pub fn send<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let body = postcard::to_stdvec(msg).map_err(io::Error::other)?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut chunks = body.chunks(CHUNK).peekable();
        let mut first = true;
        if body.is_empty() {
            return self.send_datagram(0, &[], &raw);
        }
        while let Some(chunk) = chunks.next() {
            let flags = if chunks.peek().is_some() { MORE } else { 0 };
            self.send_datagram(flags, chunk, if first { &raw } else { &[] })?;
            first = false;
        }
        Ok(())
    }

    fn send_datagram(&self, flags: u8, chunk: &[u8], fds: &[RawFd]) -> io::Result<()> {
        let head = [flags];
        let iov = [IoSlice::new(&head), IoSlice::new(chunk)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receive one whole message and the fds that came with it.
    /// Ok(None): the peer closed the channel. On a non-blocking channel,
    /// `WouldBlock` means "no complete message yet"; call again when readable.
    pub fn recv<T: DeserializeOwned>(&mut self) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; CHUNK + 1];
        loop {
            let mut cmsg = cmsg_space!([RawFd; MAX_FDS]);
            let (n, fds, truncated) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = loop {
                    match recvmsg::<()>(
                        self.fd.as_raw_fd(),
                        &mut iov,
                        Some(&mut cmsg),
                        MsgFlags::MSG_CMSG_CLOEXEC,
                    ) {
                        Ok(m) => break m,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(e.into()),
                    }
                };
                let mut fds = Vec::new();
                for c in msg.cmsgs().map_err(io::Error::other)? {
                    if let ControlMessageOwned::ScmRights(list) = c {
                        for fd in list {
                            // SAFETY: the kernel just installed this fd for us; nothing
                            // else owns it.
                            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                }
                let truncated = msg
                    .flags
                    .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                (msg.bytes, fds, truncated)
            };
            if n == 0 && fds.is_empty() {
                return Ok(None);
            }
            if truncated {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ipc message truncated",
                ));
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ipc datagram without header",
                ));
            }
            self.pending_fds.extend(fds);
            self.pending.extend_from_slice(&buf[1..n]);
            if self.pending.len() > MAX_MESSAGE {
                self.pending.clear();
                self.pending_fds.clear();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ipc message too large",
                ));
            }
            if buf[0] & MORE != 0 {
                continue;
            }
            let body = std::mem::take(&mut self.pending);
            let fds = std::mem::take(&mut self.pending_fds);
            let (msg, rest) = postcard::take_from_bytes::<T>(&body).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("ipc decode: {e}"))
            })?;
            if !rest.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ipc message has trailing bytes",
                ));
            }
            return Ok(Some((msg, fds)));
        }
    }
}

/// A channel typed by direction: what this end sends (`Tx`) and what it receives
/// (`Rx`). The two ends of a pair have the types swapped, so a message sent the
/// wrong way does not compile (the aliases in lib.rs name each role's end).
#[derive(Debug)]
pub struct Link<Tx, Rx> {
    ch: Channel,
    dir: PhantomData<fn(Tx) -> Rx>,
}

impl<Tx: Serialize, Rx: DeserializeOwned> Link<Tx, Rx> {
    pub fn new(ch: Channel) -> Self {
        Link {
            ch,
            dir: PhantomData,
        }
    }

    /// See [`Channel::send`].
    pub fn send(&self, msg: &Tx, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        self.ch.send(msg, fds)
    }

    /// See [`Channel::recv`].
    pub fn recv(&mut self) -> io::Result<Option<(Rx, Vec<OwnedFd>)>> {
        self.ch.recv()
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.ch.set_nonblocking(on)
    }

    pub fn into_fd(self) -> OwnedFd {
        self.ch.into_fd()
    }
}

impl<Tx, Rx> AsRawFd for Link<Tx, Rx> {
    fn as_raw_fd(&self) -> RawFd {
        self.ch.as_raw_fd()
    }
}

impl<Tx, Rx> AsFd for Link<Tx, Rx> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ch.as_fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_small_large_and_fds() {
        let (a, mut b) = Channel::pair().expect("pair");
        a.send(&"hello".to_string(), &[]).expect("send");
        let (m, fds): (String, _) = b.recv().expect("recv").expect("msg");
        assert_eq!(m, "hello");
        assert!(fds.is_empty());

        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        let sent = big.clone();
        let sender = std::thread::spawn(move || {
            a.send(&sent, &[r.as_fd()]).expect("send big");
            a
        });
        let (m, fds): (Vec<u8>, _) = b.recv().expect("recv").expect("msg");
        let a = sender.join().expect("sender");
        assert_eq!(m, big);
        assert_eq!(fds.len(), 1);

        drop(a);
        assert!(b.recv::<String>().expect("eof").is_none());
    }
}
