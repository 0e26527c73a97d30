//! The worker's budget for slow password hashes (bcrypt, SHA-crypt, MD5-crypt).
//!
//! A worker is one thread: a bcrypt verification at cost 10 holds its event loop
//! for about 70 ms, and clients sending ever new passwords could keep it hashing.
//! So slow verifications may take at most a share of the worker's time: a credit
//! of hashing time grows at that share of the time passing (up to a burst) and
//! each verification spends what it took. Without credit, a request that needs
//! one is parked (`Flow::Later`) with its cost reserved, and runs again when the
//! credit it found owed is paid back; one that would wait longer than
//! [`MAX_WAIT`] is refused with 503 and Retry-After. Everything else the worker
//! serves, cached logins included, goes on meanwhile.

use std::time::{Duration, Instant};

/// Slow hashes may take at most 1/SHARE_DIV of a worker's time.
const SHARE_DIV: u32 = 4;
/// Credit an idle worker holds: a few logins at once are verified without a wait.
const BURST: Duration = Duration::from_millis(250);
/// Longest a login is parked before it is refused (about a dozen bcrypt logins
/// at cost 10 queued per worker).
const MAX_WAIT: Duration = Duration::from_secs(3);
/// Assumed cost of a verification before one was timed.
const FIRST_COST: Duration = Duration::from_millis(50);

/// What a request needing a slow verification may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Now,
    /// Park it until then (its cost is reserved).
    Later(Instant),
    /// Refuse it: 503 with this Retry-After (seconds).
    Busy(u64),
}

pub struct Budget {
    /// Hashing time the worker may still spend (negative: owed), nanoseconds.
    credit: i128,
    /// When `credit` was last brought up to date.
    at: Option<Instant>,
    /// What a slow verification costs, as lately timed (moving average).
    cost: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            credit: BURST.as_nanos() as i128,
            at: None,
            cost: FIRST_COST,
        }
    }
}

impl Budget {
    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let grown =
                now.saturating_duration_since(at).as_nanos() as i128 / i128::from(SHARE_DIV);
            self.credit = (self.credit + grown).min(BURST.as_nanos() as i128);
        }
        self.at = Some(now);
    }

    /// May a slow verification run now? `anyway`: yes (a request parked here
    /// before, its cost reserved then, or one that cannot be parked).
    pub fn gate(&mut self, now: Instant, anyway: bool) -> Gate {
        self.refill(now);
        if anyway || self.credit > 0 {
            return Gate::Now;
        }
        // Due when what is owed now has grown back; its own cost is owed after.
        let owed = u64::try_from(-self.credit).unwrap_or(u64::MAX);
        let wait = Duration::from_nanos(owed.saturating_mul(u64::from(SHARE_DIV)));
        if wait > MAX_WAIT {
            return Gate::Busy(wait.as_secs().max(1));
        }
        self.credit -= self.cost.as_nanos() as i128;
        Gate::Later(now + wait.max(Duration::from_millis(1)))
    }

    /// A resumed request needed no hash after all (a verdict cached meanwhile):
    /// what was reserved for it is given back.
    pub fn unreserve(&mut self) {
        self.credit += self.cost.as_nanos() as i128;
    }

    /// A slow verification took `took` (for a resumed request, beyond the cost
    /// reserved for it).
    pub fn spent(&mut self, took: Duration, resumed: bool) {
        let reserved = if resumed { self.cost } else { Duration::ZERO };
        self.credit -= took.as_nanos() as i128 - reserved.as_nanos() as i128;
        self.cost = (self.cost * 3 + took) / 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_burst_park_and_refuse() {
        let mut b = Budget::default();
        let t0 = Instant::now();
        // An idle worker verifies at once, until the burst is spent.
        assert_eq!(b.gate(t0, false), Gate::Now);
        b.spent(Duration::from_millis(300), false);
        // Owes 50 ms: parked for four times that, its cost reserved.
        match b.gate(t0, false) {
            Gate::Later(at) => assert_eq!(at - t0, Duration::from_millis(200)),
            g => panic!("{g:?}"),
        }
        // The next one waits behind it.
        match b.gate(t0, false) {
            Gate::Later(at) => assert!(at - t0 > Duration::from_millis(200)),
            g => panic!("{g:?}"),
        }
        // A resumed one runs whatever the credit.
        assert_eq!(b.gate(t0, true), Gate::Now);
        // Deeper than MAX_WAIT: refused.
        b.spent(Duration::from_secs(1), false);
        assert!(matches!(b.gate(t0, false), Gate::Busy(s) if s >= 3));
        // Time pays it back.
        assert_eq!(b.gate(t0 + Duration::from_secs(10), false), Gate::Now);
    }
}
