//! HTTP Digest (RFC 7616) as lighttpd 1.4.69's mod_auth checks it: MD5, SHA-256
//! and SHA-512-256 (each also -sess), qop "auth" or none, nonces
//! "<hex epoch>:<hex H(epoch, random[, nonce_secret])>" good for 10 minutes (then
//! stale=true), with nonce_secret "<hex epoch>:<hex random>:<hex H(...)>" checked
//! to be the server's. The request-target in "uri" must be the one sent.

/// Hash algorithms (bits, as the set a require entry accepts).
pub const MD5: u8 = 1;
pub const SHA256: u8 = 2;
pub const SHA512_256: u8 = 4;
/// The -sess variant of the algorithm.
pub const SESS: u8 = 8;

/// Seconds a nonce is good for.
const NONCE_MAX_AGE: u64 = 600;

/// One algorithm name ("" is MD5), as lighttpd's mod_auth_algorithm_parse: its
/// bits, or None.
pub fn parse_algorithm(s: &str) -> Option<u8> {
    if s.is_empty() {
        return Some(MD5);
    }
    let lower = s.to_ascii_lowercase();
    let (base, sess) = match lower.strip_suffix("-sess") {
        Some(b) => (b, SESS),
        None => (lower.as_str(), 0),
    };
    let a = match base {
        "md5" => MD5,
        "sha-256" => SHA256,
        "sha-512-256" => SHA512_256,
        _ => return None,
    };
    Some(a | sess)
}

/// H(parts...) in the algorithm `a`, lowercase hex.
pub fn h(a: u8, parts: &[&[u8]]) -> String {
    fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().to_vec()
    }
    let bytes = if a & SHA256 != 0 {
        run::<sha2::Sha256>(parts)
    } else if a & SHA512_256 != 0 {
        run::<sha2::Sha512_256>(parts)
    } else {
        run::<md5::Md5>(parts)
    };
    super::hex(&bytes)
}

/// Hex digits of a digest in `a`.
pub fn hex_len(a: u8) -> usize {
    if a & (SHA256 | SHA512_256) != 0 {
        64
    } else {
        32
    }
}

/// A nonce for `now` (seconds since the epoch).
pub fn nonce(a: u8, now: i64, rnd: u32, secret: Option<&str>) -> String {
    let ts = now.to_le_bytes();
    let r = rnd.to_le_bytes();
    match secret {
        None => format!("{now:x}:{}", h(a, &[&ts, &r])),
        Some(s) => format!("{now:x}:{rnd:x}:{}", h(a, &[&ts, &r, s.as_bytes()])),
    }
}

/// The parameters of an Authorization: Digest header (values as sent; quoted
/// ones without their quotes, not unescaped, as lighttpd).
#[derive(Default, Debug)]
pub struct Params<'a> {
    pub username: Option<&'a [u8]>,
    pub realm: Option<&'a [u8]>,
    pub nonce: Option<&'a [u8]>,
    pub uri: Option<&'a [u8]>,
    pub algorithm: Option<&'a [u8]>,
    pub qop: Option<&'a [u8]>,
    pub cnonce: Option<&'a [u8]>,
    pub nc: Option<&'a [u8]>,
    pub response: Option<&'a [u8]>,
    pub userstar: Option<&'a [u8]>,
}

/// Parse what follows "Digest ". Unknown keys are skipped; a malformed value ends
/// the parse (what was read stays), as lighttpd's parser does.
pub fn parse(s: &[u8]) -> Params<'_> {
    let mut p = Params::default();
    let mut i = 0;
    let ws = |c: u8| c == b' ' || c == b'\t';
    while i < s.len() {
        while i < s.len() && (ws(s[i]) || s[i] == b',') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let k0 = i;
        while i < s.len() && s[i] != b'=' && !ws(s[i]) {
            i += 1;
        }
        let key = &s[k0..i];
        while i < s.len() && ws(s[i]) {
            i += 1;
        }
        if i >= s.len() || s[i] != b'=' {
            return p;
        }
        i += 1;
        while i < s.len() && ws(s[i]) {
            i += 1;
        }
        let value;
        if i < s.len() && s[i] == b'"' {
            i += 1;
            let v0 = i;
            while i < s.len() && s[i] != b'"' {
                if s[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= s.len() {
                return p;
            }
            value = &s[v0..i];
            i += 1;
        } else {
            let v0 = i;
            while i < s.len() && s[i] != b',' && !ws(s[i]) {
                i += 1;
            }
            value = &s[v0..i];
        }
        let slot = match key {
            b"username" => &mut p.username,
            b"realm" => &mut p.realm,
            b"nonce" => &mut p.nonce,
            b"uri" => &mut p.uri,
            b"algorithm" => &mut p.algorithm,
            b"qop" => &mut p.qop,
            b"cnonce" => &mut p.cnonce,
            b"nc" => &mut p.nc,
            b"response" => &mut p.response,
            b"username*" => &mut p.userstar,
            _ => {
                // skip to the next ','
                while i < s.len() && s[i] != b',' {
                    i += 1;
                }
                continue;
            }
        };
        *slot = Some(value);
        while i < s.len() && s[i] != b',' {
            i += 1;
        }
    }
    p
}

/// What a nonce is: good; too old or from the future (401 with stale=true);
/// not made with this nonce_secret (401); malformed for one (400).
pub enum NonceCheck {
    Ok,
    Stale,
    Mismatch,
    Invalid,
}

/// lighttpd's mod_auth_digest_validate_nonce.
pub fn check_nonce(n: &[u8], a: u8, now: i64, secret: Option<&str>) -> NonceCheck {
    // Unsigned: 16 hex digits from the client may set the top bit.
    let mut ts: u64 = 0;
    let mut i = 0;
    while i < n.len() && i < 16 && n[i].is_ascii_hexdigit() {
        ts = (ts << 4) | u64::from(hexval(n[i]));
        i += 1;
    }
    let now_u = u64::try_from(now).unwrap_or(0);
    if n.get(i) != Some(&b':') || ts > now_u || now_u - ts > NONCE_MAX_AGE {
        return NonceCheck::Stale;
    }
    let ts = now - (now_u - ts) as i64; // ts ≤ now: no overflow
    i += 1;
    let Some(secret) = secret else {
        return NonceCheck::Ok;
    };
    let mut rnd: u32 = 0;
    let stop = i + 8;
    while i < n.len() && i < stop && n[i].is_ascii_hexdigit() {
        rnd = (rnd << 4) | u32::from(hexval(n[i]));
        i += 1;
    }
    if n.get(i) != Some(&b':') {
        return NonceCheck::Invalid;
    }
    let want = nonce(a & !SESS, ts, rnd, Some(secret));
    if subtle::ConstantTimeEq::ct_eq(want.as_bytes(), n).into() {
        NonceCheck::Ok
    } else {
        NonceCheck::Mismatch
    }
}

fn hexval(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// The expected response from HA1 (hex) and the request.
pub fn response(a: u8, ha1: &str, p: &Params, method: &[u8]) -> String {
    let e: &[u8] = b"";
    let nonce = p.nonce.unwrap_or(e);
    let cnonce = p.cnonce.unwrap_or(e);
    let sess;
    let ha1 = if a & SESS != 0 {
        sess = h(a, &[ha1.as_bytes(), b":", nonce, b":", cnonce]);
        sess.as_str()
    } else {
        ha1
    };
    let ha2 = h(a, &[method, b":", p.uri.unwrap_or(e)]);
    match p.qop {
        Some(q) if !q.is_empty() => h(
            a,
            &[
                ha1.as_bytes(),
                b":",
                nonce,
                b":",
                p.nc.unwrap_or(e),
                b":",
                cnonce,
                b":",
                q,
                b":",
                ha2.as_bytes(),
            ],
        ),
        _ => h(a, &[ha1.as_bytes(), b":", nonce, b":", ha2.as_bytes()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7616_example() {
        // RFC 7616 3.9.1, SHA-256 and MD5.
        let hdr = br#"username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let p = parse(hdr);
        assert_eq!(p.username, Some(&b"Mufasa"[..]));
        assert_eq!(p.qop, Some(&b"auth"[..]));
        let a = parse_algorithm("SHA-256").expect("known");
        let ha1 = h(a, &[b"Mufasa:http-auth@example.org:Circle of Life"]);
        assert_eq!(
            response(a, &ha1, &p, b"GET").as_bytes(),
            p.response.expect("response")
        );
        let hdr = br#"username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let p = parse(hdr);
        let ha1 = h(MD5, &[b"Mufasa:http-auth@example.org:Circle of Life"]);
        assert_eq!(
            response(MD5, &ha1, &p, b"GET").as_bytes(),
            p.response.expect("response")
        );
    }

    #[test]
    fn nonces() {
        let n = nonce(MD5, 1000, 7, None);
        assert!(matches!(
            check_nonce(n.as_bytes(), MD5, 1000, None),
            NonceCheck::Ok
        ));
        assert!(matches!(
            check_nonce(n.as_bytes(), MD5, 1601, None),
            NonceCheck::Stale
        ));
        assert!(matches!(
            check_nonce(n.as_bytes(), MD5, 999, None),
            NonceCheck::Stale
        ));
        let n = nonce(SHA256, 1000, 0xabc, Some("s"));
        assert!(matches!(
            check_nonce(n.as_bytes(), SHA256, 1010, Some("s")),
            NonceCheck::Ok
        ));
        assert!(matches!(
            check_nonce(n.as_bytes(), SHA256, 1010, Some("t")),
            NonceCheck::Mismatch
        ));
        assert!(matches!(
            check_nonce(b"3e8:zz", MD5, 1000, Some("s")),
            NonceCheck::Invalid
        ));
        // Malformed headers end the parse, never panic.
        for h in [
            &b""[..],
            b"a",
            b"username",
            b"username=",
            b"username=\"abc\\",
            b"username=\"a\\\"",
            b"=,=,\"",
            b",,,  ,",
            b"realm=x,uri",
        ] {
            let _ = parse(h);
        }
        // No overflow on a hostile timestamp.
        for n in [&b"ffffffffffffffff:x"[..], b"8000000000000000:x"] {
            assert!(matches!(check_nonce(n, MD5, 1000, None), NonceCheck::Stale));
        }
    }
}
