//! Tests of keys closed from inside the jobs ([`Gate`]) and of jobs done in
//! steps ([`Step::Again`]): parked, not blocking, started when due, and
//! accounted for when the run stops. The times asserted are lower bounds
//! the pool guarantees (nothing starts before its time), never upper ones.

use super::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn n(v: usize) -> NonZeroUsize {
    NonZeroUsize::new(v).unwrap()
}

/// A job: its key and, for `Again` tests, how many times it ran.
#[derive(Debug, Clone)]
struct Job {
    key: &'static str,
    id: u64,
    runs: u32,
}

fn jobs(keys: &[&'static str]) -> Vec<Job> {
    (0..)
        .zip(keys)
        .map(|(id, &key)| Job { key, id, runs: 0 })
        .collect()
}

#[test]
fn a_paused_key_parks_its_jobs_while_other_keys_go_on() {
    // a, b, a, b, ...: the first `a` pauses `a` for a second. Two workers
    // would be stuck on `a` within three jobs if paused jobs held them.
    let keys: Vec<&str> = (0..40)
        .map(|i| if i % 2 == 0 { "a" } else { "b" })
        .collect();
    // One at a time per key, so no other `a` starts before the first one
    // (whichever a worker admits first) pauses it.
    let pool = Pool::new(n(2)).per_key(n(1), |j: &Job| Some(j.key.to_owned()));
    let gate = pool.gate();
    let until: Arc<Mutex<Option<Instant>>> = Arc::default();
    type Starts = Vec<(u64, &'static str, Instant)>;
    let started: Arc<Mutex<Starts>> = Arc::default();
    let first_a: Arc<Mutex<Option<u64>>> = Arc::default();
    let (u, s, f) = (
        Arc::clone(&until),
        Arc::clone(&started),
        Arc::clone(&first_a),
    );
    let done: Vec<_> = pool
        .as_completed(jobs(&keys), move |j: &Job| {
            s.lock().unwrap().push((j.id, j.key, Instant::now()));
            if j.key == "a" && f.lock().unwrap().get_or_insert(j.id) == &j.id {
                let t = Instant::now() + Duration::from_secs(1);
                *u.lock().unwrap() = Some(t);
                gate.pause("a", t);
            }
            j.id
        })
        .unwrap()
        .map(|f| f.outcome)
        .collect();
    assert_eq!(done.len(), 40);
    let until = until.lock().unwrap().unwrap();
    let started = started.lock().unwrap();
    let first_a = first_a.lock().unwrap().unwrap();
    // Order of starts (the first a aside): every b, then the a's held back.
    let order: Vec<&str> = started
        .iter()
        .filter(|(id, _, _)| *id != first_a)
        .map(|&(_, k, _)| k)
        .collect();
    assert!(
        order[..20].iter().all(|&k| k == "b") && order[20..].iter().all(|&k| k == "a"),
        "{order:?}"
    );
    for &(id, key, at) in started.iter().filter(|(id, _, _)| *id != first_a) {
        if key == "a" {
            assert!(at >= until, "job {id} of the paused key started early");
        }
    }
}

#[test]
fn again_parks_the_job_without_holding_its_worker() {
    // One worker: job 0 asks to run again later; the other nine run
    // meanwhile, and the run does not end until job 0 is done.
    let again_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let a = Arc::clone(&again_at);
    let results: Vec<_> = Pool::new(n(1))
        .as_completed_steps(jobs(&["k"; 10]), move |j: &mut Job| {
            j.runs += 1;
            if j.id == 0 && j.runs == 1 {
                let at = Instant::now() + Duration::from_millis(300);
                *a.lock().unwrap() = Some(at);
                return Step::Again {
                    at,
                    so_far: (j.id, j.runs, Instant::now()),
                };
            }
            Step::Done((j.id, j.runs, Instant::now()))
        })
        .unwrap()
        .collect();
    let order: Vec<u64> = results.iter().map(|f| f.index).collect();
    assert_eq!(order, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
    let last = results.last().unwrap();
    let Outcome::Done((0, runs, at)) = last.outcome else {
        panic!("{:?}", last.outcome);
    };
    assert_eq!(runs, 2);
    assert_eq!(last.job.runs, 2, "the job kept its state");
    assert!(
        at >= again_at.lock().unwrap().unwrap(),
        "ran again too early"
    );
}

#[test]
fn an_interval_spaces_the_starts_of_its_key_only() {
    let keys: Vec<&str> = (0..12)
        .map(|i| if i < 4 { "paced" } else { "free" })
        .collect();
    let pool = Pool::new(n(4)).keyed(|j: &Job| Some(j.key.to_owned()));
    let gate = pool.gate();
    let starts: Arc<Mutex<Vec<(&'static str, Instant)>>> = Arc::default();
    let s = Arc::clone(&starts);
    // Set before the first job of the key is queued (on the feeder).
    let interval = Duration::from_millis(100);
    let input = jobs(&keys).into_iter().inspect(move |j| {
        if j.id == 0 {
            gate.set_interval("paced", Some(interval));
        }
    });
    let n_done = pool
        .as_completed(input, move |j: &Job| {
            s.lock().unwrap().push((j.key, Instant::now()));
        })
        .unwrap()
        .count();
    assert_eq!(n_done, 12);
    let starts = starts.lock().unwrap();
    let paced: Vec<Instant> = starts
        .iter()
        .filter(|(k, _)| *k == "paced")
        .map(|&(_, t)| t)
        .collect();
    assert_eq!(paced.len(), 4);
    // The pool spaces the hand-outs; the job notes its start a little later.
    for w in paced.windows(2) {
        let apart = w[1] - w[0];
        assert!(
            apart >= interval - interval / 10,
            "paced starts {apart:?} apart"
        );
    }
    // The free key was never held behind the paced one.
    let last_free = starts.iter().rposition(|(k, _)| *k == "free").unwrap();
    let third_paced = starts
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k == "paced")
        .nth(2)
        .unwrap()
        .0;
    assert!(
        last_free < third_paced,
        "free jobs waited for the paced key: {starts:?}"
    );
}

#[test]
fn a_stop_ends_parked_jobs_with_their_results_so_far() {
    let pool = Pool::new(n(2)).per_key(n(1), |j: &Job| Some(j.key.to_owned()));
    let stop = pool.stop_handle();
    let gate = pool.gate();
    // The first x job to run (either worker may admit its x first) comes
    // back in a minute; the rest of key "x" is paused as long.
    let first_x: Arc<Mutex<Option<u64>>> = Arc::default();
    let f = Arc::clone(&first_x);
    let mut results = pool
        .as_completed_steps(jobs(&["x", "x", "y", "x", "y"]), move |j: &mut Job| {
            if j.key == "x" && f.lock().unwrap().get_or_insert(j.id) == &j.id {
                let at = Instant::now() + Duration::from_secs(60);
                gate.pause("x", at);
                return Step::Again {
                    at,
                    so_far: "so far",
                };
            }
            Step::Done("done")
        })
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        match results.next_within(Duration::from_secs(60)) {
            Next::Ready(f) => got.push((f.job.id, f.outcome)),
            other => panic!("{other:?}"),
        }
    }
    // Both y jobs ran; the x jobs wait for a minute.
    assert!(
        got.iter()
            .all(|(id, o)| [2, 4].contains(id) && *o == Outcome::Done("done"))
    );
    // The worker that admitted the first x job may not have called it yet:
    // stopped before, it would skip a job that never ran.
    let deadline = Instant::now() + Duration::from_secs(30);
    while first_x.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.stop();
    let started = Instant::now();
    let mut rest: Vec<_> = results.map(|f| (f.job.id, f.outcome)).collect();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the stop waited for the pause"
    );
    rest.sort_by_key(|(id, _)| *id);
    let first_x = first_x.lock().unwrap().unwrap();
    let expected: Vec<_> = [0, 1, 3]
        .into_iter()
        .map(|id| match id == first_x {
            true => (id, Outcome::Done("so far")),
            false => (id, Outcome::Skipped),
        })
        .collect();
    assert_eq!(rest, expected);
}

#[test]
fn abandon_hands_back_parked_jobs_once() {
    let pool = Pool::new(n(1)).keyed(|j: &Job| Some(j.key.to_owned()));
    let gate = pool.gate();
    let mut results: Box<dyn Results<Item = Finished<Job, &str>>> = Box::new(
        pool.as_completed_steps(jobs(&["x", "x", "y"]), move |j: &mut Job| {
            if j.id == 0 {
                let at = Instant::now() + Duration::from_secs(60);
                gate.pause("x", at);
                return Step::Again {
                    at,
                    so_far: "so far",
                };
            }
            Step::Done("done")
        })
        .unwrap(),
    );
    match results.next_within(Duration::from_secs(60)) {
        Next::Ready(f) => assert_eq!((f.job.id, f.outcome), (2, Outcome::Done("done"))),
        other => panic!("{other:?}"),
    }
    let mut rest: Vec<_> = results
        .abandon(Duration::from_millis(100))
        .into_iter()
        .map(|f| (f.job.id, f.outcome))
        .collect();
    rest.sort_by_key(|(id, _)| *id);
    assert_eq!(rest, [(0, Outcome::Done("so far")), (1, Outcome::Skipped)]);
}

#[test]
fn pacing_all_keys_keeps_starts_apart_even_after_a_stall() {
    // Two workers, 20 ms apart across keys. Jobs 0 and 1 hold both workers
    // for 200 ms (a stall: nobody can start anything); the slots missed
    // meanwhile are not made up in a burst afterwards.
    let interval = Duration::from_millis(20);
    let keys: Vec<&str> = (0..12)
        .map(|i| if i % 2 == 0 { "a" } else { "b" })
        .collect();
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let s = Arc::clone(&starts);
    let n_done = Pool::new(n(2))
        .keyed(|j: &Job| Some(j.key.to_owned()))
        .pace_all(interval)
        .as_completed(jobs(&keys), move |j: &Job| {
            s.lock().unwrap().push(Instant::now());
            if j.id < 2 {
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .unwrap()
        .count();
    assert_eq!(n_done, 12);
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    for pair in starts.windows(2) {
        // Lower bound only: a slow machine spaces them more, never less.
        assert!(
            pair[1] - pair[0] >= interval - Duration::from_millis(1),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn a_limit_set_at_run_time_bounds_its_key_and_can_be_raised() {
    // Limit 1 from the first job on; the fifth job raises it to 3, above
    // the pool's own 2. The first three jobs to start after the raise each
    // wait, holding their slot, until all three have started, which only
    // the raised limit allows (a bound on the wait keeps a failure from
    // hanging the test). Which jobs those are is not asserted: the bound
    // and the raise are.
    #[derive(Default)]
    struct Count {
        running: usize,
        raised: bool,
        met: usize,
    }
    let shared: Arc<(Mutex<Count>, std::sync::Condvar)> = Arc::default();
    // (job, running at its start, started after the raise)
    let seen: Arc<Mutex<Vec<(u64, usize, bool)>>> = Arc::default();
    let pool = Pool::new(n(4)).per_key(n(2), |j: &Job| Some(j.key.to_owned()));
    let gate = pool.gate();
    let (c, s) = (Arc::clone(&shared), Arc::clone(&seen));
    let input = jobs(&["k"; 20]).into_iter().inspect({
        let gate = gate.clone();
        move |j| {
            if j.id == 0 {
                gate.set_limit("k", Some(1));
            }
        }
    });
    let n_done = pool
        .as_completed(input, move |j: &Job| {
            let (count, changed) = &*c;
            let mut now = count.lock().unwrap();
            now.running += 1;
            let after = now.raised;
            s.lock().unwrap().push((j.id, now.running, after));
            if j.id == 4 {
                gate.set_limit("k", Some(3));
                now.raised = true;
            }
            if after && now.met < 3 {
                now.met += 1;
                changed.notify_all();
                let deadline = Instant::now() + Duration::from_secs(10);
                while now.met < 3 && Instant::now() < deadline {
                    now = changed
                        .wait_timeout(now, Duration::from_millis(50))
                        .unwrap()
                        .0;
                }
            }
            now.running -= 1;
        })
        .unwrap()
        .count();
    assert_eq!(n_done, 20);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|&(_, m, _)| m <= 3), "{seen:?}");
    assert!(
        seen.iter()
            .filter(|&&(_, _, after)| !after)
            .all(|&(_, m, _)| m == 1),
        "more than one at once under limit 1: {seen:?}"
    );
    assert!(
        seen.iter().any(|&(_, m, _)| m == 3),
        "the raise never took effect: {seen:?}"
    );
}

#[test]
fn a_limit_raised_while_the_input_is_open_starts_the_parked_jobs() {
    // Four workers, one queue place, limit 1. The input holds nine jobs of
    // "k", then "z" (of another key, so it starts at once), then stays open
    // until three jobs of "k" run at once. Once "z" runs, every job of "k"
    // has been taken from the queue, and "z" holds its worker, so the two
    // workers left are idle on the queue when the first job of "k" raises
    // the limit to 3: only a wake-up starts the parked jobs before the
    // input ends. Every job waits until three ran at once (a bound keeps a
    // failure from hanging the test).
    #[derive(Default)]
    struct Count {
        running: usize,
        raised: bool,
        z_started: bool,
        met: bool,
    }
    type Shared = Arc<(Mutex<Count>, std::sync::Condvar)>;
    fn wait_for(shared: &Shared, what: impl Fn(&Count) -> bool) -> bool {
        let (count, changed) = &**shared;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut now = count.lock().unwrap();
        while !what(&now) && Instant::now() < deadline {
            now = changed
                .wait_timeout(now, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        what(&now)
    }
    let shared = Shared::default();
    let pool = Pool::new(n(4))
        .queue(n(1))
        .per_key(n(1), |j: &Job| Some(j.key.to_owned()));
    let gate = pool.gate();
    let mut keys = vec!["k"; 9];
    keys.push("z");
    let met_while_open = Arc::new(Mutex::new(None));
    let (sh, met) = (Arc::clone(&shared), Arc::clone(&met_while_open));
    let input = jobs(&keys)
        .into_iter()
        .map(Some)
        .chain(std::iter::once(None))
        .map_while(move |j| {
            if j.is_none() {
                *met.lock().unwrap() = Some(wait_for(&sh, |c| c.met));
            }
            j
        });
    let sh = Arc::clone(&shared);
    let n_done = pool
        .as_completed(input, move |j: &Job| {
            let (count, changed) = &*sh;
            let raiser = {
                let mut now = count.lock().unwrap();
                if j.key == "z" {
                    now.z_started = true;
                } else {
                    now.running += 1;
                    now.met |= now.running == 3;
                }
                changed.notify_all();
                j.key == "k" && !std::mem::replace(&mut now.raised, true)
            };
            if raiser && wait_for(&sh, |c| c.z_started) {
                gate.set_limit("k", Some(3));
            }
            wait_for(&sh, |c| c.met);
            if j.key == "k" {
                count.lock().unwrap().running -= 1;
            }
        })
        .unwrap()
        .count();
    assert_eq!(n_done, 10);
    assert_eq!(
        *met_while_open.lock().unwrap(),
        Some(true),
        "the raised limit started no parked job while the input was open"
    );
}

#[test]
fn workers_grow_as_needed_up_to_the_ceiling_only() {
    // One worker to start with, a ceiling of 4: jobs that block until four
    // run at once can only finish if the pool grew to four.
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let names: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let (b, nm) = (Arc::clone(&barrier), Arc::clone(&names));
    let n_done = Pool::new(n(1))
        .grow_to(n(4))
        .keyed(|j: &Job| Some(format!("{}", j.id)))
        .thread_name("grow")
        .as_completed(jobs(&["k"; 8]), move |_: &Job| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            nm.lock().unwrap().insert(name);
            b.wait();
        })
        .unwrap()
        .count();
    assert_eq!(n_done, 8);
    assert_eq!(
        names.lock().unwrap().len(),
        4,
        "{:?}",
        names.lock().unwrap()
    );
}

#[test]
fn a_start_that_sent_nothing_takes_no_slot_of_the_pacing() {
    // An hour apart, for the key and for all keys: only the first start
    // may come without waiting. Jobs 0..5 say they sent nothing
    // (a retry past its deadline), so job 5, the first to send, starts at
    // once too. Without the start taken back, job 1 would wait an hour
    // (the bound on the wait below turns that into a failure).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let hour = Duration::from_secs(3600);
        let pool = Pool::new(n(1)).keyed(|j: &Job| Some(j.key.to_owned()));
        let gate = pool.gate();
        let input = jobs(&["k"; 6]).into_iter().inspect(move |j| {
            if j.id == 0 {
                gate.set_interval("k", Some(hour));
            }
        });
        let done = pool
            .pace_all(hour)
            .as_completed(input, |j: &Job| {
                if j.id < 5 {
                    start_unused();
                }
                j.id
            })
            .unwrap()
            .count();
        let _ = tx.send(done);
    });
    let done = rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(done, Ok(6), "starts that sent nothing held the next back");
}
