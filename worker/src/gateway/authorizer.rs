//! FastCGI authorizers (a `fastcgi.server` host with mode "authorizer"), as
//! lighttpd's gw_backend runs them: the request goes first to the authorizer
//! (role AUTHORIZER, the responder's environment, no body); a 200 (or no
//! Status) grants it and the request runs again from the top, served by
//! whatever serves it then, with the authorizer's `Variable-NAME: value` fields
//! as NAME=value for the FastCGI/SCGI backends and, with the host's docroot, that
//! document root. Any other answer is the response.
//!
//! The grant leaves the job out of band: [`Authorizing::finish`] puts it in
//! `Ctx::grant` just before the step that runs the request again
//! (`Step::Rerun`, or `Step::Redirect` for an internal request), and
//! `pipeline::run` takes it at its very start for that run alone
//! (`Rq::grant`). Nothing the client sends can make one.

use crate::cgi::resp::{self, Parsed};
use crate::ctx::Ctx;
use crate::handler::Step;
use crate::internal::{Internal, InternalInfo, Saved};

/// What an authorizer's 200 gave the request it runs again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// `Variable-NAME: value` fields, as (NAME, value), in order.
    pub env: Vec<(String, String)>,
    /// The host's docroot: the document root of the request from now on.
    pub docroot: Option<String>,
}

/// An authorizer's response as it comes in.
pub(super) struct Authorizing {
    /// The head so far (until its status is known).
    head: Vec<u8>,
    /// Its status was 200: the variables (the body that follows is dropped).
    granted: Option<Vec<(String, String)>>,
    /// END_REQUEST came after a grant.
    pub ended: bool,
    /// Not granted: the rest of the response goes to the client as it comes.
    denied: bool,
    docroot: String,
    /// The internal request this was (runs again as one).
    internal: Option<InternalInfo>,
}

/// What to do with STDOUT bytes of an authorizer.
pub(super) enum Fed {
    /// Kept (a head not complete yet, or a granted response's body).
    Kept,
    /// Not a grant: these bytes start the response to the client.
    Deny(Vec<u8>),
    /// Denied before: the bytes are the response's, as they are.
    Pass,
}

impl Authorizing {
    pub fn new(docroot: &str, internal: Option<InternalInfo>) -> Authorizing {
        Authorizing {
            head: Vec::new(),
            granted: None,
            ended: false,
            denied: false,
            docroot: docroot.to_string(),
            internal,
        }
    }

    pub fn granted(&self) -> bool {
        self.granted.is_some()
    }

    /// STDOUT bytes: the head is held until it is complete; a 200 (or no
    /// Status) grants; anything else (another status, an NPH line, output
    /// without a head, a malformed one) is the answer, handed back whole.
    pub fn feed(&mut self, data: &[u8]) -> Fed {
        if self.denied {
            return Fed::Pass;
        }
        if self.granted.is_some() {
            return Fed::Kept;
        }
        self.head.extend_from_slice(data);
        match resp::parse(&self.head) {
            Parsed::Partial => Fed::Kept,
            Parsed::Head(h) if !h.nph && h.status.unwrap_or(200) == 200 => {
                self.granted = Some(variables(&h.fields));
                self.head = Vec::new();
                Fed::Kept
            }
            _ => {
                self.denied = true;
                Fed::Deny(std::mem::take(&mut self.head))
            }
        }
    }

    /// The authorizer's response ended after a grant: the request runs again
    /// (`saved`: its head as it came, or the internal request's), the grant
    /// waiting in `ctx.grant` for that run.
    pub fn finish(&mut self, ctx: &mut Ctx, saved: &Saved) -> Step {
        let grant = Grant {
            env: self.granted.take().unwrap_or_default(),
            docroot: (!self.docroot.is_empty()).then(|| self.docroot.clone()),
        };
        ctx.grant = Some(grant);
        match self.internal.take() {
            Some(info) => Step::Redirect(Box::new(Internal {
                saved: saved.clone(),
                target: info.new_target.clone().into_bytes(),
                method_get: false,
                info,
            })),
            None => Step::Rerun(saved.buf.clone()),
        }
    }
}

/// `Variable-NAME: value` fields (NAME not empty) as (NAME, value).
fn variables(fields: &[(String, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter_map(|(k, v)| {
            let name = k.get(..9)?;
            let rest = &k[9..];
            (name.eq_ignore_ascii_case("variable-") && !rest.is_empty())
                .then(|| (rest.to_string(), v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_and_deny() {
        let mut a = Authorizing::new("", None);
        assert!(matches!(a.feed(b"Variable-USER_TIER: gold\r\n"), Fed::Kept));
        assert!(matches!(
            a.feed(b"variable-x: 1\r\nVariable-: no\r\nX-Other: y\r\n\r\nbody"),
            Fed::Kept
        ));
        assert_eq!(
            a.granted,
            Some(vec![
                ("USER_TIER".into(), "gold".into()),
                ("x".into(), "1".into())
            ])
        );
        // The body of a grant is dropped.
        assert!(matches!(a.feed(b"more"), Fed::Kept));

        let mut a = Authorizing::new("", None);
        match a.feed(b"Status: 403\r\nVariable-A: b\r\n\r\nno") {
            Fed::Deny(b) => assert!(b.starts_with(b"Status: 403")),
            _ => panic!("a 403 is no grant"),
        }
        assert!(!a.granted());
        assert!(matches!(a.feed(b"rest"), Fed::Pass));
        let mut a = Authorizing::new("", None);
        assert!(matches!(a.feed(b"Status: 200 OK\r\n\r\n"), Fed::Kept));
        assert!(a.granted());
        // Output without a head, and an NPH status line, are no grant.
        let mut a = Authorizing::new("", None);
        assert!(matches!(a.feed(b"just text\n"), Fed::Deny(_)));
        let mut a = Authorizing::new("", None);
        assert!(matches!(a.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Fed::Deny(_)));
    }
}
