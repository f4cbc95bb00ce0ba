//! fetchpool: fetch many URLs at once on a fixed pool of threads.
//!
//! Data flows one way: [`input`] reads entries lazily on the pool's feeder
//! thread -> a bounded job queue -> [`pool`] workers, each calling [`fetch`]
//! with one shared HTTP agent -> a results channel -> [`run`] on the main
//! thread, where [`collect`] prints each result ([`output`]) in completion
//! order, drives the [`progress`] display and adds up the [`summary`].
//!
//! The pool is generic and usable on its own; the binary is glue.

#![forbid(unsafe_code)]

pub mod accept;
pub mod cli;
pub mod collect;
pub mod fetch;
pub mod input;
pub mod lock;
pub mod output;
pub mod pace;
pub mod pool;
pub mod progress;
pub mod redact;
pub mod result;
pub mod save;
pub mod signals;
pub mod summary;
pub mod uri;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::Config;
use crate::collect::{Collector, Flow};
use crate::fetch::Fetcher;
use crate::input::{Entries, Entry, Filter, InputStats, Source};
use crate::output::Printer;
use crate::pool::{Finished, Pool, Results, StopHandle};
use crate::progress::{Progress, ProgressStyle};
use crate::result::{ErrorKind, FetchError, Fetched};

/// Stack of each worker: fetching needs little (TLS included), and a
/// thousand workers must stay cheap. Only touched pages cost memory.
const WORKER_STACK: usize = 256 * 1024;

/// How a run ended, as a process exit code (`docs/contract.md`, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every entry ok.
    Ok,
    /// One or more entries failed or never started.
    Failures,
    /// A usage or input error.
    Usage,
    /// Interrupted by a signal; the code is 128 + its number.
    Signal(u8),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failures => 1,
            Exit::Usage => 2,
            Exit::Signal(code) => code,
        }
    }
}

/// Runs fetchpool with a validated configuration.
pub fn run(config: Config) -> Result<Exit> {
    let started = Instant::now();
    if let Some(dir) = &config.request.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--output-dir: cannot create {}", dir.display()))?;
    }
    let accept = config.request.accept.clone();
    let asked = (config.request.sha256, config.request.output_dir.is_some());
    // Never sent on: dropping `cancel` interrupts backoff waits and body reads.
    let (cancel, cancelled) = crossbeam_channel::bounded::<()>(0);
    let fetcher = Fetcher::new(config.request, config.rate, cancelled)?;
    let mut collector = Collector::new(
        Printer::stdout(config.format),
        config.write_failed.as_deref(),
        config.failures_only,
        asked,
    )?;
    let stats = Arc::new(InputStats::default());
    let filter = Filter {
        dedup: config.dedup,
        shard: config.shard,
    };
    if config.progress != ProgressStyle::Off {
        input::count_ahead(&config.sources, filter, &stats);
    }
    let input_can_block = config.sources.iter().any(Source::can_block);
    let entries = Entries::new(config.sources, filter, Arc::clone(&stats));
    let mut progress = Progress::start(config.progress, Arc::clone(&stats));

    let mut pool = Pool::new(config.workers)
        .queue(config.queue)
        .thread_name("fetchpool-worker")
        .stack_size(WORKER_STACK);
    if let Some(limit) = config.per_host {
        pool = pool.per_key(limit, |e: &Entry| e.target.as_ref().ok().and_then(host_key));
    }
    let stop = pool.stop_handle();
    let interrupted = {
        let stop = stop.clone();
        let mut cancel = Some(cancel);
        signals::install(move || {
            // Start nothing new. Input that cannot block (arguments, regular
            // files) is still read, so the summary and --write-failed account
            // for every entry; a pipe might never end, so it is not.
            if input_can_block {
                stop.stop();
            } else {
                stop.skip_rest();
            }
            drop(cancel.take());
        })
        .context("installing signal handlers")?
    };

    // The job itself applies --fail-fast, so with one worker not even the
    // next queued job starts after a failure.
    let job = {
        let in_flight = progress.in_flight();
        let fail_fast = config.fail_fast.then(|| stop.clone());
        move |entry: &Entry| -> Fetched {
            let uri = match &entry.target {
                Ok(uri) => uri,
                Err(reason) => {
                    return Fetched {
                        error: Some(FetchError::new(ErrorKind::InvalidUrl, reason.clone())),
                        ..Fetched::default()
                    };
                }
            };
            if let Some(f) = &in_flight {
                f.start(entry.seq, &entry.url);
            }
            let fetched = fetcher.fetch(uri, &entry.url);
            if let Some(f) = &in_flight {
                f.finish(entry.seq);
            }
            if !fetched.ok
                && let Some(stop) = &fail_fast
            {
                stop.skip_rest();
            }
            fetched
        }
    };
    let mut results: Box<dyn Results<Item = Finished<Entry, Fetched>>> = if config.ordered {
        Box::new(
            pool.ordered(entries, job, None)
                .context("starting worker threads")?,
        )
    } else {
        Box::new(
            pool.as_completed(entries, job)
                .context("starting worker threads")?,
        )
    };

    while let Some(done) = results.next() {
        let flow = collector.take(&done.job, done.outcome, &progress, results.ready())?;
        if flow == Flow::StdoutClosed {
            quit_quietly(&stop);
        }
    }
    let (summary, flow) = collector.finish()?;
    if flow == Flow::StdoutClosed {
        quit_quietly(&stop);
    }
    progress.finish();
    let wall = started.elapsed();

    if let Some(err) = crate::lock::lock(&stats.error).take() {
        anyhow::bail!("{err}");
    }
    let report = summary.report(wall, &accept);
    if let Some(path) = &config.summary_json {
        write_summary_json(path, &report)?;
    }
    if stats.entries.load(Ordering::SeqCst) == 0 && interrupted.exit_code().is_none() {
        eprintln!("fetchpool: error: no URLs in the input");
        return Ok(Exit::Usage);
    }
    if config.summary {
        eprint!("{}", report.text());
    }
    Ok(match interrupted.exit_code() {
        Some(code) => Exit::Signal(code),
        None if summary.any_failed() => Exit::Failures,
        None => Exit::Ok,
    })
}

/// `host:port` of a URL, the unit of `--per-host`.
fn host_key(uri: &http::Uri) -> Option<String> {
    let (host, port) = uri::host_port(uri)?;
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// A closed stdout (`fetchpool ... | head -1`) ends the run quietly, at
/// once: nothing more can be printed, so requests in flight are abandoned
/// rather than waited for.
fn quit_quietly(stop: &StopHandle) -> ! {
    stop.stop();
    std::process::exit(0);
}

fn write_summary_json(path: &Path, report: &summary::Report) -> Result<()> {
    let mut file = collect::create_file(path)?;
    serde_json::to_writer_pretty(&mut file, report)?;
    writeln!(file)?;
    file.flush()
        .with_context(|| format!("writing {}", path.display()))
}
