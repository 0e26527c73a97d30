//! Every configuration in ../shared/compat/lighttpd-confs that lighttpd accepts is
//! accepted by the real `wickd -p`, each run in its own namespace with the stubs its
//! INDEX row lists (conf_accept.py does that; it needs root).

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
    let json = dir.path().join("out.json");
    let out = Command::new("python3")
        .arg(compat.join("conf_accept.py"))
        .arg(&index)
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
