//! What the request path counts for mod_status, into this worker's slot of the
//! master's counter page (wick_proto::counters): plain relaxed loads and stores
//! on cache lines no other process writes, no system call. Nothing is counted
//! unless mod_status is in force ([`enable`]); then each call is one check of a
//! set-once cell and a few adds. Durations cost no clock read per request: a
//! response is timed from the start of the loop turn that took its request up
//! to the end of the turn that completed it, and [`turn_end`] reads the clock
//! once for all the turn completed.

use crate::conn::{Conn, Phase};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;
use wick_proto::counters::{self, Board, Listed, Slot, LISTED, STATES};

static BOARD: OnceLock<(&'static Board, &'static Slot)> = OnceLock::new();

/// Count into `slot` of `board` from now on (once, at start, before the sandbox).
pub fn enable(board: &'static Board, slot: &'static Slot, max_conns: usize) {
    slot.max_conns.set(max_conns as u64);
    let _ = BOARD.set((board, slot));
}

/// The page and this worker's slot, when counting.
#[inline]
pub fn board() -> Option<(&'static Board, &'static Slot)> {
    BOARD.get().copied()
}

#[inline]
fn slot() -> Option<&'static Slot> {
    BOARD.get().map(|b| b.1)
}

/// Now, when counting (durations are measured only then).
#[inline]
pub fn now() -> Option<Instant> {
    BOARD.get().map(|_| Instant::now())
}

/// A request's method and the moment its head was taken up, for its count when
/// the response is complete.
#[derive(Clone, Copy, Debug, Default)]
pub struct Started {
    method: u8,
    at: Option<Instant>,
}

impl Started {
    /// `at`: the loop turn's clock (`Clock::at`), None when not counting (then
    /// the method is not even looked at).
    #[inline]
    pub fn new(method: &[u8], at: Option<Instant>) -> Started {
        if at.is_none() {
            // Not counting: nothing to look at.
            return Started::default();
        }
        Started {
            method: counters::method_index(method) as u8,
            at,
        }
    }
}

/// Responses completed in this loop turn whose request was taken up in it too
/// (the worker has one thread: a relaxed load and store, as the page's).
static SAME: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Responses completed in this loop turn whose request came in an earlier
    /// one (a handler's): microseconds from that turn's start to this one's.
    static EARLIER: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// A response is complete (queued whole): its method and class now, its
/// duration when the turn ends. `turn`: this turn's start (`Clock::at`).
#[inline]
pub fn request(st: Started, status: u16, turn: Option<Instant>) {
    let Some(s) = slot() else { return };
    s.hot.requests[usize::from(st.method).min(counters::METHODS.len() - 1)]
        [counters::class_index(status)]
    .add(1);
    let (Some(at), Some(now)) = (st.at, turn) else {
        return;
    };
    if at == now {
        SAME.store(SAME.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    } else {
        let us = now.saturating_duration_since(at).as_micros() as u64;
        EARLIER.with_borrow_mut(|e| e.push(us));
    }
}

/// The loop turn that began at `turn` is over: one clock read times every
/// response it completed.
pub fn turn_end(turn: Option<Instant>) {
    let (Some(start), Some(s)) = (turn, slot()) else {
        return;
    };
    let same = SAME.load(Ordering::Relaxed);
    EARLIER.with_borrow_mut(|earlier| {
        if same == 0 && earlier.is_empty() {
            return;
        }
        let us = start.elapsed().as_micros() as u64;
        let h = &s.hot;
        if same > 0 {
            h.duration[counters::bucket_index(us)].add(same);
            h.duration_us.add(us * same);
            SAME.store(0, Ordering::Relaxed);
        }
        for base in earlier.drain(..) {
            let d = base + us;
            h.duration[counters::bucket_index(d)].add(1);
            h.duration_us.add(d);
        }
    });
}

/// Request bytes read from a client.
#[inline]
pub fn bytes_in(n: usize) {
    if let Some(s) = slot() {
        s.hot.bytes_in.add(n as u64);
    }
}

/// Response bytes written to a client.
#[inline]
pub fn bytes_out(n: usize) {
    if let Some(s) = slot() {
        s.hot.bytes_out.add(n as u64);
    }
}

/// A connection was accepted.
#[inline]
pub fn opened() {
    if let Some(s) = slot() {
        s.hot.opened.add(1);
    }
}

/// A connection was closed.
#[inline]
pub fn closed() {
    if let Some(s) = slot() {
        s.hot.closed.add(1);
    }
}

/// TLS handshakes, by [`counters::TLS`].
pub const TLS_FULL: usize = 0;
pub const TLS_RESUMED: usize = 1;
pub const TLS_FAILED: usize = 2;

pub fn tls(kind: usize) {
    if let Some(c) = slot().and_then(|s| s.hot.tls.get(kind)) {
        c.add(1);
    }
}

/// The counter entry of the backend named `name` (gateway/pool.rs keeps one per host).
pub fn backend(name: &str) -> Option<&'static counters::Backend> {
    slot()?.backend(counters::backend_id(name))
}

/// lighttpd's state of a connection ([`STATES`]).
pub fn state_of(c: &Conn) -> usize {
    match c.phase {
        Phase::Head if c.requests > 0 && c.is_idle() => 4,
        Phase::Head => 0,
        Phase::Body => 1,
        Phase::Handler => 2,
        Phase::Write => 3,
        Phase::Linger => 5,
        // An HTTP/2 connection: keep-alive while no stream is open, else handling.
        Phase::H2 if c.is_idle() => 4,
        Phase::H2 => 2,
    }
}

/// Once a second: this worker's connections, by state and the first [`LISTED`]
/// of them, into its slot.
pub fn census<'a>(conns: impl Iterator<Item = &'a Conn>) {
    let Some(s) = slot() else { return };
    let mut states = [0u64; STATES.len()];
    let mut list = Vec::with_capacity(LISTED);
    for c in conns {
        let st = state_of(c);
        states[st] += 1;
        if list.len() < LISTED {
            list.push(Listed {
                ip: c.peer,
                port: c.peer_port,
                state: st as u8,
                tls: c.io.tls.is_some(),
                since: c.since,
                requests: c.requests,
            });
        }
    }
    s.census.publish(&states, &list);
}
