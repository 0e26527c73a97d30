//! Clocks and HTTP dates: the `Date` header formatted once a second, coarse
//! monotonic seconds for timeouts, IMF-fixdate formatting and parsing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// IMF-fixdate is always this long: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

/// The worker's clock, read once per event-loop turn (coarse clocks are vDSO calls,
/// not syscalls).
pub struct Clock {
    /// Wall-clock seconds since the epoch.
    pub unix: i64,
    /// Monotonic seconds (for timeouts; never jumps).
    pub mono: u64,
    date: [u8; HTTP_DATE_LEN],
    date_for: i64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        let mut c = Clock {
            unix: 0,
            mono: 0,
            date: [b' '; HTTP_DATE_LEN],
            date_for: i64::MIN,
        };
        c.tick();
        c
    }

    /// Re-read both clocks; reformat the Date header only when the second changed.
    pub fn tick(&mut self) {
        self.unix = coarse(libc::CLOCK_REALTIME_COARSE) as i64;
        self.mono = coarse(libc::CLOCK_MONOTONIC_COARSE);
        if self.unix != self.date_for {
            format_http_date(self.unix, &mut self.date);
            self.date_for = self.unix;
        }
    }

    /// The current `Date` value.
    pub fn http_date(&self) -> &[u8] {
        &self.date
    }
}

fn coarse(id: libc::clockid_t) -> u64 {
    crate::sys::clock_secs(id).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    })
}

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Format `unix` seconds as IMF-fixdate into `out`.
pub fn format_http_date(unix: i64, out: &mut [u8; HTTP_DATE_LEN]) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = wick_proto::log::civil_from_days(days);
    let wd = DAYS[days.rem_euclid(7) as usize];
    let y = y.clamp(0, 9999) as u32;
    let two = |v: u32| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[0..3].copy_from_slice(wd);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(d));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(m - 1) as usize]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(y / 100));
    out[14..16].copy_from_slice(&two(y % 100));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two((secs / 3600) as u32));
    out[19] = b':';
    out[20..22].copy_from_slice(&two((secs / 60 % 60) as u32));
    out[22] = b':';
    out[23..25].copy_from_slice(&two((secs % 60) as u32));
    out[25..29].copy_from_slice(b" GMT");
}

/// Parse an HTTP date (IMF-fixdate, RFC 850 or asctime, as RFC 9110 requires a
/// recipient to accept) into unix seconds.
pub fn parse_http_date(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Some(d.as_secs() as i64),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let mut b = [0u8; HTTP_DATE_LEN];
        format_http_date(784_111_777, &mut b);
        assert_eq!(&b, b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date(b"Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date(b"yesterday"), None);
        format_http_date(0, &mut b);
        assert_eq!(&b, b"Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
