//! A negative or out-of-range number given to any numeric flag reaches that
//! flag's own check: one line that names the flag and the value, exit 2,
//! never clap's "unexpected argument".

use crate::run;

#[test]
fn negative_numbers_reach_each_flags_own_check() {
    let cases = [
        (
            &["-j", "-1"][..],
            "--workers must be between 1 and 4096 (got -1)",
        ),
        (
            &["--workers=-3"],
            "--workers must be between 1 and 4096 (got -3)",
        ),
        (&["--queue", "-1"], "--queue must be between 1 and"),
        (&["--rate", "-1"], "--rate must be a positive number"),
        (
            &["--per-host", "-1"],
            "--per-host must be at least 1 (got -1)",
        ),
        (
            &["-m", "-1"],
            "--timeout must be a positive number of seconds (got -1)",
        ),
        (
            &["--connect-timeout", "-1"],
            "--connect-timeout must be a positive",
        ),
        (
            &["--retries", "-1"],
            "--retries must be between 0 and 4294967295 (got -1)",
        ),
        (
            &["--max-retry-wait", "-1"],
            "--max-retry-wait must be a positive",
        ),
        (
            &["--max-redirects", "-1"],
            "--max-redirects must be between 0 and",
        ),
        (&["--max-redirects", "5000000000"], "(got 5000000000)"),
        (&["--max-size", "-1"], "--max-size must be a byte count"),
        (&["--max-size", "-1K"], "--max-size must be a byte count"),
        (&["--shard", "-1/2"], "--shard must be K/N"),
    ];
    for (flags, message) in cases {
        let mut args = flags.to_vec();
        args.push("http://127.0.0.1:9/");
        let out = run(&args);
        out.assert_code(2);
        assert!(
            out.stderr.starts_with("fetchpool: error: ") && out.stderr.contains(message),
            "{flags:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("unexpected argument"),
            "{flags:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{flags:?}: {}", out.stderr);
    }
}
