//! The worker's budget for slow password hashes (bcrypt, SHA-crypt, MD5-crypt).
//!
//! A worker is one thread: clients sending ever new passwords for a bcrypt hash
//! could keep it hashing. So slow hashing may take at most a share of the
//! worker's time: a credit of hashing time grows at that share of the time
//! passing (up to a burst), and each slice of hashing (`bcrypt_steps.rs`; a
//! whole verification for the kinds not done in slices) spends what it took.
//! Without credit, a request that needs hashing is parked (`Flow::Later`) until
//! the credit is back; everything else the worker serves, cached logins
//! included, goes on meanwhile.

use std::time::{Duration, Instant};

/// Slow hashes may take at most 1/SHARE_DIV of a worker's time.
pub const SHARE_DIV: u32 = 4;
/// Credit an idle worker holds: a login is verified without a wait.
const BURST: Duration = Duration::from_millis(250);
/// Longest wait for credit before a login is refused (only a hash not done in
/// slices, SHA-crypt with many rounds, can run the credit that far down), and
/// for the bcrypt verifications under way to be done.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// What a request needing slow hashing may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Now,
    /// Park it until then.
    Later(Instant),
    /// Refuse it: 503 with this Retry-After (seconds).
    Busy(u64),
}

pub struct Budget {
    /// Hashing time the worker may still spend (negative: owed), nanoseconds.
    credit: i128,
    /// When `credit` was last brought up to date.
    at: Option<Instant>,
    /// No hashing before then: a slice is followed by at least as long without,
    /// so that slices for several requests never run back to back in one loop
    /// turn, ahead of the others' requests.
    rest_until: Option<Instant>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            credit: BURST.as_nanos() as i128,
            at: None,
            rest_until: None,
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

    /// May slow hashing run now?
    pub fn gate(&mut self, now: Instant) -> Gate {
        self.refill(now);
        // Due when what is owed has grown back.
        let owed = u64::try_from(-self.credit.min(0)).unwrap_or(u64::MAX);
        let wait = Duration::from_nanos(owed.saturating_mul(u64::from(SHARE_DIV)));
        if wait > MAX_WAIT {
            return Gate::Busy(wait.as_secs().max(1));
        }
        let rest = self.rest_until.filter(|t| *t > now);
        match (rest, self.credit > 0) {
            (Some(t), _) => Gate::Later(t.max(now + wait)),
            (None, true) => Gate::Now,
            (None, false) => Gate::Later(now + wait.max(Duration::from_millis(1))),
        }
    }

    /// Hashing took `took`, ending at `end`.
    pub fn spent(&mut self, took: Duration, end: Instant) {
        self.credit -= took.as_nanos() as i128;
        self.rest_until = Some(end + took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_rest_park_and_refuse() {
        let ms = Duration::from_millis;
        let mut b = Budget::default();
        let t0 = Instant::now();
        // An idle worker hashes at once; never twice in a row.
        assert_eq!(b.gate(t0), Gate::Now);
        b.spent(ms(2), t0 + ms(2));
        assert_eq!(b.gate(t0 + ms(2)), Gate::Later(t0 + ms(4)));
        assert_eq!(b.gate(t0 + ms(4)), Gate::Now);
        // The burst spent: 400 ms hashed, a quarter of it earned meanwhile, owes
        // 51 ms: parked for four times that.
        b.spent(ms(400), t0 + ms(4));
        let t1 = t0 + ms(404);
        assert_eq!(b.gate(t1), Gate::Later(t1 + ms(204)));
        // Deeper than MAX_WAIT allows: refused.
        b.spent(ms(1000), t0);
        assert!(matches!(b.gate(t1), Gate::Busy(s) if s >= 3));
        // Time pays it back, at a quarter of its pace.
        assert!(matches!(
            b.gate(t1 + Duration::from_secs(4)),
            Gate::Later(_)
        ));
        assert_eq!(b.gate(t1 + Duration::from_secs(10)), Gate::Now);
    }
}
