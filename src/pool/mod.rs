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
//!
//! Keys can also be closed from inside the jobs, through a [`Gate`]: paused
//! until a time, or paced to one start per interval. Jobs of a closed key
//! are parked the same way and started when it opens, by whichever worker
//! is free; other keys go on. A job run with [`Pool::as_completed_steps`]
//! may also return [`Step::Again`]: it is parked, holding no worker, and run
//! again at the time it asked for.

mod completed;
mod gate;
#[cfg(test)]
mod gate_tests;
mod keyed;
mod ordered;
mod parked;
mod stop;
#[cfg(test)]
mod tests;
mod worker;

use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

use crate::lock::lock;
pub use completed::Completed;
pub use gate::{Gate, Step};
use keyed::KeyLimiter;
pub use ordered::Ordered;
pub use stop::StopHandle;
use stop::{Msg, Shared};
use worker::{Worker, feed};
pub use worker::{held, start_unused};

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

/// How big a pool is and how its results come back: the builder's
/// settings as one value, for a front end that checks them up front.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Worker threads ([`Pool::new`]).
    pub workers: NonZeroUsize,
    /// Job queue capacity ([`Pool::queue`]).
    pub queue: NonZeroUsize,
    /// Jobs of one key running at once ([`Pool::per_key`]); unlimited if `None`.
    pub per_key: Option<NonZeroUsize>,
    /// Results in input order ([`Pool::ordered`]) rather than as completed.
    pub ordered: bool,
}

/// Smallest capacity of the results channel.
const RESULTS_MIN: usize = 1024;

type KeyFn<J> = Arc<dyn Fn(&J) -> Option<String> + Send + Sync>;

/// Builder and configuration of a pool run.
pub struct Pool<J> {
    workers: NonZeroUsize,
    ceiling: NonZeroUsize,
    queue: Option<NonZeroUsize>,
    thread_name: String,
    stack_size: Option<usize>,
    key: Option<KeyFn<J>>,
    per_key: Option<NonZeroUsize>,
    pace_all: Option<Duration>,
    gate: Gate,
    state: Arc<Shared>,
}

impl<J: Send + 'static> Pool<J> {
    /// A pool of exactly `workers` threads with a job queue of `2 * workers`.
    pub fn new(workers: NonZeroUsize) -> Self {
        Pool {
            workers,
            ceiling: workers,
            queue: None,
            thread_name: "pool-worker".to_owned(),
            stack_size: None,
            key: None,
            per_key: None,
            pace_all: None,
            gate: Gate::default(),
            state: Arc::default(),
        }
    }

    /// A handle that stops the run this pool will start, from any thread.
    /// It exists before the run does, so a signal handler or `--fail-fast`
    /// can be wired up before the first job starts.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.state))
    }

    /// Lets the pool start more workers while it runs, up to `ceiling` in
    /// all: one more each time a worker starts a job while none is idle
    /// and more work could start now (jobs queued behind it, or parked jobs
    /// that are due). Workers are never stopped before the run ends.
    pub fn grow_to(mut self, ceiling: NonZeroUsize) -> Self {
        self.ceiling = ceiling.max(self.workers);
        self
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
        self.per_key = Some(limit);
        self.keyed(key)
    }

    /// Gives jobs keys (`None`: no key) without limiting how many of a key
    /// run at once, so that a [`Gate`] can pause and pace them.
    pub fn keyed(mut self, key: impl Fn(&J) -> Option<String> + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// Starts jobs with a key, all keys together, at least `interval` apart
    /// (see [`Gate::set_global_interval`]): a job that may not start yet is
    /// parked, not waited for on a worker, and slots missed while nobody
    /// could start a job are not made up.
    pub fn pace_all(mut self, interval: Duration) -> Self {
        self.pace_all = Some(interval);
        self
    }

    /// A handle through which jobs pause and pace keys (see [`Gate`]). Like
    /// [`Pool::stop_handle`] it exists before the run, so the job function
    /// can hold it; it acts on pools with keys ([`Pool::keyed`],
    /// [`Pool::per_key`]).
    pub fn gate(&self) -> Gate {
        self.gate.clone()
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
        self.start(
            jobs.into_iter(),
            move |j: &mut J| Step::Done(job_fn(j)),
            None,
            false,
        )
    }

    /// Like [`Pool::as_completed`], for jobs done in steps: `step_fn` may
    /// return [`Step::Again`] to be called again later with the same job
    /// (which keeps its own state), parked in between without a worker.
    pub fn as_completed_steps<R, I, F>(self, jobs: I, step_fn: F) -> io::Result<Completed<J, R>>
    where
        R: Send + 'static,
        I: IntoIterator<Item = J>,
        I::IntoIter: Send + 'static,
        F: Fn(&mut J) -> Step<R> + Send + Sync + 'static,
    {
        self.start(jobs.into_iter(), step_fn, None, true)
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
        self.ordered_steps(jobs, move |j: &mut J| Step::Done(job_fn(j)), window)
    }

    /// Like [`Pool::ordered`], for jobs done in steps (see
    /// [`Pool::as_completed_steps`]).
    pub fn ordered_steps<R, I, F>(
        self,
        jobs: I,
        step_fn: F,
        window: Option<NonZeroUsize>,
    ) -> io::Result<Ordered<J, R>>
    where
        R: Send + 'static,
        I: IntoIterator<Item = J>,
        I::IntoIter: Send + 'static,
        F: Fn(&mut J) -> Step<R> + Send + Sync + 'static,
    {
        let window = window.map_or(
            (self.queue_capacity() + self.workers.get()).max(RESULTS_MIN),
            NonZeroUsize::get,
        );
        let (credit_tx, credit_rx) = bounded(window);
        let completed = self.start(jobs.into_iter(), step_fn, Some(credit_tx), true)?;
        Ok(Ordered {
            completed,
            credits: credit_rx,
            pending: std::collections::BTreeMap::new(),
            next: 0,
        })
    }

    fn start<R, F>(
        mut self,
        jobs: impl Iterator<Item = J> + Send + 'static,
        job_fn: F,
        credits: Option<Sender<()>>,
        stepped: bool,
    ) -> io::Result<Completed<J, R>>
    where
        R: Send + 'static,
        F: Fn(&mut J) -> Step<R> + Send + Sync + 'static,
    {
        let (job_tx, job_rx) = bounded::<Msg<J>>(self.queue_capacity());
        // Bounded too: a consumer slower than the workers (stdout into a
        // slow pipe) must hold them back, not pile up results in memory. But
        // roomy: workers that often find it full park and wake once per
        // result, which costs more than the results themselves.
        let results_capacity = (self.queue_capacity() + self.ceiling.get()).max(RESULTS_MIN);
        let (result_tx, result_rx) = bounded::<Finished<J, R>>(results_capacity);
        *lock(&self.state.pills) = Some(pills(job_tx.clone(), Arc::downgrade(&self.state)));
        {
            let mut growth = lock(&self.state.growth);
            growth.ceiling = self.ceiling.get();
            self.state
                .ceiling
                .store(self.ceiling.get(), Ordering::Relaxed);
            growth.name = self.thread_name.clone();
            growth.stack = self.stack_size;
        }
        let limiter = self.limiter(stepped, &job_tx);
        // The feeder first: with a thousand workers, the first ones are busy
        // while the last are still being spawned.
        let feeder = self.spawn_feeder(jobs, job_tx, credits, limiter.clone())?;
        let job_fn = Arc::new(job_fn);
        for _ in 0..self.workers.get() {
            let worker = Worker {
                jobs: job_rx.clone(),
                results: result_tx.clone(),
                state: Arc::clone(&self.state),
                limiter: limiter.clone(),
                job_fn: Arc::clone(&job_fn),
            };
            if let Err(err) = worker::spawn(worker, false) {
                self.state.stop();
                return Err(err);
            }
        }
        drop(result_tx);
        Ok(Completed {
            results: result_rx,
            jobs: job_rx,
            limiter,
            feeder: Some(feeder),
            state: self.state,
            detached: false,
        })
    }

    /// The per-key limiter, attached to the gate and woken at a stop. Jobs
    /// that may come back later (`stepped`) need its parking lot, keyed or
    /// not.
    fn limiter<R: Send + 'static>(
        &mut self,
        stepped: bool,
        job_tx: &Sender<Msg<J>>,
    ) -> Option<Arc<KeyLimiter<J, R>>> {
        let key = match self.key.take() {
            Some(key) => key,
            None if stepped => Arc::new(|_: &J| None) as KeyFn<J>,
            None => return None,
        };
        let cap = (16 * self.ceiling.get()).max(1024);
        let limit = self.per_key.map_or(usize::MAX, NonZeroUsize::get);
        let limiter = Arc::new(KeyLimiter::new(limit, cap, key, job_tx.clone()));
        let schedule = Arc::clone(&limiter) as Arc<dyn gate::Schedule>;
        schedule.set_global_interval(self.pace_all);
        self.gate.attach(schedule);
        let weak = Arc::downgrade(&limiter);
        *lock(&self.state.on_stop) = Some(Box::new(move || {
            if let Some(limiter) = weak.upgrade() {
                limiter.notify_all();
                limiter.wake_idle();
            }
        }));
        Some(limiter)
    }

    /// Starts the thread that pulls `jobs` into the queue.
    fn spawn_feeder<R: Send + 'static>(
        &self,
        jobs: impl Iterator<Item = J> + Send + 'static,
        job_tx: Sender<Msg<J>>,
        credits: Option<Sender<()>>,
        limiter: Option<Arc<KeyLimiter<J, R>>>,
    ) -> io::Result<thread::JoinHandle<()>> {
        let state = Arc::clone(&self.state);
        thread::Builder::new()
            .name(format!("{}-feeder", self.thread_name))
            .spawn(move || {
                feed(jobs, &job_tx, &state, credits.as_ref(), || {
                    if let Some(l) = limiter {
                        l.input_ended();
                    }
                });
            })
    }
}

/// What ends the workers after a stop: one pill per worker started (the
/// run is stopping, so no worker starts after the count). Sent from a
/// helper thread, so the stop never blocks on a full queue.
fn pills<J: Send + 'static>(
    job_tx: Sender<Msg<J>>,
    state: Weak<Shared>,
) -> Box<dyn FnOnce() + Send> {
    Box::new(move || {
        let workers = state.upgrade().map_or(0, |s| lock(&s.growth).handles.len());
        for _ in 0..workers {
            // Fails only when every worker is gone already.
            let _ = job_tx.send(Msg::Pill);
        }
    })
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
