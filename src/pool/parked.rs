//! The parking lot's data: per-key state (running jobs, parked jobs,
//! pause and pacing) and the timers of keys that have a job to start. The
//! logic that uses it is in `keyed`.

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
}

pub(super) struct State<J, R> {
    pub(super) keys: HashMap<Key, KeyState<J, R>>,
    /// When each key with a startable job can start it (`KeyState::timer`).
    pub(super) timers: BTreeSet<(Instant, Key)>,
    pub(super) parked: usize,
    pub(super) running: usize,
    /// Threads waiting on `changed`.
    pub(super) waiters: usize,
}

pub(super) struct KeyState<J, R> {
    pub(super) running: usize,
    pub(super) fresh: VecDeque<(u64, J)>,
    pub(super) resumed: BTreeMap<(Instant, u64), (J, R)>,
    pub(super) paused_until: Option<Instant>,
    pub(super) interval: Option<Duration>,
    pub(super) last_start: Option<Instant>,
    pub(super) timer: Option<Instant>,
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
        }
    }
}

impl<J, R> KeyState<J, R> {
    /// When the key may start a job (`None`: whenever).
    pub(super) fn opens_at(&self) -> Option<Instant> {
        let paced = self.last_start.zip(self.interval).map(|(at, iv)| at + iv);
        self.paused_until.max(paced)
    }

    pub(super) fn is_open(&self, now: Instant) -> bool {
        self.opens_at().is_none_or(|t| t <= now)
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
    /// parked, time or not.
    pub(super) fn pick(&mut self, now: Instant, any: bool) -> Option<Item<J, R>> {
        if let Some(entry) = self.resumed.first_entry()
            && (any || entry.key().0 <= now)
        {
            let ((_, index), (job, so_far)) = entry.remove_entry();
            return Some(Item::Resumed(index, job, so_far));
        }
        self.fresh
            .pop_front()
            .map(|(index, job)| Item::Fresh(index, job))
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
            && self.paused_until.is_none_or(|t| t <= now)
    }
}

impl<J, R> State<J, R> {
    /// Recomputes the timer of `key`; true if it is now the earliest.
    pub(super) fn reschedule(&mut self, key: &Key, now: Instant, limit: usize) -> bool {
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
        let limit = if key.is_some() { limit } else { usize::MAX };
        let due = (ks.running < limit).then(|| ks.due(now)).flatten();
        ks.timer = due;
        let Some(due) = due else { return false };
        let earliest = self.timers.first().is_none_or(|(t, _)| due < *t);
        self.timers.insert((due, key.clone()));
        earliest
    }
}
