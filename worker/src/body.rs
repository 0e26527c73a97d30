//! A request body as the connection reads it for whatever handles the request
//! (lighttpd's reqbody_queue): one decoder (Content-Length or chunked), one size
//! check, the rate it arrives at, and its trailers (trailer.rs).

use crate::chunked::Decoder;
use crate::request::BodyKind;

#[derive(Debug)]
enum Framing {
    /// Bytes still to come.
    Length(u64),
    Chunked(Decoder),
}

#[derive(Debug)]
pub struct Body {
    framing: Framing,
    /// Largest body accepted (bytes; 0: no limit).
    limit: u64,
    /// Monotonic second the rate is counted from, and the bytes since.
    since: u64,
    read: u64,
    /// The request's Trailer header (the fields its trailers may name).
    trailer_names: Option<Box<[u8]>>,
}

/// What one `take` did: input bytes used, and the body's end when it came with
/// the trailers kept (request.trailer-whitelist).
pub struct Taken {
    pub used: usize,
    pub done: Option<Vec<(String, String)>>,
}

impl Body {
    /// The body a head announced (`kind` is not `None`).
    pub fn new(kind: BodyKind, limit: u64, now: u64, trailer_names: Option<&[u8]>) -> Body {
        let framing = match kind {
            BodyKind::Length(n) => Framing::Length(n),
            _ => Framing::Chunked(Decoder::new()),
        };
        let trailer_names = match framing {
            Framing::Chunked(_) => trailer_names.map(Box::from),
            Framing::Length(_) => None,
        };
        Body {
            framing,
            limit,
            since: now,
            read: 0,
            trailer_names,
        }
    }

    /// Decode what `d` holds of the body, its bytes to `sink`. The size check is
    /// made on what a chunk announces, before its data is read. Err: the status
    /// to refuse the request with (400 malformed, 413 too large, 431 trailers).
    pub fn take(
        &mut self,
        d: &[u8],
        mut sink: impl FnMut(&[u8]),
        field_limit: usize,
        whitelist: &[String],
    ) -> Result<Taken, u16> {
        let (used, done) = match &mut self.framing {
            Framing::Length(rem) => {
                let n = (*rem).min(d.len() as u64) as usize;
                *rem -= n as u64;
                sink(&d[..n]);
                (n, *rem == 0)
            }
            Framing::Chunked(dec) => {
                let n = dec.decode(d, &mut sink).map_err(|_| 400u16)?;
                if self.limit > 0 && dec.announced() > self.limit {
                    return Err(413);
                }
                (n, dec.is_done())
            }
        };
        self.read += used as u64;
        let done = match (&self.framing, done) {
            (_, false) => None,
            (Framing::Length(_), true) => Some(Vec::new()),
            (Framing::Chunked(dec), true) => {
                let names = self.trailer_names.as_deref();
                Some(crate::trailer::check(
                    dec.trailers(),
                    names,
                    field_limit,
                    whitelist,
                )?)
            }
        };
        Ok(Taken { used, done })
    }

    /// The reader, not the client, held the body back: its rate starts over.
    pub fn restart_rate(&mut self, now: u64) {
        (self.since, self.read) = (now, 0);
    }

    /// Below `rate` bytes a second on average, once `grace` seconds have passed.
    pub fn too_slow(&self, now: u64, rate: u64, grace: u64) -> bool {
        let took = now.saturating_sub(self.since);
        rate > 0 && took > grace && self.read < rate * took
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_chunked_bodies_end_where_they_say() {
        let mut got = Vec::new();
        let mut b = Body::new(BodyKind::Length(5), 0, 0, None);
        let t = b.take(b"helloGET", |d| got.extend_from_slice(d), 8192, &[]);
        let t = t.expect("length body");
        assert_eq!(
            (t.used, t.done.is_some(), &got[..]),
            (5, true, &b"hello"[..])
        );

        got.clear();
        let mut b = Body::new(BodyKind::Chunked, 0, 0, None);
        let t = b.take(b"3\r\nabc\r\n", |d| got.extend_from_slice(d), 8192, &[]);
        assert!(t.expect("first chunk").done.is_none());
        let wl = vec!["x-sum".to_string()];
        let t = b.take(
            b"0\r\nX-Sum: 1\r\n\r\nnext",
            |d| got.extend_from_slice(d),
            8192,
            &wl,
        );
        let t = t.expect("last chunk");
        assert_eq!(t.used, 15);
        assert_eq!(t.done, Some(vec![("X-Sum".into(), "1".into())]));
        assert_eq!(got, b"abc");
    }

    #[test]
    fn one_limit_on_what_a_chunk_announces() {
        let mut b = Body::new(BodyKind::Chunked, 10, 0, None);
        assert_eq!(b.take(b"b\r\n", |_| {}, 8192, &[]).err(), Some(413));
        let mut b = Body::new(BodyKind::Chunked, 0, 0, None);
        assert_eq!(b.take(b"zz\r\n", |_| {}, 8192, &[]).err(), Some(400));
    }

    #[test]
    fn rate_counts_from_the_start_or_the_last_restart() {
        let mut b = Body::new(BodyKind::Length(1000), 0, 100, None);
        assert!(b.take(b"x", |_| {}, 8192, &[]).is_ok());
        assert!(!b.too_slow(101, 64, 2), "within the grace period");
        assert!(b.too_slow(103, 64, 2));
        b.restart_rate(103);
        assert!(!b.too_slow(105, 64, 2));
    }
}
