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
use ureq::Agent;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector};

use super::RequestConfig;
use super::resolver::CachingResolver;
use super::tls::{TlsConnector, TlsSettings};
use super::transport::{MAX_HEAD, TcpConnector};

/// ureq's `input_buffer_size` for the agent. Our connectors size their
/// buffers themselves and ignore it; it only tells requests apart (see
/// [`FRESH_CONNECTION_MARK`]).
const INPUT_BUFFER: usize = 16 * 1024;
/// A request-level `input_buffer_size` that makes ureq open a fresh
/// connection, outside the pool, for one request (see `Fetcher::run`).
/// ureq keeps apart requests whose configs differ in it; our connectors
/// size their buffers themselves, so it changes nothing else.
pub const FRESH_CONNECTION_MARK: usize = INPUT_BUFFER + 1;

/// Builds the shared agent. Fails only on a bad `--cacert`.
pub fn build(config: &RequestConfig) -> Result<Agent> {
    let tls = TlsSettings {
        extra: cacert(config)?,
        insecure: config.insecure,
    };
    let workers = config.workers.get();
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
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector)
            .chain(TlsConnector::new(tls));
    Ok(Agent::with_parts(
        agent_config,
        connector,
        CachingResolver::default(),
    ))
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
