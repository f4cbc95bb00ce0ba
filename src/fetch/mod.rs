//! One URL, fetched: retries, deadlines, streaming the body, classifying
//! failures. Knows nothing of terminals or output formats.
//!
//! One [`Fetcher`] holds the single `ureq::Agent` every worker shares, so
//! connections are kept alive and reused across workers; `agent` sets it up
//! (ureq 3's defaults do not suit a fetcher: see `docs/ureq.md`). This
//! folder is the only place that names ureq: the rest of the program sees
//! [`Fetched`] and the `http` crate's types.
//!
//! Redirects are followed here (`redirect`), not by ureq, and the proxy of
//! each request is chosen here ([`ProxyConfig`]) and set on that request,
//! so the one agent and its connection pool serve every route.

mod body;
mod classify;
mod conditional;
mod decode;
pub(crate) mod net;
mod ranged;
mod redirect;
mod retry;
pub mod step;

use net::{agent, proxy, transport};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use ureq::Agent;
use ureq::http::{Method, Response, Uri};
use ureq::{Proxy, ProxyProtocol};

use crate::control::pace::Pacer;
use crate::control::polite::Answer;
use crate::result::accept::Accept;
use crate::result::trace;
use crate::result::{ErrorKind, FetchError, Fetched, Timings};
use crate::store::resume::Found;
use crate::text::redact;
use classify::classify;
pub use proxy::ProxyConfig;
use redirect::{Failed, Landed};
use step::{Budget, Retry};
pub use step::{FetchState, Stepped};

/// Request settings, from the command line.
#[derive(Debug, Clone)]
pub struct RequestConfig {
    /// HTTP method.
    pub method: Method,
    /// Extra headers, in order (`-H`, then those the body and `-u` add).
    pub headers: Vec<(String, String)>,
    /// The request body, the same for every URL (`-d`, `--data-binary`,
    /// `--json-body`): always sent with `Content-Length`.
    pub body: Option<std::sync::Arc<[u8]>>,
    /// Values to keep out of messages besides secret headers (`-u`'s password).
    pub secrets: Vec<String>,
    /// `--compressed`: ask for gzip, deflate, br or zstd and decode the body.
    pub compressed: bool,
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
    /// Which requests go through which proxy.
    pub proxy: ProxyConfig,
    /// Extra trusted certificates (PEM).
    pub cacert: Option<PathBuf>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Largest body read.
    /// `--continue`: resume part files left by earlier runs.
    pub resume: bool,
    /// How saved files are named under `output_dir`.
    pub names: crate::store::names::Layout,
    pub max_size: Option<u64>,
    /// Hash bodies.
    pub sha256: bool,
    /// Save bodies here.
    pub output_dir: Option<PathBuf>,
    /// Ask whether saved files changed (`--update`), with their validators.
    pub update: bool,
    /// Statuses that count as success.
    pub accept: Accept,
    /// Worker count, to size the connection pool.
    pub workers: std::num::NonZeroUsize,
}

/// Fetches URLs with one shared agent; cheap to share between workers.
pub struct Fetcher {
    agent: Agent,
    /// ureq's form of each of `config.proxy.proxies()`, in the same order,
    /// with how messages name it.
    proxies: Vec<(Proxy, String)>,
    config: RequestConfig,
    pacer: Option<Pacer>,
    /// Never receives; disconnected at the first signal, which ends waits
    /// for a `--rate` slot or a retry (requests in flight go on).
    stopping: Receiver<()>,
    /// Never receives; disconnected when the run stops waiting (the grace
    /// after a signal is over), which ends body reads.
    cancel: Receiver<()>,
    /// Header values to keep out of messages.
    secrets: Vec<String>,
}

/// Where an attempt's body is saved: the entry's name under `-o`, and
/// the part file the answer continues, if it does.
#[derive(Clone, Copy)]
struct Saved<'a> {
    name: Option<&'a str>,
    resumed: Option<&'a Found>,
}

/// How one attempt ended.
enum Attempt {
    /// A final answer (success, a failure not worth retrying, or out of tries).
    Done(Fetched),
    /// Worth another try, as the [`Retry`] says.
    Retry(Fetched, Retry),
}

impl Fetcher {
    /// Builds the shared agent from `config`. Fails only on a bad `--cacert`
    /// (or a proxy ureq cannot take, which `ProxyConfig` already ruled out).
    /// `stopping` and `cancel` are never sent on; their disconnection tells
    /// the fetcher to start nothing new, and to drop bodies being read.
    pub fn new(
        config: RequestConfig,
        rate: Option<f64>,
        stopping: Receiver<()>,
        cancel: Receiver<()>,
    ) -> Result<Self> {
        let mut config = config;
        if config.compressed
            && !config
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
        {
            config
                .headers
                .push(("Accept-Encoding".into(), decode::ACCEPT_ENCODING.into()));
        }
        let agent = agent::build(&config)?;
        let proxies = config
            .proxy
            .proxies()
            .iter()
            .map(|p| Ok((ureq_proxy(p)?, p.to_string())))
            .collect::<Result<_>>()?;
        let secrets = config
            .headers
            .iter()
            .filter(|(name, _)| redact::is_secret_header(name))
            .map(|(_, value)| value.clone())
            .chain(config.proxy.secrets().map(str::to_owned))
            .chain(config.secrets.iter().cloned())
            .collect();
        Ok(Fetcher {
            agent,
            proxies,
            pacer: rate.map(Pacer::new),
            config,
            stopping,
            cancel,
            secrets,
        })
    }

    /// Sleeps until `deadline`; false if the run was interrupted meanwhile.
    fn wait_until(&self, deadline: Instant) -> bool {
        matches!(
            self.stopping.recv_deadline(deadline),
            Err(RecvTimeoutError::Timeout)
        )
    }

    /// One attempt: the request and its redirects, then the body, all
    /// within `--timeout`; retried as `budget` allows. Also what the answer
    /// said about its host, when one came. `repeat` is as for `fetch`;
    /// `resume` allows continuing a part file of the entry's name.
    fn attempt(
        &self,
        uri: &Uri,
        url: &str,
        repeat: u32,
        budget: &Budget,
        resume: bool,
    ) -> (Attempt, Option<Answer>) {
        let deadline = Instant::now() + self.config.timeout;
        // A proxy variable that cannot be used: no attempt is worth making.
        if let Err(error) = self.proxy_for(uri) {
            let fetched = Fetched {
                error: Some(error),
                ..Fetched::default()
            };
            return (Attempt::Done(fetched), None);
        }
        let name = self.save_name(uri, url, repeat);
        let conditional = self.conditional(name.as_deref());
        let extra = conditional.as_ref().map_or_else(Vec::new, |c| c.headers());
        // --update's validators win: a part file is of no use to a 304.
        let resume = extra
            .is_empty()
            .then(|| ranged::resumable(&self.config, name.as_deref(), resume))
            .flatten();
        let (sent, resumed) = self.send_resuming(uri, deadline, &extra, name.as_deref(), resume);
        let (response, final_url) = match sent {
            Ok(Landed {
                response,
                final_url,
            }) => (response, final_url),
            Err(Failed {
                error,
                status,
                final_url,
            }) => {
                let retry = budget.retries_error() && error.kind.is_retryable();
                // A redirect that could not be followed was an answer.
                let answer = status.map(|s| step::answer(s, &ureq::http::HeaderMap::new()));
                let fetched = Fetched {
                    error: Some(error),
                    status,
                    final_url,
                    ..Fetched::default()
                };
                let attempt = if retry {
                    Attempt::Retry(fetched, Retry::BACKOFF)
                } else {
                    Attempt::Done(fetched)
                };
                return (attempt, answer);
            }
        };
        let saved = Saved {
            name: name.as_deref(),
            resumed: resumed.as_ref(),
        };
        self.on_response(saved, budget, conditional, response, final_url)
    }

    /// Sends the request, asking only for the rest of `resume` when given;
    /// a server that cannot continue it is asked for the whole body at
    /// once. Also the part the answer continues, if it does.
    fn send_resuming(
        &self,
        uri: &Uri,
        deadline: Instant,
        extra: &[(String, String)],
        name: Option<&str>,
        resume: Option<Found>,
    ) -> (Result<Landed, Failed>, Option<Found>) {
        let Some(found) = resume else {
            return (self.send_following(uri, deadline, extra), None);
        };
        let mut ranged = extra.to_vec();
        ranged.extend(ranged::headers(&found));
        let sent = self.send_following(uri, deadline, &ranged);
        match sent
            .as_ref()
            .map(|landed| ranged::answered(landed, found.offset))
        {
            Ok(ranged::Answered::Continues) => (sent, Some(found)),
            Ok(ranged::Answered::Refused) => {
                if let Ok(landed) = sent {
                    body::drain(landed.response);
                }
                ranged::forget(&self.config, name);
                (self.send_following(uri, deadline, extra), None)
            }
            _ => (sent, None),
        }
    }

    /// The path under `-o DIR` that this entry's body is saved as: the
    /// `repeat`-th name of its URL in the `--names` layout.
    fn save_name(&self, uri: &Uri, url: &str, repeat: u32) -> Option<String> {
        self.config.output_dir.as_ref()?;
        Some(crate::store::names::relative_name(
            self.config.names,
            url,
            uri,
            repeat,
        ))
    }

    /// The rest of an attempt once a response has come: `--update`'s 304,
    /// a retry, or the body. Out of line: its locals would otherwise sit in
    /// the frame under the whole send path (ureq's frames are deep), and a
    /// thousand workers each keep every stack page they ever touched.
    #[inline(never)]
    fn on_response(
        &self,
        saved: Saved<'_>,
        budget: &Budget,
        conditional: Option<conditional::Conditional<'_>>,
        response: Response<ureq::Body>,
        final_url: Option<String>,
    ) -> (Attempt, Option<Answer>) {
        let status = response.status();
        let answer = Some(step::answer(status.as_u16(), response.headers()));
        if let Some(unchanged) = conditional
            .as_ref()
            .and_then(|c| c.unchanged(status, self.config.sha256))
        {
            body::drain(response);
            return (
                Attempt::Done(Fetched {
                    final_url,
                    ..unchanged
                }),
                answer,
            );
        }
        let validators = conditional
            .as_ref()
            .and_then(|c| c.validators(response.headers()));
        if let Some(retry) = budget.retries_status(status.as_u16(), response.headers()) {
            let bytes = body::drain(response);
            let fetched = Fetched {
                status: Some(status.as_u16()),
                bytes,
                wire_bytes: bytes,
                final_url,
                ..Fetched::default()
            };
            return (Attempt::Retry(fetched, retry), answer);
        }
        let mut fetched = self.read_body(saved.name, saved.resumed, status, response);
        fetched.status = Some(status.as_u16());
        fetched.final_url = final_url;
        if let Some(c) = conditional {
            c.saved(&fetched, validators);
        }
        let attempt = match &fetched.error {
            // A body that stalled past the deadline is retried like a server
            // that never answered; one cut short whose bytes were kept is
            // retried too, since the retry asks only for the rest.
            Some(e) if budget.retries_error() && (e.kind.is_retryable() || fetched.kept_part) => {
                Attempt::Retry(fetched, Retry::BACKOFF)
            }
            Some(_) => Attempt::Done(fetched),
            None => {
                fetched.ok = self.config.accept.contains(status.as_u16());
                Attempt::Done(fetched)
            }
        };
        (attempt, answer)
    }

    /// Sends one request of a redirect chain, through the proxy chosen for
    /// `uri`. `foreign` (another origin than the URL as given) leaves out
    /// the credential headers, `to_get` (a redirect made the request a GET)
    /// the `Content-*` ones; `timeout` replaces the agent's `--timeout`
    /// (for a later hop: what is left of it); `extra` headers are added.
    fn send(
        &self,
        uri: &Uri,
        method: &Method,
        foreign: bool,
        to_get: bool,
        timeout: Option<Duration>,
        extra: &[(String, String)],
    ) -> std::result::Result<Response<ureq::Body>, FetchError> {
        let proxy = self.proxy_for(uri)?;
        let build = |fresh: bool| {
            let mut request = ureq::http::Request::builder()
                .method(method.clone())
                .uri(uri.clone());
            for (name, value) in self.config.headers.iter().chain(extra) {
                if (foreign && redirect::is_origin_credential(name))
                    || (to_get && redirect::is_body_header(name))
                {
                    continue;
                }
                request = request.header(name, value);
            }
            let mut req = request.body(())?;
            // Request-level settings clone the agent's config: only when
            // needed. The pool keys connections by proxy too.
            if proxy.is_some() || timeout.is_some() || fresh {
                req = agent::configure(&self.agent, req, proxy.map(|(p, _)| p), timeout, fresh);
            }
            Ok::<_, ureq::Error>(req)
        };
        let payload = self.payload(method, to_get);
        let wire = wire_method(method, payload.is_some());
        if let Some((_, shown)) = proxy {
            trace::emit(trace::Kind::Info, || format!("through the proxy {shown}"));
        }
        // A body is written through the output buffer too: one that holds
        // it (up to the largest) sends it in few writes.
        let body_len = payload.map_or(0, |p| p.len().min(transport::OUTPUT_MAX));
        let mut longest_row = self.longest_row(uri, method).max(body_len);
        let mut fresh = false;
        let response = loop {
            transport::begin(longest_row);
            if wire != *method {
                transport::rewrite_method(wire.as_str(), method.as_str());
            }
            match build(fresh).and_then(|req| run(&self.agent, req, &wire, payload)) {
                Err(ureq::Error::Protocol(ureq_proto::Error::OutputOverflow))
                    if longest_row < transport::OUTPUT_MAX =>
                {
                    longest_row = transport::OUTPUT_MAX;
                }
                // A keep-alive connection the server had closed, found dead
                // before any byte of the answer: sent once more on a fresh
                // connection (not a retry: it never reached the server).
                Err(e)
                    if !fresh
                        && is_dead_connection(&e)
                        && transport::current().died_unanswered() =>
                {
                    fresh = true;
                }
                // Out of file descriptors (other programs, or a limit
                // lowered under us): our own shortage, waited out, never a
                // URL's result.
                Err(ureq::Error::Io(e)) if is_out_of_fds(&e) && !self.is_cancelled() => {
                    std::thread::sleep(FD_WAIT);
                }
                other => break other,
            }
        };
        self.answered(response, proxy)
    }

    /// The body of a request with `method`: the one given, unless a
    /// redirect turned the request into a GET (`to_get`); an empty one for
    /// POST, PUT and PATCH without it, so they send `Content-Length: 0`.
    fn payload(&self, method: &Method, to_get: bool) -> Option<&[u8]> {
        match &self.config.body {
            Some(body) if !to_get => Some(&body[..]),
            _ => needs_length(method).then_some(&[][..]),
        }
    }

    /// What [`Fetcher::send`] returns for ureq's outcome: the response
    /// (traced with `-v`), or the error in our kinds, naming the `proxy`
    /// when the failure may be its.
    fn answered(
        &self,
        response: std::result::Result<Response<ureq::Body>, ureq::Error>,
        proxy: Option<&(Proxy, String)>,
    ) -> std::result::Result<Response<ureq::Body>, FetchError> {
        if let Ok(r) = &response
            && trace::enabled()
        {
            trace_response(r);
        }
        response.map_err(|e| {
            let mut error = classify(&e, &self.config);
            if let Some((_, shown)) = proxy
                && matches!(
                    error.kind,
                    ErrorKind::Dns | ErrorKind::Connect | ErrorKind::Proxy
                )
            {
                error.message = format!("{} (proxy {shown})", error.message);
            }
            error
        })
    }

    /// The proxy for a request to `uri`, if it goes through one; an error
    /// when the variable naming it cannot be used (a `connect` failure of
    /// this URL, not of the run).
    fn proxy_for(&self, uri: &Uri) -> Result<Option<&(Proxy, String)>, FetchError> {
        let https = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        match uri.host().and_then(|h| self.config.proxy.select(https, h)) {
            None => Ok(None),
            Some(Ok(index)) => Ok(self.proxies.get(index)),
            Some(Err(why)) => Err(FetchError::new(ErrorKind::Connect, why)),
        }
    }

    /// The longest row of the request head, so the output buffer holds it.
    fn longest_row(&self, uri: &Uri, method: &Method) -> usize {
        let target = uri.path_and_query().map_or(1, |p| p.as_str().len());
        let request_line = method.as_str().len() + target + 12;
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

    /// Removes secrets a library message might carry: header values, and
    /// the URL's password as given and as sent (percent-encoded).
    fn scrub(&self, message: &str, uri: &Uri, url: &str) -> String {
        let sent = uri.to_string();
        let mut secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        secrets.extend(redact::password(url));
        secrets.extend(redact::password(&sent));
        redact::scrub(message, &secrets)
    }
}

/// Runs `req` as `wire` (see [`wire_method`]) with `payload` as its body
/// (`Content-Length`, never chunked), or none.
fn run(
    agent: &Agent,
    req: ureq::http::Request<()>,
    wire: &Method,
    payload: Option<&[u8]>,
) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
    let (mut parts, ()) = req.into_parts();
    parts.method = wire.clone();
    match payload {
        Some(bytes) => agent.run(ureq::http::Request::from_parts(parts, bytes)),
        None => agent.run(ureq::http::Request::from_parts(parts, ())),
    }
}

/// Traces the head of `response`: its status line and headers (the values
/// of cookies hidden).
fn trace_response(response: &Response<ureq::Body>) {
    use trace::Kind::Received;
    let status = response.status();
    trace::emit(Received, || {
        let reason = status.canonical_reason().unwrap_or("");
        format!("{:?} {} {reason}", response.version(), status.as_u16())
    });
    for (name, value) in response.headers() {
        trace::emit(Received, || {
            trace::header_line(name.as_str(), value.as_bytes())
        });
    }
}

/// Whether a request with `method` and no body still says so with
/// `Content-Length: 0` (the methods whose requests normally carry one).
fn needs_length(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH].contains(method)
}

/// The method ureq is given for `method`. ureq only sends the methods of
/// RFC 9110 and PATCH; any other token goes out as a stand-in of the same
/// body handling (POST with a body, else GET), which the transport writes
/// on the wire as `method` (see [`transport::rewrite_method`]).
fn wire_method(method: &Method, with_body: bool) -> Method {
    let known = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    if known.contains(method) {
        method.clone()
    } else if with_body {
        Method::POST
    } else {
        Method::GET
    }
}

/// How long to wait for a file descriptor to be freed before trying again.
const FD_WAIT: Duration = Duration::from_millis(20);

/// Whether `e` says this process (or the system) is out of file
/// descriptors: a shortage of ours, waited out rather than reported.
pub(super) fn is_out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

pub(crate) fn cancelled_error() -> FetchError {
    FetchError::new(
        ErrorKind::Cancelled,
        "interrupted while the body was being read",
    )
}

/// ureq's form of a proxy: ureq tunnels every request through an HTTP
/// proxy with `CONNECT host:port` (the only way ureq 3.5 speaks to one);
/// SOCKS5 is spoken by our connector (`net::socks`), which reads the
/// protocol and whether the target is resolved here from it.
fn ureq_proxy(p: &proxy::ProxyUrl) -> Result<Proxy> {
    let protocol = match p.kind {
        proxy::ProxyKind::Http => ProxyProtocol::Http,
        proxy::ProxyKind::Https => ProxyProtocol::Https,
        proxy::ProxyKind::Socks5 => ProxyProtocol::Socks5,
        proxy::ProxyKind::Socks5h => ProxyProtocol::Socks5h,
    };
    let mut builder = Proxy::builder(protocol).host(&p.host).port(p.port);
    if let Some(user) = &p.user {
        builder = builder.username(user);
    }
    if let Some(password) = &p.password {
        builder = builder.password(password);
    }
    builder
        .build()
        .map_err(|_| anyhow::anyhow!("proxy {p}: not a usable proxy"))
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
        | K::UnexpectedEof | K::NotConnected)
        || net::framing::Fault::of(io).is_some_and(|f| f.cut))
}

#[cfg(test)]
impl RequestConfig {
    /// Defaults for unit tests.
    pub(crate) fn for_tests() -> Self {
        RequestConfig {
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            secrets: Vec::new(),
            compressed: false,
            user_agent: "test".into(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 2,
            max_retry_wait: Duration::from_secs(30),
            max_redirects: 10,
            proxy: ProxyConfig::default(),
            cacert: None,
            insecure: false,
            max_size: None,
            names: crate::store::names::Layout::Hashed,
            resume: false,
            sha256: false,
            output_dir: None,
            update: false,
            accept: Accept::parse("200-399").unwrap_or_else(|e| panic!("{e}")),
            workers: std::num::NonZeroUsize::MIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_the_password_as_given_and_as_sent() {
        let (_cancel, cancelled) = crossbeam_channel::bounded(0);
        let fetcher = Fetcher::new(
            RequestConfig::for_tests(),
            None,
            cancelled.clone(),
            cancelled,
        )
        .unwrap();
        let given = "http://u:p w\u{e9}@h/";
        let uri = crate::input::url::check(given).unwrap();
        assert_eq!(uri.to_string(), "http://u:p%20w%C3%A9@h/");
        let message = "failed: http://u:p%20w%C3%A9@h/ (p w\u{e9})";
        assert_eq!(
            fetcher.scrub(message, &uri, given),
            "failed: http://u:***@h/ (***)"
        );
    }
}
