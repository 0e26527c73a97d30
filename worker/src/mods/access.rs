//! mod_access: deny by the end of the URL path (url.access-deny: a matching suffix
//! is refused, "" refuses everything; url.access-allow: only a matching suffix is
//! allowed, and it takes precedence over url.access-deny). Refused: 403. Suffixes
//! compare without regard to case when server.force-lowercase-filenames is set.

use super::{hook, Cx, Flow, Module};

pub struct Access;

fn ends_with(path: &[u8], suffix: &str, nocase: bool) -> bool {
    let s = suffix.as_bytes();
    path.len() >= s.len() && {
        let tail = &path[path.len() - s.len()..];
        if nocase {
            tail.eq_ignore_ascii_case(s)
        } else {
            tail == s
        }
    }
}

/// Is `path` allowed by these lists?
pub fn allowed(path: &[u8], allow: &[String], deny: &[String], nocase: bool) -> bool {
    if !allow.is_empty() {
        return allow.iter().any(|s| ends_with(path, s, nocase));
    }
    !deny.iter().any(|s| ends_with(path, s, nocase))
}

impl Module for Access {
    fn name(&self) -> &'static str {
        "mod_access"
    }

    fn hooks(&self) -> u16 {
        hook::URI_CLEAN
    }

    fn uri_clean(&self, x: &mut Cx) -> Flow {
        let v = &x.view;
        if x.rq.path.is_empty() || (v.url_access_allow.is_empty() && v.url_access_deny.is_empty()) {
            return Flow::Go;
        }
        if allowed(
            &x.rq.path,
            v.url_access_allow,
            v.url_access_deny,
            *v.force_lowercase_filenames,
        ) {
            Flow::Go
        } else {
            Flow::Status(403)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!allowed(b"/a.inc", &[], &s(&[".inc"]), false));
        assert!(allowed(b"/a.INC", &[], &s(&[".inc"]), false));
        assert!(!allowed(b"/a.INC", &[], &s(&[".inc"]), true));
        assert!(!allowed(b"/x", &[], &s(&[""]), false));
        assert!(allowed(b"/a.html", &s(&[".html"]), &s(&[""]), false));
        assert!(!allowed(b"/a.txt", &s(&[".html"]), &[], false));
    }
}
