//! -o DIR: names inside DIR whatever the URL, no partial files, bodiless
//! responses, the manifest recipe, and output paths checked first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{TestServer, echo_body};
use crate::support::{WAIT, args, listing, read_lines, sha256_hex, strings};
use crate::{Running, assert_all_seqs, command, kind, lines, run};

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
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

/// What `/bytes/N` serves.
fn generated_bytes(n: u64) -> Vec<u8> {
    (0..n).map(crate::server::body_byte).collect()
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
    if !server.wait_for_requests(1, WAIT) {
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
    // The entry was in flight when the grace ended: reported, cancelled.
    let r = run.single();
    assert_eq!(crate::kind(&r), Some("cancelled"), "{r}");
    assert!(r["saved_to"].is_null(), "{r}");
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
fn bodiless_responses_save_nothing_and_never_replace_a_download() {
    let server = TestServer::start();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("dl");
    let d = dir.to_str().unwrap();
    let ok = server.url("/ok");

    let first = run(&["--json", "-o", d, ok.as_str()]);
    first.assert_code(0);
    let saved = first.single()["saved_to"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read(&saved).unwrap(), b"ok\n");

    let head = run(&["--json", "--sha256", "-X", "HEAD", "-o", d, ok.as_str()]);
    head.assert_code(0);
    let r = head.single();
    assert!(r["saved_to"].is_null(), "{r}");
    assert!(r["sha256"].is_null(), "a hash of no body: {r}");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        b"ok\n",
        "HEAD replaced the download"
    );

    let before = files_in(&dir);
    let statuses = [server.url("/status/204"), server.url("/status/304")];
    let mut flags = strings(&["--json", "-o", d]);
    flags.extend(statuses.iter().cloned());
    let bodiless = run(&flags);
    bodiless.assert_code(0);
    for r in bodiless.results() {
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["saved_to"].is_null(), "{r}");
    }
    assert_eq!(files_in(&dir), before, "a bodiless response created a file");

    let text = run(&["-X", "HEAD", "-o", d, ok.as_str()]);
    text.assert_code(0);
    assert!(
        text.stdout_text().contains("no body"),
        "{}",
        text.stdout_text()
    );
}

#[test]
fn the_same_url_saved_twice_keeps_both_bodies_and_a_manifest_that_checks() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Before, the three saves raced for one name: one file, three lines.
    server.serve_any();
    let url = server.url("/same.txt");
    let run = run(&[
        "--sha256",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "{sha256}  {saved_to}",
        &url,
        &url,
        &url,
    ]);
    run.assert_code(0);
    let manifest = run.stdout_text();
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines.len(), 3, "{manifest}");
    let mut names: Vec<&str> = lines
        .iter()
        .map(|l| l.split("  ").nth(1).unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 3, "saved under one name: {manifest}");
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(manifest.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn output_paths_are_checked_before_the_first_request() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "x").unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, lines(&[server.url("/ok")])).unwrap();
    let list_s = list.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--summary-json", "/nonexistent/dir/s.json"],
            "--summary-json",
        ),
        (
            &["--write-failed", "/nonexistent/dir/f.txt"],
            "--write-failed",
        ),
        (&["-o", afile.to_str().unwrap()], "not a directory"),
        (&["--write-failed", list_s], "input file"),
    ];
    for (flags, says) in cases {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["-i", list_s]);
        let run = run(&args);
        run.assert_code(2);
        assert!(run.stderr.contains(says), "{flags:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(server.total_requests(), 0, "fetched before checking");
    assert_eq!(
        read_lines(&list),
        [server.url("/ok")],
        "the input was emptied"
    );
}

#[test]
fn the_list_given_on_stdin_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let same = dir.path().join("same.txt");
    for flags in [
        vec!["--write-failed", list.to_str().unwrap()],
        vec!["--summary-json", list.to_str().unwrap()],
        vec![
            "--write-failed",
            same.to_str().unwrap(),
            "--summary-json",
            same.to_str().unwrap(),
        ],
    ] {
        let mut cmd = command(&flags);
        cmd.stdin(std::fs::File::open(&list).unwrap());
        let run = Running::spawn(cmd, None).finish();
        run.assert_code(2);
        assert_eq!(read_lines(&list), ["http://127.0.0.1:1/a"], "{flags:?}");
    }
}
