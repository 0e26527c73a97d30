//! mod_redirect: external redirects by regex (url.redirect, url.redirect-code).
//!
//! The rules of the last true block setting url.redirect are matched, in order,
//! against the %-encoded target with its query; the first match answers with its
//! expanded target as Location. The status is url.redirect-code, or when unset
//! (or outside 100..999) 301 for GET/HEAD and HTTP/1.0 clients, else 308 (so that
//! the method and body are kept), as lighttpd does.

use super::subst::{self, Rules};
use super::{hook, Cx, Flow, Module};
use crate::request::{Method, Version};
use wick_conf::{Config, Patch};

pub struct Redirect {
    blocks: super::ByBlock<Rules>,
}

fn sets(p: &Patch) -> bool {
    p.url_redirect().is_some()
}

impl Redirect {
    pub fn new(cfg: &Config) -> Result<Redirect, String> {
        let mut blocks = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            if let Some(l) = p.url_redirect() {
                blocks.push((id, {
                    let mut r = Rules::new();
                    r.push(l).map_err(|e| {
                        format!(
                            "{}url.redirect: {e}",
                            super::where_set(cfg, id, "url.redirect")
                        )
                    })?;
                    r
                }));
            }
        }
        Ok(Redirect {
            blocks: blocks.into_iter().collect(),
        })
    }
}

impl Module for Redirect {
    fn name(&self) -> &'static str {
        "mod_redirect"
    }

    fn hooks(&self) -> u16 {
        hook::URI_CLEAN
    }

    fn uri_clean(&self, x: &mut Cx) -> Flow {
        let block = x.block_of(sets);
        let Some(rules) = self.blocks.get(block) else {
            return Flow::Go;
        };
        let mut out = std::mem::take(&mut x.rq.location);
        let hit = match rules.find(&x.rq.target) {
            Some((_, target, caps)) => {
                let src = super::subst_source(x, &caps, block);
                subst::expand(target, &src, &mut out);
                true
            }
            None => false,
        };
        x.rq.location = out;
        if !hit {
            return Flow::Go;
        }
        let code = *x.view.url_redirect_code;
        let head = x.base.head;
        let status = if (100..1000).contains(&code) {
            code
        } else if matches!(head.method, Method::Get | Method::Head)
            || head.version == Version::Http10
        {
            301
        } else {
            308
        };
        Flow::Status(status)
    }
}
