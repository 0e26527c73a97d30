//! The master's capabilities once it has bound its sockets and opened its logs and
//! pid file: it keeps the few it still uses itself, and leaves in its bounding set
//! only those its children need at start-up; everything else is gone for good.
//! wickd.8 (SECURITY) lists both sets and why each capability is there.

use caps::{CapSet, Capability, CapsHashSet};

/// Kept in the master's permitted and effective sets.
pub const MASTER: &[Capability] = &[
    // binding ports below 1024 that a reload adds
    Capability::CAP_NET_BIND_SERVICE,
    // signalling workers, which run as another user
    Capability::CAP_KILL,
    // reopening logs (SIGHUP) and re-reading config and keys (SIGUSR1) in
    // directories owned by the server user, e.g. /var/log/lighttpd (www-data 0750)
    Capability::CAP_DAC_OVERRIDE,
];

/// Kept only in the bounding set: a child the master starts (exec as uid 0) gets
/// them, the master itself does not hold them.
pub const CHILDREN: &[Capability] = &[
    // workers and the spawner: setgroups/setresgid/setresuid to server.username
    Capability::CAP_SETUID,
    Capability::CAP_SETGID,
    // workers: server.chroot
    Capability::CAP_SYS_CHROOT,
    // workers: empty their own bounding set and lock their securebits
    Capability::CAP_SETPCAP,
    // workers: raise RLIMIT_NOFILE to server.max-fds above the inherited hard limit
    Capability::CAP_SYS_RESOURCE,
];

fn set_of(list: &[Capability]) -> CapsHashSet {
    list.iter().copied().collect()
}

/// Trim this process's capabilities to [`MASTER`] (held) and [`MASTER`] +
/// [`CHILDREN`] (bounding), and empty the inheritable and ambient sets. Started
/// without capabilities (a normal user), there is nothing to do.
pub fn trim() -> Result<(), String> {
    let err =
        |what: &str, e: caps::errors::CapsError| format!("dropping capabilities: {what}: {e}");
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| err("read", e))?;
    // Ambient and inheritable first: with them empty, a child exec'd as non-root
    // (wickd started with ambient capabilities by a service manager) gets nothing.
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| err("inheritable", e))?;
    if permitted.is_empty() {
        return Ok(());
    }
    let held: CapsHashSet = set_of(MASTER).intersection(&permitted).copied().collect();
    let bounding: CapsHashSet = held.union(&set_of(CHILDREN)).copied().collect();
    if permitted.contains(&Capability::CAP_SETPCAP) {
        let current = caps::read(None, CapSet::Bounding).map_err(|e| err("read bounding", e))?;
        for cap in current.difference(&bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| err("bounding", e))?;
        }
        wick_worker::sandbox::caps::drop_bounding_past_crate();
    }
    // Effective before permitted: effective must stay a subset of permitted.
    caps::set(None, CapSet::Effective, &held).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &held).map_err(|e| err("permitted", e))?;
    let now = caps::read(None, CapSet::Permitted).map_err(|e| err("read back", e))?;
    if now != held {
        return Err(format!("dropping capabilities: still holding {now:?}"));
    }
    Ok(())
}
