//! `--update` never reports a hash for bytes that are not on disk: a file
//! edited in place (same size, same time) or a stored hash edited by hand
//! means a full download, and each occurrence of a URL listed twice has
//! its own file, validators and hash. What was sent conditionally is read
//! from the server's record.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::run;
use crate::server::{Reply, TestServer};

const BODY: &[u8] = b"the one true body of /f, served with ETag v1\n";

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `BODY` with `ETag: "v1"`, and 304 to `If-None-Match: "v1"`.
fn origin() -> TestServer {
    TestServer::routed(|req| {
        let reply = match req.header("if-none-match") {
            Some("\"v1\"") => Reply::status(304),
            _ => Reply::ok(BODY),
        };
        reply.header("ETag", "\"v1\"")
    })
}

fn update(dir: &Path, urls: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "--json",
        "--sha256",
        "--update",
        "-o",
        dir.to_str().unwrap(),
    ];
    args.extend(urls);
    let out = run(&args);
    out.assert_code(0);
    let mut results = out.results();
    results.sort_by_key(|r| r["seq"].as_u64());
    results
}

fn saved_to(r: &Value) -> PathBuf {
    PathBuf::from(r["saved_to"].as_str().expect("saved_to"))
}

/// Changes one byte of `path`, keeping its size and modification time.
fn flip_a_byte(path: &Path) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = fs::read(path).unwrap();
    bytes[3] ^= 0x20;
    fs::write(path, &bytes).unwrap();
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
}

fn meta_of(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap().to_str().unwrap();
    path.with_file_name(format!(".fetchpool-meta-{name}"))
}

#[test]
fn a_file_edited_in_place_is_downloaded_again() {
    let server = origin();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/f");
    let first = update(dir.path(), &[&url]);
    let file = saved_to(&first[0]);
    flip_a_byte(&file);

    let second = update(dir.path(), &[&url]);
    let r = &second[0];
    assert_eq!(
        r["sha256"].as_str(),
        Some(sha(&fs::read(&file).unwrap()).as_str()),
        "{r}"
    );
    assert_eq!(fs::read(&file).unwrap(), BODY, "the file was not repaired");
    assert_eq!(r["status"], 200, "{r}");
    let seen = server.requests_for("/f");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-none-match"), None, "sent conditionally");
}

#[test]
fn an_edited_stored_hash_is_never_reported() {
    let server = origin();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/f");
    let first = update(dir.path(), &[&url]);
    let file = saved_to(&first[0]);
    let meta = meta_of(&file);
    let text = fs::read_to_string(&meta).unwrap();
    let real = sha(BODY);
    assert!(text.contains(&real), "{text}");
    fs::write(&meta, text.replace(&real, &"0".repeat(64))).unwrap();

    let second = update(dir.path(), &[&url]);
    let r = &second[0];
    assert_eq!(r["sha256"].as_str(), Some(real.as_str()), "{r}");
    assert_eq!(fs::read(&file).unwrap(), BODY);
}

#[test]
fn each_occurrence_of_a_repeated_url_has_its_own_validators() {
    let server = origin();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/f");
    let first = update(dir.path(), &[&url, &url]);
    let files: Vec<PathBuf> = first.iter().map(saved_to).collect();
    assert_ne!(files[0], files[1]);
    for f in &files {
        assert!(meta_of(f).is_file(), "no validators for {}", f.display());
    }

    // The second copy edited in place: only it is downloaded again.
    flip_a_byte(&files[1]);
    let second = update(dir.path(), &[&url, &url]);
    for (r, f) in second.iter().zip(&files) {
        assert_eq!(saved_to(r), *f, "{r}");
        assert_eq!(
            r["sha256"].as_str(),
            Some(sha(&fs::read(f).unwrap()).as_str()),
            "{r}"
        );
    }
    assert_eq!(second[0]["status"], 304, "{}", second[0]);
    assert_eq!(second[1]["status"], 200, "{}", second[1]);
    let conditional = server.requests_for("/f")[2..]
        .iter()
        .filter(|r| r.header("if-none-match").is_some())
        .count();
    assert_eq!(conditional, 1, "one copy was still whole");
}
