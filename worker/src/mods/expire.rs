//! mod_expire: caching headers on 200 and 206 answers to GET and HEAD that carry
//! no Cache-Control yet. expire.url (first URL-path prefix that matches) wins over
//! expire.mimetypes (first Content-Type prefix; a trailing `*` is ignored; the key
//! "" is the fallback). Values are "access|now|modification [plus] {N unit}..."
//! with units year(s) month(s) week(s) day(s) hour(s) minute(s)/min(s)
//! second(s)/sec(s). As in lighttpd 1.4.60 and later, an HTTP/1.1 answer gets
//! `Cache-Control: max-age=N` and an HTTP/1.0 answer `Expires:`; "modification"
//! counts from the file's Last-Modified time (no header without one).

use super::{hook, LaterHook, Module, RespCx};
use crate::request::Version;
use crate::resp_head::ResponseHead;
use wick_conf::Config;

/// A parsed value: (from modification time?, seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub modification: bool,
    pub secs: i64,
}

/// lighttpd's mod_expire_get_offset.
pub fn parse(s: &str) -> Option<Spec> {
    let (modification, mut rest) = if let Some(r) = s.strip_prefix("access ") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("now ") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("modification ") {
        (true, r)
    } else {
        return None;
    };
    if let Some(r) = rest.strip_prefix("plus ") {
        rest = r;
    }
    const UNITS: &[(&str, i64)] = &[
        ("year", 365 * 86400),
        ("month", 30 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
        ("min", 60),
        ("second", 1),
        ("sec", 1),
    ];
    let mut secs: i64 = 0;
    loop {
        let digits = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
            .count();
        let num: i64 = rest[..digits].parse().unwrap_or(0);
        rest = rest[digits..].trim_start_matches(' ');
        let (unit, mult) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        secs = secs.saturating_add(num.saturating_mul(*mult));
        rest = &rest[unit.len()..];
        rest = rest.strip_prefix('s').unwrap_or(rest);
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return Some(Spec { modification, secs });
        }
    }
}

/// One block's parsed lists.
#[derive(Default)]
struct Lists {
    url: Vec<(String, Spec)>,
    mime: Vec<(String, Spec)>,
}

pub struct Expire {
    blocks: super::ByBlock<Lists>,
}

impl Expire {
    pub fn new(cfg: &Config) -> Result<Expire, String> {
        let mut blocks = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            if p.expire_url().is_none() && p.expire_mimetypes().is_none() {
                continue;
            }
            let mut l = Lists::default();
            for (key, list, out) in [
                ("expire.url", p.expire_url(), &mut l.url),
                ("expire.mimetypes", p.expire_mimetypes(), &mut l.mime),
            ] {
                for (k, v) in list.into_iter().flatten() {
                    let spec = parse(v).ok_or_else(|| {
                        format!("{}invalid {key} = \"{v}\"", super::where_set(cfg, id, key))
                    })?;
                    let k = if key == "expire.mimetypes" {
                        k.strip_suffix('*').unwrap_or(k)
                    } else {
                        k
                    };
                    out.push((k.to_string(), spec));
                }
            }
            // lighttpd serves .js as text/javascript: an application/javascript
            // entry covers it unless text/javascript or text/ is listed.
            if !l
                .mime
                .iter()
                .any(|(k, _)| k == "text/javascript" || k == "text/")
            {
                for (k, _) in l.mime.iter_mut() {
                    if k == "application/javascript" {
                        *k = "text/javascript".into();
                    }
                }
            }
            blocks.push((id, l));
        }
        Ok(Expire {
            blocks: blocks.into_iter().collect(),
        })
    }
}

impl Module for Expire {
    fn name(&self) -> &'static str {
        "mod_expire"
    }

    fn hooks(&self) -> u16 {
        hook::RESPONSE_START
    }

    fn response_start(&self, x: &RespCx, head: &mut ResponseHead) {
        if !get_or_head(x) {
            return;
        }
        if let Some(plan) = self.plan(x) {
            plan.apply(head, x.clock.unix);
        }
    }

    fn response_later(&self, x: &RespCx) -> Option<Box<dyn LaterHook>> {
        if !get_or_head(x) {
            return None;
        }
        let plan = self.plan(x)?;
        Some(Box::new(Later {
            url: plan.url,
            mime: plan.mime.to_vec(),
        }))
    }
}

fn get_or_head(x: &RespCx) -> bool {
    matches!(
        x.base.head.method,
        crate::request::Method::Get | crate::request::Method::Head
    )
}

impl Expire {
    /// What the request's blocks say: the expire.url rule its path matches, and
    /// the expire.mimetypes rules to try on the response's Content-Type.
    fn plan<'a>(&'a self, x: &RespCx) -> Option<Plan<'a>> {
        let v = x.view;
        if v.expire_url.is_empty() && v.expire_mimetypes.is_empty() {
            return None;
        }
        let url_block = x
            .compiled
            .winning_block(x.cond, |p| p.expire_url().is_some());
        let mime_block = x
            .compiled
            .winning_block(x.cond, |p| p.expire_mimetypes().is_some());
        let path = &x.rq.path;
        let url = self.blocks.get(url_block).and_then(|l| {
            l.url
                .iter()
                .find(|(k, _)| path.starts_with(k.as_bytes()))
                .map(|(_, s)| *s)
        });
        let mime = self.blocks.get(mime_block).map_or(&[][..], |l| &l.mime[..]);
        Some(Plan { url, mime })
    }
}

/// The expiry rules that apply to one request's response.
struct Plan<'a> {
    url: Option<Spec>,
    mime: &'a [(String, Spec)],
}

impl Plan<'_> {
    /// Expires (HTTP/1.0) or Cache-Control: max-age for a 200/206 without its own
    /// Cache-Control.
    fn apply(&self, head: &mut ResponseHead, now: i64) {
        if !matches!(head.status, 200 | 206) || head.has(b"Cache-Control") {
            return;
        }
        let spec = self.url.or_else(|| {
            let ct = head.get(b"Content-Type").unwrap_or(b"");
            self.mime
                .iter()
                .find(|(k, _)| !k.is_empty() && ct.starts_with(k.as_bytes()))
                .or_else(|| self.mime.iter().find(|(k, _)| k.is_empty()))
                .map(|(_, s)| *s)
        });
        let Some(spec) = spec else { return };
        let mut expires = spec.secs;
        if spec.modification {
            let Some(mtime) = head
                .get(b"Last-Modified")
                .and_then(|d| crate::date::parse_http_date(d, now))
            else {
                return;
            };
            expires = expires.saturating_add(mtime).max(now);
        } else {
            expires = expires.saturating_add(now);
        }
        if head.version == Version::Http10 {
            let mut d = [0u8; crate::date::HTTP_DATE_LEN];
            crate::date::format_http_date(expires, &mut d);
            head.set(b"Expires", &d);
        } else {
            // (no Cache-Control yet: checked above)
            let age = expires.saturating_sub(now);
            head.add_with(b"Cache-Control", |b| {
                b.extend_from_slice(b"max-age=");
                if age < 0 {
                    b.push(b'-');
                }
                crate::response::put_u64(b, age.unsigned_abs());
            });
        }
    }
}

/// The rules for a head that comes later (a CGI response).
struct Later {
    url: Option<Spec>,
    mime: Vec<(String, Spec)>,
}

impl LaterHook for Later {
    fn run(&self, head: &mut ResponseHead, clock: &crate::date::Clock) {
        let plan = Plan {
            url: self.url,
            mime: &self.mime,
        };
        plan.apply(head, clock.unix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let s = |m, secs| {
            Some(Spec {
                modification: m,
                secs,
            })
        };
        assert_eq!(parse("access plus 1 days"), s(false, 86400));
        assert_eq!(parse("access 2 hours 30 minutes"), s(false, 9000));
        assert_eq!(parse("modification plus 1 year"), s(true, 365 * 86400));
        assert_eq!(parse("now plus 10 secs"), s(false, 10));
        assert_eq!(parse("access plus 1 fortnight"), None);
        assert_eq!(parse("later plus 1 day"), None);
    }
}
