//! Tests of the pool as a whole: concurrency, backpressure, one result per
//! job, panics, stop, the ordered window and per-key limits.

use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

fn n(v: usize) -> NonZeroUsize {
    NonZeroUsize::new(v).unwrap()
}

/// Counts jobs in flight and remembers the highest count seen.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn runs_exactly_n_jobs_at_once() {
    let workers = 4;
    let barrier = Arc::new(Barrier::new(workers));
    let seen = Arc::new(InFlight::default());
    let (b, s) = (Arc::clone(&barrier), Arc::clone(&seen));
    let results: Vec<_> = Pool::new(n(workers))
        .as_completed(0..40u64, move |_| {
            s.enter();
            // Each round of 4 only passes when 4 jobs run at once.
            b.wait();
            s.leave();
        })
        .unwrap()
        .collect();
    assert_eq!(results.len(), 40);
    assert_eq!(seen.max.load(Ordering::SeqCst), workers);
}

#[test]
fn names_its_workers() {
    let names: Vec<_> = Pool::new(n(2))
        .thread_name("fetchpool-worker")
        .as_completed(0..20u64, |_| thread::current().name().map(str::to_owned))
        .unwrap()
        .filter_map(|f| match f.outcome {
            Outcome::Done(name) => name,
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 20);
    assert!(
        names
            .iter()
            .all(|n| n == "fetchpool-worker-1" || n == "fetchpool-worker-2")
    );
}

#[test]
fn producer_blocks_when_queue_is_full() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Barrier::new(2));
    let p = Arc::clone(&pulled);
    let jobs = (0..100u64).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let g = Arc::clone(&gate);
    let mut results = Pool::new(n(1))
        .queue(n(3))
        .as_completed(jobs, move |&i| {
            if i == 0 {
                g.wait(); // hold the only worker until the test looked
                g.wait();
            }
            i
        })
        .unwrap();
    gate.wait(); // job 0 is running
    // The feeder can pull job 0, fill the queue with 3, and hold one more
    // in its hand while blocked on send: never more than 5.
    let bound = 1 + 3 + 1;
    // Wait until the feeder has pulled everything it can (it never gets
    // past the bound while job 0 holds the worker).
    while pulled.load(Ordering::SeqCst) < bound {
        thread::yield_now();
    }
    for _ in 0..1000 {
        thread::yield_now();
    }
    assert_eq!(pulled.load(Ordering::SeqCst), bound);
    gate.wait();
    let mut count = 0;
    for f in results.by_ref() {
        assert_eq!(f.outcome, Outcome::Done(f.index));
        count += 1;
    }
    assert_eq!(count, 100);
    assert_eq!(pulled.load(Ordering::SeqCst), 100);
}

#[test]
fn every_job_yields_exactly_one_result() {
    for workers in [1, 3, 8] {
        let mut seen: Vec<u64> = Pool::new(n(workers))
            .as_completed(0..1000u64, |&i| i * 2)
            .unwrap()
            .map(|f| {
                assert_eq!(f.outcome, Outcome::Done(f.job * 2));
                assert_eq!(f.index, f.job);
                f.index
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }
}

#[test]
fn empty_input_ends_at_once() {
    let results: Vec<_> = Pool::new(n(4))
        .as_completed(std::iter::empty::<u64>(), |&i| i)
        .unwrap()
        .collect();
    assert!(results.is_empty());
}

#[test]
fn a_panicking_job_becomes_an_error_and_the_worker_lives_on() {
    let results: Vec<_> = Pool::new(n(1))
        .as_completed(0..5u64, |&i| {
            if i == 2 {
                panic!("job {i} exploded");
            }
            i
        })
        .unwrap()
        .collect();
    assert_eq!(results.len(), 5);
    for f in results {
        if f.index == 2 {
            assert_eq!(f.outcome, Outcome::Panicked("job 2 exploded".into()));
        } else {
            assert_eq!(f.outcome, Outcome::Done(f.index));
        }
    }
}

#[test]
fn ordered_yields_in_input_order() {
    let order: Vec<u64> = Pool::new(n(4))
        .ordered(
            0..200u64,
            |&i| {
                // Later jobs finish first within each batch.
                for _ in 0..(200 - i) * 50 {
                    std::hint::black_box(());
                }
                i
            },
            None,
        )
        .unwrap()
        .map(|f| f.index)
        .collect();
    assert_eq!(order, (0..200).collect::<Vec<_>>());
}

#[test]
fn ordered_window_bounds_the_reorder_buffer() {
    // Job 0 is held until the test releases it; with a window of 5 the
    // feeder must not pull more than 5 jobs past the one not yet yielded.
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let jobs = (0..50u64).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let gate = Arc::new(Barrier::new(2));
    let g = Arc::clone(&gate);
    let mut results = Pool::new(n(4))
        .ordered(
            jobs,
            move |&i| {
                if i == 0 {
                    g.wait();
                }
                i
            },
            Some(n(5)),
        )
        .unwrap();
    while pulled.load(Ordering::SeqCst) < 5 {
        thread::yield_now();
    }
    for _ in 0..1000 {
        thread::yield_now();
    }
    // 5 credits taken, plus at most one job pulled and waiting for a credit.
    assert!(pulled.load(Ordering::SeqCst) <= 6);
    gate.wait();
    let order: Vec<u64> = results.by_ref().map(|f| f.index).collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>());
}

#[test]
fn stop_skips_queued_jobs_and_stops_reading() {
    let gate = Arc::new(Barrier::new(2));
    let g = Arc::clone(&gate);
    let mut results = Pool::new(n(1))
        .queue(n(4))
        .as_completed(0..u64::MAX, move |&i| {
            if i == 0 {
                g.wait();
                g.wait();
            }
            i
        })
        .unwrap();
    gate.wait();
    results.stop_handle().stop();
    gate.wait();
    let all: Vec<_> = results.by_ref().collect();
    assert_eq!(
        all.iter().filter(|f| f.outcome == Outcome::Done(0)).count(),
        1
    );
    // The feeder's skipped job may be reported before job 0 finishes.
    assert!(
        all.iter()
            .filter(|f| f.index != 0)
            .all(|f| f.outcome == Outcome::Skipped)
    );
    // Queue of 4, plus one in the feeder's hand: the input was not drained.
    assert!(all.len() <= 6, "{} results", all.len());
}

#[test]
fn dropping_results_early_ends_every_thread() {
    // More results than the results channel holds, none of them read:
    // dropping must not wait for ever on workers blocked sending.
    let mut results = Pool::new(n(2))
        .queue(n(2))
        .as_completed(0..1000u64, |&i| i)
        .unwrap();
    assert!(results.next().is_some());
    while !results.ready() {
        thread::yield_now();
    }
    drop(results);
}

#[test]
fn skip_rest_still_accounts_for_every_job() {
    // Job 0 holds the only worker until the rest are to be skipped; the
    // handle exists before the run, as a signal handler would take it.
    let gate = Arc::new(Barrier::new(2));
    let g = Arc::clone(&gate);
    let pool = Pool::new(n(1)).queue(n(2));
    let handle = pool.stop_handle();
    let mut completed = pool
        .as_completed(0..500u64, move |&i| {
            if i == 0 {
                g.wait();
                g.wait();
            }
            i
        })
        .unwrap();
    gate.wait();
    handle.skip_rest();
    gate.wait();
    let results: Vec<_> = completed.by_ref().collect();
    assert_eq!(results.len(), 500);
    for f in &results {
        let expected = if f.index == 0 {
            Outcome::Done(0)
        } else {
            Outcome::Skipped
        };
        assert_eq!(f.outcome, expected, "job {}", f.index);
    }
}

#[test]
fn stop_before_the_run_starts_nothing() {
    let pool = Pool::new(n(2));
    pool.stop_handle().skip_rest();
    let results: Vec<_> = pool.as_completed(0..50u64, |&i| i).unwrap().collect();
    assert_eq!(results.len(), 50);
    assert!(results.iter().all(|f| f.outcome == Outcome::Skipped));
}

#[test]
fn per_key_limit_holds_without_blocking_other_keys() {
    // 4 workers, limit 1 per key. Key "slow" jobs wait on a barrier that
    // only the last "fast" job opens: if a worker blocked on the busy
    // "slow" key instead of parking it, the fast jobs could not all run.
    let workers = 4;
    let per_key: Arc<Mutex<HashMap<String, Arc<InFlight>>>> = Arc::default();
    let fast_done = Arc::new(AtomicUsize::new(0));
    let (pk, fd) = (Arc::clone(&per_key), Arc::clone(&fast_done));
    let jobs: Vec<(String, u64)> = (0..60)
        .map(|i| (if i % 3 == 0 { "slow" } else { "fast" }.to_owned(), i))
        .collect();
    let results: Vec<_> = Pool::new(n(workers))
        .per_key(n(1), |(key, _): &(String, u64)| Some(key.clone()))
        .as_completed(jobs, move |(key, _)| {
            let counter = Arc::clone(crate::lock::lock(&pk).entry(key.clone()).or_default());
            counter.enter();
            if key == "slow" {
                while fd.load(Ordering::SeqCst) < 40 {
                    thread::yield_now();
                }
            } else {
                fd.fetch_add(1, Ordering::SeqCst);
            }
            counter.leave();
        })
        .unwrap()
        .collect();
    assert_eq!(results.len(), 60);
    assert!(results.iter().all(|f| f.outcome == Outcome::Done(())));
    for (key, counter) in crate::lock::lock(&per_key).iter() {
        assert_eq!(counter.max.load(Ordering::SeqCst), 1, "key {key}");
    }
}

#[test]
fn a_full_parking_lot_is_refilled_and_loses_no_job() {
    // More jobs of one busy key than the parking lot holds (1,024): the
    // workers wait for room, are woken as a quarter of it frees, and every
    // job still runs once, never more than the key's limit at once.
    let seen = Arc::new(InFlight::default());
    let s = Arc::clone(&seen);
    let results: Vec<_> = Pool::new(n(8))
        .per_key(n(2), |_: &u64| Some("one".to_owned()))
        .as_completed(0..5_000u64, move |_| {
            s.enter();
            thread::yield_now();
            s.leave();
        })
        .unwrap()
        .map(|f| f.index)
        .collect();
    let mut indexes = results;
    indexes.sort_unstable();
    assert_eq!(indexes, (0..5_000).collect::<Vec<u64>>());
    assert_eq!(seen.max.load(Ordering::SeqCst), 2);
}

#[test]
fn abandon_hands_back_every_job_but_the_running_ones() {
    // Job 0 blocks its worker until the test ends; abandon must not wait
    // for it, and must hand back every other job exactly once.
    let (release, blocked) = crossbeam_channel::bounded::<()>(0);
    let (running_tx, running) = crossbeam_channel::bounded::<()>(1);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let jobs = (0..20u64).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let results: Box<dyn Results<Item = Finished<u64, u64>>> = Box::new(
        Pool::new(n(2))
            .queue(n(4))
            .per_key(n(1), |&i: &u64| (i % 2 == 1).then(|| "odd".to_owned()))
            .as_completed(jobs, move |&i| {
                if i == 0 {
                    let _ = running_tx.send(());
                    let _ = blocked.recv();
                }
                i
            })
            .unwrap(),
    );
    let mut results = results;
    // Job 0 must be running, not just taken by its worker: one taken and
    // not yet started is skipped, and so handed back.
    running.recv().unwrap();
    // Wait until some job besides 0 has finished, so the run is under way.
    loop {
        match results.next_within(Duration::from_secs(60)) {
            Next::Ready(f) => {
                assert_ne!(f.index, 0);
                break;
            }
            Next::Waiting => continue,
            Next::End => panic!("ended with job 0 blocked"),
        }
    }
    let rest = results.abandon(Duration::from_millis(100));
    let mut seen: Vec<u64> = rest.iter().map(|f| f.index).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), rest.len(), "a job came back twice");
    assert!(!seen.contains(&0), "the running job was reported");
    // Read from the input = the one consumed + those handed back + job 0.
    assert_eq!(pulled.load(Ordering::SeqCst), 1 + rest.len() + 1);
    drop(release);
}

#[test]
fn next_within_reports_waiting_then_end() {
    let (go, gate) = crossbeam_channel::bounded::<()>(0);
    let mut results = Pool::new(n(1))
        .as_completed(0..1u64, move |&i| {
            let _ = gate.recv();
            i
        })
        .unwrap();
    assert!(matches!(
        results.next_within(Duration::from_millis(10)),
        Next::Waiting
    ));
    drop(go);
    assert!(matches!(
        results.next_within(Duration::from_secs(60)),
        Next::Ready(_)
    ));
    assert!(matches!(
        results.next_within(Duration::from_secs(60)),
        Next::End
    ));
}
