//! What wickd says about keys it does not act on (one warning per key, with its
//! module and file:line), what it refuses (keys whose absence opens access, modules
//! lighttpd does not have), and the modules lighttpd 1.4.69 loads by itself.

use std::path::Path;
use wick_conf::{load_str, support, Config};

fn load(text: &str) -> Config {
    load_str(text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"))
}

const BASE: &str = "server.document-root = \"/tmp\"\n";

#[test]
fn an_ignored_key_warns_once_with_module_and_place() {
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_webdav\")\nserver.core-files = \"enable\"\n\
         webdav.activate = \"enable\"\n\
         $HTTP[\"host\"] == \"a\" {{\n  webdav.activate = \"disable\"\n}}\n"
    ));
    let w: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("not acted on by wickd"))
        .collect();
    assert_eq!(w.len(), 2, "{:?}", c.warnings);
    assert!(
        w[0].contains("t.conf:3: server.core-files (core)"),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("t.conf:4: webdav.activate (mod_webdav)"),
        "{}",
        w[1]
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("t.conf:2: server.modules: mod_webdav is not built into wickd")),
        "{:?}",
        c.warnings
    );
    assert_eq!(
        support::check(&c),
        Ok(()),
        "ignored keys do not stop start-up"
    );
}

#[test]
fn acted_on_keys_draw_no_warning() {
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_rewrite\")\nurl.rewrite-once = ( \"^/a\" => \"/b\" )\nserver.tag = \"x\"\n"
    ));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn keys_that_would_open_access_are_refused() {
    // auth.require without mod_auth: lighttpd would ignore it.
    let c = load(&format!(
        "{BASE}$HTTP[\"url\"] =^ \"/p\" {{\nauth.require = ( \"/p\" => ( \"method\" => \"basic\", \"realm\" => \"r\", \"require\" => \"valid-user\" ) )\n}}\n"
    ));
    let e = support::check(&c).expect_err("auth.require");
    assert!(
        e.contains("t.conf:3: auth.require: mod_auth is not in server.modules"),
        "{e}"
    );
    for (key_line, key) in [
        ("secdownload.secret = \"s\"", "secdownload.secret"),
        (
            "magnet.attract-physical-path-to = ( \"/etc/a.lua\" )",
            "magnet.attract-physical-path-to",
        ),
    ] {
        for modules in ["", "server.modules = (\"mod_auth\", \"mod_openssl\")\n"] {
            let c = load(&format!(
                "{BASE}{modules}$HTTP[\"url\"] =^ \"/p\" {{\n{key_line}\n}}\n"
            ));
            let e = support::check(&c).expect_err(key);
            let line = if modules.is_empty() { 3 } else { 4 };
            assert!(e.contains(&format!("t.conf:{line}: {key}: ")), "{e}");
            assert!(e.contains("refuses to start"), "{e}");
        }
    }
}

#[test]
fn what_restricts_nothing_is_not_refused() {
    let c = load(&format!(
        "{BASE}ssl.engine = \"disable\"\nauth.require = ()\n"
    ));
    assert_eq!(support::check(&c), Ok(()));
    // Without ssl.engine, the other ssl.* keys protect nothing (lighttpd serves
    // the same); those wickd has no use for draw a warning each, no refusal.
    // auth.backend is mod_auth's: acted on.
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_auth\")\nauth.backend = \"htpasswd\"\nssl.dh-file = \"/x.pem\"\n"
    ));
    assert_eq!(support::check(&c), Ok(()));
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.contains("auth.backend (mod_auth)")),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("ssl.dh-file (mod_openssl) is accepted but not acted on")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn modules_must_be_known_to_lighttpd() {
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_access\", \"mod_bogus\")\n"
    ));
    let e = support::check(&c).expect_err("bogus module");
    assert!(
        e.contains("t.conf:2: server.modules: unknown module \"mod_bogus\""),
        "{e}"
    );
}

#[test]
fn lighttpd_loads_mod_openssl_for_ssl_keys() {
    let c = load(&format!(
        "{BASE}$SERVER[\"socket\"] == \":443\" {{\n ssl.engine = \"enable\"\n}}\n"
    ));
    let m = c.server.effective_modules();
    assert!(m.iter().any(|m| m == "mod_openssl"), "{m:?}");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("please add \"mod_openssl\"")),
        "{:?}",
        c.warnings
    );
    // Loaded, so its keys are not "unknown"; and built (TLS on rustls).
    assert!(
        !c.warnings.iter().any(|w| w.contains("unknown config-key")),
        "{:?}",
        c.warnings
    );
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.contains("mod_openssl") && w.contains("is not built into wickd")),
        "{:?}",
        c.warnings
    );
    // Not with server.compat-module-load disabled: the key is then unknown.
    let c = load(&format!(
        "{BASE}server.compat-module-load = \"disable\"\nssl.pemfile = \"/x.pem\"\n"
    ));
    assert!(!c
        .server
        .effective_modules()
        .iter()
        .any(|m| m == "mod_openssl"));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("unknown config-key: ssl.pemfile")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn lighttpd_loads_authn_backends_with_mod_auth() {
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_auth\")\nauth.backend = \"htpasswd\"\n"
    ));
    assert_eq!(
        c.server.effective_modules(),
        [
            "mod_indexfile",
            "mod_auth",
            "mod_staticfile",
            "mod_authn_file"
        ]
    );
}

#[test]
fn lighttpd_internals_take_what_lighttpd_takes_on_linux() {
    for ok in [
        "server.event-handler = \"linux-sysepoll\"",
        "server.event-handler = \"poll\"",
        "server.network-backend = \"writev\"",
        "server.network-backend = \"linux-sendfile\"",
        "server.stat-cache-engine = \"simple\"",
        "server.stat-cache-engine = \"disable\"",
    ] {
        let c = load(&format!("{BASE}{ok}\n"));
        assert_eq!(support::check(&c), Ok(()), "{ok}");
        assert!(c.warnings.is_empty(), "{ok}: quietly: {:?}", c.warnings);
    }
    for (bad, message) in [
        (
            "server.event-handler = \"freebsd-kqueue\"",
            "t.conf:2: the selected event-handler in unknown or not supported: freebsd-kqueue",
        ),
        (
            "server.network-backend = \"mmap\"",
            "t.conf:2: server.network-backend has an unknown value: mmap",
        ),
        (
            "server.stat-cache-engine = \"kqueue\"",
            "t.conf:2: server.stat-cache-engine can be one of \"disable\", \"simple\", \"inotify\", \"fam\", but not: kqueue",
        ),
        (
            "server.event-handler = \"EPOLL\"",
            "not supported: EPOLL",
        ),
    ] {
        let c = load(&format!("{BASE}{bad}\n"));
        let e = support::check(&c).expect_err(bad);
        assert!(e.contains(message), "{e}");
    }
}

#[test]
fn old_names_lighttpd_still_reads() {
    let c = load(&format!(
        "{BASE}server.indexfiles = ( \"home.html\" )\nserver.dir-listing = \"enable\"\n"
    ));
    let p = &c.patches[0];
    assert_eq!(
        p.index_files().map(Vec::as_slice),
        Some(&["home.html".to_string()][..])
    );
    assert_eq!(p.dirlist_activate().copied(), Some(true));
    // lighttpd 1.4.69 takes these two without a word.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_deflate\")\ncompress.filetype = ( \"text/plain\" )\n\
         $HTTP[\"host\"] == \"a\" {{\ncompress.filetype = ( \"text/html\" )\n}}\n"
    ));
    let d: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.starts_with("DEPRECATED: "))
        .collect();
    assert_eq!(
        d,
        ["DEPRECATED: compress.filetype replaced with deflate.mimetypes"],
        "{:?}",
        c.warnings
    );
}

#[test]
fn scripts_that_would_be_served_as_source_are_refused() {
    // mod_fastcgi is built: with it in force, its suffixes go to the backend.
    let php = "fastcgi.server = ( \".php\" => (( \"socket\" => \"/run/php.sock\" )), \"/app\" => (( \"socket\" => \"/run/app.sock\" )) )";
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_fastcgi\")\n{php}\n"
    ));
    assert_eq!(support::check(&c), Ok(()));
    assert!(
        !c.warnings.iter().any(|w| w.contains("fastcgi.server")),
        "{:?}",
        c.warnings
    );
    // Without the module in force, lighttpd would serve the files: refused.
    let c = load(&format!("{BASE}server.modules = (\"mod_access\")\n{php}\n"));
    let e = support::check(&c).expect_err(".php served as source");
    assert!(
        e.contains("t.conf:3: fastcgi.server: mod_fastcgi is not in server.modules: files ending in \".php\" would be served"),
        "{e}"
    );
    // mod_scgi likewise.
    let py = "scgi.server = ( \".py\" => (( \"socket\" => \"/run/py.sock\" )), \"/app\" => (( \"socket\" => \"/run/app.sock\" )) )";
    let c = load(&format!("{BASE}server.modules = (\"mod_scgi\")\n{py}\n"));
    assert_eq!(support::check(&c), Ok(()));
    let c = load(&format!("{BASE}server.modules = (\"mod_access\")\n{py}\n"));
    let e = support::check(&c).expect_err(".py served as source");
    assert!(
        e.contains("t.conf:3: scgi.server: mod_scgi is not in server.modules: files ending in \".py\" would be served"),
        "{e}"
    );
    // A gateway wickd does not have.
    let jsp = "ajp13.server = ( \".jsp\" => (( \"host\" => \"127.0.0.1\", \"port\" => 8009 )), \"/app\" => (( \"host\" => \"127.0.0.1\", \"port\" => 8010 )) )";
    let c = load(&format!("{BASE}server.modules = (\"mod_ajp13\")\n{jsp}\n"));
    let e = support::check(&c).expect_err(".jsp served as source");
    assert!(
        e.contains("t.conf:3: ajp13.server: mod_ajp13 is not built into wickd: files ending in \".jsp\" would be served"),
        "{e}"
    );
    assert!(
        !e.contains("/app"),
        "a URL prefix serves no script file: {e}"
    );
    // Kept from being served (Debian's lighttpd.conf does so): a warning only.
    for guard in [
        "static-file.exclude-extensions = ( \".jsp\", \".pl\", \".fcgi\" )",
        "url.access-deny = ( \"~\", \".jsp\" )",
    ] {
        let c = load(&format!(
            "{BASE}server.modules = (\"mod_ajp13\")\n{guard}\n{jsp}\n"
        ));
        assert_eq!(support::check(&c), Ok(()), "{guard}");
        assert!(
            c.warnings.iter().any(|w| w.contains("ajp13.server (mod_ajp13) is accepted but not acted on by wickd (ignored); files it would hand to a backend are served as they are")),
            "{:?}",
            c.warnings
        );
    }
}

/// bin-path is acted on (the gateway-spawner starts the program): no warning;
/// lighttpd's adaptive spawning (min-procs below max-procs, idle-timeout) is
/// not, and says so where it is set.
#[test]
fn fastcgi_bin_path_is_acted_on_adaptive_spawning_is_not() {
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_fastcgi\")\nfastcgi.server = ( \".php\" => (( \"bin-path\" => \"/usr/bin/php-cgi\", \"socket\" => \"/run/php.sock\" )) )\n"
    ));
    assert_eq!(support::check(&c), Ok(()));
    assert!(
        !c.warnings.iter().any(|w| w.contains("bin-path")),
        "{:?}",
        c.warnings
    );
    let c = load(&format!(
        "{BASE}server.modules = (\"mod_fastcgi\")\nfastcgi.server = ( \".php\" => (( \"bin-path\" => \"/usr/bin/php-cgi\", \"socket\" => \"/run/php.sock\", \"min-procs\" => 1, \"max-procs\" => 4, \"idle-timeout\" => 20 )) )\n"
    ));
    assert!(
        c.warnings.iter().any(|w| w.contains("t.conf:3: fastcgi.server \"bin-path\" => \"/usr/bin/php-cgi\": min-procs 1 below max-procs 4, idle-timeout: not acted on")),
        "{:?}",
        c.warnings
    );
    assert_eq!(wick_conf::spawn::backends(&c).map(|b| b[0].procs), Ok(4));
}

#[test]
fn keys_read_from_the_global_block_only_warn_in_a_condition() {
    let c = load(&format!(
        "{BASE}$HTTP[\"host\"] == \"a\" {{\nserver.errorlog = \"/tmp/a.log\"\nserver.max-keep-alive-idle = 1\n}}\n"
    ));
    assert!(
        c.warnings.iter().any(|w| w.contains(
            "t.conf:3: server.errorlog in a condition is not acted on by wickd (only the global value is used)"
        )),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("t.conf:4: server.max-keep-alive-idle in a condition")),
        "{:?}",
        c.warnings
    );
    let c = load(&format!("{BASE}server.errorlog = \"/tmp/a.log\"\n"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// server.http-parseopts is read at load with lighttpd's checks: an unknown option,
/// a bad value or a conflict is an error at its file:line; an option wickd does not
/// relax is a warning.
#[test]
fn http_parseopts_errors_and_warnings() {
    let err = |opts: &str| {
        load_str(
            &format!("{BASE}\nserver.http-parseopts = ( {opts} )\n"),
            "t.conf",
            Path::new(""),
        )
        .map(|_| ())
        .expect_err("an error")
        .to_string()
    };
    let e = err("\"url-frob\" => \"enable\"");
    assert!(
        e.contains("t.conf:3")
            && e.contains("unrecognized key for server.http-parseopts: url-frob"),
        "{e}"
    );
    let e = err("\"host-strict\" => \"maybe\"");
    assert!(
        e.contains("unrecognized value for server.http-parseopts: host-strict => maybe"),
        "{e}"
    );
    let e = err("\"url-path-dotseg-reject\" => \"enable\"");
    assert!(e.contains("conflicting options"), "{e}");
    let c = load(&format!(
        "{BASE}server.http-parseopts = ( \"header-strict\" => \"disable\", \"url-query-20-plus\" => \"enable\" )\n"
    ));
    let o = c.server.http_parseopts;
    assert!(!o.has(wick_conf::parseopts::ParseOpts::HEADER_STRICT));
    assert!(o.has(wick_conf::parseopts::ParseOpts::QUERY_20_PLUS));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("t.conf:2: server.http-parseopts: header-strict disabled")),
        "{:?}",
        c.warnings
    );
    assert!(!c
        .warnings
        .iter()
        .any(|w| w.contains("not acted on by wickd")));
    let c = load(&format!(
        "{BASE}server.http-parseopt-host-strict = \"disable\"\n"
    ));
    assert!(!c
        .server
        .http_parseopts
        .has(wick_conf::parseopts::ParseOpts::HOST_STRICT));
}

/// What wickd's mod_auth lacks is refused, never served open: backends it does
/// not have. A user file it cannot open is a warning (logins fail closed). Basic
/// and Digest are served.
#[test]
fn auth_refuses_what_it_cannot_enforce() {
    let req = |m: &str| {
        format!("auth.require = ( \"/p\" => ( \"method\" => \"{m}\", \"realm\" => \"r\", \"require\" => \"valid-user\" ) )\n")
    };
    let m = "server.modules = (\"mod_auth\")\n";
    let ok = load(&format!(
        "{BASE}{m}auth.backend = \"plain\"\nauth.backend.plain.userfile = \"/etc/hostname\"\n{}",
        req("basic")
    ));
    assert_eq!(support::check(&ok), Ok(()));
    let c = load(&format!(
        "{BASE}{m}auth.backend = \"plain\"\nauth.backend.plain.userfile = \"/etc/hostname\"\n{}",
        req("digest")
    ));
    assert_eq!(support::check(&c), Ok(()));
    let c = load(&format!(
        "{BASE}{m}auth.backend = \"ldap\"\n{}",
        req("basic")
    ));
    let e = support::check(&c).expect_err("ldap");
    assert!(e.contains("t.conf:3: auth.backend \"ldap\""), "{e}");
    let c = load(&format!(
        "{BASE}{m}auth.backend = \"htpasswd\"\nauth.backend.htpasswd.userfile = \"/nonexistent/htpasswd\"\n{}",
        req("basic")
    ));
    // A user file that cannot be read: lighttpd starts (and refuses every login);
    // wickd too, with a warning naming it.
    assert_eq!(support::check(&c), Ok(()));
    let w = wick_conf::preflight::warnings(&c).join("\n");
    assert!(
        w.contains("auth.backend.htpasswd.userfile /nonexistent/htpasswd: cannot be read"),
        "{w}"
    );
}

/// A server.feature-flags entry wickd does not act on is said, with its place;
/// the ones it acts on are not.
#[test]
fn a_feature_flag_not_acted_on_warns() {
    let c = load(&format!(
        "{BASE}server.feature-flags = ( \"server.clock-jump-restart\" => \"enable\", \"server.h2proto\" => \"enable\", \"request.trailer-whitelist\" => \"X-A\", \"auth.delay-invalid-creds\" => \"disable\" )\n"
    ));
    let w: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("server.feature-flags"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    assert!(
        w[0].contains(
            "t.conf:2: server.feature-flags \"server.clock-jump-restart\" is accepted but not acted on"
        ),
        "{}",
        w[0]
    );
}
