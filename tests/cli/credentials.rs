//! Credentials: passwords in URLs never show in any output, and go only to the
//! origin they were given for.

use crate::server::{Reply, TestServer};
use crate::support::fetch;
use crate::{refused_port, run_stdin};

/// Passwords in URLs, well-formed or not, and secret header values, in
/// every output: text lines (with plain progress), JSON, templates and the
/// summary file. The headers are still sent.
#[test]
fn passwords_and_secret_headers_never_show_in_any_output() {
    let server = TestServer::start();
    let secret = "hunter2";
    let port = server.port();
    let entries: Vec<String> = vec![
        format!("bob:{secret}@example.com"),
        format!("https//bob:{secret}@127.0.0.1:{port}/"),
        format!("http:/bob:{secret}@127.0.0.1:99999"),
        format!("user:{secret}@host:8080/path"),
        format!("http://bob:{secret}@127.0.0.1:{port}/status/500"),
        format!("http://bob:{secret}@127.0.0.1:{}/", refused_port()),
        format!("http://bob:{secret}@127.0.0.1:{port}/redirect/1"),
        format!("ftp://bob:{secret}@example.com/"),
        format!("http://bob:{secret}@[::1/"),
        format!("http://bob:{secret}@x@127.0.0.1:{port}/ok"),
        format!("http://bob:hun%74er2@127.0.0.1:{port}/ok"),
        format!("http://bob:{secret}/x@127.0.0.1:{port}/ok"),
    ];
    let input = crate::lines(&entries);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let format = "{seq} {url} {final_url} {error}";
    let secret_headers = [
        "-H",
        "Authorization: Bearer hunter2",
        "-H",
        "Cookie: session=hunter2",
    ];
    for args in [
        vec!["--json", "--retries", "0"],
        vec!["--retries", "0", "--progress", "plain"],
        vec!["--retries", "0", "--format", format],
        vec!["--retries", "0", "--summary-json", summary_arg],
    ] {
        let args = [&secret_headers[..], &args].concat();
        let run = run_stdin(&args, input.clone());
        run.assert_code(1);
        run.assert_absent(secret);
        run.assert_absent("hun%74er2");
        let out = run.stdout_text();
        assert_eq!(out.lines().count(), entries.len(), "{out}");
        assert!(out.contains("bob:***@example.com"), "{out}");
        assert!(out.contains("user:***@host:8080/path"), "{out}");
        assert!(out.contains("https//bob:***@127.0.0.1"), "{out}");
    }
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(!written.contains(secret), "{written}");
    // The headers were sent, only never shown.
    let sent = server.requests();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|r| r.header("authorization") == Some("Bearer hunter2")),
        "{sent:?}"
    );
}

#[test]
fn credentials_go_only_to_the_origin_given() {
    let other = TestServer::routed(|_| Reply::ok("other"));
    let other_url = other.url("/landing");
    let site = TestServer::routed(move |req| match req.target.as_str() {
        "/start" => Reply::redirect(302, Some(b"/same")),
        "/same" => Reply::redirect(302, Some(other_url.as_bytes())),
        _ => Reply::ok("ok"),
    });
    let url = format!("http://u:hunter2@127.0.0.1:{}/start", site.port());
    let flags = ["-H", "Cookie: c=secret", "-H", "X-Other: kept"];
    let (results, run) = fetch(&[], &flags, &[url]);
    run.assert_code(0);
    let r = &results[0];
    assert_eq!(r["final_url"], other.url("/landing"), "{r}");
    assert_eq!(
        r["url"],
        format!("http://u:***@127.0.0.1:{}/start", site.port())
    );
    for target in ["/start", "/same"] {
        let seen = site.only(target);
        // base64("u:hunter2")
        assert_eq!(
            seen.header("authorization"),
            Some("Basic dTpodW50ZXIy"),
            "{target}"
        );
        assert_eq!(seen.header("cookie"), Some("c=secret"));
    }
    let landed = other.only("/landing");
    assert_eq!(landed.header("authorization"), None, "{landed:?}");
    assert_eq!(landed.header("cookie"), None, "{landed:?}");
    assert_eq!(landed.header("x-other"), Some("kept"));
    run.assert_absent("hunter2");
}

#[test]
fn proxy_authorization_given_with_a_header_is_not_sent_to_another_origin() {
    let other = TestServer::routed(|_| Reply::ok(""));
    let target = other.url("/there");
    let first = TestServer::routed(move |_| Reply::redirect(302, Some(target.as_bytes())));
    let (results, _) = fetch(
        &[],
        &["-H", "Proxy-Authorization: Basic c2VjcmV0"],
        &[first.url("/here")],
    );
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert!(first.only("/here").header("proxy-authorization").is_some());
    assert_eq!(other.only("/there").header("proxy-authorization"), None);
}
