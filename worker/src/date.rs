//! Clocks and HTTP dates: the `Date` header formatted once a second, coarse
//! monotonic seconds for timeouts, IMF-fixdate formatting and parsing.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// IMF-fixdate is always this long: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

/// The worker's clock, read once per event-loop turn (coarse clocks are vDSO calls,
/// not syscalls).
pub struct Clock {
    /// Wall-clock seconds since the epoch.
    pub unix: i64,
    /// Monotonic seconds (for timeouts; never jumps).
    pub mono: u64,
    /// The turn's instant, read only while mod_status counts (request durations
    /// start from it): None otherwise.
    pub at: Option<Instant>,
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
            at: None,
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
        if let Some(at) = &mut self.at {
            *at = Instant::now();
        }
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

/// Monotonic seconds now, as `Clock::mono` counts them.
pub fn mono_secs() -> u64 {
    coarse(libc::CLOCK_MONOTONIC_COARSE)
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

/// Parse an HTTP date into unix seconds as lighttpd does (http_date.c): the length
/// picks the format (29 bytes: IMF-fixdate, longer: RFC 850, shorter: asctime, the
/// three RFC 9110 requires); the weekday must be a day's name but need not match the
/// date (RFC 9110 5.6.7 lets a recipient ignore it; lighttpd does); fields out of
/// range carry over as timegm() does. `now` (unix seconds) dates a two-digit year.
pub fn parse_http_date(s: &[u8], now: i64) -> Option<i64> {
    let s = trim_ows(s);
    let (year, mon, mday, hms) = match s.len() {
        29 => {
            // Sun, 06 Nov 1994 08:49:37 GMT
            weekday(s)?;
            expect(s, 3, b", ")?;
            expect(&s[7..], 0, b" ")?;
            expect(&s[11..], 0, b" ")?;
            expect(&s[16..], 0, b" ")?;
            expect(&s[25..], 0, b" GMT")?;
            let y = two(&s[12..])? * 100 + two(&s[14..])?;
            (y, month(&s[8..])?, two(&s[5..])?, clock(&s[17..])?)
        }
        30.. => {
            // Sunday, 06-Nov-94 08:49:37 GMT
            weekday(s)?;
            let comma = memchr::memchr(b',', s)?;
            let r = &s[comma..];
            if r.len() != 24 {
                return None;
            }
            expect(r, 0, b", ")?;
            expect(r, 4, b"-")?;
            expect(r, 8, b"-")?;
            expect(r, 11, b" ")?;
            expect(r, 20, b" GMT")?;
            // RFC 9110 5.6.7: a year more than 50 years ahead is in the past century.
            let this_year = wick_proto::log::civil_from_days(now.div_euclid(86_400)).0;
            let mut y = this_year - this_year.rem_euclid(100) + two(&r[9..])?;
            if y > this_year + 50 {
                y -= 100;
            }
            (y, month(&r[5..])?, two(&r[2..])?, clock(&r[12..])?)
        }
        24 => {
            // Sun Nov  6 08:49:37 1994
            weekday(s)?;
            expect(s, 3, b" ")?;
            expect(s, 7, b" ")?;
            expect(s, 10, b" ")?;
            expect(s, 19, b" ")?;
            let d = match s[8] {
                b' ' => digit(s[9])?,
                _ => two(&s[8..])?,
            };
            let y = two(&s[20..])? * 100 + two(&s[22..])?;
            (y, month(&s[4..])?, d, clock(&s[11..])?)
        }
        _ => return None,
    };
    Some((days_from_civil(year, mon, 1) + mday - 1) * 86_400 + hms)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn expect(s: &[u8], at: usize, want: &[u8]) -> Option<()> {
    (s.get(at..at + want.len())? == want).then_some(())
}

fn digit(c: u8) -> Option<i64> {
    c.is_ascii_digit().then(|| i64::from(c - b'0'))
}

fn two(s: &[u8]) -> Option<i64> {
    Some(digit(*s.first()?)? * 10 + digit(*s.get(1)?)?)
}

/// `HH:MM:SS` as seconds of the day (not range-checked: timegm carries over).
fn clock(s: &[u8]) -> Option<i64> {
    expect(s, 2, b":")?;
    expect(s, 5, b":")?;
    Some(two(s)? * 3600 + two(&s[3..])? * 60 + two(&s[6..])?)
}

fn weekday(s: &[u8]) -> Option<()> {
    let name = s.get(..3)?;
    DAYS.iter().any(|d| &d[..] == name).then_some(())
}

/// Month 1..=12 from its case-sensitive three-letter name.
fn month(s: &[u8]) -> Option<u32> {
    let name = s.get(..3)?;
    let i = MONTHS.iter().position(|m| &m[..] == name)?;
    Some(i as u32 + 1)
}

/// Days since 1970-01-01 of year `y`, month `m` (1..=12), day `d` (any: it carries).
fn days_from_civil(y: i64, m: u32, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000; // 2026

    #[test]
    fn formats_and_parses() {
        let mut b = [0u8; HTTP_DATE_LEN];
        format_http_date(784_111_777, &mut b);
        assert_eq!(&b, b"Sun, 06 Nov 1994 08:49:37 GMT");
        let p = |s: &[u8]| parse_http_date(s, NOW);
        assert_eq!(p(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(p(b" Sun, 06 Nov 1994 08:49:37 GMT\t"), Some(784_111_777));
        assert_eq!(p(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(p(b"Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(p(b"Sun Nov 06 08:49:37 1994"), Some(784_111_777));
        assert_eq!(p(b"yesterday"), None);
        format_http_date(0, &mut b);
        assert_eq!(&b, b"Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn weekday_is_not_checked_against_the_date() {
        let p = |s: &[u8]| parse_http_date(s, NOW);
        assert_eq!(p(b"Mon, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(p(b"Friday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(p(b"Wed Nov  6 08:49:37 1994"), Some(784_111_777));
        // Still a day's name, as lighttpd requires.
        assert_eq!(p(b"Xyz, 06 Nov 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn agrees_with_format_everywhere() {
        let mut b = [0u8; HTTP_DATE_LEN];
        for t in [
            0,
            951_782_400,
            1_709_164_799,
            4_107_542_400,
            253_402_300_799,
        ] {
            format_http_date(t, &mut b);
            assert_eq!(parse_http_date(&b, NOW), Some(t), "{}", t);
        }
        let mut t = -86_400 * 400;
        while t < 86_400 * 366 * 140 {
            format_http_date(t, &mut b);
            assert_eq!(parse_http_date(&b, NOW), Some(t));
            t += 86_400 * 7 + 3_607;
        }
    }

    #[test]
    fn two_digit_years_and_junk() {
        let p = |s: &[u8]| parse_http_date(s, NOW);
        // 2026 + 50 = 2076: "76" is 2076, "77" is 1977.
        assert_eq!(p(b"Sunday, 01-Jan-76 00:00:00 GMT"), Some(3_345_062_400));
        assert_eq!(p(b"Sunday, 01-Jan-77 00:00:00 GMT"), Some(220_924_800));
        // Out-of-range fields carry over as timegm() does.
        assert_eq!(p(b"Sun, 32 Dec 1969 00:00:00 GMT"), Some(0));
        for bad in [
            &b"Sun, 06 nov 1994 08:49:37 GMT"[..],
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49:37 GMT; length=5",
            b"Sun,  6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08-49-37 GMT",
            b"Sunday, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 94",
            b"\xff\xff\xff, 06 Nov 1994 08:49:37 GMT",
            b"",
        ] {
            assert_eq!(p(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
