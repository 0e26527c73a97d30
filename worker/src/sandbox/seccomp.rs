//! The worker's syscall allowlist (seccompiler). Anything not listed here is
//! trapped (SECCOMP_RET_TRAP: the call does not run, SIGSYS comes with its
//! number) and `sigsys.rs`'s handler ends the worker by SIGSYS after noting the
//! number for the master, which logs it and starts another. Applied last, after
//! Landlock and the uid change, so neither needs its syscalls listed.
//!
//! Harvested with `strace -f` from the real worker (files, index files, redirects,
//! ranges, conditionals, bodies, pipelining, errors, lingering close) under
//! KillProcess, plus what std and glibc need to abort cleanly; every end-to-end test
//! runs its workers under this filter, so a missing call shows up as a worker
//! killed by SIGSYS in the master's log. Not here on purpose: execve/execveat,
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
    allow(&mut r, &[libc::SYS_epoll_wait]); // mio's poll on x86_64 glibc
    allow(
        &mut r,
        &[
            libc::SYS_epoll_pwait, // mio's poll where glibc has no epoll_wait (aarch64)
            libc::SYS_epoll_ctl,   // (re)register connections, EPOLLEXCLUSIVE listeners
            libc::SYS_accept4,     // new connections on the shared listeners
        ],
    );

    // --- connections, files, pipes, the IPC channel, the log fd ---
    allow(
        &mut r,
        &[
            libc::SYS_read,     // request bytes, CGI pipes
            libc::SYS_write,    // error log lines (one write per line), pipes
            libc::SYS_writev,   // header and body in one call
            libc::SYS_pread64,  // file chunks without moving the offset
            libc::SYS_sendfile, // static file bodies
            libc::SYS_recvfrom, // socket reads through std (recv)
            libc::SYS_sendto,   // response bytes (send with MSG_NOSIGNAL)
            libc::SYS_recvmsg,  // IPC messages, fds attached (SCM_RIGHTS)
            libc::SYS_sendmsg,  // IPC messages to the master and the spawner
            libc::SYS_shutdown, // half-close before a lingering close
            libc::SYS_close,    // every fd ends here
            libc::SYS_fcntl,    // O_NONBLOCK; debug builds check fds before close
            libc::SYS_lseek,    // file offsets
        ],
    );
    // mod_cgi: SERVER_ADDR on a wildcard listener (REMOTE_PORT comes from accept4)
    allow(&mut r, &[libc::SYS_getsockname]);

    // --- files: opening is Landlock's business, these only look ---
    allow(
        &mut r,
        &[
            libc::SYS_openat2,    // the document root, then files beneath it (RESOLVE_BENEATH)
            libc::SYS_openat,     // other files std opens by path (error pages)
            libc::SYS_newfstatat, // fstat of opened files (glibc)
            libc::SYS_statx,      // std's metadata()
            libc::SYS_getdents64, // directory listings
            libc::SYS_readlinkat, // an absolute symlink's target, checked against its root
        ],
    );
    #[cfg(target_arch = "x86_64")]
    allow(&mut r, &[libc::SYS_fstat]); // fstat on x86_64 glibc before 2.33

    // --- memory ---
    allow(
        &mut r,
        &[
            libc::SYS_munmap,  // free of large blocks
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
    r.insert(libc::SYS_mmap, no_exec()?); // large allocations
    r.insert(libc::SYS_mprotect, no_exec()?); // glibc arena growth

    // --- time, randomness, signals, exit ---
    allow(
        &mut r,
        &[
            libc::SYS_futex,           // std's Once/Mutex (contended path only)
            libc::SYS_sched_yield,     // before a poll that would sleep (server.rs)
            libc::SYS_clock_gettime,   // timeouts, Date (when the vDSO is unusable)
            libc::SYS_getrandom,       // HashMap seeds; TLS key shares and nonces
            libc::SYS_rt_sigreturn,    // return from a signal handler
            libc::SYS_rt_sigprocmask,  // glibc's abort()
            libc::SYS_sigaltstack,     // std's stack-overflow handler, set up and torn down
            libc::SYS_getpid,          // log lines, mod_deflate's temporary cache names
            libc::SYS_sysinfo,         // deflate.max-loadavg: the load average (/proc is hidden)
            libc::SYS_gettid,          // glibc's raise()
            libc::SYS_restart_syscall, // the kernel resumes a call after SIGSTOP/SIGCONT
            libc::SYS_exit,            // a thread's end (none expected; harmless)
            libc::SYS_exit_group,      // the worker's end
        ],
    );
    // glibc's abort() resetting SIGABRT; never SIGSYS: the trap's handler, set
    // before the filter, cannot be replaced to outlive a refused call.
    r.insert(
        libc::SYS_rt_sigaction,
        vec![rule(vec![cond32(0, Op::Ne, libc::SIGSYS as u64)?])?],
    );
    // Signals only to itself (raise/abort); Landlock's Signal scope blocks others too.
    r.insert(
        libc::SYS_kill,
        vec![rule(vec![cond32(0, Op::Eq, pid as u64)?])?],
    );
    r.insert(
        libc::SYS_tgkill,
        vec![rule(vec![cond32(0, Op::Eq, pid as u64)?])?],
    );
    // Reading a resource limit (pid 0 = self, no new limit), never setting one.
    r.insert(
        libc::SYS_prlimit64,
        vec![rule(vec![cond32(0, Op::Eq, 0)?, cond(2, Op::Eq, 0)?])?],
    );
    // ioctl only to set non-blocking mode and for isatty() (std's stderr checks).
    r.insert(
        libc::SYS_ioctl,
        [libc::FIONBIO, libc::TCGETS]
            .iter()
            .map(|&req| rule(vec![cond32(1, Op::Eq, req)?]))
            .collect::<Result<_, _>>()?,
    );

    // TCP_NOTSENT_LOWAT on a client connection carrying a large body (conn.rs).
    r.insert(
        libc::SYS_setsockopt,
        vec![rule(vec![
            cond32(1, Op::Eq, libc::IPPROTO_TCP as u64)?,
            cond32(2, Op::Eq, libc::TCP_NOTSENT_LOWAT as u64)?,
        ])?],
    );

    // --- backends: only when the config has one; Landlock limits the ports ---
    if plan.connects() {
        let stream = |family: i32| -> Result<SeccompRule, String> {
            rule(vec![
                cond32(0, Op::Eq, family as u64)?,
                // the type with SOCK_NONBLOCK/SOCK_CLOEXEC masked off
                cond32(1, Op::MaskedEq(0xf), libc::SOCK_STREAM as u64)?,
            ])
        };
        // TCP or unix stream sockets, nothing else (no UDP, raw, packet, netlink)
        r.insert(
            libc::SYS_socket,
            vec![
                stream(libc::AF_INET)?,
                stream(libc::AF_INET6)?,
                stream(libc::AF_UNIX)?,
            ],
        );
        allow(
            &mut r,
            &[
                libc::SYS_connect,    // to a backend (Landlock: configured TCP ports only)
                libc::SYS_getsockopt, // SO_ERROR once a non-blocking connect completes
                libc::SYS_setsockopt, // TCP_NODELAY to the backend
            ],
        );
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
                libc::SYS_fdatasync, // flush a cache file before renaming it
            ],
        );
        #[cfg(target_arch = "x86_64")]
        allow(&mut r, &[libc::SYS_rename]); // glibc's rename() on x86_64
    }

    // --- upload dirs: a request body's file named and unlinked at once where
    // the file system has no O_TMPFILE (spool.rs); Landlock limits the places ---
    if !plan.upload.is_empty() {
        allow(&mut r, &[libc::SYS_unlinkat]);
    }

    Ok(r)
}

/// Compile `rules` to BPF: listed calls pass, anything else traps (SIGSYS; with
/// no handler installed, its default action kills the process as KillProcess
/// would, and a handler cannot let the call run: it never runs).
pub fn compile(rules: Rules) -> Result<BpfProgram, String> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e:?}"))?;
    let f = SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, arch)
        .map_err(|e| format!("seccomp: {e}"))?;
    f.try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))
}

/// Install `prog` on every thread of the process (TSYNC); no_new_privs is set by
/// seccompiler as the kernel requires for an unprivileged filter.
pub fn apply(prog: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter_all_threads(prog).map_err(|e| format!("seccomp: {e}"))
}
