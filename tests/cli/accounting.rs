//! Each entry is accounted for once, whatever stops the run: a second
//! signal never prints an entry again, an entry whose retry a signal cuts
//! short ends with its last answer judged by `--accept`, and the summary's
//! failure breakdown counts each failed entry once (by its error when it
//! has one, else by its status) so that it adds up to `failed`.
//!
//! Signals are sent when the server has seen the requests, and again when
//! stdout shows the line the test waits for: never after a sleep.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{Reply, TestServer};
use crate::support::WAIT;
use crate::{command, parse_result, run, wait_bounded};

/// A child whose stdout lines are collected as they come.
struct Streaming {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: thread::JoinHandle<()>,
    stderr: thread::JoinHandle<Vec<u8>>,
}

impl Streaming {
    fn spawn(mut cmd: Command) -> Streaming {
        let mut child = cmd.spawn().expect("spawn fetchpool");
        let stdout = child.stdout.take().unwrap();
        let stderr = crate::drain(child.stderr.take().unwrap());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Streaming {
            child,
            lines,
            reader,
            stderr,
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits until a stdout line satisfies `found`.
    fn wait_line(&self, found: impl Fn(&str) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if self.lines.lock().unwrap().iter().any(|l| found(l)) {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn finish(mut self) -> (i32, Vec<Value>) {
        let status = wait_bounded(&mut self.child);
        self.reader.join().unwrap();
        let stderr = String::from_utf8_lossy(&self.stderr.join().unwrap()).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        let lines = self.lines.lock().unwrap().clone();
        (
            status.code().expect("exit code"),
            lines.iter().map(|l| parse_result(l)).collect(),
        )
    }
}

fn seq_counts(results: &[Value]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for r in results {
        *counts.entry(r["seq"].as_u64().unwrap()).or_default() += 1;
    }
    counts
}

#[test]
fn a_second_signal_never_prints_an_entry_again() {
    // seq 0 waits to retry its 500 when the first signal comes, and ends
    // with that answer; seq 1 is still in flight at the second signal.
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (failed, summary) = (dir.path().join("failed"), dir.path().join("summary"));
    let (fail, hang) = (server.url("/status/500"), server.url("/fault/hang"));
    let cmd = command([
        "--json",
        "--retries",
        "2",
        "-j",
        "2",
        "--write-failed",
        failed.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        &fail,
        &hang,
    ]);
    let run = Streaming::spawn(cmd);
    assert!(server.wait_for_requests(2, WAIT), "requests never arrived");
    run.signal("TERM");
    assert!(
        run.wait_line(|l| l.contains("\"seq\":0")),
        "seq 0 never printed"
    );
    run.signal("INT");
    let (code, results) = run.finish();
    assert_eq!(code, 143);
    assert_eq!(
        seq_counts(&results),
        BTreeMap::from([(0, 1), (1, 1)]),
        "{results:?}"
    );
    let by_seq: BTreeMap<u64, &Value> = results
        .iter()
        .map(|r| (r["seq"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(by_seq[&0]["status"], 500);
    assert_eq!(by_seq[&1]["error"]["kind"], "cancelled");
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        (s["entries"].as_u64(), s["failed"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
    let mut listed: Vec<String> = std::fs::read_to_string(&failed)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut want = [fail, hang];
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn an_accepted_status_cut_short_by_a_signal_is_still_ok() {
    // Every answer is a 500, which --accept takes: whether the signal finds
    // the entry waiting to retry or finished, its result is an ok 500.
    let server = TestServer::routed(|_| Reply::status(500));
    let url = server.url("/e");
    let cmd = command(["--json", "--accept", "100-599", "--retries", "2", &url]);
    let run = Streaming::spawn(cmd);
    assert!(server.wait_for_requests(1, WAIT), "request never arrived");
    run.signal("INT");
    let (code, results) = run.finish();
    assert!(code == 130 || code == 0, "exit {code}");
    assert_eq!(results.len(), 1, "{results:?}");
    let r = &results[0];
    assert_eq!(
        (r["ok"].as_bool(), r["status"].as_u64()),
        (Some(true), Some(500)),
        "{r}"
    );
    assert!(r["error"].is_null(), "{r}");
}

#[test]
fn the_failure_breakdown_counts_each_failed_entry_once() {
    let server = TestServer::start();
    server.route("/big404", |_| Reply {
        status: 404,
        ..Reply::ok([b'x'; 5000])
    });
    // /ok, a redirect loop and a small 404 are built in.
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let urls = ["/fault/self-redirect", "/big404", "/small404", "/ok"].map(|p| server.url(p));
    let mut args = vec![
        "--json",
        "--accept",
        "200-299",
        "--max-size",
        "1000",
        "--max-redirects",
        "2",
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    args.extend(urls.iter().map(String::as_str));
    let out = run(&args);
    out.assert_code(1);
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["failed"], 3, "{s}");
    assert_eq!(
        s["failed_by_kind"],
        serde_json::json!({"redirects": 1, "too_large": 1}),
        "{s}"
    );
    assert_eq!(s["failed_by_status"], serde_json::json!({"404": 1}), "{s}");
    // The text summary says the same, each failure once.
    assert!(
        out.stderr
            .contains("  failed: 404 x1, redirects x1, too_large x1\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unchanged_file_is_not_a_failed_status() {
    // --update's 304 is ok even when --accept leaves 304 out.
    let server = TestServer::routed(|req| {
        let reply = match req.header("if-none-match") {
            Some("\"v1\"") => Reply::status(304),
            _ => Reply::ok("body"),
        };
        reply.header("ETag", "\"v1\"")
    });
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let out = dir.path().join("out");
    let url = server.url("/f");
    let args = [
        "--json",
        "--update",
        "-o",
        out.to_str().unwrap(),
        "--accept",
        "200-299",
        "--summary-json",
        summary.to_str().unwrap(),
        &url,
    ];
    run(&args).assert_code(0);
    let second = run(&args);
    second.assert_code(0);
    assert_eq!(second.single()["status"], 304);
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        (s["ok"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(s["failed_by_status"], serde_json::json!({}), "{s}");
    assert!(!second.stderr.contains("failed:"), "{}", second.stderr);
}
