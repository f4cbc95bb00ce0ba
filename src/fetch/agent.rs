//! The one `ureq::Agent` every worker shares, set up for a fetcher.
//!
//! ureq 3's defaults do not suit a fetcher (see `docs/ureq.md`): no
//! deadlines, 4xx/5xx raised as errors, an idle pool of 3 connections per
//! host, 128 KiB buffers per connection and a resolver that spawns a thread
//! per lookup. Each is set here.

use anyhow::{Context, Result};
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::transport::DefaultConnector;

use super::RequestConfig;
use super::resolver::CachingResolver;

/// ureq's per-connection input buffer, and so the largest response head
/// accepted. ureq's default is 128 KiB in and 128 KiB out, all of it touched:
/// 250 MiB for a thousand connections (see `BENCHMARKS.md`).
pub const INPUT_BUFFER: usize = 16 * 1024;
/// ureq's per-connection output buffer, and so the largest request head
/// (request line and headers).
pub const OUTPUT_BUFFER: usize = 16 * 1024;

/// Builds the shared agent. Fails only on a bad `--cacert`.
pub fn build(config: &RequestConfig) -> Result<Agent> {
    let tls = TlsConfig::builder()
        .root_certs(root_certs(config)?)
        .disable_verification(config.insecure)
        .build();
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
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(INPUT_BUFFER)
        .tls_config(tls)
        .build();
    Ok(Agent::with_parts(
        agent_config,
        DefaultConnector::default(),
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
