//! The worker's syscall allowlist (seccompiler). Anything not listed here kills the
//! whole worker with SIGSYS; the master logs it and starts another. Applied last,
//! after Landlock and the uid change, so neither needs its syscalls listed.
//!
//! Harvested with `strace -f` from the real worker serving static files, directory
//! listings, errors and TLS under KillProcess. Not here on purpose: execve/execveat,
//! fork/vfork/clone/clone3 (no processes, no threads), ptrace, bind, listen, socket
//! for anything but a TCP or unix stream to a configured backend, setuid and friends,
//! mount, chroot, unshare, setns, prctl, seccomp, bpf, kexec, keyctl, io_uring, and
//! every *at() that changes the file system outside the write dirs.

use super::plan::Plan;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Syscall number → conditions (empty: allowed with any arguments).
pub type Rules = BTreeMap<i64, Vec<SeccompRule>>;

fn cond(arg: u8, op: Op, value: u64) -> Result<Cond, String> {
    Cond::new(arg, Len::Qword, op, value).map_err(|e| format!("seccomp: {e}"))
}

fn cond32(arg: u8, op: Op, value: u64) -> Result<Cond, String> {
    Cond::new(arg, Len::Dword, op, value).map_err(|e| format!("seccomp: {e}"))
}

/// Allow each of `nrs` with any arguments.
fn allow(r: &mut Rules, nrs: &[i64]) {
    for &nr in nrs {
        r.insert(nr, Vec::new());
    }
}

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| format!("seccomp: {e}"))
}

/// The allowlist for `plan`; `pid` is this worker (signals only to itself).
pub fn rules(plan: &Plan, pid: i32) -> Result<Rules, String> {
    let mut r: Rules = BTreeMap::new();

    // --- the event loop ---
    #[cfg(target_arch = "x86_64")]
    allow(&mut r, &[libc::SYS_epoll_wait]); // mio's poll (x86_64 glibc)
    allow(
        &mut r,
        &[
            libc::SYS_epoll_pwait, // mio's poll (glibc on newer arches, and with a sigmask)
            libc::SYS_epoll_pwait2, // glibc may prefer it when a timeout is given
            libc::SYS_epoll_ctl,   // (re)register connections and files
            libc::SYS_ppoll,       // blocking waits on the IPC channel
            libc::SYS_accept4,     // new connections on the shared listeners
        ],
    );
    #[cfg(target_arch = "x86_64")]
    allow(&mut r, &[libc::SYS_poll]); // std/libc helpers that poll one fd

    // --- reading and writing connections, files, the IPC channel and log fd ---
    allow(
        &mut r,
        &[
            libc::SYS_read,        // request bytes, file chunks, CGI pipes
            libc::SYS_write,       // responses, error log lines (one write per line)
            libc::SYS_readv,       // vectored reads
            libc::SYS_writev,      // header + body in one call
            libc::SYS_pread64,     // file ranges without moving the offset
            libc::SYS_preadv,      // same, vectored
            libc::SYS_sendfile,    // static file bodies
            libc::SYS_recvfrom,    // socket reads (std's recv, signal self-pipe)
            libc::SYS_sendto,      // socket writes (std's send with MSG_NOSIGNAL)
            libc::SYS_recvmsg,     // IPC messages with fds (SCM_RIGHTS)
            libc::SYS_sendmsg,     // IPC messages to the master and spawner
            libc::SYS_shutdown,    // half-close after the response (lingering close)
            libc::SYS_close,       // every fd ends here
            libc::SYS_setsockopt,  // TCP_NODELAY, SO_LINGER, TCP_CORK on accepted sockets
            libc::SYS_getsockopt,  // SO_ERROR after a non-blocking connect
            libc::SYS_getsockname, // SERVER_ADDR / $SERVER["socket"] of an accepted socket
            libc::SYS_getpeername, // REMOTE_ADDR
            libc::SYS_fcntl,       // O_NONBLOCK, FD_CLOEXEC, F_DUPFD_CLOEXEC
            libc::SYS_lseek,       // file offsets (ranges)
            libc::SYS_fsync,       // flush upload temp files
            libc::SYS_fdatasync,   // same
        ],
    );

    // --- files: opening is Landlock's business, these only look ---
    allow(
        &mut r,
        &[
            libc::SYS_openat,  // documents, index files, error pages (Landlock checks the place)
            libc::SYS_openat2, // documents beneath a document-root dirfd (RESOLVE_BENEATH)
            libc::SYS_newfstatat, // stat / lstat (follow-symlink) / fstat
            libc::SYS_statx,   // std's metadata()
            libc::SYS_fstat,   // glibc's fstat on some paths
            libc::SYS_getdents64, // directory listings
            libc::SYS_readlinkat, // follow-symlink = disable checks
            libc::SYS_faccessat, // std's Path::exists fallbacks
            libc::SYS_faccessat2, // same, newer glibc
        ],
    );
    #[cfg(target_arch = "x86_64")]
    allow(
        &mut r,
        &[
            libc::SYS_open,     // older glibc paths
            libc::SYS_stat,     // same
            libc::SYS_lstat,    // same
            libc::SYS_readlink, // same
            libc::SYS_access,   // same
        ],
    );

    // --- memory ---
    allow(
        &mut r,
        &[
            libc::SYS_munmap,  // free
            libc::SYS_mremap,  // realloc of large buffers
            libc::SYS_madvise, // allocator trimming; aws-lc's MADV_WIPEONFORK
            libc::SYS_brk,     // malloc's main arena
        ],
    );
    // Memory may be mapped, but never executable: no new code after start.
    let no_exec = || -> Result<Vec<SeccompRule>, String> {
        Ok(vec![rule(vec![cond(
            2,
            Op::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )?])?])
    };
    r.insert(libc::SYS_mmap, no_exec()?); // malloc, large buffers
    r.insert(libc::SYS_mprotect, no_exec()?); // glibc arena growth, guard pages

    // --- threads of libraries, time, randomness, signals, exit ---
    allow(
        &mut r,
        &[
            libc::SYS_futex,             // std's locks (uncontended paths may still call it)
            libc::SYS_sched_yield,       // spin loops in std
            libc::SYS_clock_gettime,     // timeouts, Date (vDSO falls back to it)
            libc::SYS_clock_nanosleep,   // sleep in back-off paths
            libc::SYS_nanosleep,         // same, older glibc
            libc::SYS_gettimeofday,      // glibc time() fallback
            libc::SYS_getrandom,         // HashMap seeds, TLS (rustls' RNG)
            libc::SYS_rt_sigreturn,      // return from a signal handler
            libc::SYS_rt_sigprocmask,    // glibc around signal handling and abort()
            libc::SYS_rt_sigaction,      // signal-hook registration, abort()
            libc::SYS_sigaltstack,       // std's stack-overflow guard
            libc::SYS_getpid,            // log lines, Ready message
            libc::SYS_gettid,            // glibc's raise()
            libc::SYS_restart_syscall,   // after SIGSTOP/SIGCONT
            libc::SYS_exit,              // thread exit (the main thread via exit_group)
            libc::SYS_exit_group,        // worker exit
            libc::SYS_sched_getaffinity, // std::thread::available_parallelism
        ],
    );
    // Signals only to itself (raise/abort); Landlock's Signal scope also blocks others.
    r.insert(
        libc::SYS_kill,
        vec![rule(vec![cond32(0, Op::Eq, pid as u64)?])?],
    );
    r.insert(
        libc::SYS_tgkill,
        vec![rule(vec![cond32(0, Op::Eq, pid as u64)?])?],
    );
    // Reading a resource limit (pid 0 = self, new limit NULL), never setting one.
    r.insert(
        libc::SYS_prlimit64,
        vec![rule(vec![cond32(0, Op::Eq, 0)?, cond(2, Op::Eq, 0)?])?],
    );
    // ioctl only for non-blocking mode, close-on-exec, bytes queued and isatty.
    r.insert(
        libc::SYS_ioctl,
        [
            libc::FIONBIO,
            libc::FIOCLEX,
            libc::FIONCLEX,
            libc::FIONREAD,
            libc::TCGETS,
        ]
        .iter()
        .map(|&req| rule(vec![cond32(1, Op::Eq, req)?]))
        .collect::<Result<_, _>>()?,
    );

    // --- backends: only when the config has one; Landlock limits the ports ---
    if plan.connects() {
        let stream = |family: i32| -> Result<SeccompRule, String> {
            rule(vec![
                cond32(0, Op::Eq, family as u64)?,
                // type with SOCK_NONBLOCK/SOCK_CLOEXEC masked off
                cond32(1, Op::MaskedEq(0xf), libc::SOCK_STREAM as u64)?,
            ])
        };
        r.insert(
            libc::SYS_socket,
            vec![
                stream(libc::AF_INET)?,
                stream(libc::AF_INET6)?,
                stream(libc::AF_UNIX)?,
            ],
        );
        allow(&mut r, &[libc::SYS_connect]); // to a backend (Landlock: configured TCP ports only)
    }

    // --- write dirs: only when the config names one; Landlock limits the places ---
    if !plan.write.is_empty() {
        allow(
            &mut r,
            &[
                libc::SYS_unlinkat,  // remove upload temp files, stale cache entries
                libc::SYS_mkdirat,   // cache subdirectories
                libc::SYS_renameat2, // atomic cache file replacement
                libc::SYS_ftruncate, // reuse of a temp file
            ],
        );
        #[cfg(target_arch = "x86_64")]
        allow(
            &mut r,
            &[libc::SYS_rename, libc::SYS_unlink, libc::SYS_mkdir],
        ); // older glibc paths
    }

    Ok(r)
}

/// Compile `rules` to BPF: listed calls pass, anything else kills the process.
pub fn compile(rules: Rules) -> Result<BpfProgram, String> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e:?}"))?;
    let f = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    f.try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))
}

/// Install `prog` on every thread of the process (TSYNC); no_new_privs is set by
/// seccompiler as the kernel requires for an unprivileged filter.
pub fn apply(prog: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter_all_threads(prog).map_err(|e| format!("seccomp: {e}"))
}
