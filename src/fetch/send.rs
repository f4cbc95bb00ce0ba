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
use crate::result::{ErrorKind, FetchError};

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

impl Sender<'_> {
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
        let proxy = self.proxy_for(uri);
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
        let mut longest_row = self.longest_row(uri, method);
        let mut fresh = false;
        let response = loop {
            transport::begin(longest_row);
            match build(fresh).and_then(|req| self.agent.run(req)) {
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
        response.map_err(|e| {
            let mut error = classify(&e, self.config);
            if let Some((_, shown)) = proxy
                && matches!(error.kind, ErrorKind::Dns | ErrorKind::Connect)
            {
                error.message = format!("{} (proxy {shown})", error.message);
            }
            error
        })
    }

    /// The proxy for a request to `uri`, if it goes through one.
    fn proxy_for(&self, uri: &Uri) -> Option<&(Proxy, String)> {
        if self.proxies.is_empty() {
            return None;
        }
        let https = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let index = self.config.proxy.select(https, uri.host()?)?;
        self.proxies.get(index)
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
