//! [`Completed`]: the results of a run in completion order, and how a run
//! is given up on or torn down so that every job is accounted for and
//! every thread ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::keyed::{Item, KeyLimiter};
use super::stop::{Msg, Shared};
use super::{Finished, Next, Outcome, Results, StopHandle};
use crate::lock::lock;

/// The job a queue message carries, if it is one.
fn job_of<J>(msg: Msg<J>) -> Option<(u64, J)> {
    match msg {
        Msg::Job(index, job) => Some((index, job)),
        Msg::Pill | Msg::Wake => None,
    }
}

/// Results of a pool run in completion order. Dropping it stops the run and
/// joins every worker.
pub struct Completed<J, R> {
    pub(super) results: Receiver<Finished<J, R>>,
    /// The job queue, so jobs never started can be handed back on abandon.
    pub(super) jobs: Receiver<Msg<J>>,
    pub(super) limiter: Option<Arc<KeyLimiter<J, R>>>,
    pub(super) feeder: Option<JoinHandle<()>>,
    pub(super) state: Arc<Shared>,
    /// Abandoned: its threads are left to run, never joined.
    pub(super) detached: bool,
}

impl<J, R> Results for Completed<J, R> {
    fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.state))
    }

    fn ready(&self) -> bool {
        !self.results.is_empty()
    }

    fn next_within(&mut self, timeout: Duration) -> Next<Self::Item> {
        match self.results.recv_timeout(timeout) {
            Ok(done) => Next::Ready(done),
            Err(RecvTimeoutError::Timeout) => Next::Waiting,
            Err(RecvTimeoutError::Disconnected) => Next::End,
        }
    }

    fn abandon(self: Box<Self>, settle: Duration) -> Vec<Self::Item> {
        self.abandon_with(settle, None)
    }
}

impl<J, R> Completed<J, R> {
    /// [`Results::abandon`], also taking the ordered window's `credits` so
    /// the feeder is never held back by them.
    pub(super) fn abandon_with(
        mut self,
        settle: Duration,
        credits: Option<&Receiver<()>>,
    ) -> Vec<Finished<J, R>> {
        // Nothing new starts; the input is read on unless the run was
        // stopped before (a pipe that may never end).
        self.state.skip.store(true, Ordering::SeqCst);
        let skipped = |(index, job)| Finished {
            index,
            job,
            outcome: Outcome::Skipped,
        };
        let mut out = Vec::new();
        let mut jobs_open = true;
        loop {
            let before = out.len();
            if let Some(credits) = credits {
                credits.try_iter().for_each(drop);
            }
            out.extend(self.results.try_iter());
            // Pills and wakes taken here are not needed: nothing is joined.
            out.extend(self.jobs.try_iter().filter_map(job_of).map(skipped));
            if let Some(limiter) = &self.limiter {
                out.extend(limiter.take_parked().into_iter().map(|item| match item {
                    Item::Fresh(index, job) => skipped((index, job)),
                    Item::Resumed(index, job, so_far) => Finished {
                        index,
                        job,
                        outcome: Outcome::Done(so_far),
                    },
                }));
            }
            if out.len() == before {
                // A free worker may hold a job it is about to skip, the
                // feeder one it is about to queue.
                let jobs = if jobs_open {
                    self.jobs.clone()
                } else {
                    crossbeam_channel::never()
                };
                crossbeam_channel::select! {
                    recv(self.results) -> done => match done {
                        Ok(done) => out.push(done),
                        Err(_) => break,
                    },
                    recv(jobs) -> job => match job {
                        Ok(msg) => out.extend(job_of(msg).map(skipped)),
                        Err(_) => jobs_open = false,
                    },
                    default(settle) => break,
                }
            }
        }
        // Detach every thread: some are blocked in jobs that may never end.
        self.detached = true;
        out
    }
}

impl<J, R> Iterator for Completed<J, R> {
    type Item = Finished<J, R>;

    fn next(&mut self) -> Option<Self::Item> {
        // Only workers send results: this ends when the last one has left.
        self.results.recv().ok()
    }
}

impl<J, R> Drop for Completed<J, R> {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.state.stop();
        // Nobody will read the rest: with the receiver gone, a worker blocked
        // on a full results channel fails its send and leaves.
        self.results = crossbeam_channel::never();
        // Stopped: no worker starts from now on.
        let workers = std::mem::take(&mut lock(&self.state.growth).handles);
        for worker in workers {
            // A worker never panics (jobs are caught); nothing to report.
            let _ = worker.join();
        }
        // With every worker gone, and the last receiver dropped here, its
        // sends fail, so it has ended or will. (While `self.jobs` lived, a
        // pill sender blocked on a full queue would wait for ever.)
        self.jobs = crossbeam_channel::never();
        let pill_sender = lock(&self.state.pill_sender).take();
        if let Some(handle) = pill_sender {
            let _ = handle.join();
        }
        if let Some(feeder) = self.feeder.take() {
            // After a stop the feeder may be blocked on a read of its input
            // that never returns (a pipe kept open); only join it if it ended.
            if feeder.is_finished() || !self.state.feed_stopped.load(Ordering::SeqCst) {
                let _ = feeder.join();
            }
        }
    }
}
