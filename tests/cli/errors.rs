//! Server faults and the error kind each gives, with retries where they are
//! due: bodies cut short, too large or endless, resets, garbage, hangs,
//! refusals, 503s and Retry-After.

use serde_json::Value;

use crate::server::{BIG_LEN, Reply, TestServer};
use crate::support::fetch_one;
use crate::{kind, refused_port};

/// What a result must say: `ok`, `status` (None: null), error kind, attempts.
struct Expect {
    ok: bool,
    status: Option<u64>,
    kind: Option<&'static str>,
    attempts: u64,
}

impl Expect {
    fn failed(status: Option<u64>, kind: &'static str, attempts: u64) -> Expect {
        Expect {
            ok: false,
            status,
            kind: Some(kind),
            attempts,
        }
    }

    fn ok(attempts: u64) -> Expect {
        Expect {
            ok: true,
            status: Some(200),
            kind: None,
            attempts,
        }
    }

    fn check(&self, r: &Value) {
        assert_eq!(r["ok"], self.ok, "ok: {r}");
        assert_eq!(r["status"].as_u64(), self.status, "status: {r}");
        assert_eq!(kind(r), self.kind, "error kind: {r}");
        assert_eq!(r["attempts"].as_u64(), Some(self.attempts), "attempts: {r}");
    }
}

/// "Stop reading past it": one byte over the limit shows it was exceeded,
/// more was read for nothing.
fn assert_read_at_most(r: &Value, limit: u64) {
    let bytes = r["bytes"].as_u64().unwrap();
    assert!(
        bytes <= limit + 1,
        "read {bytes} bytes with --max-size {limit}: {r}"
    );
}

#[test]
fn big_body_is_streamed_whole() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/big"), &["-m", "30"]);
    Expect::ok(1).check(&r);
    assert_eq!(r["bytes"], BIG_LEN, "{r}");
}

#[test]
fn big_body_over_max_size_is_too_large() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/big"), &["-m", "30", "--max-size", "1M"]);
    Expect::failed(Some(200), "too_large", 1).check(&r);
    assert_read_at_most(&r, 1 << 20);
}

#[test]
fn drip_times_out() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/drip"), &["-m", "0.5", "--retries", "0"]);
    Expect::failed(Some(200), "timeout", 1).check(&r);
}

#[test]
fn endless_body_stops_at_max_size() {
    // A long deadline: only the size limit can end this one.
    let server = TestServer::start();
    let url = server.url("/fault/endless");
    let r = fetch_one(&url, &["--max-size", "100K", "-m", "30", "--retries", "0"]);
    Expect::failed(Some(200), "too_large", 1).check(&r);
    assert_read_at_most(&r, 100 * 1024);
}

#[test]
fn endless_body_times_out_without_max_size() {
    let server = TestServer::start();
    let r = fetch_one(
        &server.url("/fault/endless"),
        &["-m", "0.5", "--retries", "0"],
    );
    Expect::failed(Some(200), "timeout", 1).check(&r);
}

#[test]
fn flaky_503_succeeds_on_the_third_attempt() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/flaky503/a"), &[]);
    Expect::ok(3).check(&r);
    assert_eq!(server.hits("/fault/flaky503/a"), 3);
}

#[test]
fn flaky_503_with_one_retry_fails_with_its_status() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/flaky503/b"), &["--retries", "1"]);
    Expect {
        ok: false,
        status: Some(503),
        kind: None,
        attempts: 2,
    }
    .check(&r);
    assert!(r["error"].is_null(), "{r}");
    assert_eq!(server.hits("/fault/flaky503/b"), 2);
}

#[test]
fn garbage_is_a_protocol_error() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/garbage"), &[]);
    Expect::failed(None, "protocol", 1).check(&r);
}

#[test]
fn hang_times_out_and_is_retried() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/hang"), &["-m", "0.5", "--retries", "1"]);
    Expect::failed(None, "timeout", 2).check(&r);
}

#[test]
fn refused_connection_is_a_connect_error_and_retried() {
    let url = format!("http://127.0.0.1:{}/ok", refused_port());
    let r = fetch_one(&url, &["--retries", "1"]);
    Expect::failed(None, "connect", 2).check(&r);
}

#[test]
fn reset_is_an_io_or_connect_error() {
    // The connection was made and the request read before the RST, so `io`
    // (not retried) is the natural kind; `connect` is allowed too, but then
    // it must have been retried like any connect error.
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/reset"), &["--retries", "1"]);
    let (expected_kind, attempts) = match kind(&r) {
        Some("connect") => ("connect", 2),
        _ => ("io", 1),
    };
    Expect::failed(None, expected_kind, attempts).check(&r);
    assert_eq!(server.hits("/fault/reset"), attempts as usize);
}

#[test]
fn retry_after_is_honoured() {
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/retry-after/a"), &[]);
    Expect::ok(2).check(&r);
    // Retry-After: 1 means the second attempt started a second later.
    let elapsed = r["elapsed_ms"].as_f64().unwrap();
    assert!(elapsed >= 1000.0, "retried after {elapsed} ms");
}

#[test]
fn a_retry_after_too_large_to_hold_is_final() {
    // Longer than any --max-retry-wait: the 503 is the answer, at once.
    let server =
        TestServer::routed(|_| Reply::status(503).header("Retry-After", "99999999999999999999"));
    let r = fetch_one(&server.url("/"), &["--retries", "2"]);
    Expect {
        ok: false,
        status: Some(503),
        kind: None,
        attempts: 1,
    }
    .check(&r);
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn short_body_is_an_io_error_with_the_status() {
    // Like curl (exit 18 with %{http_code} 200): the status line arrived.
    let server = TestServer::start();
    let r = fetch_one(&server.url("/fault/short"), &[]);
    Expect::failed(Some(200), "io", 1).check(&r);
    assert_eq!(r["bytes"], 10, "{r}");
}
