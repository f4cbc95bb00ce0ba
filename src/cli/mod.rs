//! The command line: [`Cli`] mirrors the flags (its doc comments are the
//! help text), [`Config`] holds the checked values the run uses.
//!
//! House rules, as in xh: short flags are explicit, every value has an
//! uppercase `value_name`, and every validation error names its flag.

mod config;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, ValueEnum};

use crate::progress::ProgressStyle;
pub use config::{Config, default_workers, parse_size};

/// Fetch many URLs at once on a fixed pool of threads; one result per URL.
///
/// URLs come from the arguments, then from each `-i FILE` (`-` is stdin),
/// or from stdin when it is piped. Results stream to stdout in completion
/// order; a progress bar and a summary go to stderr.
#[derive(Debug, Parser)]
#[command(name = "fetchpool", version, about, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 all ok, 1 some failed, 2 usage or input error, \
                        130 interrupted (SIGINT), 143 terminated (SIGTERM)."
)]
pub struct Cli {
    /// URLs to fetch (read before any --input).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// Read URLs from FILE, one per line (`-` for stdin; repeatable).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Skip entries whose URL was already seen.
    #[arg(long)]
    pub dedup: bool,

    /// Keep only entries with seq % N == K - 1 (split one list over N machines).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Number of worker threads [default: min(32, CPUs + 4)].
    #[arg(short = 'j', long, value_name = "N")]
    pub workers: Option<usize>,

    /// Capacity of the job queue [default: 2 x workers].
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,

    /// Start at most R requests per second overall.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// At most N requests in flight to one host (host:port).
    #[arg(long, value_name = "N")]
    pub per_host: Option<usize>,

    /// HTTP method (GET, HEAD, ...).
    #[arg(short = 'X', long, value_name = "METHOD", default_value = "GET")]
    pub method: String,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// User-Agent header [default: fetchpool/VERSION].
    #[arg(short = 'A', long, value_name = "STRING")]
    pub user_agent: Option<String>,

    /// Deadline for one whole attempt, in seconds (fractions allowed).
    #[arg(short = 'm', long, value_name = "SECS", default_value = "30")]
    pub timeout: f64,

    /// Deadline to establish a connection, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub connect_timeout: f64,

    /// Retries after a failed attempt (connect errors, timeouts, 408, 429, 5xx).
    #[arg(long, value_name = "N", default_value = "2")]
    pub retries: u32,

    /// Longest wait a Retry-After header may impose, in seconds.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub max_retry_wait: f64,

    /// Redirects to follow (0 disables).
    #[arg(long, value_name = "N", default_value = "10")]
    pub max_redirects: u32,

    /// Send every request through this proxy, e.g. http://user:password@host:3128
    /// (http:// or https://; the port defaults to 1080); overrides http_proxy, https_proxy
    /// and all_proxy; '' for no proxy at all.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Hosts reached without the proxy, comma-separated: names, domains (.example.com),
    /// IP addresses, CIDR ranges, or * for all; overrides no_proxy.
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,

    /// Also trust the PEM certificates in FILE.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Do not verify TLS certificates (never the default).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Stop reading a body past this size (suffixes K, M, G); error `too_large`.
    #[arg(long, value_name = "BYTES")]
    pub max_size: Option<String>,

    /// Report the SHA-256 of each body.
    #[arg(long)]
    pub sha256: bool,

    /// Save each body under DIR, named after its URL.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// With -o: download only what changed since the files in DIR were saved
    /// (If-None-Match / If-Modified-Since; a 304 keeps the file).
    #[arg(long, requires = "output_dir")]
    pub update: bool,

    /// Print results in input order (bounded reorder buffer).
    #[arg(long)]
    pub ordered: bool,

    /// One JSON object per result (NDJSON).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Print each result from a template: {seq} {url} {ok} {status} {bytes}
    /// {elapsed_ms} {attempts} {final_url} {error} {sha256} {saved_to}; \t and \n escapes.
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,

    /// Print only results that are not ok.
    #[arg(long)]
    pub failures_only: bool,

    /// Status codes that count as success, e.g. 200-299,304.
    #[arg(long, value_name = "LIST", default_value = "200-399")]
    pub accept: String,

    /// After the first failure, start nothing new.
    #[arg(long)]
    pub fail_fast: bool,

    /// Write the URLs that failed or never started to FILE, one per line.
    #[arg(long, value_name = "FILE")]
    pub write_failed: Option<PathBuf>,

    /// Write the summary as a JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Progress display on stderr [default: bar on a terminal, else off].
    #[arg(long, value_name = "STYLE")]
    pub progress: Option<ProgressArg>,

    /// No progress display (same as --progress off).
    #[arg(long)]
    pub no_progress: bool,

    /// No progress display and no summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print a shell completion script and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) and exit.
    #[arg(long, exclusive = true)]
    pub man: bool,
}

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// An updating bar (needs a terminal).
    Bar,
    /// A status line every 10 seconds, for CI logs.
    Plain,
    /// Nothing.
    Off,
}

impl From<ProgressArg> for ProgressStyle {
    fn from(p: ProgressArg) -> Self {
        match p {
            ProgressArg::Bar => ProgressStyle::Bar,
            ProgressArg::Plain => ProgressStyle::Plain,
            ProgressArg::Off => ProgressStyle::Off,
        }
    }
}

impl Cli {
    /// Parses the process arguments; a usage error exits with code 2.
    pub fn from_args() -> Self {
        Cli::parse()
    }

    /// Writes the completion script for `shell` to `out`.
    pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
        clap_complete::generate(shell, &mut Cli::command(), "fetchpool", out);
    }

    /// Writes the man page (roff) to `out`.
    pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
        clap_mangen::Man::new(Cli::command()).render(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
