//! [`Config`]: the checked values a run uses, built from the raw flags of
//! [`Cli`]. Every validation error names its flag.

use std::fs::File;
use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::{HeaderName, HeaderValue, Method};

use super::{Cli, Workers, request};
use crate::fetch::{FetchConfig, ProxyConfig, RequestConfig};
use crate::input::{Filter, InputConfig, Source};
use crate::pool::PoolConfig;
use crate::report::ReportConfig;
use crate::report::progress::{self, ProgressStyle};
use crate::report::stdout::{Fields, OutputFormat, Template};
use crate::result::accept::Accept;
use crate::store::StoreConfig;

/// The validated settings of a run: each part's own settings, in its own
/// type, built here from the flags.
#[derive(Debug)]
pub struct Config {
    /// What to read, and which entries to keep.
    pub input: InputConfig,
    /// Worker count, job queue, per-host limit, result order.
    pub pool: PoolConfig,
    /// Requests, what becomes of the bodies, success, `--rate`.
    pub fetch: FetchConfig,
    /// Result lines, the other output files, progress, the summary.
    pub report: ReportConfig,
    /// Stop starting requests after the first failure.
    pub fail_fast: bool,
    /// After the first signal, how long requests in flight may finish.
    pub grace: Duration,
    /// `-j auto`: per-host concurrency adapts, workers grow as needed (the
    /// pool's `workers` is then the most there may be).
    pub auto: bool,
}

/// Largest `--queue`.
const MAX_QUEUE: usize = 1 << 20;

/// `min(32, logical CPUs + 4)`: threads mostly wait on I/O, so a few more
/// than cores keeps them busy, and the cap keeps a big machine polite.
pub fn default_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (cpus + 4).min(32)
}

/// The longest `--rate` spacing: a year.
const SLOWEST_RATE_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

impl Cli {
    /// Checks every flag and opens the inputs.
    pub fn into_config(mut self) -> Result<Config> {
        let pool = self.pool_config()?;
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("--rate must be a positive number of requests per second (got {rate})");
        }
        // Far slower and the spacing overflows the clock (a panic).
        if let Some(rate) = self.rate
            && 1.0 / rate > SLOWEST_RATE_INTERVAL.as_secs_f64()
        {
            bail!("--rate is too low: give at least one request a year (3.2e-8; got {rate})");
        }
        let shard = self.shard.as_deref().map(parse_shard).transpose()?;
        let parts = self.request_parts()?;
        let progress = self.progress_style();
        let format = self.output_format()?;
        let urls: Vec<Vec<u8>> = std::mem::take(&mut self.urls)
            .into_iter()
            .map(arg_bytes)
            .collect();
        check_url_args(&urls, self.json)?;
        let request = self.request_config(parts)?;
        let store = StoreConfig {
            sha256: self.sha256,
            dir: self.output_dir.take(),
            update: self.update,
            names: self.names.into(),
            resume: self.resume,
        };
        let report = ReportConfig {
            format,
            fields: Fields {
                sha256: store.sha256,
                saved_to: store.dir.is_some(),
            },
            failures_only: self.failures_only,
            write_failed: self.write_failed.take(),
            summary_json: self.summary_json.take(),
            progress,
            progress_interval: seconds("--progress-interval", self.progress_interval)?,
            summary: !self.quiet,
            verbose: self.verbose,
        };
        let filter = Filter {
            dedup: self.dedup,
            shard,
        };
        let fetch = FetchConfig {
            request,
            store,
            accept: Accept::parse(&self.accept)?,
            rate: self.rate,
        };
        Ok(Config {
            input: InputConfig {
                sources: open_sources(urls, self.inputs)?,
                filter,
            },
            pool,
            fetch,
            report,
            fail_fast: self.fail_fast,
            grace: seconds_or_zero("--grace", self.grace)?,
            auto: self.workers == Some(Workers::Auto),
        })
    }

    /// `--workers`, `--queue`, `--per-host` and `--ordered`, checked.
    fn pool_config(&self) -> Result<PoolConfig> {
        let workers = match self.workers {
            Some(Workers::Fixed(n)) => in_range("--workers", n, 1, 4096)?,
            Some(Workers::Auto) => crate::run::limits::AUTO_MAX,
            None => default_workers(),
        };
        let workers = NonZeroUsize::new(workers).context("--workers must be at least 1")?;
        // The queue's slots are allocated up front: keep it sane.
        let queue = match self.queue {
            Some(q) => in_range("--queue", q, 1, MAX_QUEUE as i64)?,
            None => 2 * workers.get(),
        };
        let queue = NonZeroUsize::new(queue).context("--queue must be at least 1")?;
        let per_key = match self.per_host {
            Some(n) => NonZeroUsize::new(in_range("--per-host", n, 1, i64::MAX)?),
            None => None,
        };
        Ok(PoolConfig {
            workers,
            queue,
            per_key,
            ordered: self.ordered,
        })
    }

    /// `--json` or `--format`.
    fn output_format(&self) -> Result<OutputFormat> {
        Ok(match (self.json, &self.format) {
            (true, _) => OutputFormat::Json,
            (false, Some(t)) => OutputFormat::Template(Template::parse(t)?),
            (false, None) => OutputFormat::Text,
        })
    }

    /// The request settings, checked, with the method, headers, body and
    /// secrets of `parts`; takes what it owns out of `self`.
    fn request_config(&mut self, parts: RequestParts) -> Result<RequestConfig> {
        let (method, headers, body, secrets) = parts;
        let user_agent = match self.user_agent.take() {
            Some(ua) => header_value("--user-agent", &ua).map(|()| ua)?,
            None => format!("fetchpool/{}", env!("CARGO_PKG_VERSION")),
        };
        Ok(RequestConfig {
            method,
            headers,
            body,
            secrets,
            compressed: self.compressed,
            user_agent,
            timeout: seconds("--timeout", self.timeout)?,
            connect_timeout: seconds("--connect-timeout", self.connect_timeout)?,
            retries: in_range("--retries", self.retries, 0, u32::MAX.into())?,
            max_retry_wait: seconds("--max-retry-wait", self.max_retry_wait)?,
            max_redirects: in_range("--max-redirects", self.max_redirects, 0, u32::MAX.into())?,
            proxy: ProxyConfig::from_env(self.proxy.as_deref(), self.noproxy.as_deref(), |var| {
                std::env::var(var).ok()
            })
            .map_err(anyhow::Error::msg)?,
            cacert: self.cacert.take(),
            insecure: self.insecure,
            max_size: self.max_size.as_deref().map(parse_size).transpose()?,
        })
    }

    /// The progress display: off when quiet, with `--no-progress`, and
    /// (unless asked for) with `-v`; else as asked, or a bar on a terminal.
    fn progress_style(&self) -> ProgressStyle {
        // -v's lines and the bar would fight over the terminal: -v keeps the
        // bar off unless asked for.
        if self.quiet || self.no_progress || (self.verbose && self.progress.is_none()) {
            return ProgressStyle::Off;
        }
        let (style, note) = progress::choose(
            self.progress.map(ProgressStyle::from),
            &progress::Env::current(),
        );
        if let Some(note) = note {
            crate::report::stderr::line(format_args!("fetchpool: {note}"));
        }
        style
    }

    /// The method, the headers (`-H`, then those `-d`, `--json-body` and
    /// `-u` add unless `-H` set them), the body, and the secrets to keep
    /// out of messages.
    fn request_parts(&self) -> Result<RequestParts> {
        let mut headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>>>()?;
        let has = |headers: &[(String, String)], name: &str| {
            headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let stdin_has_urls = self.inputs.iter().any(|p| p.as_os_str() == "-")
            || (self.urls.is_empty() && self.inputs.is_empty());
        let body = request::body(&request::BodyFlags {
            data: &self.data,
            binary: &self.data_binary,
            json: self.json_body.as_deref(),
            stdin_has_urls,
        })?;
        let method = match (&self.method, &body) {
            (Some(m), _) => parse_method(m)?,
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        if body.is_some() && method == Method::HEAD {
            bail!(
                "-X HEAD sends no body: drop -d/--data-binary/--json-body, or use another method"
            );
        }
        let mut secrets = Vec::new();
        if let Some(b) = &body {
            if !has(&headers, "content-type") {
                headers.push(("Content-Type".into(), b.content_type.into()));
            }
            if b.json && !has(&headers, "accept") {
                headers.push(("Accept".into(), "application/json".into()));
            }
        }
        if let Some(user) = &self.user {
            header_value("--user", user)?;
            let (value, password) = request::basic_auth(user)?;
            if !has(&headers, "authorization") {
                headers.push(("Authorization".into(), value));
            }
            if !password.is_empty() {
                secrets.push(password);
            }
        }
        Ok((method, headers, body.map(|b| b.bytes), secrets))
    }
}

/// What [`Cli::request_parts`] gives.
type RequestParts = (
    Method,
    Vec<(String, String)>,
    Option<std::sync::Arc<[u8]>>,
    Vec<String>,
);

/// An argument's bytes as given (on Unix; elsewhere as Unicode, lossily).
fn arg_bytes(arg: std::ffi::OsString) -> Vec<u8> {
    #[cfg(unix)]
    {
        std::os::unix::ffi::OsStringExt::into_vec(arg)
    }
    #[cfg(not(unix))]
    {
        arg.to_string_lossy().into_owned().into_bytes()
    }
}

fn open_sources(urls: Vec<Vec<u8>>, inputs: Vec<PathBuf>) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    if !urls.is_empty() {
        sources.push(Source::Args(urls));
    }
    for path in inputs {
        if path.as_os_str() == "-" {
            sources.push(Source::Stdin);
        } else {
            let looks_like_url = path.to_string_lossy().contains("://");
            let file = File::open(&path).with_context(|| {
                let hint = if looks_like_url {
                    " (-i takes a file of URLs, one per line: pass URLs as arguments; \
                     response headers are not printed with results, -v traces them)"
                } else {
                    ""
                };
                format!("cannot read input file {}{hint}", path.display())
            })?;
            sources.push(Source::File(path, file));
        }
    }
    if sources.is_empty() {
        if std::io::stdin().is_terminal() {
            bail!(
                "no URLs given: pass them as arguments, with -i FILE, \
                 or on stdin (cat urls.txt | fetchpool)"
            );
        }
        sources.push(Source::Stdin);
    }
    Ok(sources)
}

/// `n` as a `T` when it is within `low..=high`, else a message naming `flag`.
fn in_range<T: TryFrom<i64>>(flag: &str, n: i64, low: i64, high: i64) -> Result<T> {
    let fits = (low..=high).contains(&n);
    match T::try_from(n) {
        Ok(v) if fits => Ok(v),
        _ if high == i64::MAX => bail!("{flag} must be at least {low} (got {n})"),
        _ => bail!("{flag} must be between {low} and {high} (got {n})"),
    }
}

fn seconds(flag: &str, secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds (got {secs})"))
}

/// Like [`seconds`], but 0 is allowed.
fn seconds_or_zero(flag: &str, secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .with_context(|| format!("{flag} must be a number of seconds, 0 or more (got {secs})"))
}

fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let parsed = s
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((k, n)) if (1..=n).contains(&k) => Ok((k - 1, n)),
        _ => bail!("--shard must be K/N with 1 <= K <= N, e.g. 2/4 (got {s:?})"),
    }
}

/// URL arguments with CR, LF or NUL are refused before anything is sent: a
/// line of a file may hold anything (it is then one `invalid_url` result),
/// but a command line with such bytes is a mistake of the caller. So is,
/// with `--json`, an argument that starts with `{` or `[`: curl's
/// `--json DATA`, which is `--json-body` here.
fn check_url_args(urls: &[Vec<u8>], json: bool) -> Result<()> {
    if json
        && let Some(body) = urls
            .iter()
            .find(|u| u.starts_with(b"{") || u.starts_with(b"["))
    {
        bail!(
            "{:?} looks like a JSON body, not a URL: --json is the output format; \
             send a JSON body with --json-body DATA",
            crate::input::url::shown(&String::from_utf8_lossy(body))
        );
    }
    for (i, url) in urls.iter().enumerate() {
        if let Some(&c) = url.iter().find(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            let url = String::from_utf8_lossy(url);
            let shown = crate::input::url::shown(&crate::text::redact::url(&url)).into_owned();
            bail!(
                "URL argument {} contains {}, which a URL cannot carry: {shown:?}",
                i + 1,
                control_name(char::from(c))
            );
        }
    }
    Ok(())
}

/// The name of a character a request must not carry, for a message.
fn control_name(c: char) -> String {
    match c {
        '\r' => "a carriage return (CR)".to_owned(),
        '\n' => "a line feed (LF)".to_owned(),
        '\0' => "a NUL byte".to_owned(),
        c => format!("the control character {c:?}"),
    }
}

/// Checks that `value` can be sent as a header value, as the `http` crate
/// (and so the HTTP client, which panics otherwise) checks it: no control character
/// but tab; CR and LF above all would split the request. Names the flag,
/// and the character but never the value, which may be a secret.
fn header_value(flag: &str, value: &str) -> Result<()> {
    if HeaderValue::from_str(value).is_ok() {
        return Ok(());
    }
    match value.chars().find(|&c| c != '\t' && c.is_ascii_control()) {
        Some(c) => bail!(
            "{flag} contains {}, which a header cannot carry",
            control_name(c)
        ),
        None => bail!("{flag} has characters a header cannot carry"),
    }
}

/// Any method token (RFC 9110), uppercased; CONNECT is refused, since it
/// opens a tunnel rather than fetching the URL.
fn parse_method(m: &str) -> Result<Method> {
    let upper = m.to_ascii_uppercase();
    let method = Method::from_bytes(upper.as_bytes())
        .ok()
        .filter(|_| !upper.is_empty())
        .with_context(|| format!("--method: {m:?} is not an HTTP method"))?;
    if method == Method::CONNECT {
        bail!("--method: CONNECT opens a tunnel and cannot fetch a URL (for a proxy use --proxy)");
    }
    Ok(method)
}

fn parse_header(h: &str) -> Result<(String, String)> {
    // Values may be secrets (Authorization, Cookie): never echo them.
    let Some((name, value)) = h.split_once(':') else {
        bail!("--header must look like 'Name: value'");
    };
    // Only blanks are trimmed: a CR or LF at either end is refused below,
    // not dropped silently.
    let name = name.trim_matches([' ', '\t']);
    let value = value.trim_matches([' ', '\t']);
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        bail!("--header: {name:?} is not a valid header name");
    }
    header_value(&format!("--header: the value of {name:?}"), value)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Parses `1048576`, `100K`, `1.5M`, `1G` (binary multiples; a trailing
/// `B` or `iB` is allowed; a fraction only with a suffix, rounded down to
/// whole bytes).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let number = number.trim();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let size = if fraction.is_empty() && !number.ends_with('.') {
        whole
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
    } else if shift > 0
        && digits(whole)
        && digits(fraction)
        && whole.len() <= 20
        && fraction.len() <= 9
    {
        // Whole and fractional parts apart, so no float rounds the result;
        // at most 20 + 9 digits shifted by 30 bits fit in a u128.
        let scale = 10u128.pow(fraction.len() as u32);
        let whole = whole.parse::<u128>().ok();
        let frac = fraction.parse::<u128>().ok();
        whole
            .zip(frac)
            .map(|(w, f)| ((w * scale + f) << shift) / scale)
            .and_then(|n| u64::try_from(n).ok())
    } else {
        None
    };
    size.with_context(|| {
        format!("--max-size must be a byte count like 500K, 1.5M or 1G (got {s:?})")
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
