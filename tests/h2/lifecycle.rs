//! Graceful restart (SIGUSR1) and graceful shutdown (SIGINT) with an HTTP/2
//! connection under way: GOAWAY NO_ERROR, the open stream answered, then the
//! end; an idle connection's and a silent stream's time limits.

use super::*;
use nix::sys::signal::Signal;

/// Three seconds' wait: the drain begins while it runs.
const SLOWER_SH: &str = "sleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslower done\\n'\n";

fn start_slower() -> Server {
    Server::start_with(&conf(""), &[], |d| {
        files(d);
        let p = d.join("www/cgi-bin/slower.sh");
        std::fs::write(&p, SLOWER_SH).expect("script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    })
}

/// A stream on slower.sh, then `sig`: GOAWAY (NO_ERROR, last stream 1) while
/// the stream runs, its answer, then the connection's end; a stream opened
/// after the GOAWAY is not served.
fn drain_with_a_stream_open(s: &Server, sig: Signal) {
    let mut c = client(s);
    c.get(1, "/index.html");
    assert_eq!(c.response(1).status, 200);
    c.get(3, "/cgi-bin/slower.sh");
    std::thread::sleep(Duration::from_millis(300));
    s.signal(sig);
    let g = c.await_goaway(Duration::from_secs(10));
    assert_eq!(g, Some((3, h2c::NO_ERROR)), "{}", s.error_log());
    assert!(
        !c.streams.get(&3).is_some_and(|st| st.finished()),
        "the stream ended before the GOAWAY came"
    );
    c.get(5, "/index.html");
    let r = c.response(3);
    assert_eq!((r.status, r.text().as_str()), (200, "slower done\n"));
    assert!(
        c.closes(Duration::from_secs(5)),
        "connection open after the drain"
    );
    assert!(
        c.streams.get(&5).is_none_or(|st| st.status == 0),
        "a stream opened after GOAWAY was served"
    );
}

#[test]
fn graceful_restart_answers_the_open_stream() {
    let s = start_slower();
    started(&s);
    let before = workers(&s);
    drain_with_a_stream_open(&s, Signal::SIGUSR1);
    // The new generation serves h2.
    assert!(wait_until(Duration::from_secs(10), || {
        let now = workers(&s);
        !now.is_empty() && now.iter().all(|p| !before.contains(p))
    }));
    let mut c = client(&s);
    c.get(1, "/index.html");
    assert_eq!(c.response(1).text(), INDEX);
}

#[test]
fn graceful_shutdown_answers_the_open_stream() {
    let mut s = start_slower();
    started(&s);
    drain_with_a_stream_open(&s, Signal::SIGINT);
    let st = s.wait_exit(Duration::from_secs(10));
    assert!(st.is_some_and(|st| st.success()), "master exit: {st:?}");
}

#[test]
fn idle_connection_gets_goaway_then_closes() {
    let s = Server::start_with(&conf("server.max-keep-alive-idle = 1\n"), &[], files);
    let mut c = client(&s);
    c.get(1, "/index.html");
    assert_eq!(c.response(1).status, 200);
    let t = Instant::now();
    let g = c.await_goaway(Duration::from_secs(6));
    assert_eq!(g, Some((1, h2c::NO_ERROR)));
    assert!(c.closes(Duration::from_secs(3)));
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_stream_waiting_for_its_body_times_out_alone() {
    let s = Server::start_with(&conf("server.max-read-idle = 1\n"), &[], files);
    let mut c = client(&s);
    c.request(
        1,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "10")],
        false,
    );
    let r = c.response_within(1, Duration::from_secs(6));
    assert!(
        r.status == 408 || r.reset.is_some(),
        "a stream whose body never came: {r:?}"
    );
    c.get(3, "/index.html");
    assert_eq!(c.response(3).text(), INDEX);
    assert!(c.goaway.is_none(), "{:?}", c.goaway);
}
