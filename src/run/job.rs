//! The job step: what a worker does with one entry, one attempt at a time.
//! Between attempts the job is parked in the pool, holding no worker.

use std::sync::Arc;
use std::time::Instant;

use crate::control::host::{Begin, Controller};
use crate::fetch::{FetchState, Fetcher, Stepped};
use crate::input::Entry;
use crate::pool::{Step, StopHandle};
use crate::report::inflight::InFlight;
use crate::result::{ErrorKind, FetchError, Fetched};

/// One entry's job: the entry, and where its fetch stands between attempts.
///
/// Boxed in the pool ([`Job::new`]): its queue and results channel have a
/// slot for every job they can hold (3 to 5 per worker), all written when
/// they are made, and a worker's frames move jobs by value. A pointer there
/// instead of the job's few hundred bytes keeps both small.
pub(super) struct Job {
    pub(super) entry: Entry,
    pub(super) state: FetchState,
    /// The entry's [`host_key`], made once (on the input thread): the pool
    /// keys the job by it and politeness files each answer under it.
    host: Option<String>,
}

impl Job {
    /// A job for `entry`, not yet tried.
    pub(super) fn new(entry: Entry) -> Box<Self> {
        Box::new(Job {
            host: entry.target.as_ref().ok().and_then(host_key),
            entry,
            state: FetchState::default(),
        })
    }

    /// The pool's key of this job: its host (see [`host_key`]).
    pub(super) fn key(&self) -> Option<String> {
        self.host.clone()
    }
}

/// Everything a worker needs to step a job, shared by all workers.
pub(super) struct JobStep {
    pub(super) fetcher: Fetcher,
    pub(super) in_flight: Arc<InFlight>,
    /// With `--fail-fast`: skips the rest after the first failure. The job
    /// itself applies it, so with one worker not even the next queued job
    /// starts after a failure.
    pub(super) fail_fast: Option<StopHandle>,
    pub(super) controller: Arc<Controller>,
}

impl JobStep {
    /// Makes the next attempt of `job`, if the host controller lets it go
    /// (a host given up ends it at once); tells the controller what its
    /// answer said.
    pub(super) fn step(&self, job: &mut Job) -> Step<Fetched> {
        let entry = &job.entry;
        let uri = match &entry.target {
            Ok(uri) => uri,
            Err(reason) => {
                return Step::Done(Fetched {
                    error: Some(FetchError::new(ErrorKind::InvalidUrl, reason.clone())),
                    ..Fetched::default()
                });
            }
        };
        if job.state.is_new() {
            self.in_flight.start(entry);
        }
        let _trace = crate::result::trace::scope(entry.seq);
        let held = crate::pool::held();
        let host = job.host.as_deref();
        let begin = host.map_or(Begin::Go, |h| self.controller.begin(h));
        let stepped = match begin {
            Begin::GivenUp(status) => {
                crate::pool::start_unused();
                Stepped::Done(
                    self.fetcher
                        .given_up(uri, &entry.url, &mut job.state, status, held),
                )
            }
            Begin::Go => {
                let out = self.in_flight.request();
                let attempts = job.state.attempts();
                let (stepped, signal) =
                    self.fetcher
                        .step(uri, &entry.url, entry.repeat, &mut job.state, held);
                drop(out);
                // A retry past its deadline sends nothing: it took no
                // slot of its host's rate or of --rate.
                if job.state.attempts() == attempts {
                    crate::pool::start_unused();
                }
                let given_up = host.is_some_and(|h| self.controller.end(h, signal));
                match stepped {
                    // Its host was given up: the retry ends now, without
                    // waiting for the time the last answer asked for.
                    Stepped::Again { at, so_far } if given_up => {
                        let now = Instant::now();
                        job.state.resume_early(at, now);
                        Stepped::Again { at: now, so_far }
                    }
                    stepped => stepped,
                }
            }
        };
        match stepped {
            Stepped::Again { at, so_far } => Step::Again { at, so_far },
            Stepped::Done(fetched) => {
                self.in_flight.finish(entry.seq);
                if !fetched.ok
                    && let Some(stop) = &self.fail_fast
                {
                    stop.skip_rest();
                }
                Step::Done(fetched)
            }
        }
    }
}

/// `host:port` of a URL, the unit of `--per-host`.
fn host_key(uri: &http::Uri) -> Option<String> {
    let (host, port) = crate::input::uri::host_port(uri)?;
    let mut key = String::with_capacity(host.len() + 6);
    key.push_str(host);
    key.make_ascii_lowercase();
    key.push(':');
    key.push_str(itoa_u16(port, &mut [0; 5]));
    Some(key)
}

/// `n` in decimal, written into `buf` (formatting machinery is the larger
/// part of a key's cost, made once per URL).
fn itoa_u16(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_are_lowercase_host_and_port() {
        let key = |s: &str| host_key(&s.parse().unwrap());
        assert_eq!(
            key("http://Example.COM/x").as_deref(),
            Some("example.com:80")
        );
        assert_eq!(key("https://a/").as_deref(), Some("a:443"));
        assert_eq!(key("http://a:8/").as_deref(), Some("a:8"));
        assert_eq!(key("http://a:65535/").as_deref(), Some("a:65535"));
        assert_eq!(key("http://[::1]:10000/").as_deref(), Some("[::1]:10000"));
        assert_eq!(key("ftp://a/"), None);
    }
}
