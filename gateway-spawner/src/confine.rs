//! The spawner's own confinement, applied once at start-up after the users are
//! resolved: server.username (when started as root) keeping only CAP_SETUID,
//! CAP_SETGID and CAP_KILL; no_new_privs; not dumpable (a script running as the same
//! user must not ptrace its way to those capabilities); SECBIT_NOROOT (a script run
//! as uid 0 gets no capabilities from exec); subreaper (orphans of scripts come back
//! here to be reaped); death with the master; and a seccomp filter.
//!
//! The seccomp filter is inherited by every script (filters survive fork and exec and
//! cannot be lifted), so it is written for both: it refuses what neither the spawner
//! nor a CGI script has any business doing, and nothing a script legitimately does.
//! That is why TCP/UDP sockets stay allowed: a CGI script that talks to its database
//! over TCP must keep working as under lighttpd; the spawner itself holds no socket
//! other than its channels. Refused calls fail with an errno, not with a kill, so a
//! script sees an ordinary error.

use crate::users::Identity;
use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;

/// Drop to `user` (if started as root and one is configured), keep the three
/// capabilities, lock the rest. Returns one line per step for the error log.
pub fn drop_privileges(user: Option<&Identity>) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    let keep: CapsHashSet = [
        Capability::CAP_SETUID,
        Capability::CAP_SETGID,
        Capability::CAP_KILL,
    ]
    .into_iter()
    .collect();
    let root = nix::unistd::geteuid().is_root();
    if root {
        // SAFETY: PR_SET_SECUREBITS takes an integer flag set; no memory is passed.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECUREBITS,
                SECBIT_NOROOT | SECBIT_NOROOT_LOCKED,
                0,
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(format!(
                "PR_SET_SECUREBITS: {}",
                std::io::Error::last_os_error()
            ));
        }
        let bounding =
            caps::read(None, CapSet::Bounding).map_err(|e| format!("read bounding set: {e}"))?;
        for c in bounding.difference(&keep) {
            caps::drop(None, CapSet::Bounding, *c)
                .map_err(|e| format!("drop {c} from bounding set: {e}"))?;
        }
        if let Some(id) = user {
            prctl::set_keepcaps(true).map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
            let groups: Vec<nix::unistd::Gid> = id
                .groups
                .iter()
                .map(|g| nix::unistd::Gid::from_raw(*g))
                .collect();
            nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
            let g = nix::unistd::Gid::from_raw(id.gid);
            nix::unistd::setresgid(g, g, g).map_err(|e| format!("setresgid({}): {e}", id.gid))?;
            let u = nix::unistd::Uid::from_raw(id.uid);
            nix::unistd::setresuid(u, u, u).map_err(|e| format!("setresuid({}): {e}", id.uid))?;
            prctl::set_keepcaps(false).map_err(|e| format!("PR_SET_KEEPCAPS: {e}"))?;
            report.push(format!("running as {} ({}:{})", id.name, id.uid, id.gid));
        }
        // Effective first: it must stay a subset of permitted at every step.
        caps::set(None, CapSet::Effective, &keep).map_err(|e| format!("effective caps: {e}"))?;
        caps::set(None, CapSet::Permitted, &keep).map_err(|e| format!("permitted caps: {e}"))?;
        report.push("capabilities: CAP_SETUID, CAP_SETGID, CAP_KILL".into());
    }
    caps::clear(None, CapSet::Inheritable).map_err(|e| format!("inheritable caps: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("ambient caps: {e}"))?;
    prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    prctl::set_dumpable(false).map_err(|e| format!("PR_SET_DUMPABLE: {e}"))?;
    prctl::set_child_subreaper(true).map_err(|e| format!("PR_SET_CHILD_SUBREAPER: {e}"))?;
    // After the credential change, which clears it.
    prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    Ok(report)
}

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| e.to_string())
}

fn cond(arg: u8, len: Len, op: Op, v: u64) -> Result<Cond, String> {
    Cond::new(arg, len, op, v).map_err(|e| e.to_string())
}

/// Kernel interfaces a web script never needs and that are the usual way from a
/// compromised process into the kernel; they answer ENOSYS (so that libc falls back,
/// as it does from clone3 to clone, whose flags the second filter can inspect).
fn enosys_list() -> Vec<i64> {
    vec![
        libc::SYS_clone3,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_userfaultfd,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_fanotify_init,
        libc::SYS_quotactl,
        libc::SYS_acct,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_lookup_dcookie,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_iopl,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_ioperm,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_uselib,
    ]
}

/// Calls refused with EPERM depending on their arguments: becoming uid or gid 0 again
/// (even a compromised spawner, which keeps CAP_SETUID, cannot), new namespaces, and
/// socket families other than unix, IPv4/IPv6 and route netlink (no raw packet
/// sockets, no AF_ALG, no vsock...).
fn eperm_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut m: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let zero =
        |arg: u8| -> Result<SeccompRule, String> { rule(vec![cond(arg, Len::Dword, Op::Eq, 0)?]) };
    for (nr, args) in [
        (libc::SYS_setuid, 1u8),
        (libc::SYS_setgid, 1),
        (libc::SYS_setfsuid, 1),
        (libc::SYS_setfsgid, 1),
        (libc::SYS_setreuid, 2),
        (libc::SYS_setregid, 2),
        (libc::SYS_setresuid, 3),
        (libc::SYS_setresgid, 3),
    ] {
        m.insert(nr, (0..args).map(zero).collect::<Result<_, _>>()?);
    }
    let ns_flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWCGROUP,
    ];
    for nr in [libc::SYS_clone, libc::SYS_unshare] {
        let rules = ns_flags
            .iter()
            .map(|&f| rule(vec![cond(0, Len::Qword, Op::MaskedEq(f as u64), f as u64)?]))
            .collect::<Result<_, _>>()?;
        m.insert(nr, rules);
    }
    let fam = |op: Op, f: i32| cond(0, Len::Dword, op, f as u64);
    m.insert(
        libc::SYS_socket,
        vec![
            rule(vec![
                fam(Op::Ne, libc::AF_UNIX)?,
                fam(Op::Ne, libc::AF_INET)?,
                fam(Op::Ne, libc::AF_INET6)?,
                fam(Op::Ne, libc::AF_NETLINK)?,
            ])?,
            rule(vec![
                fam(Op::Eq, libc::AF_NETLINK)?,
                cond(2, Len::Dword, Op::Ne, libc::NETLINK_ROUTE as u64)?,
            ])?,
        ],
    );
    m.insert(
        libc::SYS_socketpair,
        vec![rule(vec![fam(Op::Ne, libc::AF_UNIX)?])?],
    );
    Ok(m)
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, String> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp arch: {e:?}"))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp compile: {e}"))
}

/// Both filters, compiled.
pub fn filters() -> Result<[BpfProgram; 2], String> {
    let a: BTreeMap<i64, Vec<SeccompRule>> = enosys_list()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    Ok([
        compile(a, libc::ENOSYS)?,
        compile(eperm_rules()?, libc::EPERM)?,
    ])
}

/// Install the filters on this (single-threaded) process.
pub fn apply(filters: &[BpfProgram; 2]) -> Result<String, String> {
    for f in filters {
        seccompiler::apply_filter(f).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(
        "seccomp: kernel-surface denylist (ENOSYS), uid/gid 0, namespaces, raw sockets (EPERM)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child: the filters let ordinary work through and refuse the rest.
    #[test]
    fn filters_enforce_in_child() {
        let progs = filters().expect("filters compile");
        // SAFETY: the child only makes raw syscalls and _exits; the test harness's
        // other threads are not touched.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let code = (|| -> i32 {
                    for f in &progs {
                        if seccompiler::apply_filter(f).is_err() {
                            return 10;
                        }
                    }
                    // SAFETY: plain syscalls with integer arguments.
                    unsafe {
                        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                        if s < 0 {
                            return 11;
                        }
                        libc::close(s);
                        if libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) >= 0 {
                            return 12;
                        }
                        if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                            return 13;
                        }
                        if libc::setresuid(0, 0, 0) == 0 {
                            return 14;
                        }
                        if libc::syscall(libc::SYS_ptrace, 0, 0, 0, 0) != -1
                            || *libc::__errno_location() != libc::ENOSYS
                        {
                            return 15;
                        }
                        let p = libc::fork();
                        if p == 0 {
                            libc::_exit(0);
                        }
                        if p < 0 {
                            return 16;
                        }
                        let mut st = 0;
                        libc::waitpid(p, &mut st, 0);
                    }
                    0
                })();
                // SAFETY: leave the forked test process at once.
                unsafe { libc::_exit(code) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
