//! Helpers shared by several test files.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::server::TestServer;
use crate::{Running, command, run};

/// `count` distinct URLs for `path` (`path?i=N`), so hits can be told apart.
pub fn numbered(server: &TestServer, path: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| server.url(&format!("{path}?i={i}")))
        .collect()
}

/// `--json` followed by `urls` as positional arguments.
pub fn json_args(extra: &[&str], urls: &[String]) -> Vec<String> {
    let mut args = vec!["--json".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(urls.iter().cloned());
    args
}

/// The `url` field of a result.
pub fn url_of(result: &Value) -> &str {
    result["url"].as_str().expect("url is a string")
}

/// Runs with `--json -q` and `args`.
pub fn json_run(args: &[&str]) -> crate::Run {
    let mut all = vec!["--json", "-q"];
    all.extend_from_slice(args);
    run(&all)
}

/// Fetches one URL with `--json`, `extra` flags and quick deadlines (unless
/// `extra` sets `-m` itself); returns its only result after checking the
/// exit code agrees with `ok`.
pub fn fetch_one(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "--connect-timeout", "2"];
    if !extra.contains(&"-m") {
        args.extend(["-m", "2"]);
    }
    args.extend(extra);
    args.push(url);
    let run = run(&args);
    let result = run.single();
    run.assert_code(if result["ok"] == true { 0 } else { 1 });
    result
}

/// Lines of raw bytes, each newline-terminated.
pub fn byte_lines(entries: &[Vec<u8>]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|e| [&e[..], b"\n"].concat())
        .collect()
}

/// Writes `bytes` to `name` in `dir` and returns its path as a string.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Owned copies of `items`, for argument lists that mix in owned URLs.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Asserts a usage error: exit 2, nothing on stdout, one line on stderr in
/// fetchpool's own style, free of control characters.
pub fn assert_one_line_usage_error(run: &crate::Run) -> String {
    run.assert_code(2);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
    let err = run.stderr.trim_end().to_string();
    assert_eq!(
        err.lines().count(),
        1,
        "expected one line, got:\n{}",
        run.stderr
    );
    assert!(err.starts_with("fetchpool: error: "), "{err}");
    assert_no_raw_controls(&run.stderr);
    err
}

/// Panics if `text` holds a control or bidi character other than newline.
pub fn assert_no_raw_controls(text: &str) {
    let bad = text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
    });
    assert!(bad.is_none(), "raw {bad:?} in {text:?}");
}

/// Runs fetchpool with `--json` and quick deadlines on `urls`, with `env`
/// set in the child only; returns the results in input order and the run.
pub fn fetch(env: &[(&str, &str)], flags: &[&str], urls: &[String]) -> (Vec<Value>, crate::Run) {
    let mut args: Vec<String> = ["--json", "--ordered", "-m", "5", "--connect-timeout", "2"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(flags.iter().map(|s| (*s).to_owned()));
    args.extend(urls.iter().cloned());
    let mut cmd = command(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Running::spawn(cmd, None).finish();
    let results = run.results();
    assert_eq!(results.len(), urls.len(), "stderr:\n{}", run.stderr);
    (results, run)
}

/// The error message of a result (`""` when it has none).
pub fn message(r: &Value) -> &str {
    r["error"]["message"].as_str().unwrap_or("")
}

/// `flags` followed by `urls`, as one argument list.
pub fn args<S: AsRef<str>>(flags: &[&str], urls: &[S]) -> Vec<String> {
    flags
        .iter()
        .map(|s| s.to_string())
        .chain(urls.iter().map(|u| u.as_ref().to_string()))
        .collect()
}

/// The SHA-256 of `bytes` in lowercase hex, as `--sha256` reports it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names of everything directly inside `dir`.
pub fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// How long a test waits for something the run or the server must do
/// before failing (never reached when things work).
pub const WAIT: Duration = Duration::from_secs(30);

/// The lines of the file at `path` (none if it is missing).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `--summary-json` file at `path`, parsed.
pub fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("summary written");
    serde_json::from_str(&text).expect("summary is JSON")
}

/// The only request `server` received.
pub fn single_request(server: &TestServer) -> crate::server::Request {
    let all = server.requests();
    assert_eq!(all.len(), 1, "expected one request: {all:#?}");
    all[0].clone()
}
