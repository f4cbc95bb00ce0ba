//! The fetcher's settings, built by the command line: how requests are
//! made ([`RequestConfig`]) and what a [`Fetcher`](super::Fetcher) is built
//! from ([`FetchConfig`]).

use std::path::PathBuf;
use std::time::Duration;

use ureq::http::Method;

use super::net::proxy::ProxyConfig;
use crate::result::accept::Accept;
use crate::store::StoreConfig;

/// How requests are made: the HTTP settings of the command line.
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
    pub max_size: Option<u64>,
}

/// What a [`Fetcher`](super::Fetcher) is built from: each part's settings in its own type.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// How requests are made.
    pub request: RequestConfig,
    /// What becomes of the bodies.
    pub store: StoreConfig,
    /// Statuses that count as success.
    pub accept: Accept,
    /// `--rate`: requests started per second, over all workers.
    pub rate: Option<f64>,
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
        }
    }
}

#[cfg(test)]
impl FetchConfig {
    /// Defaults for unit tests.
    pub(crate) fn for_tests() -> Self {
        FetchConfig {
            request: RequestConfig::for_tests(),
            store: StoreConfig::default(),
            accept: Accept::parse("200-399").unwrap_or_else(|e| panic!("{e}")),
            rate: None,
        }
    }
}
