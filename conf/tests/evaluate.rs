//! Per-request evaluation of condition blocks (cond::Compiled): which blocks apply,
//! in which order their values win, and the regex captures they keep.

use std::net::IpAddr;
use std::path::Path;
use wick_conf::cond::{Compiled, CondState, Facts};
use wick_conf::{load_str, Config};

fn config(text: &str) -> Config {
    load_str(text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"))
}

struct Req {
    host: &'static str,
    url: &'static str,
    query: &'static str,
    ip: &'static str,
    scheme: &'static str,
    method: &'static str,
    listener: usize,
    headers: Vec<(&'static str, &'static str)>,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            host: "example.org",
            url: "/",
            query: "",
            ip: "192.0.2.1",
            scheme: "http",
            method: "GET",
            listener: 0,
            headers: Vec::new(),
        }
    }
}

/// Evaluate `req`; returns (server.tag in force, matched blocks).
fn eval(c: &Compiled, st: &mut CondState, req: &Req) -> (String, Vec<usize>) {
    let headers = &req.headers;
    let lookup = |name: &str| -> Option<&str> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let facts = Facts {
        host: req.host,
        url_path: req.url,
        query: req.query,
        remote_ip: req.ip.parse::<IpAddr>().expect("ip"),
        scheme: req.scheme,
        method: req.method,
        listener: req.listener,
        header: &lookup,
    };
    let view = c.evaluate(&facts, st);
    let tag = view.server_tag.clone();
    (tag, st.matched().collect())
}

fn setup(text: &str) -> (Compiled, CondState) {
    let cfg = config(text);
    let c = Compiled::new(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let st = CondState::new(&c);
    (c, st)
}

#[test]
fn later_true_block_wins_in_file_order() {
    let (c, mut st) = setup(concat!(
        "server.tag = \"global\"\n",
        "$HTTP[\"url\"] =^ \"/a\" { server.tag = \"url\" }\n",
        "$HTTP[\"host\"] == \"example.org\" { server.tag = \"host\" }\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/a/b",
                ..Req::default()
            }
        )
        .0,
        "host"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/a/b",
                host: "other",
                ..Req::default()
            }
        )
        .0,
        "url"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/z",
                host: "other",
                ..Req::default()
            }
        )
        .0,
        "global"
    );
}

#[test]
fn defaults_apply_when_no_block_sets_a_key() {
    let (c, mut st) = setup("server.port = 80\n");
    let (tag, matched) = eval(&c, &mut st, &Req::default());
    assert!(tag.starts_with("wickd/"));
    assert_eq!(matched, [0]);
}

#[test]
fn nested_block_needs_its_parent() {
    let (c, mut st) = setup(concat!(
        "$HTTP[\"host\"] == \"a.org\" {\n",
        "  $HTTP[\"url\"] =^ \"/x\" { server.tag = \"a-x\" }\n",
        "}\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "a.org",
                url: "/x1",
                ..Req::default()
            }
        )
        .1,
        [0, 1, 2]
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "b.org",
                url: "/x1",
                ..Req::default()
            }
        )
        .1,
        [0]
    );
}

#[test]
fn else_applies_only_when_the_previous_branch_is_false() {
    let (c, mut st) = setup(concat!(
        "$HTTP[\"host\"] == \"a.org\" { server.tag = \"a\" }\n",
        "else $HTTP[\"host\"] == \"b.org\" { server.tag = \"b\" }\n",
        "else { server.tag = \"other\" }\n",
        "$HTTP[\"url\"] =^ \"/n\" {\n",
        "  $HTTP[\"host\"] == \"c.org\" { server.tag = \"c\" } else { server.tag = \"not c\" }\n",
        "}\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "a.org",
                ..Req::default()
            }
        )
        .0,
        "a"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "b.org",
                ..Req::default()
            }
        )
        .0,
        "b"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "z.org",
                ..Req::default()
            }
        )
        .0,
        "other"
    );
    // The nested chain is skipped, not false, when its parent does not apply:
    // its else must not fire.
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "z.org",
                url: "/m",
                ..Req::default()
            }
        )
        .0,
        "other"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "z.org",
                url: "/n",
                ..Req::default()
            }
        )
        .0,
        "not c"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "c.org",
                url: "/n",
                ..Req::default()
            }
        )
        .0,
        "c"
    );
}

#[test]
fn host_is_lowercased_and_eq_ignores_the_port() {
    let (c, mut st) = setup(concat!(
        "$HTTP[\"host\"] == \"Example.ORG\" { server.tag = \"eq\" }\n",
        "$HTTP[\"host\"] =~ \"^www\\.(.*)$\" { server.name = \"%1\" }\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "EXAMPLE.org:8080",
                ..Req::default()
            }
        )
        .0,
        "eq"
    );
    assert_ne!(
        eval(
            &c,
            &mut st,
            &Req {
                host: "example.org.evil",
                ..Req::default()
            }
        )
        .0,
        "eq"
    );
    let (_, m) = eval(
        &c,
        &mut st,
        &Req {
            host: "WWW.Example.org",
            ..Req::default()
        },
    );
    assert_eq!(m, [0, 2], "regex sees the lowercased host");
    assert_eq!(st.capture(2, 1), Some("example.org"));
}

#[test]
fn regex_captures_are_kept_per_block() {
    let (c, mut st) = setup(concat!(
        "server.modules = (\"mod_redirect\")\n",
        "$HTTP[\"url\"] =~ \"^/user/([a-z]+)/(\\d+)$\" {\n",
        "  url.redirect = (\".*\" => \"/u?n=%1&id=%2\")\n",
        "}\n",
    ));
    eval(
        &c,
        &mut st,
        &Req {
            url: "/user/bob/42",
            ..Req::default()
        },
    );
    assert_eq!(st.capture(1, 0), Some("/user/bob/42"));
    assert_eq!(st.capture(1, 1), Some("bob"));
    assert_eq!(st.capture(1, 2), Some("42"));
    assert_eq!(st.capture(1, 3), None);
    assert_eq!(st.capture(0, 0), None, "the global block has no captures");
    // Evaluating again (an internal rewrite) replaces them.
    eval(
        &c,
        &mut st,
        &Req {
            url: "/elsewhere",
            ..Req::default()
        },
    );
    assert_eq!(st.capture(1, 1), None);
}

#[test]
fn winning_block_names_the_block_whose_captures_count() {
    let (c, mut st) = setup(concat!(
        "server.tag = \"g\"\n",
        "$HTTP[\"host\"] =~ \"^(.+)\\.org$\" { server.tag = \"%1\" }\n",
        "$HTTP[\"url\"] =~ \"^/(a)\" { server.name = \"x\" }\n",
    ));
    eval(
        &c,
        &mut st,
        &Req {
            host: "site.org",
            url: "/a",
            ..Req::default()
        },
    );
    let id = c.winning_block(&st, |p| p.server_tag().is_some());
    assert_eq!(id, 1);
    assert_eq!(st.capture(id, 1), Some("site"));
    eval(
        &c,
        &mut st,
        &Req {
            host: "site.com",
            url: "/a",
            ..Req::default()
        },
    );
    assert_eq!(c.winning_block(&st, |p| p.server_tag().is_some()), 0);
}

#[test]
fn remote_ip_cidr_and_v4_mapped() {
    let (c, mut st) = setup(concat!(
        "$HTTP[\"remoteip\"] == \"10.0.0.0/8\" { server.tag = \"ten\" }\n",
        "$HTTP[\"remoteip\"] == \"2001:db8::/32\" { server.tag = \"doc6\" }\n",
        "$HTTP[\"remoteip\"] != \"127.0.0.1\" { server.name = \"not local\" }\n",
        "$HTTP[\"remoteip\"] =~ \"^192\\.0\\.2\\.\" { server.name = \"regex\" }\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                ip: "10.200.1.1",
                ..Req::default()
            }
        )
        .0,
        "ten"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                ip: "::ffff:10.1.1.1",
                ..Req::default()
            }
        )
        .0,
        "ten"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                ip: "2001:db8::5",
                ..Req::default()
            }
        )
        .0,
        "doc6"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                ip: "11.0.0.1",
                ..Req::default()
            }
        )
        .1,
        [0, 3]
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                ip: "127.0.0.1",
                ..Req::default()
            }
        )
        .1,
        [0]
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                ip: "192.0.2.7",
                ..Req::default()
            }
        )
        .1,
        [0, 3, 4]
    );
}

#[test]
fn headers_scheme_method_query_and_absent_headers() {
    let (c, mut st) = setup(concat!(
        "$HTTP[\"useragent\"] =~ \"(?i)bot\" { server.tag = \"bot\" }\n",
        "$HTTP[\"referer\"] == \"\" { server.name = \"no referer\" }\n",
        "$REQUEST_HEADER[\"X-Mode\"] == \"debug\" { server.tag = \"debug\" }\n",
        "$HTTP[\"scheme\"] == \"https\" { server.tag = \"tls\" }\n",
        "$HTTP[\"request-method\"] == \"POST\" { server.tag = \"post\" }\n",
        "$HTTP[\"querystring\"] =$ \"&x=1\" { server.tag = \"query\" }\n",
        "$HTTP[\"language\"] =^ \"de\" { server.tag = \"german\" }\n",
    ));
    let r = Req {
        headers: vec![("User-Agent", "GoogleBot/2"), ("Referer", "http://x")],
        ..Req::default()
    };
    assert_eq!(eval(&c, &mut st, &r), ("bot".to_string(), vec![0, 1]));
    assert_eq!(
        eval(&c, &mut st, &Req::default()).1,
        [0, 2],
        "an absent header is \"\""
    );
    let r = Req {
        headers: vec![("x-mode", "debug")],
        ..Req::default()
    };
    assert_eq!(eval(&c, &mut st, &r).0, "debug");
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                scheme: "https",
                ..Req::default()
            }
        )
        .0,
        "tls"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                method: "POST",
                ..Req::default()
            }
        )
        .0,
        "post"
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                query: "a=b&x=1",
                ..Req::default()
            }
        )
        .0,
        "query"
    );
    let r = Req {
        headers: vec![("Accept-Language", "de-DE,en")],
        ..Req::default()
    };
    assert_eq!(eval(&c, &mut st, &r).0, "german");
}

#[test]
fn server_socket_by_listener() {
    let (c, mut st) = setup(concat!(
        "server.port = 8080\n",
        "$SERVER[\"socket\"] == \"127.0.0.1:8443\" { server.tag = \"tls\" }\n",
        "$SERVER[\"socket\"] != \"127.0.0.1:8443\" { server.name = \"plain\" }\n",
        "$SERVER[\"socket\"] =~ \":8443$\" { server.name = \"re\" }\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                listener: 1,
                ..Req::default()
            }
        ),
        ("tls".to_string(), vec![0, 1, 3])
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                listener: 0,
                ..Req::default()
            }
        )
        .1,
        [0, 2]
    );
}

#[test]
fn unsupported_regex_fails_compile_with_the_feature_named() {
    let cfg = config("$HTTP[\"url\"] =~ \"^/(?|(a)|(b))\" { server.tag = \"x\" }\n");
    assert!(
        cfg.warnings.iter().any(|w| w.contains("branch reset")),
        "{:?}",
        cfg.warnings
    );
    let Err(e) = Compiled::new(&cfg) else {
        panic!("branch reset compiled")
    };
    assert!(
        e.message.contains("^/(?|(a)|(b))") && e.message.contains("a PCRE feature"),
        "{e}"
    );
    assert_eq!((e.loc.file.as_str(), e.loc.line), ("t.conf", 1));
}

fn url(u: &'static str) -> Req {
    Req {
        url: u,
        ..Req::default()
    }
}

#[test]
fn pcre_look_ahead_back_reference_and_lazy_conditions() {
    let text = concat!(
        "$HTTP[\"url\"] =~ \"^/(?!(dispatch\\.map))\" { server.tag = \"not-map\" }\n",
        "$HTTP[\"url\"] =~ \"^/(\\w+)/\\1/\" { server.tag = \"twice %1\" }\n",
        "$HTTP[\"url\"] =~ \"^/(.+?)/(.*)$\" { server.tag = \"lazy\" }\n",
        "$HTTP[\"url\"] !~ \"(?<=/)private\" { } else { server.tag = \"private\" }\n",
    );
    let cfg = config(text);
    assert!(
        !cfg.warnings.iter().any(|w| w.contains("PCRE")),
        "PCRE patterns load without a warning: {:?}",
        cfg.warnings
    );
    let (c, mut st) = setup(text);
    assert_eq!(eval(&c, &mut st, &url("/index.html")).1, [0, 1, 4]);
    assert_eq!(eval(&c, &mut st, &url("/dispatch.map")).1, [0, 4]);
    let (tag, m) = eval(&c, &mut st, &url("/ab/ab/c"));
    assert_eq!((tag.as_str(), m), ("lazy", vec![0, 1, 2, 3, 4]));
    assert_eq!(st.capture(2, 1), Some("ab"));
    // lazy: the shortest first group
    assert_eq!(st.capture(3, 1), Some("ab"));
    assert_eq!(st.capture(3, 2), Some("ab/c"));
    // the negative look-ahead's own group did not take part
    assert_eq!(st.capture(1, 1), None);
    assert_eq!(st.capture(1, 0), Some("/"));
    assert_eq!(eval(&c, &mut st, &url("/ab/cd/")).1, [0, 1, 3, 4]);
    assert_eq!(eval(&c, &mut st, &url("/x/private")).0, "private");
}

#[test]
fn state_is_reused_without_growing() {
    let (c, mut st) = setup("$HTTP[\"url\"] =~ \"^/(x+)\" { server.tag = \"%1\" }\n");
    for i in 0..100 {
        let url: &'static str = if i % 2 == 0 { "/xxx" } else { "/y" };
        let m = eval(
            &c,
            &mut st,
            &Req {
                url,
                ..Req::default()
            },
        )
        .1;
        assert_eq!(m.len(), if i % 2 == 0 { 2 } else { 1 });
    }
}

#[test]
fn regexes_match_bytes_as_pcre_does() {
    let (c, mut st) = setup(concat!(
        "$HTTP[\"url\"] =~ \"^/.$\" { server.tag = \"one byte\" }\n",
        "$HTTP[\"url\"] =~ \"^/\\w+$\" { server.tag = \"word\" }\n",
        "$HTTP[\"url\"] =~ \"^/ü(.*)\" { server.tag = \"umlaut\" }\n",
        "$HTTP[\"url\"] =~ \"(?i)^/ABC$\" { server.tag = \"nocase\" }\n",
    ));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/a",
                ..Req::default()
            }
        )
        .0,
        "word"
    );
    // "é" is two bytes: not one `.`, not a `\w` (ASCII classes, as PCRE without UTF).
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/é",
                ..Req::default()
            }
        )
        .1,
        [0]
    );
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/über",
                ..Req::default()
            }
        )
        .0,
        "umlaut"
    );
    assert_eq!(st.capture(3, 1), Some("ber"));
    let (c2, mut st2) = setup("$HTTP[\"url\"] =~ \"^/(.)\" { server.tag = \"x\" }\n");
    let r = Req {
        url: "/é",
        ..Req::default()
    };
    eval(&c2, &mut st2, &r);
    assert_eq!(st2.capture(1, 1), None, "half a character is not text");
    assert_eq!(st2.capture_bytes(1, 1), Some(&"é".as_bytes()[..1]));
    assert_eq!(
        eval(
            &c,
            &mut st,
            &Req {
                url: "/abc",
                ..Req::default()
            }
        )
        .0,
        "nocase"
    );
}

#[test]
fn a_state_from_another_configuration_is_rebuilt() {
    let (c1, mut st) = setup("$HTTP[\"url\"] =~ \"^/(a)\" { server.tag = \"one\" }\n");
    eval(
        &c1,
        &mut st,
        &Req {
            url: "/a",
            ..Req::default()
        },
    );
    let (c2, _) = setup("$HTTP[\"host\"] == \"x\" { }\n$HTTP[\"url\"] =~ \"^/(b)(c)(d)\" { server.tag = \"two\" }\n");
    assert_eq!(
        eval(
            &c2,
            &mut st,
            &Req {
                url: "/bcd",
                ..Req::default()
            }
        )
        .0,
        "two"
    );
    assert_eq!(st.capture(2, 3), Some("d"));
}
