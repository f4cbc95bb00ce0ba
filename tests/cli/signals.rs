//! SIGINT and SIGTERM: what finished is printed, the rest is written to
//! --write-failed, the grace, a second signal, the exit code.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{Reply, TestServer};
use crate::support::{WAIT, read_lines, summary};
use crate::{Run, Running, command, lines};

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
fn a_second_signal_still_writes_the_resume_list_and_the_summary() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let failed = dir.path().join("failed.txt");
    let report = dir.path().join("summary.json");
    // Two workers, both stuck on servers that never answer; five queued.
    let mut urls = vec![server.url("/fault/hang?i=0"), server.url("/fault/hang?i=1")];
    urls.extend((2..7).map(|i| server.url(&format!("/ok?i={i}"))));
    let mut args = vec![
        "--json".to_owned(),
        "-j".into(),
        "2".into(),
        "-m".into(),
        "120".into(),
        "--write-failed".into(),
        failed.to_str().unwrap().into(),
        "--summary-json".into(),
        report.to_str().unwrap().into(),
    ];
    args.extend(urls.iter().cloned());
    let running = Running::spawn(command(&args), None);
    assert!(server.wait_for_requests(2, WAIT), "requests never arrived");
    running.signal("INT");
    assert!(
        running.wait_stderr(WAIT, |s| s.contains("interrupted")),
        "no word of the first signal"
    );
    running.signal("INT");
    let run = running.finish();
    run.assert_code(130);
    // The two in flight were started: a line each, cancelled.
    let results = run.results();
    assert_eq!(results.len(), 2, "{}", run.stdout_text());
    for r in &results {
        assert_eq!(r["error"]["kind"], "cancelled", "{r}");
    }
    // Every entry not finished ok, exactly once, ready to feed back.
    let mut listed = read_lines(&failed);
    listed.sort();
    let mut expected = urls.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let s = summary(&report);
    assert_eq!(s["entries"], 7, "{s}");
    assert_eq!(s["not_started"], 5, "{s}");
    assert!(run.stderr.contains("7 entries"), "{}", run.stderr);
}

#[test]
fn an_interrupt_with_nothing_in_flight_is_still_said() {
    // The pipe stays open: the reader waits on it, nothing is in flight.
    let server = TestServer::start();
    let mut cmd = command(["-q".to_owned()]);
    cmd.stdin(std::process::Stdio::piped());
    let mut running = Running::spawn(cmd, None);
    let mut stdin = running.take_stdin();
    {
        use std::io::Write;
        writeln!(stdin, "{}", server.url("/ok")).unwrap();
    }
    // In flight or done: either way nothing new can start, and it is said.
    assert!(server.wait_for_requests(1, WAIT));
    running.signal("INT");
    let run = running.finish();
    drop(stdin);
    run.assert_code(130);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
}

#[test]
fn giving_up_with_every_worker_stuck_still_reads_the_list_to_its_end() {
    // Two workers stuck on a server that never answers, the queue full,
    // the reader blocked on it: every entry of the file must still be
    // accounted for, in input order with --ordered.
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    let failed = dir.path().join("failed.txt");
    let urls: Vec<String> = (0..30)
        .map(|i| server.url(&format!("/fault/hang?i={i}")))
        .collect();
    std::fs::write(&list, lines(&urls)).unwrap();
    for ordered in [false, true] {
        let mut args = vec!["--json", "-j", "2", "-m", "120"];
        if ordered {
            args.push("--ordered");
        }
        args.extend(["--write-failed", failed.to_str().unwrap()]);
        args.extend(["-i", list.to_str().unwrap()]);
        let before = server.total_requests();
        let running = Running::spawn(command(&args), None);
        assert!(
            server.wait_for_requests(before + 2, WAIT),
            "requests never arrived"
        );
        running.signal("INT");
        assert!(running.wait_stderr(WAIT, |s| s.contains("interrupted")));
        running.signal("INT");
        let run = running.finish();
        run.assert_code(130);
        let seqs: Vec<u64> = run
            .results()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs.len(), 2, "ordered={ordered}: {}", run.stdout_text());
        if ordered {
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        }
        let mut listed = read_lines(&failed);
        listed.sort();
        let mut all = urls.clone();
        all.sort();
        assert_eq!(listed, all, "ordered={ordered}");
    }
}

#[test]
fn requests_that_finish_after_the_first_signal_are_normal_results() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let failed = dir.path().join("failed.txt");
    // Held at the gate until the run has taken the signal.
    let urls = [server.url("/gate?i=1"), server.url("/gate?i=2")];
    let running = Running::spawn(
        command([
            "--json",
            "-o",
            out.to_str().unwrap(),
            "--write-failed",
            failed.to_str().unwrap(),
            &urls[0],
            &urls[1],
        ]),
        None,
    );
    assert!(server.wait_for_requests(2, WAIT), "requests never arrived");
    running.signal("TERM");
    let stopping = running.wait_stderr(WAIT, |e| e.contains("interrupted"));
    server.open_gate();
    let run = running.finish();
    assert!(stopping, "the signal was not taken:\n{}", run.stderr);
    run.assert_code(143);
    let results = run.results();
    assert_eq!(results.len(), 2, "{}", run.stderr);
    for r in &results {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["status"], 200, "{r}");
        let saved = r["saved_to"].as_str().expect("saved");
        assert!(Path::new(saved).is_file(), "{saved} missing");
    }
    assert!(
        read_lines(&failed).is_empty(),
        "finished entries listed as failed"
    );
    assert!(
        !run.stderr.contains("Ctrl-C"),
        "SIGTERM told to press Ctrl-C:\n{}",
        run.stderr
    );
}

#[test]
fn an_entry_waiting_to_retry_is_reported_once_when_the_run_gives_up() {
    // One worker stuck on a server that never answers, one entry parked on
    // a 503 that asked to come back in 30 s. The first signal ends the
    // parked entry with its answer; the second stops waiting for the stuck
    // one. The parked entry must not come back as "cancelled" too.
    let server = TestServer::start();
    server.route("/busy", |_| Reply::status(503).header("Retry-After", "30"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.ndjson");
    let failed = dir.path().join("failed.txt");
    let report = dir.path().join("summary.json");
    let urls = [server.url("/fault/hang"), server.url("/busy")];
    let mut cmd = command([
        "--json",
        "-j",
        "2",
        "-m",
        "120",
        "--grace",
        "120",
        "--write-failed",
        failed.to_str().unwrap(),
        "--summary-json",
        report.to_str().unwrap(),
        &urls[0],
        &urls[1],
    ]);
    cmd.stdout(File::create(&out).unwrap())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn fetchpool");
    let kill = |signal: &str| {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} failed");
    };
    assert!(server.wait_for_requests(2, WAIT), "requests never arrived");
    let printed = |n: usize| {
        let start = Instant::now();
        while std::fs::read_to_string(&out).unwrap().lines().count() < n {
            if start.elapsed() > WAIT {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    };
    kill("INT");
    let parked_ended = printed(1);
    kill("INT");
    let status = crate::wait_bounded(&mut child);
    assert!(
        parked_ended,
        "the parked entry did not end on the first signal"
    );
    assert_eq!(status.code(), Some(130));
    let text = std::fs::read_to_string(&out).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs.len(), 2, "one line per entry:\n{text}");
    assert_eq!(
        seqs.iter().collect::<BTreeSet<_>>().len(),
        2,
        "an entry twice:\n{text}"
    );
    let mut listed = read_lines(&failed);
    listed.sort();
    let mut expected = urls.to_vec();
    expected.sort();
    assert_eq!(listed, expected, "--write-failed");
    assert_eq!(summary(&report)["entries"], 2);
}
