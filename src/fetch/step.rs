//! A fetch in steps, one attempt per step, so that the wait between two
//! attempts is spent parked in the pool rather than on a sleeping worker
//! ([`Fetcher::step`]); and what each answer said about its host, for the
//! host controller ([`crate::control::host`]).
//!
//! The user's bounds are hard. `--retries 0` is one attempt, whatever the
//! answer; a status in `--accept` is never retried. While retries are
//! allowed at all, retries of a pushback that says when to come back (a
//! 429, or a 503 with `Retry-After`) are *free*: they do not count against
//! `--retries`, since the host told us when. And no retry of any kind
//! starts later than `--max-retry-wait` after the entry's first pushback
//! answer (429 or 503): then the last answer is the result.

use std::time::{Duration, Instant};

use ureq::http::{HeaderMap, Uri};

use super::net::transport;
use super::retry::{RETRY_STATUSES, backoff, retry_after};
use super::{Attempt, Fetcher, with_timings};
use crate::control::host::{Answer, Signal};
use crate::result::Fetched;

/// Where one entry's fetch stands between its steps. The caller keeps it
/// (in the pool's job) and hands it back to [`Fetcher::step`].
#[derive(Debug, Default)]
pub struct FetchState {
    /// Attempts made.
    attempts: u32,
    /// Attempts that count against `--retries` (all but free retries).
    charged: u32,
    /// When the first attempt started.
    start: Option<Instant>,
    /// The last failed attempt, the result should no other come.
    failed: Option<Fetched>,
    /// Retries end here: the first pushback answer plus `--max-retry-wait`.
    deadline: Option<Instant>,
    /// Time held back by the host's pause, its rate, or `--rate`.
    waited: Duration,
}

impl FetchState {
    /// Whether no attempt was made yet.
    pub fn is_new(&self) -> bool {
        self.attempts == 0
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

/// A retry may start this late past the entry's deadline: the pool's
/// timers are not exact.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);

impl Fetcher {
    /// Makes the next attempt of the fetch of `uri` (see
    /// [`crate::input::url::check`]); `url` is the URL as given, which names
    /// a saved file, and `repeat` how many entries before it had the same
    /// URL (each repeat is saved under a name of its own). Returns the
    /// result, or when to step again, and what the answer (if one came) said
    /// about the host. Never waits; `held` is how long the pool held the
    /// step back (for `waited_ms`). Never panics on
    /// anything a server sends.
    pub fn step(
        &self,
        uri: &Uri,
        url: &str,
        repeat: u32,
        state: &mut FetchState,
        held: Duration,
    ) -> (Stepped, Option<Signal>) {
        state.waited += held;
        // No retry starts past the deadline (the host's pause or rate may
        // have held it that long): the last answer stands.
        if let Some(end) = state.deadline
            && Instant::now() > end + DEADLINE_SLACK
            && let Some(f) = state.failed.take()
        {
            return (Stepped::Done(self.finish(f, state, uri, url)), None);
        }
        state.attempts += 1;
        state.start.get_or_insert_with(Instant::now);
        let budget = Budget {
            retryable: self.config.method.is_idempotent() && self.config.retries > 0,
            charged_left: state.charged < self.config.retries,
            deadline: state.deadline,
            max_wait: self.config.max_retry_wait,
        };
        let sent = Instant::now();
        let (attempt, answer) = self.attempt(uri, url, repeat, &budget);
        let mut signal = answer.map(|answer| Signal {
            sent,
            latency: latency(),
            answer,
        });
        let now = Instant::now();
        if let Some(Answer::Pushback { .. }) = answer {
            state
                .deadline
                .get_or_insert(now + self.config.max_retry_wait);
        }
        let (f, Retry { after, free }) = match attempt {
            Attempt::Done(f) => {
                let f = with_timings(f);
                return (Stepped::Done(self.finish(f, state, uri, url)), signal);
            }
            Attempt::Retry(f, retry) => (with_timings(f), retry),
        };
        if !free {
            state.charged += 1;
        }
        let wait = after.unwrap_or_else(|| backoff(state.charged.max(1)));
        if state.deadline.is_some_and(|end| now + wait > end) {
            return (Stepped::Done(self.finish(f, state, uri, url)), signal);
        }
        // Waiting for the time a pushback asked for is being held back by
        // the host (the pool counts any wait beyond it).
        if let Some(Answer::Pushback { .. }) = answer {
            state.waited += wait;
        }
        // A 429 that did not say for how long: leave the host alone for as
        // long as this entry waits.
        if let Some(Signal {
            answer:
                Answer::Pushback {
                    pause: pause @ None,
                    status: 429,
                    ..
                },
            ..
        }) = &mut signal
        {
            *pause = Some(wait);
        }
        let so_far = self.finish(f.clone(), state, uri, url);
        state.failed = Some(f);
        (
            Stepped::Again {
                at: now + wait,
                so_far,
            },
            signal,
        )
    }

    /// Ends an entry of a host that was given up: with its own last
    /// answer if it had one, else with the host's last refusal `status`
    /// (not ok, no request made).
    pub fn given_up(
        &self,
        uri: &Uri,
        url: &str,
        state: &mut FetchState,
        status: u16,
        held: Duration,
    ) -> Fetched {
        state.waited += held;
        let f = state.failed.take().unwrap_or_else(|| Fetched {
            status: Some(status),
            ..Fetched::default()
        });
        self.finish(f, state, uri, url)
    }

    /// Fetches `uri` to the end, sleeping between attempts on this thread
    /// (the pool parks between steps instead; see [`Fetcher::step`]).
    pub fn fetch(&self, uri: &Uri, url: &str, repeat: u32) -> Fetched {
        let mut state = FetchState::default();
        loop {
            match self.step(uri, url, repeat, &mut state, Duration::ZERO).0 {
                Stepped::Done(f) => return f,
                Stepped::Again { at, so_far } => {
                    if !self.wait_until(at) {
                        return so_far;
                    }
                }
            }
        }
    }

    /// `fetched` as a result: its attempts, elapsed time and scrubbed message.
    fn finish(&self, mut fetched: Fetched, state: &FetchState, uri: &Uri, url: &str) -> Fetched {
        fetched.attempts = state.attempts;
        fetched.elapsed = state.start.map_or(Duration::ZERO, |s| s.elapsed());
        fetched.waited = state.waited;
        if let Some(err) = &mut fetched.error {
            err.message = self.scrub(&err.message, uri, url);
        }
        fetched
    }
}

/// From sending the request of the attempt just made to the answer's head
/// (connecting included): the host's latency, for the controller.
fn latency() -> Option<Duration> {
    let e = transport::current();
    let ttfb = e.ttfb()?;
    Some(ttfb + e.connect.unwrap_or_default() + e.tls.unwrap_or_default())
}
