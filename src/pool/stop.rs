//! Stopping a run early: the state shared by the feeder, the workers and
//! every [`StopHandle`], and the pills that end the workers after a stop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::lock::lock;

/// What travels on the job queue.
pub(super) enum Msg<J> {
    /// A job and its input position.
    Job(u64, J),
    /// The pill that tells one worker to leave after a stop (the feeder may
    /// be blocked reading its input, so the queue cannot be relied on to
    /// disconnect).
    Pill,
    /// Wakes an idle worker so it waits for the earliest parked job's time
    /// (see `keyed`).
    Wake,
}

/// Sends one pill per worker into the job queue. Holds a job sender, so it
/// is dropped as soon as it is not needed (by the feeder when the input
/// ends) or used (by a stop).
pub(super) type Pills = Box<dyn FnOnce() + Send>;

/// State shared by the feeder, the workers and every [`StopHandle`]. It is
/// created with the [`Pool`](super::Pool), before anything runs, so a stop
/// can be wired up (to signals, to `--fail-fast`) before the first job.
#[derive(Default)]
pub(super) struct Shared {
    /// Set when the run starts.
    pub(super) pills: Mutex<Option<Pills>>,
    /// Sends the pills after a stop, so that `stop` itself never waits.
    pub(super) pill_sender: Mutex<Option<JoinHandle<()>>>,
    /// Workers skip every job they take from now on.
    pub(super) skip: AtomicBool,
    /// The feeder pulls no more jobs.
    pub(super) feed_stopped: AtomicBool,
    /// Wakes threads that wait for parked jobs, so they see the stop.
    pub(super) on_stop: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// The worker threads, and how many more may be started.
    pub(super) growth: Mutex<Growth>,
    /// Workers started so far (`growth.handles.len()`, readable without
    /// the lock).
    pub(super) spawned: AtomicUsize,
    /// Workers waiting for something to do.
    pub(super) idle: AtomicUsize,
    /// `growth.ceiling`, readable without the lock.
    pub(super) ceiling: AtomicUsize,
    /// The feeder has sent its last job.
    pub(super) input_ended: AtomicBool,
}

/// The worker threads of a run and how they are made.
#[derive(Default)]
pub(super) struct Growth {
    /// Every worker started, to be joined.
    pub(super) handles: Vec<JoinHandle<()>>,
    /// The most workers there may be.
    pub(super) ceiling: usize,
    /// Workers are named `{name}-{k}`.
    pub(super) name: String,
    /// Stack size of each worker thread.
    pub(super) stack: Option<usize>,
}

/// Counts a worker as idle while it lives.
pub(super) struct Idle<'a>(&'a AtomicUsize);

impl<'a> Idle<'a> {
    pub(super) fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Idle(count)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    pub(super) fn stop(&self) {
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
        if let Some(wake) = lock(&self.on_stop).as_ref() {
            wake();
        }
    }

    pub(super) fn skipping(&self) -> bool {
        self.skip.load(Ordering::SeqCst)
    }
}

/// Stops a run early from any thread (a signal handler, `--fail-fast`).
#[derive(Clone)]
pub struct StopHandle(pub(super) Arc<Shared>);

impl StopHandle {
    /// Stop pulling jobs from the input and start no more: queued and parked
    /// jobs come back as [`Outcome::Skipped`](super::Outcome::Skipped), jobs
    /// still in the input are never read.
    pub fn stop(&self) {
        self.0.stop();
    }

    /// Start no more jobs but keep reading the input, so every remaining job
    /// comes back as [`Outcome::Skipped`](super::Outcome::Skipped) and can be
    /// counted.
    pub fn skip_rest(&self) {
        self.0.skip.store(true, Ordering::SeqCst);
        if let Some(wake) = lock(&self.0.on_stop).as_ref() {
            wake();
        }
    }
}
