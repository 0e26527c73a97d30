//! A WebSocket (RFC 6455) echo server and client for the proxy tests, std only
//! (SHA-1 and base64 written here for the handshake). The server answers the
//! opening handshake with 101 and echoes each data frame back unmasked; a close
//! frame is answered with one; a text frame "bye" is echoed and then the server
//! half-closes (and reads on); the client's FIN (a half-close that the proxy
//! passes on) ends its reading, and it then half-closes too, after the echoes.
//! It records the request heads and every data frame it got.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub struct EchoServer {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    pub port: u16,
    /// Request heads as received.
    pub heads: Arc<Mutex<Vec<String>>>,
    /// Connections that saw the client's FIN after their frames.
    pub fins: Arc<AtomicUsize>,
    /// Data frames received, in order.
    pub got: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind ws");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let fins = Arc::new(AtomicUsize::new(0));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (st, hs, fs, gs) = (stop.clone(), heads.clone(), fins.clone(), got.clone());
        let h = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let (hs, fs, gs) = (hs.clone(), fs.clone(), gs.clone());
                        std::thread::spawn(move || {
                            let _ = serve(s, &hs, &fs, &gs);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        EchoServer {
            stop,
            accept: Some(h),
            port,
            heads,
            fins,
            got,
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// The server's key answer: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{key}{GUID}").as_bytes()))
}

fn serve(
    s: TcpStream,
    heads: &Mutex<Vec<String>>,
    fins: &AtomicUsize,
    got: &Mutex<Vec<Vec<u8>>>,
) -> io::Result<()> {
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
    if let Ok(mut h) = heads.lock() {
        h.push(head.clone());
    }
    let key = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| v.trim().to_string())
    });
    let upgrade = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("upgrade: websocket"));
    let mut w = s;
    let (Some(key), true) = (key, upgrade) else {
        w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 10\r\n\r\nno upgrade")?;
        let _ = w.shutdown(std::net::Shutdown::Write);
        return Ok(());
    };
    w.write_all(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&key)
        )
        .as_bytes(),
    )?;
    loop {
        let Some((op, payload)) = read_frame(&mut r)? else {
            // The client's FIN, passed on by the proxy: ours follows.
            fins.fetch_add(1, Ordering::Relaxed);
            let _ = w.shutdown(std::net::Shutdown::Write);
            return Ok(());
        };
        match op {
            8 => write_frame(&mut w, 8, &payload, None)?,
            9 => write_frame(&mut w, 10, &payload, None)?,
            _ => {
                if let Ok(mut g) = got.lock() {
                    g.push(payload.clone());
                }
                // After a half-close of ours, nothing more is written.
                let _ = write_frame(&mut w, op, &payload, None);
                if payload == b"bye" {
                    w.shutdown(std::net::Shutdown::Write)?;
                }
            }
        }
    }
}

/// One frame (unfragmented), unmasked on the way out of this function; None at
/// EOF before a frame begins.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 2];
    match r.read(&mut h[..1])? {
        0 => return Ok(None),
        _ => r.read_exact(&mut h[1..])?,
    }
    let op = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask)?;
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p)?;
    if masked {
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some((op, p)))
}

/// One final frame; `mask` for a client's.
pub fn write_frame(w: &mut impl Write, op: u8, p: &[u8], mask: Option<[u8; 4]>) -> io::Result<()> {
    w.write_all(&frame(op, p, mask))
}

pub fn frame(op: u8, p: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | op];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if p.len() < 126 {
        f.push(m | p.len() as u8);
    } else if p.len() <= 0xffff {
        f.push(m | 126);
        f.extend_from_slice(&(p.len() as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend_from_slice(&(p.len() as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(p.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(p),
    }
    f
}

/// SHA-1 (FIPS 180-4), for the handshake only.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `head` is a 101 to a handshake with `key`: Upgrade, Connection and
/// Sec-WebSocket-Accept as RFC 6455 4.2.2 wants them.
pub fn assert_switched(head: &str, key: &str) {
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(
        head.contains(&format!(
            "\r\nSec-WebSocket-Accept: {}\r\n",
            accept_key(key)
        )),
        "{head}"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc6455_example_key() {
        // RFC 6455 section 1.3.
        assert_eq!(
            super::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
