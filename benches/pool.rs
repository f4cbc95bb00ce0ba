//! Scenario (f): the pool alone. No-op jobs per second through `fetchpool::pool`.
//!
//! Registered in Cargo.toml as `[[bench]] name = "pool" harness = false`, so
//! `cargo bench --bench pool` runs this `main`. Plain `std::time` timing: each
//! configuration is run once to warm up, then `POOL_BENCH_RUNS` times (default 5);
//! the table shows the median. Knobs: `POOL_BENCH_JOBS` (default 2,000,000),
//! `POOL_BENCH_RUNS`, `POOL_BENCH_WORKERS` (comma list, default `1,2,4,8`),
//! `POOL_BENCH_MAX_SECS` (default 5): a configuration whose warm-up shows that one run
//! would take longer than this gets fewer jobs (never under 200,000; see the jobs
//! column), so a slow pool still finishes the bench in bounded time.
//! Target: >= 1,000,000 jobs/s with 4 workers, completion order.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use fetchpool::pool::{Outcome, Pool};

#[derive(Clone, Copy)]
enum Mode {
    AsCompleted,
    Ordered,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::AsCompleted => "as_completed",
            Mode::Ordered => "ordered",
        }
    }
}

/// One timed run: pushes `jobs` no-op jobs through a fresh pool and consumes every
/// result. Pool start-up and the joining of its threads are part of the time.
fn run_once(workers: NonZeroUsize, jobs: u64, mode: Mode) -> Duration {
    let start = Instant::now();
    let (mut count, mut sum) = (0u64, 0u64);
    let mut tally = |index: u64, outcome: Outcome<u64>| {
        match outcome {
            Outcome::Done(v) => {
                debug_assert_eq!(v, index);
                sum = sum.wrapping_add(v);
            }
            Outcome::Panicked(msg) => panic!("no-op job {index} panicked: {msg}"),
            Outcome::Skipped => panic!("no-op job {index} was skipped"),
        }
        count += 1;
    };
    match mode {
        Mode::AsCompleted => {
            let results = Pool::new(workers)
                .as_completed(0..jobs, |x: &u64| black_box(*x))
                .expect("start the pool");
            for f in results {
                tally(f.index, f.outcome);
            }
        }
        Mode::Ordered => {
            let results = Pool::new(workers)
                .ordered(0..jobs, |x: &u64| black_box(*x), None)
                .expect("start the pool");
            for f in results {
                tally(f.index, f.outcome);
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(count, jobs, "every job yields exactly one result");
    assert_eq!(
        sum,
        jobs.wrapping_mul(jobs.wrapping_sub(1)) / 2,
        "results are the jobs' own"
    );
    elapsed
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: cannot parse {v:?}")),
        Err(_) => default,
    }
}

fn main() {
    // `cargo bench` passes `--bench` (and maybe a filter); nothing here needs them.
    let jobs: u64 = env_or("POOL_BENCH_JOBS", 2_000_000);
    let runs: usize = env_or::<usize>("POOL_BENCH_RUNS", 5).max(1);
    let workers: Vec<NonZeroUsize> = std::env::var("POOL_BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2,4,8".to_owned())
        .split(',')
        .map(|w| {
            w.trim()
                .parse()
                .expect("POOL_BENCH_WORKERS: comma list of integers >= 1")
        })
        .collect();
    let max_secs: f64 = env_or("POOL_BENCH_MAX_SECS", 5.0);
    let cpus = std::thread::available_parallelism().map_or(0, NonZeroUsize::get);

    println!(
        "pool micro-benchmark: up to {jobs} no-op jobs per run, median of {runs} runs (after 1 warm-up), {cpus} CPUs"
    );
    println!();
    println!("| mode | workers | jobs/run | median s | min s | max s | jobs/s (median) | ns/job |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");

    let mut configs: Vec<(Mode, NonZeroUsize)> =
        workers.iter().map(|&w| (Mode::AsCompleted, w)).collect();
    if let Some(&four) = workers.iter().find(|w| w.get() == 4).or(workers.first()) {
        configs.push((Mode::Ordered, four));
    }

    let mut target_line = None;
    for (mode, w) in configs {
        let warm = jobs.min(200_000);
        let warm_secs = run_once(w, warm, mode).as_secs_f64().max(1e-9);
        let fits = (warm as f64 / warm_secs * max_secs) as u64;
        let n = jobs.min(fits.max(warm));
        let secs: Vec<f64> = (0..runs)
            .map(|_| run_once(w, n, mode).as_secs_f64())
            .collect();
        let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = secs.iter().copied().fold(0.0, f64::max);
        let med = median(secs);
        let rate = n as f64 / med;
        println!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} |",
            mode.name(),
            w,
            n,
            med,
            min,
            max,
            rate,
            med * 1e9 / n as f64
        );
        if matches!(mode, Mode::AsCompleted) && w.get() == 4 {
            target_line = Some(rate);
        }
    }
    if let Some(rate) = target_line {
        println!();
        println!(
            "target (f): >= 1,000,000 jobs/s with 4 workers (as_completed): {:.0} jobs/s -> {}",
            rate,
            if rate >= 1_000_000.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
