//! Property tests: the lexer, parser and evaluator never panic, whatever the text;
//! what loads also prints, loads again, compiles and evaluates without a panic.
//! (No include/include_shell: random text must not run commands or read files.)

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use wick_conf::cond::{Compiled, CondState, Facts};

const PIECES: &[&str] = &[
    "server.port",
    "server.tag",
    "server.document-root",
    "server.modules",
    "index-file.names",
    "mimetype.assign",
    "server.follow-symlink",
    "x",
    "var.y",
    "env.HOME",
    "var.CWD",
    " = ",
    " += ",
    " := ",
    " + ",
    "\"a\"",
    "\"^/(b+)$\"",
    "\"enable\"",
    "\"\"",
    "\"\\\"q\"",
    "1",
    "80",
    "99999999999999999999",
    "(",
    ")",
    ", ",
    " => ",
    "{",
    "}",
    "\n",
    "\r\n",
    " ",
    "# c\n",
    "$HTTP[\"host\"]",
    "$HTTP[\"url\"]",
    "$HTTP[\"remoteip\"]",
    "$REQUEST_HEADER[\"X\"]",
    "$SERVER[\"socket\"]",
    "$HTTP[\"nope\"]",
    " == ",
    " != ",
    " =~ ",
    " !~ ",
    " =^ ",
    " =$ ",
    "\"10.0.0.0/8\"",
    "\":8080\"",
    "\"[::1]:8081\"",
    "else ",
    "elif ",
    "else if ",
    "global ",
    "\u{a0}",
    "\0",
    ":",
    "!",
    "[",
    "]",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|v| v.concat())
}

/// Mostly well-formed statements, so that the evaluator and printer get work.
fn statements() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "server.tag",
            "server.name",
            "x",
            "index-file.names",
            "var.z",
            "my.unknown-key",
        ][..],
    );
    let op = prop::sample::select(&[" = ", " += ", " += ", " := ", " := "][..]);
    let val = prop::sample::select(
        &[
            "\"a\"",
            "1",
            "(\"p\", \"q\")",
            "(\"k\" => \"v\")",
            "x",
            "\"b\" + 2",
            "()",
            "server.tag",
        ][..],
    );
    let line = (key, op, val).prop_map(|(k, o, v)| format!("{k}{o}{v}\n"));
    let cond = prop::sample::select(
        &[
            "$HTTP[\"host\"] == \"a.org\"",
            "$HTTP[\"url\"] =~ \"^/(x)\"",
            "$SERVER[\"socket\"] == \":8443\"",
            "else $HTTP[\"host\"] =$ \".org\"",
            "else",
        ][..],
    );
    let block = (cond, prop::collection::vec(line.clone(), 0..4))
        .prop_map(|(c, ls)| format!("{c} {{\n{}}}\n", ls.concat()));
    prop::collection::vec(prop_oneof![line, block], 0..12)
        .prop_map(|v| format!("x = \"p\"\nserver.tag = \"t\"\n{}", v.concat()))
}

fn exercise(text: &str) {
    if text.contains("include") {
        return;
    }
    let Ok(cfg) = wick_conf::load_str(text, "fuzz.conf", Path::new("")) else {
        return;
    };
    let printed = wick_conf::print::normalized(&cfg);
    let again = wick_conf::load_str(&printed, "printed.conf", Path::new(""));
    assert!(
        again.is_ok(),
        "printed form does not load: {:?}\n{printed}",
        again.err()
    );
    let _ = wick_conf::preflight::check(&cfg);
    if let Ok(c) = Compiled::new(&cfg) {
        let mut st = CondState::new(&c);
        let header = |_: &str| -> Option<&str> { Some("v") };
        for listener in [0, 1, 99] {
            let facts = Facts {
                host: "WWW.Example.org:80",
                url_path: "/bbb",
                query: "a=1",
                remote_ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
                scheme: "http",
                method: "GET",
                listener,
                header: &header,
            };
            let _ = c.evaluate(&facts, &mut st);
            for id in 0..c.block_count() + 1 {
                for n in 0..11 {
                    let _ = st.capture(id, n);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_never_panics(text in "\\PC*") {
        exercise(&text);
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn statements_never_panic(text in statements()) {
        exercise(&text);
    }

    #[test]
    fn grammar_soup_never_panics(text in soup()) {
        exercise(&text);
    }
}

/// The statement generator must produce loadable configurations often enough for
/// the tests above to reach the evaluator and printer.
#[test]
fn statement_generator_reaches_the_evaluator() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = statements();
    let (mut ok, total) = (0, 200);
    for _ in 0..total {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        if wick_conf::load_str(&tree.current(), "s.conf", Path::new("")).is_ok() {
            ok += 1;
        }
    }
    assert!(
        ok * 5 >= total,
        "only {ok} of {total} generated configurations load"
    );
}
