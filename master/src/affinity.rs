//! Workers bound to CPUs: with as many workers as CPUs wickd may run on, each
//! worker keeps to its own CPU.
//!
//! Why: a worker the scheduler moves or stacks on a sibling's CPU pays for it in
//! context switches. Under g2 (FastCGI, 2 workers on 2 CPUs) two unbound workers
//! often share one CPU and hand it back and forth; bound, they cost a fifth less
//! CPU per request (DESIGN.md). Any other count is left to the scheduler: which
//! worker should share is not ours to guess.

use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs the master may run on when it starts, in order.
pub struct Cpus(Vec<usize>);

impl Cpus {
    pub fn ours() -> Cpus {
        let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
            return Cpus(Vec::new());
        };
        Cpus(
            (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect(),
        )
    }

    /// The CPU for worker `id` (1-based) of `workers`: one each when there are
    /// as many workers as CPUs, and more than one.
    pub fn for_worker(&self, id: u32, workers: u32) -> Option<usize> {
        if workers < 2 || workers as usize != self.0.len() {
            return None;
        }
        self.0.get(id.checked_sub(1)? as usize).copied()
    }
}

/// The set holding `cpu` alone, for a child to bind itself with between fork
/// and exec (spawn.rs): the master may not bind a child after its exec, whose
/// fresh root capabilities are not a subset of the master's (no CAP_SYS_NICE).
pub fn only(cpu: usize) -> Option<CpuSet> {
    let mut set = CpuSet::new();
    set.set(cpu).ok()?;
    Some(set)
}

/// Process `pid` runs on `cpu` alone.
pub fn bound(pid: Pid, cpu: usize) -> bool {
    sched_getaffinity(pid)
        .is_ok_and(|set| (0..CpuSet::count()).all(|c| set.is_set(c).unwrap_or(false) == (c == cpu)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cpu_each_only_when_the_counts_match() {
        let cpus = Cpus(vec![0, 2, 5]);
        assert_eq!(cpus.for_worker(1, 3), Some(0));
        assert_eq!(cpus.for_worker(3, 3), Some(5));
        assert_eq!(cpus.for_worker(1, 2), None);
        assert_eq!(cpus.for_worker(1, 4), None);
        assert_eq!(Cpus(vec![0]).for_worker(1, 1), None);
    }
}
