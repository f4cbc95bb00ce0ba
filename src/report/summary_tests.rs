//! Unit tests of the summary: counts, wording, the failure breakdown.

use super::*;

#[test]
fn counts_and_percentiles() {
    let mut s = Summary::default();
    for ms in 1..=100 {
        s.add(true, Some(200), None, 10, Duration::from_millis(ms));
    }
    s.add(false, Some(404), None, 5, Duration::from_millis(1));
    s.add(
        false,
        None,
        Some(ErrorKind::Timeout),
        0,
        Duration::from_millis(1),
    );
    s.add(false, None, Some(ErrorKind::InvalidUrl), 0, Duration::ZERO);
    s.add_not_started();
    let r = s.report(Duration::from_secs(2));
    assert_eq!((r.entries, r.ok, r.failed, r.not_started), (104, 100, 3, 1));
    assert_eq!(r.failed_by_status["404"], 1);
    assert_eq!(r.failed_by_kind["timeout"], 1);
    assert_eq!(r.status_classes["2xx"], 100);
    assert_eq!(r.bytes, 1005);
    let l = r.latency_ms.as_ref().unwrap();
    assert!((49.0..=51.0).contains(&l.p50), "{}", l.p50);
    assert!((99.0..=101.0).contains(&l.max));
    let text = r.text();
    assert!(text.starts_with("summary: 104 entries, 100 ok, 3 failed, 1 not started"));
    assert!(text.contains("404 x1") && text.contains("timeout x1"));
    assert!(!text.contains("pushed back"));
    assert_eq!(r.fetched, 102, "invalid entries are not requests");
    assert!(text.contains("1005 B in 2.00 s, 51 req/s\n"), "{text}");
}

#[test]
fn wording_is_singular_for_one_and_mentions_what_was_skipped() {
    let mut s = Summary::default();
    s.add(true, Some(200), None, 3, Duration::from_millis(2));
    let mut r = s.report(Duration::from_secs(1));
    assert!(
        r.text().starts_with("summary: 1 entry, 1 ok, 0 failed\n"),
        "{}",
        r.text()
    );
    let stats = InputStats::default();
    stats.entries.store(6, std::sync::atomic::Ordering::SeqCst);
    stats.kept.store(1, std::sync::atomic::Ordering::SeqCst);
    stats
        .duplicates
        .store(2, std::sync::atomic::Ordering::SeqCst);
    r.count_skipped(&stats);
    assert!(
        r.text().starts_with(
            "summary: 1 entry, 1 ok, 0 failed (2 duplicates skipped, 3 in other shards)\n"
        ),
        "{}",
        r.text()
    );
}

#[test]
fn each_failed_entry_is_counted_once_and_ok_ones_not_at_all() {
    let mut s = Summary::default();
    // A redirect loop and a 404 over --max-size: by their errors only.
    s.add(
        false,
        Some(302),
        Some(ErrorKind::Redirects),
        0,
        Duration::ZERO,
    );
    s.add(
        false,
        Some(404),
        Some(ErrorKind::TooLarge),
        9,
        Duration::ZERO,
    );
    // A status --accept refused, and an ok one it also leaves out (304).
    s.add(false, Some(404), None, 3, Duration::ZERO);
    s.add(true, Some(304), None, 0, Duration::ZERO);
    let r = s.report(Duration::from_secs(1));
    assert_eq!(r.failed, 3);
    assert_eq!(r.failed_by_status.len(), 1);
    assert_eq!(r.failed_by_status["404"], 1);
    assert_eq!(r.failed_by_kind["redirects"], 1);
    assert_eq!(r.failed_by_kind["too_large"], 1);
    assert_eq!(r.status_classes["4xx"], 2);
    assert_eq!(r.status_classes["3xx"], 2);
    assert!(
        r.text()
            .contains("  failed: 404 x1, redirects x1, too_large x1\n"),
        "{}",
        r.text()
    );
}

#[test]
fn no_rate_when_nothing_was_requested() {
    let mut s = Summary::default();
    s.add(false, None, Some(ErrorKind::InvalidUrl), 0, Duration::ZERO);
    let r = s.report(Duration::from_millis(1));
    assert_eq!(r.fetched, 0);
    assert_eq!(r.requests_per_s, 0.0);
    let text = r.text();
    assert!(text.contains("  0 B in 1 ms\n"), "{text}");
    assert!(!text.contains("/s"), "{text}");
}

#[test]
fn names_hosts_that_pushed_back_escaped() {
    let mut r = Summary::default().report(Duration::from_secs(1));
    r.pushed_back = vec![
        PushedBack {
            host: "slow.example:443".into(),
            pushbacks: 12,
            rate_per_s: Some(9.5),
            paused_s: 2.5,
        },
        PushedBack {
            host: "evil\u{1b}[2J\u{202e}:80".into(),
            pushbacks: 1,
            rate_per_s: None,
            paused_s: 0.0,
        },
    ];
    r.given_up = vec![GivenUp {
        host: "blocked:443".into(),
        status: 429,
        refused_for_s: 30.5,
    }];
    r.concurrency = vec![Concurrency {
        host: "api:443".into(),
        settled: 16,
        max_in_flight: 32,
    }];
    let text = r.text();
    assert!(
        text.contains(
            "pushed back: slow.example:443 (12 x 429/503), paused 2.50 s, held at 9.5 req/s"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "pushed back: evil\\x1b[2J\\u{202e}:80 (1 x 429/503), paused 0 ms, unlimited again"
        ),
        "{text}"
    );
    assert!(
        text.contains("given up: blocked:443 (only 429 for 30.5 s;"),
        "{text}"
    );
    assert!(
        text.contains("concurrency: api:443 settled at 16, at most 32 in flight"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["pushed_back"][0]["rate_per_s"], 9.5);
    assert!(json["pushed_back"][1]["rate_per_s"].is_null());
    assert_eq!(json["pushed_back"][0]["paused_s"], 2.5);
    assert_eq!(json["given_up"][0]["status"], 429);
    assert_eq!(json["concurrency"][0]["max_in_flight"], 32);
}
