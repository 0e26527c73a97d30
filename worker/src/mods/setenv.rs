//! mod_setenv: setenv.add-request-header / set-request-header (at uri_clean, once
//! per request: CGI and the access log see them), add-environment /
//! set-environment (for CGI, FastCGI and SCGI), add-response-header /
//! set-response-header (on every response). "add" appends (a request header or
//! environment value already there gets ", value"; a response header gets another
//! line); "set" replaces, and an empty value removes.

use super::{hook, Cx, Flow, LaterHook, Module, RespCx};
use crate::resp_head::ResponseHead;

pub struct Setenv;

impl Module for Setenv {
    fn name(&self) -> &'static str {
        "mod_setenv"
    }

    fn hooks(&self) -> u16 {
        hook::URI_CLEAN | hook::RESPONSE_START
    }

    fn uri_clean(&self, x: &mut Cx) -> Flow {
        if x.rq.setenv_done {
            return Flow::Go;
        }
        x.rq.setenv_done = true;
        let v = &x.view;
        for (k, val) in v.setenv_add_request_header.iter() {
            let merged = match x.rq.header(x.base, k) {
                Some(old) => {
                    let mut s = String::from_utf8_lossy(old).into_owned();
                    s.push_str(", ");
                    s.push_str(val);
                    s
                }
                None => val.clone(),
            };
            x.rq.req_headers.push((k.clone(), merged, true));
        }
        for (k, val) in v.setenv_set_request_header.iter() {
            x.rq.req_headers.push((k.clone(), val.clone(), false));
        }
        for (k, val) in v.setenv_add_environment.iter() {
            match x.rq.env.iter_mut().find(|(n, _)| n == k) {
                Some((_, old)) => {
                    old.push_str(", ");
                    old.push_str(val);
                }
                None => x.rq.env.push((k.clone(), val.clone())),
            }
        }
        for (k, val) in v.setenv_set_environment.iter() {
            x.rq.env.retain(|(n, _)| n != k);
            x.rq.env.push((k.clone(), val.clone()));
        }
        Flow::Go
    }

    fn response_start(&self, x: &RespCx, head: &mut ResponseHead) {
        edit_head(
            x.view.setenv_add_response_header,
            x.view.setenv_set_response_header,
            head,
        );
    }

    fn response_later(&self, x: &RespCx) -> Option<Box<dyn LaterHook>> {
        let (add, set) = (
            &x.view.setenv_add_response_header,
            &x.view.setenv_set_response_header,
        );
        if add.is_empty() && set.is_empty() {
            return None;
        }
        Some(Box::new(Later {
            add: add.to_vec(),
            set: set.to_vec(),
        }))
    }
}

/// setenv.add-response-header adds a field, set-response-header replaces every
/// field of its name (an empty value removes them).
fn edit_head(add: &[(String, String)], set: &[(String, String)], head: &mut ResponseHead) {
    for (k, v) in add {
        head.add(k.as_bytes(), v.as_bytes());
    }
    for (k, v) in set {
        head.set(k.as_bytes(), v.as_bytes());
    }
}

/// The response headers of a request whose head comes later (a CGI response).
struct Later {
    add: Vec<(String, String)>,
    set: Vec<(String, String)>,
}

impl LaterHook for Later {
    fn run(&self, head: &mut ResponseHead, _clock: &crate::date::Clock) {
        edit_head(&self.add, &self.set, head);
    }
}
