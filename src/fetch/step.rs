//! A fetch in steps, one attempt per step, so that the wait between two
//! attempts is spent parked in the pool rather than on a sleeping worker
//! ([`Fetcher::step`]); and what each answer said about its host, for
//! politeness ([`crate::control::polite`]).
//!
//! Retries of a pushback that says when to come back (a 429, or a 503 with
//! `Retry-After`) are *free*: they do not count against `--retries`, since
//! the host told us when, but they end `--max-retry-wait` after the entry's
//! first such answer, with that answer as the result.

use std::time::{Duration, Instant};

use ureq::http::{HeaderMap, Uri};

use super::retry::{RETRY_STATUSES, backoff, retry_after};
use super::{Attempt, Fetcher, with_timings};
use crate::control::polite::{Answer, Signal};
use crate::result::{Fetched, trace};

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
    /// Free retries end here: the first pushback plus `--max-retry-wait`.
    free_until: Option<Instant>,
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
    /// The method may be retried at all.
    idempotent: bool,
    /// Counted retries are left.
    charged_left: bool,
    /// Free retries must start by then (`None`: no pushback yet).
    free_until: Option<Instant>,
    /// `--max-retry-wait`.
    max_wait: Duration,
}

impl Budget {
    /// Whether a failed attempt (connect, timeout) is retried.
    pub(super) fn retries_error(&self) -> bool {
        self.idempotent && self.charged_left
    }

    /// Whether an answer with `status` and `headers` is retried, and how.
    pub(super) fn retries_status(&self, status: u16, headers: &HeaderMap) -> Option<Retry> {
        if !self.idempotent || !RETRY_STATUSES.contains(&status) {
            return None;
        }
        let after = retry_after(headers);
        match after {
            Some(wait) if wait > self.max_wait => None,
            Some(wait)
                if matches!(status, 429 | 503)
                    && self
                        .free_until
                        .is_none_or(|end| Instant::now() + wait <= end) =>
            {
                Some(Retry { after, free: true })
            }
            _ if self.charged_left => Some(Retry { after, free: false }),
            _ => None,
        }
    }
}

/// What an answer with `status` and `headers` says about its host: a 429
/// or a 503 pushes back (for its `Retry-After`, capped by the caller), any
/// other answer is good.
pub(super) fn answer(status: u16, headers: &HeaderMap) -> Answer {
    match status {
        429 | 503 => Answer::Pushback {
            pause: retry_after(headers),
        },
        _ => Answer::Good,
    }
}

impl Fetcher {
    /// Makes the next attempt of the fetch of `uri` (see
    /// [`crate::input::url::check`]); `url` is the URL as given, which names
    /// a saved file, and `repeat` how many entries before it had the same
    /// URL (each repeat is saved under a name of its own). Returns the
    /// result, or when to step again, and what the answer (if one came) said
    /// about the host. Waits only for a `--rate` slot. Never panics on
    /// anything a server sends.
    pub fn step(
        &self,
        uri: &Uri,
        url: &str,
        repeat: u32,
        state: &mut FetchState,
    ) -> (Stepped, Option<Signal>) {
        if let Some(pacer) = &self.pacer
            && !self.wait_until(pacer.reserve())
        {
            // Interrupted before this attempt: the last one stands, or the
            // entry never started.
            let result = match state.failed.take() {
                Some(f) => self.finish(f, state, uri, url),
                None => Fetched::not_started(),
            };
            return (Stepped::Done(result), None);
        }
        state.attempts += 1;
        state.start.get_or_insert_with(Instant::now);
        let budget = Budget {
            idempotent: self.config.method.is_idempotent(),
            charged_left: state.charged < self.config.retries,
            free_until: state.free_until,
            max_wait: self.config.max_retry_wait,
        };
        let sent = Instant::now();
        // A part file is continued with --continue, or when an earlier
        // attempt of this run left it.
        let resume = self.config.resume || state.attempts > 1;
        let (attempt, answer) = self.attempt(uri, url, repeat, &budget, resume);
        let mut signal = answer.map(|answer| Signal { sent, answer });
        let stepped = match attempt {
            Attempt::Done(f) => Stepped::Done(self.finish(with_timings(f), state, uri, url)),
            Attempt::Retry(f, Retry { after, free }) => {
                let f = with_timings(f);
                if free {
                    state
                        .free_until
                        .get_or_insert(sent + self.config.max_retry_wait);
                } else {
                    state.charged += 1;
                }
                let wait = after.unwrap_or_else(|| backoff(state.charged.max(1)));
                // A 429 that did not say for how long: leave the host alone
                // for as long as this entry waits.
                if f.status == Some(429)
                    && let Some(Signal {
                        answer:
                            Answer::Pushback {
                                pause: pause @ None,
                            },
                        ..
                    }) = &mut signal
                {
                    *pause = Some(wait);
                }
                let so_far = self.finish(f.clone(), state, uri, url);
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
                state.failed = Some(f);
                Stepped::Again {
                    at: Instant::now() + wait,
                    so_far,
                }
            }
        };
        (stepped, signal)
    }

    /// Fetches `uri` to the end, sleeping between attempts on this thread
    /// (the pool parks between steps instead; see [`Fetcher::step`]).
    pub fn fetch(&self, uri: &Uri, url: &str, repeat: u32) -> Fetched {
        let mut state = FetchState::default();
        loop {
            match self.step(uri, url, repeat, &mut state).0 {
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
        if let Some(err) = &mut fetched.error {
            err.message = self.scrub(&err.message, uri, url);
        }
        fetched
    }
}
