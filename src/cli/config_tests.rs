//! Unit tests of the flags checked into a `Config`.

use super::*;
use clap::Parser;

fn config(args: &[&str]) -> Result<Config> {
    let mut argv = vec!["fetchpool"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)?.into_config()
}

#[test]
fn workers_are_bounded() {
    assert!(config(&["-j", "0", "http://x"]).is_err());
    assert!(config(&["-j", "4097", "http://x"]).is_err());
    let c = config(&["-j", "4096", "http://x"]).unwrap();
    assert_eq!(c.pool.workers.get(), 4096);
    assert_eq!(c.pool.queue.get(), 8192);
    assert!(config(&["--queue", "0", "http://x"]).is_err());
    assert!(config(&["--queue", "99999999999", "http://x"]).is_err());
    let d = config(&["http://x"]).unwrap();
    assert!((5..=32).contains(&d.pool.workers.get()));
    assert!(!d.auto);
    let a = config(&["-j", "AUTO", "http://x"]).unwrap();
    assert!(a.auto);
    assert_eq!(a.pool.workers.get(), crate::run::limits::AUTO_MAX);
    let e = config(&["-j", "many", "http://x"]).unwrap_err().to_string();
    assert!(e.contains("a whole number or 'auto'"), "{e}");
}

#[test]
fn shard_must_be_k_of_n() {
    assert_eq!(parse_shard("1/1").unwrap(), (0, 1));
    assert_eq!(parse_shard("3/4").unwrap(), (2, 4));
    for bad in ["0/4", "5/4", "1/0", "x/2", "1", "1/2/3"] {
        assert!(parse_shard(bad).is_err(), "{bad}");
    }
}

#[test]
fn sizes_take_suffixes() {
    assert_eq!(parse_size("100").unwrap(), 100);
    assert_eq!(parse_size("100K").unwrap(), 100 << 10);
    assert_eq!(parse_size("10M").unwrap(), 10 << 20);
    assert_eq!(parse_size("1G").unwrap(), 1 << 30);
    assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
    assert!(parse_size("lots").is_err());
    assert_eq!(parse_size("1.5M").unwrap(), 3 << 19);
    assert_eq!(parse_size("0.5k").unwrap(), 512);
    assert_eq!(parse_size("1.0000001K").unwrap(), 1024);
    for bad in [
        "1.5",
        "1.M",
        ".5M",
        "1..5M",
        "1.-5M",
        "1.5.5M",
        "99999999999999999999999.5G",
    ] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    assert!(parse_size("").is_err());
}

#[test]
fn timeouts_take_fractions_and_reject_nonsense() {
    let c = config(&["-m", "0.5", "http://x"]).unwrap();
    assert_eq!(c.fetch.request.timeout, Duration::from_millis(500));
    assert!(config(&["-m", "0", "http://x"]).is_err());
    assert!(config(&["-m", "-1", "http://x"]).is_err());
    assert!(config(&["-m", "inf", "http://x"]).is_err());
}

#[test]
fn grace_and_progress_interval_default_to_10_s_and_take_fractions() {
    let c = config(&["http://x"]).unwrap();
    assert_eq!(
        (c.grace, c.report.progress_interval),
        (Duration::from_secs(10), Duration::from_secs(10))
    );
    let c = config(&["--grace", "0", "--progress-interval", "0.25", "http://x"]).unwrap();
    assert_eq!(
        (c.grace, c.report.progress_interval),
        (Duration::ZERO, Duration::from_millis(250))
    );
    for bad in [
        ["--grace", "-1"],
        ["--grace", "nan"],
        ["--progress-interval", "0"],
    ] {
        let err = config(&[bad[0], bad[1], "http://x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad[0]), "{err}");
    }
}

#[test]
fn headers_need_a_colon_and_hide_secrets_in_errors() {
    assert_eq!(
        parse_header("X-A: b c").unwrap(),
        ("X-A".into(), "b c".into())
    );
    let err = parse_header("Authorization Bearer secret").unwrap_err();
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn proxy_flags_are_checked_and_hide_passwords() {
    assert!(config(&["--proxy", "http://p:3128", "--noproxy", "a, b", "http://x"]).is_ok());
    assert!(config(&["--proxy", "", "http://x"]).is_ok());
    let err = config(&["--proxy", "socks4://u:hunter2@p", "http://x"]).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.starts_with("--proxy: "), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn request_values_with_cr_lf_or_nul_are_refused_naming_the_flag() {
    let err = |args: &[&str]| format!("{:#}", config(args).unwrap_err());
    for bad in ["x\ry", "x\ny", "x\0y", "a\x1bb", "a\x7fb"] {
        let e = err(&["-A", bad, "http://x/"]);
        assert!(e.starts_with("--user-agent contains"), "{e}");
        assert!(!e.contains('\n') && !e.contains('\r'), "{e}");
        let e = err(&["-H", &format!("X-A: {bad}"), "http://x/"]);
        assert!(e.starts_with("--header: the value of \"X-A\""), "{e}");
        assert!(!e.contains(bad), "{e}");
        let e = err(&["-H", &format!("X{bad}: v"), "http://x/"]);
        assert!(e.starts_with("--header:") && !e.contains('\r'), "{e}");
        let e = err(&["-H", &format!("X-A: v{bad}"), "http://x/"]);
        assert!(e.starts_with("--header: the value of \"X-A\""), "{e}");
        let e = err(&["-X", &format!("G{bad}T"), "http://x/"]);
        assert!(e.starts_with("--method:") && !e.contains('\r'), "{e}");
    }
    for (bad, what) in [("\r", "(CR)"), ("\n", "(LF)"), ("\0", "NUL")] {
        let e = err(&["http://a/", &format!("http://u:secret@x/{bad}y")]);
        assert!(e.starts_with("URL argument 2 contains"), "{e}");
        assert!(e.contains(what) && !e.contains("secret"), "{e}");
        assert!(
            !e.contains('\n') && !e.contains('\r') && !e.contains('\0'),
            "{e}"
        );
    }
    assert!(config(&["-A", "ok/1 (tab\tok) caf\u{e9}", "http://x/a\tb"]).is_ok());
    let e = err(&["-H", "\nX-A: v", "http://x/"]);
    assert!(e.starts_with("--header: \"\\nX-A\" is not"), "{e}");
}

#[test]
fn update_needs_an_output_dir() {
    let err = Cli::try_parse_from(["fetchpool", "--update", "http://x"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--output-dir"), "{err}");
    assert!(
        config(&["--update", "-o", "/tmp", "http://x"])
            .unwrap()
            .fetch
            .store
            .update
    );
}

#[test]
fn missing_input_file_is_an_error_naming_it() {
    let err = config(&["-i", "/nonexistent/urls.txt"]).unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/urls.txt"));
    let err = format!(
        "{:#}",
        config(&["--json", "{\"a\":1}", "http://x/"]).unwrap_err()
    );
    assert!(err.contains("--json-body"), "{err}");
    let err = format!("{:#}", config(&["-i", "http://x/"]).unwrap_err());
    assert!(err.contains("-i takes a file of URLs"), "{err}");
}
