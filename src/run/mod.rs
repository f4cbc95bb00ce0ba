//! The wiring of one run: set up the pool, signals, outputs and fetcher,
//! drain the results on the main thread, and finish (summary, exit code).
//!
//! It owns the main-thread side of shutdown ([`signals`], the grace period,
//! giving up) and the registry of entries in flight ([`inflight`]), and
//! sizes the pool to the machine ([`limits`]).

pub mod inflight;
pub mod limits;
pub mod signals;

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Sender, bounded};

use crate::cli::Config;
use crate::control::polite::Polite;
use crate::fetch::{FetchState, Fetcher, Stepped};
use crate::input::{Entries, Entry, Filter, InputStats, Source};
use crate::pool::{Finished, Next, Outcome, Pool, Results, Step, StopHandle};
use crate::report::collect::{Collector, Flow};
use crate::report::files::Outputs;
use crate::report::progress::{Progress, ProgressStyle};
use crate::report::stdout::Printer;
use crate::result::{ErrorKind, FetchError, Fetched};
use crate::run::inflight::InFlight;
use crate::store::names::Namer;

/// How often the main thread looks up from waiting for results: at a
/// signal, at a closed stdout.
const TICK: Duration = Duration::from_millis(100);
/// When giving up on a run, how long to wait for a worker that is about to
/// hand over a result it already has.
const SETTLE: Duration = Duration::from_millis(100);

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
pub fn run(mut config: Config) -> Result<Exit> {
    let started = Instant::now();
    if config.verbose {
        crate::report::verbose::install();
    }
    let workers = fit_workers(&config);
    config.request.workers = workers;
    let mut pool = Pool::new(workers)
        .queue(config.queue)
        .thread_name("fetchpool-worker")
        .stack_size(WORKER_STACK);
    // Every job is keyed by its host, for politeness; --per-host adds a limit.
    let key = |job: &Job| job.entry.target.as_ref().ok().and_then(host_key);
    pool = match config.per_host {
        Some(limit) => pool.per_key(limit, key),
        None => pool.keyed(key),
    };
    let stop = pool.stop_handle();
    let polite = Arc::new(Polite::new(pool.gate(), config.request.max_retry_wait));

    // Signal handlers before anything else: from here on a signal stops
    // the run in order, whenever it comes.
    let (stopping_tx, stopping) = bounded::<()>(0);
    let (cancel_tx, cancel) = bounded::<()>(0);
    let input_can_block = config.sources.iter().any(Source::can_block);
    let interrupted = signals::install(
        // Requests in flight may finish for the grace, or one attempt's
        // deadline if shorter.
        config.grace.min(config.request.timeout),
        OnSignal {
            stop: stop.clone(),
            input_can_block,
            stopping: Some(stopping_tx),
            cancel: Some(cancel_tx),
        },
    )
    .context("installing signal handlers")?;

    let outputs = Outputs::open(
        config.write_failed.as_deref(),
        config.summary_json.as_deref(),
        config.request.output_dir.as_deref(),
        &config.sources,
    )?;
    let accept = config.request.accept.clone();
    let asked = (config.request.sha256, config.request.output_dir.is_some());
    let names = config.request.names;
    let fetcher = Fetcher::new(config.request, config.rate, stopping, cancel)?;
    let mut collector = Collector::new(
        Printer::stdout(config.format),
        outputs,
        config.failures_only,
        asked,
    );
    let stats = Arc::new(InputStats::default());
    let filter = Filter {
        dedup: config.dedup,
        shard: config.shard,
    };
    if config.progress != ProgressStyle::Off {
        crate::input::count_ahead(&config.sources, filter, &stats);
    }
    let mut entries = Entries::new(config.sources, filter, Arc::clone(&stats));
    if asked.1 {
        entries = entries.claiming(Box::new(Namer::new(names)));
    }
    let entries = entries.map(|entry| Job {
        entry,
        state: FetchState::default(),
    });
    let in_flight = Arc::new(InFlight::default());
    let mut progress = Progress::start(
        config.progress,
        config.progress_interval,
        Arc::clone(&stats),
        Arc::clone(&in_flight),
    );

    // One attempt per step: between attempts the job is parked in the pool,
    // holding no worker. The job itself applies --fail-fast, so with one
    // worker not even the next queued job starts after a failure.
    let job = {
        let in_flight = Arc::clone(&in_flight);
        let fail_fast = config.fail_fast.then(|| stop.clone());
        let polite = Arc::clone(&polite);
        move |job: &mut Job| -> Step<Fetched> {
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
                in_flight.start(entry);
            }
            let _trace = crate::result::trace::scope(entry.seq);
            let (stepped, signal) = fetcher.step(uri, &entry.url, entry.repeat, &mut job.state);
            if let Some(signal) = signal
                && let Some(host) = host_key(uri)
            {
                polite.observe(&host, signal);
            }
            match stepped {
                Stepped::Again { at, so_far } => Step::Again { at, so_far },
                Stepped::Done(fetched) => {
                    in_flight.finish(entry.seq);
                    if !fetched.ok
                        && let Some(stop) = &fail_fast
                    {
                        stop.skip_rest();
                    }
                    Step::Done(fetched)
                }
            }
        }
    };
    let mut results: Box<dyn Results<Item = Finished<Job, Fetched>>> = if config.ordered {
        Box::new(
            pool.ordered_steps(entries, job, None)
                .context("starting worker threads")?,
        )
    } else {
        Box::new(
            pool.as_completed_steps(entries, job)
                .context("starting worker threads")?,
        )
    };

    let mut announced = false;
    let mut stdout_closed = false;
    let mut announce = |progress: &Progress| {
        if !announced && let Some(code) = interrupted.exit_code() {
            announced = true;
            progress.stopping(code, in_flight.len());
        }
    };
    loop {
        let taken = match results.next_within(TICK) {
            Next::Ready(done) => {
                collector.take(&done.job.entry, done.outcome, &progress, results.ready())
            }
            Next::Waiting => Ok(if collector.stdout_closed() {
                Flow::StdoutClosed
            } else {
                Flow::Continue
            }),
            Next::End => break,
        };
        let flow = match taken {
            Ok(flow) => flow,
            Err(e) => {
                // stdout broken (a full disk): nothing more can be shown, so
                // do not wait for requests in flight either.
                drop(results.abandon(Duration::ZERO));
                return Err(e);
            }
        };
        stdout_closed = flow == Flow::StdoutClosed;
        announce(&progress);
        if stdout_closed || interrupted.give_up() {
            if input_can_block {
                stop.stop();
            }
            give_up(results, &in_flight, &mut collector, &progress)?;
            break;
        }
    }
    // A signal that came as the last results did is still said.
    announce(&progress);
    let (summary, mut outputs, flow) = collector.finish()?;
    stdout_closed |= flow == Flow::StdoutClosed;
    progress.finish();
    let wall = started.elapsed();

    if let Some(err) = crate::lock::lock(&stats.error).take() {
        anyhow::bail!("{err}");
    }
    let mut report = summary.report(wall, &accept);
    report.count_skipped(&stats);
    report.pushed_back = polite.pushed_back();
    outputs.write_summary(&report)?;
    if stdout_closed {
        // `fetchpool ... | head -1`: nobody reads on; end quietly.
        return Ok(Exit::Ok);
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

/// The worker count that fits under the open-files limit (raised first),
/// with one line on stderr when it is fewer than asked for.
fn fit_workers(config: &Config) -> NonZeroUsize {
    let asked = config.workers.get();
    let limit = limits::raise_open_files();
    let fit = limits::workers_that_fit(limit, asked, config.request.output_dir.is_some());
    if fit < asked {
        eprintln!(
            "fetchpool: the open-files limit ({}) fits {fit} requests in flight, not {asked}: \
             running {fit} workers (raise the limit with `ulimit -n`)",
            limit.unwrap_or(0)
        );
    }
    NonZeroUsize::new(fit).unwrap_or(config.workers)
}

/// Stops waiting: results already finished are reported as they are,
/// entries queued or parked as never started, and entries still in flight
/// as cancelled, so each entry read is accounted for exactly once. Worker
/// threads still running are left behind; the process is about to exit.
fn give_up(
    results: Box<dyn Results<Item = Finished<Job, Fetched>>>,
    in_flight: &InFlight,
    collector: &mut Collector,
    progress: &Progress,
) -> Result<()> {
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
    crate::store::save::remove_unfinished();
    Ok(())
}

/// One entry's job: the entry, and where its fetch stands between attempts.
struct Job {
    entry: Entry,
    state: FetchState,
}

/// What the first signal does, on the signal thread.
struct OnSignal {
    stop: StopHandle,
    input_can_block: bool,
    stopping: Option<Sender<()>>,
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
        drop(self.stopping.take());
    }

    fn give_up(&mut self) {
        drop(self.cancel.take());
    }
}

/// `host:port` of a URL, the unit of `--per-host`.
fn host_key(uri: &http::Uri) -> Option<String> {
    let (host, port) = crate::input::uri::host_port(uri)?;
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}
