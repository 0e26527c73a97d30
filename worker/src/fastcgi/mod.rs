//! mod_fastcgi: requests handed to external FastCGI responders (PHP-FPM, php-cgi
//! -b, spawn-fcgi) over TCP or a unix socket. The backends, their balancing and
//! disable times are the gateway layer's (`crate::gateway`); the request and its
//! response are a CGI job's (`crate::cgi::Job`: the same environment, the same
//! response head rules, framing, X-Sendfile and stderr lines), with stdin and
//! stdout carried as FastCGI records over one socket instead of pipes from the
//! spawner. The worker connects itself: no spawner is involved.
//!
//! Files: `module.rs` (which requests, the environment), `job.rs` (the handler),
//! `record.rs` (the record layer).

mod job;
mod module;
pub mod record;

pub use job::FcgiJob;
pub use module::ModFastcgi;
