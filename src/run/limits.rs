//! The open-files limit. Every request in flight holds a socket (and, with
//! `--output-dir`, a file), and the shared agent keeps idle connections
//! open besides: a thousand workers under the common soft limit of 1,024
//! would fail requests with "Too many open files" that are our own doing.
//! So the soft limit is raised toward the hard one at start, and when the
//! workers still do not fit, the run uses only as many as fit.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept free for everything but requests: stdio, input files,
/// the signal pipe, output files, name lookups.
const RESERVED: u64 = 64;
/// Beyond this the soft limit is not raised: nobody needs more.
const ENOUGH: u64 = 1 << 20;

/// Raises the soft open-files limit toward the hard limit; returns the
/// soft limit now in force (`None`: unlimited or unknown).
pub fn raise_open_files() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    let want = limit.maximum.unwrap_or(ENOUGH).min(ENOUGH);
    if want > soft
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        )
        .is_ok()
    {
        return Some(want);
    }
    Some(soft)
}

/// How many workers fit under `limit` open files: each needs a socket in
/// flight and room for an idle one in the shared pool, and a file when
/// bodies are saved.
pub fn workers_that_fit(limit: Option<u64>, workers: usize, saving: bool) -> usize {
    let Some(limit) = limit else {
        return workers;
    };
    let per_worker = 2 + u64::from(saving);
    let fit = limit.saturating_sub(RESERVED) / per_worker;
    usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, workers)
}

/// The most workers `-j auto` starts, whatever the machine.
pub const AUTO_MAX: usize = 1024;
/// Memory each worker may cost (stack pages touched, connection buffers,
/// TLS state), with room to spare.
const PER_WORKER_BYTES: u64 = 256 * 1024;

/// How many workers fit in a quarter of the memory available now (`None`:
/// unknown, as off Linux).
pub fn workers_in_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fit = kib.saturating_mul(1024) / 4 / PER_WORKER_BYTES;
    Some(usize::try_from(fit).unwrap_or(usize::MAX).max(1))
}

/// The most workers `-j auto` may start: [`AUTO_MAX`], or fewer when the
/// open files (`fds`, see [`workers_that_fit`]) or the memory allow fewer.
pub fn auto_ceiling(fds: usize, memory: Option<usize>) -> usize {
    AUTO_MAX.min(fds).min(memory.unwrap_or(AUTO_MAX)).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_auto_ceiling_is_the_least_of_the_machines_limits() {
        assert_eq!(auto_ceiling(100_000, None), AUTO_MAX);
        assert_eq!(auto_ceiling(96, Some(10_000)), 96);
        assert_eq!(auto_ceiling(4096, Some(200)), 200);
        assert_eq!(auto_ceiling(0, Some(0)), 1);
        assert!(workers_in_memory().is_none_or(|n| n >= 1));
    }

    use super::*;

    #[test]
    fn caps_workers_to_what_fits() {
        assert_eq!(workers_that_fit(None, 1000, true), 1000);
        assert_eq!(workers_that_fit(Some(1 << 20), 4096, true), 4096);
        assert_eq!(workers_that_fit(Some(256), 1000, false), 96);
        assert_eq!(workers_that_fit(Some(256), 1000, true), 64);
        // Never zero: one worker always runs, even under a silly limit.
        assert_eq!(workers_that_fit(Some(10), 8, false), 1);
    }

    #[test]
    fn raising_never_lowers() {
        let before = getrlimit(Resource::Nofile).current;
        let after = raise_open_files();
        if let (Some(b), Some(a)) = (before, after) {
            assert!(a >= b);
        }
    }
}
