//! Templates, saving with checksums, rate and per-host limits, sharding,
//! dedup, summaries, progress and completions (issue 5).
//!
//! Timing is never what makes a test pass: the rate test asserts only an
//! upper bound on how many requests the server saw start early, and the
//! per-host test shows the absence of head-of-line blocking by holding one
//! host's requests until the other host has seen all of its own (with a
//! generous fallback that fails the test instead of hanging it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::server::{TestServer, echo_body};
use crate::{Running, assert_all_seqs, command, kind, lines, refused_port, run, run_stdin};

/// How long a test waits for something the run must do before failing.
const WAIT_BOUND: Duration = Duration::from_secs(30);

fn args<S: AsRef<str>>(flags: &[&str], urls: &[S]) -> Vec<String> {
    flags
        .iter()
        .map(|s| s.to_string())
        .chain(urls.iter().map(|u| u.as_ref().to_string()))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file name rules (docs/contract.md) for `--output-dir`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The names of everything directly inside `dir`.
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The request target a URL is sent as: the path and query of its WHATWG
/// serialization (dot segments resolved, non-ASCII and unsafe characters
/// percent-encoded), no fragment.
fn expected_target(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("absolute URL");
    match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    }
}

// ---------------------------------------------------------------- --format

#[test]
fn format_renders_success_and_failure_lines_exactly() {
    let server = TestServer::start();
    let ok = server.url("/bytes/5");
    let not_found = server.url("/status/404");
    let refused = format!("http://127.0.0.1:{}/x", refused_port());
    let invalid = "ftp://127.0.0.1/file".to_string();
    let secret = format!("http://user:hunter2@127.0.0.1:{}/ok?who=me", server.port());
    let urls = [&ok, &not_found, &refused, &invalid, &secret];

    // The same run as JSON gives the messages the template must render.
    let json = run(&args(&["--json", "--retries", "0"], &urls));
    json.assert_code(1);
    let json = json.by_seq();
    let message = |seq: u64| {
        let r = &json[&seq];
        format!(
            "{}: {}",
            kind(r).unwrap(),
            r["error"]["message"].as_str().unwrap()
        )
    };
    assert_eq!(kind(&json[&2]), Some("connect"), "{}", json[&2]);
    assert_eq!(kind(&json[&3]), Some("invalid_url"), "{}", json[&3]);

    let template = r"{seq}\t{status}\t{ok}\t{url}\t{error}";
    let run = run(&args(
        &["--format", template, "--ordered", "--retries", "0"],
        &urls,
    ));
    run.assert_code(1);
    let redacted = format!("http://user:***@127.0.0.1:{}/ok?who=me", server.port());
    let expected = [
        format!("0\t200\ttrue\t{ok}\t"),
        format!("1\t404\tfalse\t{not_found}\t"),
        format!("2\t\tfalse\t{refused}\t{}", message(2)),
        format!("3\t\tfalse\t{invalid}\t{}", message(3)),
        format!("4\t200\ttrue\t{redacted}\t"),
    ];
    assert_eq!(run.lines(), expected, "stderr:\n{}", run.stderr);
    assert!(
        message(2).len() > "connect: ".len(),
        "empty message: {}",
        message(2)
    );
    run.assert_absent("hunter2");
}

#[test]
fn format_fills_every_placeholder_and_escape() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("saved");
    let url = server.url("/redirect/1");
    let template = r"{seq}|{url}|{ok}|{status}|{bytes}|{attempts}|{final_url}|{error}|{sha256}|{saved_to}\n{{x}}\\{elapsed_ms}";
    let run = run(&[
        "--format",
        template,
        "--sha256",
        "-o",
        dir.to_str().unwrap(),
        &url,
    ]);
    run.assert_code(0);
    let lines = run.lines();
    assert_eq!(lines.len(), 2, "`\\n` makes two lines: {lines:?}");
    let names = listing(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    let saved = dir.join(names.first().unwrap());
    assert_eq!(std::fs::read(&saved).unwrap(), b"ok\n");
    assert_eq!(
        lines[0],
        format!(
            "0|{url}|true|200|3|1|{}||{}|{}",
            server.url("/ok"),
            sha256_hex(b"ok\n"),
            saved.display()
        )
    );
    let elapsed = lines[1]
        .strip_prefix("{x}\\")
        .unwrap_or_else(|| panic!("`{{{{x}}}}\\\\` renders as `{{x}}\\`: {:?}", lines[1]));
    let elapsed: f64 = elapsed
        .parse()
        .unwrap_or_else(|e| panic!("{{elapsed_ms}} {elapsed:?}: {e}"));
    assert!(elapsed >= 0.0);
}

#[test]
fn unknown_placeholder_is_a_usage_error_that_names_it() {
    let server = TestServer::start();
    let run = run(&["--format", "{seq} {nope}", &server.url("/ok")]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("{nope}"),
        "stderr does not name {{nope}}:\n{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
    assert_eq!(
        server.total_requests(),
        0,
        "a usage error fetched something"
    );
}

// ---------------------------------------------------------------- -o DIR

/// Request paths (with queries and fragments) meant to break out of the
/// output directory or to collide.
fn hostile_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        // Traversal, raw and in every encoding.
        "/../../etc/passwd",
        "/../../../../../../../../tmp/fetchpool-escaped",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/%2E%2E/x",
        "/..%2f..%2fetc%2fpasswd",
        "/..%2F..%2Fx",
        "/%2e%2e%2f%2e%2e%2fx",
        "/%252e%252e/%252e%252e/x",
        "/%252e%252e%252f%252e%252e%252fx",
        "/%c0%ae%c0%ae/%c0%af",
        "/%5c..%5c..%5cx",
        "/..%5c..%5cx",
        "/..\\..\\x",
        "/%00",
        "/a%00.txt",
        "/%00/../x",
        "/a%0d%0aSet-Cookie:%20x",
        "/a%2fb",
        // Dot segments and odd names.
        "/a/./b/../c",
        "/.",
        "/..",
        "/...",
        "/./",
        "/.hidden",
        "/..hidden",
        "/-rf",
        "/CON",
        "/nul.txt",
        "/file.tar.gz",
        "/a|b",
        // Trailing slashes.
        "/dir/",
        "/dir",
        "/dir//",
        "/dir/.",
        "//x",
        // Query strings and fragments.
        "/q?x=1",
        "/q?x=2",
        "/q?",
        "/q?x=../../etc/passwd",
        "/q?x=%2e%2e%2f",
        "?only=query",
        "",
        "/",
        "/frag#../../x",
        // Unicode (sent percent-encoded).
        "/caf\u{e9}/\u{1F600}",
        "/\u{65e5}\u{672c}\u{8a9e}/\u{30d5}\u{30a1}\u{30a4}\u{30eb}.txt",
        "/\u{FF0E}\u{FF0E}\u{FF0F}\u{FF0E}\u{FF0E}\u{FF0F}x",
        "/\u{2025}/\u{2215}x",
        "/\u{202E}txt.exe",
        "/e\u{301}",
    ]
    .map(String::from)
    .to_vec();
    // About 5,000 bytes each.
    paths.extend([
        format!("/{}", "a/".repeat(2500)),
        format!("/{}x", "../".repeat(1666)),
        format!("/{}", "%2e%2e%2f".repeat(555)),
        format!("/{}1", "x".repeat(4999)),
        format!("/{}2", "x".repeat(4999)),
        format!("/q?{}", "a=..%2f&".repeat(625)),
        format!("/{}", "\u{e9}".repeat(2500)),
    ]);
    paths
}

#[test]
fn output_dir_keeps_hostile_urls_inside_with_distinct_safe_names() {
    let a = TestServer::start();
    let b = TestServer::start();
    a.serve_any();
    b.serve_any();
    let mut urls: Vec<String> = hostile_paths().iter().map(|p| a.url(p)).collect();
    // The same path on two hosts (host:port).
    urls.push(a.url("/same/file.txt"));
    urls.push(b.url("/same/file.txt"));
    urls.push(format!("http://user:s3cretpw@127.0.0.1:{}/creds", a.port()));
    let n = urls.len();

    let parent = tempfile::tempdir().unwrap();
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), lines(&urls)).unwrap();
    // Missing, two levels deep: it must be created.
    let dir = parent.path().join("out").join("nested");
    let escaped = Path::new("/tmp/fetchpool-escaped");
    let existed_before = escaped.exists();

    let fetch = || {
        let mut cmd = command([
            "--json",
            "--sha256",
            "--retries",
            "0",
            "-j",
            "4",
            "-o",
            dir.to_str().unwrap(),
            "-i",
            input.path().to_str().unwrap(),
        ]);
        cmd.current_dir(parent.path());
        Running::spawn(cmd, None).finish()
    };
    let first = fetch();
    first.assert_code(0);
    let results = first.by_seq();
    assert_all_seqs(&results, n as u64);

    let mut names = BTreeMap::new();
    for (seq, r) in &results {
        let url = &urls[*seq as usize];
        assert_eq!(r["ok"], true, "{url}: {r}");
        let saved = r["saved_to"]
            .as_str()
            .unwrap_or_else(|| panic!("no saved_to: {r}"));
        let saved = Path::new(saved);
        assert_eq!(saved.parent(), Some(dir.as_path()), "{url}: {r}");
        let name = saved.file_name().unwrap().to_str().unwrap().to_string();
        assert!(is_valid_name(&name), "bad name {name:?} for {url}");
        assert!(!name.contains("s3cret"), "password in the name {name:?}");

        // Saved bytes are the served bytes, and the hash is theirs.
        let body = echo_body(&expected_target(url));
        let content = std::fs::read(saved).unwrap_or_else(|e| panic!("{}: {e}", saved.display()));
        assert!(
            content == body,
            "{url}: saved bytes differ from served bytes"
        );
        assert_eq!(r["bytes"], body.len() as u64, "{url}: {r}");
        assert_eq!(r["sha256"], sha256_hex(&body), "{url}: {r}");
        if let Some(other) = names.insert(name.clone(), url) {
            panic!("{url} and {other} share the name {name}");
        }
    }
    first.assert_absent("s3cretpw");

    // Exactly one file per URL, no temporary files, nothing elsewhere.
    let expected_names: BTreeSet<String> = names.keys().cloned().collect();
    assert_eq!(listing(&dir), expected_names, "files in DIR");
    for entry in std::fs::read_dir(&dir).unwrap() {
        assert!(entry.unwrap().file_type().unwrap().is_file());
    }
    assert_eq!(listing(parent.path()), BTreeSet::from(["out".to_string()]));
    assert_eq!(
        listing(&parent.path().join("out")),
        BTreeSet::from(["nested".to_string()])
    );
    if !existed_before {
        assert!(!escaped.exists(), "a file escaped to {}", escaped.display());
    }

    // Names are a function of the URL: a second run overwrites the same files.
    let second = fetch();
    second.assert_code(0);
    for (seq, r) in second.by_seq() {
        assert_eq!(r["saved_to"], results[&seq]["saved_to"], "seq {seq}");
    }
    assert_eq!(listing(&dir), expected_names, "files in DIR after a re-run");
}

#[test]
fn cut_off_and_too_large_bodies_leave_no_file() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("out");
    let d = dir.to_str().unwrap();
    let good = server.url("/bytes/10");

    // A body cut off mid-way (Content-Length 1000, 10 bytes sent).
    let short = server.url("/fault/short");
    let run1 = run(&["--json", "--retries", "0", "-o", d, &short, &good]);
    run1.assert_code(1);
    let r = &run1.by_seq()[&0];
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["saved_to"].is_null(), "{r}");

    // Past --max-size: announced by Content-Length, and a chunked body that
    // never ends (so the file was being written when the limit hit).
    let announced = server.url("/bytes/300000");
    let endless = server.url("/fault/endless");
    let run2 = run(&[
        "--json",
        "--retries",
        "0",
        "--max-size",
        "100K",
        "-o",
        d,
        &announced,
        &endless,
        &good,
    ]);
    run2.assert_code(1);
    let results = run2.by_seq();
    for seq in [0, 1] {
        let r = &results[&seq];
        assert_eq!(kind(r), Some("too_large"), "{r}");
        assert!(r["saved_to"].is_null(), "{r}");
    }

    // Only the good URL's file: no partial file, no temporary file.
    let good_saved = results[&2]["saved_to"].as_str().unwrap().to_string();
    assert_eq!(run1.by_seq()[&1]["saved_to"], good_saved.as_str());
    let name = Path::new(&good_saved)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(listing(&dir), BTreeSet::from([name.to_string()]));
    assert_eq!(std::fs::read(&good_saved).unwrap(), generated_bytes(10));
}

/// What `/bytes/N` serves.
fn generated_bytes(n: u64) -> Vec<u8> {
    (0..n).map(crate::server::body_byte).collect()
}

#[test]
fn interrupted_download_leaves_no_file() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("out");
    // 100 bytes, one every 200 ms: in progress for 20 s.
    let url = server.url("/fault/drip");
    // No grace: the first signal cuts the body at once.
    let running = Running::spawn(
        command(["--json", "--grace", "0", "-o", dir.to_str().unwrap(), &url]),
        None,
    );
    if !server.wait_for_requests(1, WAIT_BOUND) {
        running.signal("KILL");
        panic!("the download never started");
    }
    // Give the body a chance to start landing on disk (not required to pass).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) && dir.exists() && listing(&dir).is_empty() {
        thread::sleep(Duration::from_millis(20));
    }
    running.signal("INT");
    let run = running.finish();
    run.assert_code(130);
    if dir.exists() {
        assert_eq!(listing(&dir), BTreeSet::new(), "left behind in DIR");
    }
    for r in run.results() {
        assert_eq!(r["ok"], false, "{r}");
        assert!(r["saved_to"].is_null(), "{r}");
    }
}

#[test]
fn manifest_from_format_verifies_with_sha256sum() {
    let have_sha256sum = Command::new("sha256sum")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_sha256sum {
        eprintln!("sha256sum not found: skipped");
        return;
    }
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("dl");
    let urls: Vec<String> = [1, 1000, 70_000]
        .iter()
        .map(|n| server.url(&format!("/bytes/{n}")))
        .collect();
    let run = run(&args(
        &[
            "--sha256",
            "-o",
            dir.to_str().unwrap(),
            "--format",
            "{sha256}  {saved_to}",
        ],
        &urls,
    ));
    run.assert_code(0);
    assert_eq!(run.lines().len(), 3);
    let manifest = parent.path().join("SHA256SUMS");
    std::fs::write(&manifest, &run.stdout).unwrap();
    let check = Command::new("sha256sum")
        .arg("--check")
        .arg("--strict")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c failed:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn rate_limits_request_starts_without_a_burst() {
    const RATE: f64 = 10.0;
    const WINDOW: Duration = Duration::from_secs(1);
    let server = TestServer::start();
    let urls: Vec<String> = (0..25).map(|i| server.url(&format!("/ok?i={i}"))).collect();
    // Measured from before the process starts: the pacer's first slot can
    // be no earlier, and a stalled machine only delays arrivals, never
    // brings them forward, so this bound cannot fail from slowness.
    let started = Instant::now();
    let run = run(&args(&["--json", "--rate", "10", "-j", "8"], &urls));
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), 25);

    let times = server.arrival_times();
    assert_eq!(times.len(), 25);
    let early = times.iter().filter(|t| **t - started <= WINDOW).count();
    // One start at once, then one per 1/RATE s; one more for slack.
    let bound = (RATE * WINDOW.as_secs_f64()) as usize + 2;
    assert!(
        early <= bound,
        "{early} requests started within {WINDOW:?} of launch at --rate {RATE} \
         (at most {bound} allowed)"
    );
}

#[test]
fn per_host_limits_each_host_without_head_of_line_blocking() {
    let slow = TestServer::start();
    let fast = TestServer::start();
    // The slow host's URLs come first and outnumber the workers, so workers
    // waiting on the busy host would leave none for the other one.
    let held: Vec<String> = (0..12).map(|i| slow.url(&format!("/gate?i={i}"))).collect();
    let quick: Vec<String> = (0..12)
        .map(|i| fast.url(&format!("/slow/50?i={i}")))
        .collect();
    let all: Vec<&String> = held.iter().chain(&quick).collect();
    let running = Running::spawn(
        command(args(&["--json", "-j", "8", "--per-host", "2"], &all)),
        None,
    );

    // The slow host answers nothing until the fast host has seen every one
    // of its requests.
    let fast_done = fast.wait_for_requests(quick.len(), WAIT_BOUND);
    let fast_seen = fast.total_requests();
    let slow_seen = slow.total_requests();
    slow.open_gate();
    let run = running.finish();

    assert!(
        slow_seen <= 2,
        "{slow_seen} requests reached the held host with --per-host 2"
    );
    assert!(
        fast_done,
        "only {fast_seen} of {} requests reached the other host within {WAIT_BOUND:?} \
         while the first host was busy: head-of-line blocking",
        quick.len()
    );
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), all.len() as u64);
    assert_eq!(slow.gate_fallbacks(), 0, "held requests timed out");
    assert_eq!(slow.total_requests(), held.len());
    assert_eq!(fast.total_requests(), quick.len());
    for (name, server) in [("held", &slow), ("fast", &fast)] {
        let max = server.max_in_flight();
        assert!(
            (1..=2).contains(&max),
            "{name} host saw {max} requests in flight with --per-host 2"
        );
    }
}

// ---------------------------------------------------------------- --shard, --dedup

/// 23 entries (3 of them invalid) with comments and blank lines between.
fn shard_input(server: &TestServer) -> (Vec<String>, String) {
    let entries: Vec<String> = (0..23)
        .map(|i| match i {
            3 => "not a url".to_string(),
            10 => "ftp://127.0.0.1/file".to_string(),
            17 => "example.com/page".to_string(),
            _ => server.url(&format!("/ok?i={i}")),
        })
        .collect();
    let mut text = String::from("# a list for sharding\n\n");
    for (i, e) in entries.iter().enumerate() {
        if i % 4 == 1 {
            text.push_str("# comment\n   \n");
        }
        text.push_str(&format!("  {e}  \n"));
    }
    (entries, text)
}

#[test]
fn shards_partition_the_input_for_any_n() {
    let server = TestServer::start();
    let (entries, text) = shard_input(&server);
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), text).unwrap();
    let input = input.path().to_str().unwrap();
    let len = entries.len() as u64;
    let invalid: BTreeSet<u64> = [3, 10, 17].into();
    let valid_targets: BTreeSet<String> = (0..len)
        .filter(|s| !invalid.contains(s))
        .map(|s| format!("/ok?i={s}"))
        .collect();

    for n in 1..=5u64 {
        let before = server.total_requests();
        let mut union = BTreeSet::new();
        for k in 1..=n {
            let shard = format!("{k}/{n}");
            let run = run(&["--json", "--retries", "0", "--shard", &shard, "-i", input]);
            let results = run.by_seq();
            let expected: BTreeSet<u64> = (0..len).filter(|s| s % n == k - 1).collect();
            assert_eq!(
                results.keys().copied().collect::<BTreeSet<_>>(),
                expected,
                "--shard {shard}"
            );
            let any_invalid = expected.iter().any(|s| invalid.contains(s));
            run.assert_code(if any_invalid { 1 } else { 0 });
            for (seq, r) in &results {
                assert!(union.insert(*seq), "seq {seq} in two shards of {n}");
                if invalid.contains(seq) {
                    assert_eq!(kind(r), Some("invalid_url"), "{r}");
                } else {
                    assert_eq!(r["url"], entries[*seq as usize].as_str(), "{r}");
                    assert_eq!(r["ok"], true, "{r}");
                }
            }
        }
        assert_eq!(union, (0..len).collect(), "union of the {n} shards");
        let fetched: BTreeSet<String> = server.requests()[before..]
            .iter()
            .map(|r| r.target.clone())
            .collect();
        assert_eq!(fetched, valid_targets, "targets fetched over {n} shards");
        assert_eq!(server.total_requests() - before, valid_targets.len());
    }
}

#[test]
fn bad_shard_specs_are_usage_errors() {
    let server = TestServer::start();
    for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", "1/2/3", ""] {
        let run = run(&[&format!("--shard={bad}"), &server.url("/ok")]);
        run.assert_code(2);
        assert!(run.stderr.contains("--shard"), "{bad}: {}", run.stderr);
    }
    assert_eq!(server.total_requests(), 0);
}

#[test]
fn dedup_fetches_repeats_once_and_keeps_counting_seqs() {
    let server = TestServer::start();
    let [a, b, c] = ["/ok?u=a", "/ok?u=b", "/ok?u=c"].map(|p| server.url(p));
    let input = [
        a.clone(),
        b.clone(),
        format!("   {a}  "),
        c.clone(),
        b.clone(),
        a.clone(),
    ];
    let run = run_stdin(&["--json", "--dedup"], lines(&input));
    run.assert_code(0);
    let results = run.by_seq();
    assert_eq!(
        results.keys().copied().collect::<Vec<_>>(),
        [0, 1, 3],
        "repeats' seqs are absent, the others keep their place"
    );
    assert_eq!(results[&3]["url"], c.as_str());
    for p in ["/ok?u=a", "/ok?u=b", "/ok?u=c"] {
        assert_eq!(server.hits(p), 1, "{p}");
    }
}

#[test]
fn dedup_with_shards_fetches_each_url_once_over_all_shards() {
    // Concatenating the N shards' outputs must give what one `--dedup` run
    // gives: each URL once, at its first seq. Each shard reads the whole
    // input, so it can tell a repeat of a URL that another shard fetches.
    let server = TestServer::start();
    let [a, b, c] = ["/ok?u=a", "/ok?u=b", "/ok?u=c"].map(|p| server.url(p));
    let input = [&a, &b, &a, &c, &b, &a, &c, &b].map(|u| u.to_string());
    let whole = run_stdin(&["--json", "--dedup"], lines(&input));
    whole.assert_code(0);
    let whole: Vec<u64> = whole.by_seq().keys().copied().collect();
    assert_eq!(whole, [0, 1, 3]);
    for n in 1..=3u64 {
        let mut union = BTreeMap::new();
        for k in 1..=n {
            let shard = format!("{k}/{n}");
            let run = run_stdin(&["--json", "--dedup", "--shard", &shard], lines(&input));
            run.assert_code(0);
            for (seq, r) in run.by_seq() {
                assert_eq!(seq % n, k - 1, "--shard {shard}: {r}");
                assert!(union.insert(seq, r).is_none(), "seq {seq} in two shards");
            }
        }
        assert_eq!(
            union.keys().copied().collect::<Vec<_>>(),
            whole,
            "seqs of `--dedup --shard K/{n}` over all K, vs one `--dedup` run"
        );
    }
}

// ---------------------------------------------------------------- summary, progress

#[test]
fn summary_json_counts_match_the_results() {
    let server = TestServer::start();
    let urls = [
        server.url("/bytes/100?i=0"),
        server.url("/bytes/100?i=1"),
        server.url("/bytes/100?i=2"),
        server.url("/status/404"),
        format!("http://127.0.0.1:{}/x", refused_port()),
        "not a url".to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.json");
    let run = run(&args(
        &[
            "--json",
            "-q",
            "--retries",
            "0",
            "--summary-json",
            file.to_str().unwrap(),
        ],
        &urls,
    ));
    run.assert_code(1);
    assert!(run.stderr.is_empty(), "-q stderr:\n{}", run.stderr);
    let results = run.results();
    let text = std::fs::read_to_string(&file).expect("--summary-json file");
    let s: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{text}"));

    let ok = results.iter().filter(|r| r["ok"] == true).count() as u64;
    let bytes: u64 = results.iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
    assert_eq!((ok, results.len()), (3, 6));
    assert_eq!(s["entries"], 6, "{s}");
    assert_eq!(s["ok"], ok, "{s}");
    assert_eq!(s["failed"], 3, "{s}");
    assert_eq!(s["bytes"], bytes, "{s}");
    assert!(bytes >= 300, "{bytes}");
    assert_eq!(s["failed_by_status"]["404"], 1, "{s}");
    assert_eq!(s["failed_by_kind"]["connect"], 1, "{s}");
    assert_eq!(s["failed_by_kind"]["invalid_url"], 1, "{s}");
    assert!(s["wall_s"].as_f64().is_some_and(|w| w >= 0.0), "{s}");
    let latency = &s["latency_ms"];
    let p: Vec<f64> = ["p50", "p90", "p99", "max"]
        .iter()
        .map(|k| {
            latency[k]
                .as_f64()
                .unwrap_or_else(|| panic!("latency_ms.{k} missing: {s}"))
        })
        .collect();
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]) && p[0] >= 0.0,
        "percentiles out of order: {p:?}"
    );
}

#[test]
fn plain_progress_prints_a_status_line_and_off_and_quiet_print_none() {
    let server = TestServer::start();
    let url = |name: &str| server.url(&format!("/gate?run={name}"));
    let quiet_runs: Vec<(&str, Running)> = [
        (
            "off",
            vec!["--progress", "off", "--progress-interval", "0.2"],
        ),
        (
            "no-progress",
            vec![
                "--no-progress",
                "--progress",
                "plain",
                "--progress-interval",
                "0.2",
            ],
        ),
        (
            "quiet",
            vec!["-q", "--progress", "plain", "--progress-interval", "0.2"],
        ),
        ("quiet-only", vec!["-q", "--progress-interval", "0.2"]),
    ]
    .into_iter()
    .map(|(name, flags)| {
        (
            name,
            Running::spawn(command(args(&flags, &[url(name)])), None),
        )
    })
    .collect();
    let plain_url = url("plain");
    let plain = Running::spawn(
        command([
            "--progress",
            "plain",
            "--progress-interval",
            "0.2",
            &plain_url,
        ]),
        None,
    );

    // The plain line comes every 0.2 s; the request is held until it shows
    // (or the bound passes), so every run above, started earlier with the
    // same interval, has run at least that long.
    let named = |l: &str| l.contains(" done") && l.contains(&plain_url);
    let printed = plain.wait_stderr(WAIT_BOUND, |s| s.lines().any(named));
    server.open_gate();
    let plain = plain.finish();
    plain.assert_code(0);
    assert!(
        printed,
        "no plain progress line within {WAIT_BOUND:?}:\n{}",
        plain.stderr
    );
    let line = plain.stderr.lines().find(|l| named(l)).unwrap().to_string();
    assert!(line.starts_with("fetchpool: 0/1 done, "), "{line}");
    for (name, live) in quiet_runs {
        let run = live.finish();
        run.assert_code(0);
        for l in run.stderr.lines() {
            assert!(
                !l.contains("done") && !l.contains("/gate"),
                "{name}: progress on stderr: {l}"
            );
        }
        if name.starts_with("quiet") {
            assert!(run.stderr.is_empty(), "{name} stderr:\n{}", run.stderr);
        }
    }
    assert_eq!(server.gate_fallbacks(), 0);
}

// ---------------------------------------------------------------- completions, man

#[test]
fn completions_and_man_page_mention_the_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let run = run(&["--completions", shell]);
        run.assert_code(0);
        let out = run.stdout_text();
        assert!(out.contains("fetchpool"), "{shell}:\n{out}");
        assert!(out.contains("workers"), "{shell} lacks --workers:\n{out}");
    }
    let bash = run(&["--completions", "bash"]).stdout_text();
    assert!(bash.contains("--workers"), "{bash}");

    let man = run(&["--man"]);
    man.assert_code(0);
    let roff = man.stdout_text();
    assert!(roff.contains(".TH"), "not a man page:\n{roff}");
    // roff writes `-` as `\-`.
    assert!(
        roff.replace("\\-", "-").contains("--workers"),
        "man page lacks --workers:\n{roff}"
    );
}

// ---------------------------------------------------------------- --write-failed

#[test]
fn write_failed_then_rerun_fetches_exactly_the_failures() {
    let server = TestServer::start();
    let refused = format!("http://127.0.0.1:{}/gone", refused_port());
    let urls = [
        server.url("/ok?i=0"),
        server.url("/status/404"),
        server.url("/ok?i=1"),
        server.url("/status/500"),
        refused.clone(),
        "not a url".to_string(),
        server.url("/ok?i=2"),
    ];
    let failed: BTreeSet<&str> = [1, 3, 4, 5].iter().map(|&i| urls[i].as_str()).collect();
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("failed.txt");
    let f = file.to_str().unwrap();

    let first = run(&args(
        &["--json", "--retries", "0", "--write-failed", f],
        &urls,
    ));
    first.assert_code(1);
    let written = std::fs::read_to_string(&file).expect("--write-failed file");
    let mut lines_written: Vec<&str> = written.lines().collect();
    lines_written.sort();
    assert_eq!(
        lines_written,
        failed.iter().copied().collect::<Vec<_>>(),
        "--write-failed:\n{written}"
    );

    let before = server.total_requests();
    let second = run(&["--json", "--retries", "0", "-i", f]);
    second.assert_code(1);
    let again: BTreeSet<String> = second
        .results()
        .iter()
        .map(|r| r["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        again,
        failed.iter().map(|s| s.to_string()).collect(),
        "re-run entries"
    );
    let targets: Vec<String> = server.requests()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(targets, ["/status/404", "/status/500"]);
    assert_eq!(server.total_requests() - before, 2);
}
