//! The module framework: which of lighttpd's modules are loaded (server.modules with
//! its compatibility loading), and the stages a request passes through, each
//! module hooked into them in server.modules order, as lighttpd's plugin.c calls
//! them:
//!
//! ```text
//! uri_raw (extforward, rewrite) → uri_clean (auth, redirect, access, setenv)
//!   → docroot (simple_vhost, evhost) → physical (alias, userdir, rewrite-if-not-file)
//!   → handler (modules, then the built-in static file handler)
//!   → response_start (setenv, expire; deflate on whole files and gateway
//!     bodies) → request_done (accesslog)
//! ```
//!
//! A hook answers with a [`Flow`]: go on, re-evaluate the conditions (the remote
//! address or scheme changed), restart from the first stage (an internal rewrite;
//! bounded as lighttpd bounds it), or finish with a status (a redirect or an error).
//!
//! Cost: [`Mods::active`] is false when no loaded module hooks a request stage, and
//! the connection then takes the plain path; stage lists hold only the modules
//! that hook them; every regex is compiled once, in [`Mods::new`]; [`Rq`] keeps its
//! buffers across requests.
//!
//! Adding a module: a file here with a type implementing [`Module`] (its `hooks()`
//! says which stages it takes), and one line in [`build`].

pub mod access;
pub mod accesslog;
pub mod alias;
pub mod auth;
pub mod confine;
pub mod deflate;
pub mod dirlisting;
pub mod evhost;
pub mod expire;
pub mod extforward;
pub mod redirect;
pub mod rewrite;
pub mod setenv;
pub mod simple_vhost;
pub mod status;
pub mod subst;
pub mod userdir;

use crate::date::Clock;
use crate::handler::Handler;
use crate::request::{Field, Head, Method};
use crate::resp_head::ResponseHead;
use crate::response::Out;
use crate::stat_cache::StatCache;
use crate::static_file::{Env, Req, Roots};
use std::net::IpAddr;
use std::rc::Rc;
use wick_conf::cond::{Compiled, CondState, Facts};
use wick_conf::{BlockId, Config, View};

/// Most internal restarts (rewrites) of one request: lighttpd's mod_rewrite gives
/// up after 100 with "ENDLESS LOOP IN rewrite-rule DETECTED" and a 500.
pub const MAX_RESTARTS: u32 = 100;

/// What a hook tells the framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Next module, next stage.
    Go,
    /// The facts conditions test changed (remote address, scheme, host): evaluate
    /// the conditions again, then go on with the next module.
    Reeval,
    /// The request target changed (internal rewrite): evaluate the conditions again
    /// and run every stage from the first.
    Restart,
    /// Answer now with this status: 3xx sends [`Rq::location`], others go through
    /// the error pages (server.error-handler, errorfile-prefix).
    Status(u16),
    /// Not now: the connection parks the request and runs it again from the top
    /// at [`Rq::later`] (park.rs).
    Later,
}

/// Stages a module hooks (bits of [`Module::hooks`]).
pub mod hook {
    pub const URI_RAW: u16 = 1;
    pub const URI_CLEAN: u16 = 2;
    pub const DOCROOT: u16 = 4;
    pub const PHYSICAL: u16 = 8;
    pub const HANDLER: u16 = 16;
    pub const RESPONSE_START: u16 = 32;
    pub const REQUEST_ENV: u16 = 64;
    pub const REQUEST_DONE: u16 = 128;
    /// The handler stage, through `claim` only (mod_cgi): the module needs no
    /// per-request module state, so the plain path stays open.
    pub const CLAIM: u16 = 256;
}

/// One module. Hooks that a module does not list in `hooks()` are never called.
pub trait Module {
    /// lighttpd's name, e.g. "mod_rewrite".
    fn name(&self) -> &'static str;
    /// The [`hook`] bits this module takes.
    fn hooks(&self) -> u16;
    /// Before the path is used: the request target as received (or rewritten).
    fn uri_raw(&self, _x: &mut Cx) -> Flow {
        Flow::Go
    }
    /// On the decoded, normalised path.
    fn uri_clean(&self, _x: &mut Cx) -> Flow {
        Flow::Go
    }
    /// Choose the document root ([`Rq::docroot`]).
    fn docroot(&self, _x: &mut Cx) -> Flow {
        Flow::Go
    }
    /// Map the path to the filesystem ([`Rq::docroot`] + [`Rq::rel`]).
    fn physical(&self, _x: &mut Cx) -> Flow {
        Flow::Go
    }
    /// Produce the response (write it to `x.env.out`) and return its status, or
    /// None to leave the request to the next handler (and finally static files).
    fn handler(&self, _x: &mut HandlerCx) -> Option<u16> {
        None
    }

    /// Handler stage, before `handler`: take the request for a [`Handler`] that
    /// answers over later loop turns (a gateway: mod_cgi). The connection steps it
    /// and reads the request body for it.
    fn claim(&self, _x: &mut HandlerCx, _gw: &mut Gateways) -> Option<Box<dyn Handler>> {
        None
    }
    /// Handler stage, before any module's `claim` or `handler`: an access
    /// check that takes the request first (a FastCGI authorizer, which lighttpd
    /// asks before every handler when check-local is off; here always, so that
    /// no module listed earlier serves what it guards).
    fn authorize(&self, _x: &mut HandlerCx, _gw: &mut Gateways) -> Option<Box<dyn Handler>> {
        None
    }
    /// Edit the response head before it is serialised (its fields end with
    /// Connection, Date and Server; a deferred listing's with Content-Type).
    fn response_start(&self, _x: &RespCx, _head: &mut ResponseHead) {}
    /// response_start for a head that comes later (a gateway's response, after
    /// the request's context is gone): what the hook will do, decided now.
    fn response_later(&self, _x: &RespCx) -> Option<Box<dyn LaterHook>> {
        None
    }
    /// Add to the environment of a CGI/FastCGI/SCGI request.
    fn request_env(&self, _x: &EnvCx, _env: &mut Vec<(String, String)>) {}
    /// The response is complete (access log).
    fn request_done(&self, _x: &DoneCx) {}
    /// Once a second, and before the worker exits (lighttpd's handle_trigger):
    /// write what was gathered.
    fn trigger(&self, _t: &mut Trigger) {}
}

/// What the modules' trigger hooks leave for the event loop to pass on.
#[derive(Default)]
pub struct Trigger {
    /// (syslog level, line) for the master (`FromWorker::AccessLogSyslog`).
    pub syslog: Vec<(u8, String)>,
    /// Lines for the error log.
    pub errors: Vec<String>,
}

/// The request as received: read-only for modules.
pub struct Base<'a> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub fields: &'a [Field],
    /// The connection's peer (before mod_extforward).
    pub peer: IpAddr,
    /// The peer's TCP port (0 for a unix socket).
    pub peer_port: u16,
    /// Index into the config's listeners.
    pub listener: usize,
    /// The local port the request came in on (0 for unix sockets).
    pub port: u16,
    /// The connection's socket (its local address, for a gateway's SERVER_ADDR).
    pub fd: std::os::fd::RawFd,
    /// The connection's TLS session (None: plain HTTP).
    pub tls: Option<&'a crate::tls::session::Session>,
    /// Requests on the connection so far, this one included.
    pub requests: u32,
    /// The client's request-target (an internal request's is another: %r logs
    /// this one, as lighttpd's r->target_orig).
    pub target_orig: &'a [u8],
    /// An internal request (server.error-handler, a local redirect): it cannot
    /// be parked ([`Flow::Later`] is answered 503).
    pub internal: bool,
}

impl Base<'_> {
    /// A request header as received (first of its name).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        crate::request::header(self.buf, self.fields, name)
    }
    pub fn method(&self) -> &[u8] {
        self.head.method_span.of(self.buf)
    }
}

/// Per-request state the modules read and change. One per worker, reused: cleared
/// at the start of each request without giving its buffers back.
pub struct Rq {
    /// The request target (path and query, still %-encoded) as url.rewrite and
    /// url.redirect match it: lighttpd's normalised target, or the rewritten one.
    pub target: Vec<u8>,
    /// Decoded, normalised path of `target` (lighttpd's uri.path).
    pub path: Vec<u8>,
    /// Query of `target`, without `?`.
    pub query: Vec<u8>,
    /// Host as conditions and ${url.authority} see it (Host header, or what
    /// mod_extforward trusted).
    pub host: Vec<u8>,
    /// The client address (the peer, or what mod_extforward trusted).
    pub remote_ip: IpAddr,
    /// "http" or "https".
    pub scheme: &'static str,
    /// REMOTE_USER when a module set it (mod_extforward params, auth).
    pub remote_user: String,
    /// The document root in force (server.document-root or a vhost module's).
    pub docroot: String,
    /// The physical path below `docroot`, starting with `/` (lighttpd's physical
    /// path minus its basedir).
    pub rel: Vec<u8>,
    /// Location of a redirect answer.
    pub location: Vec<u8>,
    /// Fields a stage's early answer ([`Flow::Status`]) carries besides the error
    /// page's (mod_auth's WWW-Authenticate).
    pub answer_fields: Vec<(&'static [u8], Vec<u8>)>,
    /// AUTH_TYPE when mod_auth authenticated the request ("Basic"), else "".
    pub auth_type: &'static str,
    /// Close the connection after this answer (mod_auth after wrong
    /// credentials, as lighttpd: no more guesses on the same connection).
    pub close: bool,
    /// Send this answer not before then (mod_auth after wrong credentials, as
    /// lighttpd's auth.delay-invalid-creds): the connection waits, parked.
    pub hold: Option<std::time::Instant>,
    /// [`Flow::Later`]: when to run the request again.
    pub later: Option<std::time::Instant>,
    /// Request headers added or replaced (mod_setenv), in order; an empty value
    /// removes the header. Read them through [`Rq::header`].
    pub req_headers: Vec<(String, String, bool)>,
    /// Environment added for CGI/FastCGI (set by modules at uri_clean time).
    pub env: Vec<(String, String)>,
    /// A FastCGI authorizer granted this run of the request (set by
    /// `pipeline::run` for every run, module path or not): no authorizer is
    /// asked again, its variables go to FastCGI/SCGI backends.
    pub grant: Option<crate::gateway::Grant>,
    /// Internal restarts so far.
    pub restarts: u32,
    /// mod_rewrite: a url.rewrite-once rule matched; no more rewriting.
    pub rewrite_final: bool,
    /// mod_extforward ran for this request (not again after a rewrite).
    pub extforward_done: bool,
    /// mod_setenv applied its request part (not again after a rewrite).
    pub setenv_done: bool,
    /// Scratch for substitutions.
    pub tmp: Vec<u8>,
    /// When the request began (mod_accesslog).
    pub started: accesslog::Timespec,
    /// The host mod_simple_vhost served the request for (%v in the access log).
    pub server_name: String,
    /// A handler that goes on over several event-loop turns left its work here
    /// ([`Job`]); conn.rs takes it with [`Mods::finish`]'s answer.
    pub job: std::cell::RefCell<Option<Box<dyn Job>>>,
    /// Scratch for Facts (lossy UTF-8 views are built from these).
    facts_host: String,
    /// server.http-parseopts: how `target` is normalised.
    pub parseopts: wick_conf::parseopts::ParseOpts,
}

impl Default for Rq {
    fn default() -> Self {
        Rq {
            target: Vec::new(),
            path: Vec::new(),
            query: Vec::new(),
            host: Vec::new(),
            remote_ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            scheme: "http",
            remote_user: String::new(),
            docroot: String::new(),
            rel: Vec::new(),
            location: Vec::new(),
            answer_fields: Vec::new(),
            auth_type: "",
            close: false,
            hold: None,
            later: None,
            req_headers: Vec::new(),
            env: Vec::new(),
            grant: None,
            restarts: 0,
            rewrite_final: false,
            extforward_done: false,
            setenv_done: false,
            tmp: Vec::new(),
            started: accesslog::Timespec::default(),
            server_name: String::new(),
            job: std::cell::RefCell::new(None),
            facts_host: String::new(),
            parseopts: Default::default(),
        }
    }
}

impl Rq {
    /// A request header as modules left it: mod_setenv's edits over the received
    /// ones. `Some("")` never: a removed header is None.
    pub fn header<'a>(&'a self, base: &'a Base, name: &str) -> Option<&'a [u8]> {
        if let Some((_, v, _)) = self
            .req_headers
            .iter()
            .rev()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        {
            return (!v.is_empty()).then_some(v.as_bytes());
        }
        base.header(name.as_bytes())
    }

    /// The path part of `target`.
    pub fn target_path(&self) -> &[u8] {
        crate::path::split_target(&self.target).0
    }

    /// Set `target` and derive `path` and `query` from it. Err(400): the new
    /// target does not decode.
    pub fn set_target(&mut self, t: &[u8]) -> Result<(), u16> {
        self.target.clear();
        self.target.extend_from_slice(t);
        let (p, q) = crate::path::split_target(&self.target);
        if p.first() != Some(&b'/') {
            return Err(500);
        }
        crate::path::decode_normalize(p, &mut self.path)?;
        self.query.clear();
        self.query.extend_from_slice(q);
        Ok(())
    }
}

/// The worker's file-system view, for hooks that look at files.
pub struct Fs<'a> {
    pub cache: &'a mut StatCache,
    pub roots: &'a mut Roots,
    pub clock: &'a Clock,
}

/// What a request-stage hook sees.
pub struct Cx<'a, 's> {
    pub compiled: &'s Compiled,
    /// The options in force (re-evaluated by the framework after Reeval/Restart).
    pub view: View<'s>,
    /// Which blocks matched, and their captures.
    pub cond: &'a CondState,
    pub base: &'a Base<'a>,
    pub rq: &'a mut Rq,
    pub fs: Fs<'a>,
}

impl Cx<'_, '_> {
    /// The last true block whose patch satisfies `sets`: the block a list "belongs"
    /// to (its `%N` captures).
    pub fn block_of(&self, sets: impl Fn(&wick_conf::Patch) -> bool) -> BlockId {
        self.compiled.winning_block(self.cond, sets)
    }
}

/// Work a handler goes on with over several event-loop turns, so that one big
/// response (a directory of 100 000 entries) does not hold up the other
/// connections. The handler stores it in [`Rq::job`] and returns 200; it keeps
/// its own [`ResponseHead`], on which the response_start hooks ran in the handler
/// (they see Content-Type, not yet Content-Length).
pub trait Job {
    /// Do a bounded amount of work. Some(status) when done: the whole response,
    /// head and body, is then in `out`.
    fn step(&mut self, out: &mut Out, clock: &Clock) -> Option<u16>;
}

/// A request whose response a [`Job`] builds: the job, its access log line, and
/// the earlier (pipelined) responses that go out before it.
pub struct Deferred {
    pub job: Box<dyn Job>,
    pub log: Option<Box<accesslog::Pending>>,
    pub before: Out,
    /// Request body bytes, read and dropped.
    pub dropped: Vec<u8>,
    /// Its method and start, for mod_status's count when it is done.
    pub started: status::count::Started,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred").finish_non_exhaustive()
    }
}

impl Deferred {
    /// One step. Some(response) once the job is done: the earlier responses and
    /// this one, to be written (its access log line is written now).
    pub fn step(&mut self, clock: &Clock, accesslog: Option<&accesslog::Accesslog>) -> Option<Out> {
        let mut resp = Out::default();
        let status = self.job.step(&mut resp, clock)?;
        status::count::request(self.started, status, clock.at);
        if let (Some(log), Some(a)) = (self.log.take(), accesslog) {
            log.complete(a, status, &resp.buf, resp.remaining());
        }
        let mut all = std::mem::take(&mut self.before);
        all.append(&resp);
        Some(all)
    }
}

/// A deferred response is a handler of one bounded step per loop turn; its
/// request's body, if any, is read and dropped.
impl crate::handler::Handler for Deferred {
    fn body_room(&mut self) -> Option<&mut Vec<u8>> {
        self.dropped.clear();
        Some(&mut self.dropped)
    }

    fn step(
        &mut self,
        ctx: &mut crate::ctx::Ctx,
        _client: &mut crate::handler::Client,
        _rbuf: &mut [u8],
    ) -> crate::handler::Step {
        let accesslog = ctx.site.mods.accesslog.as_deref();
        match Deferred::step(self, &ctx.clock, accesslog) {
            None => crate::handler::Step::Yield,
            Some(out) => crate::handler::Step::Done {
                out,
                keep_alive: true,
            },
        }
    }

    fn abort(&mut self, _ctx: &mut crate::ctx::Ctx, _status: Option<u16>) {}

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// How the handler stage ended.
pub enum Handled {
    /// The response is written; its status.
    Status(u16),
    /// A module's handler answers over later turns.
    Claimed(Box<dyn Handler>),
}

/// What a claiming handler uses beyond [`HandlerCx`]: the worker's gateway
/// channels and the configuration they need.
pub struct Gateways<'a> {
    pub cgi: &'a mut crate::cgi::Client,
    /// What an internal request carries (taken by the module that claims it).
    pub internal: &'a mut Option<crate::internal::InternalInfo>,
    pub cfg: &'a Config,
    pub compiled: &'a Compiled,
    pub cond: &'a CondState,
    /// The decoded URL path (SCRIPT_NAME and PATH_INFO come from it).
    pub path: &'a [u8],
    /// The client as mod_extforward left it (REMOTE_ADDR; REMOTE_PORT is 0 for a
    /// forwarded address, as in lighttpd's).
    pub remote: (std::net::IpAddr, u16),
    /// Request headers mod_setenv added or replaced (name, value; empty: removed).
    pub set_headers: &'a [(String, String, bool)],
    /// (REMOTE_USER, AUTH_TYPE) when mod_auth authenticated the request.
    pub auth: Option<(&'a str, &'static str)>,
    /// mod_accesslog, when it logs: a gateway's line is written when its
    /// response ends.
    pub accesslog: Option<&'a accesslog::Accesslog>,
    /// "http" or "https" as conditions see it (mod_extforward may have set it):
    /// mod_proxy's X-Forwarded-Proto.
    pub scheme: &'a str,
}

/// What a handler sees.
pub struct HandlerCx<'a, 'b> {
    pub req: &'a Req<'a>,
    pub view: &'a View<'a>,
    pub env: &'a mut Env<'b>,
    pub base: &'a Base<'a>,
    /// The modules' request state. On the plain path (only claiming modules
    /// loaded) it was not started for this request: a module that reads it hooks
    /// a request stage.
    pub rq: &'a Rq,
}

/// What a response_start hook sees besides the head (its status is the head's).
pub struct RespCx<'a> {
    pub compiled: &'a Compiled,
    pub cond: &'a CondState,
    pub view: &'a View<'a>,
    pub base: &'a Base<'a>,
    pub rq: &'a Rq,
    pub clock: &'a Clock,
}

/// The response_start hooks of one request, for the handler to run on its head
/// just before the head is serialised ([`crate::static_file::Env::send_head`]).
pub struct Hooks<'a> {
    mods: &'a Mods,
    cx: RespCx<'a>,
}

impl Hooks<'_> {
    /// Every response_start hook, in server.modules order.
    pub fn run(&self, head: &mut ResponseHead) {
        for m in self.mods.stage(5) {
            m.response_start(&self.cx, head);
        }
    }

    /// The hooks for a head a handler sends later (a gateway's).
    pub fn later(&self) -> LaterHooks {
        let list: Vec<_> = self
            .mods
            .stage(5)
            .filter_map(|m| m.response_later(&self.cx))
            .collect();
        LaterHooks {
            list,
            deflate: self.deflate_later(),
        }
    }

    /// mod_deflate's part in a response made after the request's context.
    pub fn deflate_later(&self) -> Option<Box<deflate::stream::Later>> {
        self.mods.deflate.as_ref().and_then(|d| d.later(&self.cx))
    }

    /// mod_deflate, for a handler that sends a whole file, with what it needs of
    /// the request.
    pub fn deflate(&self) -> Option<(&deflate::Deflate, &RespCx<'_>)> {
        self.mods.deflate.as_deref().map(|d| (d, &self.cx))
    }
}

/// A response_start hook decided while its request's context was there, run on a
/// head that comes later.
pub trait LaterHook {
    fn run(&self, head: &mut ResponseHead, clock: &Clock);
}

/// A request's response_start hooks for a later head, in server.modules order,
/// and mod_deflate's part in its body.
#[derive(Default)]
pub struct LaterHooks {
    list: Vec<Box<dyn LaterHook>>,
    /// Taken by the gateway when the head comes ([`deflate::stream::Later`]).
    pub deflate: Option<Box<deflate::stream::Later>>,
}

impl LaterHooks {
    pub fn run(&self, head: &mut ResponseHead, clock: &Clock) {
        for h in &self.list {
            h.run(head, clock);
        }
    }
}

impl std::fmt::Debug for LaterHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LaterHooks({}, deflate: {})",
            self.list.len(),
            self.deflate.is_some()
        )
    }
}

/// What a request_env hook sees.
pub struct EnvCx<'a> {
    pub view: &'a View<'a>,
    pub base: &'a Base<'a>,
    pub rq: &'a Rq,
}

/// A finished response, for the access log.
pub struct DoneCx<'a> {
    pub view: &'a View<'a>,
    pub base: &'a Base<'a>,
    pub rq: &'a Rq,
    pub status: u16,
    /// Response bytes queued (head and body).
    pub bytes_out: u64,
    pub clock: &'a Clock,
    pub compiled: &'a Compiled,
    pub cond: &'a CondState,
    /// The response's bytes held in memory, its head first.
    pub resp: &'a [u8],
}

/// The modules in force and their per-stage hook lists.
pub struct Mods {
    /// The effective server.modules, in order (lighttpd's compatibility loading
    /// applied).
    pub names: Vec<String>,
    /// mod_indexfile loaded: index-file.names is honoured.
    pub indexfile: bool,
    /// mod_staticfile loaded: files are served.
    pub staticfile: bool,
    /// mod_dirlisting loaded.
    pub dirlisting: bool,
    /// Some loaded module hooks a request stage: the pipeline takes the module
    /// path. (Modules that only claim do not count: they run on the plain path too.)
    pub active: bool,
    /// Some loaded module claims requests (a gateway).
    pub claims: bool,
    list: Vec<Box<dyn Module>>,
    /// mod_accesslog, for lines written later (CGI, deferred responses, refused
    /// requests) and the fds the master sends.
    pub accesslog: Option<Rc<accesslog::Accesslog>>,
    /// mod_deflate, which handlers reach through [`Hooks::deflate`].
    pub deflate: Option<Rc<deflate::Deflate>>,
    stages: [Vec<usize>; 8],
    /// Local port of each listener (0: unix socket).
    ports: Vec<u16>,
}

const STAGE_BITS: [u16; 8] = [
    hook::URI_RAW,
    hook::URI_CLEAN,
    hook::DOCROOT,
    hook::PHYSICAL,
    hook::HANDLER | hook::CLAIM,
    hook::RESPONSE_START,
    hook::REQUEST_ENV,
    hook::REQUEST_DONE,
];

/// The module of that name, when it hooks a request stage. Modules that wickd
/// runs elsewhere (mod_indexfile, mod_staticfile in static_file.rs) or not at all
/// give None.
fn build(name: &str, cfg: &Config) -> Result<Option<Box<dyn Module>>, String> {
    use crate::gateway::{GatewayModule, Kind};
    Ok(match name {
        "mod_access" => Some(Box::new(access::Access)),
        "mod_auth" => Some(Box::new(auth::Auth::new(cfg)?)),
        "mod_alias" => Some(Box::new(alias::Alias::new(cfg)?)),
        "mod_redirect" => Some(Box::new(redirect::Redirect::new(cfg)?)),
        "mod_rewrite" => Some(Box::new(rewrite::Rewrite::new(cfg)?)),
        "mod_setenv" => Some(Box::new(setenv::Setenv)),
        "mod_expire" => Some(Box::new(expire::Expire::new(cfg)?)),
        "mod_extforward" => Some(Box::new(extforward::Extforward::new(cfg)?)),
        "mod_dirlisting" => Some(Box::new(dirlisting::Dirlisting::new(cfg)?)),
        "mod_simple_vhost" => Some(Box::new(simple_vhost::SimpleVhost::new())),
        "mod_evhost" => Some(Box::new(evhost::Evhost::new(cfg)?)),
        "mod_userdir" => Some(Box::new(userdir::Userdir::new(cfg))),
        "mod_cgi" => Some(Box::new(crate::cgi::ModCgi)),
        "mod_fastcgi" => Some(Box::new(GatewayModule::new(cfg, Kind::FastCgi)?)),
        "mod_scgi" => Some(Box::new(GatewayModule::new(cfg, Kind::Scgi)?)),
        "mod_proxy" => Some(Box::new(GatewayModule::new(cfg, Kind::Proxy)?)),
        "mod_wstunnel" => Some(Box::new(GatewayModule::new(cfg, Kind::WsTunnel)?)),
        "mod_status" => Some(Box::new(status::Status::new(cfg))),
        _ => None,
    })
}

/// lighttpd's config_has_opt_enabled: `key` set somewhere to a non-empty list or a
/// true value.
fn opt_enabled(cfg: &Config, key: &str) -> bool {
    use wick_conf::Value;
    cfg.blocks.iter().flat_map(|b| &b.settings).any(|s| {
        s.key.eq_ignore_ascii_case(key)
            && match &s.value {
                Value::Array(a) => !a.is_empty(),
                v => wick_conf::options::parse_bool(v).unwrap_or(false),
            }
    })
}

/// server.modules after lighttpd's compatibility loading (configfile.c
/// config_compat_module_load, server.compat-module-load on by default):
/// mod_compress is mod_deflate; mod_indexfile is prepended when index-file.names
/// (or server.indexfiles) is set, and dropped otherwise; mod_dirlisting is appended
/// when dir-listing.activate (or server.dir-listing) is enabled, and dropped
/// otherwise; mod_staticfile is appended; mod_auth and mod_vhostdb are prepended
/// when only their backends are listed. Duplicates are dropped.
pub fn effective_modules(cfg: &Config) -> Vec<String> {
    let s = &cfg.server;
    let mut out: Vec<String> = Vec::new();
    for m in &s.modules {
        let m = if m == "mod_compress" {
            "mod_deflate"
        } else {
            m.as_str()
        };
        if !out.iter().any(|x| x == m) {
            out.push(m.to_string());
        }
    }
    if !s.compat_module_load {
        return out;
    }
    let has = |out: &[String], m: &str| out.iter().any(|x| x == m);
    let index = opt_enabled(cfg, "index-file.names") || opt_enabled(cfg, "server.indexfiles");
    let dirlist =
        opt_enabled(cfg, "dir-listing.activate") || opt_enabled(cfg, "server.dir-listing");
    let auth_sub = out.iter().any(|m| m.starts_with("mod_authn_"));
    let vhostdb_sub = out.iter().any(|m| m.starts_with("mod_vhostdb_"));
    if !index {
        out.retain(|m| m != "mod_indexfile");
    } else if !has(&out, "mod_indexfile") {
        out.insert(0, "mod_indexfile".into());
    }
    if !dirlist {
        out.retain(|m| m != "mod_dirlisting");
    } else if !has(&out, "mod_dirlisting") {
        out.push("mod_dirlisting".into());
    }
    if !has(&out, "mod_staticfile") {
        out.push("mod_staticfile".into());
    }
    if auth_sub && !has(&out, "mod_auth") {
        out.insert(0, "mod_auth".into());
    }
    if vhostdb_sub && !has(&out, "mod_vhostdb") {
        out.insert(0, "mod_vhostdb".into());
    }
    out
}

/// lighttpd's warnings about the order of server.modules (configfile.c): mod_auth
/// before dynamic backends, backends before mod_staticfile.
pub fn order_warnings(listed: &[String]) -> Vec<String> {
    const BACKENDS: &[&str] = &[
        "mod_ajp13",
        "mod_cgi",
        "mod_fastcgi",
        "mod_proxy",
        "mod_scgi",
        "mod_sockproxy",
        "mod_wstunnel",
    ];
    let mut w = Vec::new();
    let mut dyn_name: Option<&str> = None;
    let mut staticfile = false;
    for m in listed {
        if m == "mod_staticfile" {
            staticfile = true;
        } else if m == "mod_auth" {
            if let Some(d) = dyn_name {
                w.push(format!(
                    "Warning: mod_auth should be listed in server.modules before dynamic backends such as {d}"
                ));
            }
        } else if BACKENDS.iter().any(|b| m.starts_with(b)) {
            dyn_name.get_or_insert(m);
            if staticfile {
                w.push(format!(
                    "Warning: {m} should be listed in server.modules before mod_staticfile"
                ));
            }
        }
    }
    w
}

static NO_INDEX: Vec<String> = Vec::new();

impl Mods {
    /// Load the modules of `cfg`: compile their regexes, check their values. An
    /// error names the file and line of the offending setting.
    pub fn new(cfg: &Config) -> Result<Mods, String> {
        let names = effective_modules(cfg);
        let mut list: Vec<Box<dyn Module>> = Vec::new();
        let mut log = None;
        let mut deflate = None;
        for n in &names {
            if n == "mod_accesslog" {
                let a = Rc::new(accesslog::Accesslog::new(cfg)?);
                log = Some(a.clone());
                list.push(Box::new(a));
            } else if n == "mod_deflate" {
                let d = Rc::new(deflate::Deflate::new(cfg)?);
                deflate = Some(d.clone());
                list.push(Box::new(d));
            } else if let Some(m) = build(n, cfg)? {
                list.push(m);
            }
        }
        let mut stages: [Vec<usize>; 8] = Default::default();
        for (i, m) in list.iter().enumerate() {
            let h = m.hooks();
            for (s, bit) in STAGE_BITS.iter().enumerate() {
                if h & bit != 0 {
                    stages[s].push(i);
                }
            }
        }
        let has = |m: &str| names.iter().any(|x| x == m);
        Ok(Mods {
            accesslog: log,
            deflate,
            // (compat loading drops it without index-file.names; when listed with
            // compat loading off and no names set, it has none, as in lighttpd)
            indexfile: has("mod_indexfile")
                && (opt_enabled(cfg, "index-file.names") || opt_enabled(cfg, "server.indexfiles")),
            staticfile: has("mod_staticfile"),
            dirlisting: has("mod_dirlisting"),
            active: list.iter().any(|m| m.hooks() & !hook::CLAIM != 0) || !has("mod_staticfile"),
            claims: list.iter().any(|m| m.hooks() & hook::CLAIM != 0),
            names,
            list,
            stages,
            ports: cfg
                .listeners
                .iter()
                .map(|l| match &l.addr {
                    wick_conf::ListenAddr::Tcp(a) => a.port(),
                    wick_conf::ListenAddr::Unix(_) => 0,
                })
                .collect(),
        })
    }

    /// The local port of listener `i` (for ${url.port}).
    pub fn port(&self, i: usize) -> u16 {
        self.ports.get(i).copied().unwrap_or(0)
    }

    /// Is `name` loaded?
    pub fn loaded(&self, name: &str) -> bool {
        self.names.iter().any(|x| x == name)
    }

    /// A module that connects to backends itself (mod_fastcgi, mod_scgi,
    /// mod_proxy) is
    /// loaded: the worker's handlers then register sockets with its poll.
    pub fn connects_backends(&self) -> bool {
        self.loaded("mod_fastcgi")
            || self.loaded("mod_scgi")
            || self.loaded("mod_proxy")
            || self.loaded("mod_wstunnel")
    }

    fn stage(&self, s: usize) -> impl Iterator<Item = &dyn Module> {
        self.stages[s].iter().map(|&i| &*self.list[i])
    }

    /// Run the request stages up to the handler, from what [`Rq::start`] set.
    /// Returns the options in force and
    /// None, or Some(status) to answer with at once ([`Mods::answer`]).
    /// `rq.docroot`/`rq.rel` then name the file.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare<'s>(
        &self,
        compiled: &'s Compiled,
        cond: &mut CondState,
        base: &Base,
        rq: &mut Rq,
        fs: Fs,
    ) -> (View<'s>, Option<u16>) {
        let Fs {
            cache,
            roots,
            clock,
        } = fs;
        let mut view = reevaluate(compiled, cond, base, rq);
        rq.docroot.clear();
        rq.docroot.push_str(view.document_root);
        'restart: loop {
            for s in 0..4 {
                for i in 0..self.stages[s].len() {
                    let m = &*self.list[self.stages[s][i]];
                    let mut x = Cx {
                        compiled,
                        view,
                        cond,
                        base,
                        rq: &mut *rq,
                        fs: Fs {
                            cache: &mut *cache,
                            roots: &mut *roots,
                            clock,
                        },
                    };
                    let f = match s {
                        0 => m.uri_raw(&mut x),
                        1 => m.uri_clean(&mut x),
                        2 => m.docroot(&mut x),
                        _ => m.physical(&mut x),
                    };
                    match f {
                        Flow::Go => {}
                        Flow::Status(st) => return (view, Some(st)),
                        // (503 were the request not parked: pipeline.rs parks it.)
                        Flow::Later => return (view, Some(503)),
                        Flow::Reeval => view = reevaluate(compiled, cond, base, rq),
                        Flow::Restart => {
                            rq.restarts += 1;
                            if rq.restarts > MAX_RESTARTS {
                                return (view, Some(500));
                            }
                            view = reevaluate(compiled, cond, base, rq);
                            rq.docroot.clear();
                            rq.docroot.push_str(view.document_root);
                            rq.rel.clear();
                            rq.rel.extend_from_slice(&rq.path);
                            continue 'restart;
                        }
                    }
                }
                if s == 1 {
                    // Physical path defaults: document root + path (lighttpd sets
                    // them between uri_clean and docroot).
                    rq.docroot.clear();
                    rq.docroot.push_str(view.document_root);
                    rq.rel.clear();
                    rq.rel.extend_from_slice(&rq.path);
                }
            }
            return (view, None);
        }
    }

    /// The view of a request that takes the plain path (no request-stage module):
    /// no index files unless mod_indexfile is loaded.
    #[inline]
    pub fn plain_view<'a>(&self, view: View<'a>) -> View<'a> {
        if self.indexfile {
            return view;
        }
        let mut v = view;
        v.index_files = &NO_INDEX;
        v
    }

    /// The view the handler uses: the document root a module chose, and no index
    /// files unless mod_indexfile is loaded.
    pub fn handler_view<'a>(&self, view: &View<'a>, rq: &'a Rq) -> View<'a> {
        let mut v = *view;
        v.document_root = &rq.docroot;
        if !self.indexfile {
            v.index_files = &NO_INDEX;
        }
        v
    }

    /// The handler stage: modules first, then static files (when mod_staticfile is
    /// loaded); nothing handles it: 403, as lighttpd.
    pub fn handle(
        &self,
        req: &Req,
        view: &View,
        env: &mut Env,
        base: &Base,
        rq: &Rq,
        mut gw: Gateways,
    ) -> Handled {
        let mut x = HandlerCx {
            req,
            view,
            env: &mut *env,
            base,
            rq,
        };
        for m in self.stage(4) {
            if let Some(h) = m.authorize(&mut x, &mut gw) {
                return Handled::Claimed(h);
            }
        }
        for m in self.stage(4) {
            if let Some(h) = m.claim(&mut x, &mut gw) {
                return Handled::Claimed(h);
            }
            if let Some(s) = m.handler(&mut x) {
                return Handled::Status(s);
            }
        }
        if self.staticfile || req.head.method == Method::Options {
            return Handled::Status(crate::static_file::handle(req, view, env));
        }
        Handled::Status(crate::static_file::error(req, view, env, 403))
    }

    /// Answer with `status` from a request stage: a redirect to `rq.location`, or
    /// the error page.
    pub fn answer(&self, status: u16, req: &Req, view: &View, env: &mut Env, rq: &Rq) -> u16 {
        if !(300..400).contains(&status) {
            return crate::static_file::error(req, view, env, status);
        }
        let v = req.head.version;
        env.head
            .begin(v, status)
            .add(b"Location", &rq.location)
            .add(b"Content-Length", b"0");
        env.send_head(req.keep_alive, view.server_tag);
        status
    }

    /// The response_start hooks of a request, for its handler's [`Env`]; None
    /// when no loaded module takes them.
    pub fn hooks<'a>(
        &'a self,
        compiled: &'a Compiled,
        cond: &'a CondState,
        view: &'a View<'a>,
        base: &'a Base<'a>,
        rq: &'a Rq,
        clock: &'a Clock,
    ) -> Option<Hooks<'a>> {
        if self.stages[5].is_empty() {
            return None;
        }
        let cx = RespCx {
            compiled,
            cond,
            view,
            base,
            rq,
            clock,
        };
        Some(Hooks { mods: self, cx })
    }

    /// After the handler wrote its response (head and body) at `mark`:
    /// request_done (access log). A handler that left a [`Job`] gets its
    /// [`Deferred`] instead, the access-log line captured now.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        out: &mut Out,
        mark: (usize, usize),
        compiled: &Compiled,
        cond: &CondState,
        view: &View,
        base: &Base,
        rq: &Rq,
        clock: &Clock,
        status: u16,
    ) -> Option<Box<Deferred>> {
        if let Some(job) = rq.job.take() {
            // The response comes later; its line in the access log is made now.
            let log = match self.accesslog.as_deref() {
                Some(a) if self.logs() => accesslog::capture(
                    a,
                    &DoneCx {
                        view,
                        base,
                        rq,
                        status,
                        bytes_out: 0,
                        clock,
                        compiled,
                        cond,
                        resp: &[],
                    },
                ),
                _ => None,
            };
            return Some(Box::new(Deferred {
                job,
                log,
                before: out.take_rest(),
                dropped: Vec::new(),
                started: status::count::Started::new(base.method(), clock.at),
            }));
        }
        if self.logs() {
            let bytes_out = (out.buf.len() - mark.0.min(out.buf.len())) as u64
                + out.files[mark.1.min(out.files.len())..]
                    .iter()
                    .map(|(_, f)| f.len)
                    .sum::<u64>();
            self.request_done(&DoneCx {
                view,
                base,
                rq,
                status,
                bytes_out,
                clock,
                compiled,
                cond,
                resp: out.buf.get(mark.0..).unwrap_or(&[]),
            });
        }
        None
    }

    /// The environment modules add to a CGI/FastCGI/SCGI request (mod_setenv's
    /// add-/set-environment, mod_extforward's REMOTE_USER), in order; a later entry
    /// of the same name replaces an earlier one.
    pub fn request_env(&self, view: &View, base: &Base, rq: &Rq, env: &mut Vec<(String, String)>) {
        env.extend(rq.env.iter().cloned());
        let x = EnvCx { view, base, rq };
        for m in self.stage(6) {
            m.request_env(&x, env);
        }
    }

    /// The response is queued: access log.
    pub fn request_done(&self, x: &DoneCx) {
        for m in self.stage(7) {
            m.request_done(x);
        }
    }

    /// Does any module hook request_done (the access log)?
    pub fn logs(&self) -> bool {
        !self.stages[7].is_empty()
    }

    /// Every module's trigger hook.
    pub fn trigger(&self) -> Trigger {
        let mut t = Trigger::default();
        for m in &self.list {
            m.trigger(&mut t);
        }
        t
    }
}

/// Evaluate the conditions again on what `rq` now says.
pub fn reevaluate<'s>(
    compiled: &'s Compiled,
    cond: &mut CondState,
    base: &Base,
    rq: &mut Rq,
) -> View<'s> {
    let mut host = std::mem::take(&mut rq.facts_host);
    host.clear();
    host.push_str(&String::from_utf8_lossy(&rq.host));
    let path = String::from_utf8_lossy(&rq.path);
    let query = String::from_utf8_lossy(&rq.query);
    let method = std::str::from_utf8(base.method()).unwrap_or("");
    let rqr: &Rq = rq;
    let lookup = |name: &str| -> Option<&str> {
        rqr.header(base, name)
            .and_then(|v| std::str::from_utf8(v).ok())
    };
    let facts = Facts {
        host: &host,
        url_path: &path,
        query: &query,
        remote_ip: rq.remote_ip,
        scheme: rq.scheme,
        method,
        listener: base.listener,
        header: &lookup,
    };
    let v = compiled.evaluate(&facts, cond);
    drop(path);
    drop(query);
    rq.facts_host = host;
    v
}

impl Rq {
    /// An Rq whose targets are normalised as server.http-parseopts says.
    pub fn with_parseopts(parseopts: wick_conf::parseopts::ParseOpts) -> Rq {
        Rq {
            parseopts,
            ..Default::default()
        }
    }

    /// Start a request: the received target (path and query as sent), its decoded
    /// path, the Host, the peer.
    pub fn start(&mut self, raw_path: &[u8], query: &[u8], path: &[u8], host: &[u8], peer: IpAddr) {
        self.target.clear();
        crate::parseopts::normalize_target(raw_path, self.parseopts, &mut self.target);
        if !query.is_empty() {
            self.target.push(b'?');
            self.target.extend_from_slice(query);
        }
        self.path.clear();
        self.path.extend_from_slice(path);
        self.query.clear();
        self.query.extend_from_slice(query);
        // `host` comes normalised (parseopts::admit); conditions see it lower-cased.
        self.host.clear();
        self.host
            .extend(host.iter().map(|c| c.to_ascii_lowercase()));
        self.remote_ip = peer;
        self.scheme = "http";
        self.remote_user.clear();
        self.docroot.clear();
        self.rel.clear();
        self.rel.extend_from_slice(path);
        self.location.clear();
        self.answer_fields.clear();
        self.auth_type = "";
        self.close = false;
        self.hold = None;
        self.later = None;
        self.req_headers.clear();
        self.env.clear();
        self.restarts = 0;
        self.rewrite_final = false;
        self.extforward_done = false;
        self.setenv_done = false;
        self.started = accesslog::Timespec::now();
        self.server_name.clear();
        self.job.take();
    }
}

/// "file:line: " of the setting `key` in block `id`, for start-up errors.
pub fn where_set(cfg: &Config, id: BlockId, key: &str) -> String {
    cfg.blocks
        .get(id)
        .and_then(|b| {
            b.settings
                .iter()
                .rev()
                .find(|s| s.key.eq_ignore_ascii_case(key))
        })
        .map(|s| format!("{}:{}: ", s.loc.file, s.loc.line))
        .unwrap_or_default()
}

/// The substitution source for a url.rewrite/url.redirect match on `rq.target`.
pub fn subst_source<'a>(x: &'a Cx, caps: &'a subst::Caps<'a>, block: BlockId) -> subst::Source<'a> {
    let authority: &[u8] = if x.rq.host.is_empty() {
        x.view.server_name.as_bytes()
    } else {
        &x.rq.host
    };
    subst::Source {
        caps,
        cond: x.cond,
        block,
        scheme: x.rq.scheme,
        authority,
        port: x.base.port,
        target: &x.rq.target,
        query: x.rq.target.contains(&b'?').then_some(&x.rq.query[..]),
    }
}

/// What a module keeps for the blocks that set its keys, by block id: only those
/// blocks take room (a site's block that sets a document root costs a module
/// that loaded nothing for it nothing), found by binary search.
#[derive(Debug)]
pub struct ByBlock<T>(Box<[(u32, T)]>);

impl<T> ByBlock<T> {
    pub fn get(&self, id: BlockId) -> Option<&T> {
        let id = u32::try_from(id).ok()?;
        let i = self.0.binary_search_by_key(&id, |e| e.0).ok()?;
        Some(&self.0[i].1)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|e| &e.1)
    }

    /// (block, value), by block.
    pub fn iter(&self) -> impl Iterator<Item = (BlockId, &T)> {
        self.0.iter().map(|e| (e.0 as BlockId, &e.1))
    }
}

impl<T> Default for ByBlock<T> {
    fn default() -> Self {
        ByBlock(Box::new([]))
    }
}

impl<T> FromIterator<(BlockId, T)> for ByBlock<T> {
    fn from_iter<I: IntoIterator<Item = (BlockId, T)>>(it: I) -> Self {
        let mut v: Vec<(u32, T)> = it
            .into_iter()
            .filter_map(|(id, t)| Some((u32::try_from(id).ok()?, t)))
            .collect();
        v.sort_by_key(|e| e.0);
        ByBlock(v.into_boxed_slice())
    }
}
