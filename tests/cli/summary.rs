//! The summary on stderr and in --summary-json.

use serde_json::Value;

use crate::server::TestServer;
use crate::support::args;
use crate::{refused_port, run};

#[test]
fn summary_wording_counts_and_rates() {
    let server = TestServer::start();
    let one = run(&[server.url("/ok")]);
    one.assert_code(0);
    assert!(
        one.stderr.starts_with("summary: 1 entry, 1 ok, 0 failed\n"),
        "{}",
        one.stderr
    );

    let invalid = run(&["notaurl", "ftp://x/"]);
    invalid.assert_code(1);
    assert!(invalid.stderr.contains("2 entries"), "{}", invalid.stderr);
    assert!(
        !invalid.stderr.contains("/s"),
        "a rate although nothing was fetched:\n{}",
        invalid.stderr
    );

    let url = server.url("/ok");
    let dedup = run(&["--dedup", url.as_str(), url.as_str(), url.as_str()]);
    dedup.assert_code(0);
    assert!(
        dedup.stderr.contains("2 duplicates skipped"),
        "{}",
        dedup.stderr
    );
    assert!(
        dedup.stderr.starts_with("summary: 1 entry"),
        "{}",
        dedup.stderr
    );
}

#[test]
fn summary_json_counts_match_the_results() {
    let server = TestServer::start();
    let urls = [
        server.url("/bytes/100?i=0"),
        server.url("/bytes/100?i=1"),
        server.url("/bytes/100?i=2"),
        server.url("/status/404"),
        format!("http://127.0.0.1:{}/x", refused_port()),
        "not a url".to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.json");
    let run = run(&args(
        &[
            "--json",
            "-q",
            "--retries",
            "0",
            "--summary-json",
            file.to_str().unwrap(),
        ],
        &urls,
    ));
    run.assert_code(1);
    assert!(run.stderr.is_empty(), "-q stderr:\n{}", run.stderr);
    let results = run.results();
    let text = std::fs::read_to_string(&file).expect("--summary-json file");
    let s: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{text}"));

    let ok = results.iter().filter(|r| r["ok"] == true).count() as u64;
    let bytes: u64 = results.iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
    assert_eq!((ok, results.len()), (3, 6));
    assert_eq!(s["entries"], 6, "{s}");
    assert_eq!(s["ok"], ok, "{s}");
    assert_eq!(s["failed"], 3, "{s}");
    assert_eq!(s["bytes"], bytes, "{s}");
    assert!(bytes >= 300, "{bytes}");
    assert_eq!(s["failed_by_status"]["404"], 1, "{s}");
    assert_eq!(s["failed_by_kind"]["connect"], 1, "{s}");
    assert_eq!(s["failed_by_kind"]["invalid_url"], 1, "{s}");
    // The run lasted at least as long as its longest entry (1 ms for rounding).
    let longest = results
        .iter()
        .map(|r| r["elapsed_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let wall_ms = s["wall_s"].as_f64().expect("wall_s") * 1000.0;
    assert!(
        wall_ms + 1.0 >= longest,
        "wall {wall_ms} ms < {longest} ms: {s}"
    );
    let latency = &s["latency_ms"];
    let p: Vec<f64> = ["p50", "p90", "p99", "max"]
        .iter()
        .map(|k| {
            latency[k]
                .as_f64()
                .unwrap_or_else(|| panic!("latency_ms.{k} missing: {s}"))
        })
        .collect();
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {p:?}"
    );
    assert!(
        (p[3] - longest).abs() <= 1.0,
        "max {} != {longest} ms",
        p[3]
    );
}
