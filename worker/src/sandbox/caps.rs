//! The worker's capabilities: every set emptied. The bounding set and the securebits
//! go first, while CAP_SETPCAP is still held (before setresuid); the other sets
//! after the uid change, which empties them only when it leaves uid 0.

use caps::CapSet;

const PR_SET_SECUREBITS: libc::c_int = 28;
/// Root gets no capabilities from exec or setuid, ambient raise is refused, and
/// keep-caps stays off; each bit locked so it cannot be undone.
const SECBITS: libc::c_ulong = (1 << 0) // SECBIT_NOROOT
    | (1 << 1) // SECBIT_NOROOT_LOCKED
    | (1 << 5) // SECBIT_KEEP_CAPS_LOCKED
    | (1 << 6) // SECBIT_NO_CAP_AMBIENT_RAISE
    | (1 << 7); // SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED

/// Empty the bounding set and lock the securebits. Needs CAP_SETPCAP; without it
/// (not started as root) returns Ok(false) and the bounding set stays as it is:
/// no_new_privs and the seccomp ban on exec make it moot.
pub fn clear_bounding() -> Result<bool, String> {
    if !caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false) {
        return Ok(false);
    }
    caps::clear(None, CapSet::Bounding).map_err(|e| format!("clear bounding set: {e}"))?;
    drop_bounding_past_crate();
    // SAFETY: PR_SET_SECUREBITS takes an integer and touches no memory.
    if unsafe { libc::prctl(PR_SET_SECUREBITS, SECBITS, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_SECUREBITS: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(true)
}

/// Drop from the bounding set the capabilities newer than the caps crate (indices
/// past the CAP_LAST_CAP it knows), until the kernel says there are no more. The
/// master and the workers both need it; it needs CAP_SETPCAP.
pub fn drop_bounding_past_crate() {
    for cap in 41..64 {
        // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            break;
        }
    }
}

/// Empty the ambient, effective, inheritable and permitted sets (in an order the
/// kernel accepts: effective must stay a subset of permitted).
pub fn clear_rest() -> Result<(), String> {
    for set in [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Inheritable,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("clear {set:?} capabilities: {e}"))?;
    }
    Ok(())
}

/// Read back every set; an error names the first set that is not empty.
pub fn verify_empty(bounding_cleared: bool) -> Result<(), String> {
    let mut sets = vec![
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Inheritable,
        CapSet::Permitted,
    ];
    if bounding_cleared {
        sets.push(CapSet::Bounding);
    }
    for set in sets {
        let held = caps::read(None, set).map_err(|e| format!("read {set:?} capabilities: {e}"))?;
        if !held.is_empty() {
            return Err(format!("{set:?} capabilities still held: {held:?}"));
        }
    }
    Ok(())
}
