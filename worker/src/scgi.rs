//! mod_scgi's two request heads (scgi.protocol), written before the body, which
//! follows as it is on both; the response is a CGI response read until the
//! backend closes (`gateway::GatewayJob`). SCGI: a netstring of NUL-terminated
//! names and values, CONTENT_LENGTH first (the environment starts with it) and
//! `SCGI` = `1` last, as lighttpd sends it. uwsgi: a 4-byte packet header
//! (modifier1 0, the size of the variables as 16 bits little-endian, modifier2 0),
//! then each name and value with its 16-bit little-endian length.

/// The SCGI head of `env` onto `out`.
pub fn scgi_head<'a>(out: &mut Vec<u8>, env: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut vars = Vec::with_capacity(2048);
    for (k, v) in env.into_iter().chain([("SCGI", "1")]) {
        vars.extend_from_slice(k.as_bytes());
        vars.push(0);
        vars.extend_from_slice(v.as_bytes());
        vars.push(0);
    }
    out.extend_from_slice(vars.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(&vars);
    out.push(b',');
}

/// The variables do not fit a uwsgi packet (64 KiB).
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

/// The uwsgi head of `env` onto `out`, or [`TooLarge`] (nothing written).
pub fn uwsgi_head<'a>(
    out: &mut Vec<u8>,
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), TooLarge> {
    let mut vars = Vec::with_capacity(2048);
    for (k, v) in env {
        for part in [k, v] {
            let n = u16::try_from(part.len()).map_err(|_| TooLarge)?;
            vars.extend_from_slice(&n.to_le_bytes());
            vars.extend_from_slice(part.as_bytes());
        }
    }
    let size = u16::try_from(vars.len()).map_err(|_| TooLarge)?;
    out.push(0);
    out.extend_from_slice(&size.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&vars);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scgi_netstring_as_the_spec_shows_it() {
        // The SCGI specification's example, with lighttpd's SCGI=1 last.
        let mut out = Vec::new();
        scgi_head(
            &mut out,
            [
                ("CONTENT_LENGTH", "27"),
                ("REQUEST_METHOD", "POST"),
                ("REQUEST_URI", "/deepthought"),
            ],
        );
        let vars = b"CONTENT_LENGTH\x0027\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00SCGI\x001\x00";
        let mut want = format!("{}:", vars.len()).into_bytes();
        want.extend_from_slice(vars);
        want.push(b',');
        assert_eq!(out, want);
    }

    #[test]
    fn uwsgi_packet_little_endian() {
        let mut out = Vec::new();
        uwsgi_head(&mut out, [("A", "bc"), ("DE", "")]).expect("fits");
        assert_eq!(
            out,
            [0, 13, 0, 0, 1, 0, b'A', 2, 0, b'b', b'c', 2, 0, b'D', b'E', 0, 0]
        );
        let big = "x".repeat(70_000);
        let mut out = Vec::new();
        assert_eq!(uwsgi_head(&mut out, [("A", big.as_str())]), Err(TooLarge));
        let v = "y".repeat(40_000);
        assert_eq!(
            uwsgi_head(&mut out, [("A", v.as_str()), ("B", v.as_str())]),
            Err(TooLarge)
        );
        assert!(out.is_empty());
    }
}
