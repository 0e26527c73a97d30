//! mod_rewrite: internal rewrites of the request target by regex.
//!
//! url.rewrite-once (and its old names url.rewrite, url.rewrite-final) and
//! url.rewrite-repeat match at uri_raw; url.rewrite-if-not-file and
//! url.rewrite-repeat-if-not-file at the physical stage, only when the physical
//! path is not a regular file. The lists of one block form one list ("once" rules
//! first); the block that wins is the last true block setting any of them, and its
//! regex captures are `%N`. Rules match the %-encoded target with its query. A
//! "once" rule ends rewriting for the request; after any rewrite the conditions are
//! evaluated again and the request starts over (at most
//! [`super::MAX_RESTARTS`] times, then 500). A result that does not start with `/`
//! is a 500, as in lighttpd.

use super::subst::{self, Rules};
use super::{hook, Cx, Flow, Module};
use crate::stat_cache::{Found, Root};
use wick_conf::{BlockId, Config, Patch};

pub struct Rewrite {
    /// Per block: (url.rewrite-once/-final/url.rewrite + url.rewrite-repeat,
    /// url.rewrite-if-not-file + url.rewrite-repeat-if-not-file).
    blocks: super::ByBlock<(Option<Rules>, Option<Rules>)>,
}

fn sets_uri(p: &Patch) -> bool {
    p.url_rewrite_once().is_some()
        || p.url_rewrite_final().is_some()
        || p.url_rewrite().is_some()
        || p.url_rewrite_repeat().is_some()
}

fn sets_nf(p: &Patch) -> bool {
    p.url_rewrite_if_not_file().is_some() || p.url_rewrite_repeat_if_not_file().is_some()
}

impl Rewrite {
    pub fn new(cfg: &Config) -> Result<Rewrite, String> {
        let mut blocks = Vec::new();
        for (id, p) in cfg.patches.iter().enumerate() {
            let err =
                |key: &str, e: String| format!("{}{key}: {e}", super::where_set(cfg, id, key));
            let mut uri = None;
            if sets_uri(p) {
                let mut r = Rules::new();
                for (key, list) in [
                    ("url.rewrite-once", p.url_rewrite_once()),
                    ("url.rewrite-final", p.url_rewrite_final()),
                    ("url.rewrite", p.url_rewrite()),
                ] {
                    if let Some(l) = list {
                        r.push(l).map_err(|e| err(key, e))?;
                    }
                }
                r.repeat_idx = r.rules.len();
                if let Some(l) = p.url_rewrite_repeat() {
                    r.push(l).map_err(|e| err("url.rewrite-repeat", e))?;
                }
                uri = Some(r);
            }
            let mut nf = None;
            if sets_nf(p) {
                let mut r = Rules::new();
                if let Some(l) = p.url_rewrite_if_not_file() {
                    r.push(l).map_err(|e| err("url.rewrite-if-not-file", e))?;
                }
                r.repeat_idx = r.rules.len();
                if let Some(l) = p.url_rewrite_repeat_if_not_file() {
                    r.push(l)
                        .map_err(|e| err("url.rewrite-repeat-if-not-file", e))?;
                }
                nf = Some(r);
            }
            if uri.is_some() || nf.is_some() {
                blocks.push((id, (uri, nf)));
            }
        }
        Ok(Rewrite {
            blocks: blocks.into_iter().collect(),
        })
    }

    fn apply(&self, x: &mut Cx, block: BlockId, rules: &Rules) -> Flow {
        let mut out = std::mem::take(&mut x.rq.tmp);
        let hit = match rules.find(&x.rq.target) {
            Some((i, target, caps)) => {
                let src = super::subst_source(x, &caps, block);
                subst::expand(target, &src, &mut out);
                Some(i)
            }
            None => None,
        };
        let flow = match hit {
            None => Flow::Go,
            Some(_) if out.first() != Some(&b'/') => Flow::Status(500),
            Some(i) => match x.rq.set_target(&out) {
                Ok(()) => {
                    if i < rules.repeat_idx {
                        x.rq.rewrite_final = true;
                    }
                    Flow::Restart
                }
                Err(s) => Flow::Status(s),
            },
        };
        x.rq.tmp = out;
        flow
    }
}

impl Module for Rewrite {
    fn name(&self) -> &'static str {
        "mod_rewrite"
    }

    fn hooks(&self) -> u16 {
        hook::URI_RAW | hook::PHYSICAL
    }

    fn uri_raw(&self, x: &mut Cx) -> Flow {
        if x.rq.rewrite_final {
            return Flow::Go;
        }
        let block = x.block_of(sets_uri);
        match self.blocks.get(block) {
            Some((Some(r), _)) if !r.is_empty() => self.apply(x, block, r),
            _ => Flow::Go,
        }
    }

    fn physical(&self, x: &mut Cx) -> Flow {
        if x.rq.rewrite_final {
            return Flow::Go;
        }
        let block = x.block_of(sets_nf);
        let Some((_, Some(r))) = self.blocks.get(block) else {
            return Flow::Go;
        };
        if r.is_empty() {
            return Flow::Go;
        }
        // A regular file is served as it is.
        if let Some((dirfd, id)) = x.fs.roots.get(&x.rq.docroot, x.fs.clock.mono) {
            let root = Root::Beneath {
                dirfd,
                id,
                symlinks: *x.view.follow_symlink,
            };
            if let Found::File { file_len, .. } =
                x.fs.cache.lookup(root, &x.rq.rel, x.fs.clock.mono)
            {
                if file_len == x.rq.rel.len() {
                    return Flow::Go;
                }
            }
        }
        self.apply(x, block, r)
    }
}
