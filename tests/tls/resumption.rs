//! Session resumption: across workers (TLS 1.2 and 1.3, rustls and openssl
//! s_client), across a reload, and across a full restart with ssl.stek-file.

use super::*;

/// One connection of a resumption chain.
#[derive(Debug)]
struct Hop {
    kind: Option<HandshakeKind>,
    /// The worker process that served it (None: not found).
    worker: Option<u32>,
    /// The earlier connection whose session it offered.
    offered: Option<usize>,
}

/// The worker holding the server side of our connection from `local_port`, by the
/// socket's inode (/proc/net/tcp, then the workers' fds).
fn served_by(site: &Site, local_port: u16) -> Option<u32> {
    let local = format!("0100007F:{:04X}", site.tls_port);
    let remote = format!("0100007F:{local_port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(2) == Some(&remote.as_str()))
            .then(|| f.get(9).map(|s| s.to_string()))
            .flatten()
    })?;
    let want = format!("socket:[{inode}]");
    workers(&site.s).into_iter().find(|w| {
        std::fs::read_dir(format!("/proc/{w}/fd")).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
        })
    })
}

/// A chain of connections sharing one session store (each offering the newest
/// session it holds), one request each; `hops` grows by `n`.
struct Chain {
    store: Arc<TaggedStore>,
    cfg: Arc<rustls::ClientConfig>,
    hops: Vec<Hop>,
}

impl Chain {
    fn new(site: &Site, version: ProtocolVersion) -> Chain {
        let store = Arc::new(TaggedStore::default());
        let cfg = client_config(&ClientSpec {
            version: Some(version),
            ca: Some(&site.ca),
            store: Some(store.clone()),
            ..ClientSpec::default()
        });
        Chain {
            store,
            cfg,
            hops: Vec::new(),
        }
    }

    fn run(&mut self, site: &Site, n: usize) {
        for _ in 0..n {
            let i = self.hops.len();
            self.store.begin(i);
            let mut sess = handshake(site.tls_port, "a.test", &self.cfg)
                .unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", site.s.error_log()));
            let local_port = sess.conn.s.sock.local_addr().expect("local address").port();
            let worker = served_by(site, local_port);
            // Reading the response also takes in TLS 1.3 tickets sent after the
            // handshake.
            sess.conn
                .send(b"GET /index.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
            let r = sess.conn.response().expect("response");
            assert_eq!(r.status, 200);
            let _ = sess.conn.closed();
            self.hops.push(Hop {
                kind: sess.kind,
                worker,
                offered: self.store.offered(),
            });
        }
    }

    /// Connections that offered a session made on another worker than theirs.
    fn crossings(&self) -> usize {
        self.hops
            .iter()
            .filter(|h| {
                h.offered
                    .is_some_and(|j| h.worker.is_some() && self.hops[j].worker != h.worker)
            })
            .count()
    }

    /// Every connection that offered a session resumed it; none came from
    /// nowhere.
    fn check(&self, what: &str) {
        let trail: Vec<String> = self
            .hops
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "#{i} {:?} on {:?}, offering #{:?}",
                    h.kind.unwrap_or(HandshakeKind::Full),
                    h.worker,
                    h.offered
                )
            })
            .collect();
        let refused: Vec<String> = self
            .hops
            .iter()
            .enumerate()
            .filter(|(_, h)| h.offered.is_some() && h.kind != Some(HandshakeKind::Resumed))
            .map(|(i, h)| {
                let j = h.offered.unwrap_or(0);
                format!(
                    "#{i} on {:?} with #{j}'s session from {:?}",
                    h.worker, self.hops[j].worker
                )
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{what}: sessions offered but not resumed: {refused:?}\n{trail:#?}"
        );
        assert!(
            self.hops
                .iter()
                .all(|h| h.offered.is_some() || h.kind != Some(HandshakeKind::Resumed)),
            "{what}: resumed without a session?\n{trail:#?}"
        );
    }
}

/// Consecutive connections to two workers: every session offered resumes, also
/// on the worker that did not issue it, and the server hands out sessions so that
/// most connections can resume.
fn check_resumed_across_workers(version: ProtocolVersion) {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    assert_eq!(workers(&site.s).len(), 2, "{:?}", site.s.children());
    let mut chain = Chain::new(&site, version);
    // Which worker the kernel wakes is not ours to choose: go on (bounded) until
    // sessions have crossed between the workers a few times.
    while chain.hops.len() < 96 && (chain.hops.len() < 24 || chain.crossings() < 3) {
        chain.run(&site, 8);
    }
    let what = format!("{version:?}");
    chain.check(&what);
    assert!(
        chain.crossings() > 0,
        "{what}: every session was resumed where it was made; across workers untested: {:?}",
        chain.hops
    );
    let resumed = chain
        .hops
        .iter()
        .filter(|h| h.kind == Some(HandshakeKind::Resumed))
        .count();
    assert!(
        resumed * 2 >= chain.hops.len(),
        "{what}: only {resumed} of {} connections resumed (the server hands out too few sessions)",
        chain.hops.len()
    );
}

#[test]
fn sessions_resume_across_workers_tls13() {
    check_resumed_across_workers(ProtocolVersion::TLSv1_3);
}

#[test]
fn sessions_resume_across_workers_tls12() {
    check_resumed_across_workers(ProtocolVersion::TLSv1_2);
}

#[test]
fn sessions_resume_with_openssl_s_client() {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let mut prev = site.path(&format!("sess{flag}-0"));
        let out = s_client(
            site.tls_port,
            "a.test",
            &site.ca_file(),
            None,
            Some(&prev),
            &[flag],
        );
        assert!(out.contains(&format!("New, {version}")), "{flag}: {out}");
        assert!(out.contains(INDEX.trim()), "{flag}: no response: {out}");
        for i in 1..=10 {
            let next = site.path(&format!("sess{flag}-{i}"));
            let out = s_client(
                site.tls_port,
                "a.test",
                &site.ca_file(),
                Some(&prev),
                Some(&next),
                &[flag],
            );
            assert!(
                out.contains(&format!("Reused, {version}")),
                "{flag} connection {i} not resumed: {out}"
            );
            assert!(out.contains(INDEX.trim()), "{flag} {i}: no response: {out}");
            // A client keeps the newest session it was given (a resumed TLS 1.2
            // session may bring no new one).
            if next.exists() {
                prev = next;
            }
        }
    }
}

#[test]
fn a_session_from_before_a_reload_resumes_after_it() {
    let site = start_site(&conf("", &format!("{GLOBAL_TLS}{TWO_WORKERS}")), |_, _| {});
    started(&site.s);
    for v in [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2] {
        let mut chain = Chain::new(&site, v);
        chain.run(&site, 1);
        assert!(chain.store.held() > 0, "{v:?}: the server gave no session");
        reload(&site.s, true);
        chain.run(&site, 1);
        let after = &chain.hops[1];
        assert_eq!(after.offered, Some(0), "{v:?}");
        assert_eq!(
            after.kind,
            Some(HandshakeKind::Resumed),
            "{v:?}: a session from before the reload did not resume on the new workers \
             ({:?} then {:?})",
            chain.hops[0].worker,
            after.worker
        );
    }
    // And s_client's saved session.
    let sess = site.path("sess-before");
    let out = s_client(
        site.tls_port,
        "a.test",
        &site.ca_file(),
        None,
        Some(&sess),
        &[],
    );
    assert!(out.contains("New, TLSv1.3"), "{out}");
    reload(&site.s, true);
    let out = s_client(
        site.tls_port,
        "a.test",
        &site.ca_file(),
        Some(&sess),
        None,
        &[],
    );
    assert!(
        out.contains("Reused, TLSv1.3"),
        "not resumed after reload: {out}"
    );
}

/// lighttpd's STEK file: i32 version 0, i32 active-from and expire times (host
/// order), 16-byte key name, 32-byte HMAC key, 32-byte AES key.
fn stek_file(seed: u8) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i32;
    let mut b = Vec::with_capacity(92);
    b.extend_from_slice(&0i32.to_ne_bytes());
    b.extend_from_slice(&(now - 60).to_ne_bytes());
    b.extend_from_slice(&(now + 86_400).to_ne_bytes());
    b.extend((0..80u8).map(|i| i.wrapping_mul(37).wrapping_add(seed)));
    b
}

#[test]
fn ssl_stek_file_resumes_sessions_across_a_full_restart() {
    for (with_stek, want) in [(true, HandshakeKind::Resumed), (false, HandshakeKind::Full)] {
        let body = if with_stek {
            format!("{GLOBAL_TLS}ssl.stek-file = \"@DIR@/stek\"\n")
        } else {
            GLOBAL_TLS.to_string()
        };
        // One CA for both servers: the second one's certificate verifies too.
        let ca = Ca::new("wick test CA");
        let start = |ca: &Ca| {
            let a = ca.server(&["a.test"]);
            Server::start_with(&conf("", &body), &[], |d| {
                ca.write(&d.join("ca.pem"));
                a.write_pem(&d.join("a.pem"));
                std::fs::write(d.join("www/index.html"), INDEX).expect("index");
                std::fs::write(d.join("stek"), stek_file(7)).expect("stek");
            })
        };
        let s = start(&ca);
        let site = Site {
            tls_port: s.port,
            s,
            ca,
        };
        let mut chain = Chain::new(&site, ProtocolVersion::TLSv1_3);
        chain.run(&site, 1);
        assert!(chain.store.held() > 0, "no ticket");
        // Stopped for good; a new server (new master, new process tree) starts.
        let Site { s, ca, .. } = site;
        drop(s);
        let second = start(&ca);
        let site = Site {
            tls_port: second.port,
            s: second,
            ca,
        };
        chain.run(&site, 1);
        assert_eq!(chain.hops[1].offered, Some(0));
        assert_eq!(
            chain.hops[1].kind,
            Some(want),
            "ssl.stek-file {}: a ticket from the stopped server",
            if with_stek { "set" } else { "not set" }
        );
    }
}
