//! The command line itself: usage errors in one style, --help, --version, the
//! man page and completions.

use crate::run;
use crate::server::TestServer;
use crate::support::{assert_one_line_usage_error, strings};

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

#[test]
fn usage_errors_are_one_line_in_one_style_with_the_fix() {
    let server = TestServer::start();
    let url = server.url("/ok");
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--help"),
        (&["--worker", "3"], "--workers"),
        (&["--rate", "-1"], "--rate must be a positive number"),
        // One request every 1e19 s or 1e20 s: waits no clock can hold.
        (&["--rate", "1e-19"], "--rate is too low"),
        (&["--rate", "1e-20"], "--rate is too low"),
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
fn completions_and_man_page_mention_the_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let run = run(&["--completions", shell]);
        run.assert_code(0);
        let out = run.stdout_text();
        assert!(out.contains("fetchpool"), "{shell}:\n{out}");
        assert!(out.contains("workers"), "{shell} lacks --workers:\n{out}");
    }
    let bash = run(&["--completions", "bash"]).stdout_text();
    assert!(bash.contains("--workers"), "{bash}");

    let man = run(&["--man"]);
    man.assert_code(0);
    let roff = man.stdout_text();
    assert!(roff.contains(".TH"), "not a man page:\n{roff}");
    // roff writes `-` as `\-`.
    assert!(
        roff.replace("\\-", "-").contains("--workers"),
        "man page lacks --workers:\n{roff}"
    );
}
