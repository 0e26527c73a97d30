//! mod_accesslog: one line per request in lighttpd's format language, to a file or
//! a piped logger (fds the master opened and hands over) or to syslog (lines the
//! master writes). Lines gather in a buffer per target and leave in batches: when
//! the buffer is full, once a second, and before the worker exits, so a busy worker
//! makes no syscall per request and a stopping one loses no line.

use crate::response::put_u64;
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use wick_conf::cond::{Compiled, CondState};
use wick_conf::{Config, View};

/// lighttpd's default format.
pub const DEFAULT_FORMAT: &str = "%h %V %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"";

/// A pipe write of at most this many bytes is atomic: lines of several workers
/// sharing one piped logger never interleave.
pub const PIPE_BUF: usize = 4096;
/// A file target is written once this much is gathered (or once a second).
const FILE_BATCH: usize = 64 * 1024;
/// A logger that does not read (dead, restarting, stuck) holds at most this much
/// per worker; later lines are dropped and counted, the event loop never blocks.
const MAX_BACKLOG: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Sec,
    Msec,
    Usec,
    Nsec,
}

/// How `%t` prints the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// strftime-style text; None is lighttpd's `[%d/%b/%Y:%H:%M:%S %z]`.
    Text(Option<String>),
    /// Seconds (or ms, us, ns) since the epoch.
    Epoch(Unit),
    /// The sub-second part, zero-padded (msec_frac, usec_frac, nsec_frac).
    Frac(Unit),
}

/// One piece of a parsed format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Literal(Vec<u8>),
    /// `%a`, `%h`; `%{mask}a` hides the host part (IPv4 /24, IPv6 /48).
    RemoteAddr {
        mask: bool,
    },
    LocalAddr,
    Port {
        remote: bool,
    },
    /// `%b`, `%B`: response body bytes.
    BodyBytes,
    /// `%O`: response bytes with the header.
    BytesOut,
    /// `%I`: request bytes with the header.
    BytesIn,
    Cookie(String),
    /// `%{NAME}e`, `%{NAME}n`, and `%u` (REMOTE_USER).
    Env(String),
    Filename,
    Protocol,
    RequestHeader(String),
    ResponseHeader(String),
    KeepAliveCount,
    Method,
    Query,
    RequestLine,
    Status,
    Time {
        begin: bool,
        stamp: Stamp,
    },
    TimeUsed(Unit),
    /// `%U`: the request target without the query.
    Url,
    ServerName,
    /// `%V`: the Host.
    Host,
    /// `%X`: `+` kept alive, `-` closed, `X` aborted.
    ConnStatus,
    /// `%P` (lighttpd prints nothing).
    Nothing,
}

/// A parsed accesslog.format.
#[derive(Debug)]
pub struct Format {
    pub fields: Vec<Field>,
    /// The last `%t` text and its second (lighttpd formats it once a second).
    stamp: RefCell<(i64, Vec<u8>)>,
}

impl PartialEq for Format {
    fn eq(&self, o: &Format) -> bool {
        self.fields == o.fields
    }
}

/// lighttpd's backslash escapes in the format text: \a \b \f \n \r \t \v; any
/// other escaped character stands for itself; a trailing backslash is dropped.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(n) = it.next() else { break };
        out.push(match n {
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            other => other,
        });
    }
    out
}

fn push_literal(out: &mut Vec<Field>, s: &[u8]) {
    if let Some(Field::Literal(l)) = out.last_mut() {
        l.extend_from_slice(s);
    } else {
        out.push(Field::Literal(s.to_vec()));
    }
}

fn unit(arg: &str) -> Option<Unit> {
    Some(match arg {
        "" | "s" | "sec" => Unit::Sec,
        "ms" | "msec" => Unit::Msec,
        "us" | "usec" => Unit::Usec,
        "ns" | "nsec" => Unit::Nsec,
        _ => return None,
    })
}

fn stamp(arg: &str) -> Result<Field, String> {
    let (begin, rest) = if let Some(r) = arg.strip_prefix("begin:") {
        (true, r)
    } else {
        (false, arg.strip_prefix("end:").unwrap_or(arg))
    };
    let stamp = match rest {
        "" => Stamp::Text(None),
        "sec" => Stamp::Epoch(Unit::Sec),
        "msec" => Stamp::Epoch(Unit::Msec),
        "usec" => Stamp::Epoch(Unit::Usec),
        "nsec" => Stamp::Epoch(Unit::Nsec),
        "msec_frac" => Stamp::Frac(Unit::Msec),
        "usec_frac" => Stamp::Frac(Unit::Usec),
        "nsec_frac" => Stamp::Frac(Unit::Nsec),
        t if t.contains('%') => Stamp::Text(Some(t.to_string())),
        _ => {
            return Err(format!(
                "constant string for time format (misspelled token? or missing '%'): {arg}"
            ))
        }
    };
    Ok(Field::Time { begin, stamp })
}

fn field(c: u8, arg: Option<&str>) -> Result<Field, String> {
    let a = arg.unwrap_or("");
    let named = |f: fn(String) -> Field| {
        if a.is_empty() {
            Field::Literal(Vec::new())
        } else {
            f(a.to_string())
        }
    };
    Ok(match c {
        b'a' | b'h' => match a {
            "" => Field::RemoteAddr { mask: false },
            "mask" => Field::RemoteAddr { mask: true },
            _ => return Err(format!("invalid format %{{mask}}a: %{{{a}}}")),
        },
        b'A' => Field::LocalAddr,
        b'b' | b'B' => Field::BodyBytes,
        b'C' => named(Field::Cookie),
        b'D' => Field::TimeUsed(Unit::Usec),
        b'e' | b'n' => named(Field::Env),
        b'f' => Field::Filename,
        b'H' => Field::Protocol,
        b'i' => named(Field::RequestHeader),
        b'I' => Field::BytesIn,
        b'k' => Field::KeepAliveCount,
        b'l' => Field::Literal(b"-".to_vec()),
        b'm' => Field::Method,
        b'o' => named(Field::ResponseHeader),
        b'O' => Field::BytesOut,
        b'p' => match a {
            "" | "canonical" | "local" => Field::Port { remote: false },
            "remote" => Field::Port { remote: true },
            _ => {
                return Err(format!(
                    "invalid format %{{canonical,local,remote}}p: %{{{a}}}"
                ))
            }
        },
        b'P' => Field::Nothing,
        b'q' => Field::Query,
        b'r' => Field::RequestLine,
        b's' => Field::Status,
        b't' => stamp(a)?,
        b'T' => {
            Field::TimeUsed(unit(a).ok_or_else(|| format!("invalid time unit in %{{UNIT}}T: {a}"))?)
        }
        b'u' => Field::Env("REMOTE_USER".into()),
        b'U' => Field::Url,
        b'v' => Field::ServerName,
        b'V' => Field::Host,
        b'X' => Field::ConnStatus,
        b'%' => Field::Literal(b"%".to_vec()),
        _ => {
            return Err(format!(
                "% or %{{...}} must be followed by a valid format-specifier (%{})",
                c as char
            ))
        }
    })
}

/// Parse an accesslog.format value as lighttpd does (its error texts).
pub fn parse_format(text: &str) -> Result<Format, String> {
    let f = unescape(text);
    if f.is_empty() {
        return Err("accesslog.format is empty".into());
    }
    let mut out: Vec<Field> = Vec::new();
    let mut i = 0;
    while i < f.len() {
        let start = i;
        while i < f.len() && f[i] != b'%' {
            i += 1;
        }
        if start != i {
            push_literal(&mut out, &f[start..i]);
        }
        if i == f.len() {
            break;
        }
        i += 1; // the '%'
        if i == f.len() {
            return Err("% must be followed by a format-specifier".into());
        }
        let mut arg = None;
        if f[i] == b'{' {
            let k = i + 1;
            let Some(len) = f[k..].iter().position(|&c| c == b'}') else {
                return Err("%{...} must contain string and %{ must be terminated by }".into());
            };
            if len == 0 {
                return Err("%{...} must contain string and %{ must be terminated by }".into());
            }
            arg = Some(String::from_utf8_lossy(&f[k..k + len]).into_owned());
            i = k + len + 1;
        } else {
            if f[i] == b'<' || f[i] == b'>' {
                i += 1;
            }
            match f.get(i) {
                Some(b'%') => {
                    push_literal(&mut out, b"%");
                    i += 1;
                    continue;
                }
                Some(b'l') => {
                    push_literal(&mut out, b"-");
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        let Some(&c) = f.get(i) else {
            return Err("% or %{...} must be followed by a valid format-specifier".into());
        };
        match field(c, arg.as_deref())? {
            Field::Literal(l) => push_literal(&mut out, &l),
            other => out.push(other),
        }
        i += 1;
    }
    Ok(Format {
        fields: out,
        stamp: RefCell::new((i64::MIN, Vec::new())),
    })
}

/// accesslog.escaping
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// `\"`, `\\`, C escapes for \a \b \t \n \v \f \r, `\xHH` for other bytes
    /// outside printable ASCII.
    Default,
    /// `\"`, `\\`, the same short escapes, `\u00HH` for other control bytes;
    /// bytes from 0x80 up are kept (UTF-8).
    Json,
}

impl Escape {
    pub fn from_option(v: &str) -> Escape {
        if v == "json" {
            Escape::Json
        } else {
            Escape::Default
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Append `s` escaped for a log line.
pub fn escape(out: &mut Vec<u8>, s: &[u8], how: Escape) {
    let plain = |c: u8| match how {
        Escape::Default => (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\',
        Escape::Json => c >= 0x20 && c != 0x7f && c != b'"' && c != b'\\',
    };
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if plain(c) {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        match c {
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0b => out.extend_from_slice(b"\\v"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => {
                out.extend_from_slice(match how {
                    Escape::Default => b"\\x",
                    Escape::Json => b"\\u00",
                });
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// Wall-clock time with nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

impl Timespec {
    pub fn now() -> Timespec {
        // CLOCK_REALTIME, through the vDSO like the C call.
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timespec {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        }
    }
}

/// What a line may need from the request, its response and its connection.
pub trait Lookup {
    fn request_header(&self, name: &str) -> Option<&[u8]>;
    fn response_header(&self, name: &str) -> Option<&[u8]>;
    /// The request's environment (mod_setenv, REMOTE_USER).
    fn env(&self, name: &str) -> Option<&[u8]>;
}

/// One finished request, as the log sees it.
pub struct Record<'a> {
    pub remote: IpAddr,
    /// 0 when not known (`%{remote}p` prints `-`).
    pub remote_port: u16,
    /// The listening socket's address; None for a unix socket.
    pub local: Option<std::net::SocketAddr>,
    /// The unix socket's path (for `%A`), when that is the listener.
    pub local_path: &'a [u8],
    pub method: &'a [u8],
    /// The request target as the client sent it.
    pub target: &'a [u8],
    /// `HTTP/1.1`
    pub version: &'a [u8],
    pub host: &'a [u8],
    pub server_name: &'a [u8],
    /// The file: document root and the path below it.
    pub filename: [&'a [u8]; 2],
    pub status: u16,
    pub bytes_out: u64,
    pub head_out: u64,
    pub bytes_in: u64,
    pub start: Timespec,
    pub end: Timespec,
    /// Requests on this connection so far, this one included.
    pub requests: u32,
    pub keep_alive: bool,
    pub aborted: bool,
    pub lookup: &'a dyn Lookup,
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    put_u64(out, v.unsigned_abs());
}

/// lighttpd: a positive count minus `adj` (not below 0), or `-` for none.
fn put_bytes(out: &mut Vec<u8>, v: u64, adj: u64) {
    if v > 0 {
        put_u64(out, v.saturating_sub(adj));
    } else {
        out.push(b'-');
    }
}

/// A value, escaped; `-` when absent or empty.
fn put_value(out: &mut Vec<u8>, v: Option<&[u8]>, how: Escape) {
    match v {
        Some(v) if !v.is_empty() => escape(out, v, how),
        _ => out.push(b'-'),
    }
}

fn masked(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & 0xffff_ff00)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V6(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00).to_ipv6_mapped()),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !((1u128 << 80) - 1))),
        },
    }
}

/// The value of cookie `name` in a Cookie header (lighttpd's scan).
fn cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    for part in header.split(|&c| c == b';') {
        let part = crate::request::trim(part);
        if let Some(v) = part.strip_prefix(name).and_then(|r| r.strip_prefix(b"=")) {
            let v = crate::request::trim(v);
            return (!v.is_empty()).then_some(v);
        }
    }
    None
}

fn write_num(out: &mut Vec<u8>, v: i64, w: usize) {
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

impl Format {
    /// Append the line for `r` (without the newline).
    pub fn write(&self, r: &Record, how: Escape, out: &mut Vec<u8>) {
        for f in &self.fields {
            match f {
                Field::Literal(l) => out.extend_from_slice(l),
                Field::RemoteAddr { mask } => {
                    let ip = if *mask { masked(r.remote) } else { r.remote };
                    let _ = io::Write::write_fmt(out, format_args!("{ip}"));
                }
                Field::LocalAddr => match r.local {
                    Some(a) => {
                        let _ = io::Write::write_fmt(out, format_args!("{}", a.ip()));
                    }
                    None => out.extend_from_slice(r.local_path),
                },
                Field::Port { remote: true } => match r.remote_port {
                    0 => out.push(b'-'),
                    p => put_u64(out, u64::from(p)),
                },
                Field::Port { remote: false } => {
                    if let Some(a) = r.local {
                        put_u64(out, u64::from(a.port()));
                    }
                }
                Field::BodyBytes => put_bytes(out, r.bytes_out, r.head_out),
                Field::BytesOut => put_bytes(out, r.bytes_out, 0),
                Field::BytesIn => put_bytes(out, r.bytes_in, 0),
                Field::Cookie(name) => {
                    if let Some(v) = r
                        .lookup
                        .request_header("Cookie")
                        .and_then(|h| cookie(h, name.as_bytes()))
                    {
                        escape(out, v, how);
                    }
                }
                Field::Env(name) => put_value(out, r.lookup.env(name), how),
                Field::Filename => {
                    if r.filename.iter().all(|p| p.is_empty()) {
                        out.push(b'-');
                    }
                    for p in r.filename {
                        escape(out, p, how);
                    }
                }
                Field::Protocol => out.extend_from_slice(r.version),
                Field::RequestHeader(n) => put_value(out, r.lookup.request_header(n), how),
                Field::ResponseHeader(n) => put_value(out, r.lookup.response_header(n), how),
                Field::KeepAliveCount => put_u64(out, u64::from(r.requests.saturating_sub(1))),
                Field::Method => out.extend_from_slice(r.method),
                Field::Query => escape(out, query(r.target), how),
                // No method: a refused request, its first line as received.
                Field::RequestLine if r.method.is_empty() => escape(out, r.target, how),
                Field::RequestLine => {
                    out.extend_from_slice(r.method);
                    out.push(b' ');
                    escape(out, r.target, how);
                    out.push(b' ');
                    out.extend_from_slice(r.version);
                }
                Field::Status => put_u64(out, u64::from(r.status)),
                Field::Time { begin, stamp } => {
                    let t = if *begin { r.start } else { r.end };
                    self.time(out, t, stamp);
                }
                Field::TimeUsed(u) => {
                    let used = (r.end.sec - r.start.sec) as i128 * 1_000_000_000
                        + i128::from(r.end.nsec)
                        - i128::from(r.start.nsec);
                    let v: i64 = match u {
                        Unit::Sec => r.end.sec - r.start.sec,
                        _ if used <= 0 => -1,
                        Unit::Msec => ((used + 999_999) / 1_000_000) as i64,
                        Unit::Usec => ((used + 999) / 1_000) as i64,
                        Unit::Nsec => used as i64,
                    };
                    put_i64(out, v);
                }
                Field::Url => escape(out, path_part(r.target), how),
                Field::ServerName => put_value(out, Some(r.server_name), how),
                Field::Host => put_value(out, Some(r.host), how),
                Field::ConnStatus => out.push(if r.aborted {
                    b'X'
                } else if r.keep_alive {
                    b'+'
                } else {
                    b'-'
                }),
                Field::Nothing => {}
            }
        }
    }

    fn time(&self, out: &mut Vec<u8>, t: Timespec, stamp: &Stamp) {
        match stamp {
            Stamp::Epoch(u) => {
                let ns = i64::from(t.nsec);
                put_i64(
                    out,
                    match u {
                        Unit::Sec => t.sec,
                        Unit::Msec => t.sec * 1000 + (ns + 999_999) / 1_000_000,
                        Unit::Usec => t.sec * 1_000_000 + (ns + 999) / 1000,
                        Unit::Nsec => t.sec * 1_000_000_000 + ns,
                    },
                );
            }
            Stamp::Frac(u) => {
                let ns = i64::from(t.nsec);
                match u {
                    Unit::Msec => write_num(out, ((ns + 999_999) / 1_000_000).min(999), 3),
                    Unit::Usec => write_num(out, ((ns + 999) / 1000).min(999_999), 6),
                    _ => write_num(out, ns, 9),
                }
            }
            Stamp::Text(fmt) => {
                let mut cache = self.stamp.borrow_mut();
                if cache.0 != t.sec {
                    cache.1.clear();
                    let f = fmt.as_deref().unwrap_or("[%d/%b/%Y:%H:%M:%S %z]");
                    strftime(&mut cache.1, f.as_bytes(), &Tm::local(t.sec));
                    cache.0 = t.sec;
                }
                out.extend_from_slice(&cache.1);
            }
        }
    }
}

fn path_part(target: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', target) {
        Some(i) => &target[..i],
        None => target,
    }
}

fn query(target: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', target) {
        Some(i) => &target[i + 1..],
        None => b"",
    }
}

// ---- local time and strftime, without the C library's time zone files ------------

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
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
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

// ---- targets and their buffers ---------------------------------------------------

/// Every accesslog.filename of the config, in the order the master opens them and
/// hands their fds over (first appearance, duplicates once; empty values skipped;
/// none when mod_accesslog is not loaded).
pub fn targets(cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Without the module its keys are ignored (lighttpd warns): nothing to open.
    if !cfg.server.modules.iter().any(|m| m == "mod_accesslog") {
        return out;
    }
    for p in &cfg.patches {
        if let Some(f) = &p.accesslog_filename {
            if !f.is_empty() && !out.contains(f) {
                out.push(f.clone());
            }
        }
    }
    out
}

/// One file or pipe the worker writes lines to.
#[derive(Debug)]
pub struct Sink {
    fd: OwnedFd,
    pipe: bool,
    buf: Vec<u8>,
    /// Lines dropped because the reader did not keep up.
    pub dropped: u64,
}

impl Sink {
    /// A pipe is made non-blocking: a logger that stops reading must not stop the
    /// event loop (its lines wait in the buffer, up to a limit).
    pub fn new(fd: OwnedFd) -> Sink {
        let raw = fd.as_raw_fd();
        let pipe = crate::stat_cache::fstat(raw)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
        if pipe {
            crate::sys::set_nonblocking(raw);
        }
        Sink {
            fd,
            pipe,
            buf: Vec::new(),
            dropped: 0,
        }
    }

    pub fn is_pipe(&self) -> bool {
        self.pipe
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Queue one line (with its newline). Writes when a batch is full.
    pub fn line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.buf.len() + line.len() > MAX_BACKLOG {
            self.dropped += 1;
            return Ok(());
        }
        if self.pipe && !self.buf.is_empty() && self.buf.len() + line.len() > PIPE_BUF {
            self.flush()?;
        }
        self.buf.extend_from_slice(line);
        let batch = if self.pipe { PIPE_BUF } else { FILE_BATCH };
        if self.buf.len() >= batch {
            self.flush()?;
        }
        Ok(())
    }

    /// Write what is gathered. A pipe gets whole lines, at most [`PIPE_BUF`] bytes
    /// per write; what it does not take now stays for the next flush.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut done = 0;
        let mut result = Ok(());
        while done < self.buf.len() {
            let rest = &self.buf[done..];
            let chunk = if self.pipe && rest.len() > PIPE_BUF {
                match memchr::memrchr(b'\n', &rest[..PIPE_BUF]) {
                    Some(i) => i + 1,
                    // One line longer than PIPE_BUF: it goes alone.
                    None => memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                }
            } else {
                rest.len()
            };
            match crate::sys::write(self.fd.as_raw_fd(), &rest[..chunk]) {
                Ok(n) if n > 0 => done += n,
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The target is gone (disk full, pipe closed): these lines are lost.
                    done = self.buf.len();
                    result = Err(e);
                }
            }
        }
        self.buf.drain(..done);
        if self.buf.capacity() > 4 * FILE_BATCH && self.buf.len() < FILE_BATCH {
            self.buf.shrink_to(FILE_BATCH);
        }
        result
    }

    /// A reopened file (SIGHUP): what is gathered goes to the old one first.
    pub fn replace(&mut self, fd: OwnedFd) -> io::Result<()> {
        let r = self.flush();
        let mut next = Sink::new(fd);
        next.buf = std::mem::take(&mut self.buf);
        next.dropped = self.dropped;
        *self = next;
        r
    }
}

// ---- the module ------------------------------------------------------------------

/// Where a line goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Index into the targets (a file or a pipe).
    Target(usize),
    /// To syslog, at this level.
    Syslog(u8),
}

/// Where and how one request is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub dest: Dest,
    /// The block whose accesslog.format is in force; None: the default format.
    pub format: Option<usize>,
    pub how: Escape,
}

/// The worker's access log: formats parsed once per block, targets by block, the
/// buffers, and the syslog lines waiting to go to the master.
pub struct AccessLog {
    /// Parsed accesslog.format of each block that sets one (index = block id).
    formats: Vec<Option<Format>>,
    default: Format,
    /// Index into `targets` of each block's accesslog.filename (None: empty or unset).
    target_of: Vec<Option<Option<usize>>>,
    names: Vec<String>,
    sinks: Vec<Option<Sink>>,
    /// (syslog level, line) for the master to write.
    syslog: Vec<(u8, String)>,
    scratch: Vec<u8>,
    /// Write errors to report in the error log (once per target until it works).
    pub errors: Vec<String>,
    failing: Vec<bool>,
    /// Address of each listener (None: a unix socket, see `paths`).
    local: Vec<Option<std::net::SocketAddr>>,
    paths: Vec<Vec<u8>>,
}

impl AccessLog {
    /// Parse every block's format. Err: the first bad one, with where it is set.
    pub fn new(cfg: &Config) -> Result<AccessLog, String> {
        wick_proto::log::init_timezone();
        let names = targets(cfg);
        let mut formats = Vec::with_capacity(cfg.patches.len());
        let mut target_of = Vec::with_capacity(cfg.patches.len());
        for (id, p) in cfg.patches.iter().enumerate() {
            formats.push(match &p.accesslog_format {
                Some(f) if !f.is_empty() => Some(parse_format(f).map_err(|e| {
                    let at = cfg
                        .blocks
                        .get(id)
                        .and_then(|b| b.settings.iter().find(|s| s.key == "accesslog.format"))
                        .map(|s| format!("{}:{}:{}: ", s.loc.file, s.loc.line, s.loc.col))
                        .unwrap_or_default();
                    format!("{at}parsing accesslog-definition failed: {e}: {f}")
                })?),
                _ => None,
            });
            target_of.push(
                p.accesslog_filename
                    .as_ref()
                    .map(|f| names.iter().position(|n| n == f)),
            );
        }
        let n = names.len();
        let mut local = Vec::new();
        let mut paths = Vec::new();
        for l in &cfg.listeners {
            match &l.addr {
                wick_conf::ListenAddr::Tcp(a) => {
                    local.push(Some(*a));
                    paths.push(Vec::new());
                }
                wick_conf::ListenAddr::Unix(p) => {
                    local.push(None);
                    paths.push(p.as_os_str().as_encoded_bytes().to_vec());
                }
            }
        }
        Ok(AccessLog {
            local,
            paths,
            formats,
            default: parse_format(DEFAULT_FORMAT)?,
            target_of,
            sinks: (0..n).map(|_| None).collect(),
            failing: vec![false; n],
            names,
            syslog: Vec::new(),
            scratch: Vec::with_capacity(512),
            errors: Vec::new(),
        })
    }

    /// Is any block logging at all? (A config without mod_accesslog never calls `log`.)
    pub fn target_count(&self) -> usize {
        self.names.len()
    }

    /// The fds the master sent, in [`targets`] order. A second call (SIGHUP) swaps
    /// them after flushing to the old ones.
    pub fn set_fds(&mut self, fds: Vec<OwnedFd>) {
        for (i, fd) in fds.into_iter().enumerate() {
            let Some(slot) = self.sinks.get_mut(i) else {
                break;
            };
            match slot {
                Some(s) => {
                    if let Err(e) = s.replace(fd) {
                        self.errors
                            .push(format!("writing access log {} failed: {e}", self.names[i]));
                    }
                }
                None => *slot = Some(Sink::new(fd)),
            }
        }
    }

    /// Where and how a request is logged, by the options in force for it; None
    /// when it is not logged.
    pub fn resolve(&self, compiled: &Compiled, state: &CondState, view: &View) -> Option<Resolved> {
        let dest = if *view.accesslog_use_syslog {
            Dest::Syslog((*view.accesslog_syslog_level).min(7) as u8)
        } else {
            let b = compiled.winning_block(state, |p| p.accesslog_filename.is_some());
            match self.target_of.get(b).copied().flatten() {
                Some(Some(t)) => Dest::Target(t),
                _ => return None,
            }
        };
        let fb = compiled.winning_block(state, |p| {
            p.accesslog_format.as_ref().is_some_and(|f| !f.is_empty())
        });
        Some(Resolved {
            dest,
            format: self
                .formats
                .get(fb)
                .is_some_and(Option::is_some)
                .then_some(fb),
            how: Escape::from_option(view.accesslog_escaping),
        })
    }

    /// Log one request with the options in force for it.
    pub fn log(&mut self, compiled: &Compiled, state: &CondState, view: &View, r: &Record) {
        if let Some(res) = self.resolve(compiled, state, view) {
            self.write(&res, r);
        }
    }

    /// The format a resolved request uses.
    fn format_of(&self, res: &Resolved) -> &Format {
        res.format
            .and_then(|b| self.formats.get(b))
            .and_then(Option::as_ref)
            .unwrap_or(&self.default)
    }

    /// Format and queue one line.
    pub fn write(&mut self, res: &Resolved, r: &Record) {
        let mut line = std::mem::take(&mut self.scratch);
        line.clear();
        self.format_of(res).write(r, res.how, &mut line);
        self.queue(res, line);
    }

    /// Queue a formatted line (without its newline); keeps the buffer for reuse.
    fn queue(&mut self, res: &Resolved, line: Vec<u8>) {
        self.scratch = line;
        match res.dest {
            Dest::Syslog(level) => {
                if !self.scratch.is_empty() {
                    self.syslog
                        .push((level, String::from_utf8_lossy(&self.scratch).into_owned()));
                }
            }
            Dest::Target(t) => {
                self.scratch.push(b'\n');
                if let Some(Some(sink)) = self.sinks.get_mut(t) {
                    let r = sink.line(&self.scratch);
                    self.note(t, r);
                }
            }
        }
    }

    fn note(&mut self, t: usize, r: io::Result<()>) {
        match r {
            Ok(()) => self.failing[t] = false,
            Err(e) => {
                if !self.failing[t] {
                    self.failing[t] = true;
                    self.errors
                        .push(format!("writing access log {} failed: {e}", self.names[t]));
                }
            }
        }
    }

    /// Write everything gathered (once a second, and before exit). Returns the
    /// syslog lines for the master.
    pub fn flush(&mut self) -> Vec<(u8, String)> {
        for t in 0..self.sinks.len() {
            let r = match &mut self.sinks[t] {
                Some(s) if s.pending() > 0 => s.flush(),
                _ => continue,
            };
            self.note(t, r);
        }
        std::mem::take(&mut self.syslog)
    }

    /// Lines waiting for syslog (the caller sends them when there are many).
    pub fn syslog_pending(&self) -> usize {
        self.syslog.len()
    }
}

// ---- the module in the worker ----------------------------------------------------

/// What a flush leaves for the event loop to pass on.
#[derive(Default)]
pub struct Flushed {
    /// (syslog level, line) for `FromWorker::AccessLogSyslog`.
    pub syslog: Vec<(u8, String)>,
    /// Write failures, for the error log.
    pub errors: Vec<String>,
}

/// mod_accesslog: a request_done hook that formats the line into its buffers and
/// a trigger (once a second, and before the worker exits) that writes them. Its
/// state is its own; the worker reaches it through `Mods::accesslog`.
pub struct Accesslog {
    log: RefCell<AccessLog>,
}

impl Accesslog {
    /// Parse the formats (a bad one stops start-up).
    pub fn new(cfg: &Config) -> Result<Accesslog, String> {
        Ok(Accesslog {
            log: RefCell::new(AccessLog::new(cfg)?),
        })
    }

    /// The access log fds the master sent (`ToWorker::AccessLogs`).
    pub fn deliver(&self, fds: Vec<OwnedFd>) {
        self.log.borrow_mut().set_fds(fds);
    }

    /// Write what the log gathered.
    pub fn flush(&self) -> Flushed {
        let mut log = self.log.borrow_mut();
        Flushed {
            syslog: log.flush(),
            errors: std::mem::take(&mut log.errors),
        }
    }

    /// Lines waiting (syslog ones are sent when a batch is large, before the second ends).
    pub fn pending_syslog(&self) -> usize {
        self.log.borrow().syslog_pending()
    }
}

/// What a line needs that is known when the request is handled.
struct Early<'a> {
    remote: IpAddr,
    remote_port: u16,
    local: Option<std::net::SocketAddr>,
    local_path: &'a [u8],
    method: &'a [u8],
    target: &'a [u8],
    version: &'static [u8],
    host: &'a [u8],
    server_name: &'a [u8],
    filename: [&'a [u8]; 2],
    bytes_in: u64,
    start: Timespec,
    requests: u32,
}

impl AccessLog {
    fn early<'a>(&'a self, x: &'a super::DoneCx) -> Early<'a> {
        let b = x.base;
        let h = b.head;
        let body_in = match h.body {
            crate::request::BodyKind::Length(n) => n,
            _ => 0,
        };
        let filename = [x.rq.docroot.as_bytes(), &x.rq.rel[..]];
        let host = match memchr::memchr(b':', &x.rq.host) {
            Some(i) if !x.rq.host.starts_with(b"[") => &x.rq.host[..i],
            _ => &x.rq.host[..],
        };
        let server_name: &[u8] = if !x.rq.server_name.is_empty() {
            x.rq.server_name.as_bytes()
        } else if !x.view.server_name.is_empty() {
            x.view.server_name.as_bytes()
        } else {
            host
        };
        Early {
            remote: x.rq.remote_ip,
            remote_port: b.peer_port,
            local: self.local.get(b.listener).copied().flatten(),
            local_path: self.paths.get(b.listener).map_or(&b""[..], |p| p),
            method: b.method(),
            target: h.target.of(b.buf),
            version: match h.version {
                crate::request::Version::Http10 => b"HTTP/1.0",
                crate::request::Version::Http11 => b"HTTP/1.1",
            },
            host: &x.rq.host,
            server_name,
            filename,
            bytes_in: h.len as u64 + body_in,
            start: x.rq.started,
            requests: x.requests,
        }
    }
}

/// The head of a response (up to the blank line) and whether it keeps the
/// connection open.
fn response_head(resp: &[u8]) -> (&[u8], bool) {
    let len = memchr::memmem::find(resp, b"\r\n\r\n").map_or(resp.len(), |i| i + 4);
    let head = &resp[..len];
    let keep_alive = !head
        .windows(17)
        .any(|w| w.eq_ignore_ascii_case(b"connection: close"));
    (head, keep_alive)
}

fn header_in<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut lines = head.split(|&c| c == b'\n').skip(1);
    lines.find_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let colon = memchr::memchr(b':', l)?;
        l[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| crate::request::trim(&l[colon + 1..]))
    })
}

fn env_in<'a>(env: &'a [(String, String)], user: &'a str, name: &str) -> Option<&'a [u8]> {
    if name == "REMOTE_USER" && !user.is_empty() {
        return Some(user.as_bytes());
    }
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_bytes())
}

fn record<'a>(
    e: &'a Early<'a>,
    status: u16,
    bytes_out: u64,
    head: &[u8],
    keep_alive: bool,
    lookup: &'a dyn Lookup,
) -> Record<'a> {
    Record {
        remote: e.remote,
        remote_port: e.remote_port,
        local: e.local,
        local_path: e.local_path,
        method: e.method,
        target: e.target,
        version: e.version,
        host: e.host,
        server_name: e.server_name,
        filename: e.filename,
        status,
        bytes_out,
        head_out: head.len() as u64,
        bytes_in: e.bytes_in,
        start: e.start,
        end: Timespec::now(),
        requests: e.requests,
        keep_alive,
        aborted: false,
        lookup,
    }
}

/// Request and response headers and the environment, for a [`Record`].
struct Done<'a, 'b> {
    x: &'a super::DoneCx<'b>,
    head: &'a [u8],
}

impl Lookup for Done<'_, '_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.x.rq.header(self.x.base, name)
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        header_in(self.head, name)
    }

    fn env(&self, name: &str) -> Option<&[u8]> {
        env_in(&self.x.rq.env, &self.x.rq.remote_user, name)
    }
}

/// The module list holds it shared with `Mods::accesslog`.
impl super::Module for std::rc::Rc<Accesslog> {
    fn name(&self) -> &'static str {
        "mod_accesslog"
    }

    fn hooks(&self) -> u16 {
        super::hook::REQUEST_DONE
    }

    fn request_done(&self, x: &super::DoneCx) {
        let v = x.view;
        if !*v.accesslog_use_syslog && v.accesslog_filename.is_empty() {
            return;
        }
        let (head, keep_alive) = response_head(x.resp);
        {
            let mut log = self.log.borrow_mut();
            let Some(res) = log.resolve(x.compiled, x.cond, v) else {
                return;
            };
            let mut line = std::mem::take(&mut log.scratch);
            line.clear();
            {
                // `early` borrows the log's listener table: queue after it is done.
                let early = log.early(x);
                let done = Done { x, head };
                let r = record(&early, x.status, x.bytes_out, head, keep_alive, &done);
                log.format_of(&res).write(&r, res.how, &mut line);
            }
            log.queue(&res, line);
        }
    }

    fn trigger(&self, t: &mut super::Trigger) {
        let f = self.flush();
        t.syslog.extend(f.syslog);
        t.errors.extend(f.errors);
    }
}

/// A request refused before it was understood (400, 413, 414, 431, 501, 505).
pub struct Refused<'a> {
    pub remote: IpAddr,
    pub remote_port: u16,
    pub listener: usize,
    /// The head as far as it was read.
    pub head: &'a [u8],
    pub status: u16,
    /// The error response sent.
    pub resp: &'a [u8],
    pub requests: u32,
}

/// The first line of a refused head, at most this long in the log.
const REFUSED_LINE_MAX: usize = 1024;

/// Log a refused request, as lighttpd does (its request_done hook runs for every
/// response): by the global scope's access-log options, no condition having been
/// evaluated, `%r` being its first line as received, escaped.
pub fn refused(me: &Accesslog, compiled: &Compiled, r: &Refused) {
    {
        let mut log = me.log.borrow_mut();
        let mut view = compiled.defaults().view();
        view.apply(compiled.patch(0));
        if !*view.accesslog_use_syslog && view.accesslog_filename.is_empty() {
            return;
        }
        let state = CondState::new(compiled);
        let Some(res) = log.resolve(compiled, &state, &view) else {
            return;
        };
        let line_end = memchr::memchr2(b'\r', b'\n', r.head).unwrap_or(r.head.len());
        let first = &r.head[..line_end.min(REFUSED_LINE_MAX)];
        let (head, keep_alive) = response_head(r.resp);
        let now = Timespec::now();
        let mut line = std::mem::take(&mut log.scratch);
        line.clear();
        {
            let lookup = RefusedLookup { head };
            let rec = Record {
                remote: r.remote,
                remote_port: r.remote_port,
                local: log.local.get(r.listener).copied().flatten(),
                local_path: log.paths.get(r.listener).map_or(&b""[..], |p| p),
                method: b"",
                target: first,
                version: b"",
                host: b"",
                server_name: b"",
                filename: [b"", b""],
                status: r.status,
                bytes_out: r.resp.len() as u64,
                head_out: head.len() as u64,
                bytes_in: r.head.len() as u64,
                start: now,
                end: now,
                requests: r.requests,
                keep_alive,
                aborted: false,
                lookup: &lookup,
            };
            log.format_of(&res).write(&rec, res.how, &mut line);
        }
        log.queue(&res, line);
    }
}

/// A refused request has no headers worth trusting; its response has some.
struct RefusedLookup<'a> {
    head: &'a [u8],
}

impl Lookup for RefusedLookup<'_> {
    fn request_header(&self, _: &str) -> Option<&[u8]> {
        None
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        header_in(self.head, name)
    }

    fn env(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

/// A request whose response comes later (a CGI script, a listing built over
/// several event-loop turns): what its line needs, owned; [`Pending::complete`]
/// adds the status and the response and writes the line.
pub struct Pending {
    res: Resolved,
    remote: IpAddr,
    remote_port: u16,
    local: Option<std::net::SocketAddr>,
    local_path: Vec<u8>,
    req: Vec<u8>,
    fields: Vec<crate::request::Field>,
    method: Vec<u8>,
    target: Vec<u8>,
    version: &'static [u8],
    host: Vec<u8>,
    server_name: Vec<u8>,
    filename: Vec<u8>,
    bytes_in: u64,
    start: Timespec,
    requests: u32,
    req_headers: Vec<(String, String)>,
    env: Vec<(String, String)>,
    remote_user: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("res", &self.res)
            .finish_non_exhaustive()
    }
}

/// The log line of `x` to write later, when mod_accesslog logs it at all.
pub fn capture(me: &Accesslog, x: &super::DoneCx) -> Option<Box<Pending>> {
    let log = me.log.borrow();
    let res = log.resolve(x.compiled, x.cond, x.view)?;
    Some(pending(res, log.early(x), x))
}

fn pending(res: Resolved, e: Early, x: &super::DoneCx) -> Box<Pending> {
    Box::new(Pending {
        res,
        remote: e.remote,
        remote_port: e.remote_port,
        local: e.local,
        local_path: e.local_path.to_vec(),
        req: x.base.buf.to_vec(),
        fields: x.base.fields.to_vec(),
        method: e.method.to_vec(),
        target: e.target.to_vec(),
        version: e.version,
        host: e.host.to_vec(),
        server_name: e.server_name.to_vec(),
        filename: e.filename.concat(),
        bytes_in: e.bytes_in,
        start: e.start,
        requests: e.requests,
        req_headers: x
            .rq
            .req_headers
            .iter()
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect(),
        env: x.rq.env.clone(),
        remote_user: x.rq.remote_user.clone(),
    })
}

struct Later<'a> {
    p: &'a Pending,
    head: &'a [u8],
}

impl Lookup for Later<'_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        if let Some((_, v)) = self
            .p
            .req_headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return (!v.is_empty()).then_some(v.as_bytes());
        }
        crate::request::header(&self.p.req, &self.p.fields, name.as_bytes())
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        header_in(self.head, name)
    }

    fn env(&self, name: &str) -> Option<&[u8]> {
        env_in(&self.p.env, &self.p.remote_user, name)
    }
}

impl Pending {
    /// The response is complete: `resp` starts with its head; `bytes_out` counts
    /// head and body.
    pub fn complete(self: Box<Self>, me: &Accesslog, status: u16, resp: &[u8], bytes_out: u64) {
        let (head, keep_alive) = response_head(resp);
        let p = &*self;
        let e = Early {
            remote: p.remote,
            remote_port: p.remote_port,
            local: p.local,
            local_path: &p.local_path,
            method: &p.method,
            target: &p.target,
            version: p.version,
            host: &p.host,
            server_name: &p.server_name,
            filename: [&p.filename, b""],
            bytes_in: p.bytes_in,
            start: p.start,
            requests: p.requests,
        };
        let later = Later { p, head };
        let r = record(&e, status, bytes_out, head, keep_alive, &later);
        me.log.borrow_mut().write(&p.res, &r);
    }
}

/// The access log of a response written in pieces (mod_cgi): its line, the status
/// and head once they are known, and the bytes as they are sent.
#[derive(Debug)]
pub struct Tally {
    pending: Box<Pending>,
    status: u16,
    head: Vec<u8>,
    bytes: u64,
    /// Bytes of earlier responses queued ahead of this one.
    skip: u64,
}

impl Tally {
    /// `skip`: bytes queued ahead of this response that its count must leave out.
    pub fn new(pending: Box<Pending>, skip: u64) -> Tally {
        Tally {
            pending,
            status: 0,
            head: Vec::new(),
            bytes: 0,
            skip,
        }
    }

    /// The response head was queued (the status line to the blank line).
    pub fn head(&mut self, status: u16, head: &[u8]) {
        self.status = status;
        self.head.clear();
        self.head.extend_from_slice(head);
    }

    /// `n` more bytes were sent.
    pub fn sent(&mut self, n: u64) {
        self.bytes += n;
    }

    /// The response is over; `unsent` bytes of it are still queued.
    pub fn finish(self, me: &Accesslog, unsent: u64) {
        let total = (self.bytes + unsent).saturating_sub(self.skip);
        self.pending.complete(me, self.status, &self.head, total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct L;
    impl Lookup for L {
        fn request_header(&self, name: &str) -> Option<&[u8]> {
            match name.to_ascii_lowercase().as_str() {
                "referer" => Some(b"http://ref/\"x\""),
                "user-agent" => Some(b"curl/8"),
                "cookie" => Some(b"a=1; sid=abc ; z=9"),
                _ => None,
            }
        }
        fn response_header(&self, name: &str) -> Option<&[u8]> {
            (name.eq_ignore_ascii_case("content-type")).then_some(&b"text/html"[..])
        }
        fn env(&self, name: &str) -> Option<&[u8]> {
            (name == "FOO").then_some(&b"bar"[..])
        }
    }

    fn rec(l: &L) -> Record<'_> {
        Record {
            remote: "192.0.2.77".parse().expect("ip"),
            remote_port: 40000,
            local: Some("127.0.0.1:8080".parse().expect("sa")),
            local_path: b"",
            method: b"GET",
            target: b"/a b?x=1&y=\"",
            version: b"HTTP/1.1",
            host: b"example.org",
            server_name: b"example.org",
            filename: [b"/srv/www", b"/a b"],
            status: 200,
            bytes_out: 1100,
            head_out: 100,
            bytes_in: 80,
            start: Timespec {
                sec: 1_700_000_000,
                nsec: 250_000_000,
            },
            end: Timespec {
                sec: 1_700_000_001,
                nsec: 500_000_001,
            },
            requests: 3,
            keep_alive: true,
            aborted: false,
            lookup: l,
        }
    }

    fn line(fmt: &str) -> String {
        let f = parse_format(fmt).expect("format");
        let l = L;
        let mut out = Vec::new();
        f.write(&rec(&l), Escape::Default, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn default_format_fields() {
        let l = line(DEFAULT_FORMAT);
        // %t depends on the zone: check around it.
        assert!(l.starts_with("192.0.2.77 example.org - ["), "{l}");
        assert!(
            l.ends_with(
                "] \"GET /a b?x=1&y=\\\" HTTP/1.1\" 200 1000 \"http://ref/\\\"x\\\"\" \"curl/8\""
            ),
            "{l}"
        );
    }

    #[test]
    fn every_directive() {
        assert_eq!(
            line("%a %A %p %{remote}p %{local}p"),
            "192.0.2.77 127.0.0.1 8080 40000 8080"
        );
        assert_eq!(line("%{mask}a %{mask}h"), "192.0.2.0 192.0.2.0");
        assert_eq!(line("%b %B %O %I"), "1000 1000 1100 80");
        assert_eq!(line("%{sid}C|%{nope}C|%C"), "abc||");
        assert_eq!(line("%{FOO}e %{NOPE}e %{FOO}n %u"), "bar - bar -");
        assert_eq!(line("%f"), "/srv/www/a b");
        assert_eq!(line("%H %m %s %>s %<s"), "HTTP/1.1 GET 200 200 200");
        assert_eq!(
            line("%{Content-Type}o %{X-None}o %{User-Agent}i"),
            "text/html - curl/8"
        );
        assert_eq!(line("%k %X"), "2 +");
        assert_eq!(line("%q|%U"), "x=1&y=\\\"|/a b");
        assert_eq!(line("%r"), "GET /a b?x=1&y=\\\" HTTP/1.1");
        assert_eq!(line("%v %V"), "example.org example.org");
        assert_eq!(
            line("%T %{ms}T %{us}T %D %{ns}T"),
            "1 1251 1250001 1250001 1250000001"
        );
        assert_eq!(
            line("%{sec}t %{msec}t %{begin:sec}t"),
            "1700000001 1700000001501 1700000000"
        );
        assert_eq!(
            line("%{usec}t %{nsec}t"),
            "1700000001500001 1700000001500000001"
        );
        assert_eq!(
            line("%{msec_frac}t %{usec_frac}t %{nsec_frac}t"),
            "501 500001 500000001"
        );
        assert_eq!(line("%l %% %P."), "- % .");
        assert_eq!(line("a\\tb\\\\c"), "a\tb\\c");
    }

    #[test]
    fn strftime_stamps() {
        let tm = Tm::at(1_700_000_001, 3600 + 1800);
        let mut o = Vec::new();
        strftime(
            &mut o,
            b"[%d/%b/%Y:%H:%M:%S %z] %a %A %B %j %e %I %p %F %T %u %w %y %C %% %Q",
            &tm,
        );
        assert_eq!(
            String::from_utf8(o).expect("utf8"),
            "[14/Nov/2023:23:43:21 +0130] Tue Tuesday November 318 14 11 PM 2023-11-14 23:43:21 2 2 23 20 % %Q"
        );
        let tm = Tm::at(0, -3600 * 5);
        let mut o = Vec::new();
        strftime(&mut o, b"%Y-%m-%d %H %z %s", &tm);
        assert_eq!(String::from_utf8(o).expect("utf8"), "1969-12-31 19 -0500 0");
        assert_eq!(days_from_civil(2023, 11, 14), 19675);
    }

    #[test]
    fn escaping() {
        let mut o = Vec::new();
        escape(&mut o, b"a\"b\\c\n\x01\x7f\xc3\xa9", Escape::Default);
        assert_eq!(o, b"a\\\"b\\\\c\\n\\x01\\x7F\\xC3\\xA9");
        o.clear();
        escape(&mut o, b"a\"b\\c\n\x01\x7f\xc3\xa9", Escape::Json);
        assert_eq!(o, b"a\\\"b\\\\c\\n\\u0001\\u007F\xc3\xa9");
    }

    #[test]
    fn masks_v6() {
        assert_eq!(
            masked("2001:db8:85a3:8d3:1319:8a2e:370:7348".parse().expect("ip")).to_string(),
            "2001:db8:85a3::"
        );
        assert_eq!(
            masked("::ffff:10.1.2.3".parse().expect("ip")).to_string(),
            "::ffff:10.1.2.0"
        );
    }

    #[test]
    fn bad_formats() {
        for (f, why) in [
            ("%", "followed by a format-specifier"),
            ("%{x", "terminated"),
            ("%{}i", "must contain string"),
            ("%Z", "valid format-specifier"),
            ("%{bogus}T", "time unit"),
            ("%{abc}t", "constant string"),
            ("%{x}p", "canonical,local,remote"),
            ("%{y}a", "mask"),
            ("%>", "valid format-specifier"),
            ("", "empty"),
        ] {
            let e = parse_format(f).expect_err(f);
            assert!(e.contains(why), "{f}: {e}");
        }
    }

    #[test]
    fn pipe_batches_keep_lines_whole() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut s = Sink::new(w);
        assert!(s.is_pipe());
        let line = [b'x'; 99];
        let mut l = line.to_vec();
        l.push(b'\n');
        for _ in 0..100 {
            s.line(&l).expect("line");
        }
        s.flush().expect("flush");
        let mut got = vec![0u8; 20000];
        let n = nix::unistd::read(&r, &mut got).expect("read");
        assert_eq!(n, 10000);
        assert!(got[..n].chunks(100).all(|c| c[99] == b'\n'));
    }

    #[test]
    fn stuck_pipe_never_blocks() {
        let (_r, w) = nix::unistd::pipe().expect("pipe");
        let mut s = Sink::new(w);
        let l = [b'y'; 1000];
        // Far more than a pipe holds: must return, keeping the rest buffered.
        for _ in 0..200 {
            s.line(&l).expect("line");
        }
        s.flush().expect("flush");
        assert!(s.pending() > 0);
    }
}
