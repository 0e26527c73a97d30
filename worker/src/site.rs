//! The configuration as a worker uses it: the compiled conditions (per-request
//! option views) and the server-wide limits, fixed at start-up.

use std::net::IpAddr;
use wick_conf::cond::{Compiled, CondState, Facts};
use wick_conf::{Config, View};

pub struct Site {
    /// The configuration without its patches (`compiled` has them; the modules
    /// read theirs when built) and, once the worker is set up, without its blocks
    /// ([`Site::shed`]).
    pub cfg: Config,
    pub compiled: Compiled,
    /// The modules in force and their hooks (mods/mod.rs).
    pub mods: crate::mods::Mods,
    /// Head size limit (server.max-request-field-size).
    pub field_limit: usize,
    /// Requests per connection; 0 disables keep-alive (lighttpd).
    pub keep_alive_requests: u32,
    /// Seconds an idle keep-alive connection is kept; 0 disables keep-alive.
    pub keep_alive_idle: u64,
    pub read_idle: u64,
    pub write_idle: u64,
    /// server.min-request-body-rate (bytes a second; 0: none).
    pub min_body_rate: u64,
    /// Connections this worker holds at most before it stops accepting.
    pub max_conns: usize,
    /// debug.log-request-header-on-error
    pub log_refused: bool,
    /// Request trailers merged into the headers (server.feature-flags'
    /// request.trailer-whitelist, lower case).
    pub trailer_whitelist: Vec<String>,
    /// server.http-parseopts, decoded at load (parseopts.rs acts on it).
    pub parseopts: wick_conf::parseopts::ParseOpts,
    /// HTTP/2 (server.h2proto), and on cleartext (server.h2c).
    pub h2proto: bool,
    pub h2c: bool,
}

/// Seconds a closing connection may linger, reading what the client still sends.
pub const LINGER_SECS: u64 = 5;

impl Site {
    pub fn new(mut cfg: Config) -> Result<Site, String> {
        let compiled = Compiled::new(&cfg).map_err(|e| e.to_string())?;
        let mods = crate::mods::Mods::new(&cfg)?;
        // The modules have read the patches they need and `compiled` holds its own
        // copy: a second one per block is not kept (1.7 KiB a block; 20,000
        // virtual hosts are 35 MB per worker).
        cfg.patches = Vec::new();
        let s = &cfg.server;
        let global = {
            let mut v = compiled.defaults().view();
            v.apply(compiled.patch(0));
            (*v.max_read_idle, *v.max_write_idle)
        };
        let nofile = nofile_limit();
        // lighttpd: max-connections defaults to a third of max-fds; never more than
        // the fds we may open (one per connection plus files, logs, the channel).
        let fds = if s.max_fds > 0 {
            u64::from(s.max_fds).min(nofile)
        } else {
            nofile
        };
        let by_fds = (fds.saturating_sub(32) / 2).max(1) as usize;
        let max_conns = if s.max_connections > 0 {
            (s.max_connections as usize).min(by_fds)
        } else {
            ((fds / 3).max(1) as usize).min(by_fds)
        };
        Ok(Site {
            field_limit: (s.max_request_field_size as usize).clamp(1024, 1 << 20),
            log_refused: s.log_request_header_on_error,
            trailer_whitelist: crate::trailer::whitelist(&s.feature_flags),
            parseopts: s.http_parseopts,
            h2proto: s.h2proto,
            h2c: s.h2proto && s.h2c,
            keep_alive_requests: s.max_keep_alive_requests,
            keep_alive_idle: u64::from(s.max_keep_alive_idle),
            read_idle: global.0.max(1),
            write_idle: global.1.max(1),
            min_body_rate: u64::from(s.min_request_body_rate),
            max_conns,
            compiled,
            mods,
            cfg,
        })
    }

    /// Drop what only start-up reads: every block's raw settings and condition
    /// (the modules, TLS and the sandbox plan have taken theirs; at request time
    /// `cfg` is read for its server options and listeners only), and give the
    /// freed memory back. With thousands of sites these are most of a worker's
    /// configuration.
    pub fn shed(&mut self) {
        self.cfg.blocks = Vec::new();
        crate::sys::release_free_memory();
    }

    pub fn keep_alive_enabled(&self) -> bool {
        self.keep_alive_requests > 0 && self.keep_alive_idle > 0
    }

    /// The options in force for one request.
    pub fn view<'a>(&'a self, facts: &Facts, state: &mut CondState) -> View<'a> {
        self.compiled.evaluate(facts, state)
    }
}

fn nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => soft,
        _ => 1024,
    }
}

/// IP of a peer for `$HTTP["remoteip"]`; unix-socket peers count as 0.0.0.0.
pub fn unspecified() -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
}
