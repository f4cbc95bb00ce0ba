//! How many requests one host gets at once under `-j auto`: the control
//! law, as plain logic with the clock passed in (see `docs/design.md`,
//! "The host controller").
//!
//! The signal is the host's latency against its *unloaded* latency (the
//! lowest window mean seen), as in TCP Vegas and Netflix's Gradient
//! limiters: a host that queues answers later, while one that has room
//! answers as fast with more requests in flight. Answers are gathered in
//! windows of at least one unloaded latency and a whole round (the
//! requests that count in flight before answers came back: the first
//! answers of a round are those that found the host free, the queued ones
//! come last), or three quarters of it after four latencies; at the end of
//! each window:
//!
//! - **Overload** (a timeout, a reset, a refused connection, a refusal such
//!   as 429) in the window: the limit is halved, once per window.
//! - **Queueing** (the window's mean latency above `tolerance` times the
//!   unloaded latency, and above it by `slack` at least): the limit is
//!   scaled by unloaded x tolerance / mean (at most halved), the gradient
//!   of Netflix's Gradient2 and Envoy's adaptive concurrency.
//! - **No queueing**: in the fast start (and while recovering from a cut)
//!   the limit doubles per window, as TCP's slow start does; in the steady
//!   state it grows by one per window (probing upward slowly). Only when
//!   the limit was used (half of it in flight at some point in the
//!   window): a host asked less than its limit says nothing about more.
//!
//! Only answers to requests sent since the limit last changed count: the
//! others were sent under the old limit, and counting them would cut
//! twice for one overshoot (a cascade), as TCP counts one loss per window.
//! In the steady state, only those sent one unloaded latency after the
//! change: the first requests under a raised limit still find the room the
//! old one left, and would hide the queueing the raise causes.

use std::time::{Duration, Instant};

/// The constants of the control law; [`LimitConfig::default`] is what a
/// run uses, tests use their own.
#[derive(Debug, Clone, Copy)]
pub struct LimitConfig {
    /// The limit of a host first seen.
    pub initial: usize,
    /// The limit never goes below this.
    pub min: usize,
    /// Nor above this (the worker ceiling, or `--per-host`).
    pub max: usize,
    /// Latency up to this multiple of the unloaded latency is not queueing.
    pub tolerance: f64,
    /// Nor is latency within this of the unloaded latency (clock noise on
    /// fast hosts).
    pub slack: Duration,
    /// A window lasts at least this long...
    pub min_window: Duration,
    /// ...and holds at least this many answers.
    pub min_samples: usize,
    /// After a cut, recover multiplicatively up to this share of the limit
    /// before the cut.
    pub recover_to: f64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            initial: 8,
            min: 1,
            max: 1024,
            tolerance: 1.25,
            slack: Duration::from_micros(250),
            min_window: Duration::from_millis(10),
            min_samples: 3,
            recover_to: 0.9,
        }
    }
}

/// What one answer said, for the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// An answer, this long after the request was sent.
    Answer(Duration),
    /// No usable answer because the host is overloaded or asked us to back
    /// off: a timeout, a reset or refused connection, a refusal (429, 503).
    Overload,
}

/// The phase the limit is in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Doubling per window until the host queues.
    FastStart,
    /// Doubling back up to `target` after a cut.
    Recover { target: f64 },
    /// At the knee: +1 per window while there is no queueing.
    Steady,
}

/// Answers gathered since the window began: their count and capped sum,
/// not the answers themselves, so that a window of any size costs the same.
#[derive(Debug, Clone)]
struct Window {
    start: Instant,
    answers: usize,
    /// The sum of the answers' latencies, each counted as at most `cap`.
    sum: Duration,
    /// See [`HostLimit::outlier_cap`]; fixed for the window.
    cap: Duration,
    overload: bool,
    /// The most requests in flight at once during the window.
    peak: usize,
    /// The most of those that count (see [`HostLimit::fresh`]) in flight
    /// at once until the round was sent: the round the window waits for.
    fresh_peak: usize,
    round_sent: bool,
    /// Every answer that came in the window, counted or not: the host's
    /// delivery rate.
    delivered: usize,
}

/// In a window's mean, an answer counts as at most this many unloaded
/// latencies.
const OUTLIER: u32 = 3;

impl Window {
    fn new(start: Instant, (in_flight, fresh): (usize, usize), cap: Duration) -> Self {
        Window {
            start,
            answers: 0,
            sum: Duration::ZERO,
            cap,
            overload: false,
            peak: in_flight,
            fresh_peak: fresh,
            round_sent: false,
            delivered: 0,
        }
    }

    fn add(&mut self, latency: Duration) {
        self.answers += 1;
        self.sum = self.sum.saturating_add(latency.min(self.cap));
    }

    /// The mean latency, each answer counted as at most the cap: one slow
    /// answer (a large body, a cold cache) moves it by little, while the
    /// share of answers that queued moves it in proportion (by Little's
    /// law, in-flight over mean latency is the host's throughput).
    fn mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.answers).ok().filter(|&n| n > 0)?;
        Some(self.sum / n)
    }
}

/// The adaptive in-flight limit of one host.
#[derive(Debug, Clone)]
pub struct HostLimit {
    cfg: LimitConfig,
    limit: f64,
    phase: Phase,
    /// The lowest window mean seen: the host's latency when not queueing.
    unloaded: Option<Duration>,
    window: Window,
    in_flight: usize,
    /// Requests in flight whose answers will count (sent since
    /// `counts_from`).
    fresh: usize,
    /// The most requests in flight at once, over the run.
    max_in_flight: usize,
    /// Answers to requests sent from then on count: those sent since the
    /// limit or the phase last changed; in the steady state, only those
    /// sent one unloaded latency after it (the first round after a change
    /// still finds the room the old limit left). Fixed at the change, so
    /// that a request counted when it starts is counted when it ends.
    counts_from: Instant,
    /// The best delivery rate (answers per second) of a window so far, and
    /// how many windows in a row grew the limit without raising it by a
    /// quarter: the point where more requests stop bringing more answers.
    best_rate: f64,
    flat_windows: u32,
}

impl HostLimit {
    /// A host first asked at `now`.
    pub fn new(cfg: LimitConfig, now: Instant) -> Self {
        HostLimit {
            limit: cfg.initial.clamp(cfg.min.max(1), cfg.max.max(1)) as f64,
            cfg,
            phase: Phase::FastStart,
            unloaded: None,
            window: Window::new(now, (0, 0), Duration::MAX),
            in_flight: 0,
            fresh: 0,
            max_in_flight: 0,
            counts_from: now,
            best_rate: 0.0,
            flat_windows: 0,
        }
    }

    /// How many requests may be in flight now.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The host's latency when not queueing, as estimated.
    pub fn unloaded(&self) -> Option<Duration> {
        self.unloaded
    }

    /// A request to the host starts at `now`.
    pub fn started(&mut self, now: Instant) {
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        self.window.peak = self.window.peak.max(self.in_flight);
        if now >= self.counts_from {
            self.fresh += 1;
            if !self.window.round_sent {
                self.window.fresh_peak = self.window.fresh_peak.max(self.fresh);
            }
        }
    }

    /// A request sent at `sent` ended with `sample` (`None`: it said
    /// nothing about load, such as a name that did not resolve) at `now`.
    /// True if the limit changed.
    pub fn ended(&mut self, sample: Option<Sample>, sent: Instant, now: Instant) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        // The round is what went out before answers came back: requests
        // sent after that only refill the slots they freed. Answers within
        // half a latency of the round's start are the last round's
        // stragglers, and what refills their slots joins the new round.
        let round_start = self.counts_from.max(self.window.start);
        if now >= round_start + self.unloaded.unwrap_or_default() / 2 {
            self.window.round_sent = true;
        }
        if let Some(Sample::Answer(_)) = sample {
            self.window.delivered += 1;
        }
        if sent < self.counts_from {
            return false;
        }
        self.fresh = self.fresh.saturating_sub(1);
        match sample {
            Some(Sample::Answer(latency)) => {
                self.window.add(latency);
            }
            Some(Sample::Overload) => self.window.overload = true,
            None => return false,
        }
        let length = self.unloaded.unwrap_or_default().max(self.cfg.min_window);
        // A whole round: the first answers of a round are those that found
        // the host free, the queued ones come last (closed on three
        // quarters, a round of 1.5 times a host's capacity looked
        // unqueued). Most of it, if the rest is late for reasons of its
        // own: after four latencies, later than any queued answer of a
        // round the fast start can send. Of the round that counts:
        // requests sent just before a change (as answers freed their
        // slots) would otherwise hold the window a round more.
        let whole = self.window.answers >= self.cfg.min_samples.max(self.window.fresh_peak);
        let most = self.window.answers
            >= self
                .cfg
                .min_samples
                .max((self.window.fresh_peak * 3).div_ceil(4));
        let enough = self.window.overload
            || whole && now >= self.window.start + length
            || most && now >= self.window.start + length * 4;
        if !enough {
            return false;
        }
        let before = (self.limit(), self.phase);
        let seconds = (now - self.window.start).as_secs_f64().max(1e-6);
        self.note_rate(self.window.delivered as f64 / seconds);
        self.close_window();
        if (self.limit(), self.phase) != before {
            self.counts_from = match self.phase {
                Phase::Steady => now + self.unloaded.unwrap_or_default(),
                Phase::FastStart | Phase::Recover { .. } => now,
            };
            self.fresh = 0;
        }
        self.window = Window::new(now, (self.in_flight, self.fresh), self.outlier_cap());
        self.limit() != before.0
    }

    /// Ends the fast start when doubling stopped paying: two windows in a
    /// row whose delivery rate is not a quarter above the best (as BBR
    /// finds a full pipe). A host whose latency is far below our own cost
    /// per request never queues visibly; its answers simply stop coming
    /// faster, and more requests would only add threads.
    fn note_rate(&mut self, rate: f64) {
        if rate > self.best_rate * 1.25 {
            self.best_rate = rate;
            self.flat_windows = 0;
            return;
        }
        self.best_rate = self.best_rate.max(rate);
        self.flat_windows += 1;
        if self.flat_windows >= 2 && self.phase == Phase::FastStart {
            self.phase = Phase::Steady;
        }
    }

    /// The most one answer counts for in a window's mean. It leaves room
    /// above the slack: capped at a multiple of a sub-millisecond latency
    /// alone, the mean of a fast host could never pass unloaded + slack,
    /// and it would grow unchecked.
    fn outlier_cap(&self) -> Duration {
        self.unloaded.map_or(Duration::MAX, |u| {
            (u * OUTLIER).max(u + self.cfg.slack * OUTLIER)
        })
    }

    /// Applies the law to the window just ended.
    fn close_window(&mut self) {
        let (min, max) = (self.cfg.min.max(1) as f64, self.cfg.max.max(1) as f64);
        if self.window.overload {
            let target = self.limit * self.cfg.recover_to;
            self.limit = (self.limit / 2.0).max(min);
            self.phase = Phase::Recover { target };
            return;
        }
        let Some(mean) = self.window.mean() else {
            return;
        };
        let unloaded = *self.unloaded.get_or_insert(mean);
        self.unloaded = Some(unloaded.min(mean));
        let queueing = mean.as_secs_f64() > unloaded.as_secs_f64() * self.cfg.tolerance
            && mean > unloaded + self.cfg.slack;
        if queueing {
            let gradient =
                (self.cfg.tolerance * unloaded.as_secs_f64() / mean.as_secs_f64()).clamp(0.5, 1.0);
            self.limit = (self.limit * gradient).max(min);
            self.phase = Phase::Steady;
            return;
        }
        // A host asked for less than its limit says nothing about more.
        if (self.window.peak as f64) < self.limit / 2.0 {
            return;
        }
        self.limit = match self.phase {
            Phase::FastStart => self.limit * 2.0,
            Phase::Recover { target } if self.limit * 2.0 < target => self.limit * 2.0,
            Phase::Recover { target } => {
                self.phase = Phase::Steady;
                target.max(self.limit + 1.0)
            }
            Phase::Steady => self.limit + 1.0,
        }
        .min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A host that serves `capacity` requests at once in `service` each and
    /// queues the rest (FIFO), asked with as many requests as the limit
    /// allows, for `secs` of simulated time. Returns the limit after each
    /// completion, with its time.
    fn drive_capacity(
        capacity: usize,
        service: Duration,
        secs: u64,
    ) -> (Vec<(Duration, usize)>, HostLimit) {
        let t0 = Instant::now();
        let mut host = HostLimit::new(LimitConfig::default(), t0);
        // (sent, done) of each request in flight; a server slot frees at done.
        let mut flying: Vec<(Instant, Instant)> = Vec::new();
        let mut slots: Vec<Instant> = vec![t0; capacity];
        let mut now = t0;
        let mut limits = Vec::new();
        let mut sent_n = 0;
        while now < t0 + Duration::from_secs(secs) {
            while flying.len() < host.limit() {
                // The earliest free server slot serves it, in `service` give
                // or take a few milliseconds.
                slots.sort();
                let begin = slots[0].max(now);
                sent_n += 1;
                let took = service + ms(sent_n % 7) - ms(3);
                slots[0] = begin + took;
                flying.push((now, begin + took));
                host.started(now);
            }
            flying.sort_by_key(|&(_, done)| done);
            let (sent, done) = flying.remove(0);
            now = done;
            host.ended(Some(Sample::Answer(done - sent)), sent, now);
            limits.push((now - t0, host.limit()));
        }
        (limits, host)
    }

    #[test]
    fn a_host_that_never_queues_grows_fast_to_the_ceiling() {
        // 200 ms whatever the load: from 8 to hundreds within about a second.
        let t0 = Instant::now();
        let cfg = LimitConfig::default();
        let mut host = HostLimit::new(cfg, t0);
        let mut now = t0;
        let mut rounds = 0;
        while host.limit() < 256 {
            let n = host.limit();
            (0..n).for_each(|_| host.started(now));
            let sent = now;
            now += ms(200);
            for _ in 0..n {
                host.ended(Some(Sample::Answer(ms(200))), sent, now);
            }
            rounds += 1;
            assert!(rounds < 20, "stuck at {}", host.limit());
        }
        assert!(now - t0 <= Duration::from_millis(1200), "{:?}", now - t0);
        assert!(host.limit() <= cfg.max);
    }

    #[test]
    fn a_host_that_never_queues_reaches_a_ceiling_of_a_thousand() {
        // Each answer frees its slot at once, as a pool does. A window used
        // to keep at most 256 latencies while needing three quarters of a
        // round: past 341 in flight it could never close.
        let (limits, host) = drive_capacity(1_100, ms(200), 2);
        let max = LimitConfig::default().max;
        assert_eq!(host.max_in_flight(), max);
        // Doubling each round (200 ms, give or take the host's jitter) from
        // 8: seven rounds. Answers spread over a few milliseconds, so the
        // first of a round start requests before the change; counting them
        // in the round to wait for held every other doubling a round more.
        let reached = limits.iter().find(|&&(_, l)| l == max).map(|&(t, _)| t);
        assert!(reached.is_some_and(|t| t <= ms(1_450)), "{reached:?}");
    }

    #[test]
    fn a_capacity_bound_host_is_held_near_its_capacity() {
        let (limits, host) = drive_capacity(16, ms(50), 20);
        // Settled: the second half of the run stays near 16, never far above.
        let settled: Vec<usize> = limits[limits.len() / 2..].iter().map(|&(_, l)| l).collect();
        let most = *settled.iter().max().unwrap();
        let least = *settled.iter().min().unwrap();
        assert!(most <= 24, "held up to {most}");
        assert!(least >= 10, "fell to {least}");
        let unloaded = host.unloaded().unwrap();
        assert!(unloaded >= ms(47) && unloaded <= ms(53), "{unloaded:?}");
    }

    #[test]
    fn the_fast_start_sees_a_round_of_one_and_a_half_capacities_queue() {
        // A host serving 10 at once in 50 ms. The first round of 8 is
        // unqueued: the limit doubles to 16.
        let t0 = Instant::now();
        let mut host = HostLimit::new(LimitConfig::default(), t0);
        (0..8).for_each(|_| host.started(t0));
        for _ in 0..8 {
            host.ended(Some(Sample::Answer(ms(50))), t0, t0 + ms(50));
        }
        assert_eq!(host.limit(), 16);
        // The round of 16: 10 answers in 50 ms, 6 queued behind them.
        // Closed on three quarters (12: a mean of 58 ms) it looked
        // unqueued and doubled to 32; the whole round's mean is 69 ms.
        let sent = t0 + ms(50);
        (0..16).for_each(|_| host.started(sent));
        for i in 0..16 {
            let took = if i < 10 { ms(50) } else { ms(100) };
            host.ended(Some(Sample::Answer(took)), sent, sent + took);
        }
        assert!(host.limit() < 16, "{}", host.limit());
    }

    #[test]
    fn overload_halves_once_per_window_and_good_windows_recover_fast() {
        let t0 = Instant::now();
        let cfg = LimitConfig {
            initial: 64,
            ..LimitConfig::default()
        };
        let mut host = HostLimit::new(cfg, t0);
        (0..64).for_each(|_| host.started(t0));
        // A first window of good answers sets the unloaded latency.
        for i in 0..10 {
            host.ended(Some(Sample::Answer(ms(20))), t0, t0 + ms(20 + i));
        }
        let before = host.limit();
        // A burst of refusals in one window: one cut.
        let at = t0 + ms(50);
        for i in 0..20 {
            host.ended(Some(Sample::Overload), at - ms(1), at + ms(i));
        }
        assert_eq!(host.limit(), before / 2);
        // Good windows after it: doubling back within a few windows.
        let mut now = at + ms(40);
        for _ in 0..4 {
            (0..host.limit()).for_each(|_| host.started(now));
            let sent = now;
            now += ms(25);
            for _ in 0..host.limit() {
                host.ended(Some(Sample::Answer(ms(20))), sent, now);
            }
        }
        assert!(
            host.limit() >= before * 8 / 10,
            "{} of {before}",
            host.limit()
        );
    }

    #[test]
    fn an_idle_limit_does_not_grow_and_nothing_about_load_changes_nothing() {
        let t0 = Instant::now();
        let mut host = HostLimit::new(LimitConfig::default(), t0);
        for i in 0..100 {
            host.started(t0 + ms(10 * i));
            host.ended(
                Some(Sample::Answer(ms(5))),
                t0 + ms(10 * i),
                t0 + ms(10 * i + 5),
            );
        }
        assert_eq!(host.limit(), LimitConfig::default().initial);
        host.started(t0);
        assert!(!host.ended(None, t0, t0 + Duration::from_secs(5)));
        assert_eq!(host.max_in_flight(), 1);
    }
}
