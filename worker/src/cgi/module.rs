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
        let now = env.clock.mono;
        let sel = super::select(env.roots, env.cache, now, x.view, x.req.path)?;
        let internal = gw.internal.take();
        let (base, rq) = (x.base, x.rq);
        let (peer, peer_port) = gw.remote;
        // mod_accesslog: the line is written when the script's response ends.
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
            path: sel.path.as_deref().unwrap_or(gw.path),
            script_len: sel.script_len,
            query: x.req.query,
            keep_alive: x.req.keep_alive,
            peer,
            peer_port,
            set_headers: gw.set_headers,
            auth: gw.auth,
            listener: base.listener as u16,
            fd: base.fd,
            blocks: gw.cond.matched().map(|b| b as u32).collect(),
            tls_env: crate::tls::env::cgi_env(base.tls),
            internal,
            log,
            hooks: env.hooks.map(|h| h.later()).unwrap_or_default(),
        };
        Some(super::begin(parts, x.view, begin))
    }
}
