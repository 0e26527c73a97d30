//! Every configuration in ../shared/compat/lighttpd-confs that lighttpd accepts is
//! accepted by the real `wickd -p`, each run in its own namespace with the stubs its
//! INDEX row lists (conf_accept.py does that; it needs root), and a no-op shim for
//! each Debian include_shell helper (/usr/share/lighttpd/*.pl) it names: the index
//! was made with them installed, and a machine without Debian's lighttpd has none.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn wickd_p_accepts_every_config_lighttpd_accepts() {
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat");
    let index = compat.join("lighttpd-confs/INDEX.tsv");
    if !index.exists() {
        eprintln!("SKIP: corpus {} not on this machine", index.display());
        return;
    }
    if common::skip_unless_root("wickd_p_accepts_every_config_lighttpd_accepts") {
        return;
    }
    // Which files lighttpd itself accepts with -p.
    let tsv = std::fs::read_to_string(&index).expect("read INDEX.tsv");
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).expect("column");
    let (file_col, p_col) = (col("file"), col("lighttpd_1.4.69_p"));
    let accepted: Vec<String> = lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.get(p_col) == Some(&"ok"))
        .map(|f| f[file_col].to_string())
        .collect();
    assert!(accepted.len() > 100, "INDEX lists too few accepted files");

    let dir = common::TempDir::new();
    let shimmed_index = dir.path().join("INDEX.tsv");
    std::fs::write(&shimmed_index, with_helper_shims(&tsv, &compat)).expect("write INDEX");
    let json = dir.path().join("out.json");
    let out = Command::new("python3")
        .arg(compat.join("conf_accept.py"))
        .arg(&shimmed_index)
        .arg(compat.join("lighttpd-confs"))
        .arg(common::wickd_bin())
        .arg("-p")
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
    // One {"rc": N, "err": "...", "file": "..."} object per file; read the pairs
    // without a JSON crate.
    let mut failed = Vec::new();
    for obj in text.split('{').skip(1) {
        let field = |k: &str| {
            obj.split(&format!("\"{k}\":"))
                .nth(1)
                .map(|r| {
                    r.trim_start()
                        .split([',', '\n'])
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
                .unwrap_or_default()
        };
        let (rc, file) = (field("rc"), field("file"));
        if rc != "0" && accepted.contains(&file) {
            failed.push(format!("{file}: rc {rc}: {}", field("err")));
        }
    }
    assert!(
        failed.is_empty(),
        "wickd -p refused {} files lighttpd accepts:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The Debian helper scripts a config names (`/usr/share/lighttpd/NAME.pl`).
fn debian_helpers(text: &str) -> Vec<String> {
    const DIR: &str = "/usr/share/lighttpd/";
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.match_indices(DIR) {
        let name: String = text[i + DIR.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let path = format!("{DIR}{name}");
        if name.ends_with(".pl") && !out.contains(&path) {
            out.push(path);
        }
    }
    out
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
