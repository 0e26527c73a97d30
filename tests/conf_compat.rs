//! `wickd -p` and `wickd -tt` give lighttpd 1.4.69's verdicts (INDEX.tsv) on every
//! configuration in ../shared/compat/lighttpd-confs, file by file, but for the
//! deliberate differences listed below, each run in its own namespace with the
//! stubs its INDEX row lists (conf_accept.py does that; it needs root), and a no-op shim for
//! each Debian include_shell helper (/usr/share/lighttpd/*.pl) it names: the index
//! was made with them installed, and a machine without Debian's lighttpd has none.

mod common;

#[path = "common/debian.rs"]
mod debian;
use debian::debian_helpers;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus, or None (with the reason printed) where this test cannot run.
fn corpus(test: &str) -> Option<(PathBuf, String)> {
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat");
    let index = compat.join("lighttpd-confs/INDEX.tsv");
    if !index.exists() {
        eprintln!(
            "SKIP {test}: corpus {} not on this machine",
            index.display()
        );
        return None;
    }
    if common::skip_unless_root(test) {
        return None;
    }
    let tsv = std::fs::read_to_string(&index).expect("read INDEX.tsv");
    Some((compat, tsv))
}

/// lighttpd's verdict per file, from the INDEX column `column`.
fn verdicts(tsv: &str, column: &str) -> Vec<(String, String)> {
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).expect("column");
    let (file_col, v_col) = (col("file"), col(column));
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .map(|f| {
            (
                f[file_col].to_string(),
                f.get(v_col).unwrap_or(&"").to_string(),
            )
        })
        .collect()
}

/// Run conf_accept.py with wickd `mode` over the corpus: (file, rc, first error).
fn run_conf_accept(compat: &Path, tsv: &str, mode: &str) -> Vec<(String, String, String)> {
    let dir = common::TempDir::new();
    let shimmed_index = dir.path().join("INDEX.tsv");
    std::fs::write(&shimmed_index, with_helper_shims(tsv, compat)).expect("write INDEX");
    let json = dir.path().join("out.json");
    let out = Command::new("python3")
        .arg(compat.join("conf_accept.py"))
        .arg(&shimmed_index)
        .arg(compat.join("lighttpd-confs"))
        .arg(common::wickd_bin())
        .arg(mode)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run conf_accept.py");
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    assert!(
        !text.is_empty(),
        "conf_accept.py wrote nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One {"rc": N, "err": "...", "file": "..."} object per file, a key per line
    // (json.dump with indent); read them without a JSON crate.
    text.split('{')
        .skip(1)
        .map(|obj| {
            let field = |k: &str| {
                obj.lines()
                    .find_map(|l| l.trim().strip_prefix(&format!("\"{k}\":")))
                    .map(|v| v.trim().trim_end_matches(',').trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            (field("file"), field("rc"), field("err"))
        })
        .collect()
}

/// Where wickd -p's verdict differs from lighttpd 1.4.69's on purpose: (file,
/// why). Each difference is named in wickd.conf(5) ("DIFFERENCES FROM LIGHTTPD").
const P_ACCEPTED: &[(&str, &str)] = &[(
    "lighttpd1.4/lighttpd__lighttpd1.4__tests__condition.conf",
    "if/elif/elsif/elseif/else if of later lighttpd releases: wickd reads them as those do, \
     with a warning; lighttpd 1.4.69 reads 'if $HTTP[..] {' as a variable name and the \
     block's settings as global ones, here a duplicate server.name",
)];

/// Files wickd -tt refuses and lighttpd 1.4.69's -tt accepts, on purpose: (file,
/// what wickd's message says). Each is a key wickd would otherwise ignore where
/// lighttpd too ignores it, at the cost of serving openly what the file means to
/// protect or run ("Refused at start-up" in wickd.conf(5)).
const TT_REFUSED: &[(&str, &str)] = &[
    // fastcgi.server without mod_fastcgi in server.modules: lighttpd would serve
    // the .php files as they are, their source.
    (
        "real-world/0d0f__exfe-options__lighttpd.conf",
        "fastcgi.server: mod_fastcgi is not in server.modules",
    ),
    (
        "real-world/MythTV__mythweb__config__lighttpd.conf",
        "fastcgi.server: mod_fastcgi is not in server.modules",
    ),
    (
        "debian/debian__lighttpd-1.4.69-1__etc__lighttpd__conf-available__15-fastcgi-php-fpm.conf",
        "fastcgi.server: mod_fastcgi is not in server.modules",
    ),
    (
        "debian/debian__lighttpd-1.4.69-1__etc__lighttpd__conf-available__15-fastcgi-php.conf",
        "fastcgi.server: mod_fastcgi is not in server.modules",
    ),
    // auth.require without mod_auth: lighttpd would serve what it protects to
    // anyone.
    (
        "real-world/HEnquist__docker-webdav__files__webdav.conf",
        "auth.require: mod_auth is not in server.modules",
    ),
];

/// Files lighttpd 1.4.69's -tt refuses and wickd -tt accepts: (file, why).
const TT_ACCEPTED: &[(&str, &str)] = &[
    (
        "lighttpd1.4/lighttpd__lighttpd1.4__doc__config__conf.d__webdav.conf",
        "lighttpd cannot load mod_webdav.so (Debian ships it in lighttpd-mod-webdav, \
         not installed where the index was made); wickd has no mod_webdav and says so \
         (a warning, its keys not acted on)",
    ),
    (
        "lighttpd1.4/lighttpd__lighttpd1.4__tests__condition.conf",
        "lighttpd 1.4.69 refuses it already with -p (see P_ACCEPTED)",
    ),
];

/// wickd -p's verdict is lighttpd 1.4.69 -p's, file by file, but for P_ACCEPTED.
#[test]
fn wickd_p_gives_lighttpds_verdicts() {
    let Some((compat, tsv)) = corpus("wickd_p_gives_lighttpds_verdicts") else {
        return;
    };
    let lighttpd = verdicts(&tsv, "lighttpd_1.4.69_p");
    assert!(
        lighttpd.iter().filter(|(_, v)| v == "ok").count() > 100,
        "INDEX lists too few accepted files"
    );
    let results = run_conf_accept(&compat, &tsv, "-p");
    assert_eq!(results.len(), lighttpd.len(), "a file was not run");
    let mut wrong = Vec::new();
    for (file, rc, err) in results {
        let lighttpd_ok = lighttpd.iter().any(|(f, v)| *f == file && v == "ok");
        let expect_ok = lighttpd_ok || P_ACCEPTED.iter().any(|(f, _)| *f == file);
        if expect_ok != (rc == "0") {
            wrong.push(format!(
                "{file}: lighttpd -p {}, wickd -p rc {rc}: {err}",
                if lighttpd_ok { "accepts" } else { "refuses" }
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "wickd -p differs from lighttpd -p on {} files:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// wickd -tt's verdict is lighttpd 1.4.69 -tt's, file by file, but for the lists
/// above; a deliberate refusal must give its reason.
#[test]
fn wickd_tt_gives_lighttpds_verdicts() {
    let Some((compat, tsv)) = corpus("wickd_tt_gives_lighttpds_verdicts") else {
        return;
    };
    let lighttpd = verdicts(&tsv, "lighttpd_1.4.69_tt");
    let results = run_conf_accept(&compat, &tsv, "-tt");
    assert_eq!(results.len(), lighttpd.len(), "a file was not run");
    let mut wrong = Vec::new();
    for (file, rc, err) in results {
        let lighttpd_ok = lighttpd.iter().any(|(f, v)| *f == file && v == "ok");
        let refused = TT_REFUSED.iter().find(|(f, _)| *f == file);
        let accepted = TT_ACCEPTED.iter().any(|(f, _)| *f == file);
        let expect_ok = (lighttpd_ok && refused.is_none()) || accepted;
        if expect_ok != (rc == "0") {
            wrong.push(format!(
                "{file}: lighttpd -tt {}, wickd -tt rc {rc}: {err}",
                if lighttpd_ok { "accepts" } else { "refuses" }
            ));
        } else if let Some((_, why)) = refused {
            if !err.contains(why) {
                wrong.push(format!("{file}: refused, but not for \"{why}\": {err}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "wickd -tt differs from lighttpd -tt on {} files:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// INDEX.tsv with a `shim-cmd` stub added for each Debian helper a file names.
fn with_helper_shims(tsv: &str, compat: &Path) -> String {
    let mut lines = tsv.lines();
    let head = lines.next().unwrap_or("");
    let cols: Vec<&str> = head.split('\t').collect();
    let col = |name: &str| cols.iter().position(|h| *h == name).expect("column");
    let (file_col, stubs_col) = (col("file"), col("stubs_needed"));
    let mut out = format!("{head}\n");
    let mut shimmed: Vec<String> = Vec::new();
    for l in lines {
        let mut f: Vec<String> = l.split('\t').map(str::to_string).collect();
        let text = std::fs::read(compat.join("lighttpd-confs").join(&f[file_col]))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        while f.len() <= stubs_col {
            f.push(String::new());
        }
        for h in debian_helpers(&text) {
            let stub = format!("shim-cmd:{h}");
            if f[stubs_col].split(';').any(|s| s == stub) {
                continue;
            }
            if !f[stubs_col].is_empty() {
                f[stubs_col].push(';');
            }
            f[stubs_col].push_str(&stub);
            if !shimmed.contains(&h) {
                shimmed.push(h);
            }
        }
        out.push_str(&f.join("\t"));
        out.push('\n');
    }
    eprintln!(
        "shimmed Debian helpers (no output, exit 0): {}",
        shimmed.join(", ")
    );
    out
}
