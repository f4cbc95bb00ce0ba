//! The main thread's side of a run: each finished entry is counted in the
//! summary and the progress display, printed, and listed for
//! `--write-failed` if it did not succeed.

use std::io::{self, Write};

use anyhow::{Context, Result};

use crate::input::Entry;
use crate::pool::Outcome;
use crate::report::files::Outputs;
use crate::report::progress::Progress;
use crate::report::stdout::{Fields, Printer, Record};
use crate::report::summary::Summary;
use crate::result::{ErrorKind, FetchError, Fetched};
use crate::text::redact;

/// Whether the run can go on printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// stdout was closed (`| head`): nothing more can be printed.
    StdoutClosed,
}

/// Collects finished entries on the main thread.
pub struct Collector {
    printer: Printer,
    summary: Summary,
    outputs: Outputs,
    failures_only: bool,
    /// Why `--write-failed` could not be written to its end (a full disk),
    /// if so: the run goes on, every result is still printed, and the
    /// error is reported once the summary is out.
    write_failed_error: Option<anyhow::Error>,
    /// The optional fields each record carries.
    fields: Fields,
}

impl Collector {
    /// A collector printing with `printer` and writing `outputs`.
    pub fn new(printer: Printer, outputs: Outputs, failures_only: bool, fields: Fields) -> Self {
        Collector {
            printer,
            summary: Summary::default(),
            outputs,
            failures_only,
            write_failed_error: None,
            fields,
        }
    }

    /// Handles one finished entry. Output is flushed unless `more_ready`
    /// (another result is waiting), so readers see lines as they come while
    /// a busy run still writes in large blocks; not at all into /dev/null.
    pub fn take(
        &mut self,
        entry: &Entry,
        outcome: Outcome<Fetched>,
        progress: &Progress,
        more_ready: bool,
    ) -> Result<Flow> {
        let fetched = match outcome {
            Outcome::Panicked(msg) => Fetched {
                error: Some(FetchError::new(ErrorKind::Internal, format!("bug: {msg}"))),
                ..Fetched::default()
            },
            Outcome::Done(f) => f,
            Outcome::Skipped => return self.not_started(entry),
        };
        let error_kind = fetched.error.as_ref().map(|e| e.kind);
        if fetched.kept_part {
            self.summary.add_partial_kept();
        }
        if fetched.unchanged {
            self.summary.add_unchanged();
        }
        self.summary.add(
            fetched.ok,
            fetched.status,
            error_kind,
            fetched.bytes,
            fetched.elapsed,
        );
        progress.record(!fetched.ok);
        if !fetched.ok {
            self.list_failed(entry);
        } else if self.failures_only {
            return Ok(Flow::Continue);
        }
        let record = record(entry, &fetched, self.fields);
        let printer = &mut self.printer;
        let printed = if printer.is_terminal() {
            progress.suspend(|| printer.print(&record))
        } else {
            printer.print(&record)
        };
        stdout_flow(printed.and_then(|()| {
            if more_ready {
                Ok(())
            } else {
                printer.flush_if_followed()
            }
        }))
    }

    /// Whether stdout was closed by its reader.
    pub fn stdout_closed(&self) -> bool {
        self.printer.is_closed()
    }

    /// An entry that never started: counted, listed, not printed.
    pub fn not_started(&mut self, entry: &Entry) -> Result<Flow> {
        self.summary.add_not_started();
        self.list_failed(entry);
        Ok(Flow::Continue)
    }

    /// Flushes everything; returns the totals, the output files (which
    /// still take the summary) and why `--write-failed` is incomplete, if
    /// it is.
    pub fn finish(mut self) -> Result<Collected> {
        let flow = stdout_flow(self.printer.flush())?;
        if let Some(w) = &mut self.outputs.write_failed
            && let Err(e) = w.flush()
        {
            self.write_failed_error.get_or_insert(write_failed_error(e));
        }
        Ok(Collected {
            summary: self.summary,
            outputs: self.outputs,
            flow,
            write_failed_error: self.write_failed_error,
        })
    }

    /// Lists `entry` in `--write-failed`. The first failure to write stops
    /// the listing (the file cannot be trusted past it) but not the run.
    fn list_failed(&mut self, entry: &Entry) {
        let Some(w) = &mut self.outputs.write_failed else {
            return;
        };
        if let Err(e) = w.write_all(&entry.raw).and_then(|()| w.write_all(b"\n")) {
            self.write_failed_error = Some(write_failed_error(e));
            self.outputs.write_failed = None;
        }
    }
}

/// What a finished collection hands back to the run.
pub struct Collected {
    /// The totals.
    pub summary: Summary,
    /// The output files, which still take the summary.
    pub outputs: Outputs,
    /// Whether stdout was closed by its reader.
    pub flow: Flow,
    /// Why `--write-failed` lacks entries, if it does.
    pub write_failed_error: Option<anyhow::Error>,
}

fn write_failed_error(e: io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("the --write-failed file lacks entries: writing it failed")
}

fn stdout_flow(result: io::Result<()>) -> Result<Flow> {
    match result {
        Ok(()) => Ok(Flow::Continue),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Flow::StdoutClosed),
        Err(e) => Err(e).context("writing results to stdout"),
    }
}

/// The printed form of a result.
fn record<'a>(entry: &'a Entry, f: &'a Fetched, fields: Fields) -> Record<'a> {
    Record {
        seq: entry.seq,
        url: redact::url(&entry.url),
        ok: f.ok,
        status: f.status,
        bytes: f.bytes,
        wire_bytes: f.wire_bytes,
        elapsed_ms: (f.elapsed.as_secs_f64() * 1e6).round() / 1e3,
        waited_ms: (f.waited.as_secs_f64() * 1e6).round() / 1e3,
        attempts: f.attempts,
        final_url: f.final_url.as_deref(),
        error: f.error.as_ref(),
        sha256: fields.sha256.then_some(f.sha256.as_deref()),
        saved_to: fields.saved_to.then_some(f.saved_to.as_deref()),
        timings: f.timings.map(Into::into),
        unchanged: f.unchanged,
        resumed_from: f.resumed_from,
    }
}
