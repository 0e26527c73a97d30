//! The worker's last words when seccomp refuses a system call. The filter
//! answers a call outside the allowlist with SECCOMP_RET_TRAP: the call does not
//! run, and the kernel sends SIGSYS with the call's number in the siginfo. This
//! handler stores that number in the worker's slot of the counter page (the
//! master reads it after waitpid, names the call in the error log and counts
//! the kill), then lets the signal's default action end the process, so the
//! master still sees a death by SIGSYS. Async-signal-safe: one atomic store and
//! kill(2), both in the allowlist; nothing allocates or locks.
//!
//! A SIGSYS sent by kill(2) from outside carries no syscall number
//! (si_code is not SYS_SECCOMP): nothing is stored, and the process dies as
//! before.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use wick_proto::counters::SIGSYS_SEEN;

/// Where the handler stores the number (this worker's `Slot::sigsys`).
static NOTE: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// si_code of a SIGSYS sent by seccomp (SYS_SECCOMP in <asm-generic/siginfo.h>).
const SYS_SECCOMP: libc::c_int = 1;

/// Offset of `_sigsys._syscall` in siginfo_t: the three ints, padding to the
/// union's pointer alignment, then `_call_addr`, then `_syscall`.
const SYSCALL_OFFSET: usize = (3 * std::mem::size_of::<libc::c_int>())
    .next_multiple_of(std::mem::align_of::<*const u8>())
    + std::mem::size_of::<*const u8>();

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    let note = NOTE.load(Ordering::Relaxed);
    if !info.is_null() && !note.is_null() {
        // SAFETY: the kernel hands a valid siginfo_t for the duration of the
        // handler; si_code is at the same place for every signal.
        let code = unsafe { (*info).si_code };
        if code == SYS_SECCOMP {
            // SAFETY: for a seccomp SIGSYS the union holds _sigsys, whose
            // _syscall int lies at SYSCALL_OFFSET within the siginfo_t (128 bytes).
            let nr = unsafe { info.cast::<u8>().add(SYSCALL_OFFSET).cast::<i32>().read() };
            // SAFETY: NOTE points into the counter page, mapped for the life of
            // the process (wick_proto::counters::Board::map never unmaps).
            unsafe { &*note }.store(SIGSYS_SEEN | u64::from(nr as u32), Ordering::Relaxed);
        }
    }
    // SA_RESETHAND made the action the default again, and SA_NODEFER leaves the
    // signal unblocked: this kill ends the process by SIGSYS. Should it return,
    // exit with the shell's code for that signal.
    // SAFETY: kill and exit_group with integer arguments; both are allowed.
    unsafe {
        libc::syscall(libc::SYS_kill, libc::getpid(), libc::SIGSYS);
        libc::syscall(libc::SYS_exit_group, 128 + libc::SIGSYS);
    }
}

/// Install the handler; the seccomp filter (applied later) traps instead of
/// killing. Call before the sandbox, with the slot's `sigsys` counter.
pub fn install(note: &'static AtomicU64) {
    NOTE.store(std::ptr::from_ref(note).cast_mut(), Ordering::Relaxed);
    // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO so it gets the
    // siginfo, an empty mask; sigaction copies it.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_syscall_number_sits_after_the_call_address() {
        // x86_64 and aarch64: si_signo, si_errno, si_code (12 bytes), 4 of
        // padding, _call_addr (8): _syscall at 24.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(super::SYSCALL_OFFSET, 24);
    }
}
