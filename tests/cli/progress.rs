//! Progress on stderr: plain status lines, the stuck URL, and off/quiet.

use std::time::Duration;

use crate::server::TestServer;
use crate::support::{WAIT, args, assert_no_raw_controls};
use crate::{Running, command};

#[test]
fn plain_progress_names_a_stuck_url_escaped() {
    let server = TestServer::start();
    let url = server.url("/gate?name=\u{202e}\u{2066}x");
    let live = Running::spawn(
        command(["--progress", "plain", "--progress-interval", "0.2", &url]),
        None,
    );
    let printed = live.wait_stderr(Duration::from_secs(30), |s| s.contains("waiting"));
    server.open_gate();
    let run = live.finish();
    run.assert_code(0);
    assert!(
        printed,
        "no plain progress line naming the URL:\n{}",
        run.stderr
    );
    assert_no_raw_controls(&run.stderr);
    assert!(
        run.stderr.contains("name=\\u{202e}\\u{2066}x"),
        "{}",
        run.stderr
    );
}

#[test]
fn plain_progress_prints_a_status_line_and_off_and_quiet_print_none() {
    let server = TestServer::start();
    let url = |name: &str| server.url(&format!("/gate?run={name}"));
    let quiet_runs: Vec<(&str, Running)> = [
        (
            "off",
            vec!["--progress", "off", "--progress-interval", "0.2"],
        ),
        (
            "no-progress",
            vec![
                "--no-progress",
                "--progress",
                "plain",
                "--progress-interval",
                "0.2",
            ],
        ),
        (
            "quiet",
            vec!["-q", "--progress", "plain", "--progress-interval", "0.2"],
        ),
        ("quiet-only", vec!["-q", "--progress-interval", "0.2"]),
    ]
    .into_iter()
    .map(|(name, flags)| {
        (
            name,
            Running::spawn(command(args(&flags, &[url(name)])), None),
        )
    })
    .collect();
    let plain_url = url("plain");
    let plain = Running::spawn(
        command([
            "--progress",
            "plain",
            "--progress-interval",
            "0.2",
            &plain_url,
        ]),
        None,
    );

    // The plain line comes every 0.2 s; the request is held until it shows
    // (or the bound passes), so every run above, started earlier with the
    // same interval, has run at least that long.
    let named = |l: &str| l.contains(" done") && l.contains(&plain_url);
    let printed = plain.wait_stderr(WAIT, |s| s.lines().any(named));
    server.open_gate();
    let plain = plain.finish();
    plain.assert_code(0);
    assert!(
        printed,
        "no plain progress line within {WAIT:?}:\n{}",
        plain.stderr
    );
    let line = plain.stderr.lines().find(|l| named(l)).unwrap().to_string();
    assert!(line.starts_with("fetchpool: 0/1 done, "), "{line}");
    for (name, live) in quiet_runs {
        let run = live.finish();
        run.assert_code(0);
        for l in run.stderr.lines() {
            assert!(
                !l.contains("done") && !l.contains("/gate"),
                "{name}: progress on stderr: {l}"
            );
        }
        if name.starts_with("quiet") {
            assert!(run.stderr.is_empty(), "{name} stderr:\n{}", run.stderr);
        }
    }
    assert_eq!(server.gate_fallbacks(), 0);
}

#[test]
fn ci_logs_get_plain_lines_and_a_bar_that_cannot_draw_says_so() {
    let server = TestServer::start();
    let ci_url = server.url("/gate?run=ci");
    let mut cmd = command(["--progress-interval", "0.2", &ci_url]);
    cmd.env("CI", "true");
    let ci = Running::spawn(cmd, None);
    let printed = ci.wait_stderr(WAIT, |s| s.contains(" done"));
    let mut cmd = command(["--progress-interval", "0.2", &server.url("/ok")]);
    cmd.env("CI", "false");
    let not_ci = Running::spawn(cmd, None).finish();
    let bar = Running::spawn(command(["--progress", "bar", &server.url("/ok")]), None).finish();
    server.open_gate();
    let ci = ci.finish();
    ci.assert_code(0);
    assert!(
        printed,
        "CI=true with stderr piped: no plain line\n{}",
        ci.stderr
    );
    not_ci.assert_code(0);
    assert!(!not_ci.stderr.contains(" done,"), "{}", not_ci.stderr);
    bar.assert_code(0);
    let said: Vec<&str> = bar
        .stderr
        .lines()
        .filter(|l| l.contains("--progress bar"))
        .collect();
    assert_eq!(said.len(), 1, "{}", bar.stderr);
    assert!(
        said[0].contains("not") && said[0].contains("terminal"),
        "{}",
        said[0]
    );
}
