//! The wiring of one run: set up the pool, signals, outputs and fetcher,
//! drain the results on the main thread, and finish (summary, exit code).
//!
//! It owns the job step each worker runs (`job`), the main-thread side of
//! shutdown ([`signals`], the grace period, giving up: `shutdown`), and
//! sizes the pool to the machine ([`limits`]).

mod job;
pub mod limits;
mod shutdown;
pub mod signals;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, bounded};

use crate::cli::Config;
use crate::control::host::Controller;
use crate::control::limit::LimitConfig;
use crate::fetch::Fetcher;
use crate::input::{Entries, InputConfig, InputError, InputStats, Source};
use crate::pool::{Finished, Next, Pool, PoolConfig, Results};
use crate::report::collect::{Collector, Flow};
use crate::report::files::Outputs;
use crate::report::inflight::InFlight;
use crate::report::progress::{Progress, ProgressStyle};
use crate::report::stdout::Printer;
use crate::result::Fetched;
use crate::store::names::{Layout, Namer};
use crate::store::save::Unfinished;
use job::{Job, JobStep};
use shutdown::{Shutdown, Stopping};

/// How often the main thread looks up from waiting for results: at a
/// signal, at a closed stdout.
const TICK: Duration = Duration::from_millis(100);

/// Stack of each worker: fetching needs little (TLS included), and a
/// thousand workers must stay cheap. Only touched pages cost memory.
const WORKER_STACK: usize = 256 * 1024;

/// The context of an error starting the pool's threads.
const SPAWN: &str = "starting worker threads";

/// The results of a run, in completion or input order.
type JobResults = Box<dyn Results<Item = Finished<Box<Job>, Fetched>>>;

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

/// Runs fetchpool with a validated configuration: setup, drain, finish.
pub fn run(mut config: Config) -> Result<Exit> {
    let started = Instant::now();
    if config.report.verbose {
        crate::report::verbose::install();
    }
    let (first, ceiling) = size_pool(&config);
    config.pool.workers = ceiling;
    let (mut run, results) = Run::setup(config, first)?;
    let stdout_closed = run.drain(results)?;
    run.finish(started, stdout_closed)
}

/// The main thread's half of a run, from setup to finish.
struct Run {
    collector: Collector,
    progress: Progress,
    in_flight: Arc<InFlight>,
    shutdown: Shutdown,
    stats: Arc<InputStats>,
    /// The read error that ended the input early, if one did.
    input_error: Receiver<InputError>,
    controller: Arc<Controller>,
    /// Print the summary on stderr.
    summary: bool,
}

impl Run {
    /// Builds the pool, installs the signal handlers (before anything else
    /// starts), opens the outputs, builds the fetcher and starts the
    /// workers (`first` of them; more as `-j auto` needs them).
    fn setup(config: Config, first: NonZeroUsize) -> Result<(Self, JobResults)> {
        let Config {
            input,
            pool: sizes,
            fetch,
            report,
            fail_fast,
            grace,
            auto,
        } = config;
        let auto = auto.then(|| LimitConfig {
            max: sizes.per_key.map_or(sizes.workers.get(), NonZeroUsize::get),
            ..LimitConfig::default()
        });
        let pool = build_pool(&sizes, first, auto, fetch.rate);
        let stop = pool.stop_handle();
        let controller = Arc::new(Controller::new(
            pool.gate(),
            fetch.request.max_retry_wait,
            auto,
        ));
        let input_can_block = input.sources.iter().any(Source::can_block);
        let unfinished = Unfinished::default();
        let (shutdown, Stopping { cancel }) = Shutdown::install(
            // Requests in flight may finish for the grace, or one
            // attempt's deadline if shorter.
            grace.min(fetch.request.timeout),
            stop.clone(),
            input_can_block,
            unfinished.clone(),
        )?;
        let outputs = Outputs::open(
            report.write_failed.as_deref(),
            report.summary_json.as_deref(),
            fetch.store.dir.as_deref(),
            &input.sources,
        )?;
        // Saved bodies get their names in input order, as entries are read.
        let names = fetch.store.dir.is_some().then_some(fetch.store.names);
        let fetcher = Fetcher::new(fetch, sizes.workers, cancel, unfinished)?;
        let printer = Printer::stdout(report.format);
        let collector = Collector::new(printer, outputs, report.failures_only, report.fields);
        let stats = Arc::new(InputStats::default());
        if report.progress != ProgressStyle::Off {
            crate::input::count_ahead(&input.sources, input.filter, &stats);
        }
        let (jobs, input_error) = jobs(input, names, &stats);
        let in_flight = Arc::new(InFlight::default());
        let progress = Progress::start(
            report.progress,
            report.progress_interval,
            Arc::clone(&stats),
            Arc::clone(&in_flight),
        );
        let job = JobStep {
            fetcher,
            in_flight: Arc::clone(&in_flight),
            fail_fast: fail_fast.then(|| stop.clone()),
            controller: Arc::clone(&controller),
        };
        let step = move |j: &mut Box<Job>| job.step(j);
        let results: JobResults = if sizes.ordered {
            Box::new(pool.ordered_steps(jobs, step, None).context(SPAWN)?)
        } else {
            Box::new(pool.as_completed_steps(jobs, step).context(SPAWN)?)
        };
        let run = Run {
            collector,
            progress,
            in_flight,
            shutdown,
            stats,
            input_error,
            controller,
            summary: report.summary,
        };
        Ok((run, results))
    }

    /// Reports results as they come, until the last, a closed stdout, or
    /// giving up after a signal. Returns whether stdout was closed.
    fn drain(&mut self, mut results: JobResults) -> Result<bool> {
        loop {
            let taken = match results.next_within(TICK) {
                Next::Ready(done) => {
                    // An entry can end outside its job (one waiting to retry
                    // when the run stops ends with its last answer): either
                    // way it is no longer in flight, and giving up must not
                    // report it again.
                    self.in_flight.finish(done.job.entry.seq);
                    self.collector.take(
                        &done.job.entry,
                        done.outcome,
                        &self.progress,
                        results.ready(),
                    )
                }
                Next::Waiting => Ok(if self.collector.stdout_closed() {
                    Flow::StdoutClosed
                } else {
                    Flow::Continue
                }),
                Next::End => return Ok(false),
            };
            let flow = match taken {
                Ok(flow) => flow,
                Err(e) => {
                    // stdout broken (a full disk): nothing more can be shown,
                    // so do not wait for requests in flight either.
                    drop(results.abandon(Duration::ZERO));
                    return Err(e);
                }
            };
            let stdout_closed = flow == Flow::StdoutClosed;
            self.shutdown.announce(&self.progress, &self.in_flight);
            if self.shutdown.must_give_up(stdout_closed) {
                self.shutdown.give_up(
                    results,
                    &self.in_flight,
                    &mut self.collector,
                    &self.progress,
                )?;
                return Ok(stdout_closed);
            }
        }
    }

    /// Ends the run: the summary (on stderr and `--summary-json`) and the
    /// exit code.
    fn finish(mut self, started: Instant, mut stdout_closed: bool) -> Result<Exit> {
        // A signal that came as the last results did is still said.
        self.shutdown.announce(&self.progress, &self.in_flight);
        let finished = self.collector.finish()?;
        let (summary, mut outputs) = (finished.summary, finished.outputs);
        stdout_closed |= finished.flow == Flow::StdoutClosed;
        self.progress.finish();
        let wall = started.elapsed();

        if let Ok(err) = self.input_error.try_recv() {
            return Err(err.into());
        }
        let mut report = summary.report(wall);
        report.count_skipped(&self.stats);
        let decisions = self.controller.decisions();
        report.pushed_back = decisions.pushed_back;
        report.given_up = decisions.given_up;
        report.concurrency = decisions.concurrency;
        let summary_written = outputs.write_summary(&report);
        // `fetchpool ... | head -1`: nobody reads on; end quietly, but with
        // the exit code of what happened: entries the reader left behind
        // were never started (or never read), so `set -o pipefail` sees a
        // failure.
        if self.summary && !stdout_closed {
            crate::report::stderr::text(&report.text());
        }
        // An output file that could not be written in full (a full disk)
        // is an error, said after the results and the summary, which still
        // show what the run did.
        if let Some(err) = finished.write_failed_error {
            return Err(err);
        }
        summary_written?;
        let unread = stdout_closed && !self.stats.done.load(std::sync::atomic::Ordering::SeqCst);
        Ok(match self.shutdown.exit_code() {
            Some(code) => Exit::Signal(code),
            None if summary.any_failed() || unread => Exit::Failures,
            None => Exit::Ok,
        })
    }
}

/// The jobs of the run: the entries read, named for saving in the
/// `names` layout if bodies are saved, up to the first read error, which
/// the main thread receives at the end.
fn jobs(
    input: InputConfig,
    names: Option<Layout>,
    stats: &Arc<InputStats>,
) -> (
    impl Iterator<Item = Box<Job>> + Send + 'static,
    Receiver<InputError>,
) {
    let (error_tx, error) = bounded::<InputError>(1);
    let mut entries = Entries::new(input.sources, input.filter, Arc::clone(stats));
    if let Some(layout) = names {
        entries = entries.claiming(Box::new(Namer::new(layout)));
    }
    let jobs = entries.map_while(move |read| match read {
        Ok(entry) => Some(Job::new(entry)),
        Err(e) => {
            let _ = error_tx.try_send(e);
            None
        }
    });
    (jobs, error)
}

/// The pool, sized and keyed: every job is keyed by its host, for
/// the host controller; `--per-host` and `-j auto` add a limit.
fn build_pool(
    sizes: &PoolConfig,
    first: NonZeroUsize,
    auto: Option<LimitConfig>,
    rate: Option<f64>,
) -> Pool<Box<Job>> {
    let mut pool = Pool::new(first)
        .grow_to(sizes.workers)
        .queue(sizes.queue)
        .thread_name("fetchpool-worker")
        .stack_size(WORKER_STACK);
    // --rate: jobs parked until their slot, no worker sleeping on one.
    if let Some(interval) = rate.and_then(|r| Duration::try_from_secs_f64(1.0 / r).ok()) {
        pool = pool.pace_all(interval);
    }
    // -j auto: every host starts at the law's first limit.
    let first_limit = auto.and_then(|a| NonZeroUsize::new(a.initial.min(a.max)));
    // The pool's jobs are boxed (see `Job`), and its key function takes one.
    #[allow(clippy::borrowed_box)]
    let key = |job: &Box<Job>| job.key();
    match first_limit.or(sizes.per_key) {
        Some(limit) => pool.per_key(limit, key),
        None => pool.keyed(key),
    }
}

/// The workers to start with and the most there may be: `-j N` starts N
/// (fewer if they do not fit under the open-files limit, raised first,
/// with one line on stderr); `-j auto` starts the default count and may
/// grow up to the machine's ceiling (open files, memory; one line on
/// stderr when open files bound it below its own).
fn size_pool(config: &Config) -> (NonZeroUsize, NonZeroUsize) {
    let asked = config.pool.workers.get();
    let limit = limits::raise_open_files();
    let fit = limits::workers_that_fit(limit, asked, config.fetch.store.dir.is_some());
    if config.auto {
        if fit < asked {
            crate::report::stderr::line(format_args!(
                "fetchpool: the open-files limit ({}) fits {fit} requests in flight: \
                 -j auto runs at most {fit} workers (raise the limit with `ulimit -n`)",
                limit.unwrap_or(0)
            ));
        }
        let ceiling = limits::auto_ceiling(fit, limits::workers_in_memory());
        let first = crate::cli::default_workers().min(ceiling);
        let nz = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        return (nz(first), nz(ceiling));
    }
    if fit < asked {
        crate::report::stderr::line(format_args!(
            "fetchpool: the open-files limit ({}) fits {fit} requests in flight, not {asked}: \
             running {fit} workers (raise the limit with `ulimit -n`)",
            limit.unwrap_or(0)
        ));
    }
    let fixed = NonZeroUsize::new(fit).unwrap_or(config.pool.workers);
    (fixed, fixed)
}
