//! Condition matching speed (not a timed test: run by hand, in release mode):
//! `cargo test --release -p wick-conf --test regex_speed -- --ignored --nocapture`.
//! Prints ns per evaluation of typical `=~` conditions, with their captures kept.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;
use wick_conf::cond::{Compiled, CondState, Facts};

fn bench(name: &str, cond: &str, hits: [(&str, &str); 2]) {
    let text = format!("{cond} {{ server.tag = \"x\" }}\n");
    let cfg = match wick_conf::load_str(&text, "bench.conf", Path::new("")) {
        Ok(c) => c,
        Err(e) => return println!("{name:28} does not load: {e}"),
    };
    let c = match Compiled::new(&cfg) {
        Ok(c) => c,
        Err(e) => return println!("{name:28} does not compile: {}", e.message),
    };
    let mut st = CondState::new(&c);
    let none = |_: &str| -> Option<&str> { None };
    const N: u32 = 1_000_000;
    let mut matched = 0u32;
    let t = Instant::now();
    for i in 0..N {
        let (host, url) = hits[(i % 2) as usize];
        let f = Facts {
            host,
            url_path: url,
            query: "",
            remote_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            scheme: "http",
            method: "GET",
            listener: 0,
            header: &none,
        };
        c.evaluate(&f, &mut st);
        matched += u32::from(st.is_true(1));
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(N);
    println!("{name:28} {ns:7.1} ns/evaluation ({matched} of {N} true)");
}

#[test]
#[ignore]
fn condition_matching_speed() {
    let h = "www.example.org";
    bench(
        "url =~ ^/static/",
        r#"$HTTP["url"] =~ "^/static/""#,
        [(h, "/static/css/site.css"), (h, "/index.php")],
    );
    bench(
        r"url =~ \.(php|cgi)$",
        r#"$HTTP["url"] =~ "\.(php|cgi)$""#,
        [(h, "/app/index.php"), (h, "/img/logo.png")],
    );
    bench(
        r"host =~ ^www\.(.*)$",
        r#"$HTTP["host"] =~ "^www\.(.*)$""#,
        [(h, "/"), ("example.org", "/")],
    );
    bench(
        r"url !~ ^/(admin|api)/",
        r#"$HTTP["url"] !~ "^/(admin|api)/""#,
        [(h, "/admin/x"), (h, "/x")],
    );
    bench(
        r"url =~ ^/(?!(dispatch\.map))",
        r#"$HTTP["url"] =~ "^/(?!(dispatch\.map))""#,
        [(h, "/index.html"), (h, "/dispatch.map")],
    );
    bench(
        r"url =~ ^/(\w+)/\1/",
        r#"$HTTP["url"] =~ "^/(\w+)/\1/""#,
        [(h, "/ab/ab/x"), (h, "/ab/cd/x")],
    );
    bench(
        r"url =~ ^/(.*?)/(.*)$",
        r#"$HTTP["url"] =~ "^/(.*?)/(.*)$""#,
        [(h, "/a/b/c"), (h, "/abc")],
    );
}
