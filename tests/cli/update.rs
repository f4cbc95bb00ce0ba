//! `--update`: unchanged files are kept (304, untouched: same inode, time
//! and bytes), changed ones replaced; missing, corrupt or stale validators
//! mean a full download, never a failure; an interrupted run leaves a
//! mirror the next run completes; saved files and validators files never
//! mix. What was sent conditionally is read from the server's record.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::server::{Reply, Request, TestServer};
use crate::{Running, command, run};

const META: &str = ".fetchpool-meta-";

/// A mirror source: `/f/...` with an ETag, `/lm/...` with a Last-Modified
/// only; each path has a version, bumped by [`Origin::change`]; answers
/// `If-None-Match` / `If-Modified-Since` with 304 while unchanged. With a
/// `delay`, every answer waits that long.
struct Origin {
    site: TestServer,
    versions: Arc<Mutex<HashMap<String, u32>>>,
}

fn body(path: &str, version: u32) -> String {
    format!("{path} version {version}\n").repeat(50)
}

/// The origin's answer to `req`, by the current version of its path.
fn answer(req: &Request, versions: &Mutex<HashMap<String, u32>>) -> Reply {
    let path = req.target.clone();
    let version = versions.lock().unwrap().get(&path).copied().unwrap_or(0);
    if path.starts_with("/lm/") {
        let date = format!("Tue, 01 Jul 2025 0{version}:00:00 GMT");
        if req.header("if-modified-since") == Some(date.as_str()) {
            return Reply::status(304).header("Last-Modified", &date);
        }
        return Reply::ok(body(&path, version)).header("Last-Modified", &date);
    }
    let etag = format!("\"{}-{version}\"", path.len());
    if req.header("if-none-match") == Some(etag.as_str()) {
        return Reply::status(304).header("ETag", &etag);
    }
    Reply::ok(body(&path, version)).header("ETag", &etag)
}

impl Origin {
    fn start(delay: Duration) -> Origin {
        let versions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let v = Arc::clone(&versions);
        let site = TestServer::routed(move |req: &Request| answer(req, &v).delay(delay));
        Origin { site, versions }
    }

    fn change(&self, path: &str) {
        *self
            .versions
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_insert(0) += 1;
    }

    fn urls(&self, paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| self.site.url(p)).collect()
    }

    /// Whether the last request for `path` carried a validator.
    fn last_was_conditional(&self, path: &str) -> bool {
        let seen = self.site.requests_for(path);
        let last = seen
            .last()
            .unwrap_or_else(|| panic!("{path} never requested"));
        last.header("if-none-match").is_some() || last.header("if-modified-since").is_some()
    }
}

/// `--update -o DIR --json` over `urls`; the results by URL.
fn mirror(dir: &Path, urls: &[String], extra: &[&str]) -> (crate::Run, HashMap<String, Value>) {
    let mut args = vec!["--update", "-o", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    args.extend(urls.iter().map(String::as_str));
    let r = run(&args);
    let by_url = r
        .results()
        .into_iter()
        .map(|v| (v["url"].as_str().unwrap().to_owned(), v))
        .collect();
    (r, by_url)
}

/// Name -> (inode, mtime in ns, size) of every file in `dir`, hidden ones too.
fn snapshot(dir: &Path) -> HashMap<String, (u64, i64, u64)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let t = m.mtime() * 1_000_000_000 + m.mtime_nsec();
            (e.file_name().into_string().unwrap(), (m.ino(), t, m.len()))
        })
        .collect()
}

fn saved_to(r: &Value) -> String {
    r["saved_to"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

#[test]
fn an_interrupted_run_leaves_a_mirror_the_next_run_completes() {
    let origin = Origin::start(Duration::from_millis(100));
    let paths: Vec<String> = (0..24).map(|i| format!("/f/{i}")).collect();
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let urls = origin.urls(&path_refs);
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--update",
        "-o",
        dir.path().to_str().unwrap(),
        "--json",
        "-j",
        "4",
    ];
    args.extend(urls.iter().map(String::as_str));
    let running = Running::spawn(command(&args), None);
    let deadline = std::time::Instant::now() + crate::RUN_BOUND;
    while origin.site.requests().len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal("INT");
    let r1 = running.finish();
    r1.assert_code(130);
    let done: Vec<String> = r1
        .results()
        .into_iter()
        .filter(|r| r["ok"] == true)
        .map(|r| r["url"].as_str().unwrap().to_owned())
        .collect();
    assert!(done.len() < urls.len(), "the run was not interrupted");
    // No part file left; every file there is whole.
    for (name, _) in snapshot(dir.path()) {
        assert!(
            name.starts_with(META) || !name.starts_with('.'),
            "left behind: {name}"
        );
    }

    let (r2, second) = mirror(dir.path(), &urls, &["-j", "4"]);
    r2.assert_code(0);
    for (url, path) in urls.iter().zip(&paths) {
        let r = &second[url];
        let expect = if done.contains(url) { 304 } else { 200 };
        assert_eq!(r["status"], expect, "{path}: {r}");
        assert_eq!(origin.last_was_conditional(path), expect == 304, "{path}");
        assert_eq!(fs::read_to_string(saved_to(r)).unwrap(), body(path, 0));
    }
    let (r3, third) = mirror(dir.path(), &urls, &["-j", "4"]);
    r3.assert_code(0);
    assert!(
        urls.iter().all(|u| third[u]["status"] == 304),
        "{}",
        r3.stdout_text()
    );
}

#[test]
fn missing_corrupt_or_stale_validators_mean_a_full_download() {
    let origin = Origin::start(Duration::ZERO);
    let paths = ["/f/a", "/f/b", "/f/c", "/f/d"];
    let urls = origin.urls(&paths);
    let dir = tempfile::tempdir().unwrap();
    let (r1, first) = mirror(dir.path(), &urls, &["--sha256"]);
    r1.assert_code(0);
    let files: Vec<String> = urls.iter().map(|u| saved_to(&first[u])).collect();
    let meta = |file: &str| {
        let p = Path::new(file);
        p.with_file_name(format!(
            "{META}{}",
            p.file_name().unwrap().to_str().unwrap()
        ))
    };
    fs::remove_file(meta(&files[0])).unwrap(); // missing
    fs::write(meta(&files[1]), b"{\"v\": 1, \"etag\": \"oops").unwrap(); // corrupt
    fs::write(&files[2], b"edited here").unwrap(); // the file changed under them
    // /f/d: untouched, for contrast.

    let (r2, second) = mirror(dir.path(), &urls, &["--sha256"]);
    r2.assert_code(0);
    for (i, (url, path)) in urls.iter().zip(paths).enumerate() {
        let r = &second[url];
        let expect = if i == 3 { 304 } else { 200 };
        assert_eq!(r["status"], expect, "{path}: {r}");
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(origin.last_was_conditional(path), i == 3, "{path}");
        assert_eq!(
            fs::read_to_string(&files[i]).unwrap(),
            body(path, 0),
            "{path}"
        );
        // The hash of what is in the file, fetched or kept.
        assert_eq!(r["sha256"], first[url]["sha256"], "{path}");
    }
    // Repaired: every one is conditional and 304 now.
    let (r3, third) = mirror(dir.path(), &urls, &[]);
    r3.assert_code(0);
    assert!(
        urls.iter().all(|u| third[u]["status"] == 304),
        "{}",
        r3.stdout_text()
    );
}

#[test]
fn saved_files_and_validators_files_never_mix() {
    let origin = Origin::start(Duration::ZERO);
    let paths = [
        "/.fetchpool-meta-x",
        "/f/..%2f.fetchpool-meta-y",
        "/f/%2e%2e/z",
        "/f/plain",
    ];
    let urls = origin.urls(&paths);
    let dir = tempfile::tempdir().unwrap();
    let (r, results) = mirror(dir.path(), &urls, &[]);
    r.assert_code(0);
    let saved: Vec<String> = urls
        .iter()
        .map(|u| {
            let path = saved_to(&results[u]);
            assert_eq!(Path::new(&path).parent().unwrap(), dir.path(), "{path}");
            Path::new(&path)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for name in fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
    {
        let name = name.into_string().unwrap();
        match name.strip_prefix(META) {
            Some(of) => assert!(
                saved.contains(&of.to_owned()),
                "validators of no saved file: {name}"
            ),
            None => assert!(
                saved.contains(&name),
                "neither saved nor validators: {name}"
            ),
        }
    }
    assert!(saved.iter().all(|n| !n.starts_with('.')), "{saved:?}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2 * urls.len());
}

#[test]
fn unchanged_files_are_kept_untouched_and_changed_ones_replaced() {
    let origin = Origin::start(Duration::ZERO);
    let paths = ["/f/0", "/f/1", "/lm/2"];
    let urls = origin.urls(&paths);
    let dir = tempfile::tempdir().unwrap();

    let (r1, first) = mirror(dir.path(), &urls, &[]);
    r1.assert_code(0);
    for (url, path) in urls.iter().zip(paths) {
        assert_eq!(first[url]["status"], 200);
        assert_eq!(
            fs::read_to_string(saved_to(&first[url])).unwrap(),
            body(path, 0)
        );
        assert!(!origin.last_was_conditional(path));
    }
    let before = snapshot(dir.path());
    assert_eq!(
        before.len(),
        6,
        "3 files and 3 validators files: {before:?}"
    );

    // Nothing changed: 304s, text lines and summary say so, no file touched.
    let mut args = vec!["--update", "-o", dir.path().to_str().unwrap()];
    args.extend(urls.iter().map(String::as_str));
    let text = run(&args);
    text.assert_code(0);
    let lines = text.lines();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("304") && l.contains("  unchanged")),
        "{lines:?}"
    );
    assert!(text.stderr.contains("unchanged: 3"), "{}", text.stderr);
    assert!(paths.iter().all(|p| origin.last_was_conditional(p)));
    assert_eq!(snapshot(dir.path()), before, "a file was rewritten");

    let (r2, second) = mirror(dir.path(), &urls, &[]);
    r2.assert_code(0);
    for url in &urls {
        let r = &second[url];
        assert_eq!(
            (r["status"].as_u64(), r["ok"].as_bool()),
            (Some(304), Some(true)),
            "{r}"
        );
        assert_eq!(
            (r["bytes"].as_u64(), saved_to(r)),
            (Some(0), saved_to(&first[url]))
        );
    }
    assert_eq!(snapshot(dir.path()), before, "a file was rewritten");

    // One changes on the server: only it is fetched and replaced.
    origin.change("/f/1");
    let (r3, third) = mirror(dir.path(), &urls, &[]);
    r3.assert_code(0);
    assert_eq!(third[&urls[1]]["status"], 200);
    assert_eq!(
        fs::read_to_string(saved_to(&third[&urls[1]])).unwrap(),
        body("/f/1", 1)
    );
    assert_eq!(
        (
            third[&urls[0]]["status"].as_u64(),
            third[&urls[2]]["status"].as_u64()
        ),
        (Some(304), Some(304))
    );
    let after = snapshot(dir.path());
    let name = Path::new(&saved_to(&third[&urls[1]]))
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != before[*k]).collect();
    let mut changed: Vec<String> = changed.into_iter().cloned().collect();
    changed.sort();
    assert_eq!(
        changed,
        [format!("{META}{name}"), name],
        "only /f/1 and its validators"
    );
}

#[test]
fn update_without_an_output_dir_is_a_usage_error() {
    let r = run(&["--update", "http://127.0.0.1:9/"]);
    r.assert_code(2);
    assert!(r.stderr.contains("--output-dir"), "{}", r.stderr);
}

#[test]
fn update_works_with_every_names_layout() {
    let origin = Origin::start(Duration::ZERO);
    let paths = ["/f/a/x.txt", "/f/b/x.txt", "/lm/c/"];
    let urls = origin.urls(&paths);
    for layout in ["tree", "flat", "hashed"] {
        let dir = tempfile::tempdir().unwrap();
        let (first, saved) = mirror(dir.path(), &urls, &["--names", layout]);
        first.assert_code(0);
        let (second, again) = mirror(dir.path(), &urls, &["--names", layout]);
        second.assert_code(0);
        for (url, path) in urls.iter().zip(paths) {
            assert!(origin.last_was_conditional(path), "{layout} {path}");
            assert_eq!(again[url]["status"], 304, "{layout} {path}");
            assert_eq!(again[url]["saved_to"], saved[url]["saved_to"], "{layout}");
        }
    }
}
