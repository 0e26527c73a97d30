//! The worker's confinement, in DESIGN.md's layers: identity and fd limit, chroot,
//! privilege drop, capabilities, no_new_privs, Landlock, seccomp — in the one order
//! that works (see `enter_with`), and the report the worker logs.
//!
//! One file per layer: `plan` (what the config allows), `privdrop` (user, group,
//! chroot, fd limit, parent death), `caps`, `landlock`, `seccomp` (the allowlist),
//! `sigsys` (what a refused call leaves for the master).

pub mod caps;
mod landlock;
pub mod plan;
mod privdrop;
mod seccomp;
pub mod sigsys;

pub use plan::{Plan, UserDir};

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// What `enter_with` did, one line each, for the error log.
pub type SandboxReport = Vec<String>;

/// Lock this process in according to `plan` (`Plan::from_config`, made while the
/// blocks' raw settings are still there). Called once, after the config arrived
/// and before the first byte is read from the network. The calling process must have one
/// thread: Landlock confines only the calling thread.
///
/// Order, and why:
/// 1. everything that reads /etc or /proc: user, group, supplementary groups,
///    userdir homes, the time zone, the parent pid, the thread count;
/// 2. RLIMIT_NOFILE (root may raise the hard limit);
/// 3. chroot (needs CAP_SYS_CHROOT; config paths are then inside it);
/// 4. the Landlock ruleset, built as root so every root can be opened;
/// 5. bounding set and securebits (need CAP_SETPCAP, so before the uid change);
/// 6. setgroups, setresgid, setresuid;
/// 7. the cache dirs made (7a: as the new user, or with no uid change as root
///    with its capabilities, as lighttpd makes them); the other capability sets
///    emptied and read back; Landlock's write rules added (7b);
/// 8. not dumpable; parent-death signal (setresuid cleared it) and a check that
///    the master is still the parent;
/// 9. Landlock restrict_self (also sets no_new_privs), status logged, canary;
/// 10. seccomp, last: its allowlist then needs none of the calls above.
pub fn enter_with(plan: &Plan) -> Result<SandboxReport, String> {
    let mut report = SandboxReport::new();
    let root = nix::unistd::geteuid().is_root();

    // 1. Everything that reads /etc or /proc.
    let parent = nix::unistd::getppid();
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1);
    if threads > 1 {
        return Err(format!(
            "sandbox: {threads} threads exist; Landlock would confine only this one"
        ));
    }
    wick_proto::log::init_timezone();
    let identity = if root {
        privdrop::resolve(plan.username.as_deref(), plan.groupname.as_deref())?
    } else {
        None
    };
    let homes = match &plan.userdir {
        Some(u) => userdir_homes(u),
        None => Vec::new(),
    };

    // 2. File descriptor limit.
    report.push(privdrop::limit_fds(plan.max_fds, root)?);

    // 3. chroot.
    if let (true, Some(dir)) = (root, &plan.chroot) {
        privdrop::chroot(dir)?;
        report.push(format!("chroot {}", dir.display()));
    }

    // 4. Landlock rules, while every root can still be opened.
    let ruleset = landlock::prepare(plan, &homes, &mut report)?;

    // 5-7. Privileges.
    let bounding = caps::clear_bounding()?;
    match &identity {
        Some(id) => {
            privdrop::become_user(id)?;
            report.push(format!("user {}", id.name));
        }
        None if root => report.push(
            "server.username not set: the worker keeps uid 0, without any capability".into(),
        ),
        None => report.push(format!(
            "not started as root: no uid change{}; capabilities, no_new_privs, Landlock and seccomp still apply",
            if plan.chroot.is_some() { " and no chroot" } else { "" }
        )),
    }
    // 7a. The cache dirs the worker writes, made when missing as lighttpd makes
    //     deflate.cache-dir: as server.username (setresuid above left it no
    //     capability), or, with no uid change, with root's rights still held, as
    //     lighttpd started as root without server.username makes them.
    for dir in &plan.create {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("can't create deflate.cache-dir {}: {e}", dir.display()))?;
    }
    caps::clear_rest()?;
    caps::verify_empty(bounding)?;

    // 7b. Landlock's write rules, as the worker's own user.
    let ruleset = landlock::add_writes(ruleset, plan, &mut report)?;
    report.push(if bounding {
        "capabilities: all sets empty".into()
    } else {
        "capabilities: empty (bounding set kept: no CAP_SETPCAP)".into()
    });

    // 8. Not dumpable (no core with request data, no ptrace by the same uid);
    //    die with the master.
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("PR_SET_DUMPABLE: {e}"))?;
    privdrop::die_with_parent(parent)?;

    // 9. Landlock.
    let (line, enforced) = landlock::restrict(ruleset)?;
    if enforced {
        report.push(line);
    } else {
        report.push(format!(
            "warning: {line}: Landlock unavailable, files and ports are not confined (other layers apply)"
        ));
        // Landlock did not set it: the kernel has no Landlock.
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
    }

    // 10. seccomp.
    let rules = seccomp::rules(plan, std::process::id() as i32)?;
    let allowed = rules.len();
    seccomp::apply(&seccomp::compile(rules)?)?;
    report.push(format!(
        "seccomp: {allowed} syscalls allowed, anything else kills the worker"
    ));
    Ok(report)
}

/// `home/userdir.path` of every account (minus excluded, or only included ones),
/// read from the passwd database before it is hidden.
fn userdir_homes(u: &UserDir) -> Vec<PathBuf> {
    let only = (!u.include.is_empty()).then_some(u.include.as_slice());
    crate::mods::userdir::read_homes(only)
        .into_iter()
        .filter(|(name, _)| !u.exclude.contains(name))
        .map(|(_, dir)| PathBuf::from(dir).join(&u.path))
        .filter(|path| path.is_dir())
        .collect()
}
