//! The command line: [`Cli`] mirrors the flags (its doc comments are the
//! help text), [`Config`] holds the checked values the run uses.
//!
//! House rules, as in xh: short flags are explicit, every value has an
//! uppercase `value_name`, and every validation error names its flag.

mod config;
pub mod help;
mod request;
mod usage;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, ValueEnum};

use crate::report::progress::ProgressStyle;
use crate::store::names::Layout;
pub use config::{Config, default_workers, parse_size};
pub use usage::one_line as usage_error;

/// The command line. Its about text and closing sections come from
/// [`help`], which the man page renders too.
#[derive(Debug, Parser)]
#[command(name = "fetchpool", version, max_term_width = 100)]
#[command(about = help::TAGLINE, long_about = format!("{}\n\n{}", help::TAGLINE, help::DESCRIPTION))]
#[command(after_help = help::after_help(), after_long_help = help::after_long_help())]
pub struct Cli {
    /// URLs to fetch (read before any --input).
    #[arg(value_name = "URL")]
    pub urls: Vec<std::ffi::OsString>,

    /// Read URLs from FILE, one per line ('-' for stdin; repeatable).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Skip entries whose URL was already seen.
    #[arg(long)]
    pub dedup: bool,

    /// Keep only entries with seq % N == K - 1 (split one list over N machines).
    #[arg(long, value_name = "K/N", allow_hyphen_values = true)]
    pub shard: Option<String>,

    /// Number of worker threads, or 'auto': find each host's concurrency
    /// while the run goes [default: min(32, CPUs + 4)].
    #[arg(short = 'j', long, value_name = "N|auto", allow_negative_numbers = true, value_parser = workers)]
    pub workers: Option<Workers>,

    /// Capacity of the job queue [default: 2 x workers].
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole)]
    pub queue: Option<i64>,

    /// Start at most R requests per second overall.
    #[arg(long, value_name = "R", allow_negative_numbers = true, value_parser = number)]
    pub rate: Option<f64>,

    /// At most N requests in flight to one host (host:port).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole)]
    pub per_host: Option<i64>,

    /// After the first Ctrl-C or SIGTERM, seconds that requests in flight may still finish
    /// (or --timeout, if shorter; 0 stops waiting at once).
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true, value_parser = number)]
    pub grace: f64,

    /// HTTP method, any token (GET, HEAD, PROPFIND, ...) [default: GET, or POST with a body].
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub method: Option<String>,

    /// Request body, as curl's -d: DATA, or @FILE with its CR and LF dropped ('@-': stdin);
    /// repeated ones are joined with '&'. POST unless -X; form Content-Type unless -H sets one.
    #[arg(short = 'd', long, value_name = "DATA")]
    pub data: Vec<String>,

    /// Request body sent byte for byte: DATA, or @FILE ('@-': stdin).
    #[arg(long, value_name = "DATA")]
    pub data_binary: Vec<String>,

    /// JSON request body (DATA or @FILE); sets Content-Type and Accept to application/json.
    /// Not --json, which is the output format.
    #[arg(long, value_name = "DATA")]
    pub json_body: Option<String>,

    /// Basic auth, USER:PASSWORD; USER alone asks for the password on the terminal.
    #[arg(short = 'u', long, value_name = "USER:PASSWORD")]
    pub user: Option<String>,

    /// Ask for a compressed body (gzip, deflate, br, zstd) and decode it; bytes, sha256,
    /// saved files and --max-size are of the decoded body.
    #[arg(long)]
    pub compressed: bool,

    /// Trace every request on stderr, one line per event, prefixed with its seq.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// User-Agent header [default: fetchpool/VERSION].
    #[arg(short = 'A', long, value_name = "STRING")]
    pub user_agent: Option<String>,

    /// Deadline for one whole attempt, in seconds (fractions allowed).
    #[arg(short = 'm', long, value_name = "SECS", default_value = "30", allow_negative_numbers = true, value_parser = number)]
    pub timeout: f64,

    /// Deadline to establish a connection, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true, value_parser = number)]
    pub connect_timeout: f64,

    /// Retries after a failed attempt (connect errors, timeouts, 408, 429, 5xx).
    #[arg(long, value_name = "N", default_value = "2", allow_negative_numbers = true, value_parser = whole)]
    pub retries: i64,

    /// Longest wait a Retry-After header may impose, in seconds.
    #[arg(long, value_name = "SECS", default_value = "30", allow_negative_numbers = true, value_parser = number)]
    pub max_retry_wait: f64,

    /// Redirects to follow (0 disables).
    #[arg(long, value_name = "N", default_value = "10", allow_negative_numbers = true, value_parser = whole)]
    pub max_redirects: i64,

    /// Send every request through this proxy, e.g. http://user:password@host:3128
    /// (http://, https://, socks5:// or socks5h://; the port defaults to 1080); overrides
    /// http_proxy, https_proxy and all_proxy; '' for no proxy at all.
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

    /// Stop reading a body past this size (suffixes K, M, G); error too_large.
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub max_size: Option<String>,

    /// Report the SHA-256 of each body (text lines show its first 12 hex digits).
    #[arg(long)]
    pub sha256: bool,

    /// Save each body under DIR, named after its URL (HEAD, 204 and 304 save nothing).
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// With -o: how saved files are named: hashed (safe, collision-free
    /// names in DIR), tree (DIR/host/path, as wget -x) or flat (the
    /// last path segment, as wget -nd).
    #[arg(
        long,
        value_name = "LAYOUT",
        value_enum,
        default_value = "hashed",
        requires = "output_dir"
    )]
    pub names: NamesArg,

    /// With -o: resume downloads an earlier run cut short, from the part
    /// files it kept in DIR (Range + If-Range).
    #[arg(short = 'c', long = "continue", requires = "output_dir")]
    pub resume: bool,

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
    /// {elapsed_ms} {waited_ms} {attempts} {final_url} {error} {sha256} {saved_to}
    /// {connect_ms} {tls_ms} {ttfb_ms} {reused}; \t and \n escapes, {{ and }} for braces.
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

    /// Progress display on stderr [default: bar on a terminal (plain under TERM=dumb); plain when
    /// CI is set; else off].
    #[arg(long, value_name = "STYLE")]
    pub progress: Option<ProgressArg>,

    /// Seconds between two --progress plain status lines (fractions allowed); a URL in
    /// flight longer than this (or 5 s, if shorter) is named as stuck.
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true, value_parser = number)]
    pub progress_interval: f64,

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

/// `--names` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NamesArg {
    /// A slug of the URL and a hash, all in DIR.
    Hashed,
    /// DIR/host/path/to/file (host_port with a port).
    Tree,
    /// DIR/last-segment.
    Flat,
}

impl From<NamesArg> for Layout {
    fn from(n: NamesArg) -> Self {
        match n {
            NamesArg::Hashed => Layout::Hashed,
            NamesArg::Tree => Layout::Tree,
            NamesArg::Flat => Layout::Flat,
        }
    }
}

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// An updating bar (needs a terminal).
    Bar,
    /// A status line every 10 seconds (--progress-interval), for CI logs.
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
    /// Parses the process arguments. The error is clap's: `--help` and
    /// `--version` (exit code 0, printed with `print`), or a usage error
    /// to render with [`usage_error`].
    pub fn from_args() -> Result<Self, clap::Error> {
        Cli::try_parse()
    }

    /// The completion script for `shell`.
    pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "fetchpool", &mut out);
        out
    }

    /// The man page (roff): clap_mangen's title, name, description and
    /// options, a synopsis that shows each flag's value, and the sections
    /// of [`help`] that `--help` shows too.
    pub fn man_page() -> Vec<u8> {
        let mut cmd = Cli::command();
        cmd.build();
        let man = clap_mangen::Man::new(cmd.clone());
        let mut out = Vec::new();
        // Rendering into a Vec cannot fail.
        let _ = man.render_title(&mut out);
        let _ = man.render_name_section(&mut out);
        out.extend_from_slice(synopsis(&cmd).as_bytes());
        let _ = man.render_description_section(&mut out);
        let _ = man.render_options_section(&mut out);
        out.extend_from_slice(help::man_sections().as_bytes());
        let _ = man.render_version_section(&mut out);
        // Each part repeats roff's preamble (the \*(Aq string): keep one.
        const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
        let page = String::from_utf8_lossy(&out).into_owned();
        match page.find(PREAMBLE) {
            Some(at) => {
                let (head, tail) = page.split_at(at + PREAMBLE.len());
                format!("{head}{}", tail.replace(PREAMBLE, "")).into_bytes()
            }
            None => out,
        }
    }
}

/// `fetchpool [-i|--input FILE]... [--dedup] ... [URL]...` in roff.
fn synopsis(cmd: &clap::Command) -> String {
    use help::roff_escape as esc;
    let mut s = String::from(".SH SYNOPSIS\n\\fBfetchpool\\fR");
    let (positionals, options): (Vec<_>, Vec<_>) = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .partition(|a| a.is_positional());
    for arg in options.into_iter().chain(positionals) {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .filter(|_| arg.get_num_args().is_some_and(|n| n.takes_values()))
            .map(|v| format!(" \\fI{}\\fR", esc(v)));
        let repeats = matches!(arg.get_action(), clap::ArgAction::Append);
        let item = if arg.is_positional() {
            format!("[{}]", value.unwrap_or_default().trim_start())
        } else {
            let names: Vec<String> = arg
                .get_short()
                .map(|c| format!("\\fB\\-{c}\\fR"))
                .into_iter()
                .chain(arg.get_long().map(|l| format!("\\fB\\-\\-{}\\fR", esc(l))))
                .collect();
            format!("[{}{}]", names.join("|"), value.unwrap_or_default())
        };
        s.push(' ');
        s.push_str(&item);
        if repeats {
            s.push_str("...");
        }
    }
    s.push('\n');
    s
}

/// `-j`: a number of workers, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Exactly this many (range-checked with the other flags, so a negative
    /// number gets the flag's own message).
    Fixed(i64),
    /// Adapt to each host, up to the machine's ceiling.
    Auto,
}

fn workers(s: &str) -> Result<Workers, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(Workers::Auto);
    }
    s.trim()
        .parse()
        .map(Workers::Fixed)
        .map_err(|_| "expected a whole number or 'auto'".to_owned())
}

/// A whole number, with a plain message when it is not one. Negative ones
/// too: their flag's own range check says what is allowed.
fn whole(s: &str) -> Result<i64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number".to_owned())
}

/// A number such as 30 or 0.5; its range is checked with the other flags.
fn number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a number, such as 30 or 0.5".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
