//! One request of a redirect chain, sent: its headers, the proxy chosen
//! for it, the connection layer armed for it, and the few failures that are
//! sent again at once rather than reported (a dead keep-alive connection, a
//! request head longer than the buffer, a shortage of file descriptors).

use ureq::http::{Method, Response, Uri};
use ureq::{Agent, Proxy};

use crossbeam_channel::Receiver;

use super::classify::{FD_WAIT, classify, is_cancelled, is_dead_connection, is_out_of_fds};
use super::config::RequestConfig;
use super::net::{agent, transport};
use super::redirect::{self, Hop};
use crate::result::{ErrorKind, FetchError, trace};

/// What sending a request needs: the fetcher's agent, proxies and
/// settings, borrowed.
pub(super) struct Sender<'a> {
    pub(super) agent: &'a Agent,
    /// ureq's form of each of `config.proxy.proxies()`, in the same order,
    /// with how messages name it.
    pub(super) proxies: &'a [(Proxy, String)],
    pub(super) config: &'a RequestConfig,
    /// Disconnected when the run stops waiting: no more waiting for file
    /// descriptors.
    pub(super) cancel: &'a Receiver<()>,
}

impl<'a> Sender<'a> {
    /// Sends one request of a redirect chain, through the proxy chosen for
    /// `uri`, as `hop` says; `extra` headers are added.
    pub(super) fn send(
        &self,
        uri: &Uri,
        method: &Method,
        hop: Hop,
        extra: &[(String, String)],
    ) -> std::result::Result<Response<ureq::Body>, FetchError> {
        let Hop {
            foreign,
            to_get,
            timeout,
        } = hop;
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
                req = agent::configure(self.agent, req, proxy.map(|(p, _)| p), timeout, fresh);
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
            match build(fresh).and_then(|req| run(self.agent, req, &wire, payload)) {
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
                Err(ureq::Error::Io(e)) if is_out_of_fds(&e) && !is_cancelled(self.cancel) => {
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

    /// What [`Sender::send`] returns for ureq's outcome: the response
    /// (traced with `-v`), or the error in our kinds, naming the `proxy`
    /// when the failure may be its.
    fn answered(
        &self,
        response: Result<Response<ureq::Body>, ureq::Error>,
        proxy: Option<&(Proxy, String)>,
    ) -> Result<Response<ureq::Body>, FetchError> {
        if let Ok(r) = &response
            && trace::enabled()
        {
            trace_response(r);
        }
        response.map_err(|e| {
            let mut error = classify(&e, self.config);
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
    pub(super) fn proxy_for(&self, uri: &Uri) -> Result<Option<&'a (Proxy, String)>, FetchError> {
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
}

/// Runs `req` as `wire` (see [`wire_method`]) with `payload` as its body
/// (`Content-Length`, never chunked), or none.
fn run(
    agent: &Agent,
    req: ureq::http::Request<()>,
    wire: &Method,
    payload: Option<&[u8]>,
) -> Result<Response<ureq::Body>, ureq::Error> {
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
