//! mod_cgi as a module of the handler stage: a request whose physical path is a
//! script ([`super::select`]) is claimed, and its [`super::Job`] is the handler the
//! connection steps from then on.

use crate::handler::Handler;
use crate::mods::{hook, DoneCx, Gateways, HandlerCx, Module};

pub struct ModCgi;

impl Module for ModCgi {
    fn name(&self) -> &'static str {
        "mod_cgi"
    }

    fn hooks(&self) -> u16 {
        hook::CLAIM
    }

    fn claim(&self, x: &mut HandlerCx, gw: &mut Gateways) -> Option<Box<dyn Handler>> {
        let env = &mut *x.env;
        let sel = super::select(env.roots, env.cache, env.clock.mono, x.view, x.req.path)?;
        let path = sel.path.unwrap_or_else(|| gw.path.to_vec());
        // The blocks the worker found true, for the spawner to compare.
        let blocks = gw.cond.matched().map(|b| b as u32).collect();
        Some(with_begin(x, gw, &path, sel.script_len, |p, view, b| {
            super::begin(p, view, super::Begin { blocks, ..b })
        }))
    }
}

/// The request as a gateway job sees it ([`super::Begin`], [`super::Parts`]):
/// `path` (the decoded path, an index file appended) of which `script_len` bytes
/// are SCRIPT_NAME. mod_cgi and mod_fastcgi begin their jobs from it.
pub(crate) fn with_begin<R>(
    x: &mut HandlerCx,
    gw: &mut Gateways,
    path: &[u8],
    script_len: usize,
    f: impl FnOnce(super::Parts, &wick_conf::View, super::Begin) -> R,
) -> R {
    let env = &mut *x.env;
    let internal = gw.internal.take();
    let (base, rq) = (x.base, x.rq);
    let (peer, peer_port) = gw.remote;
    // mod_accesslog: the line is written when the response ends.
    let log = match gw.accesslog {
        Some(a) => crate::mods::accesslog::capture(
            a,
            &DoneCx {
                view: x.view,
                base,
                rq,
                status: 0,
                bytes_out: 0,
                clock: env.clock,
                compiled: gw.compiled,
                cond: gw.cond,
                resp: &[],
            },
        ),
        _ => None,
    };
    let parts = super::Parts {
        cgi: gw.cgi,
        out: env.out,
        clock: env.clock,
        pages: env.pages,
        cfg: gw.cfg,
    };
    let begin = super::Begin {
        buf: base.buf,
        head: base.head,
        fields: base.fields,
        path,
        script_len,
        query: x.req.query,
        keep_alive: x.req.keep_alive,
        peer,
        peer_port,
        set_headers: gw.set_headers,
        auth: gw.auth,
        listener: base.listener as u16,
        fd: base.fd,
        blocks: Vec::new(),
        tls_env: crate::tls::env::cgi_env(base.tls),
        internal,
        log,
        hooks: env.hooks.map(|h| h.later()).unwrap_or_default(),
    };
    f(parts, x.view, begin)
}
