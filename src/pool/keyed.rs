//! Per-key limits with parking instead of blocking.
//!
//! A key may be *busy* (`--per-host`: its limit of jobs is running) or
//! *closed* (paused, or paced: see [`Gate`](super::Gate)). A worker that
//! takes a job whose key is busy or closed parks it in that key's waiting
//! list and takes the next job. A job that asks to run again later
//! ([`Step::Again`](super::Step::Again)) is parked the same way, with its
//! own time. Parked jobs start:
//!
//! - when a job of a busy key finishes: its worker keeps the slot and runs
//!   the next parked job of that key, if the key is open;
//! - when a closed key opens or a job's own time comes: each key that has a
//!   startable job has a *timer*, and idle workers wait for the earliest
//!   one (on the job queue with a deadline, or on a condition variable once
//!   the input is done).
//!
//! Parked jobs are capped (`park_cap`) so memory stays bounded; past the
//! cap a worker runs due jobs or waits until one is due or room is made.
//! A job that comes back to be run again is always taken (it cannot wait).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::KeyFn;
use super::gate::Schedule;
pub(super) use super::parked::{Item, Key, Ticket};
use super::parked::{KeyState, Pacing, Started, State};
use super::stop::{Msg, Shared};
use crate::lock::lock;

/// What [`KeyLimiter::admit`] did with a job.
pub(super) enum Admit<J, R> {
    /// Run it now: the slot is taken.
    Run(Ticket<J, R>),
    /// Parked; another worker (or this one, later) will start it.
    Parked,
    /// The parking lot is full: handed back.
    Full(Key, u64, J),
}

/// Per-key limits, gates and timers.
pub(super) struct KeyLimiter<J, R> {
    park_cap: usize,
    key: KeyFn<J>,
    state: Mutex<State<J, R>>,
    /// Signalled on changes, when someone waits on it (`State::waiters`).
    changed: Condvar,
    /// Signalled, one waiter at a time, when the parking lot has room again
    /// (`State::room_waiters`): with one busy key and more workers than its
    /// limit, every finished job frees one place, and waking every waiting
    /// worker for it cost more than the requests.
    room: Condvar,
    /// Whether any timer is set, readable without the lock.
    timed: AtomicBool,
    /// A sender on the job queue, to wake an idle worker so it waits for
    /// the earliest timer; dropped when the input ends, so the queue can
    /// still disconnect.
    wake: Mutex<Option<Sender<Msg<J>>>>,
}

impl<J, R> KeyLimiter<J, R> {
    /// A limiter of `limit` running jobs per key, `park_cap` parked jobs in
    /// all; `wake` sends on the job queue.
    pub(super) fn new(limit: usize, park_cap: usize, key: KeyFn<J>, wake: Sender<Msg<J>>) -> Self {
        KeyLimiter {
            park_cap,
            key,
            state: Mutex::new(State {
                keys: HashMap::new(),
                timers: BTreeSet::new(),
                parked: 0,
                running: 0,
                waiters: 0,
                wakes_by: None,
                room_waiters: 0,
                limit,
                global: Pacing::default(),
            }),
            changed: Condvar::new(),
            room: Condvar::new(),
            timed: AtomicBool::new(false),
            wake: Mutex::new(Some(wake)),
        }
    }

    /// The key of `job`.
    pub(super) fn key(&self, job: &J) -> Key {
        (self.key)(job)
    }

    /// Ends a change: publishes whether timers are set and wakes waiters
    /// that have something to do sooner than they would wake by
    /// themselves: a parked job due before, nothing left at all (those
    /// waiting for a due job may leave), room in the parking lot. Most
    /// changes (a finished job handing its slot to the next parked one)
    /// leave them nothing to do, and waking them all for each cost more
    /// than the requests.
    fn changed(&self, st: &State<J, R>) {
        self.timed.store(!st.timers.is_empty(), Ordering::Release);
        let due_sooner = st.due_sooner();
        if st.waiters > 0 && (st.parked == 0 && st.running == 0 || due_sooner) {
            self.changed.notify_all();
        }
        // One at a time: each that takes a due job or fills the room
        // passes the wake-up on if there is more.
        if st.room_waiters > 0 && (self.roomy(st) || due_sooner) {
            self.room.notify_one();
        }
        self.wake_idle_if_due(st);
    }

    /// Wakes a worker idle on an empty job queue when a parked job may
    /// start now. Such workers wait for the earliest timer they saw, or for
    /// no time at all, and a change such as a key's raised limit makes
    /// jobs due that would otherwise wait for the next job from the queue,
    /// which may be long in coming (a pipe not yet at its end). The worker
    /// woken takes one, which wakes the next while more are due. A queue
    /// that holds messages has no idle worker on it.
    fn wake_idle_if_due(&self, st: &State<J, R>) {
        if st.timers.is_empty() || st.first_due().is_none_or(|t| t > Instant::now()) {
            return;
        }
        if let Some(tx) = lock(&self.wake).as_ref()
            && tx.is_empty()
        {
            let _ = tx.try_send(Msg::Wake);
        }
    }

    /// Whether the parking lot has room enough to wake a worker waiting
    /// for it: a quarter of it free, which the worker fills before it
    /// waits again. Woken at each freed place, the workers took turns
    /// parking one job each, a sleep and a wake-up per request.
    fn roomy(&self, st: &State<J, R>) -> bool {
        st.parked < self.park_cap - self.park_cap / 4
    }

    /// Whether any parked job waits for a time (some worker should wait
    /// for it with a deadline).
    pub(super) fn timed(&self) -> bool {
        self.timed.load(Ordering::Acquire)
    }

    /// Whether a parked job may start now (a worker is needed for it).
    pub(super) fn due_now(&self) -> bool {
        self.timed()
            && lock(&self.state)
                .first_due()
                .is_some_and(|t| t <= Instant::now())
    }

    /// Wakes one idle worker on the job queue, so it waits for the earliest
    /// timer. Once the input is done, waiting is on the condition variable.
    pub(super) fn wake_idle(&self) {
        if let Some(tx) = lock(&self.wake).as_ref() {
            // Full: the workers are busy taking jobs and see the timers.
            let _ = tx.try_send(Msg::Wake);
        }
    }

    /// The input is done: the job queue may disconnect.
    pub(super) fn input_ended(&self) {
        drop(lock(&self.wake).take());
    }

    /// Wakes every thread waiting on the limiter (the run is stopping).
    pub(super) fn notify_all(&self) {
        let _st = lock(&self.state);
        self.changed.notify_all();
        self.room.notify_all();
    }

    /// Starts a job taken from the queue, parks it, or hands it back when
    /// the parking lot is full. With `skipping`, it always starts (to be
    /// skipped).
    pub(super) fn admit(&self, key: Key, index: u64, job: J, skipping: bool) -> Admit<J, R> {
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let ks = st.keys.entry(key.clone()).or_default();
        let nothing_parked =
            ks.fresh.is_empty() && ks.resumed.keys().next().is_none_or(|&(at, _)| at > now);
        if skipping || (nothing_parked && st.may_start(&key, now)) {
            let start = st.started(&key, now);
            st.running += 1;
            return Admit::Run(Ticket {
                key,
                item: Item::Fresh(index, job),
                held: Duration::ZERO,
                start,
            });
        }
        if st.parked >= self.park_cap {
            // `entry` may have created it; leave no empty state behind.
            st.reschedule(&key, now);
            return Admit::Full(key, index, job);
        }
        if let Some(ks) = st.keys.get_mut(&key) {
            ks.fresh.push_back((index, job, now));
        }
        st.parked += 1;
        st.reschedule(&key, now);
        self.changed(st);
        Admit::Parked
    }

    /// A job of `key` finished: keeps the slot for the next parked job of
    /// the key if that may start now, else releases it.
    pub(super) fn finish(&self, key: &Key, skipping: bool) -> Option<Ticket<J, R>> {
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if let Some(ks) = st.keys.get_mut(key) {
            ks.running -= 1;
        }
        let next = if skipping || st.may_start(key, now) {
            let opens = st.opens_at(key);
            st.keys
                .get_mut(key)
                .and_then(|ks| ks.pick(now, skipping, opens))
        } else {
            None
        };
        let next = match next {
            Some((item, held)) => {
                st.parked -= 1;
                let start = st.started(key, now);
                Some(Ticket {
                    key: key.clone(),
                    item,
                    held,
                    start,
                })
            }
            None => {
                st.running -= 1;
                None
            }
        };
        st.reschedule(key, now);
        self.changed(st);
        next
    }

    /// The job of `ticket`'s start sent nothing: its start is taken back
    /// from the pacing, so the next parked job need not wait for it.
    pub(super) fn unstart(&self, key: &Key, start: Started) {
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        st.unstart(key, start);
        st.reschedule(key, now);
        self.changed(st);
    }

    /// A job of `key` wants to run again at `at`: parks it, releasing its slot.
    pub(super) fn repark(&self, key: Key, at: Instant, index: u64, job: J, so_far: R) {
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let ks = st.keys.entry(key.clone()).or_default();
        ks.running = ks.running.saturating_sub(1);
        ks.resumed.insert((at, index), (job, so_far));
        st.running -= 1;
        st.parked += 1;
        st.reschedule(&key, now);
        self.changed(st);
    }

    /// A parked job that may start now, with its slot taken; with
    /// `skipping`, any parked job (to be skipped or ended).
    pub(super) fn take_due(&self, skipping: bool) -> Option<Ticket<J, R>> {
        if !skipping && !self.timed() {
            return None;
        }
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if st.parked == 0 {
            return None;
        }
        let key = if skipping {
            st.keys
                .iter()
                .find(|(_, ks)| ks.parked() > 0)
                .map(|(k, _)| k.clone())?
        } else {
            loop {
                let (due, key) = st.timers.first().cloned()?;
                if due > now || st.first_due().is_some_and(|t| t > now) && key.is_some() {
                    return None;
                }
                if st.keys.contains_key(&key) && st.may_start(&key, now) {
                    break key;
                }
                // Stale: recompute it (it moves later or goes).
                st.reschedule(&key, now);
            }
        };
        let opens = st.opens_at(&key);
        let (item, held) = st.keys.get_mut(&key)?.pick(now, skipping, opens)?;
        let start = st.started(&key, now);
        st.parked -= 1;
        st.running += 1;
        st.reschedule(&key, now);
        self.changed(st);
        Some(Ticket {
            key,
            item,
            held,
            start,
        })
    }

    /// When the earliest parked job may start (now, when skipping).
    pub(super) fn next_due(&self, skipping: bool) -> Option<Instant> {
        if !skipping && !self.timed() {
            return None;
        }
        let st = lock(&self.state);
        if skipping && st.parked > 0 {
            return Some(Instant::now());
        }
        st.first_due()
    }

    fn wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<J, R>>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, State<J, R>> {
        st.will_wait(until);
        st.waiters += 1;
        st = match until {
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                self.changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner),
        };
        st.waiters -= 1;
        st
    }

    /// Once the input is done: waits until a parked job may be due. False
    /// when none is parked and none can come back (none runs, or the run
    /// is stopping): the worker may leave.
    pub(super) fn wait_due(&self, shared: &Shared) -> bool {
        let mut st = lock(&self.state);
        loop {
            let skipping = shared.skipping();
            if st.parked == 0 && (st.running == 0 || skipping) {
                return false;
            }
            if skipping {
                return true;
            }
            let first = st.first_due();
            if first.is_some_and(|t| t <= Instant::now()) {
                return true;
            }
            st = self.wait(st, first);
        }
    }

    /// The parking lot is full: waits until there is room, a parked job is
    /// due, or the run stops. One waiter is woken when a quarter of the lot
    /// is free, and passes the wake-up on while room is left; one when a
    /// parked job comes due (such as a key's raised limit), and taking it
    /// wakes the next if more are due.
    pub(super) fn wait_room(&self, shared: &Shared) {
        let mut st = lock(&self.state);
        loop {
            let first = st.first_due();
            if shared.skipping()
                || st.parked < self.park_cap
                || first.is_some_and(|t| t <= Instant::now())
            {
                if st.room_waiters > 0 && self.roomy(&st) {
                    self.room.notify_one();
                }
                return;
            }
            st.will_wait(first);
            st.room_waiters += 1;
            st = match first {
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    self.room
                        .wait_timeout(st, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.room.wait(st).unwrap_or_else(PoisonError::into_inner),
            };
            st.room_waiters -= 1;
        }
    }

    /// Empties every waiting list: jobs never started, and jobs parked
    /// between runs with their results so far.
    pub(super) fn take_parked(&self) -> Vec<Item<J, R>> {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        st.parked = 0;
        st.timers.clear();
        let mut out = Vec::new();
        for ks in st.keys.values_mut() {
            ks.timer = None;
            out.extend(ks.fresh.drain(..).map(|(i, j, _)| Item::Fresh(i, j)));
            let resumed = std::mem::take(&mut ks.resumed);
            out.extend(
                resumed
                    .into_iter()
                    .map(|((_, i), (j, r))| Item::Resumed(i, j, r)),
            );
        }
        self.changed(st);
        out
    }

    /// Releases the slot of a job of `key` whose worker gives up.
    pub(super) fn release(&self, key: &Key) {
        let now = Instant::now();
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if let Some(ks) = st.keys.get_mut(key) {
            ks.running -= 1;
        }
        st.running -= 1;
        st.reschedule(key, now);
        self.changed(st);
    }
}

impl<J: Send, R: Send> Schedule for KeyLimiter<J, R> {
    fn pause(&self, key: &str, until: Instant) {
        let now = Instant::now();
        let key = Some(key.to_owned());
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let ks = st.keys.entry(key.clone()).or_default();
        ks.paused_until = ks.paused_until.max(Some(until));
        st.reschedule(&key, now);
        self.changed(st);
    }

    fn set_interval(&self, key: &str, interval: Option<Duration>) {
        let now = Instant::now();
        let key = Some(key.to_owned());
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let ks = st.keys.entry(key.clone()).or_default();
        ks.interval = interval;
        st.reschedule(&key, now);
        self.changed(st);
    }

    fn opens_at(&self, key: &str) -> Option<Instant> {
        let now = Instant::now();
        let st = lock(&self.state);
        st.keys
            .get(&Some(key.to_owned()))
            .and_then(KeyState::opens_at)
            .filter(|t| *t > now)
    }

    fn set_limit(&self, key: &str, limit: Option<usize>) {
        let now = Instant::now();
        let key = Some(key.to_owned());
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let ks = st.keys.entry(key.clone()).or_default();
        ks.limit = limit.map(|l| l.max(1));
        st.reschedule(&key, now);
        self.changed(st);
    }

    fn release(&self, key: &str) {
        let now = Instant::now();
        let key = Some(key.to_owned());
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        let Some(ks) = st.keys.get_mut(&key) else {
            return;
        };
        ks.paused_until = None;
        ks.interval = None;
        let resumed = std::mem::take(&mut ks.resumed);
        ks.resumed = resumed
            .into_iter()
            .map(|((at, i), v)| ((at.min(now), i), v))
            .collect();
        st.reschedule(&key, now);
        self.changed(st);
    }

    fn set_global_interval(&self, interval: Option<Duration>) {
        let mut st = lock(&self.state);
        st.global.interval = interval;
        self.changed(&st);
    }
}
