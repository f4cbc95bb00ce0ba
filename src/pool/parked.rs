//! The parking lot's data: per-key state (running jobs, parked jobs,
//! pause, pacing and limit), the pacing of all keys together, and the
//! timers of keys that have a job to start. The logic that uses it is in
//! `keyed`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A job's key; `None` is never limited nor gated (but may be re-run later).
pub(super) type Key = Option<String>;

/// A job leaving the parking lot, or entering a run.
pub(super) enum Item<J, R> {
    /// A job not yet started.
    Fresh(u64, J),
    /// A job run before, with its result so far.
    Resumed(u64, J, R),
}

/// A job that holds a running slot of its key.
pub(super) struct Ticket<J, R> {
    pub(super) key: Key,
    pub(super) item: Item<J, R>,
    /// How long its key's gate held it back once it was ready to run.
    pub(super) held: Duration,
    /// Its start as the pacing counted it, to take back if it sent nothing.
    pub(super) start: Started,
}

/// A start as the pacing counted it: when, and the last starts before it
/// (of its key, of all keys), so a start that turned out to do nothing
/// can be taken back ([`State::unstart`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Started {
    at: Instant,
    key_before: Option<Instant>,
    global_before: Option<Instant>,
}

/// Starts at least `interval` apart.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pacing {
    pub(super) interval: Option<Duration>,
    pub(super) last: Option<Instant>,
}

impl Pacing {
    /// When the next start may happen (`None`: whenever).
    pub(super) fn opens_at(&self) -> Option<Instant> {
        self.last.zip(self.interval).map(|(at, iv)| at + iv)
    }
}

pub(super) struct State<J, R> {
    pub(super) keys: HashMap<Key, KeyState<J, R>>,
    /// When each key with a startable job can start it (`KeyState::timer`).
    pub(super) timers: BTreeSet<(Instant, Key)>,
    pub(super) parked: usize,
    pub(super) running: usize,
    /// Threads waiting on `changed`.
    pub(super) waiters: usize,
    /// While anyone waits (`waiters`, `room_waiters`): the latest time one
    /// of them wakes by itself (`None`: one waits with no deadline).
    pub(super) wakes_by: Option<Instant>,
    /// Workers waiting for room in the parking lot.
    pub(super) room_waiters: usize,
    /// Running jobs per key unless the key has a limit of its own.
    pub(super) limit: usize,
    /// Pacing of the starts of all keyed jobs together.
    pub(super) global: Pacing,
}

pub(super) struct KeyState<J, R> {
    pub(super) running: usize,
    /// Jobs not started yet, with when they were parked.
    pub(super) fresh: VecDeque<(u64, J, Instant)>,
    pub(super) resumed: BTreeMap<(Instant, u64), (J, R)>,
    pub(super) paused_until: Option<Instant>,
    pub(super) interval: Option<Duration>,
    pub(super) last_start: Option<Instant>,
    pub(super) timer: Option<Instant>,
    /// A limit of its own, set at run time, in place of the pool's.
    pub(super) limit: Option<usize>,
}

impl<J, R> Default for KeyState<J, R> {
    fn default() -> Self {
        KeyState {
            running: 0,
            fresh: VecDeque::new(),
            resumed: BTreeMap::new(),
            paused_until: None,
            interval: None,
            last_start: None,
            timer: None,
            limit: None,
        }
    }
}

impl<J, R> KeyState<J, R> {
    /// When the key may start a job (`None`: whenever), by its own gate.
    pub(super) fn opens_at(&self) -> Option<Instant> {
        let paced = self.last_start.zip(self.interval).map(|(at, iv)| at + iv);
        self.paused_until.max(paced)
    }

    pub(super) fn parked(&self) -> usize {
        self.fresh.len() + self.resumed.len()
    }

    /// When the next parked job could start if a slot were free.
    pub(super) fn due(&self, now: Instant) -> Option<Instant> {
        let item = if self.fresh.is_empty() {
            self.resumed.keys().next().map(|&(at, _)| at)
        } else {
            Some(now)
        };
        item.map(|t| self.opens_at().map_or(t, |o| o.max(t)))
    }

    /// The parked job to start next: a resumed one whose time has come
    /// (they started first), else the oldest fresh one. `any`: whatever is
    /// parked, time or not. Also how long the gate held it: from when it
    /// was ready to run to when the gate (`opens`: the key's and the
    /// global one) let it start.
    pub(super) fn pick(
        &mut self,
        now: Instant,
        any: bool,
        opens: Option<Instant>,
    ) -> Option<(Item<J, R>, Duration)> {
        let held = |ready: Instant| {
            opens.map_or(Duration::ZERO, |o| {
                o.min(now).saturating_duration_since(ready.min(o))
            })
        };
        if let Some(entry) = self.resumed.first_entry()
            && (any || entry.key().0 <= now)
        {
            let ((at, index), (job, so_far)) = entry.remove_entry();
            return Some((Item::Resumed(index, job, so_far), held(at)));
        }
        self.fresh
            .pop_front()
            .map(|(index, job, parked)| (Item::Fresh(index, job), held(parked)))
    }

    pub(super) fn start(&mut self, now: Instant) {
        self.running += 1;
        self.last_start = Some(now);
    }

    /// Nothing left worth keeping.
    pub(super) fn idle(&self, now: Instant) -> bool {
        self.running == 0
            && self.parked() == 0
            && self.interval.is_none()
            && self.limit.is_none()
            && self.paused_until.is_none_or(|t| t <= now)
    }
}

impl<J, R> State<J, R> {
    /// How many jobs of `key` may run at once.
    pub(super) fn limit_of(&self, key: &Key) -> usize {
        match key {
            None => usize::MAX,
            Some(_) => {
                let own = self.keys.get(key).and_then(|ks| ks.limit);
                own.unwrap_or(self.limit)
            }
        }
    }

    /// When `key` may start a job, by its own gate and the global pacing.
    pub(super) fn opens_at(&self, key: &Key) -> Option<Instant> {
        let own = self.keys.get(key).and_then(KeyState::opens_at);
        match key {
            None => own,
            Some(_) => own.max(self.global.opens_at()),
        }
    }

    /// Whether `key` may start a job now (gate and limit).
    pub(super) fn may_start(&self, key: &Key, now: Instant) -> bool {
        self.keys
            .get(key)
            .is_none_or(|ks| ks.running < self.limit_of(key))
            && self.opens_at(key).is_none_or(|t| t <= now)
    }

    /// Counts a start of `key`.
    pub(super) fn started(&mut self, key: &Key, now: Instant) -> Started {
        let mut start = Started {
            at: now,
            key_before: None,
            global_before: self.global.last,
        };
        if key.is_some() {
            self.global.last = Some(now);
        }
        if let Some(ks) = self.keys.get_mut(key) {
            start.key_before = ks.last_start;
            ks.start(now);
        }
        start
    }

    /// Takes back `start` of `key` in the pacing (the job sent nothing, so
    /// it used no slot), unless another start came since.
    pub(super) fn unstart(&mut self, key: &Key, start: Started) {
        if key.is_some() && self.global.last == Some(start.at) {
            self.global.last = start.global_before;
        }
        if let Some(ks) = self.keys.get_mut(key)
            && ks.last_start == Some(start.at)
        {
            ks.last_start = start.key_before;
        }
    }

    /// The earliest time a parked job may start, global pacing included.
    /// Someone starts to wait until `until` (`None`: no deadline).
    pub(super) fn will_wait(&mut self, until: Option<Instant>) {
        self.wakes_by = match (self.waiters + self.room_waiters, self.wakes_by, until) {
            (0, _, until) => until,
            (_, Some(by), Some(until)) => Some(by.max(until)),
            _ => None,
        };
    }

    /// Whether a parked job is due before everyone waiting would wake by
    /// themselves.
    pub(super) fn due_sooner(&self) -> bool {
        self.first_due()
            .is_some_and(|due| self.wakes_by.is_none_or(|by| due < by))
    }

    pub(super) fn first_due(&self) -> Option<Instant> {
        let first = self.timers.first().map(|(t, _)| *t)?;
        Some(first.max(self.global.opens_at().unwrap_or(first)))
    }

    /// Recomputes the timer of `key`; true if it is now the earliest.
    pub(super) fn reschedule(&mut self, key: &Key, now: Instant) -> bool {
        let limit = self.limit_of(key);
        let Some(ks) = self.keys.get_mut(key) else {
            return false;
        };
        if let Some(old) = ks.timer.take() {
            self.timers.remove(&(old, key.clone()));
        }
        if ks.idle(now) {
            self.keys.remove(key);
            return false;
        }
        let due = (ks.running < limit).then(|| ks.due(now)).flatten();
        ks.timer = due;
        let Some(due) = due else { return false };
        let earliest = self.timers.first().is_none_or(|(t, _)| due < *t);
        self.timers.insert((due, key.clone()));
        earliest
    }
}
