//! Stdout: the text line, --json, --format, --ordered, --failures-only, and
//! escaping of everything a URL or server controls.

use std::collections::BTreeSet;

use crate::server::{Reply, TestServer};
use crate::support::{
    args, assert_no_raw_controls, assert_one_line_usage_error, json_args, listing, numbered,
    sha256_hex, strings, url_of,
};
use crate::{assert_all_seqs, kind, lines, refused_port, run, run_stdin};

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
fn format_fills_every_placeholder_and_escape() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("saved");
    let url = server.url("/redirect/1");
    let template = r"{seq}|{url}|{ok}|{status}|{bytes}|{attempts}|{final_url}|{error}|{sha256}|{saved_to}\n{{x}}\\{elapsed_ms}";
    let run = run(&[
        "--format",
        template,
        "--sha256",
        "-o",
        dir.to_str().unwrap(),
        &url,
    ]);
    run.assert_code(0);
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "`\\n` makes two lines: {lines:?}");
    let names = listing(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    let saved = dir.join(names.first().unwrap());
    assert_eq!(std::fs::read(&saved).unwrap(), b"ok\n");
    assert_eq!(
        lines[0],
        format!(
            "0|{url}|true|200|3|1|{}||{}|{}",
            server.url("/ok"),
            sha256_hex(b"ok\n"),
            saved.display()
        )
    );
    let elapsed = lines[1]
        .strip_prefix("{x}\\")
        .unwrap_or_else(|| panic!("`{{{{x}}}}\\\\` renders as `{{x}}\\`: {:?}", lines[1]));
    // A plain decimal number of milliseconds: no unit, sign or exponent.
    let (whole, fraction) = elapsed.split_once('.').unwrap_or((elapsed, "0"));
    assert!(
        [whole, fraction]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "{{elapsed_ms}} renders as {elapsed:?}"
    );
}

#[test]
fn format_renders_success_and_failure_lines_exactly() {
    let server = TestServer::start();
    let ok = server.url("/bytes/5");
    let not_found = server.url("/status/404");
    let refused = format!("http://127.0.0.1:{}/x", refused_port());
    let invalid = "ftp://127.0.0.1/file".to_string();
    let secret = format!("http://user:hunter2@127.0.0.1:{}/ok?who=me", server.port());
    let urls = [&ok, &not_found, &refused, &invalid, &secret];

    // The same run as JSON gives the messages the template must render.
    let json = run(&args(&["--json", "--retries", "0"], &urls));
    json.assert_code(1);
    let json = json.by_seq();
    let message = |seq: u64| {
        let r = &json[&seq];
        format!(
            "{}: {}",
            kind(r).unwrap(),
            r["error"]["message"].as_str().unwrap()
        )
    };
    assert_eq!(kind(&json[&2]), Some("connect"), "{}", json[&2]);
    assert_eq!(kind(&json[&3]), Some("invalid_url"), "{}", json[&3]);

    let template = r"{seq}\t{status}\t{ok}\t{url}\t{error}";
    let run = run(&args(
        &["--format", template, "--ordered", "--retries", "0"],
        &urls,
    ));
    run.assert_code(1);
    let redacted = format!("http://user:***@127.0.0.1:{}/ok?who=me", server.port());
    let expected = [
        format!("0\t200\ttrue\t{ok}\t"),
        format!("1\t404\tfalse\t{not_found}\t"),
        format!("2\t\tfalse\t{refused}\t{}", message(2)),
        format!("3\t\tfalse\t{invalid}\t{}", message(3)),
        format!("4\t200\ttrue\t{redacted}\t"),
    ];
    assert_eq!(run.lines(), expected, "stderr:\n{}", run.stderr);
    assert!(
        message(2).len() > "connect: ".len(),
        "empty message: {}",
        message(2)
    );
    run.assert_absent("hunter2");
}

#[test]
fn unknown_placeholder_is_a_usage_error_that_names_it() {
    let server = TestServer::start();
    let run = run(&["--format", "{seq} {nope}", &server.url("/ok")]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("{nope}"),
        "stderr does not name {{nope}}:\n{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
    assert_eq!(
        server.total_requests(),
        0,
        "a usage error fetched something"
    );
}

#[test]
fn format_brace_mistakes_are_usage_errors_that_point_at_them() {
    let server = TestServer::start();
    let url = server.url("/ok");
    for (template, wanted) in [
        ("{status", "column 1"),
        ("x{status y", "column 2"),
        ("a}b", "column 2"),
        ("}", "column 1"),
        ("{ok}{", "column 5"),
    ] {
        let run = run(&["--format", template, url.as_str()]);
        let err = assert_one_line_usage_error(&run);
        assert!(err.contains(wanted), "{template:?}: {err}");
        assert!(
            !err.contains("{status y}"),
            "names a brace never typed: {err}"
        );
    }
    for (template, printed) in [("{{a}}b}}", "{a}b}"), ("{status}", "200")] {
        let good = run(&["--format", template, url.as_str()]);
        good.assert_code(0);
        assert_eq!(good.stdout_text(), format!("{printed}\n"));
    }
    assert_eq!(server.hits("/ok"), 2);
}

#[test]
fn format_values_are_escaped_and_the_template_text_is_not() {
    let server = TestServer::start();
    let input = lines(&[
        format!("{}\u{202e}", server.url("/ok")).as_str(),
        "ftp://127.0.0.1/a\tb\x1b",
    ]);
    let run = run_stdin(&["--ordered", "--format", r"{seq}\t{url}\t{error}"], input);
    run.assert_code(1);
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout_text());
    for l in &lines {
        assert_no_raw_controls(&l.replace('\t', " "));
        assert_eq!(l.matches('\t').count(), 2, "a value added a tab: {l:?}");
    }
    assert!(lines[0].ends_with("/ok\\u{202e}\t"), "{:?}", lines[0]);
    assert!(
        lines[1].starts_with("1\tftp://127.0.0.1/a\\tb\\x1b\tinvalid_url: "),
        "{:?}",
        lines[1]
    );
}

#[test]
fn text_lines_escape_controls_and_bidi_from_input() {
    let server = TestServer::start();
    server.serve_any();
    let bidi = server.url("/invoice\u{202e}fdp.exe");
    let input = lines(&[
        bidi.as_str(),
        "http://127.0.0.1:1/\x1b]0;pwned\x07\x1b[2J",
        "\u{9b}31mexample.com/\u{2066}x",
    ]);
    let run = run_stdin(&["--retries", "0"], input);
    run.assert_code(1);
    let out = run.stdout_text();
    assert_eq!(run.lines().len(), 3, "{out}");
    assert_no_raw_controls(&out);
    assert_no_raw_controls(&run.stderr);
    assert!(out.contains("/invoice\\u{202e}fdp.exe"), "{out}");
    assert!(out.contains("\\x1b]0;pwned\\x07\\x1b[2J"), "{out}");
    assert!(out.contains("\\u{9b}31m"), "{out}");
}

#[test]
fn text_line_shows_the_hash_the_saved_path_and_retries() {
    let server = TestServer::start();
    // 500 twice, then 200: retried with backoff, but no pushback pause.
    server.route("/flaky/*", |req| match req.nth {
        1 | 2 => Reply::status(500),
        _ => Reply::ok("ok\n"),
    });
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("dl");
    let dir = dir.to_str().unwrap();
    let urls = [
        server.url("/ok"),
        server.url("/status/404"),
        server.url("/flaky/a"),
    ];
    let mut flags = strings(&["--sha256", "-o", dir, "--json", "--ordered"]);
    flags.extend(urls.iter().cloned());
    let json = run(&flags).results();
    let sha = json[0]["sha256"].as_str().unwrap().to_string();
    let saved = json[0]["saved_to"].as_str().unwrap().to_string();

    let mut flags = strings(&["--sha256", "-o", dir, "--ordered"]);
    flags.extend(urls.iter().cloned());
    flags.push(server.url("/flaky/b"));
    let run = run(&flags);
    run.assert_code(1);
    let lines = run.lines();
    assert_eq!(lines.len(), 4, "{}", run.stdout_text());
    assert!(lines[0].contains(&sha[..12]), "{}", lines[0]);
    assert!(
        !lines[0].contains(&sha),
        "the full hash makes the line long: {}",
        lines[0]
    );
    assert!(lines[0].contains(&saved), "{}", lines[0]);
    assert!(lines[3].contains("(3 tries)"), "{}", lines[3]);
    assert!(!lines[0].contains("tries"), "{}", lines[0]);
    let col = lines[0].find("http://").unwrap();
    for l in &lines {
        assert_eq!(l.find("http://"), Some(col), "columns moved: {l}");
    }
}
