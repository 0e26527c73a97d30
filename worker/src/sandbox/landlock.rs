//! Landlock: the worker may read only the configured roots, write only where the
//! config names a directory for writing, connect over TCP only to configured
//! backend ports, bind no TCP port, signal no other process and reach no abstract
//! socket made outside. The ruleset is built while still root (inside the chroot,
//! so paths resolve as the worker sees them) and applied after the uid change.

use super::plan::Plan;
use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::path::{Path, PathBuf};

/// The newest ABI CI can test (Linux 6.12+); a reviewed change bumps it. Asking for
/// more would report "partial" here forever and, on ABI 9+, start refusing pathname
/// unix sockets the worker may need.
const LANDLOCK_ABI: ABI = ABI::V7;

/// A ruleset with its rules, ready to be applied.
pub struct Prepared {
    ruleset: RulesetCreated,
    /// Paths granted, for the canary: a path outside all of them must be refused.
    granted: Vec<PathBuf>,
}

fn read_dir_access() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

fn write_dir_access() -> BitFlags<AccessFs> {
    // Create, replace and remove files and subdirectories; no devices, fifos,
    // sockets, symlinks or execution.
    read_dir_access()
        | AccessFs::WriteFile
        | AccessFs::Truncate
        | AccessFs::MakeReg
        | AccessFs::MakeDir
        | AccessFs::RemoveFile
        | AccessFs::RemoveDir
        | AccessFs::Refer
}

/// Build the ruleset. `homes` are extra read roots resolved earlier (userdir).
/// Missing paths are skipped with a note: nothing can be served from them anyway.
pub fn prepare(
    plan: &Plan,
    homes: &[PathBuf],
    notes: &mut Vec<String>,
) -> Result<Prepared, String> {
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(err)?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
        .map_err(err)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(err)?
        .create()
        .map_err(err)?;
    let mut granted = Vec::new();
    let mut add = |ruleset: RulesetCreated, path: &Path, dir_access: BitFlags<AccessFs>| {
        let fd = match PathFd::new(path) {
            Ok(fd) => fd,
            Err(e) => {
                notes.push(format!("landlock: skipping {}: {e}", path.display()));
                return Ok(ruleset);
            }
        };
        // A rule on a file may only carry file rights (ReadDir on a file would
        // silently make the whole ruleset "partial").
        let access = if path.is_dir() {
            dir_access
        } else {
            dir_access & AccessFs::from_file(LANDLOCK_ABI)
        };
        granted.push(path.to_path_buf());
        ruleset.add_rule(PathBeneath::new(fd, access)).map_err(err)
    };
    for path in plan.read.iter().chain(homes) {
        ruleset = add(ruleset, path, read_dir_access())?;
    }
    for dir in &plan.read_files_in {
        ruleset = add(ruleset, dir, AccessFs::ReadFile.into())?;
    }
    for path in prefixed_files(&plan.read_prefixes) {
        ruleset = add(ruleset, &path, AccessFs::ReadFile.into())?;
    }
    // A unix-socket backend (fastcgi.server "socket") needs no rule: up to ABI 8
    // Landlock does not govern connect(2) on a pathname socket (tests/fastcgi.rs
    // connects to one under this ruleset, as root); seccomp allows the AF_UNIX
    // stream socket only when the plan has such a backend.
    for &port in &plan.connect_ports {
        ruleset = ruleset
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    Ok(Prepared { ruleset, granted })
}

/// The write rules, added once the worker runs as its own user (so that the
/// cache dirs it made are there; a dir it could not open, it could not write).
pub fn add_writes(p: Prepared, plan: &Plan, notes: &mut Vec<String>) -> Result<Prepared, String> {
    let Prepared {
        mut ruleset,
        mut granted,
    } = p;
    for dir in &plan.upload {
        // Request-body files only: made (O_TMPFILE, or named and unlinked at
        // once), written and read back through their fd; no listing, no subdirs.
        let access = AccessFs::ReadFile
            | AccessFs::WriteFile
            | AccessFs::Truncate
            | AccessFs::MakeReg
            | AccessFs::RemoveFile;
        match PathFd::new(dir) {
            Ok(fd) if dir.is_dir() => {
                ruleset = ruleset
                    .add_rule(PathBeneath::new(fd, access))
                    .map_err(|e| format!("landlock: {e}"))?;
                granted.push(dir.clone());
            }
            Ok(_) => notes.push(format!(
                "landlock: skipping {}: not a directory",
                dir.display()
            )),
            Err(e) => notes.push(format!("landlock: skipping {}: {e}", dir.display())),
        }
    }
    for path in &plan.write {
        match PathFd::new(path) {
            Ok(fd) => {
                let access = if path.is_dir() {
                    write_dir_access()
                } else {
                    write_dir_access() & AccessFs::from_file(LANDLOCK_ABI)
                };
                ruleset = ruleset
                    .add_rule(PathBeneath::new(fd, access))
                    .map_err(|e| format!("landlock: {e}"))?;
                granted.push(path.clone());
            }
            Err(e) => notes.push(format!("landlock: skipping {}: {e}", path.display())),
        }
    }
    Ok(Prepared { ruleset, granted })
}

/// Regular files that start with one of the server.errorfile-prefix values
/// (`/srv/errors/status-` → `/srv/errors/status-404.html`, ...).
fn prefixed_files(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for prefix in prefixes {
        let s = prefix.to_string_lossy();
        let (dir, stem) = match s.rfind('/') {
            Some(i) => (&s[..=i], &s[i + 1..]),
            None => ("./", &*s),
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            // Regular files only: a symlink here would make the rule cover its
            // target, wherever that is.
            let regular = e.file_type().map(|t| t.is_file()).unwrap_or(false);
            if regular && e.file_name().to_string_lossy().starts_with(stem) {
                out.push(Path::new(dir).join(e.file_name()));
            }
        }
    }
    out
}

/// Apply the ruleset to this thread (the worker has no other) and everything it
/// would start. Also sets no_new_privs. Returns the status line for the log.
pub fn restrict(p: Prepared) -> Result<(String, bool), String> {
    let granted = p.granted;
    let status = p
        .ruleset
        .restrict_self()
        .map_err(|e| format!("landlock: {e}"))?;
    let line = describe(&status);
    let enforced = status.ruleset != RulesetStatus::NotEnforced;
    if enforced {
        canary(&granted)?;
    }
    Ok((line, enforced))
}

/// `landlock=full ABI 7`, or why not.
fn describe(st: &RestrictionStatus) -> String {
    let level = match st.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    };
    let abi = match &st.landlock {
        LandlockStatus::Available { effective_abi, .. } => format!("ABI {}", *effective_abi as i32),
        LandlockStatus::NotEnabled => "disabled at boot (lsm= lacks landlock)".into(),
        LandlockStatus::NotImplemented => "not in this kernel".into(),
    };
    format!("landlock={level} {abi}")
}

/// Prove the restriction took: a readable file outside every root must now be refused.
fn canary(granted: &[PathBuf]) -> Result<(), String> {
    let probe = Path::new("/proc/self/status");
    if granted.iter().any(|g| probe.starts_with(g)) {
        return Ok(());
    }
    match std::fs::File::open(probe) {
        Ok(_) => Err("landlock reported enforced, yet /proc/self/status is still readable".into()),
        Err(_) => Ok(()),
    }
}
