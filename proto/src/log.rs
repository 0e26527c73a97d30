//! Error-log lines as lighttpd writes them: `YYYY-MM-DD HH:MM:SS: (source) message`,
//! one write(2) per line on an O_APPEND fd so lines from several processes never mix.

use std::fmt;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

/// The local time zone, fixed at start-up (before the sandbox hides
/// /etc/localtime): error-log stamps and mod_accesslog's %t use it.
#[derive(Debug)]
pub struct Zone {
    /// Seconds east of UTC.
    pub offset: i64,
    /// Its abbreviation (%Z), empty when the C library gives none.
    pub name: String,
}

static ZONE: OnceLock<Zone> = OnceLock::new();

/// Read the local time zone once; call before chroot/Landlock.
pub fn init_timezone() {
    ZONE.get_or_init(read_zone);
}

/// The zone read by [`init_timezone`] (UTC if it was never called).
pub fn zone() -> &'static Zone {
    ZONE.get_or_init(|| Zone {
        offset: 0,
        name: "UTC".into(),
    })
}

fn read_zone() -> Zone {
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset takes no arguments; localtime_r gets a valid time_t and an
    // owned tm; tm_zone points to static storage of the C library (or is null).
    unsafe {
        tzset();
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return Zone {
                offset: 0,
                name: "UTC".into(),
            };
        }
        let name = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        Zone {
            offset: tm.tm_gmtoff,
            name,
        }
    }
}

/// Local time formatted as `YYYY-MM-DD HH:MM:SS`.
pub fn timestamp(unix: i64) -> String {
    let t = unix + zone().offset;
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Render one line (with trailing newline).
pub fn format_line(source: &str, msg: fmt::Arguments<'_>) -> String {
    format!("{}: ({source}) {msg}\n", timestamp(now_unix()))
}

/// Where a process writes its error log: a file fd from the master, or stderr.
#[derive(Debug)]
pub enum Sink {
    Stderr,
    File(std::fs::File),
}

#[derive(Debug)]
pub struct ErrorLog {
    sink: Sink,
    source: &'static str,
}

impl ErrorLog {
    pub fn stderr(source: &'static str) -> ErrorLog {
        ErrorLog {
            sink: Sink::Stderr,
            source,
        }
    }

    pub fn file(fd: OwnedFd, source: &'static str) -> ErrorLog {
        ErrorLog {
            sink: Sink::File(std::fs::File::from(fd)),
            source,
        }
    }

    /// Replace the sink (SIGHUP reopen).
    pub fn set_fd(&mut self, fd: OwnedFd) {
        self.sink = Sink::File(std::fs::File::from(fd));
    }

    pub fn write(&mut self, msg: fmt::Arguments<'_>) {
        let line = format_line(self.source, msg);
        // One write per line; a failing log must not take the server down.
        let _ = match &mut self.sink {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(f) => f.write_all(line.as_bytes()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert!(timestamp(0).starts_with("19"));
    }
}
