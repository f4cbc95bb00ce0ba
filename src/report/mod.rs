//! The main thread's half of a run: what happens to each result.
//! [`collect`] takes each finished entry and hands it to the result lines
//! on stdout ([`stdout`]), the other files a run writes ([`files`]), the
//! [`progress`] display on stderr and the [`summary`]. [`inflight`] keeps
//! the entries being fetched, which the display names and a run that gives
//! up reports as cancelled. With `-v`, [`verbose`] prints what each fetch
//! did on stderr; [`stderr`] writes there without ever panicking.

pub mod collect;
pub mod files;
pub mod inflight;
pub mod progress;
pub mod stderr;
pub mod stdout;
pub mod summary;
pub mod verbose;

use std::path::PathBuf;

use progress::ProgressStyle;
use stdout::{Fields, OutputFormat};

/// How a run reports its results.
#[derive(Debug)]
pub struct ReportConfig {
    /// How result lines are printed.
    pub format: OutputFormat,
    /// The optional fields every result line carries.
    pub fields: Fields,
    /// Print only failures.
    pub failures_only: bool,
    /// `--write-failed`: the file for the URLs that did not complete ok.
    pub write_failed: Option<PathBuf>,
    /// `--summary-json`: the file for the JSON summary.
    pub summary_json: Option<PathBuf>,
    /// The progress display.
    pub progress: ProgressStyle,
    /// Time between two plain progress lines (and the longest a URL is in
    /// flight before it is named as stuck).
    pub progress_interval: std::time::Duration,
    /// Print the summary on stderr.
    pub summary: bool,
    /// `-v`: trace every request on stderr.
    pub verbose: bool,
}
