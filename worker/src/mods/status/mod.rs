//! mod_status for the whole server: status.status-url (an HTML page, `?auto` in
//! lighttpd's format, `?json`), status.config-url, status.statistics-url,
//! status.enable-sort, and status.metrics-url (wickd's: the Prometheus text
//! format). The numbers are every worker's, of every generation, summed from the
//! master's counter page (`count.rs` adds to this worker's slot); nothing asks
//! the other workers at request time.
//!
//! The module only claims (hook CLAIM): requests for other paths stay on the
//! plain path, and the pages come after the request stages, so mod_access and
//! mod_auth protect them as any other path. `page.rs` makes the HTML pages,
//! `text.rs` `?auto`, `?json` and the statistics, `prom.rs` the metrics.

pub mod count;
mod page;
mod prom;
mod text;

use super::{accesslog, hook, Deferred, DoneCx, Gateways, HandlerCx, Job, Module, Trigger};
use crate::date::Clock;
use crate::handler::Handler;
use crate::request::Method;
use crate::response::Out;
use std::cell::RefCell;
use std::collections::VecDeque;
use wick_conf::{Config, View};
use wick_proto::counters::{self, Listed, Totals, STATES};

/// The pages mod_status answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Html,
    Auto,
    Json,
    Config,
    Statistics,
    Metrics,
}

impl Which {
    /// The page `path` asks for under the URLs in force (lighttpd compares the
    /// decoded path exactly; an empty URL is no page).
    fn of(view: &View, path: &[u8], query: &[u8]) -> Option<Which> {
        let is = |url: &String| !url.is_empty() && url.as_bytes() == path;
        if is(view.status_url) {
            Some(if query == b"auto" {
                Which::Auto
            } else if query.starts_with(b"json") {
                Which::Json
            } else {
                Which::Html
            })
        } else if is(view.status_config_url) {
            Some(Which::Config)
        } else if is(view.status_statistics_url) {
            Some(Which::Statistics)
        } else if is(view.status_metrics_url) {
            Some(Which::Metrics)
        } else {
            None
        }
    }
}

/// A FastCGI backend the configuration names, by its counter id.
struct Named {
    id: u64,
    name: String,
}

/// One worker as the page shows it.
pub(crate) struct WorkerView {
    pub pid: u64,
    pub generation: u64,
    pub worker_id: u64,
    pub max_conns: u64,
    /// Responses its slot counted (it may have gone on from an earlier holder's).
    pub requests: u64,
    /// None: it was writing its list each time we looked.
    pub census: Option<([u64; STATES.len()], Vec<Listed>)>,
}

/// One backend summed over the workers.
#[derive(Default)]
pub(crate) struct BackendView {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    pub load: u64,
    /// Live workers skipping it now (after a failed connect).
    pub disabled: u64,
    pub latency_us: u64,
    pub done: u64,
}

/// What every page is made from, read once per request.
pub(crate) struct Snapshot {
    pub totals: Totals,
    pub started: u64,
    pub now: i64,
    pub mono: u64,
    pub generation: u64,
    pub reloads: [u64; 2],
    pub last_reload: u64,
    pub restarts: [[u64; counters::CAUSES.len()]; counters::ROLES.len()],
    pub workers: Vec<WorkerView>,
    pub backends: Vec<BackendView>,
    /// Requests and bytes out a second, over the last five seconds.
    pub avg5: (u64, u64),
}

impl Snapshot {
    pub fn uptime(&self) -> u64 {
        (self.now.max(0) as u64).saturating_sub(self.started)
    }

    /// lighttpd's IdleServers: connection room left in the live workers.
    pub fn idle(&self) -> u64 {
        self.totals.max_conns.saturating_sub(self.totals.busy())
    }
}

pub struct Status {
    /// The backends of every fastcgi.server value, for their names.
    backends: Vec<Named>,
    /// (monotonic second, requests, bytes out) once a second, the last six.
    samples: RefCell<VecDeque<(u64, u64, u64)>>,
}

impl Status {
    pub fn new(cfg: &Config) -> Status {
        let mut backends: Vec<Named> = Vec::new();
        for s in cfg.blocks.iter().flat_map(|b| &b.settings) {
            if !s.key.eq_ignore_ascii_case("fastcgi.server") {
                continue;
            }
            // (a value that does not parse is refused by mod_fastcgi at start)
            let Ok(t) = crate::gateway::parse(&s.value, "fastcgi.server") else {
                continue;
            };
            for h in t.hosts {
                let id = counters::backend_id(&h.name);
                if !backends.iter().any(|n| n.id == id) {
                    backends.push(Named { id, name: h.name });
                }
            }
        }
        Status {
            backends,
            samples: RefCell::new(VecDeque::with_capacity(6)),
        }
    }

    fn snapshot(&self, clock: &Clock) -> Snapshot {
        let mut s = Snapshot {
            totals: Totals::default(),
            started: 0,
            now: clock.unix,
            mono: clock.mono,
            generation: 0,
            reloads: [0; 2],
            last_reload: 0,
            restarts: Default::default(),
            workers: Vec::new(),
            backends: self
                .backends
                .iter()
                .map(|n| BackendView {
                    name: n.name.clone(),
                    ..Default::default()
                })
                .collect(),
            avg5: (0, 0),
        };
        let Some((board, _)) = count::board() else {
            return s;
        };
        let h = &board.header;
        s.totals = board.totals();
        s.started = h.started.get();
        s.generation = h.generation.get();
        s.reloads = [h.reloads_ok.get(), h.reloads_failed.get()];
        s.last_reload = h.last_reload.get();
        for (row, src) in s.restarts.iter_mut().zip(&h.restarts) {
            for (v, c) in row.iter_mut().zip(src) {
                *v = c.get();
            }
        }
        for slot in board.used() {
            let live = slot.live.get() == 1;
            if live {
                s.workers.push(WorkerView {
                    pid: slot.pid.get(),
                    generation: slot.generation.get(),
                    worker_id: slot.worker_id.get(),
                    max_conns: slot.max_conns.get(),
                    requests: slot.hot.requests.iter().flatten().map(|c| c.get()).sum(),
                    census: slot.census.read(),
                });
            }
            for b in &slot.backends {
                let id = b.id.get();
                let Some(i) = self.backends.iter().position(|n| n.id == id) else {
                    continue;
                };
                let v = &mut s.backends[i];
                v.requests += b.requests.get();
                v.failures += b.failures.get();
                v.latency_us += b.latency_us.get();
                v.done += b.done.get();
                if live {
                    v.load += b.load.get();
                    v.disabled += u64::from(b.disabled_until.get() > clock.mono);
                }
            }
        }
        s.avg5 = self.average(clock.mono, &s.totals);
        s
    }

    /// Requests and bytes a second since the sample five seconds back (or the
    /// oldest there is).
    fn average(&self, mono: u64, t: &Totals) -> (u64, u64) {
        let samples = self.samples.borrow();
        let Some(&(at, req, out)) = samples.iter().find(|(at, _, _)| mono - at.min(&mono) <= 5)
        else {
            return (0, 0);
        };
        let secs = mono.saturating_sub(at).max(1);
        (
            t.requests_total().saturating_sub(req) / secs,
            t.bytes_out.saturating_sub(out) / secs,
        )
    }

    /// The page for `which`: (status, Content-Type, body).
    fn render(&self, which: Which, x: &HandlerCx, gw: &Gateways) -> (u16, &'static str, Vec<u8>) {
        let snap = self.snapshot(x.env.clock);
        match which {
            Which::Html => {
                let p = page::StatusPage {
                    snap: &snap,
                    tag: x.view.server_tag,
                    host: x.base.header(b"host").unwrap_or(b""),
                    server_name: x.view.server_name,
                    query: x.req.query,
                    sort: *x.view.status_enable_sort,
                };
                (200, "text/html", p.render())
            }
            Which::Auto => (200, "text/plain", text::auto(&snap)),
            Which::Json => (
                200,
                "application/javascript",
                text::json(&snap, x.req.query),
            ),
            Which::Config => (
                200,
                "text/html",
                page::config(x.view.server_tag, gw.cfg, &snap),
            ),
            Which::Statistics => {
                let body = text::statistics(&snap);
                (if body.is_empty() { 204 } else { 200 }, "text/plain", body)
            }
            Which::Metrics => (200, prom::CONTENT_TYPE, prom::render(&snap)),
        }
    }
}

impl Module for Status {
    fn name(&self) -> &'static str {
        "mod_status"
    }

    fn hooks(&self) -> u16 {
        hook::CLAIM
    }

    fn claim(&self, x: &mut HandlerCx, gw: &mut Gateways) -> Option<Box<dyn Handler>> {
        let which = Which::of(x.view, gw.path, x.req.query)?;
        let started = count::Started::new(x.base.method(), x.env.clock.at);
        let (status, ctype, body) = self.render(which, x, gw);
        // Earlier pipelined answers go first; this one follows as a whole.
        let before = x.env.out.take_rest();
        let env = &mut *x.env;
        env.head
            .begin(x.req.head.version, status)
            .add(b"Content-Type", ctype.as_bytes());
        if status != 204 {
            env.head.add_u64(b"Content-Length", body.len() as u64);
        }
        env.send_head(x.req.keep_alive, x.view.server_tag);
        if x.req.head.method != Method::Head {
            env.out.put(&body);
        }
        let resp = env.out.take_rest();
        let log = gw.accesslog.and_then(|a| {
            accesslog::capture(
                a,
                &DoneCx {
                    view: x.view,
                    base: x.base,
                    rq: x.rq,
                    status,
                    bytes_out: 0,
                    clock: env.clock,
                    compiled: gw.compiled,
                    cond: gw.cond,
                    resp: &[],
                },
            )
        });
        Some(Box::new(Deferred {
            job: Box::new(Made {
                resp: Some(resp),
                status,
            }),
            log,
            before,
            dropped: Vec::new(),
            started,
        }))
    }

    /// Once a second: a sample for the five-second averages.
    fn trigger(&self, _t: &mut Trigger) {
        let Some((board, _)) = count::board() else {
            return;
        };
        let t = board.totals();
        let mono = crate::date::mono_secs();
        let mut s = self.samples.borrow_mut();
        if s.back().is_some_and(|&(at, _, _)| at == mono) {
            return;
        }
        if s.len() == 6 {
            s.pop_front();
        }
        s.push_back((mono, t.requests_total(), t.bytes_out));
    }
}

/// A response made whole at the claim, handed over on the first step.
struct Made {
    resp: Option<Out>,
    status: u16,
}

impl Job for Made {
    fn step(&mut self, out: &mut Out, _clock: &Clock) -> Option<u16> {
        if let Some(r) = self.resp.take() {
            *out = r;
        }
        Some(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_with(cfg: &str, f: impl FnOnce(&View)) {
        let dir = std::env::temp_dir();
        let c = wick_conf::load_str(cfg, "t.conf", &dir).expect("config");
        let d = wick_conf::options::RequestOptions::default();
        let mut v = d.view();
        v.apply(&c.patches[0]);
        f(&v);
    }

    #[test]
    fn pages_by_path_and_query() {
        let cfg = "server.modules = (\"mod_status\")\nstatus.status-url = \"/s\"\n\
                   status.config-url = \"/c\"\nstatus.metrics-url = \"/m\"\n";
        view_with(cfg, |v| {
            assert_eq!(Which::of(v, b"/s", b""), Some(Which::Html));
            assert_eq!(Which::of(v, b"/s", b"auto"), Some(Which::Auto));
            assert_eq!(Which::of(v, b"/s", b"autox"), Some(Which::Html));
            assert_eq!(Which::of(v, b"/s", b"jsonp=f"), Some(Which::Json));
            assert_eq!(Which::of(v, b"/c", b""), Some(Which::Config));
            assert_eq!(Which::of(v, b"/m", b""), Some(Which::Metrics));
            assert_eq!(Which::of(v, b"/S", b""), None);
            // status.statistics-url is not set: no page, even for "".
            assert_eq!(Which::of(v, b"", b""), None);
        });
    }
}
