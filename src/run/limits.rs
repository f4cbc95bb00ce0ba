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

#[cfg(test)]
mod tests {
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
