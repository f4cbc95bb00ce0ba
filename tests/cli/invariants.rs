//! A randomized invariant checker: random URL lists and flag sets against a
//! chaotic two-host server (random statuses, pushback with `Retry-After`,
//! slow, cut and close-delimited bodies, resets, redirects, `ETag`s that
//! change), sometimes with signals sent when the server has seen a given
//! number of requests. Whatever happens, each run must keep these:
//!
//! - every entry is printed at most once, and the entries not printed are
//!   exactly those the summary counts as never started;
//! - the summary (`--summary-json`, and the text one on stderr) equals what
//!   was printed: entries, ok, failed, bytes, and a failure breakdown that
//!   adds up to `failed`;
//! - the exit code follows the contract's table;
//! - `--write-failed` lists exactly the entries not ok and never started;
//! - `ok`, `status`, `error` and `--accept` agree;
//! - every `saved_to` holds the bytes its `sha256` names, an ok body's hash
//!   is that of a body the server sent whole, no part file is left, and no
//!   two entries share a file.
//!
//! In the suite it runs a few cases from a fixed seed. To run it long:
//!
//! ```text
//! FETCHPOOL_INVARIANT_SECS=3600 FETCHPOOL_INVARIANT_FULL=1 \
//! FETCHPOOL_INVARIANT_LOG=/tmp/findings cargo test --release --test cli invariants
//! ```
//!
//! Knobs: `FETCHPOOL_INVARIANT_RUNS` (cases; default 8),
//! `FETCHPOOL_INVARIANT_SECS` (run cases until this much time has passed),
//! `FETCHPOOL_INVARIANT_SEED` (first seed; each case's seed is printed on
//! failure and replays it), `FETCHPOOL_INVARIANT_SIGNALS=1` (signals in every
//! case, not a quarter of them), `FETCHPOOL_INVARIANT_FULL=1` (slower chaos:
//! hangs, one-second `Retry-After`, slow bodies; off in the suite to keep
//! it fast), `FETCHPOOL_INVARIANT_LOG=DIR` (write each violation to DIR and
//! go on instead of failing at the first), `FETCHPOOL_BIN` (the binary to
//! check instead of this build's).

mod chaos;
mod checks;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{Run, Running};
use chaos::Hosts;

/// The seed of the suite's cases.
const SEED: u64 = 0x5EED_F00D;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

// ------------------------------------------------------------------ cases

/// One random run: its list and flags.
#[derive(Debug, Clone)]
struct Case {
    urls: Vec<String>,
    flags: Vec<String>,
    json: bool,
    dedup: bool,
    sha256: bool,
    output: bool,
    update: bool,
    accept: Option<&'static str>,
    /// Signals to send: (signal, after the servers have seen N requests).
    signals: Vec<(&'static str, usize)>,
}

fn make_case(seed: u64, hosts: &Hosts, full: bool) -> Case {
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = rng.usize(1..=if full { 16 } else { 8 });
    let mut urls: Vec<String> = Vec::new();
    for _ in 0..n {
        let url = match rng.u32(0..20) {
            0 => "not a url".to_owned(),
            1 if !urls.is_empty() => urls[rng.usize(0..urls.len())].clone(),
            _ => hosts.servers[rng.usize(0..2)].url(&format!("/c/{}", rng.u32(0..30))),
        };
        urls.push(url);
    }
    let accept = [
        Some("200-299"),
        Some("100-599"),
        Some("200,404"),
        Some("200-299,304"),
    ]
    .get(rng.usize(0..6))
    .copied()
    .flatten();
    let output = rng.bool();
    let mut case = Case {
        urls,
        flags: Vec::new(),
        json: rng.u32(0..10) < 7,
        dedup: rng.u32(0..5) == 0,
        sha256: rng.bool(),
        output,
        update: output && rng.bool(),
        accept,
        signals: Vec::new(),
    };
    case.flags = flags(&case, &mut rng, full);
    let signal_all = std::env::var_os("FETCHPOOL_INVARIANT_SIGNALS").is_some();
    if rng.u32(0..4) == 0 || signal_all {
        let name = |rng: &mut fastrand::Rng| if rng.bool() { "INT" } else { "TERM" };
        let at = rng.usize(1..=n);
        case.signals.push((name(&mut rng), at));
        if rng.bool() {
            case.signals.push((name(&mut rng), at + rng.usize(0..3)));
        }
    }
    case
}

/// The flags of `case`, with the random ones that need no checking.
fn flags(case: &Case, rng: &mut fastrand::Rng, full: bool) -> Vec<String> {
    let retries = rng.u32(0..=if full { 2 } else { 1 }).to_string();
    let workers = rng.usize(1..=6).to_string();
    let timeout = if full { "1" } else { "2" };
    let mut flags: Vec<String> = [
        "-j",
        &workers,
        "--retries",
        &retries,
        "-m",
        timeout,
        "--connect-timeout",
        "2",
        "--max-retry-wait",
        "1",
        "--max-redirects",
        "3",
    ]
    .map(String::from)
    .into();
    if let Some(a) = case.accept {
        flags.extend(["--accept".into(), a.into()]);
    }
    for (on, flag) in [
        (case.sha256, "--sha256"),
        (case.dedup, "--dedup"),
        (case.json, "--json"),
        (rng.u32(0..3) == 0, "--ordered"),
        (rng.u32(0..10) == 0, "--fail-fast"),
        (rng.u32(0..6) == 0, "--max-size=1500"),
        (rng.u32(0..6) == 0, "--per-host=1"),
        (case.output && rng.bool(), "--continue"),
    ] {
        if on {
            flags.push(flag.into());
        }
    }
    flags
}

fn command(args: &[String]) -> Command {
    let mut cmd = match std::env::var_os("FETCHPOOL_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_fetchpool")),
    };
    cmd.env_clear()
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The files of one run.
struct Paths {
    list: PathBuf,
    failed: PathBuf,
    summary: PathBuf,
    out: PathBuf,
}

/// Runs `case` once, sending its signals when the servers have seen enough.
fn run_case(case: &Case, hosts: &Hosts, paths: &Paths) -> (Run, bool) {
    let mut args = case.flags.clone();
    args.extend([
        "-i".into(),
        paths.list.display().to_string(),
        "--write-failed".into(),
        paths.failed.display().to_string(),
        "--summary-json".into(),
        paths.summary.display().to_string(),
    ]);
    if case.output {
        args.extend(["-o".into(), paths.out.display().to_string()]);
    }
    if case.update {
        args.push("--update".into());
    }
    let before = hosts.requests();
    let mut running = Running::spawn(command(&args), None);
    // One thread both watches the child and signals it: a signal is only
    // ever sent to a child not yet reaped, so never to a recycled pid.
    let start = Instant::now();
    let mut signalled = false;
    for &(signal, at) in &case.signals {
        loop {
            let exited = running.child.try_wait().ok().flatten().is_some();
            if exited || start.elapsed() > crate::RUN_BOUND {
                return (running.finish(), signalled);
            }
            if hosts.requests() >= before + at {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        running.signal(signal);
        signalled = true;
    }
    (running.finish(), signalled)
}

// ------------------------------------------------------------------ driver

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs one case (twice with `--update`, the second run conditional on
/// the first); the violations, with what replays them.
fn one_case(seed: u64, full: bool) -> Vec<String> {
    let hosts = Hosts::start(seed, full);
    let case = make_case(seed, &hosts, full);
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        list: dir.path().join("list.txt"),
        failed: dir.path().join("failed.txt"),
        summary: dir.path().join("summary.json"),
        out: dir.path().join("out"),
    };
    std::fs::write(&paths.list, crate::lines(&case.urls)).unwrap();
    let rounds = if case.update { 2 } else { 1 };
    let mut found = Vec::new();
    for round in 0..rounds {
        let (run, signalled) = run_case(&case, &hosts, &paths);
        for v in checks::check(&case, &run, signalled, &hosts, &paths).0 {
            found.push(format!(
                "seed {seed:#x} round {round}: {v}\n  case: {case:?}\n  stdout:\n{}\n  stderr:\n{}",
                run.stdout_text(),
                run.stderr
            ));
        }
        let _ = std::fs::remove_file(&paths.summary);
    }
    found
}

#[test]
fn invariants_hold_on_random_runs() {
    let full = std::env::var_os("FETCHPOOL_INVARIANT_FULL").is_some();
    let runs = env_u64("FETCHPOOL_INVARIANT_RUNS").unwrap_or(8);
    let secs = env_u64("FETCHPOOL_INVARIANT_SECS");
    let first = env_u64("FETCHPOOL_INVARIANT_SEED").unwrap_or(SEED);
    let log = std::env::var_os("FETCHPOOL_INVARIANT_LOG").map(PathBuf::from);
    let start = Instant::now();
    let mut seed = first;
    let mut cases = 0u64;
    let mut violations = 0u64;
    loop {
        let more = match secs {
            Some(s) => start.elapsed() < Duration::from_secs(s),
            None => cases < runs,
        };
        if !more {
            break;
        }
        // A panic (a run past its bound, a hang) is a finding too.
        let found = std::panic::catch_unwind(|| one_case(seed, full)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            vec![format!("seed {seed:#x}: the checker panicked: {msg}")]
        });
        cases += 1;
        if let Some(dir) = log.as_ref().filter(|_| cases.is_multiple_of(100)) {
            record_totals(dir, first, cases, violations, start.elapsed());
        }
        if !found.is_empty() {
            violations += 1;
            match &log {
                Some(dir) => record(dir, seed, &found),
                None => panic!("{}", found.join("\n")),
            }
        }
        seed = seed.wrapping_add(1);
    }
    if let Some(dir) = &log {
        record_totals(dir, first, cases, violations, start.elapsed());
    }
}

fn record(dir: &Path, seed: u64, found: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("seed-{seed:#x}.txt")), found.join("\n\n")).unwrap();
}

fn record_totals(dir: &Path, first: u64, cases: u64, violations: u64, took: Duration) {
    std::fs::create_dir_all(dir).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("totals.txt"))
        .unwrap();
    let _ = writeln!(
        f,
        "seeds {first:#x}..{:#x}: {cases} cases, {violations} with violations, {:.0} s",
        first + cases,
        took.as_secs_f64()
    );
}
