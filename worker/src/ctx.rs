//! What every connection's state machine shares within a worker: the site, the
//! per-request scratch buffers, the caches, the clock, the module state and the
//! gateway channel; borrowed by one connection at a time.

use crate::date::Clock;
use crate::errors::Pages;
use crate::request::{Field, Version};
use crate::resp_head::ResponseHead;
use crate::response::Out;
use crate::site::Site;
use crate::stat_cache::StatCache;
use crate::static_file::{self, Roots};
use wick_conf::cond::CondState;

/// Everything a connection's state machine uses, apart from the connection itself.
pub struct Ctx {
    pub site: Site,
    /// server.tag of the global scope (for errors answered before a request has a view).
    pub tag: String,
    pub cond: CondState,
    pub clock: Clock,
    pub out: Out,
    pub fields: Vec<Field>,
    pub path: Vec<u8>,
    pub scratch: Vec<u8>,
    pub etag: Vec<u8>,
    /// The response head handlers fill (resp_head.rs), reused.
    pub resp: ResponseHead,
    pub cache: StatCache,
    pub roots: Roots,
    pub pages: Pages,
    pub draining: bool,
    pub activity: bool,
    /// Per-request state of the modules (mods/), buffers reused.
    pub rq: crate::mods::Rq,
    /// mod_cgi: the channel to the gateway-spawner and the jobs it runs for us.
    pub cgi: crate::cgi::Client,
    /// Set while an internal request (a script's local redirect, an error
    /// handler) runs through the pipeline.
    pub internal: Option<crate::internal::InternalInfo>,
    /// Error-log lines from request handling, written after the loop turn.
    pub log: Vec<String>,
    /// A FastCGI authorizer's grant for the request its job runs again now
    /// (gateway/authorizer.rs); `pipeline::run` takes it at once.
    pub grant: Option<crate::gateway::Grant>,
    /// TLS configurations and ticket keys, when a listener has ssl.engine (tls/).
    pub tls: Option<crate::tls::TlsSite>,
    /// The event loop's registry, for handlers with sockets of their own (a
    /// FastCGI backend's, registered under `cgi::pipe_token(key, cgi::BACKEND)`).
    pub registry: Option<mio::Registry>,
    /// FastCGI connections kept for the next request of this loop turn.
    pub idle_backends: crate::gateway::Idle,
    /// server.upload-dirs: where request bodies received whole are spooled.
    pub uploads: crate::spool::Uploads,
}

impl Ctx {
    /// The shared state for a worker serving `site`.
    pub fn new(site: Site) -> Ctx {
        let tag = {
            let c = &site.compiled;
            let mut v = c.defaults().view();
            v.apply(c.patch(0));
            v.server_tag.clone()
        };
        let cond = CondState::new(&site.compiled);
        let cgi_on = site
            .cfg
            .server
            .effective_modules()
            .iter()
            .any(|m| m == "mod_cgi");
        let cgi = crate::cgi::Client::new(cgi_on);
        let parseopts = site.parseopts;
        let mut clock = Clock::new();
        if crate::mods::status::count::board().is_some() {
            // mod_status times requests from the turn's instant.
            clock.at = Some(std::time::Instant::now());
        }
        let mut log = Vec::new();
        let uploads = crate::spool::Uploads::open(
            &site.cfg.server.body_spool_dirs(),
            site.cfg.server.chroot.as_deref(),
            &mut log,
        );
        Ctx {
            site,
            tag,
            cond,
            clock,
            out: Out::default(),
            fields: Vec::with_capacity(32),
            path: Vec::with_capacity(256),
            scratch: Vec::with_capacity(256),
            etag: Vec::with_capacity(16),
            resp: ResponseHead::default(),
            cache: StatCache::new(),
            roots: Roots::default(),
            pages: Pages::new(),
            draining: false,
            activity: false,
            rq: crate::mods::Rq::with_parseopts(parseopts),
            cgi,
            internal: None,
            log,
            grant: None,
            tls: None,
            registry: None,
            idle_backends: Default::default(),
            uploads,
        }
    }

    /// A built-in error page that closes the connection (parse errors, 413).
    pub fn error_response(&mut self, version: Version, status: u16) {
        static_file::simple_error(
            &mut self.out,
            &mut self.resp,
            &self.clock,
            &self.pages,
            &self.tag,
            version,
            status,
            false,
            false,
        );
    }
}
