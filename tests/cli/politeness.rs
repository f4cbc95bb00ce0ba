//! Politeness: --per-host and --rate, a host that pushes back (429, or 503 with
//! Retry-After) is paused while others go on, its retries are free but end
//! within --max-retry-wait, the summary names it, and a stop does not wait for
//! a pause.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{Reply, TestServer};
use crate::support::{WAIT, args};
use crate::{Running, assert_all_seqs, command, run};

/// A site answering its first request with `status` and `Retry-After:
/// after`, and every later one with 200.
fn pushes_back_once(status: u16, after: &'static str) -> TestServer {
    let n = Arc::new(AtomicUsize::new(0));
    TestServer::routed(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(status).header("Retry-After", after)
        } else {
            Reply::ok("ok\n")
        }
    })
}

fn by_url(results: &[Value], url: &str) -> Value {
    results
        .iter()
        .find(|r| r["url"] == url)
        .unwrap_or_else(|| panic!("no result for {url}"))
        .clone()
}

#[test]
fn per_host_limits_each_host_without_head_of_line_blocking() {
    let slow = TestServer::start();
    let fast = TestServer::start();
    // The slow host's URLs come first and outnumber the workers, so workers
    // waiting on the busy host would leave none for the other one.
    let held: Vec<String> = (0..12).map(|i| slow.url(&format!("/gate?i={i}"))).collect();
    let quick: Vec<String> = (0..12)
        .map(|i| fast.url(&format!("/slow/50?i={i}")))
        .collect();
    let all: Vec<&String> = held.iter().chain(&quick).collect();
    let running = Running::spawn(
        command(args(&["--json", "-j", "8", "--per-host", "2"], &all)),
        None,
    );

    // The slow host answers nothing until the fast host has seen every one
    // of its requests.
    let fast_done = fast.wait_for_requests(quick.len(), WAIT);
    let fast_seen = fast.total_requests();
    let slow_seen = slow.total_requests();
    slow.open_gate();
    let run = running.finish();

    assert!(
        slow_seen <= 2,
        "{slow_seen} requests reached the held host with --per-host 2"
    );
    assert!(
        fast_done,
        "only {fast_seen} of {} requests reached the other host within {WAIT:?} \
         while the first host was busy: head-of-line blocking",
        quick.len()
    );
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), all.len() as u64);
    assert_eq!(slow.gate_fallbacks(), 0, "held requests timed out");
    assert_eq!(slow.total_requests(), held.len());
    assert_eq!(fast.total_requests(), quick.len());
    for (name, server) in [("held", &slow), ("fast", &fast)] {
        let max = server.max_in_flight();
        assert!(
            (1..=2).contains(&max),
            "{name} host saw {max} requests in flight with --per-host 2"
        );
    }
}

#[test]
fn rate_limits_request_starts_without_a_burst() {
    const RATE: f64 = 40.0;
    const WINDOW: Duration = Duration::from_millis(250);
    let server = TestServer::start();
    let urls: Vec<String> = (0..25).map(|i| server.url(&format!("/ok?i={i}"))).collect();
    // Measured from before the process starts: the pacer's first slot can
    // be no earlier, and a stalled machine only delays arrivals, never
    // brings them forward, so this bound cannot fail from slowness.
    let started = Instant::now();
    let run = run(&args(
        &["--json", "--rate", &RATE.to_string(), "-j", "8"],
        &urls,
    ));
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), 25);

    let times = server.arrival_times();
    assert_eq!(times.len(), 25);
    let early = times.iter().filter(|t| **t - started <= WINDOW).count();
    // One start at once, then one per 1/RATE s; one more for slack.
    let bound = (RATE * WINDOW.as_secs_f64()) as usize + 2;
    assert!(
        early <= bound,
        "{early} requests started within {WINDOW:?} of launch at --rate {RATE} \
         (at most {bound} allowed)"
    );
}

#[test]
fn a_503_with_retry_after_pauses_and_is_retried_free_too() {
    let slow = pushes_back_once(503, "1");
    let r = run(&["--json", "--retries", "1", &slow.url("/x")]);
    r.assert_code(0);
    let x = r.single();
    assert_eq!(
        (x["status"].as_u64(), x["attempts"].as_u64()),
        (Some(200), Some(2)),
        "{x}"
    );
    assert_eq!(slow.requests().len(), 2);
}

#[test]
fn a_longer_retry_after_than_allowed_ends_the_entry_at_once() {
    let site = TestServer::routed(|_| Reply::status(429).header("Retry-After", "3600"));
    let r = run(&["--json", "--max-retry-wait", "1", &site.url("/z")]);
    r.assert_code(1);
    let z = r.single();
    assert_eq!(
        (z["status"].as_u64(), z["attempts"].as_u64()),
        (Some(429), Some(1)),
        "{z}"
    );
}

#[test]
fn a_paused_host_waits_while_another_goes_on_with_one_worker() {
    // One worker: if the paused host's entries held it, the other host
    // would wait for the pause too.
    // Two entries of the paused host: the one that pushed back and one
    // queued behind it; each resumed request is paced, so two are enough.
    let slow = pushes_back_once(429, "2");
    let fast = TestServer::routed(|_| Reply::ok("fast\n"));
    let mut urls: Vec<String> = ["/a", "/b"].iter().map(|p| slow.url(p)).collect();
    urls.extend((0..20).map(|i| fast.url(&format!("/{i}"))));
    let mut args = vec!["--json", "-j", "1", "--retries", "1"];
    args.extend(urls.iter().map(String::as_str));
    let r = run(&args);
    r.assert_code(0);
    let results = r.results();
    assert_eq!(results.len(), 22);
    assert!(
        results.iter().all(|r| r["ok"] == true),
        "{}",
        r.stdout_text()
    );

    let slow_seen = slow.requests();
    let fast_seen = fast.requests();
    assert_eq!(slow_seen.len(), 3, "one 429, then /a again, /b");
    assert_eq!(slow_seen[0].target, "/a");
    assert_eq!(fast_seen.len(), 20);
    // By the servers' own record: every request to the fast host arrived
    // after the slow host's 429 and before its next request.
    let (paused, resumed) = (slow_seen[0].order, slow_seen[1].order);
    for s in &fast_seen {
        assert!(
            paused < s.order && s.order < resumed,
            "fast host request {} arrived outside the pause ({paused}..{resumed})",
            s.target
        );
    }
    // The retry of the 429 was free: it left --retries 1 unused.
    let a = by_url(&results, &slow.url("/a"));
    assert_eq!(
        (a["status"].as_u64(), a["attempts"].as_u64()),
        (Some(200), Some(2)),
        "{a}"
    );
}

#[test]
fn a_signal_during_a_pause_ends_the_run_without_waiting_for_it() {
    // The pause (100 s) is longer than the harness lets a run last: only a
    // run that does not wait for it can pass.
    let slow = TestServer::routed(|_| Reply::status(429).header("Retry-After", "100"));
    let dir = tempfile::tempdir().unwrap();
    let failed = dir.path().join("failed.txt");
    let urls: Vec<String> = ["/a", "/b", "/c"].iter().map(|p| slow.url(p)).collect();
    let mut args = vec![
        "--json",
        "-j",
        "1",
        "--max-retry-wait",
        "100",
        "--write-failed",
        failed.to_str().unwrap(),
    ];
    args.extend(urls.iter().map(String::as_str));
    let running = Running::spawn(command(&args), None);
    let deadline = std::time::Instant::now() + crate::RUN_BOUND;
    while slow.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running.signal("INT");
    let r = running.finish();
    r.assert_code(130);
    // /a got its 429 and was waiting to retry: that is its result. /b and
    // /c waited for the host and never started: no line, but listed.
    let results = r.results();
    assert_eq!(results.len(), 1, "{}", r.stdout_text());
    assert_eq!(results[0]["url"], urls[0]);
    assert_eq!(results[0]["status"], 429);
    let mut listed: Vec<String> = std::fs::read_to_string(&failed)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    assert_eq!(listed, urls, "--write-failed");
    assert!(r.stderr.contains("2 not started"), "{}", r.stderr);
    assert_eq!(slow.requests().len(), 1);
}

#[test]
fn the_summary_names_the_host_that_pushed_back() {
    let slow = pushes_back_once(429, "1");
    let fast = TestServer::routed(|_| Reply::ok("fast\n"));
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let r = run(&[
        "--summary-json",
        summary.to_str().unwrap(),
        &slow.url("/1"),
        &slow.url("/2"),
        &fast.url("/1"),
    ]);
    r.assert_code(0);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let named = json["pushed_back"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{json}");
    assert_eq!(named[0]["host"], slow.host());
    assert_eq!(named[0]["pushbacks"], 1);
    assert!(
        named[0]["rate_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{json}"
    );
    assert!(
        named[0]["paused_s"].as_f64().is_some_and(|p| p > 0.0),
        "{json}"
    );
    assert!(
        r.stderr.contains(&format!(
            "pushed back: {} (1 x 429/503), paused ",
            slow.host()
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&fast.host()), "{}", r.stderr);
}
