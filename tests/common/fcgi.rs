//! A FastCGI responder for the tests, std only: one thread accepting on a TCP port
//! or a unix socket, one thread per connection, speaking the record protocol
//! (BEGIN_REQUEST, PARAMS, STDIN in; STDOUT, STDERR, END_REQUEST out). What it
//! answers is chosen by the request's QUERY_STRING `mode=`:
//! `env` (default; the params as `K=V` lines), `echo` (the body back), `slow`
//! (3 s of silence first), `die` (a head and part of a body, then the connection
//! closed without END_REQUEST), `diehead` (closed before anything), `malformed`
//! (a head line without a colon), `stderr` (a line on STDERR, then env), `length`
//! (a response with Content-Length), `bytes` (a body of N=`n` bytes in small
//! records, no Content-Length), `sendfile` (X-Sendfile: the path `file=`),
//! `process` (the responder process itself: pid, uid, working directory and its
//! environment, for the tests of backends wickd starts; after `ms=` milliseconds),
//! `sum` (the body not kept: `len=`, `fnv=` its FNV-1a 64, `begin=` and `first=`
//! the wall-clock milliseconds of the connection's first record and of the first
//! body byte, `cl=` CONTENT_LENGTH; with `stall=` milliseconds of not reading
//! STDIN once PARAMS are in, a slow backend).
//!
//! A request in the AUTHORIZER role (BEGIN_REQUEST role 2) is an access check:
//! allowed when its X-Allow header is "yes" (200, `Variable-USER_TIER: gold`,
//! `Variable-AUTH_SAW_STDIN` saying whether body bytes came, a body that must be
//! dropped), else 403 with a body of its own; never answered when the path is
//! `/auth-down...` (the connection closes: a broken authorizer).
//!
//! [`Responder::inherited`] serves on the listening socket on fd 0, as a
//! program wickd starts for a bin-path host (tests/binpath.rs runs itself so).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Responder {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// Requests answered (or begun).
    pub requests: Arc<AtomicUsize>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Responses written to their end (END_REQUEST sent).
    pub finished: Arc<AtomicUsize>,
    /// Kept connections (FCGI_KEEP_CONN) that wickd closed between requests.
    pub idle_closed: Arc<AtomicUsize>,
    /// TCP port (0 for a unix socket).
    pub port: u16,
}

impl Responder {
    pub fn tcp() -> Responder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind fcgi");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        Self::run(port, move || {
            l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
        })
    }

    pub fn unix(path: &Path) -> Responder {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).expect("bind fcgi socket");
        l.set_nonblocking(true).expect("nonblocking");
        Self::run(0, move || {
            l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
        })
    }

    /// Serve on the listening socket on fd 0 (FCGI_LISTENSOCK_FILENO).
    pub fn inherited() -> Responder {
        match inherited_listener() {
            Inherited::Tcp(l) => Self::run(0, move || {
                l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
            }),
            Inherited::Unix(l) => Self::run(0, move || {
                l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
            }),
        }
    }

    fn run(
        port: u16,
        accept: impl Fn() -> io::Result<Box<dyn Stream>> + Send + 'static,
    ) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let idle_closed = Arc::new(AtomicUsize::new(0));
        let (st, rq, cn, fin, idle) = (
            stop.clone(),
            requests.clone(),
            connections.clone(),
            finished.clone(),
            idle_closed.clone(),
        );
        let h = std::thread::spawn(move || {
            // Polled every 5 ms; ends (closing the listener) when stopped.
            while !st.load(Ordering::Relaxed) {
                match accept() {
                    Ok(s) => {
                        cn.fetch_add(1, Ordering::Relaxed);
                        let (rq, fin, idle) = (rq.clone(), fin.clone(), idle.clone());
                        std::thread::spawn(move || serve(s, &rq, &fin, &idle));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Responder {
            stop,
            accept: Some(h),
            requests,
            connections,
            finished,
            idle_closed,
            port,
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The listening socket a backend finds on fd 0.
pub enum Inherited {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Take fd 0, the listening socket wickd passed, by its address family.
pub fn inherited_listener() -> Inherited {
    use nix::sys::socket::{getsockname, SockaddrLike, SockaddrStorage};
    use std::os::fd::FromRawFd;
    let family = getsockname::<SockaddrStorage>(0)
        .expect("fd 0 is a socket")
        .family();
    // SAFETY: fd 0 is the listening socket handed to this process; nothing else
    // in it owns fd 0.
    let l = unsafe {
        match family {
            Some(nix::sys::socket::AddressFamily::Unix) => {
                Inherited::Unix(UnixListener::from_raw_fd(0))
            }
            _ => Inherited::Tcp(TcpListener::from_raw_fd(0)),
        }
    };
    match &l {
        Inherited::Tcp(t) => t.set_nonblocking(true).expect("nonblocking"),
        Inherited::Unix(u) => u.set_nonblocking(true).expect("nonblocking"),
    }
    l
}

/// The responder process itself: `pid=`, `uid=`, `cwd=` and `env:NAME=value` for
/// each variable of its environment.
pub fn process_text() -> String {
    let mut t = format!(
        "pid={}\nuid={}\ncwd={}\n",
        std::process::id(),
        nix::unistd::getuid(),
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    for (k, v) in std::env::vars_os() {
        t.push_str(&format!(
            "env:{}={}\n",
            k.to_string_lossy(),
            v.to_string_lossy()
        ));
    }
    t
}

/// Wall-clock milliseconds (the tests compare them with the client's own).
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub trait Stream: Read + Write + Send {
    fn set_blocking(&self) -> io::Result<()>;
    fn set_read_timeout_ms(&self, ms: u64) -> io::Result<()>;
}
impl Stream for std::net::TcpStream {
    fn set_blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(Duration::from_secs(20)))
    }
    fn set_read_timeout_ms(&self, ms: u64) -> io::Result<()> {
        self.set_read_timeout(Some(Duration::from_millis(ms)))
    }
}
impl Stream for std::os::unix::net::UnixStream {
    fn set_blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(Duration::from_secs(20)))
    }
    fn set_read_timeout_ms(&self, ms: u64) -> io::Result<()> {
        self.set_read_timeout(Some(Duration::from_millis(ms)))
    }
}

fn read_record(s: &mut dyn Stream) -> io::Result<(u8, u16, Vec<u8>)> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h)?;
    let id = u16::from_be_bytes([h[2], h[3]]);
    let len = u16::from_be_bytes([h[4], h[5]]) as usize;
    let mut c = vec![0u8; len + h[6] as usize];
    s.read_exact(&mut c)?;
    c.truncate(len);
    Ok((h[1], id, c))
}

fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = vec![
        1,
        kind,
        (id >> 8) as u8,
        id as u8,
        (content.len() >> 8) as u8,
        content.len() as u8,
        0,
        0,
    ];
    out.extend_from_slice(content);
    out
}

fn stdout(s: &mut dyn Stream, id: u16, data: &[u8]) -> io::Result<()> {
    for c in data.chunks(16 * 1024) {
        s.write_all(&record(6, id, c))?;
    }
    Ok(())
}

fn len(b: &[u8], i: &mut usize) -> usize {
    if b[*i] < 128 {
        *i += 1;
        b[*i - 1] as usize
    } else {
        let n = u32::from_be_bytes([b[*i] & 0x7f, b[*i + 1], b[*i + 2], b[*i + 3]]);
        *i += 4;
        n as usize
    }
}

/// Requests on one connection: the next one when the request asked to keep it
/// (FCGI_KEEP_CONN, as libfcgi and php-cgi do), unless its QUERY_STRING has
/// `close=1` (a backend that closes anyway) or it was an authorizer's.
fn serve(
    mut s: Box<dyn Stream>,
    requests: &AtomicUsize,
    finished: &AtomicUsize,
    idle_closed: &AtomicUsize,
) {
    if s.set_blocking().is_err() {
        return;
    }
    loop {
        match serve_one(&mut *s, requests) {
            Ok(None) => {
                idle_closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Some(keep)) => {
                finished.fetch_add(1, Ordering::Relaxed);
                if !keep {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// One request. Ok(None): the connection ended before one began; Ok(Some(keep)).
fn serve_one(s: &mut dyn Stream, requests: &AtomicUsize) -> io::Result<Option<bool>> {
    let mut params = Vec::new();
    let mut body = Vec::new();
    let mut id = 0;
    let mut role = 0;
    // BEGIN_REQUEST, PARAMS until empty, STDIN until empty (an authorizer gets
    // no STDIN: it answers after PARAMS).
    let mut params_done = false;
    let (mut begin, mut first, mut n, mut fnv) = (0u128, 0u128, 0u64, 0xcbf2_9ce4_8422_2325u64);
    let mut keep = true;
    let mut keep_conn = false;
    loop {
        let (kind, rid, c) = match read_record(s) {
            Err(e) if begin == 0 && e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            r => r?,
        };
        if begin == 0 {
            begin = now_ms();
        }
        match kind {
            1 => {
                id = rid;
                role = c.first().map_or(0, |&h| u16::from(h) << 8)
                    | c.get(1).map_or(0, |&l| u16::from(l));
                keep_conn = c.get(2).is_some_and(|f| f & 1 == 1);
            }
            4 if c.is_empty() && role == 2 => break,
            4 if c.is_empty() => {
                params_done = true;
                let q = String::from_utf8_lossy(&params).into_owned();
                keep = !q.contains("mode=sum");
                if let Some(ms) = q
                    .split(['&', '\0'])
                    .find_map(|kv| kv.split("stall=").nth(1))
                    .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
            4 => params.extend_from_slice(&c),
            5 if c.is_empty() => break,
            5 => {
                if first == 0 {
                    first = now_ms();
                }
                n += c.len() as u64;
                for &b in &c {
                    fnv = (fnv ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
                if keep {
                    body.extend_from_slice(&c);
                }
            }
            _ => {}
        }
        assert!(kind != 5 || params_done, "STDIN before the end of PARAMS");
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let mut env = BTreeMap::new();
    let mut i = 0;
    while i < params.len() {
        let kl = len(&params, &mut i);
        let vl = len(&params, &mut i);
        let k = String::from_utf8_lossy(&params[i..i + kl]).into_owned();
        let v = String::from_utf8_lossy(&params[i + kl..i + kl + vl]).into_owned();
        i += kl + vl;
        env.insert(k, v);
    }
    if role == 2 {
        // (it reads on for 100 ms: a next request would be taken for a body)
        return authorize(s, id, &env).map(|()| Some(false));
    }
    let q = env.get("QUERY_STRING").cloned().unwrap_or_default();
    let arg = |name: &str| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let env_text = || {
        let mut t = String::from("Content-Type: text/plain\r\n\r\n");
        for (k, v) in &env {
            t.push_str(&format!("{k}={v}\n"));
        }
        t
    };
    match arg("mode").as_str() {
        "sum" => {
            let cl = env.get("CONTENT_LENGTH").cloned().unwrap_or_default();
            let t = format!(
                "Content-Type: text/plain\r\n\r\nlen={n}\nfnv={fnv:016x}\nbegin={begin}\nfirst={first}\ncl={cl}\n"
            );
            stdout(s, id, t.as_bytes())?
        }
        "echo" => {
            let mut out = b"Content-Type: application/octet-stream\r\n\r\n".to_vec();
            out.extend_from_slice(&body);
            stdout(s, id, &out)?;
        }
        "slow" => {
            std::thread::sleep(Duration::from_secs(3));
            stdout(s, id, env_text().as_bytes())?;
        }
        "die" => {
            stdout(s, id, b"Content-Type: text/plain\r\n\r\npart of a body")?;
            s.flush()?;
            std::thread::sleep(Duration::from_millis(200));
            return Ok(Some(false)); // closed without END_REQUEST
        }
        "diehead" => return Ok(Some(false)),
        "malformed" => stdout(s, id, b"Content-Type: text/plain\r\nno colon here\r\n\r\nx")?,
        "stderr" => {
            s.write_all(&record(7, id, b"a warning from the backend\n"))?;
            stdout(s, id, env_text().as_bytes())?;
        }
        "process" => {
            if let Ok(ms) = arg("ms").parse::<u64>() {
                std::thread::sleep(Duration::from_millis(ms));
            }
            let t = format!("Content-Type: text/plain\r\n\r\n{}", process_text());
            stdout(s, id, t.as_bytes())?
        }
        "length" => stdout(
            s,
            id,
            b"Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        )?,
        "sendfile" => {
            let head = format!("X-Sendfile: {}\r\n\r\nnot this", arg("file"));
            stdout(s, id, head.as_bytes())?
        }
        "bytes" => {
            let n: usize = arg("n").parse().unwrap_or(0);
            stdout(s, id, b"Content-Type: application/octet-stream\r\n\r\n")?;
            let chunk = vec![b'x'; 1000];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len());
                s.write_all(&record(6, id, &chunk[..k]))?;
                left -= k;
            }
        }
        _ => stdout(s, id, env_text().as_bytes())?,
    }
    s.write_all(&record(6, id, b""))?;
    s.write_all(&record(3, id, &[0, 0, 0, 0, 0, 0, 0, 0]))?;
    s.flush()?;
    Ok(Some(keep_conn && arg("close") != "1"))
}

/// The AUTHORIZER role: see the module's comment.
fn authorize(s: &mut dyn Stream, id: u16, env: &BTreeMap<String, String>) -> io::Result<()> {
    if env
        .get("SCRIPT_NAME")
        .is_some_and(|p| p.starts_with("/auth-down"))
    {
        return Ok(());
    }
    // Anything sent after PARAMS (body bytes must not be) within 100 ms.
    let mut saw_stdin = false;
    s.set_read_timeout_ms(100)?;
    while let Ok((kind, _, c)) = read_record(s) {
        saw_stdin |= kind == 5 && !c.is_empty();
    }
    let allowed = env.get("HTTP_X_ALLOW").is_some_and(|v| v == "yes");
    let out = if allowed {
        format!(
            "Status: 200\r\nVariable-USER_TIER: gold\r\nVariable-AUTH_SAW_STDIN: {saw_stdin}\r\nX-Authorizer: said yes\r\n\r\nthe authorizer's body, never sent"
        )
    } else {
        "Status: 403\r\nContent-Type: text/plain\r\nX-Authorizer: said no\r\n\r\ndenied by the authorizer\n"
            .to_string()
    };
    stdout(s, id, out.as_bytes())?;
    s.write_all(&record(6, id, b""))?;
    s.write_all(&record(3, id, &[0, 0, 0, 0, 0, 0, 0, 0]))?;
    s.flush()
}
