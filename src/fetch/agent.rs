//! The one `ureq::Agent` every worker shares, set up for a fetcher.
//!
//! ureq 3's defaults do not suit a fetcher (see `docs/ureq.md`): no
//! deadlines, 4xx/5xx raised as errors, an idle pool of 3 connections per
//! host, 128 KiB buffers per connection and a resolver that spawns a thread
//! per lookup. Each is set here.

use anyhow::{Context, Result};
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};

use super::RequestConfig;
use super::resolver::CachingResolver;
use super::transport::{MAX_HEAD, TcpConnector};

/// ureq's per-connection buffers for TLS connections (plain TCP ones size
/// their own, see `transport`). ureq's default is 128 KiB in and 128 KiB out,
/// all of it touched: 250 MiB for a thousand connections (see
/// `BENCHMARKS.md`).
const INPUT_BUFFER: usize = 16 * 1024;
const OUTPUT_BUFFER: usize = 16 * 1024;
/// A request-level `input_buffer_size` that makes ureq open a fresh
/// connection, outside the pool, for one request (see `Fetcher::run`).
/// ureq keeps apart requests whose configs differ in it; our connectors
/// size their buffers themselves, so it changes nothing else.
pub const FRESH_CONNECTION_MARK: usize = INPUT_BUFFER + 1;

/// Builds the shared agent. Fails only on a bad `--cacert`.
pub fn build(config: &RequestConfig) -> Result<Agent> {
    let tls = TlsConfig::builder()
        .root_certs(root_certs(config)?)
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
        .max_response_header_size(MAX_HEAD)
        .tls_config(tls)
        .build();
    // As ureq's default chain (HTTP CONNECT proxies, then a socket, then
    // TLS), with our own socket layer.
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector)
            .chain(RustlsConnector::default());
    Ok(Agent::with_parts(
        agent_config,
        connector,
        CachingResolver::default(),
    ))
}

/// The bundled Mozilla roots, plus the certificates of `--cacert`.
fn root_certs(config: &RequestConfig) -> Result<RootCerts> {
    let Some(path) = &config.cacert else {
        return Ok(RootCerts::WebPki);
    };
    let pem =
        std::fs::read(path).with_context(|| format!("--cacert: cannot read {}", path.display()))?;
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
    Ok(RootCerts::from(certs))
}
