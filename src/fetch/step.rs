//! What a fetch in steps keeps between its attempts, so that the wait
//! between two attempts is spent parked in the pool rather than on a
//! sleeping worker ([`Fetcher::step`](super::Fetcher::step)); whether and
//! how an answer is retried; and what each answer said about its host, for
//! the host controller ([`crate::control::host`]).
//!
//! The user's bounds are hard. `--retries 0` is one attempt, whatever the
//! answer; a status in `--accept` is never retried. While retries are
//! allowed at all, retries of a pushback that says when to come back (a
//! 429, or a 503 with `Retry-After`) are *free*: they do not count against
//! `--retries`, since the host told us when. And no retry of any kind
//! starts later than `--max-retry-wait` after the entry's first pushback
//! answer (429 or 503): then the last answer is the result.

use std::time::{Duration, Instant};

use ureq::http::HeaderMap;

use super::config::RequestConfig;
use super::net::transport;
use super::retry::{RETRY_STATUSES, retry_after};
use crate::control::host::Answer;
use crate::result::{Fetched, Timings, trace};

/// Where one entry's fetch stands between its steps. The caller keeps it
/// (in the pool's job) and hands it back to
/// [`Fetcher::step`](super::Fetcher::step).
#[derive(Debug, Default)]
pub struct FetchState {
    /// Attempts made.
    pub(super) attempts: u32,
    /// Attempts that count against `--retries` (all but free retries).
    pub(super) charged: u32,
    /// When the first attempt started.
    pub(super) start: Option<Instant>,
    /// The last failed attempt, the result should no other come.
    pub(super) failed: Option<Fetched>,
    /// Retries end here: the first pushback answer plus `--max-retry-wait`.
    pub(super) deadline: Option<Instant>,
    /// Time held back by the host's pause, its rate, or `--rate`.
    pub(super) waited: Duration,
    /// The part of `waited` not waited yet: the wait a pushback asked
    /// for, counted when the retry was planned.
    pub(super) ahead: Duration,
}

impl FetchState {
    /// Whether no attempt was made yet.
    pub fn is_new(&self) -> bool {
        self.attempts == 0
    }

    /// The retry planned for `at` starts at `now` instead (its host was
    /// given up: it will end without waiting); the wait not waited is no
    /// longer counted.
    pub fn resume_early(&mut self, at: Instant, now: Instant) {
        let early = at.saturating_duration_since(now).min(self.ahead);
        self.waited = self.waited.saturating_sub(early);
        self.ahead = Duration::ZERO;
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// What a step gave.
#[derive(Debug)]
pub enum Stepped {
    /// The entry's result.
    Done(Fetched),
    /// Step again no earlier than `at`; `so_far` is the result if not.
    Again {
        /// When the next attempt may start.
        at: Instant,
        /// The result should the run stop first.
        so_far: Fetched,
    },
}

/// Whether and how a retryable answer is retried.
pub(super) struct Retry {
    /// The server's `Retry-After`, if any (else the backoff applies).
    pub(super) after: Option<Duration>,
    /// A free retry: not counted against `--retries`.
    pub(super) free: bool,
}

impl Retry {
    /// A counted retry after the usual backoff.
    pub(super) const BACKOFF: Retry = Retry {
        after: None,
        free: false,
    };
}

/// What an attempt may still spend on retries.
pub(super) struct Budget {
    /// The method may be retried at all (idempotent, `--retries` above 0).
    retryable: bool,
    /// Counted retries are left.
    charged_left: bool,
    /// Retries must start by then (`None`: no pushback yet).
    deadline: Option<Instant>,
    /// `--max-retry-wait`.
    max_wait: Duration,
}

impl Budget {
    /// What the next attempt of a fetch at `state`, made as `config` says,
    /// may spend.
    pub(super) fn new(config: &RequestConfig, state: &FetchState) -> Self {
        Budget {
            retryable: config.method.is_idempotent() && config.retries > 0,
            charged_left: state.charged < config.retries,
            deadline: state.deadline,
            max_wait: config.max_retry_wait,
        }
    }

    /// Whether a failed attempt (connect, timeout) is retried.
    pub(super) fn retries_error(&self) -> bool {
        self.retryable && self.charged_left
    }

    /// Whether an answer with `status` (outside `--accept`) and `headers`
    /// is retried, and how.
    pub(super) fn retries_status(&self, status: u16, headers: &HeaderMap) -> Option<Retry> {
        if !self.retryable || !RETRY_STATUSES.contains(&status) {
            return None;
        }
        let after = retry_after(headers);
        let in_time = |wait: Duration| self.deadline.is_none_or(|end| Instant::now() + wait <= end);
        match after {
            Some(wait) if wait > self.max_wait => None,
            Some(wait) if matches!(status, 429 | 503) && in_time(wait) => {
                Some(Retry { after, free: true })
            }
            _ if self.charged_left => Some(Retry { after, free: false }),
            _ => None,
        }
    }
}

/// What an answer with `status` and `headers` says about its host: a 429
/// or a 503 pushes back (for its `Retry-After`, capped by the controller;
/// a refusal unless `accepted`), any other answer is good.
pub(super) fn answer(status: u16, headers: &HeaderMap, accepted: bool) -> Answer {
    match status {
        429 | 503 => Answer::Pushback {
            pause: retry_after(headers),
            status,
            refusal: !accepted,
        },
        _ => Answer::Good,
    }
}

/// An attempt about to be retried, judged by `accept` as a result would
/// be: should the retry never come (a signal), it is the result, and a
/// status `--accept` takes is ok.
pub(super) fn judged(mut f: Fetched, accept: &crate::result::accept::Accept) -> Fetched {
    if f.error.is_none() {
        f.ok = f.status.is_some_and(|s| accept.contains(s));
    }
    f
}

/// A retry may start this late past the entry's deadline: the pool's
/// timers are not exact.
pub(super) const DEADLINE_SLACK: Duration = Duration::from_millis(100);

/// From sending the request of the attempt just made to the answer's head
/// (connecting included): the host's latency, for the controller.
pub(super) fn latency() -> Option<Duration> {
    let e = transport::current();
    let ttfb = e.ttfb()?;
    Some(ttfb + e.connect.unwrap_or_default() + e.tls.unwrap_or_default())
}

/// Traces, with `-v`, that the attempt just made is retried in `wait`,
/// and why.
pub(super) fn trace_retry(so_far: &Fetched, free: bool, wait: Duration) {
    trace::emit(trace::Kind::Info, || {
        let why = match (&so_far.error, so_far.status) {
            (Some(e), _) => format!("{}: {}", e.kind.as_str(), e.message),
            (None, Some(status)) => format!("status {status}"),
            (None, None) => "no answer".to_owned(),
        };
        let count = if free {
            "not counted against --retries"
        } else {
            "counted"
        };
        format!("retry in {} ms after {why} ({count})", wait.as_millis())
    });
}

/// `f` with the timings the transport recorded for the attempt just made.
pub(super) fn with_timings(f: Fetched) -> Fetched {
    let e = transport::current();
    Fetched {
        timings: Some(Timings {
            connect: e.connect,
            tls: e.tls,
            ttfb: e.ttfb(),
            reused: e.reused,
        }),
        ..f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_resumed_early_no_longer_counts_the_wait_it_skipped() {
        let now = Instant::now();
        let mut state = FetchState {
            waited: Duration::from_secs(7),
            ahead: Duration::from_secs(5),
            ..FetchState::default()
        };
        // Planned 5 s ahead, resumed 4 s early: 1 s of it was waited.
        state.resume_early(now + Duration::from_secs(4), now);
        assert_eq!(state.waited, Duration::from_secs(3));
        // Never below what was waited before the plan.
        state.ahead = Duration::from_secs(1);
        state.resume_early(now + Duration::from_secs(60), now);
        assert_eq!(state.waited, Duration::from_secs(2));
    }
}
