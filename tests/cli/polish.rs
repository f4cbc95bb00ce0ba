//! What a new user trips over: terminal safety, what the text line shows,
//! summary wording, closed pipes for --man, --format mistakes, bodiless
//! responses with -o, the man page, and one style for usage errors.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::server::TestServer;
use crate::{Running, command, lines, run, run_stdin, wait_bounded};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Asserts a usage error: exit 2, nothing on stdout, one line on stderr in
/// fetchpool's own style, free of control characters.
fn assert_one_line_usage_error(run: &crate::Run) -> String {
    run.assert_code(2);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
    let err = run.stderr.trim_end().to_string();
    assert_eq!(
        err.lines().count(),
        1,
        "expected one line, got:\n{}",
        run.stderr
    );
    assert!(err.starts_with("fetchpool: error: "), "{err}");
    assert_no_raw_controls(&run.stderr);
    err
}

/// Panics if `text` holds a control or bidi character other than newline.
fn assert_no_raw_controls(text: &str) {
    let bad = text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
    });
    assert!(bad.is_none(), "raw {bad:?} in {text:?}");
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- terminal safety

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
fn error_messages_on_stderr_quote_input_escaped() {
    let missing = "/nonexistent/\x1b[2J\u{202e}list.txt";
    let err = assert_one_line_usage_error(&run(&["-i", missing]));
    assert!(
        err.contains("/nonexistent/\\x1b[2J\\u{202e}list.txt"),
        "{err}"
    );

    let bad = run(&[
        "--progress",
        "\x1b]0;title\x07red\u{2067}",
        "http://127.0.0.1:1/",
    ]);
    let err = assert_one_line_usage_error(&bad);
    assert!(err.contains("red\\u{2067}"), "{err}");
}

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

// ---------------------------------------------------------------- the text line

#[test]
fn text_line_shows_the_hash_the_saved_path_and_retries() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("dl");
    let dir = dir.to_str().unwrap();
    let urls = [
        server.url("/ok"),
        server.url("/status/404"),
        server.url("/fault/flaky503/a"),
    ];
    let mut flags = strings(&["--sha256", "-o", dir, "--json", "--ordered"]);
    flags.extend(urls.iter().cloned());
    let json = run(&flags).results();
    let sha = json[0]["sha256"].as_str().unwrap().to_string();
    let saved = json[0]["saved_to"].as_str().unwrap().to_string();

    let mut flags = strings(&["--sha256", "-o", dir, "--ordered"]);
    flags.extend(urls.iter().cloned());
    flags.push(server.url("/fault/flaky503/b"));
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

// ---------------------------------------------------------------- summary

#[test]
fn summary_wording_counts_and_rates() {
    let server = TestServer::start();
    let one = run(&[server.url("/ok")]);
    one.assert_code(0);
    assert!(
        one.stderr.starts_with("summary: 1 entry, 1 ok, 0 failed\n"),
        "{}",
        one.stderr
    );

    let invalid = run(&["notaurl", "ftp://x/"]);
    invalid.assert_code(1);
    assert!(invalid.stderr.contains("2 entries"), "{}", invalid.stderr);
    assert!(
        !invalid.stderr.contains("/s"),
        "a rate although nothing was fetched:\n{}",
        invalid.stderr
    );

    let url = server.url("/ok");
    let dedup = run(&["--dedup", url.as_str(), url.as_str(), url.as_str()]);
    dedup.assert_code(0);
    assert!(
        dedup.stderr.contains("2 duplicates skipped"),
        "{}",
        dedup.stderr
    );
    assert!(
        dedup.stderr.starts_with("summary: 1 entry"),
        "{}",
        dedup.stderr
    );
}

// ---------------------------------------------------------------- closed pipes

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

// ---------------------------------------------------------------- --format mistakes

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

// ---------------------------------------------------------------- bodiless responses

#[test]
fn bodiless_responses_save_nothing_and_never_replace_a_download() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("dl");
    let d = dir.to_str().unwrap();
    let ok = server.url("/ok");

    let first = run(&["--json", "-o", d, ok.as_str()]);
    first.assert_code(0);
    let saved = first.single()["saved_to"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read(&saved).unwrap(), b"ok\n");

    let head = run(&["--json", "--sha256", "-X", "HEAD", "-o", d, ok.as_str()]);
    head.assert_code(0);
    let r = head.single();
    assert!(r["saved_to"].is_null(), "{r}");
    assert!(r["sha256"].is_null(), "a hash of no body: {r}");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        b"ok\n",
        "HEAD replaced the download"
    );

    let before = files_in(&dir);
    let statuses = [server.url("/status/204"), server.url("/status/304")];
    let mut flags = strings(&["--json", "-o", d]);
    flags.extend(statuses.iter().cloned());
    let bodiless = run(&flags);
    bodiless.assert_code(0);
    for r in bodiless.results() {
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["saved_to"].is_null(), "{r}");
    }
    assert_eq!(files_in(&dir), before, "a bodiless response created a file");

    let text = run(&["-X", "HEAD", "-o", d, ok.as_str()]);
    text.assert_code(0);
    assert!(
        text.stdout_text().contains("no body"),
        "{}",
        text.stdout_text()
    );
}

// ---------------------------------------------------------------- help and man page

#[test]
fn man_page_has_synopsis_errors_fields_exit_codes_and_examples() {
    let man = run(&["--man"]);
    man.assert_code(0);
    let roff = man.stdout_text();
    // Plain text: no font escapes, roff's `\-` as `-`.
    let plain = roff
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
        .replace("\\-", "-")
        .replace("\\&", "");
    let section = |name: &str| {
        let start = plain
            .find(&format!(".SH \"{name}\""))
            .or_else(|| plain.find(&format!(".SH {name}\n")))
            .unwrap_or_else(|| panic!("no {name} section:\n{roff}"));
        let rest = &plain[start + 4..];
        rest[..rest.find("\n.SH ").unwrap_or(rest.len())].to_string()
    };
    let synopsis = section("SYNOPSIS");
    assert!(synopsis.contains("[URL]..."), "{synopsis}");
    assert!(synopsis.contains("--input FILE"), "{synopsis}");
    assert!(synopsis.contains("--workers N"), "{synopsis}");
    let kinds = section("ERROR KINDS");
    for kind in [
        "invalid_url",
        "dns",
        "connect",
        "tls",
        "timeout",
        "too_large",
        "cancelled",
    ] {
        assert!(kinds.contains(kind), "{kind} missing:\n{kinds}");
    }
    let fields = section("OUTPUT FIELDS");
    for field in ["seq", "elapsed_ms", "attempts", "final_url", "saved_to"] {
        assert!(fields.contains(field), "{field} missing:\n{fields}");
    }
    let exit = section("EXIT STATUS");
    for code in ["130", "143"] {
        assert!(exit.contains(code), "{exit}");
    }
    assert!(section("EXAMPLES").contains("fetchpool -i"), "{roff}");
    assert!(!plain.contains(".SH EXTRA"), "{roff}");
    assert!(
        !plain.contains('`'),
        "Markdown backticks in the man page:\n{roff}"
    );
}

#[test]
fn short_and_long_help_share_the_tagline_and_long_help_the_tables() {
    let short = run(&["-h"]);
    let long = run(&["--help"]);
    short.assert_code(0);
    long.assert_code(0);
    let (short, long) = (short.stdout_text(), long.stdout_text());
    assert_eq!(
        short.lines().next(),
        long.lines().next(),
        "-h:\n{short}\n--help:\n{long}"
    );
    for needle in ["too_large", "elapsed_ms", "130", "fetchpool -i"] {
        assert!(long.contains(needle), "--help lacks {needle}:\n{long}");
    }
}

// ---------------------------------------------------------------- usage errors

#[test]
fn usage_errors_are_one_line_in_one_style_with_the_fix() {
    let server = TestServer::start();
    let url = server.url("/ok");
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--help"),
        (&["--worker", "3"], "--workers"),
        (&["--rate", "-1"], "--rate must be a positive number"),
        (&["-m", "-1"], "--timeout must be a positive number"),
        (&["--retries", "-1"], "--retries"),
        (&["-j", "0"], "--workers must be between 1 and 4096"),
        (&["--progress", "fancy"], "bar, plain, off"),
        (&["-I"], "-X HEAD"),
        (&["-L"], "followed by default"),
    ];
    for (flags, wanted) in cases {
        let mut args = strings(flags);
        args.push(url.clone());
        let run = run(&args);
        let err = assert_one_line_usage_error(&run);
        assert!(err.contains(wanted), "{flags:?}: {err}");
        assert!(!err.contains("'-- -"), "{flags:?}: a wrong tip: {err}");
    }
    assert_eq!(server.total_requests(), 0);

    let parent = tempfile::tempdir().unwrap();
    let afile = parent.path().join("afile");
    std::fs::write(&afile, "x").unwrap();
    let run = run(&["-o", afile.to_str().unwrap(), url.as_str()]);
    let err = assert_one_line_usage_error(&run);
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn help_and_version_still_exit_zero() {
    let run = run(&["--version"]);
    run.assert_code(0);
    assert!(
        run.stdout_text().starts_with("fetchpool "),
        "{}",
        run.stdout_text()
    );
    assert!(run.stderr.is_empty());
}
