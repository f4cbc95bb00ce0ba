//! The job step: what a worker does with one entry, one attempt at a time.
//! Between attempts the job is parked in the pool, holding no worker.

use std::sync::Arc;

use crate::control::polite::Polite;
use crate::fetch::{FetchState, Fetcher, Stepped};
use crate::input::Entry;
use crate::pool::{Step, StopHandle};
use crate::report::inflight::InFlight;
use crate::result::{ErrorKind, FetchError, Fetched};

/// One entry's job: the entry, and where its fetch stands between attempts.
pub(super) struct Job {
    pub(super) entry: Entry,
    pub(super) state: FetchState,
}

impl Job {
    /// A job for `entry`, not yet tried.
    pub(super) fn new(entry: Entry) -> Self {
        Job {
            entry,
            state: FetchState::default(),
        }
    }

    /// The pool's key of this job: its host (see [`host_key`]).
    pub(super) fn key(&self) -> Option<String> {
        self.entry.target.as_ref().ok().and_then(host_key)
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
    pub(super) polite: Arc<Polite>,
}

impl JobStep {
    /// Makes the next attempt of `job`; tells the host's politeness what
    /// its answer said.
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
        let (stepped, signal) = self
            .fetcher
            .step(uri, &entry.url, entry.repeat, &mut job.state);
        if let Some(signal) = signal
            && let Some(host) = host_key(uri)
        {
            self.polite.observe(&host, signal);
        }
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
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}
