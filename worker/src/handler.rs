//! The contract for a request answered over several loop turns (lighttpd's
//! handle_subrequest and handle_request_reset): a module claims the request and
//! gives the connection a handler. The connection keeps the client: it reads the
//! request body into the room the handler offers (body.rs), sees the client go,
//! and writes what the handler leaves when it is done; it calls `step` whenever
//! the client or one of the handler's own fds is ready and `abort` when the
//! request is abandoned. mod_cgi's job and mod_dirlisting's deferred listing are
//! handlers, as are the FastCGI, SCGI and proxy jobs (gateway/).

use crate::ctx::Ctx;
use crate::response::Out;
use crate::transport::Transport;
use std::any::Any;
use std::io;

/// The client as a handler uses it during a step: to send its response.
pub struct Client<'a> {
    transport: &'a mut Transport,
    /// The connection's last progress (max-write-idle counts from it).
    since: &'a mut u64,
}

impl<'a> Client<'a> {
    pub fn new(transport: &'a mut Transport, since: &'a mut u64) -> Client<'a> {
        Client { transport, since }
    }

    /// Send what `out` holds (a stream: nothing waits for a FIN). Ok(true): all
    /// sent. Bytes taken count as the connection's progress.
    pub fn send(&mut self, out: &mut Out, now: u64) -> io::Result<bool> {
        let before = out.remaining();
        let r = out.flush(self.transport, false);
        if out.remaining() != before {
            *self.since = now;
        }
        r
    }

    /// Our side of the stream is done (a tunnel whose backend sent its FIN).
    pub fn shutdown_write(&mut self) {
        self.transport.shutdown_write();
    }
}

bitflags::bitflags! {
    /// Readiness a connection waits for, derived from its state each turn.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Want: u8 {
        const READ = 1;
        const WRITE = 2;
    }
}

/// What one step did.
pub enum Step {
    /// Nothing moved: wait for an event (the client's or the handler's fds).
    Wait,
    /// Something moved: step again now.
    Progress,
    /// A bounded slice of work done: the other connections go first.
    Yield,
    /// The client cannot be served any more: close the connection.
    Close,
    /// Refuse the request with this status: the connection stops reading its
    /// body (and closes after the answer) and calls `abort(Some(status))`.
    Refuse(u16),
    /// The response is complete; `out` holds what is still to send, and
    /// `keep_alive` says whether the connection may carry another request.
    Done { out: Out, keep_alive: bool },
    /// Run another target as this connection's request (a CGI's local redirect).
    Redirect(Box<crate::internal::Internal>),
    /// Run this request head again from the top, as the connection's request (a
    /// module parked it until now: park.rs).
    Rerun(Vec<u8>),
}

pub trait Handler: Any {
    /// Where decoded request-body bytes go; None holds the body back (the client
    /// is not read meanwhile).
    fn body_room(&mut self) -> Option<&mut Vec<u8>> {
        None
    }

    /// The body is all in; `trailers`: those request.trailer-whitelist kept.
    fn body_done(&mut self, _ctx: &mut Ctx, _trailers: Vec<(String, String)>) {}

    /// The client half-closed after its request: the response still goes out.
    fn client_fin(&mut self, _ctx: &mut Ctx) {}

    /// Every byte the client sends is the handler's, as it comes (a tunnel after
    /// 101 Switching Protocols): the connection offers them to `body_room`, and
    /// the client's FIN to `client_fin`.
    fn tunnel(&self) -> bool {
        false
    }

    /// Make progress; `client` to write to, `rbuf` a scratch buffer for reads.
    fn step(&mut self, ctx: &mut Ctx, client: &mut Client, rbuf: &mut [u8]) -> Step;

    /// The request is abandoned: with `status`, it is answered with that error
    /// (if nothing was sent yet) and stepping continues; without, the client is
    /// gone and the handler releases what it holds.
    fn abort(&mut self, ctx: &mut Ctx, status: Option<u16>);

    /// Readiness wanted from the client.
    fn want(&self) -> Want {
        Want::READ
    }

    /// Seconds the client may make no progress (u64::MAX: the handler's own
    /// limits apply, see `tick`).
    fn timeout(&self, write_idle: u64) -> u64 {
        write_idle
    }

    /// The handler is taking the request body in as fast as it comes (it is
    /// receiving it whole): a client that stops sending it meets
    /// server.max-read-idle, as while the connection reads a body itself.
    fn reading_body(&self) -> bool {
        false
    }

    /// Once a second: the handler's own timers. True: step the connection now.
    fn tick(&mut self, _ctx: &mut Ctx, _now: u64) -> bool {
        false
    }

    /// A time before the next second at which to step the connection (the event
    /// loop's timer list, server.rs): a parked request (park.rs).
    fn wake_at(&self) -> Option<std::time::Instant> {
        None
    }

    /// Some of the response was queued: an error page can no longer replace it.
    fn started(&self) -> bool {
        true
    }

    /// For events addressed to one kind of handler (the spawner's answers).
    fn as_any(&mut self) -> &mut dyn Any;
}
