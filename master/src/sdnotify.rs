//! systemd's readiness protocol (sd_notify): datagrams to $NOTIFY_SOCKET, so a
//! unit of Type=notify-reload knows when wickd is ready, reloading or stopping.

use std::os::unix::net::{SocketAddr, UnixDatagram};

pub struct Notify {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notify {
    /// Take NOTIFY_SOCKET from the environment (and remove it, so that children
    /// and CGI scripts cannot talk to systemd in wickd's name).
    pub fn from_env() -> Option<Notify> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        std::env::remove_var("NOTIFY_SOCKET");
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
        let addr = match bytes.split_first() {
            Some((b'@', name)) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name).ok()?
            }
            Some((b'/', _)) => SocketAddr::from_pathname(std::path::Path::new(&path)).ok()?,
            _ => return None,
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some(Notify { sock, addr })
    }

    pub fn send(&self, state: &str) {
        let _ = self.sock.send_to_addr(state.as_bytes(), &self.addr);
    }

    pub fn ready(&self) {
        self.send(&format!("READY=1\nMAINPID={}", std::process::id()));
    }

    /// Type=notify-reload wants the reload start stamped with CLOCK_MONOTONIC.
    pub fn reloading(&self) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={text}"));
    }
}
