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
            self.list_failed(entry)?;
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
        self.list_failed(entry)?;
        Ok(Flow::Continue)
    }

    /// Flushes everything; returns the totals and the output files, which
    /// still take the summary.
    pub fn finish(mut self) -> Result<(Summary, Outputs, Flow)> {
        let flow = stdout_flow(self.printer.flush())?;
        if let Some(w) = &mut self.outputs.write_failed {
            w.flush().context("writing the --write-failed file")?;
        }
        Ok((self.summary, self.outputs, flow))
    }

    fn list_failed(&mut self, entry: &Entry) -> Result<()> {
        if let Some(w) = &mut self.outputs.write_failed {
            w.write_all(&entry.raw)
                .and_then(|()| w.write_all(b"\n"))
                .context("writing the --write-failed file")?;
        }
        Ok(())
    }
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
