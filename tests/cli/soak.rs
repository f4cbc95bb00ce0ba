//! The soak: a long list of mixed faults, each entry exactly one result.

use std::collections::BTreeMap;

use crate::server::TestServer;
use crate::{assert_all_seqs, count_kinds, kind, lines, refused_port, run_stdin};

/// One soak entry: its URL and the error kinds its result may have
/// (`"none"` for no error) and whether it must be ok.
struct Entry {
    url: String,
    ok: bool,
    kinds: &'static [&'static str],
}

/// The faults of the soak test, each `count` times. The two that push back
/// (429, 503) go to `pushy`, a host of their own, once each: every pushback
/// pauses and paces its host (tested with the politeness tests), and here
/// that would only stretch the run.
fn soak_faults(server: &TestServer, pushy: &TestServer) -> Vec<Entry> {
    let refused = format!("http://127.0.0.1:{}", refused_port());
    let kinds: [(&str, usize, bool, &'static [&'static str]); 14] = [
        ("/fault/hang", 3, false, &["timeout"]),
        ("/fault/drip", 3, false, &["timeout"]),
        ("/fault/endless", 3, false, &["timeout"]),
        ("/fault/reset", 20, false, &["io", "connect"]),
        ("/fault/garbage", 20, false, &["protocol"]),
        ("/fault/short", 20, false, &["io"]),
        ("/fault/self-redirect", 10, false, &["redirects"]),
        ("/fault/flaky503/", 1, true, &["none"]),
        ("/fault/retry-after/", 1, true, &["none"]),
        ("/status/404", 40, false, &["none"]),
        ("/status/500", 10, false, &["none"]),
        ("/big", 2, true, &["none"]),
        ("refused", 10, false, &["connect"]),
        ("ftp://x/", 10, false, &["invalid_url"]),
    ];
    let mut entries = Vec::new();
    for (path, count, ok, kinds) in kinds {
        for i in 0..count {
            let url = match path {
                "refused" => format!("{refused}/{i}"),
                "ftp://x/" => format!("{path}{i}"),
                p if p.ends_with('/') => pushy.url(&format!("{p}{i}")),
                p => server.url(&format!("{p}?i={i}")),
            };
            entries.push(Entry { url, ok, kinds });
        }
    }
    entries
}

#[test]
fn soak_of_mixed_faults_gives_each_entry_exactly_one_result() {
    // 211 faults spread through good URLs: 1,000 entries keep more than
    // five times workers + queue (64 + 128) waiting, so every fault meets a
    // full queue and busy workers, as a longer list would.
    const TOTAL: usize = 1000;
    let server = TestServer::start();
    let pushy = TestServer::start();
    let faults = soak_faults(&server, &pushy);
    // Spread the faults evenly through good URLs.
    let stride = TOTAL / faults.len();
    let mut faults = faults.into_iter();
    let entries: Vec<Entry> = (0..TOTAL)
        .map(|i| {
            let fault = if i % stride == 0 { faults.next() } else { None };
            fault.unwrap_or_else(|| Entry {
                url: server.url(&format!("/bytes/{}?i={i}", i % 700)),
                ok: true,
                kinds: &["none"],
            })
        })
        .collect();
    assert!(faults.next().is_none(), "not every fault got a slot");
    let input: Vec<&str> = entries.iter().map(|e| e.url.as_str()).collect();

    let run = run_stdin(
        &["--json", "-j", "64", "-m", "1", "--connect-timeout", "1"],
        lines(&input),
    );
    run.assert_code(1);
    let results = run.by_seq();
    assert_eq!(results.len(), TOTAL);
    assert_all_seqs(&results, TOTAL as u64);

    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (seq, entry) in entries.iter().enumerate() {
        let r = &results[&(seq as u64)];
        let got = kind(r).unwrap_or("none");
        assert!(entry.kinds.contains(&got), "seq {seq} {}: {r}", entry.url);
        assert_eq!(r["ok"], entry.ok, "seq {seq}: {r}");
        *expected.entry(got.to_string()).or_insert(0) += 1;
    }
    assert_eq!(count_kinds(results.values()), expected);
}
