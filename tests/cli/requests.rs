//! What is sent: methods (HEAD reads no body), headers and User-Agent, and
//! request values that are refused or passed through.

use crate::run;
use crate::server::TestServer;
use crate::support::{assert_one_line_usage_error, json_args};

/// Asserts a usage error: exit 2, one line on stderr naming `flag`,
/// nothing on stdout, nothing fetched.
fn assert_usage_error(run: &crate::Run, server: &TestServer, flag: &str) {
    let stderr = assert_one_line_usage_error(run);
    assert!(stderr.contains(flag), "{flag} not named: {stderr}");
    assert_eq!(
        server.total_requests(),
        0,
        "a usage error fetched something"
    );
}

#[test]
fn head_requests_read_no_body() {
    let server = TestServer::start();
    let run = run(&json_args(&["-X", "HEAD"], &[server.url("/bytes/500")]));
    run.assert_code(0);
    let r = run.single();
    assert_eq!(
        (r["status"].as_u64(), r["bytes"].as_u64()),
        (Some(200), Some(0))
    );
    assert_eq!(server.requests()[0].method, "HEAD");
}

#[test]
fn headers_and_user_agent_reach_the_server() {
    let server = TestServer::start();
    let args = ["-H", "X-Test: 1", "-A", "agent/1"];
    run(&json_args(&args, &[server.url("/ok")])).assert_code(0);
    run(&json_args(&[], &[server.url("/ok?default")])).assert_code(0);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-test"), Some("1"));
    assert_eq!(requests[0].header("user-agent"), Some("agent/1"));
    let default_agent = format!("fetchpool/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(requests[1].header("user-agent"), Some(&*default_agent));
}

#[test]
fn control_characters_in_request_values_are_usage_errors() {
    let server = TestServer::start();
    let url = server.url("/ok");
    for (args, flag) in [
        (vec!["-A", "x\ry"], "--user-agent"),
        (vec!["--user-agent", "x\ny"], "--user-agent"),
        (vec!["-A", "x\x1by"], "--user-agent"),
        (vec!["-H", "X-A: b\rc"], "--header"),
        (vec!["-H", "X-A: b\r"], "--header"),
        (vec!["-H", "X-A\r\nEvil: b"], "--header"),
        (vec!["-H", "Authorization: Bearer se\ncret"], "--header"),
        (vec!["-X", "GE\rT"], "--method"),
        (vec!["-X", "GET /x HTTP/1.1\r\n"], "--method"),
    ] {
        let mut all = args.clone();
        all.push(&url);
        let run = run(&all);
        assert_usage_error(&run, &server, flag);
        run.assert_absent("cret");
    }
    for bad in ["\r", "\n", "\r\n"] {
        let entry = format!("http://u:secret@127.0.0.1:{}/ok{bad}x", server.port());
        let run = run(&[url.as_str(), &entry]);
        assert_usage_error(&run, &server, "URL argument 2");
        run.assert_absent("secret");
    }
}

#[test]
fn valid_request_values_still_reach_the_server() {
    let server = TestServer::start();
    let run = run(&[
        "-A",
        "agent/1 (tab\there) caf\u{e9}",
        "-H",
        "X-Test: a\tb",
        &server.url("/ok"),
    ]);
    run.assert_code(0);
    let req = &server.requests()[0];
    assert_eq!(req.header("x-test"), Some("a\tb"));
    assert!(
        req.header("user-agent")
            .is_some_and(|ua| ua.starts_with("agent/1"))
    );
}
