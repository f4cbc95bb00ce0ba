//! Connections: keep-alive reuse, workers in flight, dead keep-alive
//! connections, response-head limits, per-result timings.

use crate::server::{Reply, TestServer};
use crate::support::{json_args, json_run, numbered};
use crate::{assert_all_seqs, count_kinds, kind, lines, run, run_stdin};

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
fn a_worker_moving_between_hosts_reuses_each_hosts_connection() {
    // One worker, two servers, URLs alternating: the worker's idle
    // connection to one host waits (for any worker) while it fetches from
    // the other, and is taken again on its next URL.
    let a = TestServer::start();
    let b = TestServer::start();
    let urls: Vec<String> = (0..40)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            server.url(&format!("/ok?i={i}"))
        })
        .collect();
    run_stdin(&["-j", "1", "-q"], lines(&urls)).assert_code(0);
    assert_eq!((a.total_requests(), b.total_requests()), (20, 20));
    assert_eq!((a.connections(), b.connections()), (1, 1));
}

#[test]
fn a_connection_the_server_closes_is_not_reused() {
    // `Connection: close` on every answer: each request on a new connection,
    // none sent on the closed one (which would be a re-send, or an error).
    let server = TestServer::routed(|_| Reply::ok("ok\n").header("Connection", "close"));
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/c?i={i}"))).collect();
    let r = run_stdin(&["--json", "-q", "-j", "2"], lines(&urls));
    r.assert_code(0);
    assert_eq!(server.total_requests(), 20);
    assert_eq!(server.connections(), 20);
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
fn dead_keep_alive_connections_are_resent_not_retried() {
    let server = TestServer::routed(|_| Reply::ok("ok\n").close_soon());
    let urls: Vec<String> = (0..600).map(|i| server.url(&format!("/k?i={i}"))).collect();
    let r = run_stdin(&["--json", "-q", "-j", "1", "--retries", "0"], lines(&urls));
    let results = r.results();
    assert_eq!(results.len(), 600);
    let kinds = count_kinds(&results);
    assert_eq!(kinds.get("none"), Some(&600), "{kinds:?}");
    assert!(
        results
            .iter()
            .all(|v| v["attempts"] == 1 && v["ok"] == true)
    );
    r.assert_code(0);
    // The server closed every connection after one answer.
    assert!(server.connections() >= 600);
}

#[test]
fn response_heads_up_to_64_kib_are_accepted() {
    let server = TestServer::routed(|req| {
        let len = if req.path() == "/h20" { 20_000 } else { 70_000 };
        let big = "a".repeat(len);
        Reply::ok("ok\n").header("X-Big", big)
    });
    let r = json_run(&[&server.url("/h20")]);
    let v = r.single();
    assert_eq!(
        (v["ok"].as_bool(), v["status"].as_u64()),
        (Some(true), Some(200)),
        "{v}"
    );
    assert_eq!(v["bytes"], 3);

    let r = json_run(&[&server.url("/h70")]);
    let v = r.single();
    assert_eq!(kind(&v), Some("protocol"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("64 KiB"), "{message}");
}

/// ureq-proto's HttpParseTooManyHeaders, matched by type: made through
/// ureq itself, so a second ureq-proto in the tree fails this test.
#[test]
fn a_response_head_over_128_header_lines_is_named() {
    let server = TestServer::routed(|_| {
        (0..200).fold(Reply::ok("ok\n"), |reply, i| {
            reply.header(&format!("X-{i}"), "v")
        })
    });
    let v = json_run(&[&server.url("/")]).single();
    assert_eq!(kind(&v), Some("protocol"), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("more than 128 header lines"), "{message}");
}

#[test]
fn timings_say_how_the_connection_went() {
    let server = TestServer::start();
    let urls = [server.url("/ok?i=1"), server.url("/ok?i=2")];
    let r = json_run(&["-j", "1", &urls[0], &urls[1]]);
    let by = r.by_seq();
    let (first, second) = (&by[&0]["timings"], &by[&1]["timings"]);
    assert_eq!(first["reused"], false, "{first}");
    assert!(first["connect_ms"].is_number(), "{first}");
    assert!(
        first["tls_ms"].is_null() && first["ttfb_ms"].is_number(),
        "{first}"
    );
    assert_eq!(second["reused"], true, "{second}");
    assert!(
        second["connect_ms"].is_null() && second["tls_ms"].is_null(),
        "{second}"
    );
    assert!(second["ttfb_ms"].is_number(), "{second}");
    assert_eq!(server.connections(), 1);

    let r = run(&[
        "-j",
        "1",
        "--format",
        "{seq} {reused} [{tls_ms}]",
        &urls[0],
        &urls[1],
    ]);
    assert_eq!(r.lines(), ["0 false []", "1 true []"]);
}
