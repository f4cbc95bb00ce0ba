//! A closed stdout (`| head -1`) ends the run quietly, while it fetches, while
//! it waits, and for --man, --completions and --help.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use crate::server::TestServer;
use crate::support::{WAIT, read_lines};
use crate::{command, drain, lines, parse_result, wait_bounded};

/// Runs with stdout a pipe whose reading end is already closed.
fn run_into_closed_pipe(args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = command(args);
    cmd.stdout(Stdio::from(writer));
    let mut child = cmd.spawn().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = wait_bounded(&mut child);
    (status.code().expect("exit code, not a signal"), stderr)
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
fn man_completions_and_help_are_quiet_on_a_closed_stdout() {
    for args in [
        &["--man"][..],
        &["--completions", "bash"],
        &["--completions", "zsh"],
        &["--help"],
        &["-h"],
        &["--version"],
    ] {
        let (code, stderr) = run_into_closed_pipe(args);
        assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
    }
}
