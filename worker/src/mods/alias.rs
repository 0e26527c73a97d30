//! mod_alias: alias.url maps a URL-path prefix to a file-system path. The first
//! key (in the order written) that prefixes the path wins; a start-up check refuses
//! a list where a shorter key hides a longer one written after it (lighttpd's
//! "will never match" error), so the first match is also the longest. A key
//! without a trailing slash whose target has one refuses a `.`/`..` segment after
//! the key (403), as lighttpd does against path traversal.
//!
//! The mapped file is opened beneath the target's directory (the target itself
//! when it ends in `/`), like any document root.

use super::{hook, Cx, Flow, Module};
use wick_conf::Config;

pub struct Alias;

/// lighttpd's mod_alias_check_order on one list.
pub fn check_order(list: &[(String, String)]) -> Result<(), String> {
    for (j, (prefix, _)) in list.iter().enumerate() {
        for (key, _) in &list[j + 1..] {
            if key.starts_with(prefix.as_str()) {
                return Err(format!(
                    "alias.url: `{key}' will never match as `{prefix}' matched first"
                ));
            }
        }
    }
    Ok(())
}

impl Alias {
    pub fn new(cfg: &Config) -> Result<Alias, String> {
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(list) = p.alias_url() {
                check_order(list)
                    .map_err(|e| format!("{}{e}", super::where_set(cfg, id, "alias.url")))?;
            }
        }
        Ok(Alias)
    }
}

/// Map `rel` (a normalised URL path) through `list`: Some(Ok((root, rel))) when a
/// key matches, Some(Err(403)) for a traversal attempt, None when no key matches.
pub fn remap(
    list: &[(String, String)],
    rel: &[u8],
    nocase: bool,
    root: &mut String,
    new_rel: &mut Vec<u8>,
) -> Option<Result<(), u16>> {
    let (key, target) = list.iter().find(|(k, _)| {
        let k = k.as_bytes();
        rel.len() >= k.len()
            && if nocase {
                rel[..k.len()].eq_ignore_ascii_case(k)
            } else {
                &rel[..k.len()] == k
            }
    })?;
    let rest = &rel[key.len()..];
    if let Some(after) = rest.strip_prefix(b".") {
        let after = after.strip_prefix(b".").unwrap_or(after);
        if (after.is_empty() || after[0] == b'/') && !key.ends_with('/') && target.ends_with('/') {
            return Some(Err(403));
        }
    }
    // Full path = target + rest; open it beneath the target's directory.
    let t = target.as_bytes();
    let dir_end = if t.ends_with(b"/") {
        t.len()
    } else {
        t.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1)
    };
    root.clear();
    root.push_str(&target[..dir_end]);
    if root.is_empty() {
        // A relative target: relative to the working directory, as lighttpd.
        root.push('.');
    }
    new_rel.clear();
    new_rel.push(b'/');
    new_rel.extend_from_slice(&t[dir_end..]);
    new_rel.extend_from_slice(rest);
    crate::path::normalize(new_rel);
    Some(Ok(()))
}

impl Module for Alias {
    fn name(&self) -> &'static str {
        "mod_alias"
    }

    fn hooks(&self) -> u16 {
        hook::PHYSICAL
    }

    fn physical(&self, x: &mut Cx) -> Flow {
        let list = x.view.alias_url;
        if list.is_empty() {
            return Flow::Go;
        }
        let rq = &mut *x.rq;
        let mut rel = std::mem::take(&mut rq.tmp);
        let r = remap(
            list,
            &rq.rel,
            *x.view.force_lowercase_filenames,
            &mut rq.docroot,
            &mut rel,
        );
        let flow = match r {
            None => Flow::Go,
            Some(Err(s)) => Flow::Status(s),
            Some(Ok(())) => {
                std::mem::swap(&mut rq.rel, &mut rel);
                Flow::Go
            }
        };
        rq.tmp = rel;
        flow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn order() {
        assert!(check_order(&l(&[("/a/b/", "/x/"), ("/a/", "/y/")])).is_ok());
        let e = check_order(&l(&[("/a/", "/y/"), ("/a/b/", "/x/")])).expect_err("order");
        assert_eq!(
            e,
            "alias.url: `/a/b/' will never match as `/a/' matched first"
        );
    }

    #[test]
    fn maps() {
        let list = l(&[
            ("/icons/", "/usr/share/icons/"),
            ("/f", "/srv/file.txt"),
            ("/d", "/srv/dir/"),
        ]);
        let (mut root, mut rel) = (String::new(), Vec::new());
        assert_eq!(
            remap(&list, b"/icons/a.png", false, &mut root, &mut rel),
            Some(Ok(()))
        );
        assert_eq!(
            (root.as_str(), &rel[..]),
            ("/usr/share/icons/", &b"/a.png"[..])
        );
        assert_eq!(
            remap(&list, b"/f", false, &mut root, &mut rel),
            Some(Ok(()))
        );
        assert_eq!((root.as_str(), &rel[..]), ("/srv/", &b"/file.txt"[..]));
        assert_eq!(
            remap(&list, b"/d../etc/passwd", false, &mut root, &mut rel),
            Some(Err(403))
        );
        assert_eq!(remap(&list, b"/other", false, &mut root, &mut rel), None);
        assert_eq!(
            remap(&list, b"/ICONS/a", true, &mut root, &mut rel),
            Some(Ok(()))
        );
    }
}
