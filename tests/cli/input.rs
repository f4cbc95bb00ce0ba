//! Input entries as browsers read them (WHATWG URL Standard, IDNA), byte
//! order marks, `--write-failed` byte for byte, passwords in any entry, and
//! request values checked before anything is sent.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::server::TestServer;
use crate::{Running, assert_all_seqs, command, kind, refused_port, run, run_stdin};

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Lines of raw bytes, each newline-terminated.
fn byte_lines(entries: &[Vec<u8>]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|e| [&e[..], b"\n"].concat())
        .collect()
}

/// Writes `bytes` to `name` in `dir` and returns its path as a string.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn message(result: &Value) -> &str {
    result["error"]["message"].as_str().unwrap_or("")
}

/// Asserts a usage error: exit 2, one line on stderr naming `flag`,
/// nothing on stdout, nothing fetched.
fn assert_usage_error(run: &crate::Run, server: &TestServer, flag: &str) {
    run.assert_code(2);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
    let stderr = run.stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "not one line:\n{stderr}");
    assert!(stderr.contains(flag), "{flag} not named: {stderr}");
    assert!(!stderr.contains('\r'), "raw CR on stderr: {stderr:?}");
    assert_eq!(
        server.total_requests(),
        0,
        "a usage error fetched something"
    );
}

// ------------------------------------------------------------- WHATWG parsing

#[test]
fn browser_style_hrefs_are_fetched_as_their_whatwg_serialization() {
    let server = TestServer::start();
    server.serve_any();
    let port = server.port();
    let base = server.url("");
    // (entry, the request target the server must see)
    let cases: Vec<(String, &str)> = vec![
        (format!("{base}/a b/c d?e f#g h"), "/a%20b/c%20d?e%20f"),
        (format!("{base}/q\"<>`{{}}"), "/q%22%3C%3E%60%7B%7D"),
        (format!("{base}/s?x=\"<>`{{}}"), "/s?x=%22%3C%3E`{}"),
        (format!("{base}/t\tab/x"), "/tab/x"),
        (
            format!("http:\\\\127.0.0.1:{port}\\back\\slash"),
            "/back/slash",
        ),
        (format!("{base}/a/./b/../../dots/%2e%2E/up"), "/up"),
        (format!("{base}/caf\u{e9}?q=\u{e9}"), "/caf%C3%A9?q=%C3%A9"),
        (format!("HTTP://127.0.0.1:{port}/UPPER"), "/UPPER"),
        (format!("http://0x7f.0.0.1:{port}/hex"), "/hex"),
        (format!("http://127.1:{port}/short"), "/short"),
        // Full-width digits and dots: IDNA maps them to 127.0.0.1.
        (
            format!("http://\u{ff11}\u{ff12}\u{ff17}\u{ff0e}0.0.1:{port}/wide"),
            "/wide",
        ),
        (format!("{base}/frag#only"), "/frag"),
        (format!("{base}?"), "/?"),
    ];
    let input: Vec<Vec<u8>> = cases.iter().map(|(e, _)| e.clone().into_bytes()).collect();
    let run = run_stdin(&["--json", "-j", "1"], byte_lines(&input));
    run.assert_code(0);
    let results = run.by_seq();
    assert_all_seqs(&results, cases.len() as u64);
    for (seq, (entry, _)) in cases.iter().enumerate() {
        let r = &results[&(seq as u64)];
        assert_eq!(r["ok"], true, "{entry:?}: {r}");
        assert_eq!(
            r["url"],
            entry.as_str(),
            "the url field is the entry as given"
        );
    }
    let targets: BTreeSet<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    let expected: BTreeSet<String> = cases.iter().map(|(_, t)| t.to_string()).collect();
    assert_eq!(targets, expected);
    for r in server.requests() {
        assert_eq!(
            r.header("host"),
            Some(&*format!("127.0.0.1:{port}")),
            "{r:?}"
        );
    }
}

#[test]
fn control_bytes_in_a_file_line_are_never_sent_raw() {
    let server = TestServer::start();
    server.serve_any();
    let url = |path: &str| server.url(path).into_bytes();
    let entries: Vec<Vec<u8>> = vec![
        // WHATWG drops CR (and tab, LF) inside a URL...
        [url("/cr\r"), b"x".to_vec()].concat(),
        // ...and percent-encodes other controls in the path and query.
        [url("/nul\0"), b"x?a\0b".to_vec()].concat(),
        [url("/esc\x1b"), b"x".to_vec()].concat(),
        url("/bidi\u{202e}x\u{9b}"),
        // In the host they are a reason to reject.
        b"http://nul\0host/".to_vec(),
        b"http://esc\x1bhost/".to_vec(),
    ];
    let run = run_stdin(&["--json", "-j", "1"], byte_lines(&entries));
    run.assert_code(1);
    let results = run.by_seq();
    assert_all_seqs(&results, 6);
    for seq in 0..4 {
        assert_eq!(results[&seq]["ok"], true, "{}", results[&seq]);
    }
    for seq in 4..6 {
        let r = &results[&seq];
        assert_eq!(kind(r), Some("invalid_url"), "{r}");
        assert!(message(r).contains("control character"), "{r}");
    }
    let targets: BTreeSet<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    let expected: BTreeSet<String> = [
        "/crx",
        "/nul%00x?a%00b",
        "/esc%1Bx",
        "/bidi%E2%80%AEx%C2%9B",
    ]
    .map(String::from)
    .into();
    assert_eq!(targets, expected);
}

#[test]
fn rejected_entries_are_invalid_url_in_our_words() {
    let server = TestServer::start();
    let port = server.port();
    let cases: Vec<(String, &str)> = vec![
        ("ftp://example.com/x".into(), "unsupported scheme \"ftp\""),
        (
            "javascript:alert(1)".into(),
            "only http and https are fetched",
        ),
        (
            "example.com/x".into(),
            "missing scheme: did you mean https://example.com/x?",
        ),
        (
            format!("127.0.0.1:{port}/ok"),
            "did you mean http://127.0.0.1",
        ),
        (
            format!("localhost:{port}/ok"),
            "did you mean http://localhost",
        ),
        ("https//example.com/".into(), "missing ':' after the scheme"),
        ("http://127.0.0.1:0/".into(), "port 0"),
        ("http://127.0.0.1:65536/".into(), "1 to 65535"),
        ("http://127.0.0.1:99999999999/".into(), "1 to 65535"),
        ("http://127.0.0.1:8o/".into(), "1 to 65535"),
        ("http://1.2.3.256/".into(), "IPv4"),
        ("http://127.0.0.0x100/".into(), "IPv4"),
        ("http://[::1/".into(), "IPv6"),
        ("http://[1:2:3]/".into(), "IPv6"),
        ("http://[::1]x/".into(), "IPv6"),
        ("http://xn--a.example/".into(), "IDNA"),
        ("http://exa mple.com/".into(), "' '"),
        ("http:///".into(), "no host"),
        ("http://u:p@/".into(), "no host"),
    ];
    let input: Vec<Vec<u8>> = cases.iter().map(|(e, _)| e.clone().into_bytes()).collect();
    let run = run_stdin(&["--json"], byte_lines(&input));
    run.assert_code(1);
    let results = run.by_seq();
    assert_all_seqs(&results, cases.len() as u64);
    for (seq, (entry, words)) in cases.iter().enumerate() {
        let r = &results[&(seq as u64)];
        assert_eq!(kind(r), Some("invalid_url"), "{entry:?}: {r}");
        assert!(message(r).contains(words), "{entry:?}: {r}");
    }
    assert_eq!(server.total_requests(), 0, "a rejected entry was fetched");
}

#[test]
fn the_highest_port_is_valid() {
    // Nothing listens on 65535 of 127.0.0.1 in a test run (or it answers):
    // either way the entry is fetched, not rejected.
    let run = run(&[
        "--json",
        "--retries",
        "0",
        "-m",
        "5",
        "http://127.0.0.1:65535/",
    ]);
    assert_ne!(kind(&run.single()), Some("invalid_url"), "{}", run.single());
}

#[test]
fn internationalized_host_names_are_sent_in_their_xn_form() {
    // The test server is the proxy: ureq tunnels with CONNECT and names the
    // target host, so nothing leaves 127.0.0.1 and no name is looked up.
    let proxy = TestServer::start();
    let mut cmd = command([
        "--json",
        "--retries",
        "0",
        "http://B\u{fc}cher.example/caf\u{e9}",
        "https://\u{4f8b}\u{3048}.\u{30c6}\u{30b9}\u{30c8}/",
    ]);
    cmd.env("http_proxy", proxy.url(""))
        .env("https_proxy", proxy.url(""))
        .env_remove("no_proxy");
    let run = Running::spawn(cmd, None).finish();
    let results = run.by_seq();
    assert_all_seqs(&results, 2);
    for r in results.values() {
        assert_ne!(kind(r), Some("invalid_url"), "{r}");
    }
    let targets: BTreeSet<String> = proxy.requests().iter().map(|r| r.target.clone()).collect();
    let expected: BTreeSet<String> = ["xn--bcher-kva.example:80", "xn--r8jz45g.xn--zckzah:443"]
        .map(String::from)
        .into();
    assert_eq!(targets, expected, "{:?}", proxy.requests());
}

// ---------------------------------------------------------------- byte order mark

#[test]
fn a_byte_order_mark_is_skipped_at_the_start_of_each_file_and_stdin() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ok = |i: &str| server.url(&format!("/ok?i={i}")).into_bytes();
    // A BOM before a comment, and before a URL.
    let one = write_file(
        dir.path(),
        "one.txt",
        &[BOM, b"# list\n", &ok("a"), b"\n"].concat(),
    );
    let two = write_file(dir.path(), "two.txt", &[BOM, &ok("b")[..]].concat());
    let stdin = [BOM, &ok("c"), b"\r\n"].concat();
    let run = run_stdin(&["--json", "-i", &one, "-i", &two, "-i", "-"], stdin);
    run.assert_code(0);
    let results = run.by_seq();
    assert_all_seqs(&results, 3);
    for (seq, i) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(
            results[&(seq as u64)]["url"],
            server.url(&format!("/ok?i={i}")),
            "the BOM is not part of the entry"
        );
    }
    assert_eq!(server.hits("/ok"), 3);
}

#[test]
fn a_byte_order_mark_elsewhere_is_content() {
    let server = TestServer::start();
    let entries = vec![
        server.url("/ok?i=0").into_bytes(),
        [BOM, server.url("/ok?i=1").as_bytes()].concat(),
        BOM.to_vec(),
    ];
    let run = run_stdin(&["--json"], byte_lines(&entries));
    run.assert_code(1);
    let results = run.by_seq();
    assert_all_seqs(&results, 3);
    assert_eq!(results[&0]["ok"], true);
    assert_eq!(kind(&results[&1]), Some("invalid_url"), "{}", results[&1]);
    assert_eq!(kind(&results[&2]), Some("invalid_url"), "{}", results[&2]);
    assert_eq!(server.total_requests(), 1);
}

// ---------------------------------------------------------------- --write-failed

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

// ---------------------------------------------------------------- passwords

#[test]
fn passwords_never_show_in_any_output() {
    let server = TestServer::start();
    let secret = "hunter2";
    let port = server.port();
    let entries: Vec<String> = vec![
        format!("bob:{secret}@example.com"),
        format!("https//bob:{secret}@127.0.0.1:{port}/"),
        format!("http:/bob:{secret}@127.0.0.1:99999"),
        format!("user:{secret}@host:8080/path"),
        format!("http://bob:{secret}@127.0.0.1:{port}/status/500"),
        format!("http://bob:{secret}@127.0.0.1:{}/", refused_port()),
        format!("http://bob:{secret}@127.0.0.1:{port}/redirect/1"),
        format!("ftp://bob:{secret}@example.com/"),
        format!("http://bob:{secret}@[::1/"),
        format!("http://bob:{secret}@x@127.0.0.1:{port}/ok"),
        format!("http://bob:hun%74er2@127.0.0.1:{port}/ok"),
        format!("http://bob:{secret}/x@127.0.0.1:{port}/ok"),
    ];
    let input = crate::lines(&entries);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let summary_arg = summary.to_str().unwrap();
    let format = "{seq} {url} {final_url} {error}";
    for args in [
        vec!["--json", "--retries", "0"],
        vec!["--retries", "0", "--progress", "plain"],
        vec!["--retries", "0", "--format", format],
        vec!["--retries", "0", "--summary-json", summary_arg],
    ] {
        let run = run_stdin(&args, input.clone());
        run.assert_code(1);
        run.assert_absent(secret);
        run.assert_absent("hun%74er2");
        let out = run.stdout_text();
        assert_eq!(out.lines().count(), entries.len(), "{out}");
        assert!(out.contains("bob:***@example.com"), "{out}");
        assert!(out.contains("user:***@host:8080/path"), "{out}");
        assert!(out.contains("https//bob:***@127.0.0.1"), "{out}");
    }
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(!written.contains(secret), "{written}");
}

// ---------------------------------------------------------------- request values

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

// ---------------------------------------------------------------- hostile input

#[test]
fn hostile_bytes_give_exactly_one_result_per_entry_with_its_seq() {
    let server = TestServer::start();
    server.serve_any();
    let base = server.url("");
    let entries: Vec<Vec<u8>> = vec![
        format!("{base}/0").into_bytes(),
        b"\x1b[2J\x1b]0;title\x07".to_vec(),
        format!("{base}/esc\x1b[31m").into_bytes(),
        "\u{202e}http://127.0.0.1/".as_bytes().to_vec(),
        format!("{base}/rlo\u{202e}").into_bytes(),
        format!("{base}/csi\u{9b}31m").into_bytes(),
        b"\0\0\0".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        [base.as_bytes(), b"/bad\xc0\xaf"].concat(),
        [BOM, base.as_bytes(), b"/bom-mid"].concat(),
        [base.as_bytes(), b"/", &[b'x'; 100_000][..]].concat(),
        [
            &[b' '; 100_000][..],
            format!("{base}/after-blanks").as_bytes(),
        ]
        .concat(),
        [
            format!("{base}/before-blanks").as_bytes(),
            &[b' '; 100_000][..],
        ]
        .concat(),
        [&[b'\t'; 70_000][..], b"#", &[b'c'; 70_000][..]].concat(),
        format!("{base}/last").into_bytes(),
    ];
    // The tab-indented comment is skipped and numbered not.
    let n = entries.len() as u64 - 1;
    for ordered in [false, true] {
        let mut args = vec!["--json", "-j", "4"];
        if ordered {
            args.push("--ordered");
        }
        let run = run_stdin(&args, byte_lines(&entries));
        run.assert_code(1);
        let results = run.by_seq();
        assert_all_seqs(&results, n);
        let ok: Vec<u64> = results
            .iter()
            .filter(|(_, r)| r["ok"] == true)
            .map(|(&seq, _)| seq)
            .collect();
        assert_eq!(ok, [0, 2, 4, 5, 11, 12, 13], "ordered: {ordered}");
        for line in run.lines() {
            assert!(line.len() < 2048, "a rejected entry is shown short");
        }
    }
    let targets: BTreeSet<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    for t in [
        "/0",
        "/esc%1B[31m",
        "/rlo%E2%80%AE",
        "/csi%C2%9B31m",
        "/after-blanks",
    ] {
        assert!(targets.contains(t), "{t} not fetched: {targets:?}");
    }
    for t in &targets {
        assert!(
            t.bytes().all(|b| b.is_ascii_graphic()),
            "raw byte sent: {t:?}"
        );
    }
}

// ------------------------------------------------------------- read errors

#[test]
fn a_read_error_ends_the_run_with_exit_2_naming_the_input() {
    let server = TestServer::start();
    server.serve_any();
    let dir = tempfile::tempdir().unwrap();
    // A directory opens, but reading it fails: after the URL argument,
    // before anything of the input after it.
    let url = server.url("/a");
    let out = run(&[
        url.as_str(),
        "-i",
        dir.path().to_str().unwrap(),
        "--json",
        "--no-progress",
    ]);
    out.assert_code(2);
    let stderr = out.stderr.trim_end();
    let expected = format!("fetchpool: error: reading {}: ", dir.path().display());
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("directory"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
