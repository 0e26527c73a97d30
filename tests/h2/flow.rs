//! The client's settings and windows shaping what the server sends: a window of
//! 0 opened later, SETTINGS_INITIAL_WINDOW_SIZE changed mid-response, a larger
//! SETTINGS_MAX_FRAME_SIZE, SETTINGS_HEADER_TABLE_SIZE 0, and a settings change
//! that would overflow a stream's window.

use super::*;
use h2c::{
    FLOW_CONTROL_ERROR, SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_FRAME_SIZE,
};

const T: Duration = Duration::from_secs(5);

#[test]
fn zero_window_then_window_update() {
    let s = start("");
    let mut c = Client::connect(s.port, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]);
    c.auto_window = false;
    c.get(1, "/index.html");
    // The head comes; no DATA while the window is shut.
    assert!(c.wait(T, |c| c.streams.get(&1).is_some_and(|s| s.status == 200)));
    c.wait(Duration::from_millis(300), |_| false);
    let st = &c.streams[&1];
    assert!(
        st.body.is_empty() && !st.ended,
        "DATA beyond a window of 0: {st:?}"
    );
    c.window_update(1, 5);
    assert!(c.wait(T, |c| c.streams[&1].body.len() == 5));
    c.wait(Duration::from_millis(200), |_| false);
    assert_eq!(
        c.streams[&1].body,
        INDEX.as_bytes()[..5],
        "more than the 5 granted"
    );
    c.window_update(1, 1000);
    let r = c.response(1);
    assert_eq!(r.text(), INDEX);
}

#[test]
fn initial_window_raised_mid_response() {
    let s = start("");
    let mut c = Client::connect(s.port, &[(SETTINGS_INITIAL_WINDOW_SIZE, 1000)]);
    c.auto_window = false;
    c.window_update(0, 16 << 20);
    c.get(1, "/big.bin");
    assert!(c.wait(T, |c| c
        .streams
        .get(&1)
        .is_some_and(|s| s.body.len() == 1000)));
    c.wait(Duration::from_millis(200), |_| false);
    assert_eq!(c.streams[&1].body.len(), 1000, "beyond the stream window");
    // RFC 9113 6.9.2: the new initial size applies to open streams by its
    // difference: 1000 -> 3,001,000 opens 3,000,000 more.
    c.settings(&[(SETTINGS_INITIAL_WINDOW_SIZE, 3_001_000)]);
    let r = c.response_within(1, Duration::from_secs(10));
    assert!(
        r.body == pattern(BIG),
        "big.bin differs ({} bytes)",
        r.body.len()
    );
    // Lowered to 0: a new stream gets its head and waits for a WINDOW_UPDATE.
    c.settings(&[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]);
    c.get(3, "/index.html");
    assert!(c.wait(T, |c| c.streams.get(&3).is_some_and(|s| s.status == 200)));
    c.window_update(3, 100);
    assert_eq!(c.response(3).text(), INDEX);
}

#[test]
fn larger_max_frame_size_is_used() {
    let s = start("");
    let mut c = Client::connect(
        s.port,
        &[
            (SETTINGS_MAX_FRAME_SIZE, 65536),
            (SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24),
        ],
    );
    c.window_update(0, 1 << 24);
    c.get(1, "/big.bin");
    let r = c.response(1);
    assert!(r.body == pattern(BIG), "big.bin differs");
    let most = r.data_frames.iter().copied().max().unwrap_or(0);
    assert!(
        (16385..=65536).contains(&most),
        "largest DATA frame {most} bytes"
    );
}

#[test]
fn header_table_size_zero_is_honoured() {
    let s = start("");
    let mut c = Client::tcp(s.port);
    // A decoder with no table: any reference to a dynamic entry fails it.
    c.dec = wick_hpack::Decoder::new(0);
    c.start(&[(SETTINGS_HEADER_TABLE_SIZE, 0)]);
    for k in 0..5u32 {
        let id = 2 * k + 1;
        c.get(
            id,
            if k % 2 == 0 {
                "/index.html"
            } else {
                "/cgi-bin/env.sh"
            },
        );
        let r = c.response(id);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-h2-test"), Some("yes"));
    }
}

#[test]
fn settings_change_that_overflows_a_stream_window() {
    let s = start("");
    let mut c = client(&s);
    // A stream waiting for its body, its send window at the maximum.
    c.request(
        1,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "10")],
        false,
    );
    c.window_update(1, 0x7fff_ffff - 65535);
    c.wait(Duration::from_millis(200), |_| false);
    assert!(c.goaway.is_none() && c.streams.get(&1).is_none_or(|s| s.reset.is_none()));
    // One more byte through SETTINGS_INITIAL_WINDOW_SIZE: a connection error
    // (RFC 9113 6.9.2), said with GOAWAY.
    c.settings(&[(SETTINGS_INITIAL_WINDOW_SIZE, 65536)]);
    let g = c.await_goaway(T);
    assert_eq!(g.map(|g| g.1), Some(FLOW_CONTROL_ERROR), "{g:?}");
    assert!(c.closes(T));
}
