//! --write-failed: the list of entries not ok, byte for byte, and re-running
//! it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::server::TestServer;
use crate::support::{args, byte_lines, write_file};
use crate::{assert_all_seqs, kind, refused_port, run};

#[test]
fn write_failed_holds_each_entrys_original_bytes() {
    let server = TestServer::start();
    let refused = format!("http://127.0.0.1:{}/gone", refused_port());
    let long: Vec<u8> = [server.url("/").as_bytes(), &[b'a'; 100_000][..]].concat();
    let entries: Vec<Vec<u8>> = vec![
        server.url("/ok").into_bytes(),
        [server.url("/bad-").as_bytes(), b"\xff\xfe"].concat(),
        b"\xc3\x28 not UTF-8".to_vec(),
        b"http://nul\0host/\x1b[31m".to_vec(),
        server.url("/status/404?a b").into_bytes(),
        refused.clone().into_bytes(),
        long.clone(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), "in.txt", &byte_lines(&entries));
    let failed = dir.path().join("failed.txt");
    let f = failed.to_str().unwrap();
    let first = run(&[
        "--json",
        "--retries",
        "0",
        "--write-failed",
        f,
        "-i",
        &input,
    ]);
    first.assert_code(1);
    assert_all_seqs(&first.by_seq(), 7);

    let written = std::fs::read(&failed).unwrap();
    let mut lines: Vec<&[u8]> = written.split(|&b| b == b'\n').collect();
    assert_eq!(lines.pop(), Some(&b""[..]), "ends with a newline");
    let expected: BTreeSet<&[u8]> = entries[1..6].iter().map(|e| &e[..]).collect();
    let short: BTreeSet<&[u8]> = lines.iter().copied().filter(|l| l.len() < 1000).collect();
    assert_eq!(short, expected, "every failed entry, byte for byte");
    // The over-long line is not kept whole: its first 64 KiB and one byte,
    // so it is over-long again when fed back.
    let cut: Vec<&[u8]> = lines.iter().copied().filter(|l| l.len() >= 1000).collect();
    assert_eq!(cut, [&long[..64 * 1024 + 1]]);

    // Fed back, the same entries fail the same way; nothing new is fetched.
    let before = server.total_requests();
    let second = run(&["--json", "--retries", "0", "-i", f]);
    second.assert_code(1);
    let again = second.by_seq();
    assert_all_seqs(&again, 6);
    let kinds: Vec<Option<&str>> = again.values().map(kind).collect();
    let mut kinds_sorted = kinds.clone();
    kinds_sorted.sort();
    let mut expected_kinds = vec![
        Some("invalid_url"),
        Some("invalid_url"),
        Some("invalid_url"),
        Some("invalid_url"),
        Some("connect"),
        None,
    ];
    expected_kinds.sort();
    assert_eq!(kinds_sorted, expected_kinds, "{kinds:?}");
    assert_eq!(server.total_requests() - before, 1, "only the 404 again");
}

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

/// `/dev/full` takes the open and refuses every write (ENOSPC): a full disk.
#[cfg(target_os = "linux")]
#[test]
fn output_files_on_a_full_disk_lose_no_result_and_end_in_an_error() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Entries longer than the --write-failed buffer, so writing fails while
    // results are still coming, not only at the end.
    let long = "x".repeat(20_000);
    let mut entries = vec![server.url("/ok").into_bytes()];
    entries.extend((0..3).map(|i| format!("bad{i}-{long}").into_bytes()));
    entries.push(server.url("/ok?again").into_bytes());
    let list = write_file(dir.path(), "urls.txt", &byte_lines(&entries));
    for flag in ["--write-failed", "--summary-json"] {
        let run = run(&["--json", "-j", "1", "-i", &list, flag, "/dev/full"]);
        run.assert_code(2);
        let by_seq = run.by_seq();
        assert_eq!(run.results().len(), 5, "{flag}: a result lost or repeated");
        assert_all_seqs(&by_seq, 5);
        assert_eq!(kind(&by_seq[&2]), Some("invalid_url"), "{flag}");
        assert!(
            run.stderr.contains("summary: 5 entries, 2 ok, 3 failed"),
            "{flag}: no summary:\n{}",
            run.stderr
        );
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("fetchpool: error: ") && last.contains(flag),
            "{flag}: the last line must say the file is incomplete:\n{}",
            run.stderr
        );
    }
}
