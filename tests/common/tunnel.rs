//! The two ends of a tunnel test (mod_wstunnel, mod_proxy's CONNECT): a plain
//! TCP backend that greets with "hi", then echoes what it reads in capitals
//! and records it (closing when it reads "QUIT"), and the client's side: send
//! a request, read the response head byte by byte so nothing after it is
//! taken, and tell the server's close.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `got`: every byte read, per connection; `fins`: the FINs read.
pub struct Backend {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Vec<u8>>>>,
    pub fins: Arc<AtomicUsize>,
}

impl Backend {
    pub fn start() -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let fins = Arc::new(AtomicUsize::new(0));
        let (g, f) = (got.clone(), fins.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                let (g, f) = (g.clone(), f.clone());
                std::thread::spawn(move || serve(s, &g, &f));
            }
        });
        Backend { port, got, fins }
    }

    pub fn received(&self) -> Vec<u8> {
        self.got.lock().expect("got").concat()
    }

    pub fn fins(&self) -> usize {
        self.fins.load(Ordering::Relaxed)
    }
}

fn serve(mut s: TcpStream, got: &Mutex<Vec<Vec<u8>>>, fins: &AtomicUsize) {
    let i = {
        let mut v = got.lock().expect("got");
        v.push(Vec::new());
        v.len() - 1
    };
    let _ = s.write_all(b"hi");
    let mut b = [0u8; 65536];
    loop {
        let n = match s.read(&mut b) {
            Ok(0) => {
                fins.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(_) => return,
            Ok(n) => n,
        };
        got.lock().expect("got")[i].extend_from_slice(&b[..n]);
        if b[..n].windows(4).any(|w| w == b"QUIT") {
            return;
        }
        if s.write_all(&b[..n].to_ascii_uppercase()).is_err() {
            return;
        }
    }
}

/// Connect to `port` and send `req`; the response head (up to its blank line).
pub fn open(port: u16, req: &[u8]) -> (TcpStream, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(req).expect("request");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if c.read(&mut b).expect("head") == 0 {
            break;
        }
        head.push(b[0]);
    }
    (c, String::from_utf8_lossy(&head).to_string())
}

/// The server closed (after whatever was still to come).
pub fn at_eof(c: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(c.read_to_end(&mut rest), Ok(0))
}
