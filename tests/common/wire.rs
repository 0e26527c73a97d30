//! Wire-level helpers: raw requests on one connection, responses read by their
//! Content-Length (static and error responses are never chunked). A `Conn` runs
//! over a TCP stream by default, or over any byte stream (a TLS session).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub version: String,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Conn<S = TcpStream> {
    pub s: S,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Conn { s, buf: Vec::new() }
    }

    /// A connection the caller opened (and may already have written to).
    pub fn from_stream(s: TcpStream) -> Conn {
        Conn { s, buf: Vec::new() }
    }
}

impl<S: Read + Write> Conn<S> {
    /// A connection over another byte stream (a TLS session).
    pub fn over(s: S) -> Conn<S> {
        Conn { s, buf: Vec::new() }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("write");
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// The next response; `head_only`: a response to HEAD (no body follows).
    pub fn response_to(&mut self, head_only: bool) -> Option<Resp> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("");
        let mut parts = first.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut r = Resp {
            status,
            version,
            head: head.clone(),
            headers,
            body: Vec::new(),
        };
        let len: usize = r
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let has_body = !head_only && status != 304 && status != 100 && status != 204;
        if has_body {
            while self.buf.len() < len {
                if !self.fill() {
                    return None;
                }
            }
            r.body = self.buf.drain(..len).collect();
        }
        Some(r)
    }

    pub fn response(&mut self) -> Option<Resp> {
        self.response_to(false)
    }

    /// Did the server close (EOF or reset) with nothing more sent?
    pub fn closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut tmp = [0u8; 1024];
        match self.s.read(&mut tmp) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// The connection still serves: a new request gets an answer.
    pub fn alive(&mut self) -> bool {
        if self
            .s
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_err()
        {
            return false;
        }
        self.response().is_some()
    }
}

/// One request on a fresh connection.
pub fn exchange(port: u16, req: &[u8]) -> Option<Resp> {
    let mut c = Conn::new(port);
    c.send(req);
    c.response_to(req.starts_with(b"HEAD "))
}
