//! The host index (cond.rs `Tree`) against testing every block in order: on
//! generated configurations of host blocks (some repeated, some with a port, in
//! other case, nested under sockets and URL blocks, with else chains, regex
//! captures and `+=`), for generated requests, both give the same true blocks,
//! the same winning values and the same captures.

use proptest::prelude::*;
use std::net::IpAddr;
use std::path::Path;
use wick_conf::cond::{Compiled, CondState, Facts};
use wick_conf::load_str;

const HOSTS: &[&str] = &[
    "a.test",
    "b.test",
    "c.test",
    "A.Test",
    "a.test:8080",
    "[::1]",
    "d.test",
];
const URLS: &[&str] = &["/", "/x/1", "/y/22", "/x/", "/x/10", "/xyz"];

#[derive(Clone, Debug)]
enum Item {
    Host(usize, Vec<Item>),
    HostElse(usize, usize),
    /// `host == a {} else host == b {} else ...`, then nothing (0), a plain
    /// `else` (1) or an `else $HTTP["url"] =^` (2).
    HostChain(Vec<usize>, u8),
    Url(usize, Vec<Item>),
    Regex(Vec<Item>),
    Tag(u8),
    Add(u8),
}

fn item() -> impl Strategy<Value = Item> {
    let leaf = prop_oneof![
        (0..3u8).prop_map(Item::Tag),
        (0..3u8).prop_map(Item::Add),
        (0..HOSTS.len(), 0..HOSTS.len()).prop_map(|(a, b)| Item::HostElse(a, b)),
        // distinct hosts (lighttpd refuses an else with a condition already in its chain)
        (
            Just(vec![0usize, 1, 2, 4, 5, 6]).prop_shuffle(),
            2..6usize,
            0..3u8
        )
            .prop_map(|(v, k, t)| Item::HostChain(v[..k].to_vec(), t)),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        prop_oneof![
            4 => (0..HOSTS.len(), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(h, v)| Item::Host(h, v)),
            1 => (0..URLS.len(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(u, v)| Item::Url(u, v)),
            1 => prop::collection::vec(inner, 0..3).prop_map(Item::Regex),
        ]
    })
}

fn render(items: &[Item], out: &mut String, n: &mut usize) {
    for it in items {
        *n += 1;
        match it {
            Item::Host(h, v) => {
                out.push_str(&format!("$HTTP[\"host\"] == \"{}\" {{\n", HOSTS[*h]));
                out.push_str(&format!("index-file.names += (\"h{n}\")\n"));
                render(v, out, n);
                out.push_str("}\n");
            }
            Item::HostElse(a, b) => out.push_str(&format!(
                "$HTTP[\"host\"] == \"{}\" {{ index-file.names += (\"e{n}\") }} else $HTTP[\"host\"] == \"{}\" {{ index-file.names += (\"f{n}\") }}\n",
                HOSTS[*a], HOSTS[*b]
            )),
            Item::HostChain(hosts, tail) => {
                // A level of its own (always true): lighttpd refuses an else whose
                // condition an earlier block at the same level has.
                out.push_str(&format!("$HTTP[\"querystring\"] != \"q{n}\" {{\n"));
                for (i, h) in hosts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" else ");
                    }
                    out.push_str(&format!(
                        "$HTTP[\"host\"] == \"{}\" {{ index-file.names += (\"c{n}-{i}\") }}",
                        HOSTS[*h]
                    ));
                }
                match tail {
                    1 => out.push_str(&format!(" else {{ index-file.names += (\"z{n}\") }}")),
                    2 => out.push_str(&format!(
                        " else $HTTP[\"url\"] =^ \"/x\" {{ index-file.names += (\"u{n}\") }}"
                    )),
                    _ => {}
                }
                out.push_str("\n}\n");
            }
            Item::Url(u, v) => {
                out.push_str(&format!("$HTTP[\"url\"] =^ \"{}\" {{\n", URLS[*u]));
                render(v, out, n);
                out.push_str("}\n");
            }
            Item::Regex(v) => {
                out.push_str("$HTTP[\"url\"] =~ \"^/(x|y)/(\\\\d*)\" {\n");
                out.push_str(&format!("index-file.names += (\"r{n}\")\n"));
                render(v, out, n);
                out.push_str("}\n");
            }
            Item::Tag(t) => out.push_str(&format!("index-file.names += (\"t{t}-{n}\")\n")),
            Item::Add(t) => out.push_str(&format!("index-file.names += (\"i{t}-{n}\")\n")),
        }
    }
}

fn eval(c: &Compiled, st: &mut CondState, host: &str, url: &str, plain: bool) -> String {
    let none = |_: &str| None;
    let facts = Facts {
        host,
        url_path: url,
        query: "",
        remote_ip: "192.0.2.1".parse::<IpAddr>().expect("ip"),
        scheme: "http",
        method: "GET",
        listener: 0,
        header: &none,
    };
    let view = if plain {
        c.evaluate_plain(&facts, st)
    } else {
        c.evaluate(&facts, st)
    };
    let matched: Vec<usize> = st.matched().collect();
    let caps: Vec<Option<String>> = matched
        .iter()
        .map(|&b| st.capture(b, 2).map(str::to_string))
        .collect();
    format!(
        "{} {} {:?} {:?} {:?}",
        view.server_tag, view.server_name, view.index_files, matched, caps
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn the_index_gives_what_every_block_in_order_gives(
        items in prop::collection::vec(item(), 1..30),
        socket in any::<bool>(),
        reqs in prop::collection::vec((0..HOSTS.len() + 3, 0..URLS.len()), 1..8),
    ) {
        let mut body = String::new();
        let mut n = 0;
        render(&items, &mut body, &mut n);
        let text = if socket {
            format!("server.port = 8080\n$SERVER[\"socket\"] == \":8080\" {{\n{body}}}\n")
        } else {
            body
        };
        // Generated text may set a key twice in one condition (lighttpd merges
        // equal conditions into one block, where that is an error): skipped.
        let cfg = load_str(&text, "t.conf", Path::new(""));
        prop_assume!(cfg.is_ok());
        let Ok(cfg) = cfg else { return Ok(()) };
        let min = if socket { 1 } else { 2 };
        let indexed = Compiled::with_index_min(&cfg, min).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut st1 = CondState::new(&indexed);
        let mut st2 = CondState::new(&indexed);
        for (h, u) in reqs {
            let host = match h {
                h if h < HOSTS.len() => HOSTS[h].to_string(),
                h if h == HOSTS.len() => "unknown.test".to_string(),
                h if h == HOSTS.len() + 1 => "b.test:443".to_string(),
                _ => String::new(),
            };
            let a = eval(&indexed, &mut st1, &host, URLS[u], false);
            let b = eval(&indexed, &mut st2, &host, URLS[u], true);
            prop_assert_eq!(a, b, "host {:?} url {} config:\n{}", host, URLS[u], text);
        }
    }
}

#[test]
fn twenty_thousand_sites_each_get_their_own_root() {
    let mut text = String::from("server.document-root = \"/srv/default\"\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "$HTTP[\"host\"] == \"site{i}.example\" {{ server.document-root = \"/srv/site{i}\" }}\n"
        ));
    }
    let cfg = load_str(&text, "t.conf", Path::new("")).expect("config");
    let c = Compiled::new(&cfg).expect("compile");
    let mut st = CondState::new(&c);
    let none = |_: &str| None;
    for (host, root) in [
        ("site0.example", "/srv/site0"),
        ("SITE10000.example:80", "/srv/site10000"),
        ("site19999.example", "/srv/site19999"),
        ("nobody.example", "/srv/default"),
        ("", "/srv/default"),
    ] {
        let facts = Facts {
            host,
            url_path: "/",
            query: "",
            remote_ip: "192.0.2.1".parse::<IpAddr>().expect("ip"),
            scheme: "http",
            method: "GET",
            listener: 0,
            header: &none,
        };
        let v = c.evaluate(&facts, &mut st);
        assert_eq!(v.document_root, root, "{host}");
        // Only the global block and at most the site's own are touched.
        assert!(st.matched().count() <= 2);
        // Through the index: a few blocks decided, not 20,000.
        assert!((1..=3).contains(&st.decided()), "{}", st.decided());
    }
}

/// An else chain of 20,000 host links (some panels write their sites so) and a
/// group of URL prefixes: the right block for the first, a middle and the last
/// link, and the chain's final else for an unknown host.
#[test]
fn a_long_else_chain_and_url_prefixes_are_indexed() {
    let mut text = String::from("server.document-root = \"/srv/default\"\n");
    for i in 0..20_000 {
        if i > 0 {
            text.push_str(" else ");
        }
        text.push_str(&format!(
            "$HTTP[\"host\"] == \"site{i}.example\" {{ server.document-root = \"/srv/site{i}\" }}"
        ));
    }
    text.push_str(" else { server.document-root = \"/srv/other\" }\n");
    for i in 0..1_000 {
        text.push_str(&format!(
            "$HTTP[\"url\"] =^ \"/app{i}/\" {{ server.name = \"app{i}\" }}\n"
        ));
    }
    let cfg = load_str(&text, "t.conf", Path::new("")).expect("config");
    let c = Compiled::new(&cfg).expect("compile");
    let mut st = CondState::new(&c);
    let none = |_: &str| None;
    for (host, url, root, name) in [
        ("site0.example", "/app0/x", "/srv/site0", "app0"),
        (
            "SITE10000.example:80",
            "/app999/",
            "/srv/site10000",
            "app999",
        ),
        ("site19999.example", "/app99", "/srv/site19999", ""),
        ("nobody.example", "/app5/y/z", "/srv/other", "app5"),
    ] {
        let facts = Facts {
            host,
            url_path: url,
            query: "",
            remote_ip: "192.0.2.1".parse::<IpAddr>().expect("ip"),
            scheme: "http",
            method: "GET",
            listener: 0,
            header: &none,
        };
        let v = c.evaluate(&facts, &mut st);
        assert_eq!(v.document_root, root, "{host}");
        assert_eq!(v.server_name, name, "{url}");
        assert!(st.matched().count() <= 3);
        // The chain and the prefixes through their indexes: a few blocks decided.
        assert!((1..=4).contains(&st.decided()), "{}", st.decided());
    }
}
