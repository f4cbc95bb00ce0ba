//! The end-of-run summary: counts, bytes, rate and latency percentiles, in
//! constant memory whatever the number of URLs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::control::host::{Concurrency, GivenUp, PushedBack};
use crate::input::InputStats;
use crate::report::stdout::{human_ms, human_rate};
use crate::result::ErrorKind;
use indicatif::HumanBytes;

/// Running totals of a run.
pub struct Summary {
    ok: u64,
    failed: u64,
    not_started: u64,
    unchanged: u64,
    partial_kept: u64,
    bytes: u64,
    /// Every response by status (for the status classes).
    by_status: BTreeMap<u16, u64>,
    /// Failed entries without an error, by status.
    failed_by_status: BTreeMap<u16, u64>,
    /// Failed entries with an error, by kind.
    by_kind: BTreeMap<ErrorKind, u64>,
    /// Latency of fetched entries in microseconds (3 significant digits).
    latency: Histogram<u64>,
}

/// The summary as written by `--summary-json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Entries accounted for (ok + failed + not started).
    pub entries: u64,
    /// Entries that succeeded.
    pub ok: u64,
    /// Entries that were tried and failed.
    pub failed: u64,
    /// Entries never started (interrupted, `--fail-fast`).
    pub not_started: u64,
    /// Entries skipped by `--dedup` (not counted in `entries`).
    pub duplicates: u64,
    /// Entries left to other shards by `--shard` (not counted in `entries`).
    pub other_shards: u64,
    /// Entries requested: all but the `invalid_url` ones.
    pub fetched: u64,
    /// Ok entries whose saved file was unchanged (`--update`: 304).
    pub unchanged: u64,
    /// Entries whose body was cut short and kept in a part file under
    /// `-o`, for `--continue`.
    pub partial_kept: u64,
    /// Failed entries without an error (a status outside `--accept`), by
    /// status (as strings, for JSON object keys). With `failed_by_kind` it
    /// counts each failed entry once: the two add up to `failed`.
    pub failed_by_status: BTreeMap<String, u64>,
    /// Failed entries with an error, by error kind.
    pub failed_by_kind: BTreeMap<&'static str, u64>,
    /// Responses by status class (`2xx`, `4xx`, ...).
    pub status_classes: BTreeMap<String, u64>,
    /// Body bytes read.
    pub bytes: u64,
    /// Wall time of the run, in seconds.
    pub wall_s: f64,
    /// Entries requested (`fetched`) per second of wall time.
    pub requests_per_s: f64,
    /// Latency percentiles in milliseconds (null when nothing was fetched).
    pub latency_ms: Option<Latency>,
    /// Hosts that pushed back (429, 503), with the rate they were held to
    /// and how long they were paused.
    pub pushed_back: Vec<PushedBack>,
    /// Hosts given up: they only refused for `--max-retry-wait`.
    pub given_up: Vec<GivenUp>,
    /// `-j auto`: per host, the concurrency it settled at and the most in
    /// flight at once.
    pub concurrency: Vec<Concurrency>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            ok: 0,
            failed: 0,
            not_started: 0,
            unchanged: 0,
            partial_kept: 0,
            bytes: 0,
            by_status: BTreeMap::new(),
            failed_by_status: BTreeMap::new(),
            by_kind: BTreeMap::new(),
            // 1 µs to 1 hour; longer latencies are counted as 1 hour.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("constant bounds are valid")),
        }
    }
}

impl Summary {
    /// Counts one finished entry.
    pub fn add(
        &mut self,
        ok: bool,
        status: Option<u16>,
        kind: Option<ErrorKind>,
        bytes: u64,
        elapsed: Duration,
    ) {
        self.bytes += bytes;
        if let Some(s) = status {
            *self.by_status.entry(s).or_default() += 1;
        }
        if kind != Some(ErrorKind::InvalidUrl) {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            self.latency.saturating_record(micros);
        }
        if ok {
            self.ok += 1;
        } else {
            // Each failed entry once: by its error when it has one, else
            // by the status --accept refused.
            self.failed += 1;
            match (kind, status) {
                (Some(kind), _) => *self.by_kind.entry(kind).or_default() += 1,
                (None, Some(s)) => *self.failed_by_status.entry(s).or_default() += 1,
                (None, None) => *self.by_kind.entry(ErrorKind::Internal).or_default() += 1,
            }
        }
    }

    /// Counts one ok entry whose saved file was unchanged (`--update`).
    pub fn add_unchanged(&mut self) {
        self.unchanged += 1;
    }

    /// Counts one entry whose cut body was kept in a part file.
    pub fn add_partial_kept(&mut self) {
        self.partial_kept += 1;
    }

    /// Counts one entry that was never started.
    pub fn add_not_started(&mut self) {
        self.not_started += 1;
    }

    /// Whether any entry failed or was never started.
    pub fn any_failed(&self) -> bool {
        self.failed > 0 || self.not_started > 0
    }

    /// Entries failed so far (for progress).
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Entries accounted for.
    pub fn entries(&self) -> u64 {
        self.ok + self.failed + self.not_started
    }

    /// The totals as a report, `wall` being the run's wall time.
    pub fn report(&self, wall: Duration) -> Report {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let mut classes = BTreeMap::new();
        for (&status, &n) in &self.by_status {
            *classes.entry(format!("{}xx", status / 100)).or_default() += n;
        }
        let failed_by_status = self
            .failed_by_status
            .iter()
            .map(|(s, &n)| (s.to_string(), n))
            .collect();
        let wall_s = wall.as_secs_f64();
        let fetched = self.latency.len();
        Report {
            entries: self.entries(),
            ok: self.ok,
            failed: self.failed,
            not_started: self.not_started,
            duplicates: 0,
            other_shards: 0,
            fetched,
            unchanged: self.unchanged,
            partial_kept: self.partial_kept,
            failed_by_status,
            failed_by_kind: self.by_kind.iter().map(|(k, &n)| (k.as_str(), n)).collect(),
            status_classes: classes,
            bytes: self.bytes,
            wall_s,
            requests_per_s: if wall_s > 0.0 {
                fetched as f64 / wall_s
            } else {
                0.0
            },
            latency_ms: (!self.latency.is_empty()).then(|| Latency {
                p50: ms(0.5),
                p90: ms(0.9),
                p99: ms(0.99),
                max: self.latency.max() as f64 / 1000.0,
            }),
            pushed_back: Vec::new(),
            given_up: Vec::new(),
            concurrency: Vec::new(),
        }
    }
}

impl Report {
    /// Adds what the input filters skipped: `--dedup` repeats and, with
    /// `--shard`, the entries of other shards.
    pub fn count_skipped(&mut self, input: &InputStats) {
        use std::sync::atomic::Ordering::SeqCst;
        let read = input.entries.load(SeqCst);
        let kept = input.kept.load(SeqCst);
        self.duplicates = input.duplicates.load(SeqCst);
        self.other_shards = read.saturating_sub(kept).saturating_sub(self.duplicates);
    }

    /// The summary for people, as printed on stderr.
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.write_totals(&mut s);
        self.write_outcomes(&mut s);
        self.write_hosts_and_latency(&mut s);
        s
    }

    /// The first line: entries, ok, failed, not started, skipped.
    fn write_totals(&self, s: &mut String) {
        let _ = write!(
            s,
            "summary: {}, {} ok, {} failed",
            plural(self.entries, "entry", "entries"),
            self.ok,
            self.failed
        );
        if self.not_started > 0 {
            let _ = write!(s, ", {} not started", self.not_started);
        }
        let mut skipped = Vec::new();
        if self.duplicates > 0 {
            skipped.push(format!(
                "{} skipped",
                plural(self.duplicates, "duplicate", "duplicates")
            ));
        }
        if self.other_shards > 0 {
            skipped.push(format!("{} in other shards", self.other_shards));
        }
        if !skipped.is_empty() {
            let _ = write!(s, " ({})", skipped.join(", "));
        }
        s.push('\n');
    }

    /// Statuses, unchanged files, failures, bytes, time and rate.
    fn write_outcomes(&self, s: &mut String) {
        if !self.status_classes.is_empty() {
            let classes: Vec<String> = self
                .status_classes
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            let _ = writeln!(s, "  statuses: {}", classes.join(", "));
        }
        if self.unchanged > 0 {
            let _ = writeln!(
                s,
                "  unchanged: {} (304, --update: the saved file kept)",
                self.unchanged
            );
        }
        if self.partial_kept > 0 {
            let _ = writeln!(
                s,
                "  partial: {} cut downloads kept in part files (--continue resumes them)",
                self.partial_kept
            );
        }
        if self.failed > 0 {
            let failures: Vec<String> = self
                .failed_by_status
                .iter()
                .map(|(st, n)| format!("{st} x{n}"))
                .chain(self.failed_by_kind.iter().map(|(k, n)| format!("{k} x{n}")))
                .collect();
            let _ = writeln!(s, "  failed: {}", failures.join(", "));
        }
        let _ = write!(
            s,
            "  {} in {}",
            HumanBytes(self.bytes),
            human_ms(self.wall_s * 1000.0)
        );
        // A rate only when something was requested: invalid entries are
        // not requests.
        if self.fetched > 0 {
            let _ = write!(s, ", {}", human_rate(self.requests_per_s));
        }
        s.push('\n');
    }

    /// The per-host lines (given up, pushed back, concurrency), and the
    /// latency percentiles.
    fn write_hosts_and_latency(&self, s: &mut String) {
        self.hosts_text(s);
        if let Some(l) = &self.latency_ms {
            let _ = writeln!(
                s,
                "  latency: p50 {}, p90 {}, p99 {}, max {}",
                human_ms(l.p50),
                human_ms(l.p90),
                human_ms(l.p99),
                human_ms(l.max)
            );
        }
    }
}

impl Report {
    /// The per-host lines: hosts given up, hosts that pushed back, and
    /// under `-j auto` the concurrency of the busiest hosts.
    fn hosts_text(&self, s: &mut String) {
        use crate::text::escape::for_field;
        for host in self.given_up.iter().take(SHOWN_HOSTS) {
            let _ = writeln!(
                s,
                "  given up: {} (only {} for {}; its remaining entries ended with it)",
                for_field(&host.host),
                host.status,
                human_ms(host.refused_for_s * 1000.0)
            );
        }
        more(s, "given up", self.given_up.len());
        for host in self.pushed_back.iter().take(SHOWN_HOSTS) {
            let held = match host.rate_per_s {
                Some(rate) => format!("held at {rate} req/s"),
                None => "unlimited again".to_owned(),
            };
            let _ = writeln!(
                s,
                "  pushed back: {} ({} x 429/503), paused {}, {held}",
                for_field(&host.host),
                host.pushbacks,
                human_ms(host.paused_s * 1000.0)
            );
        }
        more(s, "pushed back", self.pushed_back.len());
        for host in self.concurrency.iter().take(SHOWN_HOSTS) {
            let _ = writeln!(
                s,
                "  concurrency: {} settled at {}, at most {} in flight",
                for_field(&host.host),
                host.settled,
                host.max_in_flight
            );
        }
        more(s, "concurrency", self.concurrency.len());
    }
}

/// The line that says how many hosts of a list were not shown.
fn more(s: &mut String, what: &str, len: usize) {
    if len > SHOWN_HOSTS {
        let _ = writeln!(
            s,
            "  {what}: {} more hosts (see --summary-json)",
            len - SHOWN_HOSTS
        );
    }
}

/// `1 entry`, `2 entries`, `0 entries`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Hosts that pushed back named in the text summary; `--summary-json` has all.
const SHOWN_HOSTS: usize = 10;

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
