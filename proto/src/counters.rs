//! The shared counter page (mod_status and the metrics endpoint): one memfd the
//! master makes at start and hands to every worker in its setup, mapped by each
//! before its sandbox. Every worker adds to its own slot, a run of cache lines no
//! other process writes, with plain loads and stores of relaxed atomics (one
//! writer per counter: no locked instruction, no shared line on the request
//! path); whoever answers a status request sums the slots. A slot outlives its
//! worker: the master gives it to a later one (of any generation), which counts
//! on from there, so totals never go back across restarts and reloads.
//!
//! The page is advisory: any worker can write all of it. The master reads from it
//! only the syscall number of a seccomp kill, a number it checks before use.

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Worker processes that may hold a slot at once, over every generation.
pub const SLOTS: usize = 256;
/// Connections a worker lists each second (lighttpd's connection table).
pub const LISTED: usize = 64;
/// FastCGI backends a worker counts for (by name; more are not counted).
pub const BACKENDS: usize = 16;
/// Request methods counted apart; anything else is "other".
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other",
];
/// Status classes, by the status's first digit (1xx..5xx).
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds of the request-duration histogram's buckets, in microseconds
/// (the last bucket, past them, is +Inf).
pub const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Connection states, as lighttpd's scoreboard letters and names.
pub const STATES: [(char, &str); 6] = [
    ('r', "read"),
    ('R', "readpost"),
    ('h', "handle-req"),
    ('W', "write"),
    ('k', "keep-alive"),
    ('C', "close"),
];
/// Why a child the master restarts ended.
pub const CAUSES: [&str; 3] = ["exit", "signal", "seccomp"];
/// The roles the master restarts.
pub const ROLES: [&str; 2] = ["worker", "gateway-spawner"];
/// TLS handshakes: completed in full, resumed, failed.
pub const TLS: [&str; 3] = ["full", "resumed", "failed"];

const MAGIC: u64 = u64::from_le_bytes(*b"wickcnt1");
/// Bumped with any change of the layout below (a worker checks it).
pub const LAYOUT: u64 = 1;

/// A counter in the page. Each has one writer at a time (a worker its slot, the
/// master its header and a dead worker's slot), so `add` is a load and a store,
/// not a locked read-modify-write.
#[repr(transparent)]
#[derive(Default)]
pub struct Counter(AtomicU64);

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The atomic itself (the worker's SIGSYS handler stores into it).
    pub fn atomic(&self) -> &AtomicU64 {
        &self.0
    }
}

/// What the master counts.
#[repr(C, align(128))]
pub struct Header {
    magic: Counter,
    layout: Counter,
    /// Unix seconds the master started (lighttpd's Uptime counts from it).
    pub started: Counter,
    /// Slots handed out so far (a high-water mark: readers sum `slots[..used]`).
    pub used: Counter,
    /// The generation serving now.
    pub generation: Counter,
    /// Reloads (SIGUSR1) that went into service, and those that did not.
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    /// Unix seconds of the last reload that went into service (0: none).
    pub last_reload: Counter,
    /// Children of the serving generation that died and were started again,
    /// by [`ROLES`] and [`CAUSES`].
    pub restarts: [[Counter; CAUSES.len()]; ROLES.len()],
}

/// What a worker adds to on the request path.
#[repr(C, align(128))]
pub struct Hot {
    /// Responses by [`METHODS`] and [`CLASSES`].
    pub requests: [[Counter; CLASSES.len()]; METHODS.len()],
    /// Bytes read from and written to clients (TLS: the plaintext).
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    /// Request durations by [`BUCKETS_US`] (not cumulative; the last is +Inf).
    pub duration: [Counter; BUCKETS_US.len() + 1],
    pub duration_us: Counter,
    /// Connections accepted and closed.
    pub opened: Counter,
    pub closed: Counter,
    /// TLS handshakes by [`TLS`].
    pub tls: [Counter; TLS.len()],
}

/// A worker's connections, written once a second under a sequence lock.
#[repr(C, align(128))]
pub struct Census {
    seq: Counter,
    /// Connections by [`STATES`].
    pub states: [Counter; STATES.len()],
    listed: Counter,
    list: [[Counter; 4]; LISTED],
}

/// One FastCGI backend as one worker saw it.
#[repr(C)]
#[derive(Debug)]
pub struct Backend {
    /// `backend_id` of its name; 0: the entry is free.
    pub id: Counter,
    /// Requests sent to it (its connect succeeded).
    pub requests: Counter,
    /// Connects that failed (the backend was disabled for its disable-time).
    pub failures: Counter,
    /// Requests under way now.
    pub load: Counter,
    /// Monotonic second until which this worker skips it.
    pub disabled_until: Counter,
    /// Microseconds from connect to the end of the backend's response, summed,
    /// and the responses counted in it.
    pub latency_us: Counter,
    pub done: Counter,
    _pad: Counter,
}

/// One worker's part of the page.
#[repr(C, align(128))]
pub struct Slot {
    /// Written by the master when it hands the slot out (pid once it is known);
    /// `live` is 1 while a process holds the slot.
    pub pid: Counter,
    pub generation: Counter,
    pub worker_id: Counter,
    pub live: Counter,
    /// server.max-connections of this worker (written at its start).
    pub max_conns: Counter,
    /// Written by the worker's SIGSYS handler: [`SIGSYS_SEEN`] | the syscall number.
    pub sigsys: Counter,
    pub hot: Hot,
    pub census: Census,
    pub backends: [Backend; BACKENDS],
}

/// The bit `Slot::sigsys` carries besides the syscall number.
pub const SIGSYS_SEEN: u64 = 1 << 63;

/// The whole page.
#[repr(C)]
pub struct Board {
    pub header: Header,
    pub slots: [Slot; SLOTS],
}

/// The page's length: the board rounded up to whole pages.
pub const fn page_len() -> usize {
    std::mem::size_of::<Board>().div_ceil(4096) * 4096
}

fn last_os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("counter page: {what}: {e}"))
}

/// Map `fd` shared, read and write, for the life of the process.
fn map_shared(fd: &OwnedFd) -> io::Result<&'static Board> {
    // SAFETY: a fresh mapping (no address given) of `page_len()` bytes of an fd we
    // hold; nothing else is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_len(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(last_os_error("mmap"));
    }
    // SAFETY: the mapping is page-aligned (more than Board's alignment), as long
    // as Board and never unmapped; every field of Board is an AtomicU64, for which
    // any bit pattern (zero from the kernel, or another process's stores) is a
    // valid value, and which other processes change only through atomic stores.
    Ok(unsafe { &*(p as *const Board) })
}

impl Board {
    /// The master's page: a sealed memfd (its size cannot change, so no worker
    /// can make the master fault on it), mapped here. The fd goes to each worker.
    pub fn create(started_unix: u64) -> io::Result<(&'static Board, OwnedFd)> {
        // SAFETY: the name is a NUL-terminated literal; the flags are valid.
        let raw = unsafe {
            libc::memfd_create(
                c"wickd-counters".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(last_os_error("memfd_create"));
        }
        // SAFETY: memfd_create returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate and fcntl on an fd we own, integer arguments.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), page_len() as libc::off_t) } != 0 {
            return Err(last_os_error("ftruncate"));
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(last_os_error("F_ADD_SEALS"));
        }
        let b = map_shared(&fd)?;
        b.header.magic.set(MAGIC);
        b.header.layout.set(LAYOUT);
        b.header.started.set(started_unix);
        Ok((b, fd))
    }

    /// A worker's view of the master's page (before its sandbox: mmap of a new
    /// fd is not in its allowlist's spirit afterwards).
    pub fn map(fd: &OwnedFd) -> io::Result<&'static Board> {
        // SAFETY: an all-zero stat is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat fills the stat of ours for an fd we hold.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(last_os_error("fstat"));
        }
        if st.st_size as u64 != page_len() as u64 {
            return Err(io::Error::other(format!(
                "counter page: {} bytes, expected {}",
                st.st_size,
                page_len()
            )));
        }
        let b = map_shared(fd)?;
        if b.header.magic.get() != MAGIC || b.header.layout.get() != LAYOUT {
            return Err(io::Error::other(
                "counter page: not a wickd counter page of this layout",
            ));
        }
        Ok(b)
    }

    /// Slot `i`, if there is one.
    pub fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// The slots handed out so far.
    pub fn used(&self) -> &[Slot] {
        let n = (self.header.used.get() as usize).min(SLOTS);
        &self.slots[..n]
    }

    /// Every slot summed: the whole server.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.used() {
            t.add(s);
        }
        t
    }
}

/// The index of `method` in [`METHODS`].
#[inline]
pub fn method_index(method: &[u8]) -> usize {
    match method {
        b"GET" => 0,
        b"HEAD" => 1,
        b"POST" => 2,
        b"PUT" => 3,
        b"DELETE" => 4,
        b"OPTIONS" => 5,
        b"PATCH" => 6,
        _ => 7,
    }
}

/// The index of `status`'s class in [`CLASSES`] (anything past 5xx counts there).
#[inline]
pub fn class_index(status: u16) -> usize {
    match status {
        0..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// The bucket of a duration of `us` microseconds.
#[inline]
pub fn bucket_index(us: u64) -> usize {
    BUCKETS_US
        .iter()
        .position(|&b| us <= b)
        .unwrap_or(BUCKETS_US.len())
}

/// A stable non-zero id for a backend's name (FNV-1a), the same in every worker.
pub fn backend_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

impl Slot {
    /// The entry that counts for the backend `id` (found, or a free one taken).
    pub fn backend(&self, id: u64) -> Option<&Backend> {
        if let Some(b) = self.backends.iter().find(|b| b.id.get() == id) {
            return Some(b);
        }
        let b = self.backends.iter().find(|b| b.id.get() == 0)?;
        b.id.set(id);
        Some(b)
    }

    /// The process holding the slot is gone (the master, after waitpid): what
    /// described it now is reset. Its counts stay, for the next holder to go on
    /// from; connections it left open count as closed, requests it left on a
    /// backend as ended. Returns the syscall number its SIGSYS handler noted.
    pub fn release(&self) -> Option<u64> {
        let sys = self.sigsys.get();
        self.sigsys.set(0);
        let (opened, closed) = (self.hot.opened.get(), self.hot.closed.get());
        if opened > closed {
            self.hot.closed.set(opened);
        }
        self.census.publish(&[0; STATES.len()], &[]);
        for b in &self.backends {
            b.load.set(0);
            b.disabled_until.set(0);
        }
        self.max_conns.set(0);
        self.pid.set(0);
        self.live.set(0);
        (sys & SIGSYS_SEEN != 0).then_some(sys & !SIGSYS_SEEN)
    }
}

/// One connection in a worker's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub ip: IpAddr,
    pub port: u16,
    /// Index into [`STATES`].
    pub state: u8,
    pub tls: bool,
    /// Monotonic second of its last progress.
    pub since: u64,
    /// Requests it has carried.
    pub requests: u32,
}

impl Listed {
    fn encode(&self) -> [u64; 4] {
        let v6 = match self.ip {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        let o = v6.octets();
        let (hi, lo) = o.split_at(8);
        let word = |b: &[u8]| b.iter().fold(0u64, |w, &c| (w << 8) | u64::from(c));
        [
            word(hi),
            word(lo),
            u64::from(self.port) | u64::from(self.state) << 16 | u64::from(self.tls) << 24,
            (self.since & 0xffff_ffff) | u64::from(self.requests) << 32,
        ]
    }

    fn decode(w: [u64; 4]) -> Listed {
        let mut o = [0u8; 16];
        o[..8].copy_from_slice(&w[0].to_be_bytes());
        o[8..].copy_from_slice(&w[1].to_be_bytes());
        let v6 = Ipv6Addr::from(o);
        Listed {
            ip: v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            port: w[2] as u16,
            state: ((w[2] >> 16) as u8).min(STATES.len() as u8 - 1),
            tls: (w[2] >> 24) & 1 == 1,
            since: w[3] & 0xffff_ffff,
            requests: (w[3] >> 32) as u32,
        }
    }
}

impl Census {
    /// Write the counts by state and (at most [`LISTED`] of) the connections.
    pub fn publish(&self, states: &[u64; STATES.len()], list: &[Listed]) {
        let s = self.seq.get();
        self.seq.set(s.wrapping_add(1));
        fence(Ordering::Release);
        for (c, &n) in self.states.iter().zip(states) {
            c.set(n);
        }
        let n = list.len().min(LISTED);
        for (slot, l) in self.list.iter().zip(&list[..n]) {
            for (c, w) in slot.iter().zip(l.encode()) {
                c.set(w);
            }
        }
        self.listed.set(n as u64);
        self.seq.0.store(s.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy, or None when the worker was writing it each time.
    pub fn read(&self) -> Option<([u64; STATES.len()], Vec<Listed>)> {
        for _ in 0..8 {
            let s1 = self.seq.0.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut states = [0u64; STATES.len()];
            for (v, c) in states.iter_mut().zip(&self.states) {
                *v = c.get();
            }
            let n = (self.listed.get() as usize).min(LISTED);
            let list: Vec<[u64; 4]> = self.list[..n]
                .iter()
                .map(|e| [e[0].get(), e[1].get(), e[2].get(), e[3].get()])
                .collect();
            fence(Ordering::Acquire);
            if self.seq.get() == s1 {
                return Some((states, list.into_iter().map(Listed::decode).collect()));
            }
        }
        None
    }
}

/// The slots summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: [[u64; CLASSES.len()]; METHODS.len()],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: [u64; BUCKETS_US.len() + 1],
    pub duration_us: u64,
    pub opened: u64,
    pub closed: u64,
    pub tls: [u64; TLS.len()],
    /// Of the live workers: connections by state (as of their last second),
    /// connections open now, their connection limits, how many there are.
    pub states: [u64; STATES.len()],
    pub open: u64,
    pub max_conns: u64,
    pub workers: u64,
}

impl Totals {
    fn add(&mut self, s: &Slot) {
        let h = &s.hot;
        for (row, src) in self.requests.iter_mut().zip(&h.requests) {
            for (v, c) in row.iter_mut().zip(src) {
                *v += c.get();
            }
        }
        self.bytes_in += h.bytes_in.get();
        self.bytes_out += h.bytes_out.get();
        for (v, c) in self.duration.iter_mut().zip(&h.duration) {
            *v += c.get();
        }
        self.duration_us += h.duration_us.get();
        self.opened += h.opened.get();
        self.closed += h.closed.get();
        for (v, c) in self.tls.iter_mut().zip(&h.tls) {
            *v += c.get();
        }
        if s.live.get() == 1 {
            self.workers += 1;
            self.open += h.opened.get().saturating_sub(h.closed.get());
            self.max_conns += s.max_conns.get();
            if let Some((states, _)) = s.census.read() {
                for (v, n) in self.states.iter_mut().zip(states) {
                    *v += n;
                }
            }
        }
    }

    /// Requests answered, every method and class.
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }

    /// Open connections of the live workers, now.
    pub fn busy(&self) -> u64 {
        self.open
    }

    /// Connections by state, the census (up to a second old) made to agree
    /// with `open` (exact): connections it has not seen count as reading, those
    /// closed since are taken from keep-alive first, then from the other states.
    pub fn states_now(&self) -> [u64; STATES.len()] {
        let mut st = self.states;
        let seen: u64 = st.iter().sum();
        if self.open >= seen {
            st[0] += self.open - seen;
            return st;
        }
        let mut extra = seen - self.open;
        for i in [4, 0, 1, 2, 3, 5] {
            let cut = extra.min(st[i]);
            st[i] -= cut;
            extra -= cut;
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_its_own_cache_lines() {
        assert_eq!(std::mem::size_of::<Slot>() % 128, 0);
        assert_eq!(std::mem::align_of::<Hot>(), 128);
        assert_eq!(std::mem::size_of::<Header>() % 128, 0);
        assert!(page_len() < 2 << 20, "{}", page_len());
    }

    #[test]
    fn indexes() {
        assert_eq!(method_index(b"GET"), 0);
        assert_eq!(method_index(b"PROPFIND"), 7);
        assert_eq!(
            [100, 204, 304, 404, 503, 999].map(class_index),
            [0, 1, 2, 3, 4, 4]
        );
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(500), 0);
        assert_eq!(bucket_index(501), 1);
        assert_eq!(bucket_index(u64::MAX), BUCKETS_US.len());
        assert_ne!(backend_id(""), 0);
        assert_ne!(backend_id("127.0.0.1:9000"), backend_id("127.0.0.1:9001"));
    }

    #[test]
    fn listed_round_trips() {
        for ip in ["192.0.2.7", "2001:db8::1", "::1"] {
            let l = Listed {
                ip: ip.parse().expect("ip"),
                port: 40123,
                state: 4,
                tls: true,
                since: 123_456,
                requests: 77,
            };
            assert_eq!(Listed::decode(l.encode()), l);
        }
    }

    #[test]
    fn the_page_is_shared_and_sums() {
        let (b, fd) = Board::create(1000).expect("create");
        let w = Board::map(&fd).expect("map");
        b.header.used.set(2);
        let s0 = w.slot(0).expect("slot");
        let s1 = w.slot(1).expect("slot");
        s0.live.set(1);
        s0.max_conns.set(10);
        s0.hot.requests[0][1].add(3);
        s1.hot.requests[2][3].add(2);
        s1.hot.bytes_out.add(4096);
        s0.census.publish(&[1, 0, 0, 0, 2, 0], &[]);
        s0.hot.opened.add(4);
        s0.hot.closed.add(2);
        let t = b.totals();
        assert_eq!(t.requests_total(), 5);
        assert_eq!(
            (t.bytes_out, t.workers, t.max_conns, t.busy()),
            (4096, 1, 10, 2)
        );
        // The census saw three (one since closed): keep-alive gives one up.
        assert_eq!(t.states_now(), [1, 0, 0, 0, 1, 0]);
        let more = Totals { open: 5, ..t };
        assert_eq!(more.states_now(), [3, 0, 0, 0, 2, 0]);
        // A resized page would fault the master: the seals refuse it.
        // SAFETY: ftruncate on an fd we hold.
        assert_ne!(unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) }, 0);
    }

    #[test]
    fn a_released_slot_keeps_its_counts() {
        let (b, _fd) = Board::create(0).expect("create");
        b.header.used.set(1);
        let s = b.slot(0).expect("slot");
        s.live.set(1);
        s.hot.opened.add(5);
        s.hot.closed.add(3);
        s.hot.requests[0][1].add(9);
        s.sigsys.atomic().store(SIGSYS_SEEN | 41, Ordering::Relaxed);
        let l = Listed {
            ip: "::1".parse().expect("ip"),
            port: 1,
            state: 0,
            tls: false,
            since: 0,
            requests: 0,
        };
        s.census.publish(&[0, 0, 0, 0, 1, 0], &[l]);
        assert_eq!(s.release(), Some(41));
        assert_eq!(s.release(), None);
        assert_eq!((s.hot.opened.get(), s.hot.closed.get()), (5, 5));
        assert_eq!(b.totals().requests_total(), 9);
        assert_eq!(
            s.census.read().map(|(st, l)| (st, l.len())),
            Some(([0; 6], 0))
        );
    }
}
