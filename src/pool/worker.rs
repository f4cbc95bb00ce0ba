//! The threads of a run: the feeder, which pulls jobs from the caller's
//! iterator into the bounded queue, and the workers, which run them.

use std::cell::Cell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::gate::Step;
use super::keyed::{Admit, Item, KeyLimiter, Ticket};
use super::stop::{Idle, Msg, Shared};
use super::{Finished, Outcome};
use crate::lock::lock;

/// Pulls jobs into the queue until the input ends or the run is stopped;
/// with `credits` (the ordered window), one credit per job. `on_end` runs
/// when it is done.
pub(super) fn feed<J>(
    jobs: impl Iterator<Item = J>,
    job_tx: &Sender<Msg<J>>,
    state: &Shared,
    credits: Option<&Sender<()>>,
    on_end: impl FnOnce(),
) {
    let mut jobs = (0u64..).zip(jobs);
    while !state.feed_stopped.load(Ordering::SeqCst) {
        let Some((index, job)) = jobs.next() else {
            break;
        };
        // A job read while the run was being stopped is still sent: the
        // workers skip it, so it is accounted for.
        if credits.is_some_and(|c| c.send(()).is_err())
            || job_tx.send(Msg::Job(index, job)).is_err()
        {
            break;
        }
    }
    // The input is done: without this last other sender the queue can
    // disconnect, which ends the workers.
    state.input_ended.store(true, Ordering::SeqCst);
    drop(lock(&state.pills).take());
    on_end();
}

thread_local! {
    /// How long the job now stepping on this thread was held back.
    static HELD: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// Whether the job now stepping on this thread said it sent nothing.
    static UNUSED: Cell<bool> = const { Cell::new(false) };
}

/// Called by a job step that ended without doing what its key's pacing
/// paces (a retry past its deadline, a key given up): its start is taken
/// back, so the key's next parked job need not wait an interval for it.
pub fn start_unused() {
    UNUSED.with(|u| u.set(true));
}

/// How long the job step now running on this thread was held back by its
/// key's gate (pause, pacing, the pacing of all keys) between the moment
/// it was ready to run and its start; zero outside a job. A job reads it
/// to account for waiting it did not see.
pub fn held() -> Duration {
    HELD.with(Cell::get)
}

/// Starts `worker` on a thread of its own, unless the ceiling is reached
/// or, for one more than the first (`more`), the run is stopping; true if
/// it was started.
pub(super) fn spawn<J, R, F>(worker: Worker<J, R, F>, more: bool) -> io::Result<bool>
where
    J: Send + 'static,
    R: Send + 'static,
    F: Fn(&mut J) -> Step<R> + Send + Sync + 'static,
{
    let state = Arc::clone(&worker.state);
    // Under the lock: a stop sends one pill per worker counted here.
    let mut growth = lock(&state.growth);
    if (more && state.skipping()) || growth.handles.len() >= growth.ceiling {
        return Ok(false);
    }
    let k = growth.handles.len() + 1;
    let mut builder = thread::Builder::new().name(format!("{}-{k}", growth.name));
    if let Some(bytes) = growth.stack {
        builder = builder.stack_size(bytes);
    }
    let handle = builder.spawn(move || worker.run())?;
    growth.handles.push(handle);
    state.spawned.store(k, Ordering::SeqCst);
    Ok(true)
}

/// One worker thread's handles.
pub(super) struct Worker<J, R, F> {
    pub(super) jobs: Receiver<Msg<J>>,
    pub(super) results: Sender<Finished<J, R>>,
    pub(super) state: Arc<Shared>,
    pub(super) limiter: Option<Arc<KeyLimiter<J, R>>>,
    pub(super) job_fn: Arc<F>,
}

impl<J, R, F> Worker<J, R, F> {
    /// A worker sharing this one's handles.
    fn sibling(&self) -> Self {
        Worker {
            jobs: self.jobs.clone(),
            results: self.results.clone(),
            state: Arc::clone(&self.state),
            limiter: self.limiter.clone(),
            job_fn: Arc::clone(&self.job_fn),
        }
    }
}

// Stack depth: the job runs deepest (a fetch goes through the HTTP client's large
// frames), and a thousand workers each keep the pages they ever touched.
// The channel operations are kept out of line (`next`, `hand_over`) so that
// their frames, which hold copies of the message, sit beside the job's
// frames rather than under them.
impl<J, R, F> Worker<J, R, F>
where
    J: Send + 'static,
    R: Send + 'static,
    F: Fn(&mut J) -> Step<R> + Send + Sync + 'static,
{
    /// Before this worker starts a job: if no other worker is idle while
    /// work that could start now waits or may come (when the job at hand
    /// came straight from the queue and could start: jobs queued, or input
    /// not yet all read; or parked jobs that are due), one more worker is
    /// started, up to the ceiling. An empty queue the feeder has not yet
    /// refilled must not stop the growth: the workers there are may all be
    /// busy for long.
    fn grow(&self, limiter: &KeyLimiter<J, R>, from_queue: bool) {
        let state = &self.state;
        if state.idle.load(Ordering::SeqCst) > 0
            || state.skipping()
            || state.spawned.load(Ordering::Relaxed) >= state.ceiling.load(Ordering::Relaxed)
        {
            return;
        }
        let more_queued = !self.jobs.is_empty() || !state.input_ended.load(Ordering::SeqCst);
        if (from_queue && more_queued) || limiter.due_now() {
            // Out of threads: the workers there are go on.
            let _ = spawn(self.sibling(), true);
        }
    }

    /// The next message of the queue (`Err`: the queue is done).
    #[inline(never)]
    fn next(&self) -> Result<Msg<J>, crossbeam_channel::RecvError> {
        self.jobs.recv()
    }

    /// Sends a finished job to the results; false when nobody listens.
    #[inline(never)]
    fn hand_over(&self, done: Finished<J, R>) -> bool {
        self.results.send(done).is_ok()
    }

    pub(super) fn run(self) {
        let Some(limiter) = self.limiter.clone() else {
            // No keys: nothing is ever parked. Ends on disconnection (input
            // done) or on a pill (stopped).
            loop {
                match self.next() {
                    Ok(Msg::Job(index, job)) => {
                        if !self.execute_plain(index, job) {
                            return;
                        }
                    }
                    Ok(Msg::Wake) => {}
                    Ok(Msg::Pill) | Err(_) => return,
                }
            }
        };
        self.run_keyed(&limiter);
    }

    fn run_keyed(&self, limiter: &KeyLimiter<J, R>) {
        loop {
            // Parked jobs whose time has come go first.
            if let Some(ticket) = limiter.take_due(self.state.skipping()) {
                self.grow(limiter, false);
                if !self.run_ticket(limiter, ticket) {
                    return;
                }
                continue;
            }
            let msg = {
                let _idle = Idle::new(&self.state.idle);
                match limiter.next_due(self.state.skipping()) {
                    Some(at) => self.jobs.recv_deadline(at),
                    None => self.jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
                }
            };
            match msg {
                Ok(Msg::Job(index, job)) => {
                    // Hand the wait for the earliest timer to an idle worker.
                    if limiter.timed() && self.jobs.is_empty() {
                        limiter.wake_idle();
                    }
                    if !self.admit(limiter, index, job) {
                        return;
                    }
                }
                Ok(Msg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Msg::Pill) | Err(RecvTimeoutError::Disconnected) => {
                    // No more jobs from the queue: only parked ones remain.
                    while {
                        let _idle = Idle::new(&self.state.idle);
                        limiter.wait_due(&self.state)
                    } {
                        if let Some(ticket) = limiter.take_due(self.state.skipping())
                            && !self.run_ticket(limiter, ticket)
                        {
                            return;
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Runs or parks a job taken from the queue; false when nobody listens
    /// any more.
    fn admit(&self, limiter: &KeyLimiter<J, R>, index: u64, job: J) -> bool {
        let mut key = limiter.key(&job);
        let (mut index, mut job) = (index, job);
        loop {
            match limiter.admit(key, index, job, self.state.skipping()) {
                Admit::Run(ticket) => {
                    self.grow(limiter, true);
                    return self.run_ticket(limiter, ticket);
                }
                Admit::Parked => return true,
                Admit::Full(k, i, j) => {
                    (key, index, job) = (k, i, j);
                    match limiter.take_due(self.state.skipping()) {
                        Some(ticket) => {
                            if !self.run_ticket(limiter, ticket) {
                                return false;
                            }
                        }
                        None => {
                            let _idle = Idle::new(&self.state.idle);
                            limiter.wait_room(&self.state);
                        }
                    }
                }
            }
        }
    }

    /// Runs a job that holds a slot of its key, then whatever the slot is
    /// handed next; false when nobody listens any more.
    fn run_ticket(&self, limiter: &KeyLimiter<J, R>, mut ticket: Ticket<J, R>) -> bool {
        loop {
            let Ticket {
                key,
                item,
                held,
                start,
            } = ticket;
            HELD.with(|h| h.set(held));
            UNUSED.with(|u| u.set(false));
            let (index, mut job, so_far) = match item {
                Item::Fresh(index, job) => (index, job, None),
                Item::Resumed(index, job, so_far) => (index, job, Some(so_far)),
            };
            let outcome = if self.state.skipping() {
                // Start nothing new: a job run before ends with what it has.
                so_far.map_or(Outcome::Skipped, Outcome::Done)
            } else {
                drop(so_far);
                let stepped = catch_unwind(AssertUnwindSafe(|| (self.job_fn)(&mut job)));
                if UNUSED.with(|u| u.replace(false)) {
                    limiter.unstart(&key, start);
                }
                match stepped {
                    Ok(Step::Done(value)) => Outcome::Done(value),
                    Ok(Step::Again { so_far, .. }) if self.state.skipping() => {
                        Outcome::Done(so_far)
                    }
                    Ok(Step::Again { at, so_far }) => {
                        limiter.repark(key, at, index, job, so_far);
                        return true;
                    }
                    Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
                }
            };
            let sent = self.hand_over(Finished {
                index,
                job,
                outcome,
            });
            if !sent {
                limiter.release(&key);
                return false;
            }
            match limiter.finish(&key, self.state.skipping()) {
                Some(next) => {
                    self.grow(limiter, false);
                    ticket = next;
                }
                None => return true,
            }
        }
    }

    /// Runs (or skips) a job of a pool without keys.
    fn execute_plain(&self, index: u64, mut job: J) -> bool {
        let outcome = if self.state.skipping() {
            Outcome::Skipped
        } else {
            match catch_unwind(AssertUnwindSafe(|| (self.job_fn)(&mut job))) {
                Ok(Step::Done(value) | Step::Again { so_far: value, .. }) => Outcome::Done(value),
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
