//! The threads of a run: the feeder, which pulls jobs from the caller's
//! iterator into the bounded queue, and the workers, which run them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

use super::keyed::KeyLimiter;
use super::stop::{Msg, Shared};
use super::{Finished, Outcome};
use crate::lock::lock;

/// Pulls jobs into the queue until the input ends or the run is stopped;
/// with `credits` (the ordered window), one credit per job.
pub(super) fn feed<J>(
    jobs: impl Iterator<Item = J>,
    job_tx: &Sender<Msg<J>>,
    state: &Shared,
    credits: Option<&Sender<()>>,
) {
    let mut jobs = (0u64..).zip(jobs);
    while !state.feed_stopped.load(Ordering::SeqCst) {
        let Some((index, job)) = jobs.next() else {
            break;
        };
        // A job read while the run was being stopped is still sent: the
        // workers skip it, so it is accounted for.
        if credits.is_some_and(|c| c.send(()).is_err()) || job_tx.send(Some((index, job))).is_err()
        {
            break;
        }
    }
    // The input is done: without this last other sender the queue can
    // disconnect, which ends the workers.
    drop(lock(&state.pills).take());
}

/// One worker thread's handles.
pub(super) struct Worker<J, R, F> {
    pub(super) jobs: Receiver<Msg<J>>,
    pub(super) results: Sender<Finished<J, R>>,
    pub(super) state: Arc<Shared>,
    pub(super) limiter: Option<Arc<KeyLimiter<J>>>,
    pub(super) job_fn: Arc<F>,
}

// Stack depth: the job runs deepest (a fetch goes through ureq's large
// frames), and a thousand workers each keep the pages they ever touched.
// The channel operations are kept out of line (`next`, `hand_over`) so that
// their frames, which hold copies of the message, sit beside the job's
// frames rather than under them.
impl<J, R, F: Fn(&J) -> R> Worker<J, R, F> {
    pub(super) fn run(self) {
        // Ends on disconnection (input done) or on a pill (stopped).
        while let Some((index, job)) = self.next() {
            if !self.take(index, job) {
                return;
            }
        }
    }

    /// The next job, or None at the end of the input or at a pill.
    #[inline(never)]
    fn next(&self) -> Option<(u64, J)> {
        self.jobs.recv().ok().flatten()
    }

    /// Sends a finished job to the results; false when nobody listens.
    #[inline(never)]
    fn hand_over(&self, done: Finished<J, R>) -> bool {
        self.results.send(done).is_ok()
    }

    /// Runs (or parks, or skips) one job; false when nobody listens any more.
    fn take(&self, index: u64, job: J) -> bool {
        match &self.limiter {
            None => self.execute(index, job),
            Some(limiter) => self.take_limited(limiter, index, job),
        }
    }

    /// [`Worker::take`] with a per-key limit: out of line, so that without
    /// one its frame is not on the stack under every job.
    #[inline(never)]
    fn take_limited(&self, limiter: &KeyLimiter<J>, index: u64, job: J) -> bool {
        let Some(key) = limiter.key(&job) else {
            return self.execute(index, job);
        };
        let Some((mut index, mut job)) = limiter.acquire_or_park(&key, index, job) else {
            return true;
        };
        // We hold a slot for `key`: run this job, then whatever was parked on it.
        loop {
            if !self.execute(index, job) {
                limiter.release(&key);
                return false;
            }
            match limiter.next_or_release(&key) {
                Some(parked) => (index, job) = parked,
                None => return true,
            }
        }
    }

    fn execute(&self, index: u64, job: J) -> bool {
        let outcome = if self.state.skipping() {
            Outcome::Skipped
        } else {
            match catch_unwind(AssertUnwindSafe(|| (self.job_fn)(&job))) {
                Ok(value) => Outcome::Done(value),
                Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
            }
        };
        self.hand_over(Finished {
            index,
            job,
            outcome,
        })
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "job panicked".to_owned()
    }
}
