//! bcrypt verification in slices, so that one check of a password against a
//! `$2a$`/`$2b$`/`$2y$` hash (about 70 ms at cost 10 here, four times that at 12)
//! never holds the worker's event loop for more than a slice: mod_auth parks
//! the request between slices and the worker serves the others meanwhile.
//!
//! The algorithm is the bcrypt crate's (and OpenBSD's), built from the same
//! blowfish primitives: EksBlowfishSetup's 2^cost rounds are the part done in
//! slices; the result is compared with the stored hash in constant time.
//! `tests` check it against `bcrypt::verify`.

use base64::Engine as _;
use blowfish::Blowfish;
use subtle::ConstantTimeEq;

/// A verification under way.
pub struct Stepped {
    state: Box<Blowfish>,
    /// The password with its NUL, at most 72 bytes (bcrypt's key).
    key: Vec<u8>,
    salt: [u8; 16],
    /// The stored hash's 23 bytes.
    want: [u8; 23],
    /// Expansion rounds still to do.
    left: u64,
}

impl Stepped {
    /// Begin checking `pw` against `stored`; None when `stored` is not a bcrypt
    /// hash of the kinds done in slices (`$2x$` goes to the bcrypt crate whole).
    pub fn new(stored: &[u8], pw: &[u8]) -> Option<Stepped> {
        let s = std::str::from_utf8(stored).ok()?;
        let mut parts = s.split('$');
        let (Some(""), Some(kind), Some(cost), Some(rest), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if !matches!(kind, "2a" | "2b" | "2y") || cost.len() != 2 || rest.len() != 53 {
            return None;
        }
        let cost: u32 = cost.parse().ok().filter(|c| (4..=31).contains(c))?;
        let salt: [u8; 16] = bcrypt::BASE_64
            .decode(rest.get(..22)?)
            .ok()?
            .try_into()
            .ok()?;
        let want: [u8; 23] = bcrypt::BASE_64
            .decode(rest.get(22..)?)
            .ok()?
            .try_into()
            .ok()?;
        let mut key = Vec::with_capacity(pw.len().min(71) + 1);
        key.extend_from_slice(pw);
        key.push(0);
        key.truncate(72);
        let mut state = Box::new(Blowfish::bc_init_state());
        state.salted_expand_key(&salt, &key);
        Some(Stepped {
            state,
            key,
            salt,
            want,
            left: 1u64 << cost,
        })
    }

    /// Do at most `rounds` expansion rounds; Some(matches) once done.
    pub fn step(&mut self, rounds: u64) -> Option<bool> {
        let n = rounds.max(1).min(self.left);
        for _ in 0..n {
            self.state.bc_expand_key(&self.key);
            self.state.bc_expand_key(&self.salt);
        }
        self.left -= n;
        if self.left > 0 {
            return None;
        }
        // "OrpheanBeholderScryDoubt", encrypted 64 times.
        let mut ctext: [u32; 6] = [
            0x4f72_7068,
            0x6561_6e42,
            0x6568_6f6c,
            0x6465_7253,
            0x6372_7944,
            0x6f75_6274,
        ];
        let mut out = [0u8; 24];
        for i in (0..6).step_by(2) {
            for _ in 0..64 {
                let [l, r] = self.state.bc_encrypt([ctext[i], ctext[i + 1]]);
                ctext[i] = l;
                ctext[i + 1] = r;
            }
            out[i * 4..i * 4 + 4].copy_from_slice(&ctext[i].to_be_bytes());
            out[i * 4 + 4..i * 4 + 8].copy_from_slice(&ctext[i + 1].to_be_bytes());
        }
        Some(bool::from(out[..23].ct_eq(&self.want)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(stored: &str, pw: &[u8], slice: u64) -> Option<bool> {
        let mut s = Stepped::new(stored.as_bytes(), pw)?;
        loop {
            if let Some(v) = s.step(slice) {
                return Some(v);
            }
        }
    }

    #[test]
    fn agrees_with_the_bcrypt_crate() {
        let pws: [&[u8]; 5] = [
            b"secret",
            b"",
            b"\xff\xfe non-UTF-8",
            &[b'x'; 71],
            &[b'y'; 100],
        ];
        for cost in [4, 5] {
            for pw in pws {
                let h = bcrypt::hash(pw, cost).expect("hash");
                for (kind, slice) in [("$2b$", 1), ("$2a$", 7), ("$2y$", 1 << 20)] {
                    let h = h.replacen("$2b$", kind, 1);
                    assert_eq!(whole(&h, pw, slice), Some(true), "{h}");
                    assert_eq!(bcrypt::verify(pw, &h).ok(), Some(true));
                    let mut wrong = pw.to_vec();
                    wrong.push(b'!');
                    // (beyond 72 bytes the extra byte is not part of the key)
                    let want = pw.len() >= 72;
                    assert_eq!(whole(&h, &wrong, slice), Some(want), "{h}");
                    assert_eq!(bcrypt::verify(&wrong, &h).ok(), Some(want));
                }
            }
        }
        // Known vector (htpasswd -B).
        let b = "$2y$05$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYEaDu";
        assert_eq!(whole(b, b"secret", 3), Some(true));
        assert_eq!(whole(b, b"nope", 3), Some(false));
    }

    #[test]
    fn not_sliced() {
        for h in [
            "$2x$05$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYEaDu",
            "$2y$05$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYEaD",
            "$2y$5$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYEaDu",
            "$2y$99$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYEaDu",
            "$2y$05$PE9eU8AhWpid7uJzOMQdC.0KcpT.hacbsiXMKNuJuybOEHpFYE!Du",
            "$2y$05$",
            "",
        ] {
            assert!(Stepped::new(h.as_bytes(), b"secret").is_none(), "{h}");
        }
    }
}
