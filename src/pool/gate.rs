//! Per-key gates that jobs close from the inside: "start nothing of key K
//! before T" ([`Gate::pause`]), "start at most one job of key K per
//! interval" ([`Gate::set_interval`]), "run at most N of key K at once"
//! ([`Gate::set_limit`]), and pacing of all keys together
//! ([`Gate::set_global_interval`]); and [`Step`], through which a job that
//! is not finished asks to be run again later.
//!
//! The pool knows nothing of what a key means (for fetchpool it is a
//! `host:port`, and the reasons to close it are HTTP answers); it only
//! holds jobs of a closed key back, parked, without a worker waiting on
//! them, and starts them when their key opens.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What one step of a job gave (see [`Pool::as_completed_steps`](super::Pool::as_completed_steps)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<R> {
    /// The job is finished, with this value.
    Done(R),
    /// The job is not finished: run it again (with the state it keeps in
    /// itself) no earlier than `at`, and not while its key is closed. Until
    /// then it is parked and holds no worker. `so_far` is its result should
    /// the run stop first.
    Again {
        /// The earliest time to run it again.
        at: Instant,
        /// The result if it is never run again.
        so_far: R,
    },
}

/// What a [`Gate`] changes; implemented by the pool's per-key limiter.
pub(super) trait Schedule: Send + Sync {
    /// Start nothing of `key` before `until`.
    fn pause(&self, key: &str, until: Instant);
    /// Start jobs of `key` at least `interval` apart (`None`: no pacing).
    fn set_interval(&self, key: &str, interval: Option<Duration>);
    /// When the next job of `key` may start: `None` if it may start now.
    fn opens_at(&self, key: &str) -> Option<Instant>;
    /// Run at most `limit` jobs of `key` at once (`None`: the pool's limit).
    fn set_limit(&self, key: &str, limit: Option<usize>);
    /// Opens `key` now: no pause, no pacing, parked jobs due at once.
    fn release(&self, key: &str);
    /// Start keyed jobs, all keys together, at least `interval` apart.
    fn set_global_interval(&self, interval: Option<Duration>);
}

/// A handle through which jobs pause and pace the keys of their pool (see
/// [`Pool::gate`](super::Pool::gate)). It exists before the run, so a job
/// function can capture it; it acts once the run has started, on pools
/// with keys (calls before that, or on a pool without keys, do nothing).
/// Cheap to clone and to share between threads.
#[derive(Clone, Default)]
pub struct Gate(Arc<OnceLock<Arc<dyn Schedule>>>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("attached", &self.0.get().is_some())
            .finish()
    }
}

impl Gate {
    /// No job of `key` starts before `until` (a later pause wins over an
    /// earlier one). Jobs of other keys go on; workers are not held.
    pub fn pause(&self, key: &str, until: Instant) {
        if let Some(s) = self.0.get() {
            s.pause(key, until);
        }
    }

    /// Jobs of `key` start at least `interval` apart from now on, or as
    /// fast as workers take them with `None`.
    pub fn set_interval(&self, key: &str, interval: Option<Duration>) {
        if let Some(s) = self.0.get() {
            s.set_interval(key, interval);
        }
    }

    /// When the next job of `key` may start, if not now.
    pub fn opens_at(&self, key: &str) -> Option<Instant> {
        self.0.get().and_then(|s| s.opens_at(key))
    }

    /// At most `limit` jobs of `key` run at once from now on, in place of
    /// the pool's per-key limit (above or below it); `None` goes back to
    /// the pool's.
    /// Jobs over it are parked, as for a busy key; a raised limit starts
    /// parked jobs at once.
    pub fn set_limit(&self, key: &str, limit: Option<usize>) {
        if let Some(s) = self.0.get() {
            s.set_limit(key, limit);
        }
    }

    /// Opens `key` at once: its pause and pacing end, and every job of it
    /// parked to run later is due now (the caller has decided they need
    /// not wait: they will end without waiting).
    pub fn release(&self, key: &str) {
        if let Some(s) = self.0.get() {
            s.release(key);
        }
    }

    /// Jobs with a key, whatever the key, start at least `interval` apart
    /// (`None`: no such pacing). Slots missed while nobody could start a
    /// job are not made up: the next start is `interval` after the last
    /// one that happened, or now.
    pub fn set_global_interval(&self, interval: Option<Duration>) {
        if let Some(s) = self.0.get() {
            s.set_global_interval(interval);
        }
    }

    /// Binds the handle to the run's limiter.
    pub(super) fn attach(&self, schedule: Arc<dyn Schedule>) {
        // A pool runs once; a second attach cannot happen.
        let _ = self.0.set(schedule);
    }
}
