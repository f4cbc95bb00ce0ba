//! Misbehaving servers, retries, limits, signals, closed pipes, secrets (issue 3).
//!
//! Deadlines are small (`-m 2 --connect-timeout 2`, `-m 1` where a timeout is
//! the expected outcome) so the suite is quick; no assertion depends on how
//! long anything took except lower bounds that the behaviour guarantees.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::Value;

use crate::server::{BIG_LEN, TestServer};
use crate::{
    Run, Running, assert_all_seqs, command, count_kinds, drain, kind, lines, parse_result,
    refused_port, run, run_stdin, wait_bounded,
};

/// Fetches one URL with `--json`, `extra` flags and quick deadlines (unless
/// `extra` sets `-m` itself); returns its only result after checking the
/// exit code agrees with `ok`.
fn fetch_one(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "--connect-timeout", "2"];
    if !extra.contains(&"-m") {
        args.extend(["-m", "2"]);
    }
    args.extend(extra);
    args.push(url);
    let run = run(&args);
    let result = run.single();
    run.assert_code(if result["ok"] == true { 0 } else { 1 });
    result
}

/// What a result must say: `ok`, `status` (None: null), error kind, attempts.
struct Expect {
    ok: bool,
    status: Option<u64>,
    kind: Option<&'static str>,
    attempts: u64,
}

impl Expect {
    fn failed(status: Option<u64>, kind: &'static str, attempts: u64) -> Expect {
        Expect {
            ok: false,
            status,
            kind: Some(kind),
            attempts,
        }
    }

    fn ok(attempts: u64) -> Expect {
        Expect {
            ok: true,
            status: Some(200),
            kind: None,
            attempts,
        }
    }

    fn check(&self, r: &Value) {
        assert_eq!(r["ok"], self.ok, "ok: {r}");
        assert_eq!(r["status"].as_u64(), self.status, "status: {r}");
        assert_eq!(kind(r), self.kind, "error kind: {r}");
        assert_eq!(r["attempts"].as_u64(), Some(self.attempts), "attempts: {r}");
    }
}

/// "Stop reading past it": one byte over the limit shows it was exceeded,
/// more was read for nothing.
fn assert_read_at_most(r: &Value, limit: u64) {
    let bytes = r["bytes"].as_u64().unwrap();
    assert!(
        bytes <= limit + 1,
        "read {bytes} bytes with --max-size {limit}: {r}"
    );
}

#[test]
fn reset_is_an_io_or_connect_error() {
    // The connection was made and the request read before the RST, so `io`
    // (not retried) is the natural kind; `connect` is allowed too, but then
    // it must have been retried like any connect error.
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/reset"), &["--retries", "1"]);
    let (expected_kind, attempts) = match kind(&r) {
        Some("connect") => ("connect", 2),
        _ => ("io", 1),
    };
    Expect::failed(None, expected_kind, attempts).check(&r);
    assert_eq!(server.hits("/fault/reset"), attempts as usize);
}

#[test]
fn hang_times_out_and_is_retried() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/hang"), &["-m", "1", "--retries", "1"]);
    Expect::failed(None, "timeout", 2).check(&r);
}

#[test]
fn garbage_is_a_protocol_error() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/garbage"), &[]);
    Expect::failed(None, "protocol", 1).check(&r);
}

#[test]
fn short_body_is_an_io_error_with_the_status() {
    // Like curl (exit 18 with %{http_code} 200): the status line arrived.
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/short"), &[]);
    Expect::failed(Some(200), "io", 1).check(&r);
    assert_eq!(r["bytes"], 10, "{r}");
}

#[test]
fn drip_times_out() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/drip"), &["-m", "1", "--retries", "0"]);
    Expect::failed(Some(200), "timeout", 1).check(&r);
}

#[test]
fn endless_body_stops_at_max_size() {
    // A long deadline: only the size limit can end this one.
    let server = TestServer::start();
    let url = server.url("/fault/endless");
    let r = fetch_one(&url, &["--max-size", "100K", "-m", "30", "--retries", "0"]);
    Expect::failed(Some(200), "too_large", 1).check(&r);
    assert_read_at_most(&r, 100 * 1024);
}

#[test]
fn endless_body_times_out_without_max_size() {
    let server = TestServer::start();
    let r = fetch_one(
        &server.url("/fault/endless"),
        &["-m", "1", "--retries", "0"],
    );
    Expect::failed(Some(200), "timeout", 1).check(&r);
}

#[test]
fn self_redirect_stops_at_max_redirects() {
    let server = TestServer::start();
    let url = server.url("/fault/self-redirect");
    let r = fetch_one(&url, &["--max-redirects", "3"]);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(kind(&r), Some("redirects"), "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
    // The spec is silent on the status here: the last 3xx, or none.
    assert!(matches!(r["status"].as_u64(), None | Some(302)), "{r}");
    assert!(server.hits("/fault/self-redirect") <= 4);
}

#[test]
fn flaky_503_succeeds_on_the_third_attempt() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/flaky503/a"), &[]);
    Expect::ok(3).check(&r);
    assert_eq!(server.hits("/fault/flaky503/a"), 3);
}

#[test]
fn flaky_503_with_one_retry_fails_with_its_status() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/flaky503/b"), &["--retries", "1"]);
    Expect {
        ok: false,
        status: Some(503),
        kind: None,
        attempts: 2,
    }
    .check(&r);
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(server.hits("/fault/flaky503/b"), 2);
}

#[test]
fn retry_after_is_honoured() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/retry-after/a"), &[]);
    Expect::ok(2).check(&r);
    // Retry-After: 1 means the second attempt started a second later.
    let elapsed = r["elapsed_ms"].as_f64().unwrap();
    assert!(elapsed >= 1000.0, "retried after {elapsed} ms");
}

#[test]
fn big_body_is_streamed_whole() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/big"), &["-m", "30"]);
    Expect::ok(1).check(&r);
    assert_eq!(r["bytes"], BIG_LEN, "{r}");
}

#[test]
fn big_body_over_max_size_is_too_large() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/big"), &["-m", "30", "--max-size", "1M"]);
    Expect::failed(Some(200), "too_large", 1).check(&r);
    assert_read_at_most(&r, 1 << 20);
}

#[test]
fn refused_connection_is_a_connect_error_and_retried() {
    let url = format!("http://127.0.0.1:{}/ok", refused_port());
    let r = fetch_one(&url, &["--retries", "1"]);
    Expect::failed(None, "connect", 2).check(&r);
}

/// One soak entry: its URL and the error kinds its result may have
/// (`"none"` for no error) and whether it must be ok.
struct Entry {
    url: String,
    ok: bool,
    kinds: &'static [&'static str],
}

/// The faults of the soak test, each `count` times. The two that push back
/// (429, 503) go to `pushy`, a host of their own, once each: every pushback
/// pauses and paces its host (tested with the politeness tests), and here
/// that would only stretch the run.
fn soak_faults(server: &TestServer, pushy: &TestServer) -> Vec<Entry> {
    let refused = format!("http://127.0.0.1:{}", refused_port());
    let kinds: [(&str, usize, bool, &'static [&'static str]); 14] = [
        ("/fault/hang", 3, false, &["timeout"]),
        ("/fault/drip", 3, false, &["timeout"]),
        ("/fault/endless", 3, false, &["timeout"]),
        ("/fault/reset", 20, false, &["io", "connect"]),
        ("/fault/garbage", 20, false, &["protocol"]),
        ("/fault/short", 20, false, &["io"]),
        ("/fault/self-redirect", 10, false, &["redirects"]),
        ("/fault/flaky503/", 1, true, &["none"]),
        ("/fault/retry-after/", 1, true, &["none"]),
        ("/status/404", 40, false, &["none"]),
        ("/status/500", 10, false, &["none"]),
        ("/big", 2, true, &["none"]),
        ("refused", 10, false, &["connect"]),
        ("ftp://x/", 10, false, &["invalid_url"]),
    ];
    let mut entries = Vec::new();
    for (path, count, ok, kinds) in kinds {
        for i in 0..count {
            let url = match path {
                "refused" => format!("{refused}/{i}"),
                "ftp://x/" => format!("{path}{i}"),
                p if p.ends_with('/') => pushy.url(&format!("{p}{i}")),
                p => server.url(&format!("{p}?i={i}")),
            };
            entries.push(Entry { url, ok, kinds });
        }
    }
    entries
}

#[test]
fn soak_of_mixed_faults_gives_each_entry_exactly_one_result() {
    // 211 faults spread through good URLs: 1,000 entries keep more than
    // five times workers + queue (64 + 128) waiting, so every fault meets a
    // full queue and busy workers, as a longer list would.
    const TOTAL: usize = 1000;
    let server = TestServer::start();
    let pushy = TestServer::start();
    let faults = soak_faults(&server, &pushy);
    // Spread the faults evenly through good URLs.
    let stride = TOTAL / faults.len();
    let mut faults = faults.into_iter();
    let entries: Vec<Entry> = (0..TOTAL)
        .map(|i| {
            let fault = if i % stride == 0 { faults.next() } else { None };
            fault.unwrap_or_else(|| Entry {
                url: server.url(&format!("/bytes/{}?i={i}", i % 700)),
                ok: true,
                kinds: &["none"],
            })
        })
        .collect();
    assert!(faults.next().is_none(), "not every fault got a slot");
    let input: Vec<&str> = entries.iter().map(|e| e.url.as_str()).collect();

    let run = run_stdin(
        &["--json", "-j", "64", "-m", "1", "--connect-timeout", "1"],
        lines(&input),
    );
    run.assert_code(1);
    let results = run.by_seq();
    assert_eq!(results.len(), TOTAL);
    assert_all_seqs(&results, TOTAL as u64);

    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (seq, entry) in entries.iter().enumerate() {
        let r = &results[&(seq as u64)];
        let got = kind(r).unwrap_or("none");
        assert!(entry.kinds.contains(&got), "seq {seq} {}: {r}", entry.url);
        assert_eq!(r["ok"], entry.ok, "seq {seq}: {r}");
        *expected.entry(got.to_string()).or_insert(0) += 1;
    }
    assert_eq!(count_kinds(results.values()), expected);
}

/// A run of 24 slow URLs on 4 workers, interrupted by `signal` once the
/// server has seen a fifth request (so at least one result is complete).
fn interrupted(signal: &str) -> (Run, Vec<String>, Vec<String>) {
    let server = TestServer::start();
    let urls: Vec<String> = (0..24)
        .map(|i| server.url(&format!("/slow/300?i={i}")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let failed_file = dir.path().join("failed.txt");
    let mut args = vec!["--json", "-j", "4", "--write-failed"];
    args.push(failed_file.to_str().unwrap());
    args.extend(urls.iter().map(String::as_str));
    let running = Running::spawn(command(&args), None);
    if !server.wait_for_requests(5, crate::RUN_BOUND) {
        running.signal("KILL");
        panic!("the run never got going");
    }
    running.signal(signal);
    let run = running.finish();
    let failed = std::fs::read_to_string(&failed_file)
        .unwrap_or_else(|e| panic!("--write-failed file: {e}\nstderr:\n{}", run.stderr));
    let failed = failed.lines().map(str::to_owned).collect();
    (run, urls, failed)
}

#[test]
fn sigint_prints_what_completed_writes_the_rest_and_exits_130() {
    let (run, urls, failed) = interrupted("INT");
    run.assert_code(130);
    let results = run.by_seq();
    let completed: BTreeSet<&str> = results
        .values()
        .filter(|r| r["ok"] == true)
        .map(|r| r["url"].as_str().unwrap())
        .collect();
    assert!(!completed.is_empty(), "no completed result was printed");
    assert!(completed.len() < urls.len(), "the run was not interrupted");
    assert!(
        run.stderr.lines().any(|l| l.starts_with("summary:")),
        "no summary:\n{}",
        run.stderr
    );
    let not_ok: BTreeSet<&str> = urls
        .iter()
        .map(String::as_str)
        .filter(|u| !completed.contains(u))
        .collect();
    let written: BTreeSet<&str> = failed.iter().map(String::as_str).collect();
    assert_eq!(written.len(), failed.len(), "a URL written twice");
    let missing: Vec<_> = not_ok.difference(&written).collect();
    let extra: Vec<_> = written.difference(&not_ok).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "--write-failed must hold exactly the URLs not ok; missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn sigterm_exits_143() {
    let (run, _, failed) = interrupted("TERM");
    run.assert_code(143);
    run.results(); // every line is whole JSON
    assert!(!failed.is_empty());
}

#[test]
fn closed_stdout_ends_the_run_quietly() {
    let server = TestServer::start();
    let urls: Vec<String> = (0..2000)
        .map(|i| server.url(&format!("/ok?i={i}")))
        .collect();
    let mut cmd = command(["--json", "-j", "4"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn fetchpool");
    let mut stdin = child.stdin.take().unwrap();
    // Fails with EPIPE once fetchpool has stopped reading: expected.
    let writer = std::thread::spawn(move || drop(stdin.write_all(lines(&urls).as_bytes())));
    let stderr = drain(child.stderr.take().unwrap());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    parse_result(&first);
    drop(stdout);

    let status = wait_bounded(&mut child);
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    assert!(status.code().is_some(), "killed by a signal: {status:?}");
    assert_ne!(status.code(), Some(101), "panicked:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");
}

#[test]
fn credentials_never_appear_in_output() {
    let server = TestServer::start();
    let with_password =
        |base: &str, path: &str| base.replacen("http://", "http://user:secret@", 1) + path;
    let base = server.url("");
    let refused = format!("http://127.0.0.1:{}", refused_port());
    let urls = [
        with_password(&base, "/ok"),
        with_password(&base, "/status/500"),
        with_password(&refused, "/ok"),
    ];
    let mut flags = vec![
        "--retries",
        "0",
        "-H",
        "Authorization: Bearer secret",
        "-H",
        "Cookie: session=secret",
    ];
    flags.extend(urls.iter().map(String::as_str));

    let text = run(&flags);
    text.assert_code(1);
    text.assert_absent("secret");
    assert_eq!(text.lines().len(), 3);
    for line in text.lines() {
        assert!(line.contains("user:***@"), "{line}");
    }

    flags.insert(0, "--json");
    let json = run(&flags);
    json.assert_code(1);
    json.assert_absent("secret");
    for r in json.results() {
        let url = r["url"].as_str().unwrap();
        assert!(url.starts_with("http://user:***@127.0.0.1:"), "{url}");
    }
    // The header was sent, only never shown.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_some())
    );
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    let server = TestServer::start();
    let mut urls = vec![server.url("/ok?i=0"), server.url("/status/500")];
    urls.extend((2..10).map(|i| server.url(&format!("/ok?i={i}"))));
    let mut args = vec!["--json", "-j", "1", "--retries", "0", "--fail-fast"];
    args.extend(urls.iter().map(String::as_str));
    let run = run(&args);
    run.assert_code(1);
    assert_eq!(server.total_requests(), 2, "{:?}", server.requests());
    assert_eq!(server.hits("/status/500"), 1);
    let seqs: Vec<u64> = run.by_seq().into_keys().collect();
    assert_eq!(seqs, [0, 1]);
}
