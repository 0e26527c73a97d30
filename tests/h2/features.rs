//! Every part of the request path, per stream: static files (whole, ranges,
//! conditionals, HEAD), error pages and handlers, dir-listing, mod_redirect and
//! mod_rewrite, mod_setenv, CGI (its environment, request bodies with and
//! without content-length, trailers), flow control with a small client window,
//! interleaved streams, and the access log.

use super::*;
use h2c::{END_STREAM, SETTINGS_INITIAL_WINDOW_SIZE};

#[test]
fn static_file_whole_and_big() {
    let s = start("");
    let mut c = client(&s);
    c.get(1, "/index.html");
    let r = c.response(1);
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.header("etag").is_some(), "{:?}", r.headers);
    // No connection-specific field reaches an HTTP/2 response.
    for name in ["connection", "keep-alive", "transfer-encoding"] {
        assert!(r.header(name).is_none(), "{name} in {:?}", r.headers);
    }
    c.get(3, "/big.bin");
    let r = c.response(3);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(BIG.to_string().as_str()));
    assert!(
        r.body == pattern(BIG),
        "big.bin differs ({} bytes)",
        r.body.len()
    );
    assert!(
        r.data_frames.iter().all(|&n| n <= 16384),
        "a DATA frame above SETTINGS_MAX_FRAME_SIZE"
    );
}

#[test]
fn range_if_none_match_and_head() {
    let s = start("");
    let mut c = client(&s);
    c.request(1, "GET", "/big.bin", &[("range", "bytes=10-19")], true);
    let r = c.response(1);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, pattern(BIG)[10..20]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{BIG}").as_str())
    );

    c.get(3, "/index.html");
    let etag = c.response(3).header("etag").expect("etag").to_string();
    c.request(5, "GET", "/index.html", &[("if-none-match", &etag)], true);
    let r = c.response(5);
    assert_eq!(r.status, 304);
    assert!(
        r.ended && r.body.is_empty() && r.data_frames.is_empty(),
        "{r:?}"
    );

    c.request(7, "HEAD", "/index.html", &[], true);
    let r = c.response(7);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("14"));
    assert!(
        r.ended && r.data_frames.is_empty(),
        "HEAD got a body: {r:?}"
    );
}

#[test]
fn not_found_error_file_and_error_handler() {
    let s = start("");
    let mut c = client(&s);
    c.get(1, "/missing");
    let r = c.response(1);
    assert_eq!(r.status, 404);
    assert!(r.text().contains("404"), "{}", r.text());
    c.get(3, "/pages/missing");
    let r = c.response(3);
    assert_eq!((r.status, r.text().as_str()), (404, "custom not found\n"));
    c.get(5, "/h404/missing");
    let r = c.response(5);
    assert_eq!((r.status, r.text().as_str()), (200, "handler page\n"));
}

#[test]
fn dir_listing_redirect_rewrite_and_setenv() {
    let s = start("");
    let mut c = client(&s);
    c.get(1, "/list/");
    let r = c.response(1);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("alpha.txt") && r.text().contains("beta.txt"),
        "{}",
        r.text()
    );
    c.get(3, "/old/page.txt");
    let r = c.response(3);
    assert_eq!(r.status, 301);
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with("/new/page.txt")),
        "{:?}",
        r.headers
    );
    c.get(5, "/alias/new/page.txt");
    let r = c.response(5);
    assert_eq!((r.status, r.text().as_str()), (200, "new page\n"));
    assert_eq!(r.header("x-h2-test"), Some("yes"));
}

#[test]
fn cgi_sees_http2() {
    let s = start("");
    let mut c = client(&s);
    c.request(
        1,
        "GET",
        "/cgi-bin/env.sh/more?q=1",
        &[("x-thing", "yes")],
        true,
    );
    let r = c.response(1);
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    for (k, v) in [
        ("SERVER_PROTOCOL", "HTTP/2.0"),
        ("REQUEST_METHOD", "GET"),
        ("PATH_INFO", "/more"),
        ("QUERY_STRING", "q=1"),
        ("HTTP_X_THING", "yes"),
        ("HTTP_HOST", "127.0.0.1"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k} in {env:?}");
    }
    // The script's head goes through the response hooks too.
    assert_eq!(r.header("x-h2-test"), Some("yes"));
}

/// POST `body` to echo.sh on `id`, in DATA frames of 16 KiB, with or without a
/// content-length; the stream's answer.
fn post_echo(c: &mut Client, id: u32, body: &[u8], with_length: bool) -> h2c::Stream {
    let len = body.len().to_string();
    let extra: Vec<(&str, &str)> = if with_length {
        vec![("content-length", &len)]
    } else {
        vec![]
    };
    c.request(id, "POST", "/cgi-bin/echo.sh", &extra, false);
    let chunks: Vec<&[u8]> = body.chunks(16384).collect();
    for (i, ch) in chunks.iter().enumerate() {
        c.data(id, ch, i + 1 == chunks.len());
    }
    c.response(id)
}

#[test]
fn post_bodies_to_cgi_with_and_without_content_length() {
    let s = start("");
    let mut c = client(&s);
    // Under the stream window (64 KiB): no WINDOW_UPDATE needed to send it.
    let body = pattern(60_000);
    let r = post_echo(&mut c, 1, &body, true);
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.header("x-content-length"), Some("60000"));
    assert!(
        r.body == body,
        "echoed body differs ({} bytes)",
        r.body.len()
    );
    // Without content-length: read as a chunked body, the script gets its length.
    let r = post_echo(&mut c, 3, &body, false);
    assert_eq!(r.status, 200, "{}", s.error_log());
    assert_eq!(r.header("x-content-length"), Some("60000"));
    assert!(
        r.body == body,
        "echoed body differs ({} bytes)",
        r.body.len()
    );
    // An empty POST.
    c.request(5, "POST", "/cgi-bin/echo.sh", &[], true);
    let r = c.response(5);
    assert_eq!((r.status, r.header("x-content-length")), (200, Some("0")));

    // Bigger than any window: curl follows the server's WINDOW_UPDATEs.
    if have("curl", "post_bodies (curl part)") {
        let big = pattern(700_000);
        let f = s.dir.path().join("upload.bin");
        std::fs::write(&f, &big).expect("upload file");
        let arg = format!("@{}", f.display());
        let r = curl(
            s.dir.path(),
            &s.url("/cgi-bin/echo.sh"),
            &["--http2-prior-knowledge", "--data-binary", &arg],
        );
        assert_eq!((r.version.as_str(), r.status), ("2", 200), "{r:?}");
        assert!(
            r.body == big,
            "curl's upload echoed differs ({} bytes)",
            r.body.len()
        );
        let r = curl(
            s.dir.path(),
            &s.url("/cgi-bin/echo.sh"),
            &[
                "--http2-prior-knowledge",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &arg,
            ],
        );
        assert_eq!((r.version.as_str(), r.status), ("2", 200), "{r:?}");
        assert!(
            r.body == big,
            "chunked upload echoed differs ({} bytes)",
            r.body.len()
        );
    }
}

#[test]
fn trailers_reach_the_cgi() {
    let s = start("");
    let mut c = client(&s);
    c.request(
        1,
        "POST",
        "/cgi-bin/env.sh",
        &[("content-type", "text/plain")],
        false,
    );
    c.data(1, b"abc", false);
    let t = h2c::literal(&[("x-trailer-test", "sum-42")]);
    c.frame(h2c::HEADERS, h2c::END_HEADERS | END_STREAM, 1, &t);
    let r = c.response(1);
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    assert_eq!(
        env.get("HTTP_X_TRAILER_TEST").map(String::as_str),
        Some("sum-42"),
        "{env:?}"
    );
    assert_eq!(env.get("CONTENT_LENGTH").map(String::as_str), Some("3"));
}

#[test]
fn big_file_through_a_1024_byte_window() {
    let s = start("");
    let mut c = Client::connect(s.port, &[(SETTINGS_INITIAL_WINDOW_SIZE, 1024)]);
    // auto_window grants each DATA frame back as it is read.
    c.get(1, "/big.bin");
    let r = c.response_within(1, Duration::from_secs(30));
    assert_eq!(r.status, 200);
    assert!(
        r.body == pattern(BIG),
        "big.bin differs ({} bytes)",
        r.body.len()
    );
    let most = r.data_frames.iter().copied().max().unwrap_or(0);
    assert!(
        most <= 1024,
        "a DATA frame of {most} bytes beyond the 1024-byte window"
    );
}

#[test]
fn concurrent_streams_interleave() {
    let s = start("");
    let mut c = client(&s);
    let ids = [1u32, 3, 5, 7];
    for id in ids {
        c.get(id, "/big.bin");
    }
    c.get(9, "/index.html");
    let want = pattern(BIG);
    for id in ids {
        let r = c.response_within(id, Duration::from_secs(30));
        assert_eq!(r.status, 200);
        assert!(r.body == want, "stream {id}: big.bin differs");
    }
    assert_eq!(c.response(9).text(), INDEX);
    // The streams took turns: DATA of one between DATA of another.
    let switches = c.data_order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        switches >= 8,
        "DATA frames not interleaved ({switches} switches over {} frames)",
        c.data_order.len()
    );
    // The small file did not wait for the big ones to end.
    let first_small = c.data_order.iter().position(|&i| i == 9);
    let last_big = c.data_order.iter().rposition(|&i| i != 9);
    assert!(
        first_small < last_big,
        "index.html came after all of big.bin"
    );
}

#[test]
fn access_log_says_http2() {
    let s = start("");
    let mut c = client(&s);
    c.get(1, "/index.html");
    assert_eq!(c.response(1).status, 200);
    c.get(3, "/cgi-bin/env.sh");
    assert_eq!(c.response(3).status, 200);
    let lines = access_lines(&s, 2);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /index.html HTTP/2.0\" 200 14")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /cgi-bin/env.sh HTTP/2.0\" 200")),
        "{lines:?}"
    );
}

#[test]
fn cookies_joined_and_host_without_authority() {
    let s = start("");
    let mut c = client(&s);
    let b = c.encoded(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/cgi-bin/env.sh"),
        ("host", "named.test"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
        ("cookie", "c=3"),
    ]);
    c.headers(1, &b, true);
    let r = c.response(1);
    assert_eq!(r.status, 200, "{}", s.error_log());
    let env = env_map(&r.body);
    assert_eq!(
        env.get("HTTP_COOKIE").map(String::as_str),
        Some("a=1; b=2; c=3")
    );
    assert_eq!(env.get("HTTP_HOST").map(String::as_str), Some("named.test"));
}

#[test]
fn expect_100_continue_gets_no_interim_head() {
    let s = start("");
    let mut c = client(&s);
    c.request(
        1,
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "5"), ("expect", "100-continue")],
        false,
    );
    c.data(1, b"hello", true);
    let r = c.response(1);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{r:?}");
    assert!(r.trailers.is_empty(), "a second head: {:?}", r.trailers);
}

#[test]
fn cgi_status_204_and_a_head_bigger_than_a_frame() {
    let s = Server::start_with(&conf(""), &[], |d| {
        files(d);
        for (name, body) in [
            ("nocontent.sh", "printf 'Status: 204\\r\\nX-A: b\\r\\n\\r\\n'\n"),
            (
                "bighead.sh",
                // Three fields of 7,000 bytes: the head needs CONTINUATION frames.
                "v=$(printf '%7000s' '' | tr ' ' v)\n\
                     printf 'Content-Type: text/plain\\r\\nX-1: %s\\r\\nX-2: %s\\r\\nX-3: %s\\r\\n\\r\\nbody\\n' \"$v\" \"$v\" \"$v\"\n",
            ),
        ] {
            let p = d.join("www/cgi-bin").join(name);
            std::fs::write(&p, body).expect("script");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    });
    let mut c = client(&s);
    c.get(1, "/cgi-bin/nocontent.sh");
    let r = c.response(1);
    assert_eq!((r.status, r.header("x-a")), (204, Some("b")));
    // Ended by the HEADERS or an empty DATA frame (the script's end comes after
    // its head): no content either way.
    assert!(r.ended && r.data_frames.iter().all(|&n| n == 0), "{r:?}");
    c.get(3, "/cgi-bin/bighead.sh");
    let r = c.response(3);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "body\n"),
        "{}",
        s.error_log()
    );
    for n in ["x-1", "x-2", "x-3"] {
        assert_eq!(r.header(n).map(str::len), Some(7000), "{n}");
    }
}

#[test]
fn many_streams_in_sequence_with_a_busy_hpack_table() {
    // 400 requests on one connection, each with a field of its own: the
    // server's table evicts and indexes all the time, in step with ours.
    let s = start("");
    let mut c = client(&s);
    for k in 0..400u32 {
        let id = 2 * k + 1;
        let v = format!("value-{k}-{}", "x".repeat((k % 50) as usize * 20));
        let path = match k % 3 {
            0 => "/index.html",
            1 => "/new/page.txt",
            _ => "/missing",
        };
        c.request(
            id,
            "GET",
            path,
            &[("x-n", &v), ("user-agent", "h2test")],
            true,
        );
        let r = c.response(id);
        let want = if k % 3 == 2 { 404 } else { 200 };
        assert_eq!(r.status, want, "request {k}");
    }
    assert!(c.goaway.is_none());
}

#[test]
fn reset_by_the_client_mid_response() {
    let s = start("");
    let mut c = client(&s);
    c.get(1, "/big.bin");
    assert!(c.wait(Duration::from_secs(5), |c| c
        .streams
        .get(&1)
        .is_some_and(|s| !s.body.is_empty())));
    c.rst(1, h2c::CANCEL);
    c.get(3, "/cgi-bin/slow.sh");
    c.rst(3, h2c::CANCEL);
    c.get(5, "/index.html");
    let r = c.response(5);
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    c.get(7, "/big.bin");
    let r = c.response(7);
    assert!(r.body == pattern(BIG), "big.bin after a reset differs");
    assert!(
        c.streams.get(&3).is_none_or(|s| s.status == 0),
        "reset CGI answered"
    );
}

#[test]
fn padded_and_prioritized_frames() {
    let s = start("");
    let mut c = client(&s);
    let block = c.encoded(&h2c::request_fields(
        "POST",
        "/cgi-bin/echo.sh",
        &[("content-length", "11")],
    ));
    // HEADERS: pad length 3, a priority (stream 0, weight 16), the block, padding.
    let mut p = vec![3u8, 0, 0, 0, 0, 15];
    p.extend_from_slice(&block);
    p.extend_from_slice(&[0, 0, 0]);
    c.frame(
        h2c::HEADERS,
        h2c::END_HEADERS | h2c::PADDED | h2c::PRIORITY_FLAG,
        1,
        &p,
    );
    // A PRIORITY frame for it too.
    c.frame(h2c::PRIORITY, 0, 1, &[0, 0, 0, 0, 200]);
    // DATA padded by 200 bytes, then by 0.
    let mut d = vec![200u8];
    d.extend_from_slice(b"hello ");
    d.extend_from_slice(&[0u8; 200]);
    c.frame(h2c::DATA, h2c::PADDED, 1, &d);
    c.frame(h2c::DATA, h2c::PADDED | END_STREAM, 1, b"\x00world");
    let r = c.response(1);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "hello world"),
        "{}",
        s.error_log()
    );
}

#[test]
fn goaway_from_the_client_lets_open_streams_finish() {
    let s = start("");
    let mut c = client(&s);
    c.get(1, "/cgi-bin/slow.sh");
    let mut p = 0u32.to_be_bytes().to_vec();
    p.extend_from_slice(&h2c::NO_ERROR.to_be_bytes());
    c.frame(h2c::GOAWAY, 0, 0, &p);
    let r = c.response(1);
    assert_eq!((r.status, r.text().as_str()), (200, "slow done\n"));
    assert!(
        c.closes(Duration::from_secs(5)),
        "open after both sides went away"
    );
}

#[test]
fn requests_the_http1_side_refuses_get_its_answer() {
    // Heads well-formed for HTTP/2 that the request path refuses: the stream
    // gets the error page, the connection goes on.
    let s = start("");
    let mut c = client(&s);
    let long = format!("/{}", "a".repeat(20_000));
    let cases: [(&str, &str, &str); 4] = [
        ("GET", "noslash", "a target without its slash"),
        ("GET", &long, "a target longer than the head may be"),
        ("CONNECT", "", "CONNECT"),
        ("OPTIONS", "*", "OPTIONS *"),
    ];
    let mut id = 1;
    for (method, path, what) in cases {
        let f: Vec<(&str, &str)> = if method == "CONNECT" {
            vec![(":method", "CONNECT"), (":authority", "127.0.0.1:1")]
        } else {
            h2c::request_fields(method, path, &[])
        };
        c.headers(id, &h2c::literal(&f), true);
        let r = c.response(id);
        if method == "OPTIONS" {
            assert_eq!(r.status, 200, "{what}: {r:?}");
        } else {
            assert!((400..500).contains(&r.status), "{what}: {r:?}");
        }
        id += 2;
    }
    c.get(id, "/index.html");
    assert_eq!(c.response(id).text(), INDEX);
    assert!(c.goaway.is_none(), "{:?}", c.goaway);
}
