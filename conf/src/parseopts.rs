//! server.http-parseopts (and the old server.http-parseopt-* keys): how strictly a
//! request is read and what its target is normalised to, decoded once at load into
//! a bit set with lighttpd 1.4.69's bit values, defaults and checks
//! (configfile.c config_http_parseopts).

use serde::{Deserialize, Serialize};

use crate::model::Value;

/// The options in force, as lighttpd's `HTTP_PARSEOPT_*` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseOpts(pub u16);

impl ParseOpts {
    pub const HEADER_STRICT: u16 = 0x1;
    pub const HOST_STRICT: u16 = 0x2;
    pub const HOST_NORMALIZE: u16 = 0x4;
    pub const URL_NORMALIZE: u16 = 0x8;
    pub const UNRESERVED: u16 = 0x10;
    pub const REQUIRED: u16 = 0x20;
    pub const CTRLS_REJECT: u16 = 0x40;
    pub const BACKSLASH_TRANS: u16 = 0x80;
    pub const PATH_2F_DECODE: u16 = 0x100;
    pub const PATH_2F_REJECT: u16 = 0x200;
    pub const DOTSEG_REMOVE: u16 = 0x400;
    pub const DOTSEG_REJECT: u16 = 0x800;
    pub const QUERY_20_PLUS: u16 = 0x1000;
    pub const INVALID_UTF8_REJECT: u16 = 0x2000;
    pub const METHOD_GET_BODY: u16 = 0x8000;

    /// The URL bits lighttpd starts from (config_init).
    const URL_DEFAULT: u16 = Self::URL_NORMALIZE
        | Self::UNRESERVED
        | Self::CTRLS_REJECT
        | Self::PATH_2F_DECODE
        | Self::DOTSEG_REMOVE
        | Self::INVALID_UTF8_REJECT;

    #[inline]
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

impl Default for ParseOpts {
    fn default() -> Self {
        ParseOpts(Self::URL_DEFAULT | Self::HEADER_STRICT | Self::HOST_STRICT)
    }
}

/// Bits 0x8..=0x2000: the URL options.
const URL_MASK: u16 = 0x3ff8;

/// The URL options by name; the four others are kept apart, as lighttpd does
/// (they are not cleared by "url-normalize" => "disable").
const URL_NAMES: &[(&str, u16)] = &[
    ("url-normalize", ParseOpts::URL_NORMALIZE),
    ("url-normalize-unreserved", ParseOpts::UNRESERVED),
    ("url-normalize-required", ParseOpts::REQUIRED),
    ("url-ctrls-reject", ParseOpts::CTRLS_REJECT),
    ("url-path-backslash-trans", ParseOpts::BACKSLASH_TRANS),
    ("url-path-2f-decode", ParseOpts::PATH_2F_DECODE),
    ("url-path-2f-reject", ParseOpts::PATH_2F_REJECT),
    ("url-path-dotseg-remove", ParseOpts::DOTSEG_REMOVE),
    ("url-path-dotseg-reject", ParseOpts::DOTSEG_REJECT),
    ("url-query-20-plus", ParseOpts::QUERY_20_PLUS),
    ("url-invalid-utf8-reject", ParseOpts::INVALID_UTF8_REJECT),
];

const OTHER_NAMES: &[(&str, u16)] = &[
    ("header-strict", ParseOpts::HEADER_STRICT),
    ("host-strict", ParseOpts::HOST_STRICT),
    ("host-normalize", ParseOpts::HOST_NORMALIZE),
    ("method-get-body", ParseOpts::METHOD_GET_BODY),
];

fn set(opts: &mut u16, bit: u16, on: bool) {
    if on {
        *opts |= bit;
    } else {
        *opts &= !bit;
    }
}

/// One old-style key (server.http-parseopt-header-strict etc.): its bit, if `key` is one.
pub fn legacy_bit(key: &str) -> Option<u16> {
    let name = key
        .to_ascii_lowercase()
        .strip_prefix("server.http-parseopt-")?
        .to_string();
    match name.as_str() {
        "header-strict" => Some(ParseOpts::HEADER_STRICT),
        "host-strict" => Some(ParseOpts::HOST_STRICT),
        "host-normalize" => Some(ParseOpts::HOST_NORMALIZE),
        _ => None,
    }
}

impl ParseOpts {
    /// Apply server.http-parseopts' value to `self` (the defaults, or what the old
    /// keys set) as lighttpd 1.4.69 does: options start from the defaults, disabling
    /// url-normalize clears every URL option, and enabling any leaves
    /// url-normalize-unreserved (with url-invalid-utf8-reject) and url-path-2f-decode
    /// on unless set otherwise. Errors are lighttpd's messages; the first is returned.
    pub fn apply(&mut self, v: &Value) -> Result<(), String> {
        let Value::Array(items) = v else {
            return Err(
                "server.http-parseopts: expected a list of \"option\" => \"enable\"|\"disable\""
                    .into(),
            );
        };
        let mut url = self.0 & URL_MASK;
        let mut other = self.0 & !URL_MASK;
        let (mut decode_2f, mut url_normalize) = (true, true);
        for (k, v) in items {
            let Some(k) = k else {
                return Err(
                    "server.http-parseopts: expected \"option\" => \"enable\"|\"disable\" elements"
                        .into(),
                );
            };
            let val = crate::options::parse_bool(v).map_err(|_| {
                let shown = match v {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Array(_) => "(array)".into(),
                };
                format!(
                    "unrecognized value for server.http-parseopts: {k} => {shown} (expect \"[enable|disable]\")"
                )
            })?;
            if let Some(&(_, bit)) = URL_NAMES.iter().find(|(n, _)| *n == k) {
                set(&mut url, bit, val);
                if !val && bit == Self::URL_NORMALIZE {
                    url_normalize = false;
                }
                if !val && bit == Self::PATH_2F_DECODE {
                    decode_2f = false;
                }
            } else if let Some(&(_, bit)) = OTHER_NAMES.iter().find(|(n, _)| *n == k) {
                set(&mut other, bit, val);
            } else {
                return Err(format!("unrecognized key for server.http-parseopts: {k}"));
            }
        }
        if !url_normalize {
            url = 0;
        }
        if url != 0 {
            url |= Self::URL_NORMALIZE;
            let both = |a: u16, b: u16| url & (a | b) == a | b;
            if both(Self::PATH_2F_DECODE, Self::PATH_2F_REJECT) {
                return Err("conflicting options in server.http-parseopts:url-path-2f-decode, url-path-2f-reject".into());
            }
            if both(Self::DOTSEG_REMOVE, Self::DOTSEG_REJECT) {
                return Err("conflicting options in server.http-parseopts:url-path-dotseg-remove, url-path-dotseg-reject".into());
            }
            if url & (Self::UNRESERVED | Self::REQUIRED) == 0 {
                url |= Self::UNRESERVED | Self::INVALID_UTF8_REJECT;
                if decode_2f && url & Self::PATH_2F_REJECT == 0 {
                    url |= Self::PATH_2F_DECODE;
                }
            }
        }
        self.0 = url | other;
        Ok(())
    }

    /// What wickd does not relax although the options ask it to (one line each).
    pub fn kept_strict(self) -> Vec<&'static str> {
        let mut w = Vec::new();
        if !self.has(Self::HEADER_STRICT) {
            w.push("header-strict disabled: wickd still refuses control bytes in header fields (a smuggling risk)");
        }
        if !self.has(Self::CTRLS_REJECT) {
            w.push("url-ctrls-reject disabled: wickd still refuses control bytes in the path (%00-%1F, %7F); the query string may hold them");
        }
        if !self.has(Self::URL_NORMALIZE) {
            w.push("url-normalize disabled: wickd still decodes and normalises the path it maps to a file, and refuses control bytes in it");
        }
        if self.has(Self::BACKSLASH_TRANS) {
            w.push("url-path-backslash-trans does nothing on Linux, as in lighttpd: \\ stays a file name character");
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(items: &[(&str, &str)]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|(k, v)| (Some(k.to_string()), Value::Str(v.to_string())))
                .collect(),
        )
    }

    fn with(items: &[(&str, &str)]) -> Result<ParseOpts, String> {
        let mut o = ParseOpts::default();
        o.apply(&kv(items)).map(|()| o)
    }

    #[test]
    fn defaults_are_lighttpds() {
        let o = ParseOpts::default();
        for b in [
            ParseOpts::HEADER_STRICT,
            ParseOpts::HOST_STRICT,
            ParseOpts::URL_NORMALIZE,
            ParseOpts::UNRESERVED,
            ParseOpts::CTRLS_REJECT,
            ParseOpts::PATH_2F_DECODE,
            ParseOpts::DOTSEG_REMOVE,
            ParseOpts::INVALID_UTF8_REJECT,
        ] {
            assert!(o.has(b), "{b:#x}");
        }
        for b in [
            ParseOpts::HOST_NORMALIZE,
            ParseOpts::REQUIRED,
            ParseOpts::PATH_2F_REJECT,
            ParseOpts::DOTSEG_REJECT,
            ParseOpts::QUERY_20_PLUS,
            ParseOpts::METHOD_GET_BODY,
        ] {
            assert!(!o.has(b), "{b:#x}");
        }
        assert_eq!(with(&[]), Ok(o));
    }

    #[test]
    fn lighttpd_rules() {
        // Reject conflicts with the default decode/remove unless those are disabled.
        assert!(with(&[("url-path-2f-reject", "enable")])
            .expect_err("an error")
            .contains("conflicting"));
        assert!(with(&[("url-path-dotseg-reject", "enable")])
            .expect_err("an error")
            .contains("conflicting"));
        let o = with(&[
            ("url-path-2f-decode", "disable"),
            ("url-path-2f-reject", "enable"),
        ])
        .expect("ok");
        assert!(o.has(ParseOpts::PATH_2F_REJECT) && !o.has(ParseOpts::PATH_2F_DECODE));
        // url-normalize off clears every URL option but not the others.
        let o = with(&[("url-normalize", "disable"), ("method-get-body", "enable")]).expect("ok");
        assert_eq!(
            o.0,
            ParseOpts::HEADER_STRICT | ParseOpts::HOST_STRICT | ParseOpts::METHOD_GET_BODY
        );
        // Neither unreserved nor required: unreserved, utf8 and 2f-decode come back.
        let o = with(&[
            ("url-normalize-unreserved", "disable"),
            ("url-invalid-utf8-reject", "disable"),
        ])
        .expect("ok");
        assert!(o.has(ParseOpts::UNRESERVED) && o.has(ParseOpts::INVALID_UTF8_REJECT));
        let o = with(&[("url-invalid-utf8-reject", "disable")]).expect("ok");
        assert!(!o.has(ParseOpts::INVALID_UTF8_REJECT));
        let o = with(&[("host-strict", "disable"), ("host-normalize", "enable")]).expect("ok");
        assert!(!o.has(ParseOpts::HOST_STRICT) && o.has(ParseOpts::HOST_NORMALIZE));
        assert_eq!(
            with(&[("url-foo", "enable")]),
            Err("unrecognized key for server.http-parseopts: url-foo".into())
        );
        assert!(with(&[("url-query-20-plus", "yes")])
            .expect_err("an error")
            .starts_with("unrecognized value for server.http-parseopts: url-query-20-plus => yes"));
    }
}
