//! The host controller from the outside: the user's bounds are hard
//! (`--retries 0` is one request, an accepted status is never retried), a
//! host that only refuses is given up, waiting is reported, and `-j auto`
//! holds a capacity-bound host near its capacity. Every assertion is on
//! what the servers saw or what the run printed, never on timing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::run;
use crate::server::{Reply, TestServer as Site};

#[test]
fn retries_0_is_one_request_whatever_the_answer() {
    let too_many = Site::routed(|_| Reply::status(429).header("Retry-After", "0"));
    let unavailable = Site::routed(|_| Reply::status(503).header("Retry-After", "0"));
    let r = run(&[
        "--json",
        "--retries",
        "0",
        &too_many.url("/a"),
        &unavailable.url("/b"),
    ]);
    r.assert_code(1);
    assert_eq!(too_many.total_requests(), 1, "one request for a 429");
    assert_eq!(unavailable.total_requests(), 1, "one request for a 503");
    for res in r.results() {
        assert_eq!(res["attempts"], 1, "{res}");
        assert_eq!(res["ok"], false, "{res}");
        assert!(res["status"] == 429 || res["status"] == 503, "{res}");
    }
}

#[test]
fn an_accepted_429_is_a_success_and_never_retried() {
    let site = Site::routed(|_| Reply::status(429).header("Retry-After", "0"));
    let r = run(&["--json", "--accept", "200-299,429", &site.url("/x")]);
    r.assert_code(0);
    let x = r.single();
    assert_eq!(
        (x["ok"].as_bool(), x["attempts"].as_u64()),
        (Some(true), Some(1)),
        "{x}"
    );
    assert_eq!(site.total_requests(), 1);
}

#[test]
fn a_host_that_only_refuses_is_given_up_and_its_entries_end_with_its_refusal() {
    let site = Site::routed(|_| Reply::status(429).header("Retry-After", "1"));
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let urls: Vec<String> = (0..20).map(|i| site.url(&format!("/{i}"))).collect();
    let mut args = vec![
        "--json",
        "-j",
        "2",
        "--max-retry-wait",
        "1",
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    args.extend(urls.iter().map(String::as_str));
    let r = run(&args);
    r.assert_code(1);
    let results = r.results();
    assert_eq!(results.len(), 20, "{}", r.stdout_text());
    for res in &results {
        assert_eq!(
            (res["status"].as_u64(), res["ok"].as_bool()),
            (Some(429), Some(false)),
            "{res}"
        );
    }
    // Given up after a second of refusals: far fewer requests than
    // 20 entries x 3 attempts.
    let asked = site.total_requests();
    assert!(asked < 20, "{asked} requests to a host that only refuses");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let given_up = json["given_up"].as_array().unwrap();
    assert_eq!(given_up.len(), 1, "{json}");
    assert_eq!(
        (given_up[0]["host"].as_str(), given_up[0]["status"].as_u64()),
        (Some(site.host().as_str()), Some(429))
    );
    assert!(
        r.stderr
            .contains(&format!("given up: {} (only 429 for", site.host())),
        "{}",
        r.stderr
    );
}

#[test]
fn entries_held_by_a_pause_report_the_wait() {
    // The first request is told to wait a second; the others, on one
    // worker, wait for the host's pause.
    let n = Arc::new(AtomicUsize::new(0));
    let site = {
        let n = Arc::clone(&n);
        Site::routed(move |_| {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::status(429).header("Retry-After", "1")
            } else {
                Reply::ok("ok\n")
            }
        })
    };
    let urls: Vec<String> = ["/a", "/b", "/c"].iter().map(|p| site.url(p)).collect();
    let mut args = vec!["--json", "-j", "1"];
    args.extend(urls.iter().map(String::as_str));
    let r = run(&args);
    r.assert_code(0);
    let results = r.results();
    assert_eq!(results.len(), 3);
    for res in &results {
        let waited = res["waited_ms"].as_f64().unwrap_or_else(|| panic!("{res}"));
        assert!(waited > 0.0, "{res}");
        assert!(res["elapsed_ms"].as_f64().is_some(), "{res}");
    }
    assert_eq!(site.total_requests(), 4);
}

/// A host that serves `capacity` requests at once, in about `service`
/// each, and queues the rest; it records how many requests it held at
/// once (served and queued) from its `settled_after`-th request on.
struct Capacity {
    site: Site,
    most_after_settling: Arc<AtomicUsize>,
}

fn capacity_host(capacity: usize, service: Duration, settled_after: usize) -> Capacity {
    let slots = Arc::new((Mutex::new(0usize), Condvar::new()));
    let held = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let most_after_settling = Arc::clone(&most);
    let site = Site::routed(move |_| {
        let now_held = held.fetch_add(1, Ordering::SeqCst) + 1;
        if arrived.fetch_add(1, Ordering::SeqCst) >= settled_after {
            most.fetch_max(now_held, Ordering::SeqCst);
        }
        let (busy, freed) = &*slots;
        let mut busy_now = busy.lock().unwrap();
        while *busy_now >= capacity {
            busy_now = freed.wait(busy_now).unwrap();
        }
        *busy_now += 1;
        drop(busy_now);
        std::thread::sleep(service);
        *busy.lock().unwrap() -= 1;
        freed.notify_one();
        held.fetch_sub(1, Ordering::SeqCst);
        Reply::ok("ok\n")
    });
    Capacity {
        site,
        most_after_settling,
    }
}

#[test]
fn auto_holds_a_capacity_bound_host_near_its_capacity() {
    const CAPACITY: usize = 8;
    let host = capacity_host(CAPACITY, Duration::from_millis(20), 200);
    let urls: String = (0..400)
        .map(|i| format!("{}\n", host.site.url(&format!("/{i}"))))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    let summary = dir.path().join("summary.json");
    std::fs::write(&list, urls).unwrap();
    let r = run(&[
        "-q",
        "-j",
        "auto",
        "-i",
        list.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    r.assert_code(0);
    assert_eq!(host.site.total_requests(), 400);
    let most = host.most_after_settling.load(Ordering::SeqCst);
    assert!(
        most <= 2 * CAPACITY,
        "the host held {most} requests at once, settled, for a capacity of {CAPACITY}"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let conc = &json["concurrency"][0];
    assert_eq!(conc["host"], host.site.host(), "{json}");
    assert!(
        conc["max_in_flight"].as_u64().is_some_and(|m| m >= 1),
        "{json}"
    );
}
