//! One URL, fetched: retries, deadlines, streaming the body, classifying
//! failures. Knows nothing of terminals or output formats.
//!
//! One [`Fetcher`] holds the single `ureq::Agent` every worker shares, so
//! connections are kept alive and reused across workers. ureq 3's defaults
//! do not suit a fetcher (see `NOTES-ureq.md`), so [`Fetcher::new`] sets
//! them: deadlines, an idle pool as large as the pool of workers, small
//! per-connection buffers, statuses returned rather than raised, and a
//! resolver that does not spawn a thread per request.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ureq::Agent;
use ureq::http::{Method, Response, StatusCode, Uri};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::transport::DefaultConnector;

use crate::accept::Accept;
use crate::pace::Pacer;
use crate::redact;
use crate::save::PartFile;

/// Statuses worth another attempt (SPEC "Requests").
const RETRY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];
/// First backoff delay; it doubles per attempt, with jitter.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest backoff delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Error bodies up to this size are read before a retry so the connection
/// goes back to the pool; larger ones are dropped with their connection.
const DRAIN_MAX: u64 = 64 * 1024;
/// ureq's per-connection input buffer, and so the largest response head
/// accepted. ureq's default is 128 KiB in and 128 KiB out, all of it touched:
/// 250 MiB for a thousand connections (see `BENCHMARKS.md`).
const INPUT_BUFFER: usize = 16 * 1024;
/// ureq's per-connection output buffer, and so the largest request head
/// (request line and headers).
const OUTPUT_BUFFER: usize = 16 * 1024;
/// A worker's body read buffer, on its stack: zeroed per fetch, so kept small.
const READ_BUF: usize = 4 * 1024;

/// Request settings, from the command line.
#[derive(Debug, Clone)]
pub struct RequestConfig {
    /// HTTP method.
    pub method: Method,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// User-Agent header.
    pub user_agent: String,
    /// Deadline for one whole attempt.
    pub timeout: Duration,
    /// Deadline to connect.
    pub connect_timeout: Duration,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// Longest Retry-After wait honoured.
    pub max_retry_wait: Duration,
    /// Redirects to follow.
    pub max_redirects: u32,
    /// Extra trusted certificates (PEM).
    pub cacert: Option<PathBuf>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Largest body read.
    pub max_size: Option<u64>,
    /// Hash bodies.
    pub sha256: bool,
    /// Save bodies here.
    pub output_dir: Option<PathBuf>,
    /// Statuses that count as success.
    pub accept: Accept,
    /// Worker count, to size the connection pool.
    pub workers: std::num::NonZeroUsize,
}

/// Why a fetch failed (SPEC's error kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The entry is not a fetchable URL.
    InvalidUrl,
    /// The host name did not resolve.
    Dns,
    /// No connection could be made.
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// A deadline passed.
    Timeout,
    /// The body exceeded `--max-size`.
    TooLarge,
    /// Too many redirects, or a bad one.
    Redirects,
    /// The server did not speak HTTP properly.
    Protocol,
    /// The connection broke, or saving the body failed.
    Io,
    /// The run was interrupted before this fetch could finish.
    Cancelled,
    /// A bug in fetchpool.
    Internal,
}

impl ErrorKind {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Redirects => "redirects",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Io => "io",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }

    fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Timeout)
    }
}

/// A failure: its kind and a short message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, in a few words.
    pub message: String,
}

impl FetchError {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FetchError {
            kind,
            message: message.into(),
        }
    }
}

/// What one fetch produced.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// No error and a status in `--accept`.
    pub ok: bool,
    /// Final HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Body bytes read in the last attempt.
    pub bytes: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Where redirects led, if anywhere.
    pub final_url: Option<String>,
    /// The failure, if any (a status outside `--accept` is not an error).
    pub error: Option<FetchError>,
    /// Hex SHA-256 of the body, when asked for.
    pub sha256: Option<String>,
    /// Where the body was saved, when asked for.
    pub saved_to: Option<String>,
    /// Wall time of all attempts and waits.
    pub elapsed: Duration,
}

/// Fetches URLs with one shared agent; cheap to share between workers.
pub struct Fetcher {
    agent: Agent,
    config: RequestConfig,
    pacer: Option<Pacer>,
    /// Never receives; disconnected when the run is interrupted, which ends
    /// backoff waits and body reads early.
    cancel: Receiver<()>,
    /// Header values to keep out of messages.
    secrets: Vec<String>,
}

/// How one attempt ended.
enum Attempt {
    /// A final answer (success, a failure not worth retrying, or out of tries).
    Done(Fetched),
    /// Worth another try after the given wait (`None`: the usual backoff).
    Retry(Fetched, Option<Duration>),
}

impl Fetcher {
    /// Builds the shared agent from `config`. Fails only on a bad `--cacert`.
    pub fn new(config: RequestConfig, rate: Option<f64>, cancel: Receiver<()>) -> Result<Self> {
        let root_certs = match &config.cacert {
            None => RootCerts::WebPki,
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("--cacert: cannot read {}", path.display()))?;
                let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                    .collect();
                let before = certs.len();
                for item in ureq::tls::parse_pem(&pem) {
                    if let Ok(ureq::tls::PemItem::Certificate(cert)) = item {
                        certs.push(cert);
                    }
                }
                anyhow::ensure!(
                    certs.len() > before,
                    "--cacert: no PEM certificate found in {}",
                    path.display()
                );
                RootCerts::from(certs)
            }
        };
        let tls = TlsConfig::builder()
            .root_certs(root_certs)
            .disable_verification(config.insecure)
            .build();
        let workers = config.workers.get();
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(config.max_redirects)
            .user_agent(config.user_agent.as_str())
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout))
            .max_idle_connections(workers.max(10))
            .max_idle_connections_per_host(workers.max(3))
            .input_buffer_size(INPUT_BUFFER)
            .output_buffer_size(OUTPUT_BUFFER)
            .max_response_header_size(INPUT_BUFFER)
            .tls_config(tls)
            .build();
        let agent = Agent::with_parts(
            agent_config,
            DefaultConnector::default(),
            crate::resolver::CachingResolver::default(),
        );
        let secrets = config
            .headers
            .iter()
            .filter(|(name, _)| redact::is_secret_header(name))
            .map(|(_, value)| value.clone())
            .collect();
        Ok(Fetcher {
            agent,
            pacer: rate.map(Pacer::new),
            config,
            cancel,
            secrets,
        })
    }

    /// Fetches `uri` (an http/https URI, see [`crate::url::check`]), retrying
    /// as configured; `url` is the URL as given, which names a saved file.
    /// Never panics on anything a server sends.
    pub fn fetch(&self, uri: &Uri, url: &str) -> Fetched {
        let mut attempts = 0;
        // From the first start: waiting for a --rate slot is queueing, not
        // fetching, but the waits between attempts count.
        let mut start = None;
        let mut fetched = loop {
            attempts += 1;
            if let Some(pacer) = &self.pacer
                && !self.wait_until(pacer.reserve())
            {
                break cancelled();
            }
            start.get_or_insert_with(Instant::now);
            let last_try = attempts > self.config.retries || !self.config.method.is_idempotent();
            match self.attempt(uri, url, last_try) {
                Attempt::Done(f) => break f,
                Attempt::Retry(f, after) => {
                    let wait = after.unwrap_or_else(|| backoff(attempts));
                    if !self.wait_until(Instant::now() + wait) {
                        break f;
                    }
                }
            }
        };
        fetched.attempts = attempts;
        fetched.elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
        if let Some(err) = &mut fetched.error {
            err.message = self.scrub(&err.message, url);
        }
        fetched
    }

    /// Sleeps until `deadline`; false if the run was interrupted meanwhile.
    fn wait_until(&self, deadline: Instant) -> bool {
        matches!(
            self.cancel.recv_deadline(deadline),
            Err(RecvTimeoutError::Timeout)
        )
    }

    fn attempt(&self, uri: &Uri, url: &str, last_try: bool) -> Attempt {
        let mut request = ureq::http::Request::builder()
            .method(self.config.method.clone())
            .uri(uri.clone());
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        let response = match request.body(()).map_err(ureq::Error::from) {
            Ok(req) => self.agent.run(req),
            Err(e) => Err(e),
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let error = classify(&e, &self.config);
                let retry = !last_try && error.kind.is_retryable();
                let fetched = Fetched {
                    error: Some(error),
                    ..Fetched::default()
                };
                return if retry {
                    Attempt::Retry(fetched, None)
                } else {
                    Attempt::Done(fetched)
                };
            }
        };
        let status = response.status();
        let final_url = redirected(uri, &response);
        if !last_try && RETRY_STATUSES.contains(&status.as_u16()) {
            match retry_after(&response) {
                Some(wait) if wait > self.config.max_retry_wait => {}
                after => {
                    let bytes = drain(response);
                    let fetched = Fetched {
                        status: Some(status.as_u16()),
                        bytes,
                        final_url,
                        ..Fetched::default()
                    };
                    return Attempt::Retry(fetched, after);
                }
            }
        }
        let mut fetched = self.read_body(url, status, response);
        fetched.status = Some(status.as_u16());
        fetched.final_url = final_url;
        match &fetched.error {
            // A body that stalled past the deadline is retried like a server
            // that never answered.
            Some(e) if !last_try && e.kind.is_retryable() => Attempt::Retry(fetched, None),
            Some(_) => Attempt::Done(fetched),
            None => {
                fetched.ok = self.config.accept.contains(status.as_u16());
                Attempt::Done(fetched)
            }
        }
    }

    /// Streams the body: counted, hashed and saved as asked, never held whole.
    fn read_body(&self, url: &str, status: StatusCode, response: Response<ureq::Body>) -> Fetched {
        let mut fetched = Fetched::default();
        let max = self.config.max_size.unwrap_or(u64::MAX);
        if let Some(len) = response.body().content_length()
            && len > max
        {
            fetched.error = Some(too_large(max));
            return fetched;
        }
        let mut hasher = self.config.sha256.then(Sha256::new);
        let save = self
            .config
            .output_dir
            .as_deref()
            .filter(|_| self.config.accept.contains(status.as_u16()));
        let mut part = match save.map(|dir| PartFile::create(dir, url)).transpose() {
            Ok(part) => part,
            Err(e) => {
                fetched.error = Some(FetchError::new(
                    ErrorKind::Io,
                    format!("cannot create file: {e}"),
                ));
                return fetched;
            }
        };
        let mut reader = response.into_body().into_reader();
        let mut buf = [0u8; READ_BUF];
        loop {
            // Never read more than one byte past --max-size.
            let room = usize::try_from(max.saturating_add(1) - fetched.bytes).unwrap_or(usize::MAX);
            let n = match reader.read(&mut buf[..room.min(READ_BUF)]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let mut err = classify(&ureq::Error::from(e), &self.config);
                    if err.kind == ErrorKind::Io {
                        err.message =
                            format!("{} after {} bytes of body", err.message, fetched.bytes);
                    }
                    fetched.error = Some(err);
                    return fetched;
                }
            };
            fetched.bytes += n as u64;
            if fetched.bytes > max {
                fetched.error = Some(too_large(max));
                return fetched;
            }
            let chunk = &buf[..n];
            if let Some(h) = &mut hasher {
                h.update(chunk);
            }
            if let Some(p) = &mut part
                && let Err(e) = p.write(chunk)
            {
                fetched.error = Some(FetchError::new(
                    ErrorKind::Io,
                    format!("cannot write file: {e}"),
                ));
                return fetched;
            }
            if self.cancel_disconnected() {
                fetched.error = Some(cancelled_error());
                return fetched;
            }
        }
        fetched.sha256 = hasher.map(|h| crate::save::hex(&h.finalize()));
        if let Some(p) = part {
            match p.commit() {
                Ok(path) => fetched.saved_to = Some(path.display().to_string()),
                Err(e) => {
                    fetched.error = Some(FetchError::new(
                        ErrorKind::Io,
                        format!("cannot save file: {e}"),
                    ));
                }
            }
        }
        fetched
    }

    fn cancel_disconnected(&self) -> bool {
        matches!(
            self.cancel.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    /// Removes secrets a library message might carry.
    fn scrub(&self, message: &str, url: &str) -> String {
        let mut secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        secrets.extend(redact::password(url));
        redact::scrub(message, &secrets)
    }
}

fn cancelled_error() -> FetchError {
    FetchError::new(
        ErrorKind::Cancelled,
        "interrupted before the fetch completed",
    )
}

fn cancelled() -> Fetched {
    Fetched {
        error: Some(cancelled_error()),
        ..Fetched::default()
    }
}

fn too_large(max: u64) -> FetchError {
    FetchError::new(
        ErrorKind::TooLarge,
        format!("body larger than --max-size ({max} bytes)"),
    )
}

/// `200 ms * 2^(attempt-1)`, capped at 10 s, with full jitter on the upper half.
fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_START
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    base / 2 + base.mul_f64(fastrand::f64() / 2.0)
}

/// Retry-After in seconds or as an HTTP date.
fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Reads a small error body to its end so its connection can be reused.
fn drain(response: Response<ureq::Body>) -> u64 {
    let mut reader = response.into_body().into_reader().take(DRAIN_MAX);
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap_or(0)
}

/// The final URL when redirects were followed.
fn redirected(requested: &Uri, response: &Response<ureq::Body>) -> Option<String> {
    use ureq::ResponseExt;
    let final_uri = response.get_uri();
    (final_uri != requested).then(|| redact::url(&final_uri.to_string()).into_owned())
}

/// Maps a ureq error to SPEC's kinds, with a message in our words.
fn classify(e: &ureq::Error, config: &RequestConfig) -> FetchError {
    use ErrorKind as K;
    use ureq::Error as E;
    let (kind, message) = match e {
        E::Timeout(ureq::Timeout::Connect) => (
            K::Timeout,
            format!(
                "no connection within {:?} (--connect-timeout)",
                config.connect_timeout
            ),
        ),
        E::Timeout(ureq::Timeout::Resolve) => (K::Dns, "name lookup timed out".to_owned()),
        E::Timeout(_) => (
            K::Timeout,
            format!(
                "no complete response within {:?} (--timeout)",
                config.timeout
            ),
        ),
        E::HostNotFound => (K::Dns, "host name not found".to_owned()),
        E::ConnectionFailed => (K::Connect, "connection failed".to_owned()),
        E::Io(io) => classify_io(io),
        E::TooManyRedirects => (
            K::Redirects,
            format!(
                "more than {} redirects (--max-redirects)",
                config.max_redirects
            ),
        ),
        E::RedirectFailed => (
            K::Redirects,
            "redirect without a usable Location".to_owned(),
        ),
        E::Tls(m) => (K::Tls, tls_message(m)),
        E::Rustls(r) => (K::Tls, tls_message(&r.to_string())),
        E::Pem(_) => (K::Tls, "bad certificate".to_owned()),
        E::BodyExceedsLimit(n) => (K::TooLarge, format!("body larger than {n} bytes")),
        E::LargeResponseHeader(..) => (
            K::Protocol,
            format!("response head larger than {INPUT_BUFFER} bytes"),
        ),
        // ureq-proto's OutputOverflow: the request head did not fit.
        E::Protocol(p) if p.to_string().contains("output too small") => (
            K::Protocol,
            format!("request line and headers longer than {OUTPUT_BUFFER} bytes"),
        ),
        E::Protocol(p) => (K::Protocol, format!("not a valid HTTP response: {p}")),
        E::BadUri(m) => (K::InvalidUrl, m.clone()),
        E::Http(h) => (K::InvalidUrl, h.to_string()),
        E::BodyStalled => (K::Timeout, "body stalled".to_owned()),
        other => (K::Protocol, other.to_string()),
    };
    FetchError::new(kind, message)
}

/// rustls's certificate errors, with what to do about the common ones.
fn tls_message(text: &str) -> String {
    let hint = if text.contains("UnknownIssuer") {
        "certificate signed by an unknown authority (trust it with --cacert FILE)"
    } else if text.contains("CaUsedAsEndEntity") {
        "the server presents a CA certificate (CA:TRUE) as its own; issue it a leaf certificate"
    } else if text.contains("NotValidForName") {
        "certificate is not valid for this host name"
    } else if text.contains("Expired") {
        "certificate has expired"
    } else {
        return text.to_owned();
    };
    hint.to_owned()
}

fn classify_io(io: &std::io::Error) -> (ErrorKind, String) {
    use std::io::ErrorKind as IoKind;
    // rustls reports certificate problems as I/O errors carrying its error.
    if let Some(inner) = io.get_ref() {
        if let Some(tls) = inner.downcast_ref::<ureq::Error>()
            && let ureq::Error::Rustls(r) = tls
        {
            return (ErrorKind::Tls, tls_message(&r.to_string()));
        }
        let text = inner.to_string();
        if text.contains("certificate") || text.contains("handshake") || text.contains("tls") {
            return (ErrorKind::Tls, tls_message(&text));
        }
    }
    match io.kind() {
        IoKind::ConnectionRefused => (ErrorKind::Connect, "connection refused".to_owned()),
        IoKind::HostUnreachable | IoKind::NetworkUnreachable | IoKind::AddrNotAvailable => {
            (ErrorKind::Connect, io.to_string())
        }
        IoKind::TimedOut | IoKind::WouldBlock => (ErrorKind::Timeout, "timed out".to_owned()),
        IoKind::ConnectionReset => (ErrorKind::Io, "connection reset by peer".to_owned()),
        IoKind::ConnectionAborted => (ErrorKind::Io, "connection aborted".to_owned()),
        IoKind::UnexpectedEof => (ErrorKind::Io, "connection closed early".to_owned()),
        IoKind::InvalidData => (ErrorKind::Protocol, io.to_string()),
        _ => (ErrorKind::Io, io.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let base = BACKOFF_START
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_MAX);
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30) <= BACKOFF_MAX);
    }

    #[test]
    fn kinds_have_spec_names() {
        let json = serde_json::to_string(&ErrorKind::TooLarge).unwrap();
        assert_eq!(json, "\"too_large\"");
        assert_eq!(ErrorKind::InvalidUrl.as_str(), "invalid_url");
    }
}
