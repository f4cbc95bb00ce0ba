//! `--rate`: spaces request starts evenly over time, across all workers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hands out start times at most `rate` per second, one interval apart:
/// no bursts, however many workers ask at once.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `rate` starts per second (`rate` > 0).
    pub fn new(rate: f64) -> Self {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    /// Reserves the next start slot; the caller waits until the returned time.
    pub fn reserve(&self) -> Instant {
        let mut next = crate::lock::lock(&self.next);
        let now = Instant::now();
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_one_interval_apart() {
        let p = Pacer::new(10.0);
        let slots: Vec<Instant> = (0..5).map(|_| p.reserve()).collect();
        for w in slots.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(100));
        }
    }
}
