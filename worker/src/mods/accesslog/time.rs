//! Local time and strftime(3) for %t, without the C library's time zone files
//! (the zone was read before the sandbox: wick_proto::log::zone).

use super::format::put_i64;
use crate::response::put_u64;

fn zone() -> &'static wick_proto::log::Zone {
    wick_proto::log::zone()
}

/// Broken-down time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tm {
    pub year: i64,
    /// 1..=12
    pub mon: u32,
    pub mday: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday
    pub wday: u32,
    /// 0..=365
    pub yday: u32,
    /// Seconds east of UTC.
    pub offset: i64,
    pub unix: i64,
}

impl Tm {
    /// `unix` in the zone `offset` seconds east of UTC.
    pub fn at(unix: i64, offset: i64) -> Tm {
        let t = unix + offset;
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (year, mon, mday) = wick_proto::log::civil_from_days(days);
        let jan1 = days_from_civil(year, 1, 1);
        Tm {
            year,
            mon,
            mday,
            hour: (secs / 3600) as u32,
            min: (secs / 60 % 60) as u32,
            sec: (secs % 60) as u32,
            wday: (days + 4).rem_euclid(7) as u32,
            yday: (days - jan1) as u32,
            offset,
            unix,
        }
    }

    /// Local time (the zone read by `wick_proto::log::init_timezone`).
    pub fn local(unix: i64) -> Tm {
        Tm::at(unix, zone().offset)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const WDAY: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTH: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// strftime(3) in the C locale for the conversions logs use; anything else is
/// copied as written.
pub fn strftime(out: &mut Vec<u8>, fmt: &[u8], tm: &Tm) {
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' || i + 1 == fmt.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut conv = fmt[i + 1];
        let mut skip = 2;
        // E and O modifiers change nothing in the C locale.
        if (conv == b'E' || conv == b'O') && i + 2 < fmt.len() {
            conv = fmt[i + 2];
            skip = 3;
        }
        let wd = WDAY[tm.wday as usize % 7];
        let mo = MONTH[(tm.mon as usize + 11) % 12];
        let h12 = match tm.hour % 12 {
            0 => 12,
            h => h,
        };
        match conv {
            b'a' => out.extend_from_slice(&wd.as_bytes()[..3]),
            b'A' => out.extend_from_slice(wd.as_bytes()),
            b'b' | b'h' => out.extend_from_slice(&mo.as_bytes()[..3]),
            b'B' => out.extend_from_slice(mo.as_bytes()),
            b'c' => strftime(out, b"%a %b %e %H:%M:%S %Y", tm),
            b'C' => write_num(out, tm.year.div_euclid(100), 2),
            b'd' => write_num(out, i64::from(tm.mday), 2),
            b'D' => strftime(out, b"%m/%d/%y", tm),
            b'e' => {
                if tm.mday < 10 {
                    out.push(b' ');
                }
                put_u64(out, u64::from(tm.mday));
            }
            b'F' => strftime(out, b"%Y-%m-%d", tm),
            b'H' => write_num(out, i64::from(tm.hour), 2),
            b'I' => write_num(out, i64::from(h12), 2),
            b'j' => write_num(out, i64::from(tm.yday) + 1, 3),
            b'k' => {
                if tm.hour < 10 {
                    out.push(b' ');
                }
                put_u64(out, u64::from(tm.hour));
            }
            b'l' => {
                if h12 < 10 {
                    out.push(b' ');
                }
                put_u64(out, u64::from(h12));
            }
            b'm' => write_num(out, i64::from(tm.mon), 2),
            b'M' => write_num(out, i64::from(tm.min), 2),
            b'n' => out.push(b'\n'),
            b'p' => out.extend_from_slice(if tm.hour < 12 { b"AM" } else { b"PM" }),
            b'P' => out.extend_from_slice(if tm.hour < 12 { b"am" } else { b"pm" }),
            b'r' => strftime(out, b"%I:%M:%S %p", tm),
            b'R' => strftime(out, b"%H:%M", tm),
            b's' => put_i64(out, tm.unix),
            b'S' => write_num(out, i64::from(tm.sec), 2),
            b't' => out.push(b'\t'),
            b'T' => strftime(out, b"%H:%M:%S", tm),
            b'u' => put_u64(out, u64::from(if tm.wday == 0 { 7 } else { tm.wday })),
            b'w' => put_u64(out, u64::from(tm.wday)),
            b'x' => strftime(out, b"%m/%d/%y", tm),
            b'X' => strftime(out, b"%H:%M:%S", tm),
            b'y' => write_num(out, tm.year.rem_euclid(100), 2),
            b'Y' => put_i64(out, tm.year),
            b'z' => {
                let o = tm.offset;
                out.push(if o < 0 { b'-' } else { b'+' });
                let o = o.abs() / 60;
                write_num(out, o / 60, 2);
                write_num(out, o % 60, 2);
            }
            b'Z' => {
                if tm.offset == zone().offset {
                    out.extend_from_slice(zone().name.as_bytes());
                } else if tm.offset == 0 {
                    out.extend_from_slice(b"UTC");
                }
            }
            b'%' => out.push(b'%'),
            _ => out.extend_from_slice(&fmt[i..i + skip]),
        }
        i += skip;
    }
}

/// `v` in decimal, zero-padded to `w` digits.
pub(super) fn write_num(out: &mut Vec<u8>, v: i64, w: usize) {
    let mut tmp = Vec::with_capacity(20);
    put_u64(&mut tmp, v.unsigned_abs());
    if v < 0 {
        out.push(b'-');
    }
    for _ in tmp.len()..w {
        out.push(b'0');
    }
    out.extend_from_slice(&tmp);
}
