//! The host controller: every per-host decision of a run, in one place
//! (`docs/design.md`, "The host controller").
//!
//! The fetcher tells it when a request to a host starts ([`Controller::begin`])
//! and what the answer said when it ends ([`Controller::end`], a
//! [`Signal`]); the controller decides, per host (`host:port`):
//!
//! - **how many requests in flight** (`-j auto`: [`HostLimit`]);
//! - **when to pause** (the time a 429 or a 503 asks for, capped by
//!   `--max-retry-wait`) and **how fast** to ask ([`HostRate`]);
//! - **when to give up**: a host whose every answer for `--max-retry-wait`
//!   was a refusal, none good, is given up, and its remaining entries end
//!   at once with its last refusal.
//!
//! It knows no HTTP and no threads: the pool's [`Gate`] carries each
//! decision out, parking jobs without holding a worker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::limit::{HostLimit, LimitConfig, Sample};
use super::rate::HostRate;
use crate::lock::lock;
use crate::pool::Gate;
use crate::result::trace::{self, Kind};

/// What one answer said about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The host answered normally: it copes with the current load.
    Good,
    /// 429 or 503: the host asks us to slow down, for `pause` if it said
    /// how long (`Retry-After`; for a 429 without one, the retry's backoff).
    Pushback {
        /// How long to leave the host alone.
        pause: Option<Duration>,
        /// The status, as the host's last refusal.
        status: u16,
        /// A refusal that counts towards giving the host up (not one the
        /// user accepts as success).
        refusal: bool,
    },
    /// No answer, in a way that says the host is overloaded: a timeout, a
    /// refused or reset connection.
    Overload,
}

/// One answer of a host, as the controller needs it.
#[derive(Debug, Clone, Copy)]
pub struct Signal {
    /// When the request was sent: answers to requests sent before a cut
    /// say nothing about the new rate.
    pub sent: Instant,
    /// From sending the request to the answer's head, when one came.
    pub latency: Option<Duration>,
    /// What the answer said.
    pub answer: Answer,
}

/// Whether a request to a host may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Send it.
    Go,
    /// The host was given up: end the entry with this status.
    GivenUp(u16),
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
    /// How long it was paused in all, in seconds.
    pub paused_s: f64,
}

/// A host given up, as the summary names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GivenUp {
    /// `host:port`.
    pub host: String,
    /// Its last refusal, which its remaining entries ended with.
    pub status: u16,
    /// How long it had refused, in seconds, when it was given up.
    pub refused_for_s: f64,
}

/// One host's concurrency under `-j auto`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Concurrency {
    /// `host:port`.
    pub host: String,
    /// The in-flight limit it settled at (its limit at the end).
    pub settled: usize,
    /// The most requests in flight to it at once.
    pub max_in_flight: usize,
}

/// What the controller did, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// Hosts that pushed back, most pushbacks first.
    pub pushed_back: Vec<PushedBack>,
    /// Hosts given up.
    pub given_up: Vec<GivenUp>,
    /// Per host concurrency (`-j auto` only), most in flight first.
    pub concurrency: Vec<Concurrency>,
}

/// Hosts tracked before this many are swept of those with nothing to keep.
const SWEEP_AT: usize = 4096;
/// A host with nothing to keep and not heard from for this long is
/// forgotten at a sweep.
const FORGET_AFTER: Duration = Duration::from_secs(30);

/// The host controller of a run, acting through the pool's [`Gate`].
pub struct Controller {
    gate: Gate,
    max_wait: Duration,
    auto: Option<LimitConfig>,
    hosts: Mutex<Hosts>,
}

struct Hosts {
    map: HashMap<String, Tracked>,
    sweep_at: usize,
}

struct Tracked {
    rate: HostRate,
    limit: Option<HostLimit>,
    in_flight: usize,
    last_seen: Instant,
    paused_until: Option<Instant>,
    paused: Duration,
    /// The first refusal since the last answer that was not one.
    refusing_since: Option<Instant>,
    given_up: Option<GivenUp>,
}

impl Tracked {
    fn new(auto: Option<LimitConfig>, now: Instant) -> Self {
        Tracked {
            rate: HostRate::new(now),
            limit: auto.map(|cfg| HostLimit::new(cfg, now)),
            in_flight: 0,
            last_seen: now,
            paused_until: None,
            paused: Duration::ZERO,
            refusing_since: None,
            given_up: None,
        }
    }

    /// Whether it holds something the run still needs.
    fn keep(&self) -> bool {
        self.in_flight > 0 || self.rate.pushbacks() > 0 || self.given_up.is_some()
    }

    /// The time paused up to `now`: a pause that goes on past it (the run
    /// ended first) counts only its part so far.
    fn paused_by(&self, now: Instant) -> Duration {
        let ahead = self
            .paused_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        self.paused.saturating_sub(ahead)
    }

    /// Counts a pause until `until` into the time paused.
    fn pause(&mut self, now: Instant, until: Instant) {
        let from = self.paused_until.map_or(now, |t| t.max(now));
        self.paused += until.saturating_duration_since(from);
        self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
    }
}

impl Controller {
    /// A controller acting through `gate`: no pause is longer than
    /// `max_wait` (`--max-retry-wait`), a host that only refuses for that
    /// long is given up; with `auto` (`-j auto`), each host's in-flight
    /// limit adapts under that law.
    pub fn new(gate: Gate, max_wait: Duration, auto: Option<LimitConfig>) -> Self {
        Controller {
            gate,
            max_wait,
            auto,
            hosts: Mutex::new(Hosts {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    /// A request to `host` is about to start.
    pub fn begin(&self, host: &str) -> Begin {
        let now = Instant::now();
        let mut hosts = lock(&self.hosts);
        let tracked = hosts.get(host, self.auto, &self.gate, now);
        if let Some(given_up) = &tracked.given_up {
            return Begin::GivenUp(given_up.status);
        }
        tracked.in_flight += 1;
        if let Some(limit) = &mut tracked.limit {
            limit.started(now);
        }
        Begin::Go
    }

    /// A request to `host` that [`Controller::begin`] let go has ended;
    /// `signal` is what its answer said (`None`: nothing about the host,
    /// such as a name that did not resolve). True if the host is given up
    /// (now or before): a retry of the entry should not wait for it.
    pub fn end(&self, host: &str, signal: Option<Signal>) -> bool {
        let now = Instant::now();
        let mut hosts = lock(&self.hosts);
        let tracked = hosts.get(host, self.auto, &self.gate, now);
        tracked.in_flight = tracked.in_flight.saturating_sub(1);
        let sample = signal.and_then(|s| match s.answer {
            Answer::Good => s.latency.map(Sample::Answer),
            Answer::Pushback { .. } | Answer::Overload => Some(Sample::Overload),
        });
        let sent = signal.map_or(now, |s| s.sent);
        if let Some(limit) = &mut tracked.limit
            && limit.ended(sample, sent, now)
        {
            self.gate.set_limit(host, Some(limit.limit()));
            trace::emit(Kind::Info, || {
                format!("host {host} may have {} in flight", limit.limit())
            });
        }
        let Some(signal) = signal else {
            return tracked.given_up.is_some();
        };
        if tracked.given_up.is_some() {
            return true;
        }
        match signal.answer {
            Answer::Good => {
                tracked.refusing_since = None;
                if tracked.rate.good(signal.sent, now) {
                    self.apply_rate(host, tracked.rate.rate());
                }
            }
            Answer::Pushback {
                pause,
                status,
                refusal,
            } => self.pushback(host, tracked, (pause, status, refusal), signal.sent, now),
            Answer::Overload => {}
        }
        tracked.given_up.is_some()
    }

    /// A 429 or 503: pause, cut the rate, maybe give the host up.
    fn pushback(
        &self,
        host: &str,
        tracked: &mut Tracked,
        (pause, status, refusal): (Option<Duration>, u16, bool),
        sent: Instant,
        now: Instant,
    ) {
        if refusal {
            let since = *tracked.refusing_since.get_or_insert(now);
            let refused_for = now.saturating_duration_since(since);
            if refused_for >= self.max_wait {
                tracked.given_up = Some(GivenUp {
                    host: host.to_owned(),
                    status,
                    refused_for_s: refused_for.as_secs_f64(),
                });
                // Its parked entries end at once: nothing waits for it.
                if let Some(until) = tracked.paused_until
                    && until > now
                {
                    tracked.paused = tracked.paused.saturating_sub(until - now);
                }
                tracked.paused_until = None;
                self.gate.release(host);
                trace::emit(Kind::Info, || {
                    format!("host {host} given up: only {status} for {refused_for:.1?}")
                });
                return;
            }
        }
        let pause = pause.map(|p| p.min(self.max_wait));
        if let Some(p) = pause {
            tracked.pause(now, now + p);
            self.gate.pause(host, now + p);
            trace::emit(Kind::Info, || {
                format!(
                    "host {host} pushed back: paused for {:.1} s",
                    p.as_secs_f64()
                )
            });
        }
        if tracked.rate.pushback(sent, pause, now) {
            self.apply_rate(host, tracked.rate.rate());
        }
    }

    fn apply_rate(&self, host: &str, rate: Option<f64>) {
        let interval = rate.and_then(|r| Duration::try_from_secs_f64(1.0 / r).ok());
        self.gate.set_interval(host, interval);
        trace::emit(Kind::Info, || match rate {
            Some(r) => format!("host {host} held to {r:.2} requests/s"),
            None => format!("host {host} no longer rate-limited"),
        });
    }

    /// What the controller did, for the summary.
    pub fn decisions(&self) -> Decisions {
        let hosts = lock(&self.hosts);
        let now = Instant::now();
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let mut out = Decisions::default();
        for (host, t) in &hosts.map {
            if t.rate.pushbacks() > 0 {
                out.pushed_back.push(PushedBack {
                    host: host.clone(),
                    pushbacks: t.rate.pushbacks(),
                    rate_per_s: t.rate.rate().map(round),
                    paused_s: round(t.paused_by(now).as_secs_f64()),
                });
            }
            if let Some(g) = &t.given_up {
                out.given_up.push(GivenUp {
                    refused_for_s: round(g.refused_for_s),
                    ..g.clone()
                });
            }
            if let Some(limit) = &t.limit
                && limit.max_in_flight() > 0
            {
                out.concurrency.push(Concurrency {
                    host: host.clone(),
                    settled: limit.limit(),
                    max_in_flight: limit.max_in_flight(),
                });
            }
        }
        out.pushed_back
            .sort_by(|a, b| b.pushbacks.cmp(&a.pushbacks).then(a.host.cmp(&b.host)));
        out.given_up.sort_by(|a, b| a.host.cmp(&b.host));
        out.concurrency
            .sort_by(|a, b| (b.max_in_flight.cmp(&a.max_in_flight)).then(a.host.cmp(&b.host)));
        out
    }
}

impl Hosts {
    /// The state of `host`, made if need be.
    fn get(
        &mut self,
        host: &str,
        auto: Option<LimitConfig>,
        gate: &Gate,
        now: Instant,
    ) -> &mut Tracked {
        if !self.map.contains_key(host) {
            self.sweep(now, gate);
            self.map.insert(host.to_owned(), Tracked::new(auto, now));
        }
        let tracked = self
            .map
            .entry(host.to_owned())
            .or_insert_with(|| Tracked::new(auto, now));
        tracked.last_seen = now;
        tracked
    }

    /// Keeps the map bounded: hosts with nothing to keep are forgotten
    /// (first the quiet ones, then all of them if need be), and their
    /// limits in the pool go back to the first one. Hosts that pushed back
    /// or were given up are kept for the summary.
    fn sweep(&mut self, now: Instant, gate: &Gate) {
        if self.map.len() < self.sweep_at {
            return;
        }
        let before: Vec<String> = self.map.keys().cloned().collect();
        self.map
            .retain(|_, t| t.keep() || now.saturating_duration_since(t.last_seen) < FORGET_AFTER);
        if self.map.len() * 2 > self.sweep_at {
            self.map.retain(|_, t| t.keep());
        }
        for host in before {
            if !self.map.contains_key(&host) {
                gate.set_limit(&host, None);
            }
        }
        self.sweep_at = (2 * self.map.len()).max(SWEEP_AT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16, pause: Option<Duration>) -> Signal {
        Signal {
            sent: Instant::now(),
            latency: Some(Duration::from_millis(1)),
            answer: Answer::Pushback {
                pause,
                status,
                refusal: true,
            },
        }
    }

    fn good() -> Signal {
        Signal {
            sent: Instant::now(),
            latency: Some(Duration::from_millis(1)),
            answer: Answer::Good,
        }
    }

    #[test]
    fn only_hosts_that_pushed_back_are_named_and_the_map_stays_bounded() {
        let c = Controller::new(Gate::default(), Duration::from_secs(30), None);
        for i in 0..(3 * SWEEP_AT) {
            let host = format!("h{i}:80");
            assert_eq!(c.begin(&host), Begin::Go);
            c.end(&host, Some(good()));
        }
        c.begin("slow:80");
        c.end(
            "slow:80",
            Some(refusal(429, Some(Duration::from_secs(3600)))),
        );
        let named = c.decisions().pushed_back;
        assert_eq!(named.len(), 1);
        assert_eq!((named[0].host.as_str(), named[0].pushbacks), ("slow:80", 1));
        assert!(named[0].rate_per_s.is_some());
        // The pause was capped by --max-retry-wait; none of it is over yet.
        let paused = lock(&c.hosts).map["slow:80"].paused;
        assert!(paused <= Duration::from_secs(30), "{paused:?}");
        assert!(paused >= Duration::from_secs(29), "{paused:?}");
        assert!(named[0].paused_s < 29.0, "{:?}", named[0]);
        assert!(lock(&c.hosts).map.len() <= 2 * SWEEP_AT);
    }

    #[test]
    fn a_host_that_only_refuses_for_the_max_wait_is_given_up() {
        // A zero --max-retry-wait: the second refusal is already too long.
        let c = Controller::new(Gate::default(), Duration::ZERO, None);
        assert_eq!(c.begin("a:80"), Begin::Go);
        // The answer that gives the host up says so, so its own retry
        // does not wait for the time the answer asked for.
        assert!(c.end("a:80", Some(refusal(503, None))));
        assert_eq!(c.begin("a:80"), Begin::GivenUp(503));
        let given_up = c.decisions().given_up;
        assert_eq!(given_up.len(), 1);
        assert_eq!(
            (given_up[0].host.as_str(), given_up[0].status),
            ("a:80", 503)
        );
    }

    #[test]
    fn a_good_answer_or_an_accepted_refusal_keeps_a_host() {
        let c = Controller::new(Gate::default(), Duration::from_secs(3600), None);
        c.begin("a:80");
        assert!(!c.end("a:80", Some(refusal(429, None))));
        c.begin("a:80");
        assert!(!c.end("a:80", Some(good())));
        // Refusing again starts a new span, far from an hour long.
        c.begin("a:80");
        c.end("a:80", Some(refusal(429, None)));
        assert_eq!(c.begin("a:80"), Begin::Go);
        let c = Controller::new(Gate::default(), Duration::ZERO, None);
        let accepted = Signal {
            answer: Answer::Pushback {
                pause: None,
                status: 429,
                refusal: false,
            },
            ..good()
        };
        c.begin("b:80");
        c.end("b:80", Some(accepted));
        c.begin("b:80");
        c.end("b:80", Some(accepted));
        assert_eq!(c.begin("b:80"), Begin::Go);
        assert!(c.decisions().given_up.is_empty());
    }

    #[test]
    fn auto_reports_each_hosts_concurrency() {
        let c = Controller::new(
            Gate::default(),
            Duration::from_secs(30),
            Some(LimitConfig::default()),
        );
        for _ in 0..3 {
            c.begin("a:80");
        }
        for _ in 0..3 {
            c.end("a:80", Some(good()));
        }
        let conc = c.decisions().concurrency;
        assert_eq!(conc.len(), 1);
        assert_eq!(conc[0].max_in_flight, 3);
        assert_eq!(conc[0].settled, LimitConfig::default().initial);
    }
}
