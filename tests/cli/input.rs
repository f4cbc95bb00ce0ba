//! Input: arguments, files and stdin, blank and comment lines, byte order
//! marks, hostile bytes, URL forms and hosts, rejected entries, --dedup and
//! --shard.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::server::TestServer;
use crate::support::{
    assert_one_line_usage_error, byte_lines, json_args, numbered, url_of, write_file,
};
use crate::{Running, assert_all_seqs, command, kind, lines, run, run_stdin};

/// Asserts a usage error: exit 2, a one-line message, nothing fetched.
fn assert_usage_error(run: &crate::Run, server: &TestServer) {
    assert_one_line_usage_error(run);
    assert_eq!(
        server.total_requests(),
        0,
        "a usage error fetched something"
    );
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn message(result: &Value) -> &str {
    result["error"]["message"].as_str().unwrap_or("")
}

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
fn a_missing_input_file_is_a_usage_error_and_fetches_nothing() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let missing = missing.to_str().unwrap();
    let run = run(&[server.url("/ok"), "-i".into(), missing.into()]);
    assert_usage_error(&run, &server);
    assert!(run.stderr.contains("missing.txt"), "{}", run.stderr);
}

#[test]
fn an_input_without_entries_is_a_clean_run_of_zero() {
    // A retry list from a clean run is empty: feeding it back is not an
    // error. (Only no source at all, stdin a terminal, is exit 2.)
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let summary = dir.path().join("s.json");
    for run in [
        run::<&str>(&[]),
        run_stdin::<&str>(&[], ""),
        run_stdin(&["--json"], "\n# only a comment\n\n"),
        run(&[
            "-i",
            empty.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ]),
    ] {
        run.assert_code(0);
        assert!(run.stdout.is_empty(), "stdout: {}", run.stdout_text());
        assert!(run.stderr.contains("0 entries"), "{}", run.stderr);
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(report["entries"], 0);
}

#[test]
fn blank_and_comment_lines_are_skipped_and_not_numbered() {
    let server = TestServer::start();
    let (a, b) = (server.url("/ok?i=a"), server.url("/ok?i=b"));
    let input = format!("\n# comment\n  {a}  \n   \n\t# indented comment\n{b}\n\n");
    let run = run_stdin(&["--json"], input);
    run.assert_code(0);
    let results = run.by_seq();
    assert_all_seqs(&results, 2);
    assert_eq!(url_of(&results[&0]), a);
    assert_eq!(url_of(&results[&1]), b);
}

#[test]
fn invalid_entries_yield_invalid_url_and_the_run_goes_on() {
    let server = TestServer::start();
    let long = format!("{}{}", server.url("/"), "a".repeat(1 << 20));
    let entries: Vec<Vec<u8>> = vec![
        server.url("/ok?i=first").into_bytes(),
        b"ftp://x".to_vec(),
        b"example.com".to_vec(),
        b"::not a url::".to_vec(),
        [server.url("/bad-utf8-").as_bytes(), b"\xff\xfe"].concat(),
        // NUL in a path is percent-encoded (WHATWG); in a host it is refused.
        b"http://nul\0byte/".to_vec(),
        long.into_bytes(),
        server.url("/ok?i=last").into_bytes(),
    ];
    let input: Vec<u8> = entries
        .iter()
        .flat_map(|e| [&e[..], b"\n"].concat())
        .collect();

    let run = run_stdin(&["--json"], input);
    run.assert_code(1);
    let out = run.lines();
    let results = run.by_seq();
    assert_all_seqs(&results, 8);
    for seq in [0, 7] {
        assert_eq!(results[&seq]["ok"], true, "{}", results[&seq]);
    }
    for seq in 1..=6 {
        let r = &results[&seq];
        assert_eq!(kind(r), Some("invalid_url"), "seq {seq}: {r}");
        assert_eq!(r["ok"], false, "{r}");
        assert!(r["status"].is_null(), "{r}");
        let message = r["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.is_empty(),
            "seq {seq}: the message names the problem"
        );
    }
    let message = results[&2]["error"]["message"].as_str().unwrap();
    assert!(message.contains("https://"), "no https:// hint: {message}");
    let long_line = out.iter().find(|l| l.contains("\"seq\":6")).unwrap();
    assert!(long_line.len() < 1024, "{} bytes", long_line.len());
    assert_eq!(server.hits("/ok"), 2);
    assert_eq!(server.total_requests(), 2, "an invalid entry was fetched");
}

#[test]
fn positional_file_and_stdin_entries_each_give_one_result_in_seq_order() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 6);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("urls.txt");
    std::fs::write(&file, lines(&urls[2..4])).unwrap();
    let file = file.to_str().unwrap();

    let mut args = json_args(&[], &urls[..2]);
    args.extend(["-i", file, "-i", "-"].map(String::from));
    let run = run_stdin(&args, lines(&urls[4..]));

    run.assert_code(0);
    let results = run.by_seq();
    assert_all_seqs(&results, 6);
    for (seq, url) in urls.iter().enumerate() {
        assert_eq!(url_of(&results[&(seq as u64)]), url, "seq {seq}");
        assert_eq!(server.hits(&format!("/ok?i={seq}")), 1);
    }
}

#[test]
fn stdin_is_read_when_no_url_is_given() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 3);
    let run = run_stdin(&["--json"], lines(&urls));
    run.assert_code(0);
    assert_all_seqs(&run.by_seq(), 3);
    assert_eq!(server.total_requests(), 3);
}

#[test]
fn two_thousand_urls_from_stdin_give_every_seq_once() {
    let server = TestServer::start();
    let urls = numbered(&server, "/ok", 2000);
    let run = run_stdin(&["-j", "32", "--json"], lines(&urls));
    run.assert_code(0);
    assert_eq!(run.lines().len(), 2000);
    assert_all_seqs(&run.by_seq(), 2000);
    assert_eq!(server.total_requests(), 2000);
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
