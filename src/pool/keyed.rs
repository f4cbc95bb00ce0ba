//! Per-key concurrency limits (`--per-host`) with parking instead of
//! blocking: a worker that takes a job whose key is busy parks it and takes
//! the next job; the worker that finishes a job of that key runs the parked
//! ones.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, PoisonError};

use super::KeyFn;
use crate::lock::lock;

/// Per-key concurrency limits with parking instead of blocking.
pub(super) struct KeyLimiter<J> {
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
    /// The key of `job`, if it is limited.
    pub(super) fn key(&self, job: &J) -> Option<String> {
        (self.key)(job)
    }

    pub(super) fn new(limit: usize, park_cap: usize, key: KeyFn<J>) -> Self {
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
    pub(super) fn acquire_or_park(&self, key: &str, index: u64, job: J) -> Option<(u64, J)> {
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
    pub(super) fn next_or_release(&self, key: &str) -> Option<(u64, J)> {
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

    /// Empties every waiting list: the jobs parked and never started.
    pub(super) fn take_parked(&self) -> Vec<(u64, J)> {
        let mut state = lock(&self.state);
        state.parked_total = 0;
        let parked = std::mem::take(&mut state.parked);
        drop(state);
        self.room.notify_all();
        parked.into_values().flatten().collect()
    }

    pub(super) fn release(&self, key: &str) {
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
