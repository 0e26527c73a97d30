//! The flood defences (man/wickd.conf.5, HTTP/2): each attack ends with GOAWAY
//! ENHANCE_YOUR_CALM or the documented answer, well before it is over.

use super::*;
use h2c::{
    frame_bytes, indexed, literal, literal_indexed, CONTINUATION, DATA, END_HEADERS, END_STREAM,
    ENHANCE_YOUR_CALM, HEADERS, PING, REFUSED_STREAM, RST_STREAM, SETTINGS,
    SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_UPDATE,
};

const T: Duration = Duration::from_secs(5);

/// A request that stays open: a POST whose announced body never comes (its
/// answer waits for the body), as HPACK literals (no table state).
fn open_post(id: u32) -> Vec<u8> {
    let b = literal(&h2c::request_fields(
        "POST",
        "/index.html",
        &[("content-length", "10")],
    ));
    frame_bytes(HEADERS, END_HEADERS, id, &b)
}

/// Write `frames` in slices until the server stops reading or closes (10 s
/// bound); then its GOAWAY code, and the connection must end.
fn flood(c: &mut Client, frames: &[u8]) -> Option<(u32, u32)> {
    let bound = Bound::new(Duration::from_secs(10));
    for slice in frames.chunks(16 << 10) {
        if bound.over() || !c.try_send(slice) {
            break;
        }
    }
    let g = c.await_goaway(T);
    assert!(c.closes(T), "connection open after {g:?}");
    g
}

#[test]
fn rapid_reset() {
    let s = start("");
    let mut c = client(&s);
    let mut frames = Vec::new();
    for k in 0..1000u32 {
        let id = 2 * k + 1;
        frames.extend(open_post(id));
        frames.extend(frame_bytes(RST_STREAM, 0, id, &h2c::CANCEL.to_be_bytes()));
    }
    let g = flood(&mut c, &frames);
    let (last, code) = g.expect("no GOAWAY after 1000 reset streams");
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(last < 1999, "all 1000 streams were taken (last {last})");
    // Honest clients are not hurt: a new connection serves.
    let mut c = client(&s);
    c.get(1, "/index.html");
    assert_eq!(c.response(1).text(), INDEX);
}

#[test]
fn completed_responses_earn_their_resets() {
    // Resets are counted against completed responses: a client that cancels
    // as many streams as it has had answered is not cut off.
    let s = start("");
    let mut c = client(&s);
    let mut id = 1;
    for _ in 0..150 {
        c.get(id, "/index.html");
        id += 2;
    }
    assert!(c.wait(T, |c| c.streams.values().filter(|s| s.ended).count() == 150));
    let mut frames = Vec::new();
    for _ in 0..140 {
        frames.extend(open_post(id));
        frames.extend(frame_bytes(RST_STREAM, 0, id, &h2c::CANCEL.to_be_bytes()));
        id += 2;
    }
    c.send(&frames);
    c.get(id, "/index.html");
    let r = c.response(id);
    assert_eq!((r.status, c.goaway), (200, None));
}

#[test]
fn made_you_reset() {
    // Streams the server must reset itself for the client's invalid frames
    // (WINDOW_UPDATE of 0 on an open stream) count as resets too.
    let s = start("");
    let mut c = client(&s);
    let mut frames = Vec::new();
    for k in 0..1000u32 {
        let id = 2 * k + 1;
        frames.extend(open_post(id));
        frames.extend(frame_bytes(WINDOW_UPDATE, 0, id, &0u32.to_be_bytes()));
    }
    let g = flood(&mut c, &frames);
    let (last, code) = g.expect("no GOAWAY after 1000 streams reset by the server");
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(last < 1999, "all 1000 streams were taken (last {last})");
    let resets = c.streams.values().filter(|s| s.reset.is_some()).count();
    assert!(
        (100..1000).contains(&resets),
        "{resets} RST_STREAM before GOAWAY"
    );
}

#[test]
fn continuation_flood_large_frames() {
    let s = start("");
    let mut c = client(&s);
    let head = literal(&h2c::request_fields("GET", "/index.html", &[]));
    let mut frames = frame_bytes(HEADERS, END_STREAM, 1, &head);
    // Never END_HEADERS: 1,000 full CONTINUATIONs (16 MiB) if nobody stops it.
    let junk = vec![0x40u8; 16384];
    for _ in 0..1000 {
        frames.extend(frame_bytes(CONTINUATION, 0, 1, &junk));
    }
    let g = flood(&mut c, &frames);
    assert_eq!(g.map(|g| g.1), Some(ENHANCE_YOUR_CALM), "{g:?}");
}

#[test]
fn continuation_flood_tiny_frames() {
    let s = start("");
    let mut c = client(&s);
    let head = literal(&h2c::request_fields("GET", "/index.html", &[]));
    let mut frames = frame_bytes(HEADERS, END_STREAM, 1, &head[..1]);
    for _ in 0..10_000 {
        frames.extend(frame_bytes(CONTINUATION, 0, 1, &[]));
    }
    let g = flood(&mut c, &frames);
    assert_eq!(g.map(|g| g.1), Some(ENHANCE_YOUR_CALM), "{g:?}");
}

#[test]
fn settings_flood() {
    let s = start("");
    let mut c = client(&s);
    let mut frames = Vec::new();
    for _ in 0..5000 {
        frames.extend(frame_bytes(SETTINGS, 0, 0, &[]));
    }
    let g = flood(&mut c, &frames);
    assert_eq!(g.map(|g| g.1), Some(ENHANCE_YOUR_CALM), "{g:?}");
}

#[test]
fn ping_flood() {
    let s = start("");
    let mut c = client(&s);
    let mut frames = Vec::new();
    for k in 0..5000u64 {
        frames.extend(frame_bytes(PING, 0, 0, &k.to_be_bytes()));
    }
    let g = flood(&mut c, &frames);
    assert_eq!(g.map(|g| g.1), Some(ENHANCE_YOUR_CALM), "{g:?}");
    let acks = c.ping_acks.len();
    assert!((1..5000).contains(&acks), "{acks} PINGs acknowledged");
}

#[test]
fn a_few_pings_a_second_are_fine() {
    let s = start("");
    let mut c = client(&s);
    for k in 0..50u64 {
        c.ping(k.to_be_bytes());
    }
    assert!(
        c.wait(T, |c| c.ping_acks.len() == 50),
        "{}",
        c.ping_acks.len()
    );
    c.get(1, "/index.html");
    assert_eq!((c.response(1).status, c.goaway), (200, None));
}

#[test]
fn empty_data_flood() {
    let s = start("");
    let mut c = client(&s);
    let mut frames = open_post(1);
    for _ in 0..5000 {
        frames.extend(frame_bytes(DATA, 0, 1, &[]));
    }
    let g = flood(&mut c, &frames);
    assert_eq!(g.map(|g| g.1), Some(ENHANCE_YOUR_CALM), "{g:?}");
}

#[test]
fn hpack_bomb_gets_431_and_the_connection_goes_on() {
    let s = start("");
    let mut c = client(&s);
    // One entry of ~4 KiB in the server's table, then referenced 40 times:
    // a 4 KiB block that decodes to 160 KiB.
    let mut b = literal(&h2c::request_fields("GET", "/index.html", &[]));
    literal_indexed(&mut b, "x-bomb", &"a".repeat(4000));
    for _ in 0..40 {
        indexed(&mut b, 62);
    }
    assert!(b.len() < 4200);
    c.headers(1, &b, true);
    let r = c.response(1);
    assert_eq!(r.status, 431, "{r:?}");
    assert!(r.body.is_empty());
    // The table stayed in step: entry 62 is still x-bomb, and a head that uses
    // it once is within the limit.
    let mut b = literal(&h2c::request_fields("GET", "/cgi-bin/env.sh", &[]));
    indexed(&mut b, 62);
    c.headers(3, &b, true);
    let r = c.response(3);
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(
        env_map(&r.body).get("HTTP_X_BOMB").map(String::len),
        Some(4000)
    );
    assert!(c.goaway.is_none(), "{:?}", c.goaway);
}

#[test]
fn ninth_concurrent_stream_is_refused() {
    let s = start("");
    let mut c = client(&s);
    let mut frames = Vec::new();
    for k in 0..9u32 {
        let b = literal(&h2c::request_fields("GET", "/cgi-bin/slow.sh", &[]));
        frames.extend(frame_bytes(
            HEADERS,
            END_HEADERS | END_STREAM,
            2 * k + 1,
            &b,
        ));
    }
    c.send(&frames);
    assert_eq!(c.await_reset(17, T), Some(REFUSED_STREAM));
    for k in 0..8u32 {
        let r = c.response(2 * k + 1);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "slow done\n"),
            "stream {}",
            2 * k + 1
        );
    }
    // With those done, a new stream is taken.
    c.get(19, "/cgi-bin/slow.sh");
    assert_eq!(c.response(19).status, 200);
}

/// A client that opens every window, asks for `path` again and again for 3 s
/// and never reads: the worker's VmRSS must stay within 32 MiB of what it was.
fn never_reads(s: &Server, path: &str) {
    started(s);
    let pids = workers(s);
    assert_eq!(pids.len(), 1, "one worker expected: {pids:?}");
    let pid = pids[0];
    // Warm the worker up (its buffers, the file in the stat cache).
    let mut warm = client(s);
    warm.get(1, "/big.bin");
    assert_eq!(warm.response(1).body.len(), BIG);
    drop(warm);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid).expect("worker VmRSS");

    let mut c = Client::connect(s.port, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0x7fff_ffff)]);
    c.window_update(0, 0x7fff_ffff - 65535);
    c.s.set_write_timeout(Some(Duration::from_millis(50)))
        .expect("write timeout");
    let mut peak = before;
    let mut id = 1u32;
    let mut sent = 0;
    let bound = Bound::new(Duration::from_secs(3));
    while !bound.over() && id < 20_000 {
        let b = literal(&h2c::request_fields("GET", path, &[]));
        // A write that times out may leave a frame cut: the server is not
        // reading any more, and from then on only memory is watched.
        if c.try_send(&frame_bytes(HEADERS, END_HEADERS | END_STREAM, id, &b)) {
            sent += 1;
            id += 2;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(1));
    }
    let grown = peak.saturating_sub(before);
    eprintln!(
        "{path}: worker VmRSS {before} KiB, peak {peak} KiB (+{grown} KiB); {sent} requests sent"
    );
    assert!(grown < 32 * 1024, "{path}: the worker grew by {grown} KiB");
    assert!(sent >= 8, "only {sent} requests went out");
}

#[test]
fn a_client_that_never_reads_a_big_file_costs_bounded_memory() {
    let s = start("");
    never_reads(&s, "/big.bin");
}

#[test]
fn a_client_that_never_reads_a_big_cgi_answer_costs_bounded_memory() {
    // 64 MiB from each script: what a stream holds of it is bounded, not the
    // script's output.
    let s = Server::start_with(&conf(""), &[], |d| {
        files(d);
        let p = d.join("www/cgi-bin/flood.sh");
        std::fs::write(
            &p,
            "printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nexec head -c 67108864 /dev/zero\n",
        )
        .expect("script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    });
    never_reads(&s, "/cgi-bin/flood.sh");
}
