//! What a fetch in steps keeps between its attempts, so that the wait
//! between two attempts is spent parked in the pool rather than on a
//! sleeping worker ([`Fetcher::step`](super::Fetcher::step)); whether and
//! how an answer is retried; and what each answer said about its host, for
//! politeness ([`crate::control::polite`]).
//!
//! Retries of a pushback that says when to come back (a 429, or a 503 with
//! `Retry-After`) are *free*: they do not count against `--retries`, since
//! the host told us when, but they end `--max-retry-wait` after the entry's
//! first such answer, with that answer as the result.

use std::time::{Duration, Instant};

use ureq::http::HeaderMap;

use super::config::RequestConfig;
use super::net::transport;
use super::retry::{RETRY_STATUSES, retry_after};
use crate::control::polite::Answer;
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
    /// Free retries end here: the first pushback plus `--max-retry-wait`.
    pub(super) free_until: Option<Instant>,
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
    /// What the next attempt of a fetch at `state`, made as `config` says,
    /// may spend.
    pub(super) fn new(config: &RequestConfig, state: &FetchState) -> Self {
        Budget {
            idempotent: config.method.is_idempotent(),
            charged_left: state.charged < config.retries,
            free_until: state.free_until,
            max_wait: config.max_retry_wait,
        }
    }

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
