//! One host's request rate, adapted to what it says (see `docs/design.md`,
//! "Politeness"). Pure logic: the clock is passed in, so tests drive it.
//!
//! - **Unlimited until the host pushes back.** A host that never answers
//!   429 or 503 is never slowed down.
//! - **Estimate, then cut.** On a pushback (429, or 503) the allowed rate is
//!   estimated from what succeeded: the good answers since the window began
//!   (the first request, or the end of the last cut's pause), spread over
//!   that window plus the pause the host now asks for. A token-bucket host
//!   that let 10 through and asks for one second gets 10 / 1 s. The first
//!   cut takes the estimate; later cuts take it too, but always cut (at most
//!   90 % of the current rate) and never below half of it (multiplicative
//!   decrease).
//! - **One cut per episode.** Answers to requests sent before the last cut
//!   (sent at the old rate, in flight when it happened), and pushbacks
//!   within a second of sending resuming at the new rate, do not cut again,
//!   so a burst of 429s counts once.
//! - **Cuts that do not help stop.** If a cut of a quarter or more did not
//!   spread the pushbacks (no more good answers came between them than
//!   before), they are not about the rate (a host that answers some URLs
//!   with 429 whatever the pace): the rate is no longer cut, and only the
//!   pauses the host asks for apply.
//! - **Raised fast after a first cut** (multiplicative increase, as slow
//!   start is): a cut with no other in the last 30 s may be a fluke (one
//!   early 429 from a host that copes), so each good answer after it
//!   raises the rate by a quarter, and a few good answers make the host
//!   unlimited again.
//! - **Raised slowly after repeated cuts** (additive increase): each good
//!   answer adds `step / rate`, so the rate grows by `step` per second of
//!   good answers, `step` being 3 % of the rate of the last cut (at least
//!   0.05 requests/s per second). A host that gets back to twice that rate
//!   without pushing back again is unlimited again.

use std::time::{Duration, Instant};

/// The lowest rate a host is held to, in requests per second.
pub const MIN_RATE: f64 = 0.05;
/// A cut never takes more than this share of the rate away...
const MAX_CUT: f64 = 0.5;
/// ...and always at least this share.
const MIN_CUT: f64 = 0.9;
/// Growth per second of good answers, as a share of the rate of the last cut.
const GROWTH: f64 = 0.03;
/// After a first cut, each good answer multiplies the rate by this.
const FAST_GROWTH: f64 = 1.25;
/// A cut with no other this long before it is a first cut.
const FIRST_CUT_AFTER: Duration = Duration::from_secs(30);
/// Smallest growth, in requests per second per second.
const MIN_GROWTH: f64 = 0.05;
/// Back to unlimited at this multiple of the rate of the last cut.
const UNLIMITED_AT: f64 = 2.0;
/// A cut to this share of the rate or less...
const FUTILE_CUT: f64 = 0.75;
/// ...after which the good answers between pushbacks grew by less than this
/// factor did not help.
const FUTILE_SPREAD: f64 = 1.25;
/// A pushback this soon after sending resumed at a new rate does not cut again.
const CUT_HOLD: Duration = Duration::from_secs(1);
/// The estimate's window is at least this long.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Older good answers fade out of the estimate.
const MAX_WINDOW: Duration = Duration::from_secs(30);

/// A cut, remembered so that answers to requests sent before it (in flight
/// when it happened) still count in its estimate.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// The rate it set, raised by late answers: the base of growth.
    to: f64,
    /// The estimate's window: from when, and how long in all.
    from: Instant,
    secs: f64,
    /// The most it may reach with late answers (its upper clamp).
    cap: f64,
    /// When it was made.
    at: Instant,
    /// A first cut: recovery is multiplicative.
    first: bool,
}

/// The adaptive request rate of one host.
#[derive(Debug, Clone)]
pub struct HostRate {
    /// Requests per second; `None`: unlimited.
    rate: Option<f64>,
    /// Start of the estimate's window.
    since: Instant,
    /// Good answers to requests sent since `since`.
    good: f64,
    /// The last cut.
    last_cut: Option<Cut>,
    /// Pushbacks seen, counted or not.
    pushbacks: u64,
    /// The good answers of the last counted window and the rate they were
    /// sent at, when it was limited.
    prev: Option<(f64, f64)>,
    /// Cutting did not spread the pushbacks: cut no more.
    futile: bool,
}

impl HostRate {
    /// A host first asked at `now`: unlimited.
    pub fn new(now: Instant) -> Self {
        HostRate {
            rate: None,
            since: now,
            good: 0.0,
            last_cut: None,
            pushbacks: 0,
            prev: None,
            futile: false,
        }
    }

    /// The rate the host is held to, if any.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// How many times the host pushed back.
    pub fn pushbacks(&self) -> u64 {
        self.pushbacks
    }

    /// A good answer to a request sent at `sent`; true if the rate changed.
    pub fn good(&mut self, sent: Instant, now: Instant) -> bool {
        self.open_window(sent);
        if sent < self.since {
            return self.late_good(sent);
        }
        self.fade(now);
        self.good += 1.0;
        let (Some(rate), Some(cut)) = (self.rate, self.last_cut) else {
            return false;
        };
        let cut_to = cut.to;
        let step = (GROWTH * cut_to).max(MIN_GROWTH);
        let raised = if cut.first {
            rate * FAST_GROWTH
        } else {
            rate + step / rate
        };
        self.rate = (raised < UNLIMITED_AT * cut_to).then_some(raised);
        true
    }

    /// A pushback (429, or 503) to a request sent at `sent`, the host asking
    /// for `pause` (its `Retry-After`, capped) if it did; true if the rate
    /// changed.
    pub fn pushback(&mut self, sent: Instant, pause: Option<Duration>, now: Instant) -> bool {
        self.pushbacks += 1;
        self.open_window(sent);
        // Sent at the old rate, or too soon after sending resumed at the new one.
        if sent < self.since || (self.last_cut.is_some() && now < self.since + CUT_HOLD) {
            return false;
        }
        self.fade(now);
        let pause = pause.unwrap_or(Duration::ZERO);
        let window = (now.saturating_duration_since(self.since) + pause).max(MIN_WINDOW);
        let good = self.good;
        let from = self.since;
        self.since = now + pause;
        self.good = 0.0;
        if let (Some((prev_good, prev_rate)), Some(rate)) = (self.prev, self.rate)
            && rate <= FUTILE_CUT * prev_rate
            && good <= FUTILE_SPREAD * prev_good
        {
            self.futile = true;
        }
        self.prev = self.rate.map(|rate| (good, rate));
        if self.futile {
            return false;
        }
        let estimate = good.max(1.0) / window.as_secs_f64();
        let rate = match self.rate {
            None => estimate,
            Some(rate) => estimate.clamp(rate * MAX_CUT, rate * MIN_CUT),
        }
        .max(MIN_RATE);
        self.rate = Some(rate);
        let first = self
            .last_cut
            .is_none_or(|c| now.saturating_duration_since(c.at) > FIRST_CUT_AFTER);
        self.last_cut = Some(Cut {
            to: rate,
            from,
            secs: window.as_secs_f64(),
            cap: self.prev.map_or(f64::INFINITY, |(_, r)| r * MIN_CUT),
            at: now,
            first,
        });
        true
    }

    /// Before the first cut every answer counts: answers come in any order,
    /// so the first window starts at the earliest request seen.
    fn open_window(&mut self, sent: Instant) {
        if self.last_cut.is_none() && sent < self.since {
            self.since = sent;
        }
    }

    /// A good answer to a request sent before the last cut, in its window:
    /// the estimate missed it, so the cut is made good for it.
    fn late_good(&mut self, sent: Instant) -> bool {
        let (Some(rate), Some(cut)) = (self.rate, &mut self.last_cut) else {
            return false;
        };
        if self.futile || sent < cut.from {
            return false;
        }
        let raised = (rate + 1.0 / cut.secs).min(cut.cap);
        cut.to += raised - rate;
        if let Some((good, _)) = &mut self.prev {
            *good += 1.0;
        }
        self.rate = Some(raised);
        raised > rate
    }

    /// Keeps the window within [`MAX_WINDOW`], scaling the count down as if
    /// the good answers had come evenly.
    fn fade(&mut self, now: Instant) {
        let span = now.saturating_duration_since(self.since);
        if span > MAX_WINDOW {
            let kept = MAX_WINDOW / 2;
            self.good *= kept.as_secs_f64() / span.as_secs_f64();
            self.since = now.checked_sub(kept).unwrap_or(self.since);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A host with a token bucket of `burst` tokens refilled at `rate` per
    /// second, asking for `retry_after` when empty; asked as fast as the
    /// controller allows, from `t0`, for `secs` seconds. Returns the
    /// pushbacks and the good answers.
    fn drive(rate_allowed: f64, burst: f64, secs: u64) -> (u64, u64, HostRate) {
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        let (mut tokens, mut refilled) = (burst, t0);
        let (mut pushbacks, mut good) = (0, 0);
        let mut now = t0;
        let mut paused_until = t0;
        let end = t0 + Duration::from_secs(secs);
        while now < end {
            tokens = (tokens + (now - refilled).as_secs_f64() * rate_allowed).min(burst);
            refilled = now;
            if tokens >= 1.0 {
                tokens -= 1.0;
                good += 1;
                host.good(now, now + ms(1));
            } else {
                pushbacks += 1;
                host.pushback(now, Some(Duration::from_secs(1)), now + ms(1));
                paused_until = now + Duration::from_secs(1);
            }
            let gap = host
                .rate()
                .map_or(ms(1), |r| Duration::from_secs_f64(1.0 / r));
            now = (now + gap).max(paused_until);
        }
        (pushbacks, good, host)
    }

    #[test]
    fn starts_unlimited_and_never_slows_a_host_that_copes() {
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        for i in 0..10_000 {
            assert!(!host.good(t0 + ms(i), t0 + ms(i + 5)));
        }
        assert_eq!(host.rate(), None);
    }

    #[test]
    fn the_first_cut_estimates_the_rate_from_what_succeeded() {
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        for i in 0..10 {
            host.good(t0 + ms(i), t0 + ms(i + 1));
        }
        assert!(host.pushback(t0 + ms(10), Some(Duration::from_secs(1)), t0 + ms(11)));
        let rate = host.rate().unwrap();
        assert!((9.0..10.0).contains(&rate), "{rate}");
    }

    #[test]
    fn before_the_first_cut_answers_count_in_any_order() {
        let t0 = Instant::now();
        // The first answer heard of was to a later request.
        let mut host = HostRate::new(t0 + ms(5));
        assert!(host.pushback(t0, Some(Duration::from_secs(1)), t0 + ms(6)));
        assert!(host.rate().is_some());
    }

    #[test]
    fn a_burst_of_pushbacks_cuts_once() {
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        for i in 0..10 {
            host.good(t0, t0 + ms(i));
        }
        // 20 requests sent together; the first answer cuts, the others were
        // sent at the old rate.
        assert!(host.pushback(t0, Some(Duration::from_secs(1)), t0 + ms(5)));
        let rate = host.rate();
        for i in 0..19 {
            assert!(!host.pushback(t0, Some(Duration::from_secs(1)), t0 + ms(6 + i)));
        }
        assert_eq!(host.rate(), rate);
        assert_eq!(host.pushbacks(), 20);
        // Sent after the pause, answered within a second of its end: no
        // second cut either; a second later, a cut.
        assert!(!host.pushback(t0 + ms(1100), None, t0 + ms(1500)));
        assert!(host.pushback(t0 + ms(2100), None, t0 + ms(2100)));
    }

    #[test]
    fn the_rate_comes_down_then_back_up_and_then_unlimited() {
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        host.good(t0, t0);
        assert!(host.pushback(t0, None, t0 + ms(10)));
        let cut = host.rate().unwrap();
        assert!(cut >= MIN_RATE);
        // Good answers, one per current interval: the rate climbs (by a
        // quarter per answer: a first cut).
        let mut now = t0 + Duration::from_secs(2);
        let mut last = cut;
        let mut steps = 0;
        while let Some(rate) = host.rate() {
            assert!(rate >= last, "the rate fell on a good answer");
            last = rate;
            assert!(host.good(now, now));
            now += Duration::from_secs_f64(1.0 / rate);
            steps += 1;
            assert!(steps < 100_000, "never back to unlimited");
        }
        assert!(last >= UNLIMITED_AT * cut / FAST_GROWTH * 0.95);
        // Later cuts never more than halve.
        let mut host = HostRate::new(t0);
        for i in 0..1000 {
            host.good(t0 + ms(i), t0 + ms(i));
        }
        host.pushback(t0 + ms(1000), None, t0 + ms(1000));
        let first = host.rate().unwrap();
        host.pushback(t0 + ms(2500), Some(Duration::from_secs(30)), t0 + ms(2500));
        let second = host.rate().unwrap();
        assert!(
            second >= first * MAX_CUT && second <= first * MIN_CUT,
            "{first} -> {second}"
        );
    }

    #[test]
    fn one_early_pushback_costs_a_few_answers_not_seconds() {
        // A fast host answers one early 429 (Retry-After: 0), then only good
        // answers: unlimited again within a handful of them.
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        for i in 0..10 {
            host.good(t0 + ms(i), t0 + ms(i));
        }
        assert!(host.pushback(t0 + ms(10), Some(Duration::ZERO), t0 + ms(11)));
        let mut answers = 0;
        let mut now = t0 + ms(12);
        while let Some(rate) = host.rate() {
            now += Duration::from_secs_f64(1.0 / rate);
            host.good(now, now);
            answers += 1;
            assert!(answers <= 5, "still held at {:?}", host.rate());
        }
        assert!(now - t0 < Duration::from_millis(600), "{:?}", now - t0);
    }

    #[test]
    fn cuts_stop_when_they_do_not_spread_the_pushbacks() {
        // A host that answers every 30th request with 429 and Retry-After: 1,
        // whatever the pace: cutting cannot help, and must stop.
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        let mut now = t0;
        let mut paused_until = t0;
        for i in 1..=3000u64 {
            if i % 30 == 0 {
                host.pushback(now, Some(Duration::from_secs(1)), now);
                paused_until = now + Duration::from_secs(1);
            } else {
                host.good(now, now);
            }
            let gap = host
                .rate()
                .map_or(ms(1), |r| Duration::from_secs_f64(1.0 / r));
            now = (now + gap).max(paused_until);
        }
        let rate = host.rate();
        assert!(rate.is_none_or(|r| r > 100.0), "cut down to {rate:?}/s");
    }

    #[test]
    fn old_answers_fade_from_the_estimate() {
        let t0 = Instant::now();
        let mut host = HostRate::new(t0);
        // 100/s for 5 s, then silence for a minute, then a pushback.
        for i in 0..500 {
            host.good(t0 + ms(10 * i), t0 + ms(10 * i));
        }
        let late = t0 + Duration::from_secs(65);
        host.pushback(late, None, late);
        // Not 500 answers over 65 s (7.7/s) nor over 5 s (100/s): faded.
        let rate = host.rate().unwrap();
        assert!((MIN_RATE..20.0).contains(&rate), "{rate}");
    }

    #[test]
    fn a_token_bucket_host_is_held_near_its_rate() {
        // 10/s, burst 10, Retry-After 1, for 60 s of simulated time.
        let (pushbacks, good, host) = drive(10.0, 10.0, 60);
        assert!(pushbacks <= 12, "{pushbacks} pushbacks");
        // Ideal: 10 + 10/s * 60 s = 610.
        assert!(good >= 520, "{good} good answers in 60 s");
        let rate = host.rate().unwrap();
        assert!((7.0..=15.0).contains(&rate), "{rate}");
    }
}
