//! Politeness: a host that pushes back (429, or 503) is paused for the time
//! it asks for and then held near the rate it allows, while other hosts go
//! on at full speed (`docs/contract.md`, "Politeness").
//!
//! This module knows no HTTP and no threads. The fetcher reports what each
//! answer said about its host as a [`Signal`]; [`Polite`] turns signals
//! into pauses and per-host rates ([`HostRate`]) and hands both to
//! the pool through its [`Gate`], keyed by `host:port`. The pool parks the
//! jobs of a paused or paced host without holding a worker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::rate::HostRate;
use crate::lock::lock;
use crate::pool::Gate;
use crate::result::trace::{self, Kind};

/// What one answer said about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The host answered normally: it copes with the current rate.
    Good,
    /// 429 or 503: the host asks us to slow down, for `pause` if it said
    /// how long (`Retry-After`; for a 429 without one, the retry's backoff).
    Pushback {
        /// How long to leave the host alone.
        pause: Option<Duration>,
    },
}

/// One answer of a host, as the rate controller needs it.
#[derive(Debug, Clone, Copy)]
pub struct Signal {
    /// When the request was sent: answers to requests sent before a cut
    /// say nothing about the new rate.
    pub sent: Instant,
    /// What the answer said.
    pub answer: Answer,
}

/// A host that pushed back, as the summary names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushedBack {
    /// `host:port`.
    pub host: String,
    /// Answers that pushed back (429, 503).
    pub pushbacks: u64,
    /// The rate it was held to at the end, in requests per second; `null`
    /// when it was unlimited again.
    pub rate_per_s: Option<f64>,
}

/// Hosts tracked before this many are swept of those that never pushed back.
const SWEEP_AT: usize = 4096;
/// A host that never pushed back and was not heard from for this long is
/// forgotten at a sweep.
const FORGET_AFTER: Duration = Duration::from_secs(30);

/// The politeness of a run: per-host pauses and rates, applied through the
/// pool's [`Gate`].
pub struct Polite {
    gate: Gate,
    max_pause: Duration,
    hosts: Mutex<Hosts>,
}

struct Hosts {
    map: HashMap<String, Tracked>,
    sweep_at: usize,
}

struct Tracked {
    rate: HostRate,
    last_seen: Instant,
}

impl Polite {
    /// Politeness acting through `gate`; no pause is longer than `max_pause`
    /// (`--max-retry-wait`).
    pub fn new(gate: Gate, max_pause: Duration) -> Self {
        Polite {
            gate,
            max_pause,
            hosts: Mutex::new(Hosts {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    /// Takes in what an answer of `host` (`host:port`) said: pauses the host
    /// if it asked for it, and adapts its rate.
    pub fn observe(&self, host: &str, signal: Signal) {
        let now = Instant::now();
        let pause = match signal.answer {
            Answer::Good => None,
            Answer::Pushback { pause } => Some(pause.map(|p| p.min(self.max_pause))),
        };
        if let Some(Some(p)) = pause {
            self.gate.pause(host, now + p);
            trace::emit(Kind::Info, || {
                format!(
                    "host {host} pushed back: paused for {:.1} s",
                    p.as_secs_f64()
                )
            });
        }
        let changed = {
            let mut hosts = lock(&self.hosts);
            let hosts = &mut *hosts;
            if !hosts.map.contains_key(host) {
                hosts.sweep(now);
                hosts.map.insert(
                    host.to_owned(),
                    Tracked {
                        rate: HostRate::new(signal.sent),
                        last_seen: now,
                    },
                );
            }
            let Some(tracked) = hosts.map.get_mut(host) else {
                return;
            };
            tracked.last_seen = now;
            let changed = match pause {
                None => tracked.rate.good(signal.sent, now),
                Some(p) => tracked.rate.pushback(signal.sent, p, now),
            };
            changed.then(|| tracked.rate.rate())
        };
        if let Some(rate) = changed {
            let interval = rate.and_then(|r| Duration::try_from_secs_f64(1.0 / r).ok());
            self.gate.set_interval(host, interval);
            trace::emit(Kind::Info, || match rate {
                Some(r) => format!("host {host} held to {r:.2} requests/s"),
                None => format!("host {host} no longer rate-limited"),
            });
        }
    }

    /// The hosts that pushed back, most pushbacks first.
    pub fn pushed_back(&self) -> Vec<PushedBack> {
        let hosts = lock(&self.hosts);
        let mut out: Vec<PushedBack> = hosts
            .map
            .iter()
            .filter(|(_, t)| t.rate.pushbacks() > 0)
            .map(|(host, t)| PushedBack {
                host: host.clone(),
                pushbacks: t.rate.pushbacks(),
                rate_per_s: t.rate.rate().map(|r| (r * 100.0).round() / 100.0),
            })
            .collect();
        out.sort_by(|a, b| b.pushbacks.cmp(&a.pushbacks).then(a.host.cmp(&b.host)));
        out
    }
}

impl Hosts {
    /// Keeps the map bounded: hosts that never pushed back are forgotten
    /// (first the quiet ones, then all of them if need be). Hosts that did
    /// push back are kept for their rate and for the summary.
    fn sweep(&mut self, now: Instant) {
        if self.map.len() < self.sweep_at {
            return;
        }
        self.map.retain(|_, t| {
            t.rate.pushbacks() > 0 || now.saturating_duration_since(t.last_seen) < FORGET_AFTER
        });
        if self.map.len() * 2 > self.sweep_at {
            self.map.retain(|_, t| t.rate.pushbacks() > 0);
        }
        self.sweep_at = (2 * self.map.len()).max(SWEEP_AT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_that_pushed_back_are_named_and_the_map_stays_bounded() {
        let polite = Polite::new(Gate::default(), Duration::from_secs(30));
        let t0 = Instant::now();
        let good = Signal {
            sent: t0,
            answer: Answer::Good,
        };
        for i in 0..(3 * SWEEP_AT) {
            polite.observe(&format!("h{i}:80"), good);
        }
        polite.observe(
            "slow:80",
            Signal {
                sent: Instant::now(),
                answer: Answer::Pushback {
                    pause: Some(Duration::from_secs(3600)),
                },
            },
        );
        let named = polite.pushed_back();
        assert_eq!(named.len(), 1);
        assert_eq!((named[0].host.as_str(), named[0].pushbacks), ("slow:80", 1));
        assert!(named[0].rate_per_s.is_some());
        assert!(lock(&polite.hosts).map.len() <= 2 * SWEEP_AT);
    }
}
