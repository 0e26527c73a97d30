//! Every lighttpd configuration of ../shared/compat/lighttpd-confs that lighttpd
//! 1.4.69 accepts with `-p` (INDEX.tsv) must load and print (what `wickd -p` does),
//! and the printed form must load again to the same configuration.
//!
//! Each file runs in a scratch copy with the stubs its `stubs_needed` column lists
//! (as ../shared/compat/conf_accept.py makes them): empty include files, no-op
//! include_shell helpers, environment variables, and variables a parent config would
//! set. Absolute stub paths are created under the scratch directory and the config
//! text is pointed there. Without the corpus (a fresh CI machine) the test says SKIP.
//!
//! Debian's include_shell helpers (/usr/share/lighttpd/*.pl: include-conf-enabled,
//! use-ipv6, create-mime.conf) were installed when the index was made, so its rows
//! do not list them; they are shimmed here like `shim-cmd` stubs, installed or not,
//! so that the result does not depend on the machine (its lighttpd package, its
//! /etc/lighttpd/conf-enabled); the test prints which.

#[path = "../../tests/common/debian.rs"]
mod debian;
use debian::debian_helpers;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WICK_COMPAT_CONFS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/lighttpd-confs"),
    };
    dir.join("INDEX.tsv").is_file().then_some(dir)
}

/// The value conf_accept.py gives an environment variable.
fn env_value(name: &str) -> String {
    if name == "condition_include_file" {
        return "var-include-sub.conf".into();
    }
    let u = name.to_ascii_uppercase();
    if u.contains("PORT") {
        return "8080".into();
    }
    let counts = [
        "MAX", "FDS", "NUM", "COUNT", "SIZE", "TIMEOUT", "PROCS", "LIMIT", "WORKERS", "CHILDREN",
    ];
    if counts.iter().any(|c| u.contains(c)) {
        return "1024".into();
    }
    if u.contains("DEBUG") {
        return "0".into();
    }
    "/tmp/heldout-env".into()
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn touch(p: &Path) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).expect("mkdir stub dir");
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .expect("create stub");
}

/// Point `abs` (an absolute path the config names) at `root`+`abs` in `text`: the
/// longest leading part of it that the text contains is replaced.
fn redirect(text: &mut String, abs: &str, root: &Path) {
    let parts: Vec<&str> = abs.split('/').collect();
    for n in (3..=parts.len()).rev() {
        let prefix = parts[..n].join("/");
        let prefix = prefix
            .split('*')
            .next()
            .unwrap_or(&prefix)
            .trim_end_matches('/')
            .to_string();
        if prefix.len() > 1 && text.contains(&prefix) {
            let to = format!("{}{}", root.display(), prefix);
            *text = text.replace(&prefix, &to);
            return;
        }
    }
}

/// `stubs` plus a `shim-cmd` for each Debian helper the config names.
fn with_helper_shims(text: &str, stubs: &str, shimmed: &mut Vec<String>) -> String {
    let mut all = stubs.to_string();
    for h in debian_helpers(text) {
        let stub = format!("shim-cmd:{h}");
        if stubs.split(';').any(|s| s == stub) {
            continue;
        }
        if !all.is_empty() {
            all.push(';');
        }
        all.push_str(&stub);
        if !shimmed.contains(&h) {
            shimmed.push(h);
        }
    }
    all
}

fn run_one(
    corpus: &Path,
    file: &str,
    stubs: &str,
    scratch: &Path,
    shimmed: &mut Vec<String>,
) -> Result<(), String> {
    let src = corpus.join(file);
    // The config's neighbours (files it includes by their original names).
    if let Some(dir) = src.parent() {
        for e in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
            if e.path().is_file() {
                fs::copy(e.path(), scratch.join(e.file_name())).map_err(|e| e.to_string())?;
            }
        }
    }
    let name = src
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("x.conf")
        .to_string();
    let mut text =
        String::from_utf8_lossy(&fs::read(&src).map_err(|e| e.to_string())?).into_owned();
    let stubs = with_helper_shims(&text, stubs, shimmed);
    let root = scratch.join("root");
    let mut prelude: Vec<(String, String)> = Vec::new();
    for item in stubs.split(';').filter(|s| !s.is_empty()) {
        let (kind, arg) = item.split_once(':').unwrap_or((item, ""));
        match kind {
            "env" => std::env::set_var(arg, env_value(arg)),
            "var" => prelude.push((arg.to_string(), "/tmp/heldout-var".into())),
            "docroot-stub" => prelude.push(("server.document-root".into(), "/var/www".into())),
            "empty-include" | "empty-cat-arg" | "mkpath" | "shim-cmd" => {
                let rel = arg.replace('*', "heldout-empty");
                let dest = if let Some(stripped) = rel.strip_prefix('/') {
                    redirect(&mut text, arg, &root);
                    root.join(stripped)
                } else {
                    scratch.join(&rel)
                };
                if kind == "mkpath" && !arg.contains('*') {
                    fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
                } else {
                    touch(&dest);
                }
                if kind == "shim-cmd" {
                    fs::write(&dest, "#!/bin/sh\nexit 0\n").map_err(|e| e.to_string())?;
                    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
                        .map_err(|e| e.to_string())?;
                }
            }
            other => return Err(format!("unknown stub kind {other}")),
        }
    }
    fs::write(scratch.join(&name), &text).map_err(|e| e.to_string())?;
    let mut target = scratch.join(&name);
    if !prelude.is_empty() {
        let mut w = String::new();
        for (k, v) in &prelude {
            w.push_str(&format!("{k} = \"{v}\"\n"));
        }
        w.push_str(&format!("include \"{name}\"\n"));
        target = scratch.join(".heldout-ctx-wrapper.conf");
        fs::write(&target, w).map_err(|e| e.to_string())?;
    }
    // As conf_accept.py: run from the config's directory.
    std::env::set_current_dir(scratch).map_err(|e| e.to_string())?;
    let cfg = wick_conf::load_file(&target).map_err(|e| e.to_string())?;
    if std::env::var_os("WICK_CORPUS_VERBOSE").is_some() {
        for w in &cfg.warnings {
            println!("{name}: {w}");
        }
    }
    // Every condition regex compiles, PCRE-only ones (look-ahead, ...) included.
    if let Err(e) = wick_conf::cond::Compiled::new(&cfg) {
        return Err(format!("conditions do not compile: {e}"));
    }
    if let Some(w) = cfg.warnings.iter().find(|w| w.contains("PCRE feature")) {
        return Err(format!("a regex wickd cannot run: {w}"));
    }
    let printed = wick_conf::print::normalized(&cfg);
    let again = wick_conf::load_str(&printed, "printed", scratch)
        .map_err(|e| format!("the printed form does not load: {e}\n{printed}"))?;
    let strip = |s: &str| -> String {
        s.lines()
            .skip(1)
            .filter(|l| !l.trim_start().starts_with("# block "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let reprinted = wick_conf::print::normalized(&again);
    if strip(&printed) != strip(&reprinted) {
        return Err(format!(
            "printing is not stable:\n{printed}\n---\n{reprinted}"
        ));
    }
    Ok(())
}

#[test]
fn lighttpd_corpus_loads_and_prints() {
    let Some(corpus) = corpus_dir() else {
        println!(
            "SKIP lighttpd_corpus_loads_and_prints: ../shared/compat/lighttpd-confs is not here"
        );
        return;
    };
    let index = fs::read_to_string(corpus.join("INDEX.tsv")).expect("read INDEX.tsv");
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .expect("INDEX.tsv column")
    };
    let (c_file, c_ok, c_stubs) = (col("file"), col("lighttpd_1.4.69_p"), col("stubs_needed"));
    let cwd = std::env::current_dir().expect("cwd");
    let (mut total, mut failed, mut shimmed) = (0, Vec::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.get(c_ok) != Some(&"ok") {
            continue;
        }
        let file = f[c_file];
        if !corpus.join(file).is_file() {
            continue;
        }
        total += 1;
        let scratch = std::env::temp_dir().join(format!("wick-corpus-{}-{n}", std::process::id()));
        fs::create_dir_all(&scratch).expect("scratch dir");
        let guard = Scratch(scratch.clone());
        let r = run_one(
            &corpus,
            file,
            f.get(c_stubs).copied().unwrap_or(""),
            &scratch,
            &mut shimmed,
        );
        std::env::set_current_dir(&cwd).expect("cd back");
        drop(guard);
        if let Err(e) = r {
            failed.push(format!("{file}: {e}"));
        }
    }
    if !shimmed.is_empty() {
        println!(
            "lighttpd corpus: shimmed Debian helpers (no output, exit 0): {}",
            shimmed.join(", ")
        );
    }
    println!(
        "lighttpd corpus: {} of {total} configurations load and print",
        total - failed.len()
    );
    assert!(total > 0, "INDEX.tsv lists no accepted configuration");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}
