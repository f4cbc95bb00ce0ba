//! The invariants one finished run must keep, whatever the server did and
//! whenever the signals came (see the parent module's docs).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use super::chaos::Hosts;
use super::{Case, Paths, sha};
use crate::Run;

/// The violations found, as messages.
#[derive(Default)]
pub struct Found(pub Vec<String>);

impl Found {
    fn fail(&mut self, message: String) {
        self.0.push(message);
    }
}

/// The counts of `--summary-json`.
struct Totals {
    entries: u64,
    ok: u64,
    failed: u64,
    not_started: u64,
    bytes: u64,
    unchanged: u64,
}

/// Checks one finished run.
pub fn check(case: &Case, run: &Run, signalled: bool, hosts: &Hosts, paths: &Paths) -> Found {
    let mut found = Found::default();
    if run.stderr.contains("panicked") || run.stderr.contains("Other(") {
        found.fail(format!(
            "stderr shows a panic or Debug text:\n{}",
            run.stderr
        ));
    }
    let Some(totals) = summary(case, run, paths, &mut found) else {
        return found;
    };
    exit_code(case, run, signalled, &totals, &mut found);
    let failed_text = std::fs::read_to_string(&paths.failed).unwrap_or_default();
    let mut listed: Vec<&str> = failed_text.lines().collect();
    listed.sort_unstable();
    if !case.json {
        let printed = run.stdout_text().lines().count() as u64;
        if printed != totals.ok + totals.failed {
            found.fail(format!(
                "{printed} lines printed, the summary has {} finished",
                totals.ok + totals.failed
            ));
        }
        if listed.len() as u64 != totals.failed + totals.not_started {
            found.fail(format!(
                "--write-failed has {} lines for {} failed and {} not started",
                listed.len(),
                totals.failed,
                totals.not_started
            ));
        }
        return found;
    }
    let results = printed(case, run, &totals, &mut found);
    write_failed(case, &results, &listed, &mut found);
    let whole = hosts.chaos.whole.lock().unwrap().clone();
    let mut files = HashSet::new();
    for (seq, r) in &results {
        fields(case, *seq, r, signalled, &mut found);
        saved(case, *seq, r, &whole, &mut files, &mut found);
    }
    no_part_files(case, paths, &mut found);
    found
}

/// The entries of the run: every seq, or the first occurrences with --dedup.
fn entries(case: &Case) -> Vec<u64> {
    let mut seen = HashSet::new();
    (0..case.urls.len() as u64)
        .filter(|&i| !case.dedup || seen.insert(case.urls[i as usize].clone()))
        .collect()
}

/// `--summary-json` read and checked against itself, the list and the
/// text summary.
fn summary(case: &Case, run: &Run, paths: &super::Paths, found: &mut Found) -> Option<Totals> {
    let code = run.status.code();
    let Ok(text) = std::fs::read_to_string(&paths.summary) else {
        found.fail(format!(
            "no --summary-json (exit {code:?}):\n{}",
            run.stderr
        ));
        return None;
    };
    let Ok(s) = serde_json::from_str::<Value>(&text) else {
        found.fail(format!("--summary-json is not JSON:\n{text}"));
        return None;
    };
    let num = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    let t = Totals {
        entries: num("entries"),
        ok: num("ok"),
        failed: num("failed"),
        not_started: num("not_started"),
        bytes: num("bytes"),
        unchanged: num("unchanged"),
    };
    let want = entries(case).len() as u64;
    if t.entries != want {
        found.fail(format!(
            "summary entries {}, the list has {want}",
            t.entries
        ));
    }
    if t.ok + t.failed + t.not_started != t.entries {
        found.fail(format!("ok + failed + not started != entries: {s}"));
    }
    let breakdown: u64 = ["failed_by_status", "failed_by_kind"]
        .iter()
        .filter_map(|k| s[*k].as_object())
        .flat_map(|m| m.values())
        .filter_map(Value::as_u64)
        .sum();
    if breakdown != t.failed {
        found.fail(format!("the failure breakdown adds up to {breakdown}: {s}"));
    }
    if let Some(line) = run.stderr.lines().find(|l| l.starts_with("summary: ")) {
        let want = format!(", {} ok, {} failed", t.ok, t.failed);
        if !line.contains(&want) {
            found.fail(format!(
                "text summary {line:?} is not the JSON one ({want})"
            ));
        }
        if run.stderr.contains("  failed: \n") {
            found.fail("an empty `failed:` line in the text summary".into());
        }
    }
    Some(t)
}

/// The exit code follows the contract's table.
fn exit_code(case: &Case, run: &Run, signalled: bool, t: &Totals, found: &mut Found) {
    let code = run.status.code();
    let normal = i32::from(t.failed + t.not_started > 0);
    // 128 + the first signal; two signals that come at once may be seen
    // in either order, so either one's code.
    let signal_codes: Vec<i32> = case
        .signals
        .iter()
        .map(|(s, _)| if *s == "INT" { 130 } else { 143 })
        .collect();
    let fine = match code {
        Some(c) if c == normal => true,
        Some(c) => signalled && signal_codes.contains(&c),
        None => false,
    };
    if !fine {
        found.fail(format!(
            "exit {code:?}, expected {normal} (signalled: {signalled})"
        ));
    }
}

/// The printed results by seq, each entry at most once, agreeing with
/// the summary.
fn printed(case: &Case, run: &Run, t: &Totals, found: &mut Found) -> BTreeMap<u64, Value> {
    let mut results = BTreeMap::new();
    let ordered = case.flags.iter().any(|f| f == "--ordered");
    let mut last = None;
    for line in run.stdout_text().lines() {
        let Ok(r) = serde_json::from_str::<Value>(line) else {
            found.fail(format!("stdout line is not JSON: {line:?}"));
            continue;
        };
        let seq = r["seq"].as_u64().unwrap_or(u64::MAX);
        if ordered && last.is_some_and(|l| l >= seq) {
            found.fail(format!("--ordered printed seq {seq} after {last:?}"));
        }
        last = Some(seq);
        if results.insert(seq, r).is_some() {
            found.fail(format!("seq {seq} printed twice"));
        }
    }
    let kept: BTreeSet<u64> = entries(case).into_iter().collect();
    for seq in results.keys().filter(|s| !kept.contains(s)) {
        found.fail(format!("seq {seq} printed but is not an entry"));
    }
    let ok = results.values().filter(|r| r["ok"] == true).count() as u64;
    let failed = results.len() as u64 - ok;
    if (ok, failed) != (t.ok, t.failed) {
        found.fail(format!(
            "printed {ok} ok and {failed} failed, the summary {} and {}",
            t.ok, t.failed
        ));
    }
    let unprinted = kept.iter().filter(|s| !results.contains_key(s)).count() as u64;
    if unprinted != t.not_started {
        found.fail(format!(
            "{unprinted} entries not printed, the summary has {} never started",
            t.not_started
        ));
    }
    let bytes: u64 = results.values().filter_map(|r| r["bytes"].as_u64()).sum();
    if bytes != t.bytes {
        found.fail(format!("printed bytes {bytes}, the summary {}", t.bytes));
    }
    let unchanged = results
        .values()
        .filter(|r| r["ok"] == true && r["status"] == 304 && case.update)
        .count() as u64;
    if unchanged != t.unchanged {
        found.fail(format!(
            "{unchanged} ok 304s printed, the summary has {} unchanged",
            t.unchanged
        ));
    }
    results
}

/// `--write-failed` holds the not-ok and never-started entries, each once.
fn write_failed(case: &Case, results: &BTreeMap<u64, Value>, listed: &[&str], found: &mut Found) {
    let mut want: Vec<&str> = entries(case)
        .into_iter()
        .filter(|s| results.get(s).is_none_or(|r| r["ok"] != true))
        .map(|s| case.urls[s as usize].as_str())
        .collect();
    want.sort_unstable();
    if want != listed {
        found.fail(format!(
            "--write-failed lists {listed:?}, expected {want:?}"
        ));
    }
}

/// `ok`, `status`, `error` and `--accept` agree.
fn fields(case: &Case, seq: u64, r: &Value, signalled: bool, found: &mut Found) {
    let accept = |status: u64| -> bool {
        let list = case.accept.unwrap_or("200-399");
        list.split(',').any(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap_or(0)..=b.parse().unwrap_or(0)).contains(&status),
            None => part.parse() == Ok(status),
        })
    };
    let status = r["status"].as_u64();
    let error = &r["error"];
    if r["ok"] == true {
        let unchanged = case.update && status == Some(304);
        if !error.is_null() || !status.is_some_and(|s| accept(s) || unchanged) {
            found.fail(format!("seq {seq}: ok with {r}"));
        }
    } else if error.is_null() && status.is_none_or(accept) {
        found.fail(format!("seq {seq}: not ok, no error, status accepted: {r}"));
    }
    if error["kind"] == "cancelled" && !signalled {
        found.fail(format!("seq {seq}: cancelled without a signal: {r}"));
    }
}

/// A result's saved file holds the bytes its `sha256` names, bytes the
/// server sent whole when the result is ok, and is no other entry's.
fn saved(
    case: &Case,
    seq: u64,
    r: &Value,
    whole: &HashSet<String>,
    files: &mut HashSet<String>,
    found: &mut Found,
) {
    let ok = r["ok"] == true;
    let status = r["status"].as_u64();
    let digest = r.get("sha256").and_then(Value::as_str);
    let whole_body = ok && matches!(status, Some(200 | 206));
    if case.sha256 && whole_body && !digest.is_some_and(|d| whole.contains(d)) {
        found.fail(format!(
            "seq {seq}: an ok body the server never sent whole: {r}"
        ));
    }
    let Some(path) = r.get("saved_to").and_then(Value::as_str) else {
        if case.output && whole_body {
            found.fail(format!("seq {seq}: an ok 200 with -o, nothing saved: {r}"));
        }
        return;
    };
    if !files.insert(path.to_owned()) {
        found.fail(format!("seq {seq}: {path} is the saved_to of two entries"));
    }
    let Ok(bytes) = std::fs::read(path) else {
        found.fail(format!("seq {seq}: saved_to {path} cannot be read"));
        return;
    };
    let on_disk = sha(&bytes);
    if digest.is_some_and(|d| d != on_disk) {
        found.fail(format!(
            "seq {seq}: {path} is not the bytes its sha256 names: {r}"
        ));
    }
    if whole_body && r["bytes"].as_u64() != Some(bytes.len() as u64) {
        found.fail(format!("seq {seq}: {path} has {} bytes: {r}", bytes.len()));
    }
    if ok && !whole.contains(&on_disk) {
        found.fail(format!(
            "seq {seq}: {path} holds bytes never sent whole: {r}"
        ));
    }
}

/// No temporary file is left in `-o` DIR.
fn no_part_files(case: &Case, paths: &Paths, found: &mut Found) {
    let Ok(dir) = std::fs::read_dir(&paths.out) else {
        return;
    };
    if !case.output {
        return;
    }
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".part") {
            found.fail(format!("a part file left behind: {name}"));
        }
    }
}
