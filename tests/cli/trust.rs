//! One true result per entry under signals, tight open-file limits, a
//! closed stdout and bad output paths.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::server::TestServer;
use crate::{Running, assert_all_seqs, command, lines, parse_result, run, wait_bounded};

/// How long to wait for the server to see requests (never reached when
/// things work).
const WAIT: Duration = Duration::from_secs(30);

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("summary written");
    serde_json::from_str(&text).expect("summary is JSON")
}

/// The binary with `args` under an open-files limit of `n`, in the
/// harness's environment. `ulimit -n` in sh sets the soft and the hard
/// limit: there is nothing to raise.
fn under_open_files_limit(n: u32, args: &[&str]) -> Command {
    let base = command(["x"]);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(r#"ulimit -n {n} && exec "$@""#))
        .arg("sh")
        .arg(base.get_program())
        .args(args);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

#[test]
fn requests_that_finish_after_the_first_signal_are_normal_results() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let failed = dir.path().join("failed.txt");
    let urls = [server.url("/slow/1500?i=1"), server.url("/slow/1500?i=2")];
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
    let run = running.finish();
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
fn a_closed_stdout_ends_the_run_while_it_waits() {
    // `fetchpool FAST HANG HANG HANG | head -1`: nothing more will be
    // written, so the process must end without waiting for the deadline.
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let failed = dir.path().join("failed.txt");
    let mut cmd = command([
        "-m".to_owned(),
        "300".into(),
        "-j".into(),
        "4".into(),
        "--write-failed".into(),
        failed.to_str().unwrap().into(),
        server.url("/ok"),
        server.url("/fault/hang?i=1"),
        server.url("/fault/hang?i=2"),
        server.url("/fault/hang?i=3"),
    ]);
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("/ok"), "{first}");
    assert!(server.wait_for_requests(4, WAIT), "requests never arrived");
    drop(stdout);
    // Bounded: panics if the process is still waiting on the hung URLs.
    let status = wait_bounded(&mut child);
    // Quietly, but not as a success: three entries never finished, so a
    // pipeline under `set -o pipefail` fails.
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        read_lines(&failed).len(),
        3,
        "unfinished entries not listed"
    );
}

#[test]
fn a_tight_open_files_limit_caps_requests_in_flight_and_fails_none() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    let n = 3000;
    let urls: Vec<String> = (0..n).map(|i| server.url(&format!("/ok?i={i}"))).collect();
    std::fs::write(&list, lines(&urls)).unwrap();
    let out = dir.path().join("out");
    let cmd = under_open_files_limit(
        256,
        &[
            "--json",
            "-j",
            "1000",
            "-o",
            out.to_str().unwrap(),
            "-i",
            list.to_str().unwrap(),
        ],
    );
    let run = Running::spawn(cmd, None).finish();
    run.assert_code(0);
    assert!(
        run.stderr.contains("open-files limit"),
        "no word of the cap:\n{}",
        run.stderr
    );
    let by_seq: BTreeMap<u64, Value> = run
        .stdout_text()
        .lines()
        .map(parse_result)
        .map(|r| (r["seq"].as_u64().unwrap(), r))
        .collect();
    assert_all_seqs(&by_seq, n);
    for r in by_seq.values() {
        assert_eq!(r["ok"], true, "{r}");
    }
    assert!(!run.stdout_text().contains("open files"));
    // The server never saw more at once than the cap allows.
    assert!(server.max_in_flight() < 1000, "{}", server.max_in_flight());
}

#[test]
fn output_paths_are_checked_before_the_first_request() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "x").unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, lines(&[server.url("/ok")])).unwrap();
    let list_s = list.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--summary-json", "/nonexistent/dir/s.json"],
            "--summary-json",
        ),
        (
            &["--write-failed", "/nonexistent/dir/f.txt"],
            "--write-failed",
        ),
        (&["-o", afile.to_str().unwrap()], "not a directory"),
        (&["--write-failed", list_s], "input file"),
    ];
    for (flags, says) in cases {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["-i", list_s]);
        let run = run(&args);
        run.assert_code(2);
        assert!(run.stderr.contains(says), "{flags:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(server.total_requests(), 0, "fetched before checking");
    assert_eq!(
        read_lines(&list),
        [server.url("/ok")],
        "the input was emptied"
    );
}

#[test]
fn the_same_url_saved_twice_keeps_both_bodies_and_a_manifest_that_checks() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Before, the three saves raced for one name: one file, three lines.
    server.serve_any();
    let url = server.url("/same.txt");
    let run = run(&[
        "--sha256",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "{sha256}  {saved_to}",
        &url,
        &url,
        &url,
    ]);
    run.assert_code(0);
    let manifest = run.stdout_text();
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines.len(), 3, "{manifest}");
    let mut names: Vec<&str> = lines
        .iter()
        .map(|l| l.split("  ").nth(1).unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 3, "saved under one name: {manifest}");
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(manifest.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn sigterm_under_a_tight_limit_accounts_for_every_entry_exactly_once() {
    // 5,000 mixed entries at -j 1000 under `ulimit -n 256`, -o, SIGTERM
    // once a fifth have arrived: each entry is either an ok result whose
    // file holds its body, or a line of --write-failed, never both.
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let failed = dir.path().join("failed.txt");
    let list = dir.path().join("urls.txt");
    let n = 5000u64;
    let urls: Vec<String> = (0..n)
        .map(|i| match i % 5 {
            0 => server.url(&format!("/status/404?i={i}")),
            1 => server.url(&format!("/slow/200?i={i}")),
            2 => server.url(&format!("/redirect/2?i={i}")),
            _ => server.url(&format!("/bytes/100?i={i}")),
        })
        .collect();
    std::fs::write(&list, lines(&urls)).unwrap();
    let cmd = under_open_files_limit(
        256,
        &[
            "--json",
            "-j",
            "1000",
            "--retries",
            "0",
            "-o",
            out.to_str().unwrap(),
            "--write-failed",
            failed.to_str().unwrap(),
            "-i",
            list.to_str().unwrap(),
        ],
    );
    let running = Running::spawn(cmd, None);
    assert!(
        server.wait_for_requests(1000, WAIT),
        "requests never arrived"
    );
    running.signal("TERM");
    let run = running.finish();
    run.assert_code(143);
    assert!(!run.stdout_text().contains("open files"), "{}", run.stderr);
    let mut ok = std::collections::BTreeSet::new();
    let mut seqs = std::collections::BTreeSet::new();
    for r in run.results() {
        let seq = r["seq"].as_u64().unwrap();
        assert!(seqs.insert(seq), "seq {seq} twice");
        if r["ok"] == true {
            let saved = r["saved_to"].as_str().expect("ok results are saved");
            let bytes = std::fs::read(saved).expect("saved file exists");
            assert_eq!(bytes.len() as u64, r["bytes"].as_u64().unwrap(), "{r}");
            ok.insert(r["url"].as_str().unwrap().to_owned());
        }
    }
    let listed = read_lines(&failed);
    let listed_set: std::collections::BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), listed_set.len(), "a URL listed twice");
    assert!(ok.is_disjoint(&listed_set), "ok entries listed as failed");
    assert_eq!(ok.len() + listed.len(), n as usize, "entries lost");
    assert!(!ok.is_empty() && !listed.is_empty());
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
fn a_broken_stdout_ends_the_run_without_waiting_for_slow_servers() {
    let server = TestServer::start();
    let mut cmd = command([
        "-m".to_owned(),
        "300".into(),
        server.url("/ok"),
        server.url("/fault/hang"),
    ]);
    cmd.stdout(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    );
    let mut child = cmd.spawn().unwrap();
    let status = wait_bounded(&mut child);
    assert_eq!(status.code(), Some(2));
}

#[test]
fn the_list_given_on_stdin_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let same = dir.path().join("same.txt");
    for flags in [
        vec!["--write-failed", list.to_str().unwrap()],
        vec!["--summary-json", list.to_str().unwrap()],
        vec![
            "--write-failed",
            same.to_str().unwrap(),
            "--summary-json",
            same.to_str().unwrap(),
        ],
    ] {
        let mut cmd = command(&flags);
        cmd.stdin(std::fs::File::open(&list).unwrap());
        let run = Running::spawn(cmd, None).finish();
        run.assert_code(2);
        assert_eq!(read_lines(&list), ["http://127.0.0.1:1/a"], "{flags:?}");
    }
}
