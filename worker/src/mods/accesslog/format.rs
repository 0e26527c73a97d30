//! accesslog.format: the format language parsed once (lighttpd's texts for its
//! errors), and one line written from a finished request's record.

use super::time::{strftime, write_num, Tm};
use crate::response::put_u64;
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// lighttpd's default format.
pub const DEFAULT_FORMAT: &str = "%h %V %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"";

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
pub(super) fn unescape(s: &str) -> Vec<u8> {
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

pub(super) fn push_literal(out: &mut Vec<Field>, s: &[u8]) {
    if let Some(Field::Literal(l)) = out.last_mut() {
        l.extend_from_slice(s);
    } else {
        out.push(Field::Literal(s.to_vec()));
    }
}

pub(super) fn unit(arg: &str) -> Option<Unit> {
    Some(match arg {
        "" | "s" | "sec" => Unit::Sec,
        "ms" | "msec" => Unit::Msec,
        "us" | "usec" => Unit::Usec,
        "ns" | "nsec" => Unit::Nsec,
        _ => return None,
    })
}

pub(super) fn stamp(arg: &str) -> Result<Field, String> {
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

pub(super) fn field(c: u8, arg: Option<&str>) -> Result<Field, String> {
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

pub(super) const HEX: &[u8; 16] = b"0123456789ABCDEF";

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

pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    put_u64(out, v.unsigned_abs());
}

/// lighttpd: a positive count minus `adj` (not below 0), or `-` for none.
pub(super) fn put_bytes(out: &mut Vec<u8>, v: u64, adj: u64) {
    if v > 0 {
        put_u64(out, v.saturating_sub(adj));
    } else {
        out.push(b'-');
    }
}

/// A value, escaped; `-` when absent or empty.
pub(super) fn put_value(out: &mut Vec<u8>, v: Option<&[u8]>, how: Escape) {
    match v {
        Some(v) if !v.is_empty() => escape(out, v, how),
        _ => out.push(b'-'),
    }
}

pub(super) fn masked(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & 0xffff_ff00)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V6(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00).to_ipv6_mapped()),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !((1u128 << 80) - 1))),
        },
    }
}

/// The value of cookie `name` in a Cookie header (lighttpd's scan).
pub(super) fn cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    for part in header.split(|&c| c == b';') {
        let part = crate::request::trim(part);
        if let Some(v) = part.strip_prefix(name).and_then(|r| r.strip_prefix(b"=")) {
            let v = crate::request::trim(v);
            return (!v.is_empty()).then_some(v);
        }
    }
    None
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

pub(super) fn path_part(target: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', target) {
        Some(i) => &target[..i],
        None => target,
    }
}

pub(super) fn query(target: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', target) {
        Some(i) => &target[i + 1..],
        None => b"",
    }
}
