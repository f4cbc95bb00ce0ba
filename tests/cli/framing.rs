//! Response framing (RFC 9112 sections 6 and 7): what must be refused at
//! once, and not retried, and what must be accepted.
//!
//! Each server writes exactly the bytes under test ([`Reply::raw`]) and
//! counts the requests it saw, so a retry shows as a second request. No
//! assertion depends on timing. Where fetchpool's verdict differs from
//! curl's on the same bytes, the test says so and why.

use serde_json::Value;

use crate::server::{Reply, TestServer};
use crate::support::{fetch_one, message, sha256_hex};

/// A server that answers every request with `bytes`, then closes the
/// connection (`close`) or waits for the next request.
fn answering(bytes: impl Into<Vec<u8>>, close: bool) -> TestServer {
    let bytes = bytes.into();
    TestServer::routed(move |_| {
        let reply = Reply::raw(bytes.clone());
        if close { reply.close() } else { reply }
    })
}

/// One fetch of `server` with two retries allowed.
fn fetch_retrying(server: &TestServer, extra: &[&str]) -> Value {
    let mut flags = vec!["--retries", "2"];
    flags.extend_from_slice(extra);
    fetch_one(&server.url("/"), &flags)
}

#[test]
fn bare_lf_chunk_lines_are_protocol_at_once_and_not_retried() {
    // curl reads these bytes as "hello"; RFC 9112 section 7.1 ends chunk
    // lines with CRLF, and reading a bare LF there is the parser
    // disagreement request smuggling lives on.
    let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n";
    for close in [true, false] {
        let server = answering(&bytes[..], close);
        // A deadline far longer than the run may take: no waiting for it.
        let r = fetch_retrying(&server, &["-m", "30"]);
        assert_eq!(crate::kind(&r), Some("protocol"), "{r}");
        assert!(message(&r).contains("bare LF"), "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        assert_eq!(server.total_requests(), 1);
    }
}

#[test]
fn chunk_data_longer_than_its_size_is_protocol() {
    let server = answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        false,
    );
    let r = fetch_retrying(&server, &[]);
    assert_eq!(crate::kind(&r), Some("protocol"), "{r}");
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn chunk_extensions_of_any_length_are_accepted() {
    let long = "x".repeat(3000);
    let bytes = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
         2;ilovew3;somuchlove=aretheseparametersfor\r\nhe\r\n\
         3;{long}=\"v\"\r\nllo\r\n0;last\r\n\r\n"
    );
    let server = answering(bytes, false);
    let url = server.url("/");
    let r = fetch_one(&url, &["--sha256"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["sha256"], sha256_hex(b"hello"), "{r}");
    // The connection stays usable: the second request reuses it.
    let run = crate::run(&["--json", "-q", "-j", "1", &url, &url]);
    let by = run.by_seq();
    assert_eq!(by[&1]["ok"], true, "{}", by[&1]);
    assert_eq!(by[&1]["timings"]["reused"], true, "{}", by[&1]);
}

#[test]
fn a_last_coding_other_than_chunked_is_read_to_the_close() {
    // RFC 9112 section 6.3: the body ends at the close; it is kept as sent
    // (fetchpool decodes no transfer coding). curl dechunks these instead
    // (and then fails on gzip and deflate).
    let body = b"5\r\nhello\r\n0\r\n\r\n";
    for te in [
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked, deflate\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    ] {
        let mut bytes = format!("HTTP/1.1 200 OK\r\n{te}\r\n").into_bytes();
        bytes.extend_from_slice(body);
        let server = answering(bytes, true);
        let r = fetch_retrying(&server, &["--sha256"]);
        assert_eq!(r["ok"], true, "{te:?}: {r}");
        assert_eq!(r["sha256"], sha256_hex(body), "{te:?}: {r}");
        assert_eq!(server.total_requests(), 1);
    }
}

#[test]
fn transfer_encoding_in_an_http10_response_is_protocol() {
    // RFC 9112 section 6.1: such framing is faulty. curl dechunks it.
    let server = answering(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        true,
    );
    let r = fetch_retrying(&server, &["--sha256"]);
    assert_eq!(crate::kind(&r), Some("protocol"), "{r}");
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["sha256"].is_null(), "{r}");
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn an_unasked_switching_protocols_is_protocol() {
    let server = answering(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        false,
    );
    let r = fetch_retrying(&server, &[]);
    assert_eq!(crate::kind(&r), Some("protocol"), "{r}");
    assert!(message(&r).contains("101"), "{r}");
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn a_close_inside_the_trailer_section_is_io() {
    // The last chunk came, but not the empty line that ends the trailer
    // section: the chunked body is not whole (curl: "transfer closed").
    let server = answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n",
        true,
    );
    let r = fetch_retrying(&server, &[]);
    assert_eq!(crate::kind(&r), Some("io"), "{r}");
    assert_eq!(r["ok"], false, "{r}");
}

#[test]
fn a_100_continue_with_fields_is_skipped() {
    // RFC 9110 section 15.2: a 1xx may carry fields; curl skips it too.
    let server = answering(
        &b"HTTP/1.1 100 Continue\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n\
           HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        false,
    );
    let r = fetch_one(&server.url("/"), &["--sha256"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["sha256"], sha256_hex(b"hello"), "{r}");
}

#[test]
fn folded_header_lines_are_unfolded() {
    // RFC 9112 section 5.2: a user agent replaces obs-fold with spaces (as
    // curl does); a fold right after the status line is still refused.
    let server = answering(
        &b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\tthree\r\nContent-Length: 5\r\n\r\nhello"[..],
        false,
    );
    let r = fetch_one(&server.url("/"), &["--sha256"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["sha256"], sha256_hex(b"hello"), "{r}");
    let server = answering(
        &b"HTTP/1.1 200 OK\r\n X-A: 1\r\nContent-Length: 5\r\n\r\nhello"[..],
        false,
    );
    let r = fetch_one(&server.url("/"), &[]);
    assert_eq!(crate::kind(&r), Some("protocol"), "{r}");
}
