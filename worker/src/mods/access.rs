//! mod_access: deny by the end of the URL path (url.access-deny: a matching suffix
//! is refused, "" refuses everything; url.access-allow: only a matching suffix is
//! allowed, and it takes precedence over url.access-deny). Refused: 403. Suffixes
//! compare without regard to case when server.force-lowercase-filenames is set.
//!
//! Checked twice, as lighttpd does: on the URL path, and again when the path
//! names a directory whose index file will be served (the path then ends in the
//! index file's name).

use super::{hook, Cx, Flow, HandlerCx, Module};
use crate::stat_cache::{Found, Root};

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
        hook::URI_CLEAN | hook::HANDLER
    }

    fn handler(&self, x: &mut HandlerCx) -> Option<u16> {
        let v = x.view;
        if (v.url_access_allow.is_empty() && v.url_access_deny.is_empty())
            || v.index_files.is_empty()
            || !x.rq.path.ends_with(b"/")
        {
            return None;
        }
        let mono = x.env.clock.mono;
        let (dirfd, id) = x.env.roots.get(v.document_root, mono)?;
        let root = Root::Beneath {
            dirfd,
            id,
            symlinks: *v.follow_symlink,
        };
        let nocase = *v.force_lowercase_filenames;
        let mut cand = Vec::with_capacity(x.req.path.len() + 16);
        for name in v.index_files.iter() {
            cand.clear();
            match name.strip_prefix('/') {
                Some(abs) => {
                    cand.push(b'/');
                    cand.extend_from_slice(abs.as_bytes());
                }
                None => {
                    cand.extend_from_slice(x.req.path);
                    cand.extend_from_slice(name.as_bytes());
                }
            }
            if nocase {
                cand.make_ascii_lowercase();
            }
            if let Found::File { file_len, .. } = x.env.cache.lookup(root, &cand, mono) {
                if file_len != cand.len() {
                    continue;
                }
                // The URL path as mod_indexfile leaves it.
                let ok = if name.starts_with('/') {
                    allowed(
                        name.as_bytes(),
                        v.url_access_allow,
                        v.url_access_deny,
                        nocase,
                    )
                } else {
                    let mut uri = x.rq.path.clone();
                    uri.extend_from_slice(name.as_bytes());
                    allowed(&uri, v.url_access_allow, v.url_access_deny, nocase)
                };
                if ok {
                    return None;
                }
                return Some(crate::static_file::error(x.req, x.view, x.env, 403));
            }
        }
        None
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
