//! mod_fastcgi's wire format: FastCGI 1.0 records (`record.rs`). The module that
//! claims requests, the backends with their balancing and disable times, and the
//! handler of one request are the gateway layer's (`crate::gateway`), shared with
//! mod_scgi; the request and its response are a CGI job's (`crate::cgi::Job`: the
//! same environment, the same response head rules, framing, X-Sendfile and stderr
//! lines), with stdin and stdout carried as records over one socket instead of
//! pipes from the spawner. The worker connects itself: no spawner is involved.

pub mod record;
