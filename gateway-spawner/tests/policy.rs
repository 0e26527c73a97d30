//! The spawner's policy against forged and honest worker requests: it re-derives the
//! document root, the cgi.assign match and the user from its own config, and refuses
//! anything outside them.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use wick_conf::load_str;
use wick_gateway_spawner::policy::Policy;
use wick_gateway_spawner::users::Users;
use wick_proto::spawner::CgiRequest;

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn tmp() -> Tmp {
    let base = std::env::temp_dir().join("wick-spawner-policy-XXXXXX");
    Tmp(nix::unistd::mkdtemp(&base).expect("mkdtemp"))
}

fn write_script(p: &Path, mode: u32) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, "#!/bin/sh\necho\n").expect("write");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn policy(conf: &str, dir: &Path) -> Policy {
    let cfg = load_str(conf, "test.conf", dir).expect("config");
    let mut users = Vec::new();
    for p in &cfg.patches {
        if let Some(u) = p.cgi_user() {
            users.push(u.clone());
        }
    }
    let root = nix::unistd::geteuid().is_root();
    let users = Users::resolve(None, None, &users, &[], root).expect("users");
    // What the master sends the spawner: its slice of the config.
    let cfg = wick_gateway_spawner::policy::slice(&cfg);
    Policy::new(cfg, users, Vec::new()).expect("policy")
}

fn req(path: &str, script_len: usize) -> CgiRequest {
    CgiRequest {
        id: 1,
        method: "GET".into(),
        target: path.into(),
        path: path.into(),
        script_name_len: script_len as u32,
        host: Some("localhost".into()),
        remote_addr: "127.0.0.1".parse().ok(),
        ..Default::default()
    }
}

fn base_conf(dir: &Path) -> String {
    format!(
        r#"
server.document-root = "{d}/www"
server.port = 8080
server.modules = ("mod_cgi", "mod_alias")
$HTTP["url"] =^ "/cgi-bin/" {{
    cgi.assign = (".cgi" => "", ".sh" => "/bin/sh")
}}
$HTTP["host"] == "other.test" {{
    server.document-root = "{d}/other"
    cgi.assign = (".cgi" => "")
}}
"#,
        d = dir.display()
    )
}

#[test]
fn honest_request_is_planned() {
    let t = tmp();
    write_script(&t.0.join("www/cgi-bin/ok.cgi"), 0o755);
    let mut p = policy(&base_conf(&t.0), &t.0);
    let mut r = req("/cgi-bin/ok.cgi/extra/info", "/cgi-bin/ok.cgi".len());
    r.blocks = vec![0, 1];
    let plan = p.plan(&r).expect("allowed");
    let script = t.0.join("www/cgi-bin/ok.cgi");
    assert_eq!(plan.argv, vec![script.display().to_string()]);
    let env = |k: &str| plan.env.get(k).map(str::to_string);
    assert_eq!(env("SCRIPT_FILENAME"), Some(script.display().to_string()));
    assert_eq!(env("PATH_INFO").as_deref(), Some("/extra/info"));
    assert_eq!(env("SERVER_PORT").as_deref(), Some("8080"));
    assert!(plan.note.is_none(), "{:?}", plan.note);
}

#[test]
fn interpreter_from_cgi_assign() {
    let t = tmp();
    write_script(&t.0.join("www/cgi-bin/x.sh"), 0o644);
    let mut p = policy(&base_conf(&t.0), &t.0);
    let plan = p.plan(&req("/cgi-bin/x.sh", 13)).expect("allowed");
    assert_eq!(plan.argv[0], "/bin/sh");
}

#[test]
fn missing_script_is_404() {
    let t = tmp();
    std::fs::create_dir_all(t.0.join("www/cgi-bin")).expect("mkdir");
    let mut p = policy(&base_conf(&t.0), &t.0);
    let e = p.plan(&req("/cgi-bin/nope.cgi", 17)).expect_err("refused");
    assert_eq!(e.status, 404, "{}", e.reason);
}

#[test]
fn extension_not_assigned_is_refused() {
    let t = tmp();
    write_script(&t.0.join("www/cgi-bin/data.txt"), 0o755);
    write_script(&t.0.join("www/elsewhere/x.cgi"), 0o755);
    let mut p = policy(&base_conf(&t.0), &t.0);
    let e = p.plan(&req("/cgi-bin/data.txt", 17)).expect_err("refused");
    assert_eq!(e.status, 403);
    assert!(e.reason.contains("cgi.assign"), "{}", e.reason);
    // cgi.assign is only set under /cgi-bin/: the same extension elsewhere is refused.
    let e = p.plan(&req("/elsewhere/x.cgi", 16)).expect_err("refused");
    assert_eq!(e.status, 403, "{}", e.reason);
}

#[test]
fn path_outside_the_root_is_refused() {
    let t = tmp();
    write_script(&t.0.join("outside.cgi"), 0o755);
    std::fs::create_dir_all(t.0.join("www/cgi-bin")).expect("mkdir");
    let mut p = policy(&base_conf(&t.0), &t.0);
    for (path, n) in [
        ("/cgi-bin/../../outside.cgi", 26),
        ("/cgi-bin//x.cgi", 15),
        ("cgi-bin/x.cgi", 13),
        ("/cgi-bin/./x.cgi", 16),
    ] {
        let e = p.plan(&req(path, n)).expect_err(path);
        assert_eq!(e.status, 400, "{path}: {}", e.reason);
    }
    // A script name length that does not end at a segment.
    let e = p.plan(&req("/cgi-bin/x.cgi", 5)).expect_err("split");
    assert_eq!(e.status, 400);
    let e = p.plan(&req("/cgi-bin/x.cgi", 99)).expect_err("length");
    assert_eq!(e.status, 400);
    // A listener that does not exist.
    let mut r = req("/cgi-bin/x.cgi", 14);
    r.listener = 7;
    assert_eq!(p.plan(&r).expect_err("listener").status, 400);
    // Header injection into the environment.
    let mut r = req("/cgi-bin/x.cgi", 14);
    r.headers = vec![("X\nLD_PRELOAD".into(), "x".into())];
    assert_eq!(p.plan(&r).expect_err("header").status, 400);
}

#[test]
fn symlink_escape_is_refused() {
    let t = tmp();
    write_script(&t.0.join("outside/evil.cgi"), 0o755);
    write_script(&t.0.join("www/cgi-bin/real.cgi"), 0o755);
    std::fs::create_dir_all(t.0.join("www/cgi-bin")).expect("mkdir");
    symlink(
        t.0.join("outside/evil.cgi"),
        t.0.join("www/cgi-bin/abs.cgi"),
    )
    .expect("symlink");
    symlink("../../outside/evil.cgi", t.0.join("www/cgi-bin/rel.cgi")).expect("symlink");
    symlink(t.0.join("outside"), t.0.join("www/cgi-bin/dir")).expect("symlink");
    symlink("real.cgi", t.0.join("www/cgi-bin/inside.cgi")).expect("symlink");
    let mut p = policy(&base_conf(&t.0), &t.0);
    for (path, n) in [
        ("/cgi-bin/abs.cgi", 16),
        ("/cgi-bin/rel.cgi", 16),
        ("/cgi-bin/dir/evil.cgi", 21),
    ] {
        let e = p.plan(&req(path, n)).expect_err(path);
        assert_eq!(e.status, 403, "{path}: {}", e.reason);
    }
    // A symlink that stays inside the root is followed, as lighttpd does by default.
    p.plan(&req("/cgi-bin/inside.cgi", 19))
        .expect("inside symlink");
    // ...unless server.follow-symlink is disabled.
    let conf = base_conf(&t.0) + "server.follow-symlink = \"disable\"\n";
    let mut p = policy(&conf, &t.0);
    let e = p
        .plan(&req("/cgi-bin/inside.cgi", 19))
        .expect_err("no symlinks");
    assert_eq!(e.status, 403, "{}", e.reason);
}

#[test]
fn forged_host_selects_only_configured_vhosts() {
    let t = tmp();
    write_script(&t.0.join("other/only-other.cgi"), 0o755);
    std::fs::create_dir_all(t.0.join("www")).expect("mkdir");
    let mut p = policy(&base_conf(&t.0), &t.0);
    let mut r = req("/only-other.cgi", 15);
    // The worker claims the default vhost matched, but the host selects "other.test":
    // the spawner's evaluation wins, and notes the difference.
    r.host = Some("OTHER.test:80".into());
    r.blocks = vec![0];
    let plan = p.plan(&r).expect("other vhost");
    assert!(
        plan.script.ends_with("other/only-other.cgi"),
        "{}",
        plan.script
    );
    assert!(plan.note.is_some());
    // Any other host cannot reach that docroot: the default vhost has no cgi.assign there.
    r.host = Some("evil.test".into());
    let e = p.plan(&r).expect_err("default vhost");
    assert_eq!(e.status, 403, "{}", e.reason);
}

#[test]
fn non_regular_and_non_executable_are_refused() {
    let t = tmp();
    std::fs::create_dir_all(t.0.join("www/cgi-bin/dir.cgi")).expect("mkdir");
    write_script(&t.0.join("www/cgi-bin/noexec.cgi"), 0o644);
    let conf = base_conf(&t.0) + "cgi.execute-x-only = \"enable\"\n";
    let mut p = policy(&conf, &t.0);
    let e = p.plan(&req("/cgi-bin/dir.cgi", 16)).expect_err("dir");
    assert_eq!(e.status, 403);
    let e = p.plan(&req("/cgi-bin/noexec.cgi", 19)).expect_err("noexec");
    assert_eq!(e.status, 403);
    assert!(e.reason.contains("execute-x-only"), "{}", e.reason);
}

#[test]
fn alias_target_is_the_root() {
    let t = tmp();
    write_script(&t.0.join("lib/cgi-bin/a.cgi"), 0o755);
    write_script(&t.0.join("lib/secret.cgi"), 0o755);
    std::fs::create_dir_all(t.0.join("www")).expect("mkdir");
    let conf = base_conf(&t.0)
        + &format!(
            "alias.url = (\"/cgi-bin/\" => \"{}/lib/cgi-bin/\")\n",
            t.0.display()
        );
    let mut p = policy(&conf, &t.0);
    let plan = p.plan(&req("/cgi-bin/a.cgi", 14)).expect("alias");
    assert!(
        plan.script.ends_with("lib/cgi-bin/a.cgi"),
        "{}",
        plan.script
    );
    let doc = plan.env.get("DOCUMENT_ROOT").map(str::to_string);
    assert_eq!(doc, Some(format!("{}/lib/cgi-bin", t.0.display())));
}

#[test]
fn cgi_user_ownership_is_checked_as_suexec_does() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP cgi_user_ownership_is_checked_as_suexec_does: needs root (chown)");
        return;
    }
    let t = tmp();
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("getpwnam")
        .expect("nobody");
    let (uid, gid) = (nobody.uid, nobody.gid);
    let site = t.0.join("site");
    write_script(&site.join("mine.cgi"), 0o755);
    write_script(&site.join("roots.cgi"), 0o755);
    write_script(&site.join("groupw.cgi"), 0o775);
    std::fs::create_dir_all(t.0.join("www")).expect("mkdir");
    for f in ["mine.cgi", "groupw.cgi"] {
        nix::unistd::chown(&site.join(f), Some(uid), Some(gid)).expect("chown");
    }
    nix::unistd::chown(&site, Some(uid), Some(gid)).expect("chown dir");
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let conf = format!(
        r#"
server.document-root = "{d}/www"
server.modules = ("mod_cgi")
$HTTP["host"] == "site.test" {{
    server.document-root = "{d}/site"
    cgi.assign = (".cgi" => "")
    cgi.user = "nobody"
}}
"#,
        d = t.0.display()
    );
    let mut p = policy(&conf, &t.0);
    let mut r = req("/mine.cgi", 9);
    r.host = Some("site.test".into());
    let plan = p.plan(&r).expect("owned by nobody");
    assert_eq!(plan.creds.as_ref().map(|c| c.uid), Some(uid.as_raw()));

    let mut r = req("/roots.cgi", 10);
    r.host = Some("site.test".into());
    let e = p.plan(&r).expect_err("other uid");
    assert_eq!(e.status, 403);
    assert!(e.reason.contains("owned by 0:0"), "{}", e.reason);

    let mut r = req("/groupw.cgi", 11);
    r.host = Some("site.test".into());
    let e = p.plan(&r).expect_err("group writable");
    assert!(e.reason.contains("writable"), "{}", e.reason);

    // The directory must not be writable by others either.
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let mut r = req("/mine.cgi", 9);
    r.host = Some("site.test".into());
    let e = p.plan(&r).expect_err("dir writable");
    assert!(e.reason.contains("directory is writable"), "{}", e.reason);

    // A script of another user in a directory of its own.
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    nix::unistd::chown(
        &site,
        Some(nix::unistd::Uid::from_raw(0)),
        Some(nix::unistd::Gid::from_raw(0)),
    )
    .expect("chown dir");
    let e = p.plan(&r).expect_err("dir owner");
    assert!(e.reason.contains("directory owned by 0:0"), "{}", e.reason);
}

#[test]
fn cgi_user_root_refused_at_start() {
    let e = Users::resolve(None, None, &["root".into()], &[], true).expect_err("root");
    assert!(e.contains("root"), "{e}");
}

/// The slice the master sends keeps what the policy reads (conditions, setenv and
/// alias settings, the cgi options, server tag and name) and drops the request
/// path's options.
#[test]
fn slice_keeps_what_the_policy_reads() {
    let t = tmp();
    write_script(&t.0.join("www/cgi-bin/ok.cgi"), 0o755);
    let conf = format!(
        "{}server.modules += (\"mod_setenv\", \"mod_accesslog\")\n\
         server.tag = \"tagged\"\n\
         mimetype.assign = (\".x\" => \"text/x\")\n\
         accesslog.format = \"%h %r\"\n\
         $HTTP[\"url\"] =^ \"/cgi-bin/\" {{\n\
           setenv.add-environment = (\"FROM_BLOCK\" => \"yes\")\n\
           url.access-deny = (\"~\")\n\
         }}\n",
        base_conf(&t.0)
    );
    let full = load_str(&conf, "test.conf", &t.0).expect("config");
    let cut = wick_gateway_spawner::policy::slice(&full);
    assert_eq!(cut.blocks.len(), full.blocks.len());
    assert_eq!(cut.listeners.len(), full.listeners.len());
    let keys: Vec<&str> = cut
        .blocks
        .iter()
        .flat_map(|b| b.settings.iter().map(|s| s.key.as_str()))
        .collect();
    assert_eq!(keys, ["setenv.add-environment"]);
    assert!(cut.patches.iter().all(|p| p.mimetypes().is_none()
        && p.accesslog_format().is_none()
        && p.url_access_deny().is_none()));

    let mut p = policy(&conf, &t.0);
    let plan = p.plan(&req("/cgi-bin/ok.cgi", 15)).expect("allowed");
    let env = |k: &str| plan.env.get(k);
    assert_eq!(env("FROM_BLOCK"), Some("yes"));
    assert_eq!(env("SERVER_SOFTWARE"), Some("tagged"));
}
