//! The backends of one `*.server` value in one worker: their load (requests under
//! way), the time a failed one is skipped until, and the choice between them as
//! `*.balance` says. State is per worker, as lighttpd's is per process.

use super::config::{Host, Table};
use std::cell::Cell;

/// `*.balance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// fair, least-connection (lighttpd's default): the host with the fewest
    /// requests under way, the first of equals.
    LeastConnection,
    RoundRobin,
    /// The same URL path (and Host) to the same backend.
    Hash,
    /// The same client address to the same backend.
    Sticky,
}

impl Balance {
    pub fn parse(s: &str) -> Result<Balance, String> {
        Ok(match s {
            "" | "fair" | "least-connection" => Balance::LeastConnection,
            "round-robin" => Balance::RoundRobin,
            "hash" => Balance::Hash,
            "sticky" => Balance::Sticky,
            o => {
                return Err(format!(
                    "balance \"{o}\": expected fair, least-connection, round-robin, hash or sticky"
                ))
            }
        })
    }
}

/// A host's state in this worker.
#[derive(Debug, Default)]
struct State {
    load: Cell<u32>,
    /// Monotonic second before which the host is skipped (a failed connect).
    disabled_until: Cell<u64>,
}

/// One parsed value with its hosts' states.
#[derive(Debug)]
pub struct Pool {
    pub table: Table,
    states: Vec<State>,
    /// Round-robin: the host chosen last, per extension.
    last: Vec<Cell<usize>>,
    /// Each host's entry in mod_status's counters (None: not counting).
    counted: Vec<Option<&'static Counted>>,
}

type Counted = wick_proto::counters::Backend;

/// A host chosen for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Index into `table.exts`.
    pub ext: usize,
    /// Index into `table.hosts`.
    pub host: usize,
}

impl Pool {
    pub fn new(table: Table) -> Pool {
        Pool {
            states: table.hosts.iter().map(|_| State::default()).collect(),
            last: table.exts.iter().map(|_| Cell::new(usize::MAX)).collect(),
            counted: table
                .hosts
                .iter()
                .map(|h| crate::mods::status::count::backend(&h.name))
                .collect(),
            table,
        }
    }

    fn counted(&self, host: usize) -> Option<&'static Counted> {
        self.counted.get(host).copied().flatten()
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.table.hosts[i]
    }

    /// A live host of extension `ext` that is not in `tried`, as `balance` chooses;
    /// None when every one is disabled or tried. `key` feeds hash and sticky.
    pub fn pick(
        &self,
        ext: usize,
        balance: Balance,
        key: &[u8],
        now: u64,
        tried: &[usize],
    ) -> Option<Pick> {
        let hosts = &self.table.exts.get(ext)?.hosts;
        let alive = |&h: &usize| self.states[h].disabled_until.get() <= now && !tried.contains(&h);
        let n = hosts.len();
        let chosen = match balance {
            Balance::LeastConnection => hosts
                .iter()
                .copied()
                .filter(alive)
                .min_by_key(|&h| self.states[h].load.get()),
            Balance::RoundRobin => {
                let last = self.last[ext].get();
                let start = if last == usize::MAX { 0 } else { last + 1 };
                let found = (0..n).map(|i| (start + i) % n).find(|&i| alive(&hosts[i]));
                if let Some(i) = found {
                    self.last[ext].set(i);
                }
                found.map(|i| hosts[i])
            }
            Balance::Hash | Balance::Sticky => {
                let start = (fnv(key) % n as u64) as usize;
                (0..n).map(|i| hosts[(start + i) % n]).find(alive)
            }
        }?;
        Some(Pick { ext, host: chosen })
    }

    /// A request is now under way on `host`.
    pub fn begin(&self, host: usize) {
        let s = &self.states[host];
        s.load.set(s.load.get() + 1);
        if let Some(c) = self.counted(host) {
            c.requests.add(1);
            c.load.set(u64::from(s.load.get()));
        }
    }

    /// A request on `host` ended.
    pub fn end(&self, host: usize) {
        let s = &self.states[host];
        s.load.set(s.load.get().saturating_sub(1));
        if let Some(c) = self.counted(host) {
            c.load.set(u64::from(s.load.get()));
        }
    }

    /// `host` answered a request whole, `since` its connect began (mod_status).
    pub fn answered(&self, host: usize, since: Option<std::time::Instant>) {
        if let (Some(c), Some(t)) = (self.counted(host), since) {
            c.latency_us.add(t.elapsed().as_micros() as u64);
            c.done.add(1);
        }
    }

    /// A connect to `host` failed: skipped for its disable-time.
    pub fn disable(&self, host: usize, now: u64) {
        let t = self.table.hosts[host].disable_time;
        self.states[host].disabled_until.set(now + t.max(1));
        if let Some(c) = self.counted(host) {
            c.failures.add(1);
            c.disabled_until.set(now + t.max(1));
        }
    }

    #[cfg(test)]
    fn load(&self, host: usize) -> u32 {
        self.states[host].load.get()
    }
}

/// FNV-1a: a stable spread of hash/sticky keys over the hosts.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_conf::Value;

    fn pool(ports: &[i64]) -> Pool {
        let hosts = Value::Array(
            ports
                .iter()
                .map(|&p| {
                    (
                        None,
                        Value::Array(vec![(Some("port".into()), Value::Int(p))]),
                    )
                })
                .collect(),
        );
        let v = Value::Array(vec![(Some(".php".into()), hosts)]);
        Pool::new(super::super::parse(&v, "t").expect("ok"))
    }

    #[test]
    fn least_connection_and_disable() {
        let p = pool(&[1, 2, 3]);
        let b = Balance::LeastConnection;
        assert_eq!(p.pick(0, b, b"", 10, &[]).expect("ok").host, 0);
        p.begin(0);
        assert_eq!(p.pick(0, b, b"", 10, &[]).expect("ok").host, 1);
        p.begin(1);
        p.disable(2, 10);
        assert_eq!(p.pick(0, b, b"", 10, &[]).expect("ok").host, 0);
        assert_eq!(p.pick(0, b, b"", 11, &[]).expect("ok").host, 2);
        p.end(0);
        assert_eq!(p.load(0), 0);
        assert_eq!(p.pick(0, b, b"", 10, &[0, 1]), None);
    }

    #[test]
    fn round_robin_and_hash() {
        let p = pool(&[1, 2, 3]);
        let b = Balance::RoundRobin;
        let seq: Vec<usize> = (0..4)
            .map(|_| p.pick(0, b, b"", 0, &[]).expect("ok").host)
            .collect();
        assert_eq!(seq, vec![0, 1, 2, 0]);
        p.disable(1, 0);
        assert_eq!(p.pick(0, b, b"", 0, &[]).expect("ok").host, 2);
        let h1 = p
            .pick(0, Balance::Hash, b"/a.php", 5, &[])
            .expect("ok")
            .host;
        assert_eq!(
            p.pick(0, Balance::Hash, b"/a.php", 5, &[])
                .expect("ok")
                .host,
            h1
        );
        assert_eq!(
            p.pick(0, Balance::Hash, b"/a.php", 5, &[h1])
                .map(|p| p.host == h1),
            Some(false)
        );
    }
}
