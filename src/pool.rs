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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, bounded};

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
        }
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
            pending: BTreeMap::new(),
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
        let state = Arc::new(Shared {
            pills: Mutex::new(Some(Box::new(pills))),
            pill_sender: Mutex::new(None),
            skip: AtomicBool::new(false),
            feed_stopped: AtomicBool::new(false),
        });
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
        drop((job_rx, result_tx));
        Ok(Completed {
            results: result_rx,
            workers,
            feeder: Some(feeder),
            state,
        })
    }
}

/// A job, or `None`: the pill that tells one worker to leave after a stop
/// (the feeder may be blocked reading its input, so the queue cannot be
/// relied on to disconnect).
type Msg<J> = Option<(u64, J)>;

/// Sends one pill per worker into the job queue. Holds a job sender, so it
/// is dropped as soon as it is not needed (by the feeder when the input
/// ends) or used (by a stop).
type Pills = Box<dyn FnOnce() + Send>;

/// State shared by the feeder, the workers and every [`StopHandle`].
struct Shared {
    pills: Mutex<Option<Pills>>,
    /// Sends the pills after a stop, so that `stop` itself never waits.
    pill_sender: Mutex<Option<JoinHandle<()>>>,
    /// Workers skip every job they take from now on.
    skip: AtomicBool,
    /// The feeder pulls no more jobs.
    feed_stopped: AtomicBool,
}

impl Shared {
    fn stop(&self) {
        self.skip.store(true, Ordering::SeqCst);
        self.feed_stopped.store(true, Ordering::SeqCst);
        // Workers skip whatever is queued, so there is soon room for the
        // pills; sending them may still wait, so not on the caller's thread.
        let pills = lock(&self.pills).take();
        if let Some(send_pills) = pills {
            // Without a thread the workers still end when the input does.
            if let Ok(handle) = thread::Builder::new()
                .name("pool-stop".into())
                .spawn(send_pills)
            {
                *lock(&self.pill_sender) = Some(handle);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Job panics are caught outside every lock, so poisoning cannot leave the
    // data inconsistent; keep going rather than cascade the panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn feed<J>(
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

struct Worker<J, R, F> {
    jobs: Receiver<Msg<J>>,
    results: Sender<Finished<J, R>>,
    state: Arc<Shared>,
    limiter: Option<Arc<KeyLimiter<J>>>,
    job_fn: Arc<F>,
}

impl<J, R, F: Fn(&J) -> R> Worker<J, R, F> {
    fn run(self) {
        // Ends on disconnection (input done) or on a pill (stopped).
        while let Ok(Some((index, job))) = self.jobs.recv() {
            if !self.take(index, job) {
                return;
            }
        }
    }

    /// Runs (or parks, or skips) one job; false when nobody listens any more.
    fn take(&self, index: u64, job: J) -> bool {
        let Some(limiter) = &self.limiter else {
            return self.execute(index, job);
        };
        let Some(key) = (limiter.key)(&job) else {
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
        let outcome = if self.state.skip.load(Ordering::SeqCst) {
            Outcome::Skipped
        } else {
            match catch_unwind(AssertUnwindSafe(|| (self.job_fn)(&job))) {
                Ok(value) => Outcome::Done(value),
                Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
            }
        };
        self.results
            .send(Finished {
                index,
                job,
                outcome,
            })
            .is_ok()
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

/// Per-key concurrency limits with parking instead of blocking.
struct KeyLimiter<J> {
    limit: usize,
    park_cap: usize,
    key: KeyFn<J>,
    state: Mutex<LimiterState<J>>,
    room: Condvar,
}

struct LimiterState<J> {
    running: HashMap<String, usize>,
    parked: HashMap<String, VecDeque<(u64, J)>>,
    parked_total: usize,
}

impl<J> KeyLimiter<J> {
    fn new(limit: usize, park_cap: usize, key: KeyFn<J>) -> Self {
        KeyLimiter {
            limit,
            park_cap,
            key,
            state: Mutex::new(LimiterState {
                running: HashMap::new(),
                parked: HashMap::new(),
                parked_total: 0,
            }),
            room: Condvar::new(),
        }
    }

    /// Takes a slot for `key` and hands the job back, or parks the job.
    /// Waits only when the parking lot is full.
    fn acquire_or_park(&self, key: &str, index: u64, job: J) -> Option<(u64, J)> {
        let mut state = lock(&self.state);
        loop {
            let running = state.running.get(key).copied().unwrap_or(0);
            if running < self.limit {
                state.running.insert(key.to_owned(), running + 1);
                return Some((index, job));
            }
            if state.parked_total < self.park_cap {
                state.parked_total += 1;
                state
                    .parked
                    .entry(key.to_owned())
                    .or_default()
                    .push_back((index, job));
                return None;
            }
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Keeps the caller's slot and gives it the next parked job of `key`,
    /// or releases the slot when none is parked.
    fn next_or_release(&self, key: &str) -> Option<(u64, J)> {
        let mut state = lock(&self.state);
        if let Some(queue) = state.parked.get_mut(key)
            && let Some(next) = queue.pop_front()
        {
            if queue.is_empty() {
                state.parked.remove(key);
            }
            state.parked_total -= 1;
            drop(state);
            self.room.notify_all();
            return Some(next);
        }
        Self::decrement(&mut state, key);
        drop(state);
        self.room.notify_all();
        None
    }

    fn release(&self, key: &str) {
        Self::decrement(&mut lock(&self.state), key);
        self.room.notify_all();
    }

    fn decrement(state: &mut LimiterState<J>, key: &str) {
        if let Some(n) = state.running.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                state.running.remove(key);
            }
        }
    }
}

/// Stops a run early from any thread (a signal handler, `--fail-fast`).
#[derive(Clone)]
pub struct StopHandle(Arc<Shared>);

impl StopHandle {
    /// Stop pulling jobs from the input and start no more: queued and parked
    /// jobs come back as [`Outcome::Skipped`], jobs still in the input are
    /// never read.
    pub fn stop(&self) {
        self.0.stop();
    }

    /// Start no more jobs but keep reading the input, so every remaining job
    /// comes back as [`Outcome::Skipped`] and can be counted.
    pub fn skip_rest(&self) {
        self.0.skip.store(true, Ordering::SeqCst);
    }
}

/// What both result iterators offer besides iteration.
pub trait Results: Iterator {
    /// A handle that stops this run from another thread.
    fn stop_handle(&self) -> StopHandle;
    /// Whether `next` would return at once; a consumer that buffers output
    /// flushes when this is false, before it blocks.
    fn ready(&self) -> bool;
}

/// Results of a pool run in completion order. Dropping it stops the run and
/// joins every worker.
pub struct Completed<J, R> {
    results: Receiver<Finished<J, R>>,
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
        // With every worker gone its sends fail, so it has ended or will.
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

/// Results of a pool run in input order (see [`Pool::ordered`]).
pub struct Ordered<J, R> {
    completed: Completed<J, R>,
    credits: Receiver<()>,
    pending: BTreeMap<u64, Finished<J, R>>,
    next: u64,
}

impl<J, R> Results for Ordered<J, R> {
    fn stop_handle(&self) -> StopHandle {
        self.completed.stop_handle()
    }

    fn ready(&self) -> bool {
        self.pending.contains_key(&self.next)
    }
}

impl<J, R> Iterator for Ordered<J, R> {
    type Item = Finished<J, R>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(done) = self.pending.remove(&self.next) {
                self.next += 1;
                // Let the feeder start one more job.
                let _ = self.credits.try_recv();
                return Some(done);
            }
            match self.completed.next() {
                Some(done) => {
                    self.pending.insert(done.index, done);
                }
                // After a stop some indices never come back: flush in order.
                None => {
                    let (&index, _) = self.pending.first_key_value()?;
                    self.next = index;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;

    fn n(v: usize) -> NonZeroUsize {
        NonZeroUsize::new(v).unwrap()
    }

    /// Counts jobs in flight and remembers the highest count seen.
    #[derive(Default)]
    struct InFlight {
        now: AtomicUsize,
        max: AtomicUsize,
    }

    impl InFlight {
        fn enter(&self) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
        }
        fn leave(&self) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn runs_exactly_n_jobs_at_once() {
        let workers = 4;
        let barrier = Arc::new(Barrier::new(workers));
        let seen = Arc::new(InFlight::default());
        let (b, s) = (Arc::clone(&barrier), Arc::clone(&seen));
        let results: Vec<_> = Pool::new(n(workers))
            .as_completed(0..40u64, move |_| {
                s.enter();
                // Each round of 4 only passes when 4 jobs run at once.
                b.wait();
                s.leave();
            })
            .unwrap()
            .collect();
        assert_eq!(results.len(), 40);
        assert_eq!(seen.max.load(Ordering::SeqCst), workers);
    }

    #[test]
    fn names_its_workers() {
        let names: Vec<_> = Pool::new(n(2))
            .thread_name("fetchpool-worker")
            .as_completed(0..20u64, |_| thread::current().name().map(str::to_owned))
            .unwrap()
            .filter_map(|f| match f.outcome {
                Outcome::Done(name) => name,
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 20);
        assert!(
            names
                .iter()
                .all(|n| n == "fetchpool-worker-1" || n == "fetchpool-worker-2")
        );
    }

    #[test]
    fn producer_blocks_when_queue_is_full() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Barrier::new(2));
        let p = Arc::clone(&pulled);
        let jobs = (0..100u64).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let g = Arc::clone(&gate);
        let mut results = Pool::new(n(1))
            .queue(n(3))
            .as_completed(jobs, move |&i| {
                if i == 0 {
                    g.wait(); // hold the only worker until the test looked
                    g.wait();
                }
                i
            })
            .unwrap();
        gate.wait(); // job 0 is running
        // The feeder can pull job 0, fill the queue with 3, and hold one more
        // in its hand while blocked on send: never more than 5.
        let bound = 1 + 3 + 1;
        // Wait until the feeder has pulled everything it can (it never gets
        // past the bound while job 0 holds the worker).
        while pulled.load(Ordering::SeqCst) < bound {
            thread::yield_now();
        }
        for _ in 0..1000 {
            thread::yield_now();
        }
        assert_eq!(pulled.load(Ordering::SeqCst), bound);
        gate.wait();
        let mut count = 0;
        for f in results.by_ref() {
            assert_eq!(f.outcome, Outcome::Done(f.index));
            count += 1;
        }
        assert_eq!(count, 100);
        assert_eq!(pulled.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn every_job_yields_exactly_one_result() {
        for workers in [1, 3, 8] {
            let mut seen: Vec<u64> = Pool::new(n(workers))
                .as_completed(0..1000u64, |&i| i * 2)
                .unwrap()
                .map(|f| {
                    assert_eq!(f.outcome, Outcome::Done(f.job * 2));
                    assert_eq!(f.index, f.job);
                    f.index
                })
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        }
    }

    #[test]
    fn empty_input_ends_at_once() {
        let results: Vec<_> = Pool::new(n(4))
            .as_completed(std::iter::empty::<u64>(), |&i| i)
            .unwrap()
            .collect();
        assert!(results.is_empty());
    }

    #[test]
    fn a_panicking_job_becomes_an_error_and_the_worker_lives_on() {
        let results: Vec<_> = Pool::new(n(1))
            .as_completed(0..5u64, |&i| {
                if i == 2 {
                    panic!("job {i} exploded");
                }
                i
            })
            .unwrap()
            .collect();
        assert_eq!(results.len(), 5);
        for f in results {
            if f.index == 2 {
                assert_eq!(f.outcome, Outcome::Panicked("job 2 exploded".into()));
            } else {
                assert_eq!(f.outcome, Outcome::Done(f.index));
            }
        }
    }

    #[test]
    fn ordered_yields_in_input_order() {
        let order: Vec<u64> = Pool::new(n(4))
            .ordered(
                0..200u64,
                |&i| {
                    // Later jobs finish first within each batch.
                    for _ in 0..(200 - i) * 50 {
                        std::hint::black_box(());
                    }
                    i
                },
                None,
            )
            .unwrap()
            .map(|f| f.index)
            .collect();
        assert_eq!(order, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn ordered_window_bounds_the_reorder_buffer() {
        // Job 0 is held until the test releases it; with a window of 5 the
        // feeder must not pull more than 5 jobs past the one not yet yielded.
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = Arc::clone(&pulled);
        let jobs = (0..50u64).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        let mut results = Pool::new(n(4))
            .ordered(
                jobs,
                move |&i| {
                    if i == 0 {
                        g.wait();
                    }
                    i
                },
                Some(n(5)),
            )
            .unwrap();
        while pulled.load(Ordering::SeqCst) < 5 {
            thread::yield_now();
        }
        for _ in 0..1000 {
            thread::yield_now();
        }
        // 5 credits taken, plus at most one job pulled and waiting for a credit.
        assert!(pulled.load(Ordering::SeqCst) <= 6);
        gate.wait();
        let order: Vec<u64> = results.by_ref().map(|f| f.index).collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn stop_skips_queued_jobs_and_stops_reading() {
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        let mut results = Pool::new(n(1))
            .queue(n(4))
            .as_completed(0..u64::MAX, move |&i| {
                if i == 0 {
                    g.wait();
                    g.wait();
                }
                i
            })
            .unwrap();
        gate.wait();
        results.stop_handle().stop();
        gate.wait();
        let all: Vec<_> = results.by_ref().collect();
        assert_eq!(
            all.iter().filter(|f| f.outcome == Outcome::Done(0)).count(),
            1
        );
        // The feeder's skipped job may be reported before job 0 finishes.
        assert!(
            all.iter()
                .filter(|f| f.index != 0)
                .all(|f| f.outcome == Outcome::Skipped)
        );
        // Queue of 4, plus one in the feeder's hand: the input was not drained.
        assert!(all.len() <= 6, "{} results", all.len());
    }

    #[test]
    fn dropping_results_early_ends_every_thread() {
        // More results than the results channel holds, none of them read:
        // dropping must not wait for ever on workers blocked sending.
        let mut results = Pool::new(n(2))
            .queue(n(2))
            .as_completed(0..1000u64, |&i| i)
            .unwrap();
        assert!(results.next().is_some());
        while !results.ready() {
            thread::yield_now();
        }
        drop(results);
    }

    #[test]
    fn skip_rest_still_accounts_for_every_job() {
        let results: Vec<_> = {
            let mut completed = Pool::new(n(2)).as_completed(0..500u64, |&i| i).unwrap();
            let handle = completed.stop_handle();
            let mut out = Vec::new();
            for f in completed.by_ref() {
                if f.index == 10 {
                    handle.skip_rest();
                }
                out.push(f);
            }
            out
        };
        assert_eq!(results.len(), 500);
        assert!(results.iter().any(|f| f.outcome == Outcome::Skipped));
    }

    #[test]
    fn per_key_limit_holds_without_blocking_other_keys() {
        // 4 workers, limit 1 per key. Key "slow" jobs wait on a barrier that
        // only the last "fast" job opens: if a worker blocked on the busy
        // "slow" key instead of parking it, the fast jobs could not all run.
        let workers = 4;
        let per_key: Arc<Mutex<HashMap<String, Arc<InFlight>>>> = Arc::default();
        let fast_done = Arc::new(AtomicUsize::new(0));
        let (pk, fd) = (Arc::clone(&per_key), Arc::clone(&fast_done));
        let jobs: Vec<(String, u64)> = (0..60)
            .map(|i| (if i % 3 == 0 { "slow" } else { "fast" }.to_owned(), i))
            .collect();
        let results: Vec<_> = Pool::new(n(workers))
            .per_key(n(1), |(key, _): &(String, u64)| Some(key.clone()))
            .as_completed(jobs, move |(key, _)| {
                let counter = Arc::clone(lock(&pk).entry(key.clone()).or_default());
                counter.enter();
                if key == "slow" {
                    while fd.load(Ordering::SeqCst) < 40 {
                        thread::yield_now();
                    }
                } else {
                    fd.fetch_add(1, Ordering::SeqCst);
                }
                counter.leave();
            })
            .unwrap()
            .collect();
        assert_eq!(results.len(), 60);
        assert!(results.iter().all(|f| f.outcome == Outcome::Done(())));
        for (key, counter) in lock(&per_key).iter() {
            assert_eq!(counter.max.load(Ordering::SeqCst), 1, "key {key}");
        }
    }
}
