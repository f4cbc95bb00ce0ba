//! The main thread's side of shutdown: what the first signal does, saying
//! so once, and giving up (the grace over, a second signal, a closed
//! stdout) with every entry still accounted for.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender, bounded};

use super::JobResults;
use crate::input::Entry;
use crate::pool::{Outcome, StopHandle};
use crate::report::collect::Collector;
use crate::report::inflight::InFlight;
use crate::report::progress::Progress;
use crate::result::{ErrorKind, FetchError, Fetched};
use crate::run::signals::{self, Interrupted};
use crate::store::save::Unfinished;

/// When giving up on a run, how long to wait for a worker that is about to
/// hand over a result it already has.
const SETTLE: Duration = Duration::from_millis(100);

/// The run's stop, as the main thread sees it.
pub(super) struct Shutdown {
    interrupted: Interrupted,
    stop: StopHandle,
    /// Whether the input may block (a pipe): then a stop ends reading it.
    input_can_block: bool,
    /// Whether the interruption was said already.
    announced: bool,
    /// Temporary files being written, removed when giving up.
    unfinished: Unfinished,
}

/// Never sent on: disconnected when the run stops waiting (`cancel`). The
/// fetcher holds it. (Waits between attempts are parked jobs, which the
/// pool's stop ends at the first signal.)
pub(super) struct Stopping {
    pub(super) cancel: Receiver<()>,
}

impl Shutdown {
    /// Installs the signal handlers: from here on a signal stops the run in
    /// order, whenever it comes. `grace` is how long requests in flight may
    /// go on after the first.
    pub(super) fn install(
        grace: Duration,
        stop: StopHandle,
        input_can_block: bool,
        unfinished: Unfinished,
    ) -> Result<(Self, Stopping)> {
        let (cancel_tx, cancel) = bounded::<()>(0);
        let interrupted = signals::install(
            grace,
            OnSignal {
                stop: stop.clone(),
                input_can_block,
                cancel: Some(cancel_tx),
            },
        )
        .context("installing signal handlers")?;
        let shutdown = Shutdown {
            interrupted,
            stop,
            input_can_block,
            announced: false,
            unfinished,
        };
        Ok((shutdown, Stopping { cancel }))
    }

    /// Says once, on the progress display, that a signal came.
    pub(super) fn announce(&mut self, progress: &Progress, in_flight: &InFlight) {
        if !self.announced
            && let Some(code) = self.interrupted.exit_code()
        {
            self.announced = true;
            progress.stopping(code, in_flight.len());
        }
    }

    /// Whether to stop waiting for the requests in flight.
    pub(super) fn must_give_up(&self, stdout_closed: bool) -> bool {
        stdout_closed || self.interrupted.give_up()
    }

    /// The exit code of the signal that interrupted the run, if one did.
    pub(super) fn exit_code(&self) -> Option<u8> {
        self.interrupted.exit_code()
    }

    /// Stops waiting: results already finished are reported as they are,
    /// entries queued or parked as never started, and entries still in
    /// flight as cancelled, so each entry read is accounted for exactly
    /// once. Worker threads still running are left behind; the process is
    /// about to exit.
    pub(super) fn give_up(
        &self,
        results: JobResults,
        in_flight: &InFlight,
        collector: &mut Collector,
        progress: &Progress,
    ) -> Result<()> {
        if self.input_can_block {
            self.stop.stop();
        }
        // Taken first: an entry that finishes meanwhile is in both, and its
        // real result wins.
        let running = in_flight.snapshot();
        let mut done: Vec<(Entry, Outcome<Fetched>)> = results
            .abandon(SETTLE)
            .into_iter()
            .map(|f| (f.job.entry, f.outcome))
            .collect();
        let seen: HashSet<u64> = done.iter().map(|(e, _)| e.seq).collect();
        for (elapsed, entry) in running {
            if seen.contains(&entry.seq) {
                continue;
            }
            let fetched = Fetched {
                error: Some(FetchError::new(
                    ErrorKind::Cancelled,
                    "still in flight when the run stopped waiting",
                )),
                attempts: 1,
                elapsed,
                ..Fetched::default()
            };
            done.push((entry, Outcome::Done(fetched)));
        }
        // In input order: right for --ordered, and easiest to read for all.
        done.sort_by_key(|(e, _)| e.seq);
        for (entry, outcome) in done {
            collector.take(&entry, outcome, progress, true)?;
        }
        self.unfinished.remove_all();
        Ok(())
    }
}

/// What the first signal does, on the signal thread.
struct OnSignal {
    stop: StopHandle,
    input_can_block: bool,
    cancel: Option<Sender<()>>,
}

impl signals::OnSignal for OnSignal {
    fn stop(&mut self, _signal: i32) {
        // Start nothing new. Input that cannot block (arguments, regular
        // files) is still read, so the summary and --write-failed account
        // for every entry; a pipe might never end, so it is not.
        if self.input_can_block {
            self.stop.stop();
        } else {
            self.stop.skip_rest();
        }
    }

    fn give_up(&mut self) {
        drop(self.cancel.take());
    }
}
