//! One URL, fetched: retries, deadlines, streaming the body, classifying
//! failures. Knows nothing of terminals or output formats.
//!
//! One [`Fetcher`] holds the single `ureq::Agent` every worker shares, so
//! connections are kept alive and reused across workers; `agent` sets it up
//! (ureq 3's defaults do not suit a fetcher: see `docs/ureq.md`). This
//! folder is the only place that names ureq: the rest of the program sees
//! [`Fetched`] and the `http` crate's types.

mod agent;
mod body;
mod classify;
mod resolver;
mod retry;
mod tls;
mod transport;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use ureq::Agent;
use ureq::http::{Method, Response, Uri};

use crate::accept::Accept;
use crate::pace::Pacer;
use crate::redact;
use crate::result::{ErrorKind, FetchError, Fetched, Timings};
use classify::classify;
use retry::{RETRY_STATUSES, backoff, retry_after};

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
        let agent = agent::build(&config)?;
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

    /// Fetches `uri` (an http/https URI, see [`crate::input::url::check`]), retrying
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
                Attempt::Done(f) => break with_timings(f),
                Attempt::Retry(f, after) => {
                    let f = with_timings(f);
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
        let response = self.run(uri);
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
            match retry_after(response.headers()) {
                Some(wait) if wait > self.config.max_retry_wait => {}
                after => {
                    let bytes = body::drain(response);
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

    /// One request through the agent. A request that met a dead keep-alive
    /// connection (reused, failed before any byte of the response came) is
    /// sent once more on a fresh connection, and one whose head has a row
    /// too long for the output buffer (a long redirect target) once more
    /// with the largest buffer; neither counts as an attempt.
    fn run(&self, uri: &Uri) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut longest_row = self.longest_row(uri);
        let mut fresh = false;
        loop {
            transport::begin(longest_row);
            let request = self.request(uri, fresh)?;
            match self.agent.run(request) {
                Err(ureq::Error::Protocol(ureq_proto::Error::OutputOverflow))
                    if longest_row < transport::OUTPUT_MAX =>
                {
                    longest_row = transport::OUTPUT_MAX;
                }
                Err(e)
                    if !fresh
                        && is_dead_connection(&e)
                        && transport::current().died_unanswered() =>
                {
                    fresh = true;
                }
                result => return result,
            }
        }
    }

    fn request(&self, uri: &Uri, fresh: bool) -> Result<ureq::http::Request<()>, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(self.config.method.clone())
            .uri(uri.clone());
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        let request = request.body(())?;
        if !fresh {
            return Ok(request);
        }
        // A request-level config that differs from the agent's in a setting
        // our connectors ignore keeps ureq from taking a connection out of
        // the pool (and from putting this one back).
        Ok(self
            .agent
            .configure_request(request)
            .input_buffer_size(agent::FRESH_CONNECTION_MARK)
            .build())
    }

    /// The longest row of the request head, so the output buffer holds it.
    fn longest_row(&self, uri: &Uri) -> usize {
        let target = uri.path_and_query().map_or(1, |p| p.as_str().len());
        let request_line = self.config.method.as_str().len() + target + 12;
        let headers = self
            .config
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .max()
            .unwrap_or(0);
        // Host, User-Agent, and the Authorization ureq makes of user:pass@
        // (base64: 4/3 of it).
        let authority = uri.authority().map_or(0, |a| a.as_str().len() * 4 / 3 + 30);
        let user_agent = self.config.user_agent.len() + 16;
        request_line.max(headers).max(authority).max(user_agent) + 64
    }

    /// Whether the run was interrupted.
    fn is_cancelled(&self) -> bool {
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

pub(crate) fn cancelled_error() -> FetchError {
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

/// `f` with the timings the transport recorded for the attempt just made.
fn with_timings(f: Fetched) -> Fetched {
    let e = transport::current();
    Fetched {
        timings: Some(Timings {
            connect: e.connect,
            tls: e.tls,
            ttfb: e.ttfb(),
            reused: e.reused,
        }),
        ..f
    }
}

/// Whether `e` is what a keep-alive connection the server had closed gives:
/// a reset, an abort or an early end of stream (not a timeout).
fn is_dead_connection(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e, ureq::Error::Io(io) if matches!(io.kind(),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
        | K::UnexpectedEof | K::NotConnected))
}

/// The final URL when redirects were followed.
fn redirected(requested: &Uri, response: &Response<ureq::Body>) -> Option<String> {
    use ureq::ResponseExt;
    let final_uri = response.get_uri();
    (final_uri != requested).then(|| redact::url(&final_uri.to_string()).into_owned())
}

#[cfg(test)]
impl RequestConfig {
    /// Defaults for unit tests.
    pub(crate) fn for_tests() -> Self {
        RequestConfig {
            method: Method::GET,
            headers: Vec::new(),
            user_agent: "test".into(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 2,
            max_retry_wait: Duration::from_secs(30),
            max_redirects: 10,
            cacert: None,
            insecure: false,
            max_size: None,
            sha256: false,
            output_dir: None,
            accept: Accept::parse("200-399").unwrap_or_else(|e| panic!("{e}")),
            workers: std::num::NonZeroUsize::MIN,
        }
    }
}
