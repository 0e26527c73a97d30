//! An HTTP/1.1 backend for the proxy tests, std only: one thread accepting on a
//! TCP port, one thread per connection, one request per connection (mod_proxy
//! sends `Connection: close`). It reads the head and the body (Content-Length,
//! or chunked, which it decodes and reports), keeps the head as received
//! (`heads`), and answers as the target's `mode=` says: `echo` (default; the
//! head as received, a blank line, the body, with Content-Length), `bytes`
//! (`n` bytes of 'x' with Content-Length), `chunked` (`n` bytes of 'y' in
//! chunks, and a trailer), `close` (a body up to the close, no length), `hop`
//! (hop-by-hop fields in the answer), `slowread` (a body read slowly,
//! 256 KiB every 20 ms, and counted), `remap` (Location, Content-Location and
//! Set-Cookie for map-urlpath and map-host-response), `slow` (3 s of silence
//! first), `bad` (a head that is not HTTP), `die` (a head promising a long body,
//! part of it, then the close), `split` (the head in three pieces),
//! `continue` (a 100 Continue first), `switch` (a
//! 101 though nobody asked).
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Backend {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    pub port: u16,
    /// Every request head as received (with a `--body--` line and the body).
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl Backend {
    pub fn start() -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (st, hs) = (stop.clone(), heads.clone());
        let h = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let hs = hs.clone();
                        std::thread::spawn(move || {
                            let _ = serve(s, &hs);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend {
            stop,
            accept: Some(h),
            port,
            heads,
        }
    }

    /// The last request the backend read.
    pub fn last(&self) -> String {
        self.heads
            .lock()
            .map(|h| h.last().cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// `name=value` of the target's query.
fn param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn serve(s: TcpStream, heads: &Mutex<Vec<String>>) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let field = |name: &str| {
        lower
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
    };
    let target = head.split(' ').nth(1).unwrap_or("/").to_string();
    let mut body = Vec::new();
    if param(&target, "mode") == Some("slowread") {
        // The body read slowly and counted, not kept.
        let n = field("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut buf = vec![0u8; 256 << 10];
        let mut left = n;
        while left > 0 {
            std::thread::sleep(Duration::from_millis(20));
            let k = r.read(&mut buf[..left.min(256 << 10)])?;
            if k == 0 {
                break;
            }
            left -= k;
        }
        let msg = format!("read {}", n - left);
        let mut w = s;
        w.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{msg}",
                msg.len()
            )
            .as_bytes(),
        )?;
        return Ok(());
    }
    if field("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0u8; n];
        r.read_exact(&mut body)?;
    }
    let mut record = head.clone();
    record.push_str("--body--\r\n");
    record.push_str(&String::from_utf8_lossy(&body));
    if let Ok(mut h) = heads.lock() {
        h.push(record.clone());
    }
    let n: usize = param(&target, "n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut w = s;
    match param(&target, "mode").unwrap_or("echo") {
        "bytes" => {
            w.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").as_bytes())?;
            let block = vec![b'x'; 64 << 10];
            let mut left = n;
            while left > 0 {
                let k = left.min(block.len());
                w.write_all(&block[..k])?;
                left -= k;
            }
        }
        "chunked" => {
            w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            let mut left = n;
            while left > 0 {
                let k = left.min(1000);
                w.write_all(format!("{k:x}\r\n").as_bytes())?;
                w.write_all(&vec![b'y'; k])?;
                w.write_all(b"\r\n")?;
                left -= k;
            }
            w.write_all(b"0\r\nX-Trailer: done\r\n\r\n")?;
        }
        "close" => {
            w.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close")?;
        }
        "hop" => {
            let b = "hop";
            w.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
                     Proxy-Connection: keep-alive\r\nTrailer: X-T\r\nUpgrade: foo\r\nTE: trailers\r\n\
                     X-End-To-End: kept\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                )
                .as_bytes(),
            )?;
        }
        "remap" => {
            w.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: http://back.example/back/there?x=1\r\n\
                  Content-Location: /back/here\r\nSet-Cookie: a=1; Path=/back/p; Domain=back.example\r\n\
                  Set-Cookie: b=2; path=/other\r\nContent-Length: 0\r\n\r\n",
            )?;
        }
        "slow" => {
            std::thread::sleep(Duration::from_secs(3));
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")?;
        }
        "bad" => w.write_all(b"garbage\r\n\r\nnot http")?,
        "die" => {
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npart of a body")?;
            w.flush()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        "diechunked" => {
            // 300 KB of chunks (more than the proxy holds back), then the close
            // without the last chunk.
            w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            for _ in 0..300 {
                w.write_all(format!("{:x}\r\n", 1000).as_bytes())?;
                w.write_all(&[b'd'; 1000])?;
                w.write_all(b"\r\n")?;
            }
        }
        "split" => {
            // The head in three writes, a pause between: read in pieces.
            for part in [
                &b"HTTP/1.1 200 OK\r\nContent-Le"[..],
                b"ngth: 5\r\nX-Split: y",
                b"es\r\n\r\nsplit",
            ] {
                w.write_all(part)?;
                w.flush()?;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        "continue" => {
            w.write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            )?;
        }
        "switch" => {
            w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\nraw")?;
        }
        _ => {
            w.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{record}",
                    record.len()
                )
                .as_bytes(),
            )?;
        }
    }
    w.flush()?;
    // One request per connection (mod_proxy asks for the close).
    let _ = w.shutdown(std::net::Shutdown::Write);
    // Let the proxy read to the end before the socket goes.
    let mut rest = [0u8; 512];
    let _ = w.set_read_timeout(Some(Duration::from_secs(2)));
    while matches!(w.read(&mut rest), Ok(n) if n > 0) {}
    Ok(())
}
