//! `wickd -tt` checks (preflight::check): each fails for its own reason and passes
//! once the reason is gone.

use std::fs;
use std::path::{Path, PathBuf};
use wick_conf::{load_str, preflight};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wick-conf-pre-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(d.join("www")).expect("mkdir");
    d
}

fn check(text: &str) -> Result<(), String> {
    let cfg = load_str(text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"));
    preflight::check(&cfg)
}

#[test]
fn a_sound_configuration_passes() {
    let d = tmpdir("ok");
    let conf = format!(
        "server.document-root = \"{0}/www\"\nserver.modules = (\"mod_access\", \"mod_compress\")\nserver.errorlog = \"{0}/error.log\"\nserver.username = \"root\"\nserver.groupname = \"root\"\n",
        d.display()
    );
    assert_eq!(check(&conf), Ok(()));
    assert!(!d.join("error.log").exists(), "-tt creates no file");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn document_root_must_be_set_and_may_be_missing() {
    let e = check("server.port = 80\n").expect_err("no docroot");
    assert!(e.contains("server.document-root is not set"), "{e}");
    // As lighttpd: a document root or alias target that does not exist is a
    // warning (requests for it get 404), not a refusal.
    let d = tmpdir("docroot");
    let text = format!(
        "server.document-root = \"{0}/gone\"\n$HTTP[\"host\"] == \"x\" {{\n server.document-root = \"{0}/nope\"\n}}\nalias.url = ( \"/a/\" => \"{0}/noalias/\" )\n",
        d.display()
    );
    assert_eq!(check(&text), Ok(()));
    let cfg = load_str(&text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"));
    let w = preflight::warnings(&cfg);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].contains("t.conf:1: server.document-root")
            && w[0].contains("/gone: no such directory"),
        "{w:?}"
    );
    assert!(w[1].contains("t.conf:5: alias.url \"/a/\""), "{w:?}");
    assert!(w[2].contains("t.conf:3: server.document-root"), "{w:?}");
    fs::create_dir_all(d.join("gone")).expect("mkdir");
    fs::create_dir_all(d.join("nope")).expect("mkdir");
    fs::create_dir_all(d.join("noalias")).expect("mkdir");
    let cfg = load_str(&text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(preflight::warnings(&cfg), Vec::<String>::new());
    let cfg = load_str(
        &format!("{text}userdir.basepath = \"{}/homes\"\n", d.display()),
        "t.conf",
        Path::new(""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let w = preflight::warnings(&cfg);
    assert!(
        w.len() == 1 && w[0].contains("t.conf:6: userdir.basepath") && w[0].contains("404"),
        "{w:?}"
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn user_and_group_must_exist() {
    let d = tmpdir("user");
    let base = format!("server.document-root = \"{}/www\"\n", d.display());
    let e = check(&format!("{base}server.username = \"wick-no-such-user\"\n")).expect_err("user");
    assert!(e.contains("no such user \"wick-no-such-user\""), "{e}");
    let e = check(&format!(
        "{base}server.groupname = \"wick-no-such-group\"\n"
    ))
    .expect_err("group");
    assert!(e.contains("no such group"), "{e}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn tls_files_must_be_readable() {
    let d = tmpdir("files");
    let base = format!("server.document-root = \"{}/www\"\n", d.display());
    let e = check(&format!(
        "{base}ssl.pemfile = \"{}/missing.pem\"\n",
        d.display()
    ))
    .expect_err("pem");
    assert!(
        e.contains("ssl.pemfile") && e.contains("cannot be read"),
        "{e}"
    );
    fs::write(d.join("cert.pem"), "x").expect("write");
    assert_eq!(
        check(&format!(
            "{base}ssl.pemfile = \"{}/cert.pem\"\n",
            d.display()
        )),
        Ok(())
    );
    let _ = fs::remove_dir_all(&d);
}

/// lighttpd's -tt opens no log and no pid file: a log directory that does not
/// exist passes -tt with a warning that the start will fail (it does: the master
/// names the file).
#[test]
fn logs_and_pid_file_that_cannot_be_written_are_warned_about_not_refused() {
    let d = tmpdir("logs");
    let text = format!(
        "server.document-root = \"{0}/www\"\nserver.modules = (\"mod_accesslog\")\nserver.errorlog = \"{0}/no/dir/error.log\"\naccesslog.filename = \"{0}/gone/access.log\"\nserver.pid-file = \"{0}/run/x.pid\"\n",
        d.display()
    );
    assert_eq!(check(&text), Ok(()));
    let cfg = load_str(&text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"));
    let w = preflight::start_failures(&cfg);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].contains("t.conf:3: server.errorlog")
            && w[0].contains("cannot be written")
            && w[0].contains("start-up will fail opening it"),
        "{w:?}"
    );
    assert!(w[1].contains("t.conf:4: accesslog.filename"), "{w:?}");
    assert!(
        w[2].contains("server.pid-file") && w[2].contains("start-up will fail creating it"),
        "{w:?}"
    );
    for sub in ["no/dir", "gone", "run"] {
        fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    let cfg = load_str(&text, "t.conf", Path::new("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(preflight::start_failures(&cfg), Vec::<String>::new());
    assert!(!d.join("no/dir/error.log").exists(), "-tt creates no file");
    // Pipes are not files; accesslog.filename without mod_accesslog is not opened.
    let cfg = load_str(
        &format!(
            "server.document-root = \"{0}/www\"\nserver.errorlog = \"|/usr/bin/logger\"\naccesslog.filename = \"{0}/gone2/a.log\"\n",
            d.display()
        ),
        "t.conf",
        Path::new(""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(preflight::start_failures(&cfg), Vec::<String>::new());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn chroot_must_exist_and_holds_the_document_root() {
    let d = tmpdir("chroot");
    let e = check(&format!(
        "server.chroot = \"{}/nope\"\nserver.document-root = \"/www\"\n",
        d.display()
    ))
    .expect_err("chroot");
    assert!(e.contains("server.chroot"), "{e}");
    assert_eq!(
        check(&format!(
            "server.chroot = \"{}\"\nserver.document-root = \"/www\"\n",
            d.display()
        )),
        Ok(())
    );
    let _ = fs::remove_dir_all(&d);
}

/// mod_deflate's cache directory is made at start-up by the worker's user, as
/// lighttpd makes it (at -tt too) as server.username: one it could not make is
/// refused by -tt, naming the directory in the way.
#[test]
fn a_deflate_cache_dir_the_worker_user_cannot_make_is_refused() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("SKIP: needs root (a directory only root may write into)");
        return;
    }
    let d = tmpdir("cachedir");
    let base = format!(
        "server.document-root = \"{0}/www\"\nserver.modules = (\"mod_deflate\")\n",
        d.display()
    );
    // Root-owned 0755: nobody cannot make a directory in it; root can.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
    let text = format!(
        "{base}server.username = \"nobody\"\ndeflate.cache-dir = \"{}/cache/gz\"\n",
        d.display()
    );
    let e = check(&text).expect_err("nobody cannot make it");
    assert!(
        e.contains("t.conf:4: deflate.cache-dir")
            && e.contains(&format!("{} is not writable for nobody", d.display())),
        "{e}"
    );
    assert!(!d.join("cache").exists(), "-tt makes nothing");
    assert_eq!(
        check(&format!(
            "{base}deflate.cache-dir = \"{}/cache/gz\"\n",
            d.display()
        )),
        Ok(()),
        "root may"
    );
    // The old name, the same.
    let e = check(&format!(
        "{base}server.username = \"nobody\"\ncompress.cache-dir = \"{}/cache/gz\"\n",
        d.display()
    ))
    .expect_err("compress.cache-dir");
    assert!(e.contains("compress.cache-dir"), "{e}");
    // Once it exists, nothing is made.
    fs::create_dir_all(d.join("cache/gz")).expect("mkdir");
    assert_eq!(check(&text), Ok(()));
    // Without mod_deflate, not made, not checked.
    assert_eq!(
        check(&format!(
            "server.document-root = \"{0}/www\"\nserver.username = \"nobody\"\ndeflate.cache-dir = \"{0}/other/gz\"\n",
            d.display()
        )),
        Ok(())
    );
    let _ = fs::remove_dir_all(&d);
}
