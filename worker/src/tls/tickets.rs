//! Session tickets sealed with keys the master hands out, so that any worker of
//! any generation opens a ticket another issued. A ticket is
//! `name(16) | nonce(12) | AES-256-GCM(session state)`, the name authenticated.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use std::sync::RwLock;
use wick_proto::tls::TicketKeys;

struct Key {
    name: [u8; 16],
    key: LessSafeKey,
}

pub struct Tickets {
    /// Newest first. Single-threaded worker: the lock is never contended; rustls
    /// asks for Sync.
    keys: RwLock<Vec<Key>>,
    lifetime: u32,
    rng: SystemRandom,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tickets")
    }
}

fn keys(t: &TicketKeys) -> Vec<Key> {
    t.keys
        .iter()
        .filter_map(|k| {
            let key = UnboundKey::new(&AES_256_GCM, &k.secret).ok()?;
            Some(Key {
                name: k.name,
                key: LessSafeKey::new(key),
            })
        })
        .collect()
}

impl Tickets {
    pub fn new(t: &TicketKeys) -> Tickets {
        Tickets {
            keys: RwLock::new(keys(t)),
            lifetime: t.lifetime,
            rng: SystemRandom::new(),
        }
    }

    /// The master rotated the keys.
    pub fn replace(&self, t: &TicketKeys) {
        if let Ok(mut k) = self.keys.write() {
            *k = keys(t);
        }
    }

    pub fn is_off(&self) -> bool {
        self.keys.read().map_or(true, |k| k.is_empty())
    }
}

impl ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        !self.is_off()
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let keys = self.keys.read().ok()?;
        let k = keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(16 + NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&k.name);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        k.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&k.name),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < 16 + NONCE_LEN + 16 {
            return None;
        }
        let (name, rest) = cipher.split_at(16);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let keys = self.keys.read().ok()?;
        let k = keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = k
            .key
            .open_in_place(nonce, Aad::from(&k.name), &mut body)
            .ok()?;
        let n = plain.len();
        body.truncate(n);
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_proto::tls::TicketKey;

    fn key(n: u8) -> TicketKey {
        TicketKey {
            name: [n; 16],
            secret: [n.wrapping_add(7); 32],
        }
    }

    #[test]
    fn a_ticket_opens_with_the_same_keys_and_after_a_rotation() {
        let a = Tickets::new(&TicketKeys {
            keys: vec![key(1)],
            lifetime: 100,
        });
        let t = a.encrypt(b"session").expect("seal");
        let b = Tickets::new(&TicketKeys {
            keys: vec![key(2), key(1)],
            lifetime: 100,
        });
        assert_eq!(b.decrypt(&t).as_deref(), Some(&b"session"[..]));
        let c = Tickets::new(&TicketKeys {
            keys: vec![key(3)],
            lifetime: 100,
        });
        assert_eq!(c.decrypt(&t), None);
        let mut bad = t.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(b.decrypt(&bad), None);
        assert_eq!(b.decrypt(&t[..10]), None);
    }
}
