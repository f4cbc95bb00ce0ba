//! A name resolver for the shared agent that does not spawn a thread per
//! request.
//!
//! ureq's default resolver looks up every request's host, even an IP
//! literal, and with a timeout set it does so on a freshly spawned thread:
//! one thread spawn per request, most of the client's CPU on loopback (see
//! `docs/ureq.md`). This one answers IP literals at once and caches looked-up
//! names for [`TTL`], falling back to ureq's resolver for the lookup itself.
//! The trait lives in ureq's `unversioned` module, outside semver: ureq's
//! minor version is pinned in `Cargo.toml` and only this module touches it.

use crate::result::trace::{self, Kind};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a looked-up name is reused.
pub const TTL: Duration = Duration::from_secs(30);

/// Names cached at most; the cache is emptied when it would grow past this.
const MAX_NAMES: usize = 4096;

/// IP literals answered directly, names cached for [`TTL`].
#[derive(Debug, Default)]
pub struct CachingResolver {
    lookup: DefaultResolver,
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some((host, port)) = crate::input::uri::host_port(uri) else {
            return self.lookup_name(uri, config, timeout);
        };
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        self.resolve_name(host, port, uri, config, timeout)
    }
}

impl CachingResolver {
    /// A name: from the cache, or looked up. Out of line, as the lookup:
    /// ureq calls the resolver for every request, deep in its own frames,
    /// and an IP literal needs none of this on the worker's stack.
    #[inline(never)]
    fn resolve_name(
        &self,
        host: &str,
        port: u16,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!("{host}:{port}");
        if let Some((at, addrs)) = self.cache().get(&key)
            && at.elapsed() < TTL
        {
            trace::emit(Kind::Info, || {
                format!("resolved {host}: {} (cached)", list(addrs))
            });
            return Ok(addrs.clone());
        }
        let addrs = match self.lookup_name(uri, config, timeout) {
            Ok(addrs) => addrs,
            // The system resolver reports an unknown name as a plain I/O
            // error; say what it is so it is classified as `dns`.
            Err(ureq::Error::Io(_)) => return Err(ureq::Error::HostNotFound),
            Err(e) => return Err(e),
        };
        let mut cache = self.cache();
        if cache.len() >= MAX_NAMES {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), addrs.clone()));
        trace::emit(Kind::Info, || format!("resolved {host}: {}", list(&addrs)));
        Ok(addrs)
    }

    /// ureq's own lookup (on a thread of its own, to keep to the timeout).
    #[inline(never)]
    fn lookup_name(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.lookup.resolve(uri, config, timeout)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, ResolvedSocketAddrs)>> {
        crate::lock::lock(&self.cache)
    }
}

/// The addresses of a lookup, for the trace.
fn list(addrs: &ResolvedSocketAddrs) -> String {
    let all: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    fn resolve(url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let timeout = NextTimeout {
            after: UreqDuration::Exact(Duration::from_secs(5)),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        let r = CachingResolver::default();
        r.resolve(&url.parse().unwrap(), &Config::default(), timeout)
            .map(|a| a.iter().copied().collect())
    }

    #[test]
    fn answers_ip_literals_without_lookup() {
        assert_eq!(
            resolve("http://127.0.0.1:8080/").unwrap(),
            ["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(
            resolve("https://127.0.0.1/").unwrap(),
            ["127.0.0.1:443".parse().unwrap()]
        );
        assert_eq!(
            resolve("http://[::1]/").unwrap(),
            ["[::1]:80".parse().unwrap()]
        );
    }
}
