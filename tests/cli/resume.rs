//! `-c/--continue` and resuming within a run: a body cut short keeps its
//! bytes in a hidden part file under `-o` (never under the final name), a
//! later attempt or run asks for the rest with `Range` + `If-Range`, a
//! `206` appends, a `200` starts over, and `sha256` is of the whole file.
//! Driven by a test server route that cuts its first answer; what each
//! request asked is read from the server's record, never from timing.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::run;
use crate::server::{Reply, Request, TestServer};

const LEN: usize = 100_000;
const CUT: usize = 40_000;

fn body(version: u8) -> Vec<u8> {
    (0..LEN)
        .map(|i| b'a' + ((i + version as usize) % 26) as u8)
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the origin behaves.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Cut the body of this many full (200) answers after [`CUT`] bytes.
    cuts: usize,
    /// Answer `Range` requests with a 206 (else ignore them: 200).
    ranges: bool,
    /// The body's version, in its ETag.
    version: u8,
    /// How a `206` lies about the range it answers.
    lie: Lie,
    /// Instead of closing after a cut, hold the connection open.
    stall: bool,
}

/// A `206` that is not the rest of the file asked for.
#[derive(Clone, Copy, PartialEq)]
enum Lie {
    /// The honest rest of the file.
    None,
    /// A range from byte 0.
    OtherStart,
    /// The right start, but only 100 bytes of the rest.
    ShortSpan,
    /// The rest, of a file twice as long (by `Content-Range`).
    OtherLength,
    /// The rest of another version of the file, under its own `ETag`.
    OtherTag,
}

/// A file server that cuts bodies; what each request asked (`Range`,
/// `If-Range`) is read from the test server's record.
struct Origin {
    server: TestServer,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Origin {
    fn start(behaviour: Behaviour) -> Origin {
        let behaviour = Arc::new(Mutex::new(behaviour));
        let b = Arc::clone(&behaviour);
        let server = TestServer::routed(move |req| answer(req, &mut b.lock().unwrap()));
        Origin { server, behaviour }
    }

    fn url(&self) -> String {
        self.server.url("/files/big.bin")
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }

    /// The `Range` header of each request so far ("" when none).
    fn ranges(&self) -> Vec<String> {
        self.header_of_each("range")
    }

    fn if_ranges(&self) -> Vec<String> {
        self.header_of_each("if-range")
    }

    /// The header `name` of each request so far ("" when absent).
    fn header_of_each(&self, name: &str) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| r.header(name).unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until the first answer, the cut one, has been written.
    fn wait_cut(&self) {
        assert!(
            self.server.wait_for_answers(1, crate::RUN_BOUND),
            "the body was never cut"
        );
    }
}

/// The answer to `req`: a 206 for a range the server honours, else a 200,
/// cut after [`CUT`] bytes while `cuts` lasts.
fn answer(req: &Request, now: &mut Behaviour) -> Reply {
    let etag = format!("\"v{}\"", now.version);
    let whole = body(now.version);
    let from = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|_| now.ranges && req.header("if-range") == Some(etag.as_str()));
    let Some(n) = from else {
        if now.cuts == 0 {
            return Reply::ok(whole)
                .header("ETag", &etag)
                .header("Accept-Ranges", "bytes");
        }
        now.cuts -= 1;
        let mut cut = format!(
            "HTTP/1.1 200 OK\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nContent-Length: {LEN}\r\n\r\n"
        )
        .into_bytes();
        cut.extend_from_slice(&whole[..CUT]);
        // Closed mid-body, or held open until the client goes away.
        return if now.stall {
            Reply::raw(cut).hold()
        } else {
            Reply::raw(cut).close()
        };
    };
    let (range, rest, etag) = match now.lie {
        Lie::None => (format!("bytes {n}-{}/{LEN}", LEN - 1), &whole[n..], etag),
        Lie::OtherStart => (format!("bytes 0-{}/{LEN}", LEN - n - 1), &whole[n..], etag),
        Lie::ShortSpan => (
            format!("bytes {n}-{}/{LEN}", n + 99),
            &whole[n..n + 100],
            etag,
        ),
        Lie::OtherLength => (
            format!("bytes {n}-{}/{}", LEN - 1, 2 * LEN),
            &whole[n..],
            etag,
        ),
        Lie::OtherTag => (
            format!("bytes {n}-{}/{LEN}", LEN - 1),
            &whole[..LEN - n],
            "\"v9\"".to_owned(),
        ),
    };
    Reply {
        status: 206,
        ..Reply::ok(rest.to_vec())
    }
    .header("ETag", &etag)
    .header("Content-Range", range)
}

fn fetch(dir: &Path, url: &str, extra: &[&str]) -> (crate::Run, Value) {
    let mut args = vec!["--json", "--sha256", "-o", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(url);
    let out = run(&args);
    let result = out.single();
    (out, result)
}

/// Hidden files left in `dir`.
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn a_retry_in_the_same_run_resumes_the_cut_body() {
    let origin = Origin::start(Behaviour {
        cuts: 1,
        ranges: true,
        version: 1,
        lie: Lie::None,
        stall: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = fetch(dir.path(), &origin.url(), &["--retries", "1"]);
    out.assert_code(0);
    assert_eq!(origin.ranges(), ["", &format!("bytes={CUT}-")]);
    assert_eq!(origin.if_ranges()[1], "\"v1\"");
    assert_eq!(r["status"], 206, "{r}");
    assert_eq!(r["bytes"], LEN, "bytes is the whole body: {r}");
    assert_eq!(r["resumed_from"], CUT, "{r}");
    assert_eq!(
        r["wire_bytes"],
        LEN - CUT,
        "only the rest was transferred: {r}"
    );
    let saved = fs::read(r["saved_to"].as_str().unwrap()).unwrap();
    assert_eq!(saved, body(1));
    assert_eq!(r["sha256"], sha(&body(1)), "the hash is of the whole file");
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}

#[test]
fn continue_resumes_what_an_earlier_run_kept() {
    let origin = Origin::start(Behaviour {
        cuts: 1,
        ranges: true,
        version: 1,
        lie: Lie::None,
        stall: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let summary = tempfile::NamedTempFile::new().unwrap();
    let s = summary.path().to_str().unwrap();
    let (out, r) = fetch(
        dir.path(),
        &origin.url(),
        &["--retries", "0", "--summary-json", s],
    );
    out.assert_code(1);
    assert!(r["saved_to"].is_null(), "{r}");
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        entries.len(),
        2,
        "only the hidden part file and its metadata"
    );
    assert!(
        hidden(dir.path())
            .iter()
            .all(|n| n.starts_with(".fetchpool-part-"))
    );
    let summary: Value = serde_json::from_slice(&fs::read(summary.path()).unwrap()).unwrap();
    assert_eq!(summary["partial_kept"], 1, "{summary}");

    let (out, r) = fetch(dir.path(), &origin.url(), &["--continue"]);
    out.assert_code(0);
    assert_eq!(origin.ranges().last().unwrap(), &format!("bytes={CUT}-"));
    assert_eq!(r["resumed_from"], CUT, "{r}");
    assert_eq!(fs::read(r["saved_to"].as_str().unwrap()).unwrap(), body(1));
    assert_eq!(r["sha256"], sha(&body(1)));
    assert!(hidden(dir.path()).is_empty());
}

#[test]
fn a_server_that_ignores_ranges_or_changed_the_file_starts_over() {
    for changed in [false, true] {
        let origin = Origin::start(Behaviour {
            cuts: 1,
            ranges: false,
            version: 1,
            lie: Lie::None,
            stall: false,
        });
        let dir = tempfile::tempdir().unwrap();
        fetch(dir.path(), &origin.url(), &["--retries", "0"])
            .0
            .assert_code(1);
        if changed {
            // If-Range no longer matches: the server sends the new file whole.
            origin.set(|b| {
                b.version = 2;
                b.ranges = true;
            });
        }
        let (out, r) = fetch(dir.path(), &origin.url(), &["--continue"]);
        out.assert_code(0);
        assert_eq!(origin.ranges().last().unwrap(), &format!("bytes={CUT}-"));
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        assert!(r.get("resumed_from").is_none(), "{r}");
        let want = body(if changed { 2 } else { 1 });
        assert_eq!(fs::read(r["saved_to"].as_str().unwrap()).unwrap(), want);
        assert_eq!(r["sha256"], sha(&want));
        assert!(hidden(dir.path()).is_empty());
    }
}

#[test]
fn without_continue_a_run_starts_from_zero_and_replaces_the_part() {
    let origin = Origin::start(Behaviour {
        cuts: 1,
        ranges: true,
        version: 1,
        lie: Lie::None,
        stall: false,
    });
    let dir = tempfile::tempdir().unwrap();
    fetch(dir.path(), &origin.url(), &["--retries", "0"])
        .0
        .assert_code(1);
    assert_eq!(hidden(dir.path()).len(), 2);
    let (out, r) = fetch(dir.path(), &origin.url(), &[]);
    out.assert_code(0);
    assert_eq!(origin.ranges(), ["", ""], "no Range without --continue");
    assert_eq!(fs::read(r["saved_to"].as_str().unwrap()).unwrap(), body(1));
    assert!(hidden(dir.path()).is_empty(), "the part file was replaced");
}

#[test]
fn a_206_that_is_not_the_rest_of_the_file_is_not_appended() {
    // Appending any of these would leave under the final name a file short
    // of its length, or spliced from two versions; curl -C - appends the
    // short span and the other tag as they come. The whole body is then
    // asked for at once, in the same attempt (a 206 for bytes 0- cannot
    // continue the part either).
    for lie in [
        Lie::OtherStart,
        Lie::ShortSpan,
        Lie::OtherLength,
        Lie::OtherTag,
    ] {
        let origin = Origin::start(Behaviour {
            cuts: 1,
            ranges: true,
            version: 1,
            lie,
            stall: false,
        });
        let dir = tempfile::tempdir().unwrap();
        fetch(dir.path(), &origin.url(), &["--retries", "0"])
            .0
            .assert_code(1);
        let (out, r) = fetch(dir.path(), &origin.url(), &["--continue"]);
        out.assert_code(0);
        assert_eq!(origin.ranges(), ["", &format!("bytes={CUT}-"), ""]);
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
        assert!(r.get("resumed_from").is_none(), "{r}");
        assert_eq!(fs::read(r["saved_to"].as_str().unwrap()).unwrap(), body(1));
        assert_eq!(r["sha256"], sha(&body(1)));
        assert!(hidden(dir.path()).is_empty());
    }
}

#[test]
fn a_run_stopped_by_signals_keeps_what_it_had_for_continue() {
    let origin = Origin::start(Behaviour {
        cuts: 1,
        ranges: true,
        version: 1,
        lie: Lie::None,
        stall: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let url = origin.url();
    let running =
        crate::Running::spawn(crate::command(["--json", "--sha256", "-o", d, &url]), None);
    origin.wait_cut();
    // The first signal waits for the body in flight; the second stops
    // waiting for it.
    running.signal("TERM");
    assert!(
        running.wait_stderr(std::time::Duration::from_secs(20), |e| e
            .contains("interrupted"))
    );
    running.signal("TERM");
    let out = running.finish();
    out.assert_code(143);
    assert!(
        fs::read_dir(dir.path()).unwrap().all(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "nothing under a final name"
    );

    let (out, r) = fetch(dir.path(), &url, &["--continue"]);
    out.assert_code(0);
    assert_eq!(fs::read(r["saved_to"].as_str().unwrap()).unwrap(), body(1));
    assert_eq!(r["sha256"], sha(&body(1)));
    // What the cut run had received was kept and only the rest was asked
    // for (how much arrived before the signal is up to the kernel).
    let asked = origin.ranges().last().unwrap().clone();
    match r.get("resumed_from").and_then(Value::as_u64) {
        Some(n) => {
            assert!(n > 0 && n <= CUT as u64, "{r}");
            assert_eq!(asked, format!("bytes={n}-"));
        }
        None => assert_eq!(asked, "", "a Range for a part that was not continued: {r}"),
    }
    assert!(hidden(dir.path()).is_empty());
}

#[test]
fn a_206_nobody_asked_for_is_protocol_and_never_saved() {
    let server = TestServer::start();
    server.route("/part", |_| {
        Reply::raw(
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/10\r\nContent-Length: 5\r\n\r\nhello"
                .to_vec(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/part");
    let (out, r) = fetch(dir.path(), &url, &[]);
    out.assert_code(1);
    assert_eq!(r["error"]["kind"], "protocol", "{r}");
    assert_eq!(r["attempts"], 1, "not retried: {r}");
    assert!(r["saved_to"].is_null(), "{r}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    // Asked for with -H Range, a part is what was wanted.
    let (out, r) = fetch(dir.path(), &url, &["-H", "Range: bytes=0-4"]);
    out.assert_code(0);
    assert_eq!(fs::read(r["saved_to"].as_str().unwrap()).unwrap(), b"hello");
}

#[test]
fn a_body_the_server_framed_wrongly_keeps_no_part_and_is_not_retried() {
    let server = TestServer::start();
    // A good chunk larger than any read buffer (so body bytes reach the
    // part file first), then a chunk line that is not a size.
    server.route("/bad", |_| {
        let mut reply =
            b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        reply.extend_from_slice(format!("{:x}\r\n", 200_000).as_bytes());
        reply.extend(std::iter::repeat_n(b'a', 200_000));
        reply.extend_from_slice(b"\r\nzz\r\n");
        Reply::raw(reply).close()
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = fetch(dir.path(), &server.url("/bad"), &["--retries", "2"]);
    out.assert_code(1);
    assert_eq!(r["error"]["kind"], "protocol", "{r}");
    assert_eq!(r["attempts"], 1, "a framing error is final: {r}");
    assert_eq!(server.requests_for("/bad").len(), 1);
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}
