//! OpenSSL's cipher strings (ssl.cipher-list, ssl-conf-cmd CipherString and
//! Ciphersuites) read against the suites rustls has: each rustls TLS 1.2 suite
//! carries the OpenSSL name and the aliases that select it, and a string is
//! evaluated as OpenSSL evaluates it (`!` removes for good, `-` removes, `+`
//! moves to the end, `A+B` needs both). Aliases of what rustls never does (RC4,
//! CBC, RSA key exchange, DHE, ...) select nothing, as they would on an OpenSSL
//! built without them.

use rustls::crypto::aws_lc_rs::cipher_suite as cs;
use rustls::SupportedCipherSuite;

struct Suite {
    suite: SupportedCipherSuite,
    name: &'static str,
    /// Lower-case aliases that select this suite (OpenSSL's names).
    aliases: &'static [&'static str],
}

/// Aliases every rustls TLS 1.2 suite matches ("PROFILE=SYSTEM": Fedora's system
/// policy, which allows all of them).
const COMMON: &[&str] = &[
    "all",
    "default",
    "high",
    "tlsv1.2",
    "aead",
    "kecdhe",
    "keecdh",
    "ecdhe",
    "eecdh",
    "ecdh",
    "profile=system",
];

fn tls12() -> [Suite; 6] {
    [
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            name: "ECDHE-ECDSA-AES256-GCM-SHA384",
            aliases: &["aecdsa", "ecdsa", "aes", "aes256", "aesgcm"],
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            name: "ECDHE-ECDSA-AES128-GCM-SHA256",
            aliases: &["aecdsa", "ecdsa", "aes", "aes128", "aesgcm"],
        },
        Suite {
            suite: cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            name: "ECDHE-ECDSA-CHACHA20-POLY1305",
            aliases: &["aecdsa", "ecdsa", "chacha20"],
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            name: "ECDHE-RSA-AES256-GCM-SHA384",
            aliases: &["arsa", "aes", "aes256", "aesgcm"],
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            name: "ECDHE-RSA-AES128-GCM-SHA256",
            aliases: &["arsa", "aes", "aes128", "aesgcm"],
        },
        Suite {
            suite: cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            name: "ECDHE-RSA-CHACHA20-POLY1305",
            aliases: &["arsa", "chacha20"],
        },
    ]
}

fn selects(s: &Suite, term: &str) -> bool {
    let t = term.to_ascii_lowercase();
    s.name.eq_ignore_ascii_case(term)
        || COMMON.contains(&t.as_str())
        || s.aliases.contains(&t.as_str())
}

/// The TLS 1.2 suites an OpenSSL cipher string leaves, in its order. Err: it
/// leaves none (OpenSSL: "no cipher match").
pub fn tls12_suites(spec: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let all = tls12();
    let mut list: Vec<usize> = Vec::new();
    let mut banned = [false; 6];
    for word in spec.split([':', ',', ' ', ';']).filter(|w| !w.is_empty()) {
        if word.starts_with('@') {
            // @STRENGTH, @SECLEVEL=n: every rustls suite is of the highest class.
            continue;
        }
        let (op, body) = match word.as_bytes()[0] {
            b'!' | b'-' | b'+' => (word.as_bytes()[0], &word[1..]),
            _ => (b' ', word),
        };
        let hit: Vec<usize> = (0..all.len())
            .filter(|&i| body.split('+').all(|t| selects(&all[i], t)))
            .collect();
        match op {
            b'!' => {
                for &i in &hit {
                    banned[i] = true;
                }
                list.retain(|i| !hit.contains(i));
            }
            b'-' => list.retain(|i| !hit.contains(i)),
            b'+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    list.iter().partition(|i| hit.contains(i));
                list = kept;
                list.extend(moved);
            }
            _ => {
                for i in hit {
                    if !banned[i] && !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    if list.is_empty() {
        return Err(format!(
            "\"{spec}\" selects none of the TLS 1.2 cipher suites wickd has ({})",
            all.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(list.into_iter().map(|i| all[i].suite).collect())
}

/// TLS 1.3 suites by their IANA names (ssl-conf-cmd Ciphersuites).
pub fn tls13_suites(spec: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = Vec::new();
    for name in spec.split(':').filter(|w| !w.is_empty()) {
        let s = match name {
            "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
            "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
            "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
            other => {
                return Err(format!(
                    "TLS 1.3 suite {other} is not one wickd has (TLS_AES_256_GCM_SHA384, \
                     TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256)"
                ))
            }
        };
        out.push(s);
    }
    if out.is_empty() {
        return Err("Ciphersuites names no TLS 1.3 suite".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(spec: &str) -> Vec<String> {
        tls12_suites(spec)
            .unwrap_or_default()
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    #[test]
    fn common_strings_select_what_openssl_would() {
        assert_eq!(names("HIGH:!aNULL:!MD5").len(), 6);
        assert_eq!(names("EECDH+AESGCM:EDH+AESGCM").len(), 4);
        let ecdsa_first = names("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384");
        assert_eq!(ecdsa_first.len(), 2);
        assert!(ecdsa_first[0].contains("ECDSA"));
        assert_eq!(names("HIGH:!aRSA").len(), 3);
        assert_eq!(names("PROFILE=SYSTEM").len(), 6);
        // A real config's list: the DHE names select nothing, the rest keep order.
        let l = names("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305");
        assert_eq!(l.len(), 6);
        assert!(l[0].contains("ECDSA_WITH_AES_128"));
        assert_eq!(names("HIGH:-CHACHA20:CHACHA20").len(), 6);
        assert_eq!(names("HIGH:!CHACHA20:CHACHA20").len(), 4);
        let moved = names("HIGH:+AES128");
        assert!(moved[5].contains("AES_128"));
    }

    #[test]
    fn a_string_that_leaves_nothing_is_an_error() {
        assert!(tls12_suites("RC4:DES-CBC3-SHA").is_err());
        assert!(tls12_suites("aNULL").is_err());
        assert!(tls13_suites("TLS_AES_128_CCM_SHA256").is_err());
    }
}
