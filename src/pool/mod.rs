//! A fixed pool of worker threads that maps a function over a stream of jobs.
//!
//! This module knows nothing of HTTP: it is the Rust form of Python's
//! `ThreadPoolExecutor`, with two ways to collect results:
//! [`Pool::as_completed`] yields them in completion order, [`Pool::ordered`]
//! in input order through a bounded reorder window.
//!
//! Data flows one way. A feeder thread pulls jobs from the caller's iterator
//! (lazily: a million-line input never sits in memory) into a **bounded**
//! channel, so a fast producer blocks until a worker is free (backpressure).
//! Exactly `workers` named threads take jobs from that channel and send one
//! [`Finished`] per job on a results channel, bounded as well, which the
//! caller iterates: a slow consumer holds the workers back.
//!
//! Shutdown is channel disconnection, the Rust form of the sentinel pattern:
//! when the iterator is exhausted the feeder drops its sender, each worker's
//! `recv` then fails once the queue is empty, the workers exit and drop their
//! result senders, and the caller's iteration ends. Every worker is joined
//! when the [`Completed`] is dropped, so no result is lost. After a stop the
//! feeder may be blocked reading its input, so one `None` per worker (the
//! sentinel itself) is sent to end the workers instead.
//!
//! A job that panics becomes [`Outcome::Panicked`]; its worker lives on.
//! [`StopHandle`] stops a run early: every job not yet started comes back as
//! [`Outcome::Skipped`], so callers can still account for each one.
//!
//! With [`Pool::per_key`], at most `limit` jobs with the same key run at once,
//! without head-of-line blocking: a worker that takes a job whose key is busy
//! parks it in a per-key waiting list and takes the next job instead; the
//! worker that finishes a job of that key runs the parked ones. Parked jobs
//! are capped (see [`Pool::per_key`]) so memory stays bounded; past the cap a
//! worker waits for its key instead.

mod keyed;
mod ordered;
mod stop;
#[cfg(test)]
mod tests;
mod worker;

use std::io;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::lock::lock;
use keyed::KeyLimiter;
pub use ordered::Ordered;
pub use stop::StopHandle;
use stop::{Msg, Shared};
use worker::{Worker, feed};

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    /// The job function returned this value.
    Done(R),
    /// The job function panicked with this message; the worker survived.
    Panicked(String),
    /// The job was never started because the run was stopped.
    Skipped,
}

/// One job's result, with the job itself and its 0-based input position.
#[derive(Debug)]
pub struct Finished<J, R> {
    /// Position of the job in the input iterator.
    pub index: u64,
    /// The job, handed back so the caller knows what this result is for.
    pub job: J,
    /// What happened to it.
    pub outcome: Outcome<R>,
}

/// Smallest capacity of the results channel.
const RESULTS_MIN: usize = 1024;

type KeyFn<J> = Arc<dyn Fn(&J) -> Option<String> + Send + Sync>;

/// Builder and configuration of a pool run.
pub struct Pool<J> {
    workers: NonZeroUsize,
    queue: Option<NonZeroUsize>,
    thread_name: String,
    stack_size: Option<usize>,
    per_key: Option<(NonZeroUsize, KeyFn<J>)>,
    state: Arc<Shared>,
}

impl<J: Send + 'static> Pool<J> {
    /// A pool of exactly `workers` threads with a job queue of `2 * workers`.
    pub fn new(workers: NonZeroUsize) -> Self {
        Pool {
            workers,
            queue: None,
            thread_name: "pool-worker".to_owned(),
            stack_size: None,
            per_key: None,
            state: Arc::default(),
        }
    }

    /// A handle that stops the run this pool will start, from any thread.
    /// It exists before the run does, so a signal handler or `--fail-fast`
    /// can be wired up before the first job starts.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.state))
    }

    /// Capacity of the bounded job queue (backpressure on the producer).
    pub fn queue(mut self, capacity: NonZeroUsize) -> Self {
        self.queue = Some(capacity);
        self
    }

    /// Worker threads are named `{prefix}-{k}`, k from 1.
    pub fn thread_name(mut self, prefix: &str) -> Self {
        self.thread_name = prefix.to_owned();
        self
    }

    /// Stack size of each worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Run at most `limit` jobs with the same key at once (jobs whose key is
    /// `None` are not limited). Jobs parked while their key is busy are capped
    /// at `max(1024, 16 * workers)` in total.
    pub fn per_key(
        mut self,
        limit: NonZeroUsize,
        key: impl Fn(&J) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.per_key = Some((limit, Arc::new(key)));
        self
    }

    fn queue_capacity(&self) -> usize {
        self.queue.map_or(2 * self.workers.get(), NonZeroUsize::get)
    }

    /// Runs `job_fn` over `jobs` and yields one [`Finished`] per job in
    /// completion order, like Python's `as_completed`.
    pub fn as_completed<R, I, F>(self, jobs: I, job_fn: F) -> io::Result<Completed<J, R>>
    where
        R: Send + 'static,
        I: IntoIterator<Item = J>,
        I::IntoIter: Send + 'static,
        F: Fn(&J) -> R + Send + Sync + 'static,
    {
        self.start(jobs.into_iter(), job_fn, None)
    }

    /// Runs `job_fn` over `jobs` and yields one [`Finished`] per job in input
    /// order, like Python's `executor.map`. At most `window` results wait in
    /// the reorder buffer: the feeder does not start job `i + window` until
    /// result `i` has been yielded, so memory stays bounded even when one job
    /// is slow. `window` defaults to the queue capacity plus the workers, and
    /// at least 1,024.
    pub fn ordered<R, I, F>(
        self,
        jobs: I,
        job_fn: F,
        window: Option<NonZeroUsize>,
    ) -> io::Result<Ordered<J, R>>
    where
        R: Send + 'static,
        I: IntoIterator<Item = J>,
        I::IntoIter: Send + 'static,
        F: Fn(&J) -> R + Send + Sync + 'static,
    {
        let window = window.map_or(
            (self.queue_capacity() + self.workers.get()).max(RESULTS_MIN),
            NonZeroUsize::get,
        );
        let (credit_tx, credit_rx) = bounded(window);
        let completed = self.start(jobs.into_iter(), job_fn, Some(credit_tx))?;
        Ok(Ordered {
            completed,
            credits: credit_rx,
            pending: std::collections::BTreeMap::new(),
            next: 0,
        })
    }

    fn start<R, F>(
        self,
        jobs: impl Iterator<Item = J> + Send + 'static,
        job_fn: F,
        credits: Option<Sender<()>>,
    ) -> io::Result<Completed<J, R>>
    where
        R: Send + 'static,
        F: Fn(&J) -> R + Send + Sync + 'static,
    {
        let (job_tx, job_rx) = bounded::<Msg<J>>(self.queue_capacity());
        // Bounded too: a consumer slower than the workers (stdout into a
        // slow pipe) must hold them back, not pile up results in memory. But
        // roomy: workers that often find it full park and wake once per
        // result, which costs more than the results themselves.
        let results_capacity = (self.queue_capacity() + self.workers.get()).max(RESULTS_MIN);
        let (result_tx, result_rx) = bounded::<Finished<J, R>>(results_capacity);
        let workers_n = self.workers.get();
        let pills = {
            let job_tx = job_tx.clone();
            move || {
                for _ in 0..workers_n {
                    // Fails only when every worker is gone already.
                    let _ = job_tx.send(None);
                }
            }
        };
        let state = self.state;
        *lock(&state.pills) = Some(Box::new(pills));
        let limiter = self.per_key.map(|(limit, key)| {
            let cap = (16 * self.workers.get()).max(1024);
            Arc::new(KeyLimiter::new(limit.get(), cap, key))
        });
        let job_fn = Arc::new(job_fn);

        // The feeder first: with a thousand workers, the first ones are busy
        // while the last are still being spawned.
        let feeder = {
            let state = Arc::clone(&state);
            thread::Builder::new()
                .name(format!("{}-feeder", self.thread_name))
                .spawn(move || feed(jobs, &job_tx, &state, credits.as_ref()))?
        };
        let mut workers = Vec::with_capacity(self.workers.get());
        for k in 1..=self.workers.get() {
            let mut builder = thread::Builder::new().name(format!("{}-{k}", self.thread_name));
            if let Some(bytes) = self.stack_size {
                builder = builder.stack_size(bytes);
            }
            let worker = Worker {
                jobs: job_rx.clone(),
                results: result_tx.clone(),
                state: Arc::clone(&state),
                limiter: limiter.clone(),
                job_fn: Arc::clone(&job_fn),
            };
            match builder.spawn(move || worker.run()) {
                Ok(handle) => workers.push(handle),
                Err(err) => {
                    state.stop();
                    return Err(err);
                }
            }
        }
        drop(result_tx);
        Ok(Completed {
            results: result_rx,
            jobs: job_rx,
            limiter,
            workers,
            feeder: Some(feeder),
            state,
        })
    }
}

/// What waiting a while for the next result gave.
#[derive(Debug)]
pub enum Next<T> {
    /// A result.
    Ready(T),
    /// None yet; the run goes on.
    Waiting,
    /// Every job has been accounted for.
    End,
}

/// What both result iterators offer besides iteration.
pub trait Results: Iterator {
    /// A handle that stops this run from another thread.
    fn stop_handle(&self) -> StopHandle;
    /// Whether `next` would return at once; a consumer that buffers output
    /// flushes when this is false, before it blocks.
    fn ready(&self) -> bool;
    /// Waits at most `timeout` for the next result, so the consumer can
    /// look at other things (signals, a closed stdout) while jobs run.
    fn next_within(&mut self, timeout: Duration) -> Next<Self::Item>;
    /// Gives up on the run without waiting for jobs still running: returns
    /// the results already finished and every job that never started (as
    /// [`Outcome::Skipped`]); running jobs are left to their threads, which
    /// are detached, not joined. Waits at most `settle` for each result of a
    /// worker that was about to hand one over.
    fn abandon(self: Box<Self>, settle: Duration) -> Vec<Self::Item>;
}

/// Results of a pool run in completion order. Dropping it stops the run and
/// joins every worker.
pub struct Completed<J, R> {
    results: Receiver<Finished<J, R>>,
    /// The job queue, so jobs never started can be handed back on abandon.
    jobs: Receiver<Msg<J>>,
    limiter: Option<Arc<KeyLimiter<J>>>,
    workers: Vec<JoinHandle<()>>,
    feeder: Option<JoinHandle<()>>,
    state: Arc<Shared>,
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

    fn abandon(mut self: Box<Self>, settle: Duration) -> Vec<Self::Item> {
        self.state.stop();
        let skipped = |(index, job)| Finished {
            index,
            job,
            outcome: Outcome::Skipped,
        };
        let mut out = Vec::new();
        let mut jobs_open = true;
        loop {
            let before = out.len();
            out.extend(self.results.try_iter());
            // Pills (None) taken here are not needed: nothing is joined.
            out.extend(self.jobs.try_iter().flatten().map(skipped));
            if let Some(limiter) = &self.limiter {
                out.extend(limiter.take_parked().into_iter().map(skipped));
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
                        Ok(Some(job)) => out.push(skipped(job)),
                        Ok(None) => {}
                        Err(_) => jobs_open = false,
                    },
                    default(settle) => break,
                }
            }
        }
        // Detach every thread: some are blocked in jobs that may never end.
        self.workers.clear();
        self.feeder = None;
        drop(lock(&self.state.pill_sender).take());
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
        self.state.stop();
        // Nobody will read the rest: with the receiver gone, a worker blocked
        // on a full results channel fails its send and leaves.
        self.results = crossbeam_channel::never();
        for worker in self.workers.drain(..) {
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
