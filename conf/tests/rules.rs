//! One test per rule of the lighttpd.conf language (issue 3): each fails if the rule
//! is broken.

use std::fs;
use std::path::{Path, PathBuf};
use wick_conf::{load_file, load_str, CondField, CondOp, ConfError, Config, ListenAddr, Value};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wick-conf-rules-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("mkdir");
    d
}

fn load(text: &str) -> Config {
    match load_str(text, "t.conf", Path::new("")) {
        Ok(c) => c,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn fail(text: &str) -> ConfError {
    match load_str(text, "t.conf", Path::new("")) {
        Ok(_) => panic!("should fail:\n{text}"),
        Err(e) => e,
    }
}

/// The value of `key` in block `id`.
fn get<'c>(c: &'c Config, id: usize, key: &str) -> Option<&'c Value> {
    c.blocks[id]
        .settings
        .iter()
        .find(|s| s.key == key)
        .map(|s| &s.value)
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn list(xs: &[&str]) -> Value {
    Value::Array(xs.iter().map(|x| (None, s(x))).collect())
}

// ---- assignment ---------------------------------------------------------------

#[test]
fn assign_twice_in_one_block_is_an_error() {
    let e = fail("server.tag = \"a\"\nserver.tag = \"b\"\n");
    assert!(e.message.contains("Duplicate config variable"), "{e}");
    assert_eq!(
        (e.loc.file.as_str(), e.loc.line, e.loc.col),
        ("t.conf", 2, 1)
    );
    assert!(e.hint.as_deref().unwrap_or("").contains(":="));
}

#[test]
fn assign_in_another_block_overrides() {
    let c = load("server.tag = \"a\"\n$HTTP[\"host\"] == \"x\" { server.tag = \"b\" }\n");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("a")));
    assert_eq!(get(&c, 1, "server.tag"), Some(&s("b")));
}

#[test]
fn keys_compare_without_case() {
    let e = fail("server.tag = \"a\"\nServer.Tag = \"b\"\n");
    assert!(e.message.contains("Duplicate"));
    let c = load("Server.Document-Root = \"/x\"\n");
    assert_eq!(c.patches[0].document_root().map(String::as_str), Some("/x"));
}

#[test]
fn force_assign_replaces() {
    let c = load("server.port = 81\nserver.port := 82\n");
    assert_eq!(c.server.port, 82);
}

#[test]
fn append_merges_in_the_same_block() {
    let c = load("server.modules = (\"mod_a\")\nserver.modules += (\"mod_b\")\n");
    assert_eq!(
        get(&c, 0, "server.modules"),
        Some(&list(&["mod_a", "mod_b"]))
    );
}

#[test]
fn append_in_a_block_copies_the_outer_value() {
    let c = load(
        "index-file.names = (\"a.html\")\n$HTTP[\"host\"] == \"x\" {\n index-file.names += (\"b.html\")\n}\n",
    );
    assert_eq!(
        get(&c, 0, "index-file.names"),
        Some(&list(&["a.html"])),
        "outer untouched"
    );
    assert_eq!(
        get(&c, 1, "index-file.names"),
        Some(&list(&["a.html", "b.html"]))
    );
}

#[test]
fn append_to_nothing_is_assign() {
    let c = load("server.tag += \"x\"\n");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("x")));
}

#[test]
fn merging_rules() {
    let c = load(concat!(
        "a = \"x\" + \"y\"\n",
        "b = 2 + 3\n",
        "c = \"p\" + 8\n",
        "d = 8 + \"p\"\n",
        "e = 1\n e += 41\n",
        "server.tag = a + b + c + d + e\n",
    ));
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("xy5p88p42")));
}

#[test]
fn merge_type_mismatch_is_an_error() {
    assert!(fail("a = \"x\" + (\"y\")\n")
        .message
        .contains("cannot merge"));
}

#[test]
fn array_append_duplicate_key_rules() {
    let e = fail("a = (\"k\" => \"1\")\na += (\"k\" => \"2\")\n");
    assert!(e.message.contains("duplicate array-key"), "{e}");
    // The same key with the same value is tolerated.
    let c =
        load("a = (\"k\" => \"1\")\na += (\"k\" => \"1\", \"j\" => \"2\")\nserver.tag = \"ok\"\n");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("ok")));
    assert_eq!(get(&c, 0, "var.a"), None);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("t.conf:2:3: duplicate array-key 'k' with the same value")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn duplicate_key_in_one_list_is_an_error() {
    let e = fail("alias.url = (\"/a\" => \"/x\", \"/a\" => \"/y\")\n");
    assert!(e.message.contains("duplicate array-key: /a"), "{e}");
    assert_eq!(e.loc.col, 28);
}

#[test]
fn lists_nest_and_take_trailing_commas() {
    let c =
        load("fastcgi.server = (\".php\" => ((\"host\" => \"127.0.0.1\", \"port\" => 9000,),),)\n");
    let Some(Value::Array(outer)) = get(&c, 0, "fastcgi.server") else {
        panic!("not a list")
    };
    assert_eq!(outer[0].0.as_deref(), Some(".php"));
    let Value::Array(inner) = &outer[0].1 else {
        panic!("not nested")
    };
    let Value::Array(kv) = &inner[0].1 else {
        panic!("not nested twice")
    };
    assert_eq!(kv[1], (Some("port".into()), Value::Int(9000)));
}

/// lighttpd 1.4.69 drops what follows a list element up to the next ',' or ')'
/// (its parser's silent error recovery; each case below as it prints it with -p);
/// wickd drops the same, with a warning naming what it dropped.
#[test]
fn a_missing_comma_drops_up_to_the_next_comma_as_lighttpd_does() {
    let cases: &[(&str, &[&str])] = &[
        ("(\"a\" \"b\" \"c\")", &["a"]),
        ("(\"a\", \"b\" \"c\", \"d\")", &["a", "b", "d"]),
        ("(\"a\"\n  \"b\"\n  \"c\"\n)", &["a"]),
        ("(\"a\" + \"b\" \"c\" + \"d\", \"e\")", &["ab", "e"]),
        ("(\"a\" \"b\" => \"2\", \"c\")", &["a", "c"]),
    ];
    for (value, kept) in cases {
        let c = load(&format!("index-file.names = {value}\n"));
        assert_eq!(get(&c, 0, "index-file.names"), Some(&list(kept)), "{value}");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("missing ','") && w.contains("as lighttpd 1.4.69 drops it")),
            "{value}: {:?}",
            c.warnings
        );
    }
    let c = load(
        "alias.url = (\n  \"/a/\" => \"/x/\",\n  \"/b/\" => \"/y/\"\n  \"/b/c/\" => \"/z/\"\n)\n",
    );
    let Some(Value::Array(a)) = get(&c, 0, "alias.url") else {
        panic!("not a list")
    };
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("t.conf:4:3: missing ',' before \"/b/c/\" => \"/z/\"")),
        "{:?}",
        c.warnings
    );
    // A skipped run that opens a list: lighttpd reads the rest as something else.
    let e = fail("index-file.names = (\"a\" (\"x\"), \"c\")\n");
    assert!(e.message.contains("missing ','"), "{e}");
    // Where the dropped element restricts access, refused.
    let e = fail("url.access-deny = (\"~\"\n \".inc\")\n");
    assert!(
        e.message.contains("url.access-deny") && e.message.contains("\".inc\""),
        "{e}"
    );
    assert_eq!(e.hint.as_deref(), Some("add the ','"));
}

// ---- variables ----------------------------------------------------------------

#[test]
fn key_without_dot_is_var() {
    let c = load("root = \"/srv\"\nserver.document-root = var.root + \"/www\"\n");
    assert_eq!(
        c.patches[0].document_root().map(String::as_str),
        Some("/srv/www")
    );
    assert!(get(&c, 0, "var.root").is_none(), "var.* are not settings");
}

#[test]
fn config_keys_can_be_referenced() {
    let c = load("server.name = \"example.org\"\nserver.tag = \"/good_\" + server.name\n$HTTP[\"host\"] == server.name {\n}\n");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("/good_example.org")));
    assert_eq!(
        c.blocks[1].cond.as_ref().map(|c| c.pattern.as_str()),
        Some("example.org")
    );
}

#[test]
fn env_reads_the_environment() {
    std::env::set_var("WICK_RULES_ENV", "/from/env");
    let c = load("server.document-root = env.WICK_RULES_ENV\n");
    assert_eq!(
        c.patches[0].document_root().map(String::as_str),
        Some("/from/env")
    );
    let e = fail("server.document-root = env.WICK_RULES_SURELY_UNSET\n");
    assert!(
        e.message
            .contains("Undefined env variable: WICK_RULES_SURELY_UNSET"),
        "{e}"
    );
    assert!(fail("env.HOME = \"x\"\n").message.contains("environment"));
    assert!(fail("env.HOME += \"x\"\n").message.contains("environment"));
}

#[test]
fn cwd_and_pid_are_predefined() {
    let c = load("server.tag = var.CWD\nserver.name = \"p\" + var.PID\n");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s(&cwd.to_string_lossy())));
    assert_eq!(
        get(&c, 0, "server.name"),
        Some(&s(&format!("p{}", std::process::id())))
    );
}

#[test]
fn undefined_variable_is_an_error_with_a_hint() {
    let e = fail("server.document-root = \"/x\"\nserver.tag = server.documentroot\n");
    assert!(
        e.message
            .contains("Undefined config variable: server.documentroot"),
        "{e}"
    );
    assert_eq!(
        e.hint.as_deref(),
        Some("did you mean server.document-root?")
    );
}

#[test]
fn variables_are_scoped_to_their_block() {
    let c = load("$HTTP[\"host\"] == \"x\" {\n v = \"in\"\n $HTTP[\"url\"] =^ \"/a\" { server.tag = v }\n}\n");
    assert_eq!(get(&c, 2, "server.tag"), Some(&s("in")));
    let e = fail("$HTTP[\"host\"] == \"x\" {\n v = \"in\"\n}\nserver.tag = v\n");
    assert!(e.message.contains("Undefined config variable: var.v"));
}

// ---- include, include_shell, global ------------------------------------------------

#[test]
fn include_is_relative_to_the_main_file() {
    let d = tmpdir("inc");
    fs::create_dir_all(d.join("sub")).expect("mkdir");
    fs::write(d.join("main.conf"), "include \"sub/a.conf\"\n").expect("write");
    // a.conf's include is also taken from main.conf's directory, not from sub/.
    fs::write(d.join("sub/a.conf"), "include \"b.conf\"\n").expect("write");
    fs::write(d.join("b.conf"), "server.tag = \"from b\"\n").expect("write");
    fs::write(d.join("sub/b.conf"), "server.tag = \"wrong b\"\n").expect("write");
    let c = load_file(&d.join("main.conf")).expect("load");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("from b")));
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn include_globs_sorted_and_empty_glob_ok() {
    let d = tmpdir("glob");
    fs::create_dir_all(d.join("conf.d")).expect("mkdir");
    fs::write(d.join("conf.d/20-b.conf"), "server.tag += \"b\"\n").expect("write");
    fs::write(d.join("conf.d/10-a.conf"), "server.tag += \"a\"\n").expect("write");
    fs::write(d.join("conf.d/30-c.conf"), "server.tag += \"c\"\n").expect("write");
    fs::write(
        d.join("main.conf"),
        "server.tag = \">\"\ninclude \"conf.d/*.conf\"\ninclude \"none.d/*.conf\"\ninclude \"conf.d/{30,10}-*.conf\"\n",
    )
    .expect("write");
    let c = load_file(&d.join("main.conf")).expect("load");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s(">abcca")));
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn include_of_a_missing_file_is_an_error() {
    let d = tmpdir("missing");
    fs::write(d.join("main.conf"), "\ninclude \"nope.conf\"\n").expect("write");
    let e = load_file(&d.join("main.conf")).expect_err("missing include");
    assert!(e.message.contains("include file not found"), "{e}");
    assert_eq!(e.loc.line, 2);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn include_inside_a_condition_joins_the_block() {
    let d = tmpdir("incblock");
    fs::write(d.join("v.conf"), "server.document-root = \"/v\"\n").expect("write");
    fs::write(
        d.join("main.conf"),
        "$HTTP[\"host\"] == \"v.org\" {\n include \"v.conf\"\n}\n",
    )
    .expect("write");
    let c = load_file(&d.join("main.conf")).expect("load");
    assert_eq!(c.patches[1].document_root().map(String::as_str), Some("/v"));
    assert!(c.patches[0].document_root().is_none());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn include_shell_runs_in_the_main_directory() {
    let d = tmpdir("shell");
    fs::write(d.join("gen.sh"), "echo \"server.tag = \\\"$(pwd)\\\"\"\n").expect("write");
    fs::write(d.join("main.conf"), "include_shell \"sh gen.sh\"\n").expect("write");
    let c = load_file(&d.join("main.conf")).expect("load");
    let real = fs::canonicalize(&d).expect("canon");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s(&real.to_string_lossy())));
    fs::write(d.join("bad.conf"), "include_shell \"exit 3\"\n").expect("write");
    let e = load_file(&d.join("bad.conf")).expect_err("nonzero exit");
    assert!(e.message.contains("exited non-zero: 3"), "{e}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn global_block_sets_global_values_from_inside_a_condition() {
    let c = load("$HTTP[\"host\"] == \"x\" {\n global {\n  server.tag = \"g\"\n }\n server.name = \"n\"\n}\n");
    assert_eq!(get(&c, 0, "server.tag"), Some(&s("g")));
    assert_eq!(get(&c, 1, "server.name"), Some(&s("n")));
    assert!(get(&c, 1, "server.tag").is_none());
    let e = fail("global {\n $HTTP[\"host\"] == \"x\" { }\n}\n");
    assert!(e.message.contains("inside a global"), "{e}");
}

// ---- booleans, typed options -------------------------------------------------------

#[test]
fn booleans_in_every_spelling() {
    for (v, want) in [
        ("\"enable\"", true),
        ("\"Enabled\"", true),
        ("\"TRUE\"", true),
        ("\"1\"", true),
        ("1", true),
        ("7", true),
        ("\"disable\"", false),
        ("\"DISABLED\"", false),
        ("\"false\"", false),
        ("\"0\"", false),
        ("0", false),
    ] {
        let c = load(&format!("server.follow-symlink = {v}\n"));
        assert_eq!(c.patches[0].follow_symlink().copied(), Some(want), "{v}");
    }
    let e = fail("\nserver.follow-symlink = \"yes\"\n");
    assert!(e.message.contains("server.follow-symlink"), "{e}");
    assert_eq!(
        e.loc.line, 2,
        "a type error is reported where the key is set"
    );
    assert!(e.line_text.is_some());
}

#[test]
fn integers_may_be_strings() {
    let c = load("server.port = \"8080\"\n");
    assert_eq!(c.server.port, 8080);
    assert!(fail("server.port = \"http\"\n")
        .message
        .contains("server.port"));
}

#[test]
fn default_mimetypes_without_mimetype_assign() {
    let c = load("server.port = 80\n");
    assert!(c.patches[0].mimetypes().is_none());
    let d = wick_conf::RequestOptions::default();
    assert!(d
        .mimetypes
        .iter()
        .any(|(k, v)| k == ".html" && v == "text/html"));
    let c = load("mimetype.assign = (\".x\" => \"a/b\")\n");
    assert_eq!(
        c.patches[0].mimetypes().map(Vec::as_slice),
        Some(&[(".x".to_string(), "a/b".to_string())][..])
    );
}

// ---- conditions -------------------------------------------------------------------

#[test]
fn every_condition_field() {
    let c = load(concat!(
        "$HTTP[\"host\"] == \"A.Example.ORG\" {}\n",
        "$HTTP[\"url\"] =~ \"^/a\" {}\n",
        "$HTTP[\"querystring\"] == \"q\" {}\n",
        "$HTTP[\"query-string\"] == \"r\" {}\n",
        "$HTTP[\"remoteip\"] == \"10.0.0.0/8\" {}\n",
        "$HTTP[\"remote-ip\"] != \"[::1]\" {}\n",
        "$HTTP[\"scheme\"] == \"https\" {}\n",
        "$HTTP[\"request-method\"] == \"POST\" {}\n",
        "$HTTP[\"useragent\"] =~ \"bot\" {}\n",
        "$HTTP[\"user-agent\"] =~ \"crawl\" {}\n",
        "$HTTP[\"referer\"] == \"\" {}\n",
        "$HTTP[\"cookie\"] =^ \"s=\" {}\n",
        "$HTTP[\"language\"] =$ \"de\" {}\n",
        "$REQUEST_HEADER[\"X-Any-Name\"] == \"1\" {}\n",
        "$SERVER[\"socket\"] == \":8443\" {}\n",
    ));
    let f: Vec<(CondField, CondOp, String)> = c.blocks[1..]
        .iter()
        .map(|b| {
            b.cond
                .clone()
                .map(|c| (c.field, c.op, c.pattern))
                .expect("cond")
        })
        .collect();
    let h = |n: &str| CondField::RequestHeader(n.into());
    assert_eq!(
        f[0],
        (CondField::Host, CondOp::Eq, "a.example.org".into()),
        "host is lowercased"
    );
    assert_eq!(f[1].0, CondField::Url);
    assert_eq!(f[2].0, CondField::QueryString);
    assert_eq!(f[3].0, CondField::QueryString);
    assert_eq!(f[4], (CondField::RemoteIp, CondOp::Eq, "10.0.0.0/8".into()));
    assert_eq!(
        f[5],
        (CondField::RemoteIp, CondOp::Ne, "::1".into()),
        "brackets dropped"
    );
    assert_eq!(f[6].0, CondField::Scheme);
    assert_eq!(f[7].0, CondField::RequestMethod);
    assert_eq!(f[8].0, h("User-Agent"));
    assert_eq!(f[9].0, h("User-Agent"));
    assert_eq!(f[10].0, h("Referer"));
    assert_eq!(f[11], (h("Cookie"), CondOp::Prefix, "s=".into()));
    assert_eq!(f[12], (h("Accept-Language"), CondOp::Suffix, "de".into()));
    assert_eq!(f[13].0, h("X-Any-Name"));
    assert_eq!(f[14].0, CondField::ServerSocket);
}

#[test]
fn unknown_condition_field_is_an_error() {
    let e = fail("$HTTP[\"hots\"] == \"x\" {}\n");
    assert!(e.message.contains("$HTTP[\"hots\"]"), "{e}");
    assert_eq!(e.hint.as_deref(), Some("did you mean $HTTP[\"host\"]?"));
    assert!(fail("$SERVER[\"port\"] == \"x\" {}\n")
        .message
        .contains("comp_key"));
    assert!(fail("$ENV[\"x\"] == \"x\" {}\n")
        .message
        .contains("comp_key"));
    assert_eq!(
        fail("$http[\"host\"] == \"x\" {}\n").hint.as_deref(),
        Some("did you mean $HTTP?")
    );
    assert_eq!(
        fail("$HTTP[\"Host\"] == \"x\" {}\n").hint.as_deref(),
        Some("did you mean $HTTP[\"host\"]?")
    );
}

#[test]
fn bad_remote_ip_is_an_error() {
    assert!(fail("$HTTP[\"remoteip\"] == \"10.0.0.0/40\" {}\n")
        .message
        .contains("invalid IP"));
}

#[test]
fn server_socket_eq_creates_a_listener_ne_does_not() {
    let c = load(concat!(
        "server.port = 8080\n",
        "$SERVER[\"socket\"] == \"127.0.0.1:8443\" { ssl.engine = \"enable\" }\n",
        "$SERVER[\"socket\"] == \"[::1]:8444\" { }\n",
        "$SERVER[\"socket\"] == \"/run/wick-test.sock\" { }\n",
        "$SERVER[\"socket\"] != \":9999\" { }\n",
        "$SERVER[\"socket\"] == \":8080\" { server.listen-backlog = 7 }\n",
    ));
    let addrs: Vec<String> = c
        .listeners
        .iter()
        .map(|l| match &l.addr {
            ListenAddr::Tcp(a) => a.to_string(),
            ListenAddr::Unix(p) => p.display().to_string(),
        })
        .collect();
    assert_eq!(
        addrs,
        [
            "0.0.0.0:8080",
            "127.0.0.1:8443",
            "[::1]:8444",
            "/run/wick-test.sock"
        ]
    );
    assert_eq!(
        c.listeners[0].block,
        Some(5),
        "\":8080\" is the global listener"
    );
    assert_eq!(c.listeners[0].socket.listen_backlog, 7);
    assert_eq!(c.listeners[1].block, Some(1));
    assert!(c.listeners[1].socket.ssl_engine);
    assert!(!c.listeners[2].socket.ssl_engine);
}

#[test]
fn server_bind_ipv6_and_unix() {
    let c = load("server.bind = \"::1\"\nserver.port = 8081\n");
    assert_eq!(
        c.listeners[0].addr,
        ListenAddr::Tcp("[::1]:8081".parse().expect("addr"))
    );
    let c = load("server.bind = \"/tmp/wick-x.sock\"\n");
    assert_eq!(
        c.listeners[0].addr,
        ListenAddr::Unix("/tmp/wick-x.sock".into())
    );
    let c = load("server.use-ipv6 = \"enable\"\nserver.port = 8082\n");
    assert_eq!(
        c.listeners[0].addr,
        ListenAddr::Tcp("[::]:8082".parse().expect("addr"))
    );
}

#[test]
fn else_chains_in_every_spelling() {
    let c = load(concat!(
        "$HTTP[\"host\"] == \"a\" { }\n",
        "else $HTTP[\"host\"] == \"b\" { }\n",
        "elif $HTTP[\"host\"] == \"c\" { }\n",
        "elsif $HTTP[\"host\"] == \"d\" { }\n",
        "elseif $HTTP[\"host\"] == \"e\" { }\n",
        "else if $HTTP[\"host\"] == \"f\" { } else {\n}\n",
        "if $HTTP[\"url\"] == \"/x\" { }\n",
    ));
    let links: Vec<Option<usize>> = c.blocks.iter().map(|b| b.else_of).collect();
    assert_eq!(
        links,
        [
            None,
            None,
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            None
        ]
    );
    assert!(c.blocks[7].cond.is_none(), "plain else");
    assert!(c.blocks[8].cond.is_some());
    // lighttpd 1.4.69 knows only 'else': the later spellings are said out loud.
    let said: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("lighttpd 1.4.69 reads it as"))
        .collect();
    assert_eq!(said.len(), 5, "{:?}", c.warnings);
    assert!(
        said[0].contains("t.conf:3:1: 'elif' is read as 'else'"),
        "{said:?}"
    );
    assert!(
        said[3].contains("t.conf:6:6: 'else if'") && said[3].contains("plain 'else'"),
        "{said:?}"
    );
    assert!(
        said[4].contains("t.conf:8:1: 'if' before a condition"),
        "{said:?}"
    );
}

#[test]
fn nothing_may_follow_a_plain_else() {
    let e = fail("$HTTP[\"host\"] == \"a\" { } else { } else $HTTP[\"host\"] == \"b\" { }\n");
    assert!(
        e.message
            .contains("unreachable condition following else catch-all"),
        "{e}"
    );
}

#[test]
fn same_condition_at_the_same_place_is_one_block() {
    let c = load("$HTTP[\"host\"] == \"a\" { server.tag = \"1\" }\n$HTTP[\"host\"] == \"a\" { server.name = \"2\" }\n");
    assert_eq!(c.blocks.len(), 2);
    assert_eq!(c.blocks[1].settings.len(), 2);
    let e = fail("$HTTP[\"host\"] == \"a\" { server.tag = \"1\" }\n$HTTP[\"host\"] == \"a\" { server.tag = \"2\" }\n");
    assert!(e.message.contains("Duplicate"));
}

#[test]
fn else_naming_an_earlier_condition_is_unreachable() {
    let e = fail("$HTTP[\"host\"] == \"a\" { }\n$HTTP[\"host\"] == \"b\" { } else $HTTP[\"host\"] == \"a\" { }\n");
    assert!(e.message.contains("unreachable else condition"), "{e}");
}

#[test]
fn brace_must_be_on_the_condition_line() {
    let e = fail("$HTTP[\"host\"] == \"a\"\n{\n}\n");
    assert_eq!(
        e.hint.as_deref(),
        Some("the '{' must be on the same line as the condition")
    );
    assert_eq!(e.loc.line, 1);
}

#[test]
fn condition_value_must_be_a_string() {
    let e = fail("$HTTP[\"url\"] == 5 { }\n");
    assert!(e.message.contains("rvalue must be string"), "{e}");
}

#[test]
fn unclosed_block_points_at_its_brace() {
    let e = fail("\n$HTTP[\"host\"] == \"a\" {\n server.tag = \"x\"\n");
    assert!(e.message.contains("never closed"), "{e}");
    assert_eq!((e.loc.line, e.loc.col), (2, 22));
}

// ---- warnings ---------------------------------------------------------------------

#[test]
fn unknown_keys_warn_var_and_dir_listing_do_not() {
    let c = load("server.document-rot = \"/x\"\nvar.mine = 1\ndir-listing.whatever = \"x\"\nserver.port = 80\n");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("WARNING: unknown config-key: server.document-rot (ignored)"));
    assert!(c.warnings[0].contains("did you mean server.document-root?"));
    assert!(
        c.warnings[0].ends_with(" (at t.conf:1)"),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn keys_of_modules_not_loaded_are_unknown() {
    let c = load("url.redirect = (\"^/a\" => \"/b\")\n");
    assert!(c
        .warnings
        .iter()
        .any(|w| w.starts_with("WARNING: unknown config-key: url.redirect (ignored)")));
    let c = load("server.modules = (\"mod_redirect\")\nurl.redirect = (\"^/a\" => \"/b\")\n");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn scope_warnings() {
    let c = load(concat!(
        "$HTTP[\"host\"] == \"x\" {\n server.port = 81\n server.listen-backlog = 5\n server.tag = \"ok\"\n}\n",
        "$SERVER[\"socket\"] == \":8443\" { server.listen-backlog = 5 }\n",
    ));
    assert_eq!(
        c.warnings,
        [
            "DEPRECATED: do not set server options in conditionals, variable: server.port",
            "WARNING: server.listen-backlog must be in global scope or $SERVER[\"socket\"] with '==', or else is ignored",
        ]
    );
    assert_eq!(
        c.server.port, 80,
        "a server option in a condition is ignored"
    );
}

// ---- errors -----------------------------------------------------------------------

#[test]
fn errors_show_file_line_column_line_and_caret() {
    let e = fail("server.port = 80\nserver.tag = \"a\" \"b\"\n");
    let shown = e.to_string();
    assert!(shown.starts_with("t.conf:2:18: "), "{shown}");
    assert!(shown.contains("\n  server.tag = \"a\" \"b\"\n"), "{shown}");
    assert!(
        shown.contains(&format!("\n  {}^", " ".repeat(17))),
        "{shown}"
    );
    assert!(
        shown.contains("strings may be combined with '+'"),
        "{shown}"
    );
}

#[test]
fn brace_on_a_key_hints_at_conditions() {
    let e = fail("host == \"x\" {\n}\n");
    assert!(e.to_string().contains("t.conf:1:"));
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = format!("a = {}1{}\n", "(".repeat(200), ")".repeat(200));
    assert!(fail(&deep).message.contains("nested"));
    let mut blocks = String::new();
    for i in 0..100 {
        blocks.push_str(&format!("$HTTP[\"url\"] =^ \"/{i}\" {{\n"));
    }
    blocks.push_str(&"}\n".repeat(100));
    assert!(fail(&blocks).message.contains("nested"));
}

#[test]
fn include_loop_is_refused() {
    let d = tmpdir("loop");
    fs::write(d.join("main.conf"), "include \"main.conf\"\n").expect("write");
    let e = load_file(&d.join("main.conf")).expect_err("loop");
    assert!(e.message.contains("include loop"), "{e}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn caret_keeps_tabs_and_unreadable_files_have_no_position() {
    let e = fail("\tserver.tag = \"a\" \"b\"\n");
    assert!(
        e.to_string()
            .contains("\n  \tserver.tag = \"a\" \"b\"\n  \t                 ^"),
        "{e}"
    );
    let e = load_file(Path::new("/nonexistent/wick.conf")).expect_err("missing file");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/wick.conf: opening configfile"),
        "{e}"
    );
}

#[test]
fn host_names_are_resolved_only_for_binding() {
    // Loading (what -p and -t do) leaves a host name as written.
    let mut c = load(concat!(
        "server.bind = \"localhost\"\nserver.port = 8085\n",
        "$SERVER[\"socket\"] == \"no-such-host.invalid:8086\" { }\n",
    ));
    assert_eq!(c.listeners[0].host.as_deref(), Some("localhost"));
    assert_eq!(c.listeners[1].host.as_deref(), Some("no-such-host.invalid"));
    let e = wick_conf::resolve_listeners(&mut c).expect_err("unresolvable");
    assert!(
        e.contains("t.conf:3: cannot resolve \"no-such-host.invalid\""),
        "{e}"
    );
    let mut c = load("server.bind = \"localhost\"\nserver.port = 8085\n");
    wick_conf::resolve_listeners(&mut c).expect("localhost resolves");
    assert_eq!(c.listeners[0].host, None);
    match &c.listeners[0].addr {
        ListenAddr::Tcp(a) => assert!(a.ip().is_loopback() && a.port() == 8085, "{a}"),
        other => panic!("{other:?}"),
    }
}
