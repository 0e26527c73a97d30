//! Every configuration in ../shared/compat/lighttpd-confs that lighttpd accepts is
//! accepted by the real `wickd -p`, and `wickd -tt` gives lighttpd -tt's verdict
//! file by file but for wickd's own refusals, each run in its own namespace with the
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

#[test]
fn wickd_p_accepts_every_config_lighttpd_accepts() {
    let Some((compat, tsv)) = corpus("wickd_p_accepts_every_config_lighttpd_accepts") else {
        return;
    };
    let accepted: Vec<String> = verdicts(&tsv, "lighttpd_1.4.69_p")
        .into_iter()
        .filter(|(_, v)| v == "ok")
        .map(|(f, _)| f)
        .collect();
    assert!(accepted.len() > 100, "INDEX lists too few accepted files");
    let failed: Vec<String> = run_conf_accept(&compat, &tsv, "-p")
        .into_iter()
        .filter(|(file, rc, _)| rc != "0" && accepted.contains(file))
        .map(|(file, rc, err)| format!("{file}: rc {rc}: {err}"))
        .collect();
    assert!(
        failed.is_empty(),
        "wickd -p refused {} files lighttpd accepts:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Where wickd -tt parts from lighttpd -tt on purpose, file by file.
const TT_DIFFERENCES: &[(&str, &str)] = &[
    (
        "real-world/flack__openpsa__config__lighttpd.conf",
        "lighttpd 1.4.69 drops a list element that follows a missing comma; wickd keeps it (with a warning), and the alias.url it keeps is refused by the order check",
    ),
    (
        "lighttpd1.4/lighttpd__lighttpd1.4__doc__config__conf.d__webdav.conf",
        "lighttpd fails on a file mod_webdav needs; wickd does not act on mod_webdav (a warning)",
    ),
];

/// wickd -tt gives lighttpd -tt's verdict file by file, except where wickd refuses
/// on purpose (keys whose absence would open access; files start-up could not
/// open, which lighttpd's -tt does not check) and the differences listed above.
#[test]
fn wickd_tt_gives_lighttpds_verdicts_but_for_its_refusals() {
    let Some((compat, tsv)) = corpus("wickd_tt_gives_lighttpds_verdicts_but_for_its_refusals")
    else {
        return;
    };
    let lighttpd = verdicts(&tsv, "lighttpd_1.4.69_tt");
    let refusal = |err: &str| {
        [
            ": auth.require: mod_auth is not in server.modules",
            "are built into wickd: what auth.require protects",
            "wickd refuses a user file it cannot open",
            ": ssl.engine: TLS is not built into wickd",
            ": secdownload.",
            ": magnet.",
            "would be served as they are (their source)",
            "(start-up would fail",
        ]
        .iter()
        .any(|r| err.contains(r))
    };
    let (mut wrong, mut refused) = (Vec::new(), 0);
    for (file, rc, err) in run_conf_accept(&compat, &tsv, "-tt") {
        let lighttpd_ok = lighttpd.iter().any(|(f, v)| *f == file && v == "ok");
        let known = TT_DIFFERENCES.iter().any(|(f, _)| *f == file);
        match (lighttpd_ok, rc == "0") {
            (true, false) if refusal(&err) => refused += 1,
            (a, b) if a == b || known => {}
            (a, _) => wrong.push(format!(
                "{file}: lighttpd -tt {}, wickd -tt rc {rc}: {err}",
                if a { "accepts" } else { "refuses" }
            )),
        }
    }
    eprintln!("wickd -tt refuses {refused} files lighttpd -tt accepts, on purpose");
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
