//! `-v`: one stderr line per event of each request, prefixed with its seq;
//! secrets hidden, server text escaped, stdout untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::run;
use crate::server::{Reply, Request, TestServer};

/// `/hop` redirects to `/end`; `/flaky` is a 503 the first time; `/busy`
/// a 429 with `Retry-After: 0` the first time; every answer carries a
/// header with a bidi override and a cookie.
fn server() -> TestServer {
    let seen = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    TestServer::routed(move |r: &Request| {
        let reply = match r.target.as_str() {
            "/hop" => Reply::redirect(302, Some(b"/end")),
            "/flaky" if seen.fetch_add(1, Ordering::SeqCst) == 0 => Reply::status(503),
            "/busy" if busy.fetch_add(1, Ordering::SeqCst) == 0 => {
                Reply::status(429).header("Retry-After", "0")
            }
            _ => Reply::ok(b"ok"),
        };
        reply
            .header("X-Evil", "a\u{202e}b")
            .header("Set-Cookie", "session=c00kie-value")
    })
}

fn lines_of(stderr: &str, seq: u64) -> Vec<&str> {
    let prefix = format!("[{seq}] ");
    stderr.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[test]
fn every_request_is_traced_with_its_seq() {
    let server = server();
    let port = server.port();
    let out = run(&[
        "--json",
        "-v",
        "-j",
        "1",
        "-u",
        "u:hunter2-pw",
        "-H",
        "Cookie: jar=s3cret-cookie",
        &server.url("/hop"),
        &server.url("/flaky"),
    ]);
    out.assert_code(0);
    assert_eq!(out.results().len(), 2, "stdout holds results only");
    for secret in [
        "hunter2-pw",
        "s3cret-cookie",
        "c00kie-value",
        "dTpodW50ZXIy",
    ] {
        out.assert_absent(secret);
    }
    assert!(!out.stderr.contains('\u{202e}'), "{}", out.stderr);
    let hop = lines_of(&out.stderr, 0);
    for expected in [
        format!("[0] * connected to 127.0.0.1:{port} (new, "),
        "[0] > GET /hop HTTP/1.1".to_owned(),
        "[0] > authorization: ***".to_owned(),
        "[0] > cookie: ***".to_owned(),
        "[0] < HTTP/1.1 302 Found".to_owned(),
        "[0] < x-evil: a\\u{202e}b".to_owned(),
        "[0] < set-cookie: ***".to_owned(),
        format!("[0] * redirect 302 to http://127.0.0.1:{port}/end (GET)"),
        format!("[0] * reusing the connection to 127.0.0.1:{port}"),
        "[0] > GET /end HTTP/1.1".to_owned(),
        "[0] < HTTP/1.1 200 OK".to_owned(),
    ] {
        assert!(
            hop.iter().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in:\n{}",
            hop.join("\n")
        );
    }
    let flaky = lines_of(&out.stderr, 1);
    assert!(
        flaky
            .iter()
            .any(|l| l.starts_with("[1] * retry in ") && l.contains("after status 503")),
        "{}",
        flaky.join("\n")
    );
    assert_eq!(
        flaky
            .iter()
            .filter(|l| l.starts_with("[1] > GET /flaky"))
            .count(),
        2
    );
}

#[test]
fn pushbacks_and_pauses_are_traced() {
    let server = server();
    let out = run(&["-q", "-v", &server.url("/busy")]);
    out.assert_code(0);
    let host = format!("host 127.0.0.1:{} pushed back", server.port());
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("[0] * ") && l.contains(&host)),
        "{}",
        out.stderr
    );
}

#[test]
fn without_v_nothing_is_traced() {
    let server = server();
    let out = run(&["-q", &server.url("/hop")]);
    out.assert_code(0);
    assert_eq!(out.stderr, "");
}

#[test]
fn at_32_workers_every_line_is_whole_and_names_its_entry() {
    let server = server();
    let urls: Vec<String> = (0..64).map(|i| server.url(&format!("/p{i}"))).collect();
    let mut args = vec!["-q", "-v", "-j", "32"];
    args.extend(urls.iter().map(String::as_str));
    let out = run(&args);
    out.assert_code(0);
    let mut requested = std::collections::BTreeSet::new();
    for line in out.stderr.lines() {
        let (seq, rest) = line
            .strip_prefix('[')
            .and_then(|l| l.split_once("] "))
            .unwrap_or_else(|| panic!("not a trace line: {line:?}"));
        let seq: u64 = seq.parse().unwrap_or_else(|_| panic!("{line:?}"));
        assert!(
            ["* ", "> ", "< "].iter().any(|m| rest.starts_with(m)),
            "{line:?}"
        );
        if rest == format!("> GET /p{seq} HTTP/1.1") {
            requested.insert(seq);
        }
    }
    assert_eq!(requested, (0..64).collect());
}
