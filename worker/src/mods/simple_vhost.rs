//! mod_simple_vhost: the document root is simple-vhost.server-root + the request's
//! host (port dropped) + simple-vhost.document-root when that directory exists,
//! else the same with simple-vhost.default-host, else server.document-root, as in
//! lighttpd. The host is checked before it becomes a path component and the
//! directory is opened beneath the server root, so neither a crafted Host nor a
//! symlink in the server root leads outside it.

use super::confine::{host_name, join, DirCheck};
use super::{hook, Cx, Flow, Module};

pub struct SimpleVhost {
    dirs: DirCheck,
}

impl SimpleVhost {
    pub fn new() -> SimpleVhost {
        SimpleVhost {
            dirs: DirCheck::new(),
        }
    }
}

impl Default for SimpleVhost {
    fn default() -> Self {
        Self::new()
    }
}

/// `host/document-root/` below the server root.
fn vhost_dir(host: &str, docroot: &str) -> String {
    let mut rel = join(host, docroot);
    if !rel.ends_with('/') {
        rel.push('/');
    }
    rel
}

impl Module for SimpleVhost {
    fn name(&self) -> &'static str {
        "mod_simple_vhost"
    }

    fn hooks(&self) -> u16 {
        hook::DOCROOT
    }

    fn docroot(&self, x: &mut Cx) -> Flow {
        let root = x.view.svhost_server_root.as_str();
        if root.is_empty() {
            return Flow::Go;
        }
        let now = x.fs.clock.mono;
        let docroot = x.view.svhost_document_root.as_str();
        let default = x.view.svhost_default_host.as_str();
        let host = host_name(&x.rq.host);
        let candidates = host
            .as_deref()
            .into_iter()
            .chain((!default.is_empty()).then_some(default));
        for h in candidates {
            let rel = vhost_dir(h, docroot);
            if self.dirs.is_dir_beneath(root, &rel, now) {
                x.rq.docroot.clear();
                x.rq.docroot.push_str(&join(root, &rel));
                // lighttpd: the host served is the server name (%v in the access log).
                x.rq.server_name.clear();
                x.rq.server_name.push_str(h);
                return Flow::Go;
            }
        }
        Flow::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(vhost_dir("example.org", "htdocs"), "example.org/htdocs/");
        assert_eq!(vhost_dir("example.org", ""), "example.org/");
        assert_eq!(
            join("/srv/www/", &vhost_dir("a", "/pub/")),
            "/srv/www/a/pub/"
        );
    }
}
