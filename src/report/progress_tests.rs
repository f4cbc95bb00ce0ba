//! Unit tests of the progress display: what is chosen, and what it says.

use super::*;

#[test]
fn message_names_a_stuck_url() {
    let m = message(
        12.3,
        5,
        3,
        Some(&(Duration::from_secs(7), "http://slow/".into())),
    );
    assert_eq!(
        m,
        "12 req/s, 5 in flight, 3 failed, waiting 7 s on http://slow/"
    );
}

#[test]
fn a_long_stuck_url_keeps_its_start_and_the_end_of_its_path() {
    let url = format!(
        "https://downloads.example.com/{}/release/file-1.2.3.tar.gz",
        "x".repeat(200)
    );
    let shown = elided(&url);
    assert_eq!(shown.chars().count(), URL_SHOWN);
    assert!(
        shown.starts_with("https://downloads.example.com"),
        "{shown}"
    );
    assert!(shown.ends_with("/release/file-1.2.3.tar.gz"), "{shown}");
    assert!(shown.contains('…'));
    assert_eq!(elided("http://short/"), "http://short/");
}

#[test]
fn plain_lines_give_an_eta_once_there_is_a_pace() {
    assert_eq!(plain_eta(0, Some(40), 0.0), "");
    assert_eq!(plain_eta(10, None, 5.0), "");
    assert_eq!(plain_eta(10, Some(40), 5.0), ", ETA 6s");
    assert_eq!(plain_eta(10, Some(1000), 5.0), ", ETA 3m 18s");
    assert_eq!(plain_eta(40, Some(40), 5.0), "");
}

#[test]
fn the_display_follows_the_terminal_ci_and_what_was_asked() {
    let env = |stderr_terminal, dumb_terminal, ci| Env {
        stderr_terminal,
        dumb_terminal,
        ci,
    };
    use ProgressStyle::{Bar, Off, Plain};
    assert_eq!(choose(None, &env(true, false, false)), (Bar, None));
    assert_eq!(choose(None, &env(true, false, true)), (Bar, None));
    assert_eq!(choose(None, &env(false, false, true)), (Plain, None));
    assert_eq!(choose(None, &env(false, false, false)), (Off, None));
    assert_eq!(choose(None, &env(true, true, false)), (Plain, None));
    assert_eq!(choose(Some(Off), &env(false, false, true)), (Off, None));
    let (style, note) = choose(Some(Bar), &env(false, false, false));
    assert_eq!(style, Off);
    assert!(note.is_some_and(|n| n.contains("not")));
    let (style, note) = choose(Some(Bar), &env(true, true, false));
    assert_eq!(style, Plain);
    assert!(note.is_some_and(|n| n.contains("TERM=dumb")));
}

#[test]
fn message_has_no_rate_before_the_first_result() {
    assert_eq!(message(0.0, 0, 0, None), "0 in flight, 0 failed");
}

#[test]
fn message_escapes_the_url_and_never_says_zero_per_second() {
    let m = message(
        0.1,
        0,
        0,
        Some(&(
            Duration::from_millis(12_700),
            "http://h/\u{202e}\x1b[2J\n".into(),
        )),
    );
    assert_eq!(
        m,
        "6.0 req/min, 0 in flight, 0 failed, waiting 12 s on http://h/\\u{202e}\\x1b[2J\\n"
    );
}
