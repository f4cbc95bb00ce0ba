//! Inputs, output formats, exit codes and concurrency (issue 2).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::server::TestServer;
use crate::{assert_all_seqs, kind, lines, refused_port, run, run_stdin};

/// `count` distinct URLs for `path` (`path?i=N`), so hits can be told apart.
fn numbered(server: &TestServer, path: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| server.url(&format!("{path}?i={i}")))
        .collect()
}

/// `--json` followed by `urls` as positional arguments.
fn json_args(extra: &[&str], urls: &[String]) -> Vec<String> {
    let mut args = vec!["--json".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(urls.iter().cloned());
    args
}

fn url_of(result: &Value) -> &str {
    result["url"].as_str().expect("url is a string")
}

/// Asserts a usage error: exit 2, a one-line message, nothing fetched.
fn assert_usage_error(run: &crate::Run, server: &TestServer) {
    run.assert_code(2);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
    assert_eq!(
        run.stderr.trim_end().lines().count(),
        1,
        "expected a one-line message, got:\n{}",
        run.stderr
    );
    assert_eq!(
        server.total_requests(),
        0,
        "a usage error fetched something"
    );
}

#[test]
fn positional_file_and_stdin_entries_each_give_one_result_in_seq_order() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 6);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("urls.txt");
    std::fs::write(&file, lines(&urls[2..4])).unwrap();
    let file = file.to_str().unwrap();

    let mut args = json_args(&[], &urls[..2]);
    args.extend(["-i", file, "-i", "-"].map(String::from));
    let run = run_stdin(&args, lines(&urls[4..]));

    run.assert_code(0);
    let results = run.by_seq();
    assert_all_seqs(&results, 6);
    for (seq, url) in urls.iter().enumerate() {
        assert_eq!(url_of(&results[&(seq as u64)]), url, "seq {seq}");
        assert_eq!(server.hits(&format!("/ok?i={seq}")), 1);
    }
}

#[test]
fn stdin_is_read_when_no_url_is_given() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 3);
    let run = run_stdin(&["--json"], lines(&urls));
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), 3);
    assert_eq!(server.total_requests(), 3);
}

#[test]
fn json_lines_carry_every_field_with_the_right_values() {
    let server = TestServer::start();
    let urls = [
        server.url("/ok"),
        server.url("/bytes/1234"),
        server.url("/status/404"),
    ];
    let run = run(&json_args(&[], &urls));
    let results = run.by_seq();
    assert_all_seqs(&results, 3);

    let expected = [(true, 200, 3), (true, 200, 1234), (false, 404, 11)];
    for (seq, (ok, status, bytes)) in expected.into_iter().enumerate() {
        let r = &results[&(seq as u64)];
        assert_eq!(url_of(r), urls[seq]);
        assert_eq!(r["ok"], ok, "{r}");
        assert_eq!(r["status"], status, "{r}");
        assert_eq!(r["bytes"], bytes, "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        assert!(r["elapsed_ms"].is_number(), "{r}");
        assert!(r["final_url"].is_null(), "{r}");
        assert!(r["error"].is_null(), "an HTTP status is not an error: {r}");
    }
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
fn an_input_without_entries_is_a_clean_run_of_zero() {
    // A retry list from a clean run is empty: feeding it back is not an
    // error. (Only no source at all, stdin a terminal, is exit 2.)
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let summary = dir.path().join("s.json");
    for run in [
        run::<&str>(&[]),
        run_stdin::<&str>(&[], ""),
        run_stdin(&["--json"], "\n# only a comment\n\n"),
        run(&[
            "-i",
            empty.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ]),
    ] {
        run.assert_code(0);
        assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
        assert!(run.stderr.contains("0 entries"), "{}", run.stderr);
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(report["entries"], 0);
}

#[test]
fn a_bad_flag_is_a_usage_error_and_fetches_nothing() {
    // clap's own message spans several lines (error, tip, usage): only the
    // exit code, the flag's name and "nothing fetched" are checked here.
    let server = TestServer::start();
    let run = run(&["--no-such-flag".to_string(), server.url("/ok")]);
    run.assert_code(2);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("--no-such-flag"), "{}", run.stderr);
    assert_eq!(server.total_requests(), 0);
}

#[test]
fn out_of_range_worker_counts_are_usage_errors() {
    let server = TestServer::start();
    for workers in ["0", "4097", "many"] {
        let run = run(&["-j".to_string(), workers.to_string(), server.url("/ok")]);
        run.assert_code(2);
        assert!(run.stdout.is_empty(), "-j {workers}");
    }
    assert_eq!(server.total_requests(), 0);
}

#[test]
fn a_missing_input_file_is_a_usage_error_and_fetches_nothing() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let missing = missing.to_str().unwrap();
    let run = run(&[server.url("/ok"), "-i".into(), missing.into()]);
    assert_usage_error(&run, &server);
    assert!(run.stderr.contains("missing.txt"), "{}", run.stderr);
}

#[test]
fn invalid_entries_yield_invalid_url_and_the_run_goes_on() {
    let server = TestServer::start();
    let long = format!("{}{}", server.url("/"), "a".repeat(1 << 20));
    let entries: Vec<Vec<u8>> = vec![
        server.url("/ok?i=first").into_bytes(),
        b"ftp://x".to_vec(),
        b"example.com".to_vec(),
        b"::not a url::".to_vec(),
        [server.url("/bad-utf8-").as_bytes(), b"\xff\xfe"].concat(),
        // NUL in a path is percent-encoded (WHATWG); in a host it is refused.
        b"http://nul\0byte/".to_vec(),
        long.into_bytes(),
        server.url("/ok?i=last").into_bytes(),
    ];
    let input: Vec<u8> = entries
        .iter()
        .flat_map(|e| [&e[..], b"\n"].concat())
        .collect();

    let run = run_stdin(&["--json"], input);
    run.assert_code(1);
    let out = run.lines();
    let results = run.by_seq();
    assert_all_seqs(&results, 8);
    for seq in [0, 7] {
        assert_eq!(results[&seq]["ok"], true, "{}", results[&seq]);
    }
    for seq in 1..=6 {
        let r = &results[&seq];
        assert_eq!(kind(r), Some("invalid_url"), "seq {seq}: {r}");
        assert_eq!(r["ok"], false, "{r}");
        assert!(r["status"].is_null(), "{r}");
        let message = r["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.is_empty(),
            "seq {seq}: the message names the problem"
        );
    }
    let message = results[&2]["error"]["message"].as_str().unwrap();
    assert!(message.contains("https://"), "no https:// hint: {message}");
    let long_line = out.iter().find(|l| l.contains("\"seq\":6")).unwrap();
    assert!(long_line.len() < 1024, "{} bytes", long_line.len());
    assert_eq!(server.hits("/ok"), 2);
    assert_eq!(server.total_requests(), 2, "an invalid entry was fetched");
}

#[test]
fn blank_and_comment_lines_are_skipped_and_not_numbered() {
    let server = TestServer::start();
    let (a, b) = (server.url("/ok?i=a"), server.url("/ok?i=b"));
    let input = format!("\n# comment\n  {a}  \n   \n\t# indented comment\n{b}\n\n");
    let run = run_stdin(&["--json"], input);
    run.assert_code(0);
    let results = run.by_seq();
    assert_all_seqs(&results, 2);
    assert_eq!(url_of(&results[&0]), a);
    assert_eq!(url_of(&results[&1]), b);
}

#[test]
fn redirects_are_followed_and_final_url_is_set_only_then() {
    let server = TestServer::start();
    let run = run(&json_args(
        &[],
        &[server.url("/redirect/2"), server.url("/ok")],
    ));
    run.assert_code(0);
    let results = run.by_seq();
    let redirected = &results[&0];
    assert_eq!(redirected["status"], 200, "{redirected}");
    assert_eq!(redirected["bytes"], 3, "{redirected}");
    assert_eq!(redirected["final_url"], server.url("/ok"), "{redirected}");
    assert_eq!(url_of(redirected), server.url("/redirect/2"));
    assert!(results[&1]["final_url"].is_null(), "{}", results[&1]);
    assert_eq!(server.hits("/redirect/2"), 1);
    assert_eq!(server.hits("/redirect/1"), 1);
}

#[test]
fn workers_give_exactly_that_many_requests_in_flight() {
    let server = TestServer::start();
    server.set_hold_target(4);
    let urls = numbered(&server, "/hold", 12);
    let run = run(&json_args(&["-j", "4"], &urls));
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), 12);
    assert_eq!(server.max_in_flight(), 4);
}

#[test]
fn keep_alive_reuses_one_connection_per_worker() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 200);
    run_stdin(&["-j", "4", "--json"], lines(&urls)).assert_code(0);
    assert_eq!(server.total_requests(), 200);
    assert!(
        server.connections() <= 4,
        "{} connections for 4 workers",
        server.connections()
    );
}

#[test]
fn ordered_prints_in_seq_order() {
    let server = TestServer::start();
    // The slow first entry finishes last; --ordered must still print it first.
    let mut urls = vec![server.url("/slow/300")];
    urls.extend(numbered(&server, "/ok", 7));
    let run = run(&json_args(&["-j", "4", "--ordered"], &urls));
    run.assert_code(0);
    let seqs: Vec<u64> = run
        .results()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
}

#[test]
fn text_output_lines_up_the_url_column() {
    let server = TestServer::start();
    let urls = [
        server.url("/ok"),
        server.url("/bytes/123456"),
        server.url("/status/404"),
        format!("http://127.0.0.1:{}/refused", refused_port()),
        server.url("/redirect/1"),
        server.url("/bytes/0"),
    ];
    let mut args = vec!["--retries".to_string(), "0".into()];
    args.extend(urls.iter().cloned());
    let run = run(&args);
    run.assert_code(1);
    let out = run.lines();
    assert_eq!(out.len(), urls.len(), "{}", run.stdout_text());
    let columns: BTreeSet<usize> = out
        .iter()
        .map(|line| {
            let byte = line.find("http://").expect("a line without its URL");
            line[..byte].chars().count()
        })
        .collect();
    assert_eq!(columns.len(), 1, "URL columns differ:\n{}", out.join("\n"));
}

#[test]
fn two_thousand_urls_from_stdin_give_every_seq_once() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 2000);
    let run = run_stdin(&["-j", "32", "--json"], lines(&urls));
    run.assert_code(0);
    assert_eq!(run.lines().len(), 2000);
    assert_all_seqs(&run.by_seq(), 2000);
    assert_eq!(server.total_requests(), 2000);
}

#[test]
fn failures_only_prints_only_failures() {
    let server = TestServer::start();
    let urls = [
        server.url("/ok"),
        server.url("/status/404"),
        server.url("/bytes/10"),
        format!("http://127.0.0.1:{}/", refused_port()),
        server.url("/status/500"),
    ];
    let run = run(&json_args(&["--failures-only", "--retries", "0"], &urls));
    run.assert_code(1);
    let seqs: BTreeSet<u64> = run.by_seq().into_keys().collect();
    assert_eq!(seqs, BTreeSet::from([1, 3, 4]));
}

#[test]
fn headers_and_user_agent_reach_the_server() {
    let server = TestServer::start();
    let args = ["-H", "X-Test: 1", "-A", "agent/1"];
    run(&json_args(&args, &[server.url("/ok")])).assert_code(0);
    run(&json_args(&[], &[server.url("/ok?default")])).assert_code(0);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-test"), Some("1"));
    assert_eq!(requests[0].header("user-agent"), Some("agent/1"));
    let default_agent = format!("fetchpool/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(requests[1].header("user-agent"), Some(&*default_agent));
}

#[test]
fn head_requests_read_no_body() {
    let server = TestServer::start();
    let run = run(&json_args(&["-X", "HEAD"], &[server.url("/bytes/500")]));
    run.assert_code(0);
    let r = run.single();
    assert_eq!(
        (r["status"].as_u64(), r["bytes"].as_u64()),
        (Some(200), Some(0))
    );
    assert_eq!(server.requests()[0].method, "HEAD");
}
