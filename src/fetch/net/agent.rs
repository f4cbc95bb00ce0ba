//! The one `ureq::Agent` every worker shares, set up for a fetcher.
//!
//! ureq 3's defaults do not suit a fetcher (see `docs/ureq.md`): no
//! deadlines, 4xx/5xx raised as errors, an idle pool of 3 connections per
//! host, 128 KiB buffers per connection and a resolver that spawns a thread
//! per lookup. Each is set here; the connection layer under the agent is
//! ours (`transport` for TCP, `tls` for TLS).

use anyhow::{Context, Result};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::num::NonZeroUsize;
use std::time::Duration;

use ureq::Error;
use ureq::http::Request;
use ureq::unversioned::transport::{
    ConnectProxyConnector, ConnectionDetails, Connector, Transport,
};
use ureq::{Agent, Proxy};

use super::resolver::CachingResolver;
use super::reuse::Reuse;
use super::tls::{TlsConnector, TlsSettings};
use super::transport::{MAX_HEAD, TcpConnector};
use crate::fetch::config::RequestConfig;

/// ureq's `input_buffer_size` for the agent. Our connectors size their
/// buffers themselves and ignore it; it only tells requests apart (see
/// [`FRESH_CONNECTION_MARK`]).
const INPUT_BUFFER: usize = 16 * 1024;
/// A request-level `input_buffer_size` that makes ureq open a fresh
/// connection, outside the pool, for one request (see [`configure`]).
/// ureq keeps apart requests whose configs differ in it; our connectors
/// size their buffers themselves, so it changes nothing else.
const FRESH_CONNECTION_MARK: usize = INPUT_BUFFER + 1;

/// Builds the shared agent. Fails only on a bad `--cacert`.
pub fn build(config: &RequestConfig, workers: NonZeroUsize) -> Result<Agent> {
    let tls = TlsSettings {
        extra: cacert(config)?,
        insecure: config.insecure,
    };
    let workers = workers.get();
    let agent_config = Agent::config_builder()
        .http_status_as_error(false)
        // Redirects are ours (`redirect`), proxies are set per request
        // (`Fetcher::send`): ureq must not also read the environment.
        .max_redirects(0)
        .proxy(None)
        .user_agent(config.user_agent.as_str())
        .timeout_global(Some(config.timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_idle_connections(workers.max(10))
        .max_idle_connections_per_host(workers.max(3))
        .input_buffer_size(INPUT_BUFFER)
        .max_response_header_size(MAX_HEAD)
        .build();
    // As ureq's default chain (HTTP CONNECT proxies, then a socket, then
    // TLS), with our own socket and TLS layers.
    // Idle connections stay with the worker that used them (`reuse`).
    let connector = Reuse::new(
        ().chain(ProxyConnector::default())
            .chain(TcpConnector)
            .chain(TlsConnector::new(tls)),
        workers,
    );
    Ok(Agent::with_parts(
        agent_config,
        connector,
        CachingResolver::default(),
    ))
}

/// `req` with request-level settings: a proxy, a shorter `--timeout` (a
/// later hop of a redirect chain), or `fresh`: a request-level config that
/// differs from the agent's in a setting our connectors ignore keeps ureq
/// from taking a connection out of the pool (and from putting this one
/// back).
///
/// Out of line: ureq's config builder moves copies of its large config
/// around, and inlined into the fetch they would sit on every worker's
/// stack under every request, needed or not.
#[inline(never)]
pub fn configure(
    agent: &Agent,
    req: Request<()>,
    proxy: Option<&Proxy>,
    timeout: Option<Duration>,
    fresh: bool,
) -> Request<()> {
    let mut config = agent.configure_request(req);
    if let Some(p) = proxy {
        config = config.proxy(Some(p.clone()));
    }
    if timeout.is_some() {
        config = config.timeout_global(timeout);
    }
    if fresh {
        config = config.input_buffer_size(FRESH_CONNECTION_MARK);
    }
    config.build()
}

/// Whether `config` is that of a request [`configure`] marked `fresh`.
pub(super) fn is_fresh(config: &ureq::config::Config) -> bool {
    config.input_buffer_size() == FRESH_CONNECTION_MARK
}

/// ureq's `ConnectProxyConnector`, called out of line.
///
/// ureq's chain inlines every connector into one function, so each one's
/// locals add up in a single frame on every worker's stack, although they
/// run one after the other. ureq's proxy connector alone has over 2 KiB of
/// them (it formats a `CONNECT` request), even with no proxy set; behind
/// this wrapper its frame only exists while it runs. Our own connectors
/// (`TcpConnector`, `TlsConnector`) are out of line for the same reason.
#[derive(Debug, Default)]
struct ProxyConnector(ConnectProxyConnector);

impl<In: Transport> Connector<In> for ProxyConnector {
    type Out = <ConnectProxyConnector as Connector<In>>::Out;

    #[inline(never)]
    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        self.0.connect(details, chained)
    }
}

/// The certificates of `--cacert` (none without it).
fn cacert(config: &RequestConfig) -> Result<Vec<CertificateDer<'static>>> {
    let Some(path) = &config.cacert else {
        return Ok(Vec::new());
    };
    let pem =
        std::fs::read(path).with_context(|| format!("--cacert: cannot read {}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    anyhow::ensure!(
        !certs.is_empty(),
        "--cacert: no PEM certificate found in {}",
        path.display()
    );
    Ok(certs)
}
