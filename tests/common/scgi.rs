//! An SCGI and a uwsgi responder for the tests, std only: one thread accepting on
//! a TCP port or a unix socket, one thread per connection. It reads the request
//! head in its protocol (SCGI: a netstring whose first variable must be
//! CONTENT_LENGTH and which must hold SCGI=1; uwsgi: the 4-byte packet header and
//! the length-prefixed variables), then exactly CONTENT_LENGTH bytes of body,
//! answers, and closes the connection (which ends the response). What it answers
//! is chosen by the request's QUERY_STRING `mode=`: `env` (default; the
//! variables as `K=V` lines, in the order they came), `echo` (the body back),
//! `nph` (an `HTTP/1.1 201` status line first, as uWSGI answers), `diehead`
//! (closed before anything), `slow` (3 s of silence first), `bytes` (a body of
//! N=`n` bytes in small writes), `process` (the responder process: pid, uid,
//! directory, environment). A head that breaks the protocol is answered
//! with a 500 naming what was wrong. [`Responder::inherited`] serves on fd 0, as
//! a program wickd starts for a bin-path host.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Scgi,
    Uwsgi,
}

pub struct Responder {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// Requests read whole.
    pub requests: Arc<AtomicUsize>,
    /// TCP port (0 for a unix socket).
    pub port: u16,
}

trait Stream: Read + Write + Send {
    fn set_blocking(&self) -> io::Result<()>;
}
impl Stream for std::net::TcpStream {
    fn set_blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(Duration::from_secs(20)))
    }
}
impl Stream for std::os::unix::net::UnixStream {
    fn set_blocking(&self) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(Duration::from_secs(20)))
    }
}

impl Responder {
    pub fn tcp(proto: Protocol) -> Responder {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind scgi");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        Self::run(port, proto, move || {
            l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
        })
    }

    pub fn unix(proto: Protocol, path: &Path) -> Responder {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).expect("bind scgi socket");
        l.set_nonblocking(true).expect("nonblocking");
        Self::run(0, proto, move || {
            l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
        })
    }

    /// Serve on the listening socket on fd 0.
    pub fn inherited(proto: Protocol) -> Responder {
        match super::fcgi::inherited_listener() {
            super::fcgi::Inherited::Tcp(l) => Self::run(0, proto, move || {
                l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
            }),
            super::fcgi::Inherited::Unix(l) => Self::run(0, proto, move || {
                l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
            }),
        }
    }

    fn run(
        port: u16,
        proto: Protocol,
        accept: impl Fn() -> io::Result<Box<dyn Stream>> + Send + 'static,
    ) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (st, rq) = (stop.clone(), requests.clone());
        let h = std::thread::spawn(move || {
            // Polled every 5 ms; ends (closing the listener) when stopped.
            while !st.load(Ordering::Relaxed) {
                match accept() {
                    Ok(s) => {
                        let rq = rq.clone();
                        std::thread::spawn(move || {
                            let _ = serve(s, proto, &rq);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Responder {
            stop,
            accept: Some(h),
            requests,
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

type Vars = Vec<(String, String)>;

/// SCGI: `len:` + `K\0V\0`... + `,`; CONTENT_LENGTH first, SCGI=1 somewhere.
fn read_scgi(s: &mut dyn Stream) -> io::Result<Result<Vars, String>> {
    let mut len = 0usize;
    let mut digits = 0;
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        match b[0] {
            b'0'..=b'9' if digits < 9 => {
                len = len * 10 + usize::from(b[0] - b'0');
                digits += 1;
            }
            b':' if digits > 0 => break,
            c => return Ok(Err(format!("netstring length: byte {c}"))),
        }
    }
    let mut head = vec![0u8; len + 1];
    s.read_exact(&mut head)?;
    if head.pop() != Some(b',') {
        return Ok(Err("netstring does not end with ','".into()));
    }
    let parts: Vec<&[u8]> = head.split(|&b| b == 0).collect();
    // K\0V\0...K\0V\0 splits into pairs and one empty tail.
    if parts.len() % 2 != 1 || parts.last().is_some_and(|t| !t.is_empty()) {
        return Ok(Err("variables are not NUL-terminated pairs".into()));
    }
    let vars: Vars = parts
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| {
            (
                String::from_utf8_lossy(c[0]).into_owned(),
                String::from_utf8_lossy(c[1]).into_owned(),
            )
        })
        .collect();
    if vars.first().map(|(k, _)| k.as_str()) != Some("CONTENT_LENGTH") {
        return Ok(Err("CONTENT_LENGTH is not the first variable".into()));
    }
    if !vars.iter().any(|(k, v)| k == "SCGI" && v == "1") {
        return Ok(Err("no SCGI=1".into()));
    }
    Ok(Ok(vars))
}

/// uwsgi: modifier1 0, u16 LE size, modifier2 0; then u16 LE length + bytes for
/// each name and value.
fn read_uwsgi(s: &mut dyn Stream) -> io::Result<Result<Vars, String>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h)?;
    if h[0] != 0 || h[3] != 0 {
        return Ok(Err(format!("modifiers {} {}", h[0], h[3])));
    }
    let size = usize::from(u16::from_le_bytes([h[1], h[2]]));
    let mut b = vec![0u8; size];
    s.read_exact(&mut b)?;
    let mut vars = Vec::new();
    let mut i = 0;
    let take = |i: &mut usize| -> Option<String> {
        let n = usize::from(u16::from_le_bytes([*b.get(*i)?, *b.get(*i + 1)?]));
        let v = b.get(*i + 2..*i + 2 + n)?;
        *i += 2 + n;
        Some(String::from_utf8_lossy(v).into_owned())
    };
    while i < size {
        let (Some(k), Some(v)) = (take(&mut i), take(&mut i)) else {
            return Ok(Err("a variable runs past the packet".into()));
        };
        vars.push((k, v));
    }
    Ok(Ok(vars))
}

fn serve(mut s: Box<dyn Stream>, proto: Protocol, requests: &AtomicUsize) -> io::Result<()> {
    s.set_blocking()?;
    let s = &mut *s;
    let vars = match proto {
        Protocol::Scgi => read_scgi(s)?,
        Protocol::Uwsgi => read_uwsgi(s)?,
    };
    let vars = match vars {
        Ok(v) => v,
        Err(why) => {
            let msg = format!("Status: 500\r\nContent-Type: text/plain\r\n\r\nbad head: {why}\n");
            return s.write_all(msg.as_bytes());
        }
    };
    let get = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut body = vec![0u8; get("CONTENT_LENGTH").parse().unwrap_or(0)];
    s.read_exact(&mut body)?;
    requests.fetch_add(1, Ordering::Relaxed);
    let q = get("QUERY_STRING");
    let arg = |name: &str| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let env_text = || {
        let mut t = String::new();
        for (k, v) in &vars {
            t.push_str(&format!("{k}={v}\n"));
        }
        t
    };
    match arg("mode").as_str() {
        "echo" => {
            s.write_all(b"Content-Type: application/octet-stream\r\n\r\n")?;
            s.write_all(&body)?;
        }
        "nph" => {
            let t = format!("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Backend: uwsgi-style\r\n\r\n{}", env_text());
            s.write_all(t.as_bytes())?;
        }
        "diehead" => return Ok(()),
        "process" => {
            let t = format!(
                "Content-Type: text/plain\r\n\r\n{}",
                super::fcgi::process_text()
            );
            s.write_all(t.as_bytes())?
        }
        "slow" => {
            std::thread::sleep(Duration::from_secs(3));
            s.write_all(format!("Content-Type: text/plain\r\n\r\n{}", env_text()).as_bytes())?;
        }
        "bytes" => {
            let n: usize = arg("n").parse().unwrap_or(0);
            s.write_all(b"Content-Type: application/octet-stream\r\n\r\n")?;
            let chunk = vec![b'x'; 1000];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len());
                s.write_all(&chunk[..k])?;
                left -= k;
            }
        }
        _ => s.write_all(format!("Content-Type: text/plain\r\n\r\n{}", env_text()).as_bytes())?,
    }
    s.flush()
}
