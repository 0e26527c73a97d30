//! Internal requests: a request run again for another target inside the server
//! (a script's local redirect, server.error-handler), what it carries through the
//! pipeline and what a script started by one reports. Shared by pipeline.rs,
//! conn.rs and cgi/ without either importing the other for it.

use crate::request::{Field, Head};

/// What an internal request (a script's local redirect, an error handler) carries
/// through the pipeline; a script started by one reports it (REQUEST_URI,
/// REDIRECT_URI, REDIRECT_STATUS).
#[derive(Debug, Clone)]
pub struct InternalInfo {
    /// The client's request-target (REQUEST_URI).
    pub orig_target: String,
    /// The target run now (REDIRECT_URI).
    pub new_target: String,
    pub loops: u8,
    /// An error handler: the original status, and whether the handler's 200 is
    /// replaced by it (server.error-handler).
    pub error: Option<(u16, bool)>,
    /// Response fields the error handler's answer keeps: a 401's
    /// WWW-Authenticate (lighttpd's http_response_errdoc_init keeps it).
    pub fields: Vec<(&'static [u8], Vec<u8>)>,
}

/// The owned copy of a request, for an internal request made from it later.
#[derive(Debug, Clone)]
pub struct Saved {
    pub buf: Vec<u8>,
    pub head: Head,
    pub fields: Vec<Field>,
}

/// An internal request to run: a local redirect or an error handler. The saved
/// head is sent again with another target (and method), without its body.
pub struct Internal {
    pub saved: Saved,
    /// The new target (path and query, undecoded).
    pub target: Vec<u8>,
    pub method_get: bool,
    pub info: InternalInfo,
}
