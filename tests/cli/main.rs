//! Hermetic integration tests for the `fetchpool` binary.
//!
//! Every request goes to a loopback [`server::TestServer`] bound by the test
//! itself. Every run of the binary has proxies, `CI` and `TERM` scrubbed
//! from its environment (so the suite passes with and without `CI=true`),
//! `NO_COLOR=1`, a null stdin unless the test feeds one, and a [`RUN_BOUND`]
//! deadline: only a real hang fails a test on time.

mod accounting;
mod bodies;
mod closed_stdout;
mod compressed;
mod connections;
mod control;
mod credentials;
mod errors;
mod exit_codes;
mod framing;
mod input;
mod invariants;
mod limits;
mod names;
mod numeric_flags;
mod output;
mod politeness;
mod progress;
mod proxy;
mod redirects;
mod requests;
mod rerun;
mod resume;
mod saving;
mod server;
mod signals;
mod soak;
mod socks;
mod summary;
mod support;
mod tls;
mod update;
mod update_hashes;
mod url_args;
mod usage;
mod verbose;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any single run of the binary may take.
pub const RUN_BOUND: Duration = Duration::from_secs(60);

/// The fields every `--json` line carries (`docs/contract.md`, Output).
pub const JSON_FIELDS: [&str; 9] = [
    "seq",
    "url",
    "ok",
    "status",
    "bytes",
    "elapsed_ms",
    "attempts",
    "final_url",
    "error",
];

const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Variables that choose how progress and colour look: a test that wants
/// one sets it on its own command.
const STYLE_VARS: [&str; 2] = ["CI", "TERM"];

/// The binary with a hermetic environment; stdin null, stdout and stderr piped.
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetchpool"));
    // What the environment may select: the proxies, and the progress
    // style (`CI=true`, as set by CI services, selects plain progress).
    for var in PROXY_VARS.iter().chain(&STYLE_VARS) {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the binary with `args` and a null stdin.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    Running::spawn(command(args), None).finish()
}

/// Runs the binary with `args`, feeding `input` on stdin.
pub fn run_stdin<S: AsRef<std::ffi::OsStr>>(args: &[S], input: impl Into<Vec<u8>>) -> Run {
    Running::spawn(command(args), Some(input.into())).finish()
}

/// Newline-joined lines, ready for stdin or an input file.
pub fn lines<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|s| format!("{}\n", s.as_ref())).collect()
}

/// A child process whose stdout and stderr are drained on threads; stderr
/// can be read while it runs.
pub struct Running {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: JoinHandle<()>,
    stdin: Option<JoinHandle<()>>,
}

impl Running {
    /// Spawns `cmd`; with `input`, stdin is a pipe written on its own thread.
    pub fn spawn(mut cmd: Command, input: Option<Vec<u8>>) -> Running {
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn fetchpool");
        let stdin = input.map(|bytes| {
            let mut pipe = child.stdin.take().unwrap();
            // A usage error may close stdin unread: that is not our failure.
            thread::spawn(move || drop(pipe.write_all(&bytes)))
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = {
            let mut pipe = child.stderr.take().unwrap();
            let sink = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        };
        Running {
            stdout: drain(child.stdout.take().unwrap()),
            stderr,
            stderr_reader,
            stdin,
            child,
        }
    }

    /// The child's stdin, when the command was given `Stdio::piped()` and
    /// no input: the test writes to it and decides when it closes.
    pub fn take_stdin(&mut self) -> std::process::ChildStdin {
        self.child.stdin.take().expect("stdin piped")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name for kill(1), such as `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// What the process wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Polls stderr until `found` holds for it; false if `bound` passed first.
    pub fn wait_stderr(&self, bound: Duration, found: impl Fn(&str) -> bool) -> bool {
        let start = Instant::now();
        while !found(&self.stderr_text()) {
            if start.elapsed() > bound {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Waits (within [`RUN_BOUND`]) and collects the output.
    pub fn finish(mut self) -> Run {
        let status = wait_bounded(&mut self.child);
        if let Some(stdin) = self.stdin {
            stdin.join().unwrap();
        }
        self.stderr_reader.join().unwrap();
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        Run {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr,
        }
    }
}

pub fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// Waits for `child` at most [`RUN_BOUND`]; kills it and panics past that.
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > RUN_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fetchpool did not finish within {RUN_BOUND:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// What one finished run produced.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// The exit code (panics if the process died of a signal).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {:?}\n{}", self.status, self.stderr))
    }

    /// Asserts the exit code, showing stderr when it differs.
    pub fn assert_code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code(),
            expected,
            "exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout_text()
        );
        self
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The stdout lines (each must be valid UTF-8 and newline-terminated).
    pub fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "stdout ends mid-line: {text:?}"
        );
        text.lines().map(str::to_owned).collect()
    }

    /// Every stdout line parsed as JSON, with all contract fields present.
    pub fn results(&self) -> Vec<Value> {
        self.lines().iter().map(|line| parse_result(line)).collect()
    }

    /// The results keyed by `seq`; panics on a repeated `seq`.
    pub fn by_seq(&self) -> BTreeMap<u64, Value> {
        let mut map = BTreeMap::new();
        for r in self.results() {
            let seq = r["seq"].as_u64().expect("seq is an integer");
            assert!(map.insert(seq, r).is_none(), "seq {seq} printed twice");
        }
        map
    }

    /// The only result of a one-URL run.
    pub fn single(&self) -> Value {
        let mut all = self.results();
        assert_eq!(
            all.len(),
            1,
            "expected one result; exit {:?}, stdout:\n{}\nstderr:\n{}",
            self.status.code(),
            self.stdout_text(),
            self.stderr
        );
        all.remove(0)
    }

    /// Panics unless stdout and stderr are both free of `needle`.
    pub fn assert_absent(&self, needle: &str) {
        let out = self.stdout_text();
        assert!(!out.contains(needle), "{needle:?} in stdout:\n{out}");
        assert!(
            !self.stderr.contains(needle),
            "{needle:?} in stderr:\n{}",
            self.stderr
        );
    }
}

/// Parses one NDJSON result and checks that every contract field is present.
pub fn parse_result(line: &str) -> Value {
    let value: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
    for field in JSON_FIELDS {
        assert!(
            value.get(field).is_some(),
            "field {field:?} missing: {line}"
        );
    }
    value
}

/// The error kind of a result, if it has an error.
pub fn kind(result: &Value) -> Option<&str> {
    result["error"]["kind"].as_str()
}

/// How many results have each error kind (`"none"` for no error).
pub fn count_kinds<'a>(results: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in results {
        *counts
            .entry(kind(r).unwrap_or("none").to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Asserts the seqs are exactly `0..n`.
pub fn assert_all_seqs(by_seq: &BTreeMap<u64, Value>, n: u64) {
    let seqs: BTreeSet<u64> = by_seq.keys().copied().collect();
    assert_eq!(seqs, (0..n).collect::<BTreeSet<_>>(), "seqs are not 0..{n}");
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The suite passes with and without `CI=true` in its own environment only
/// if no run of the binary inherits it.
#[test]
fn every_command_runs_without_the_variables_that_pick_a_style() {
    let cmd = command(["x"]);
    let envs: BTreeMap<_, _> = cmd.get_envs().collect();
    for var in STYLE_VARS.iter().chain(&PROXY_VARS) {
        assert_eq!(envs.get(std::ffi::OsStr::new(var)), Some(&None), "{var}");
    }
}
