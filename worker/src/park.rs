//! A request parked until a time, without holding up the event loop: its
//! connection waits in `Phase::Handler` with a [`Parked`] handler, and the loop's
//! timer list (server.rs) steps it when the time comes. What then happens: an
//! answer already made goes out (mod_auth's 401 after wrong credentials, held back
//! as lighttpd's auth.delay-invalid-creds does), an internal request runs (the
//! server.error-handler for that 401), or the request runs again from the top
//! (mod_auth ran out of its budget for slow password hashes: `Flow::Later`).

use crate::ctx::Ctx;
use crate::handler::{Client, Handler, Step, Want};
use crate::internal::Internal;
use crate::response::Out;
use std::time::Instant;

/// What a parked request does when its time comes.
pub enum Then {
    /// Send this answer (then close unless `keep_alive`).
    Send { out: Out, keep_alive: bool },
    /// Run this internal request (server.error-handler).
    Run(Box<Internal>),
    /// Run the request (this head) again from the top.
    Rerun(Vec<u8>),
}

pub struct Parked {
    until: Instant,
    then: Option<Then>,
    /// Request body bytes, read and dropped while waiting (the answer is made).
    dropped: Vec<u8>,
}

impl Parked {
    pub fn new(until: Instant, then: Then) -> Parked {
        Parked {
            until,
            then: Some(then),
            dropped: Vec::new(),
        }
    }
}

impl Handler for Parked {
    fn body_room(&mut self) -> Option<&mut Vec<u8>> {
        // A request run again reads its own body then; an answer made already
        // has no use for it.
        if matches!(self.then, Some(Then::Rerun(_))) {
            return None;
        }
        self.dropped.clear();
        Some(&mut self.dropped)
    }

    fn step(&mut self, _ctx: &mut Ctx, _client: &mut Client, _rbuf: &mut [u8]) -> Step {
        if Instant::now() < self.until {
            return Step::Wait;
        }
        match self.then.take() {
            Some(Then::Send { out, keep_alive }) => Step::Done { out, keep_alive },
            Some(Then::Run(ir)) => Step::Redirect(ir),
            Some(Then::Rerun(head)) => Step::Rerun(head),
            None => Step::Close,
        }
    }

    fn abort(&mut self, _ctx: &mut Ctx, _status: Option<u16>) {
        // A refused body: the connection closes after the answer, which stays
        // the one made; nothing is held besides memory.
    }

    fn want(&self) -> Want {
        Want::READ
    }

    fn started(&self) -> bool {
        false
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(self.until)
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
