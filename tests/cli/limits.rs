//! A tight open-files limit: fewer workers, said once, and every entry still
//! accounted for.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::server::TestServer;
use crate::support::{WAIT, read_lines};
use crate::{Running, assert_all_seqs, command, lines, parse_result};

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
fn a_tight_open_files_limit_caps_requests_in_flight_and_fails_none() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    // 400 requests fill the cap (64 workers under 256 files with -o) six
    // times over: descriptors must be given back, not only rationed once.
    let n = 400;
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
fn sigterm_under_a_tight_limit_accounts_for_every_entry_exactly_once() {
    // 1,500 mixed entries at -j 1000 under `ulimit -n 256`, -o, SIGTERM
    // once a fifth have arrived: each entry is either an ok result whose
    // file holds its body, or a line of --write-failed, never both. The
    // cap (64 workers) is refilled several times before and after the signal.
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let failed = dir.path().join("failed.txt");
    let list = dir.path().join("urls.txt");
    let n = 1500u64;
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
        server.wait_for_requests(n as usize / 5, WAIT),
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
fn auto_under_a_tight_open_files_limit_says_so_and_fails_none() {
    // 64 files leave no room above the descriptors kept in reserve: one
    // worker. Said on stderr, as for -j N, and every entry still ends ok.
    let server = TestServer::start();
    let n = 20;
    let urls: Vec<String> = (0..n).map(|i| server.url(&format!("/ok?i={i}"))).collect();
    let mut args = vec!["--json", "-j", "auto"];
    args.extend(urls.iter().map(String::as_str));
    let run = Running::spawn(under_open_files_limit(64, &args), None).finish();
    run.assert_code(0);
    assert!(
        run.stderr.contains("open-files limit (64)") && run.stderr.contains("-j auto"),
        "no word of the cap:\n{}",
        run.stderr
    );
    assert_eq!(run.stdout_text().lines().count(), n);
    assert_eq!(server.max_in_flight(), 1);
}
