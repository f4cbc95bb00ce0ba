//! Exit codes 0 and 1, and --fail-fast; a closed stderr changes none of
//! them (a closed stdout: `closed_stdout`).

use crate::run;
use crate::server::TestServer;
use crate::support::{json_args, numbered};

#[test]
fn all_ok_exits_0_with_a_summary_unless_quiet() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 3);
    let run = run(&urls);
    run.assert_code(0);
    assert_eq!(run.lines().len(), 3);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("summary:")),
        "no summary on stderr:\n{}",
        run.stderr
    );

    let mut quiet = vec!["-q".to_string()];
    quiet.extend(urls);
    let run = crate::run(&quiet);
    run.assert_code(0);
    assert!(run.stderr.is_empty(), "-q stderr:\n{}", run.stderr);
}

#[test]
fn http_error_statuses_fail_the_run_with_exit_1() {
    let server = TestServer::start();
    for path in ["/status/404", "/status/500"] {
        let run = run(&json_args(
            &["--retries", "0"],
            &[server.url("/ok"), server.url(path)],
        ));
        run.assert_code(1);
        let failed = &run.by_seq()[&1];
        assert_eq!(failed["ok"], false, "{failed}");
        assert_eq!(failed["status"], path[8..].parse::<u16>().unwrap());
        assert!(failed["error"].is_null(), "{failed}");
    }
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

#[test]
fn a_closed_stderr_keeps_the_exit_code_and_never_panics() {
    let server = TestServer::start();
    let url = server.url("/status/500");
    for (args, code) in [
        (vec!["--retries", "0", url.as_str()], 1),
        (
            vec!["--retries", "0", "--progress", "plain", url.as_str()],
            1,
        ),
        (vec!["-j", "0"], 2),
    ] {
        let mut cmd = crate::command(&args);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // The reading end closed before fetchpool writes a byte to it.
        drop(child.stderr.take());
        let status = crate::wait_bounded(&mut child);
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
}

/// stderr that refuses every write (`/dev/full`: a full disk under
/// `2>log`) must not change the exit code: the summary, `-v` traces and
/// the usage error are lost, the run ends as documented, without a panic.
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_stderr_keeps_the_documented_exit_code() {
    let server = TestServer::start();
    let (ok, missing) = (server.url("/ok"), server.url("/status/404"));
    for (args, code) in [
        (vec!["-v", ok.as_str()], 0),
        (vec![ok.as_str(), missing.as_str()], 1),
        (vec!["--no-such-flag", ok.as_str()], 2),
    ] {
        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = crate::command(&args)
            .stderr(full)
            .output()
            .expect("run fetchpool");
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}
