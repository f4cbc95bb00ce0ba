//! Which proxy, if any, each request goes through: the environment read as
//! curl reads it, `--proxy` and `--noproxy` over it.
//!
//! ureq reads the environment its own way (`HTTPS_PROXY` alone is used for
//! `http://` URLs, `http_proxy` for `https://`, `NO_PROXY` entries are not
//! trimmed), so the agent is built without a proxy and [`ProxyConfig`]
//! picks one per request (see `Fetcher::send`). curl's rules:
//!
//! - `http://` URLs: `http_proxy`, lowercase only (an `HTTP_PROXY` can be
//!   set by a CGI client's `Proxy:` header, "httpoxy"); `https://` URLs:
//!   `https_proxy`, then `HTTPS_PROXY`; either scheme then `all_proxy`,
//!   then `ALL_PROXY`. An empty variable counts as unset.
//! - `no_proxy`, then `NO_PROXY`: a comma list (spaces trimmed) of host
//!   names and domains (`example.com` and `.example.com` both match
//!   `example.com` and `sub.example.com`), IP addresses, CIDR ranges
//!   (`10.0.0.0/8`, `fd00::/8`), or `*` for every host.
//! - `--proxy URL` replaces the variables for both schemes (`--proxy ''`:
//!   no proxy at all); `--noproxy LIST` replaces `no_proxy`.
//! - A proxy is `[scheme://][user:password@]host[:port]` with scheme
//!   `http` (the default), `https`, `socks5` (the target's name resolved
//!   here) or `socks5h` (resolved by the proxy); the port defaults to 1080,
//!   443 for `https://`, as in curl.
//! - A proxy that cannot be used (another scheme, a bad URL) is a usage
//!   error when given with `--proxy`. From a variable it is an error only
//!   for the URLs it would serve (a `connect` result naming the variable),
//!   so one that `no_proxy` exempts every URL from never stops a run.

use std::fmt;
use std::net::IpAddr;

use ureq::http::Uri;
use ureq::{Proxy, ProxyProtocol};

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP `CONNECT` tunnels (`http://`).
    Http,
    /// HTTP `CONNECT` tunnels over TLS to the proxy (`https://`).
    Https,
    /// SOCKS5, given the address the name resolved to here (`socks5://`).
    Socks5,
    /// SOCKS5, given the host name to resolve (`socks5h://`).
    Socks5h,
}

impl ProxyKind {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            ProxyKind::Http => "http",
            ProxyKind::Https => "https",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        }
    }
}

/// One proxy server: where it is and the credentials it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// How it is spoken to.
    pub kind: ProxyKind,
    /// Host name or IP literal (IPv6 in brackets), lowercase.
    pub host: String,
    /// Port of the proxy.
    pub port: u16,
    /// Percent-decoded user name, if any.
    pub user: Option<String>,
    /// Percent-decoded password, if any: never shown.
    pub password: Option<String>,
}

impl ProxyUrl {
    /// Parses a proxy as curl takes it; the error names `source` (the
    /// flag or variable) and shows the value with its password hidden.
    pub fn parse(source: &str, value: &str) -> Result<ProxyUrl, String> {
        let bad = |why: &str| format!("{source}: {} {why}", shown(value));
        let value = value.trim();
        let with_scheme = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|_| bad("is not a valid proxy URL"))?;
        let kind = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => ProxyKind::Http,
            Some("https") => ProxyKind::Https,
            Some("socks5") => ProxyKind::Socks5,
            Some("socks5h") => ProxyKind::Socks5h,
            Some(other) => {
                return Err(bad(&format!(
                    "uses {other}://, which is not supported: use an http://, https://, \
                     socks5:// or socks5h:// proxy"
                )));
            }
            None => return Err(bad("is not a valid proxy URL")),
        };
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        // `Authority::port` is `None` for a port that does not fit in a u16.
        let host_port = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, h)| h);
        let port = match host_port
            .get(host.len()..)
            .and_then(|p| p.strip_prefix(':'))
        {
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("has a port outside 1-65535")),
                Ok(port) => port,
            },
            None if kind == ProxyKind::Https => 443,
            None => 1080,
        };
        let (user, password) = match authority.as_str().rsplit_once('@') {
            None => (None, None),
            Some((userinfo, _)) => {
                let (u, p) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                let decode = |s: &str| {
                    percent_decode(s).ok_or_else(|| bad("has credentials that are not UTF-8"))
                };
                (Some(decode(u)?), p.map(decode).transpose()?)
            }
        };
        Ok(ProxyUrl {
            kind,
            host: host.to_ascii_lowercase(),
            port,
            user,
            password,
        })
    }
}

/// `scheme://host:port`, never the credentials.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.kind.scheme(), self.host, self.port)
    }
}

/// Like `Display`: a `Debug` print must not leak the password either.
impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// The proxy settings of a run: at most one proxy per scheme, and the
/// hosts that bypass them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The distinct proxies, so each is set up once.
    proxies: Vec<ProxyUrl>,
    /// Index in `proxies` of the proxy for `http://` URLs, or why the
    /// variable naming it cannot be used.
    http: Option<Result<usize, String>>,
    /// The same for `https://` URLs.
    https: Option<Result<usize, String>>,
    /// Hosts reached directly.
    no_proxy: NoProxy,
}

impl ProxyConfig {
    /// Reads the settings: `proxy_flag` (`--proxy`) and `noproxy_flag`
    /// (`--noproxy`) win over the variables that `env` looks up. An error
    /// names the flag or variable, with any password hidden.
    pub fn from_env(
        proxy_flag: Option<&str>,
        noproxy_flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ProxyConfig, String> {
        // curl's getenv treats an empty value as unset.
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let first = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|&n| var(n).map(|v| (n.to_owned(), v)))
        };
        let (http, https) = match proxy_flag {
            Some(p) if p.trim().is_empty() => (None, None),
            Some(p) => {
                let both = ("--proxy".to_owned(), p.to_owned());
                (Some(both.clone()), Some(both))
            }
            None => (
                first(&["http_proxy", "all_proxy", "ALL_PROXY"]),
                first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
            ),
        };
        let no_proxy = match noproxy_flag {
            Some(list) => NoProxy::parse(list),
            None => first(&["no_proxy", "NO_PROXY"])
                .map(|(_, list)| NoProxy::parse(&list))
                .unwrap_or_default(),
        };
        let mut config = ProxyConfig {
            no_proxy,
            ..ProxyConfig::default()
        };
        // A bad --proxy stops the run; a bad variable fails only the URLs
        // it would serve.
        let mut add = |(name, value): (String, String)| match config.add(&name, &value) {
            Err(e) if name == "--proxy" => Err(e),
            other => Ok(other),
        };
        let http = http.map(&mut add).transpose()?;
        let https = https.map(&mut add).transpose()?;
        config.http = http;
        config.https = https;
        Ok(config)
    }

    /// Parses a proxy and returns its index, reusing an equal one.
    fn add(&mut self, source: &str, value: &str) -> Result<usize, String> {
        let proxy = ProxyUrl::parse(source, value)?;
        if let Some(i) = self.proxies.iter().position(|p| *p == proxy) {
            return Ok(i);
        }
        self.proxies.push(proxy);
        Ok(self.proxies.len() - 1)
    }

    /// The distinct proxies; [`ProxyConfig::select`] returns indexes into it.
    pub fn proxies(&self) -> &[ProxyUrl] {
        &self.proxies
    }

    /// The proxy (index in [`ProxyConfig::proxies`]) for a request to
    /// `host` (as in a URI: IPv6 in brackets) over https or plain http;
    /// `None`: connect directly; an error: the variable that names its
    /// proxy cannot be used, and why.
    pub fn select(&self, https: bool, host: &str) -> Option<Result<usize, &str>> {
        let chosen = if https { &self.https } else { &self.http };
        let chosen = chosen.as_ref()?;
        if self.no_proxy.matches(host) {
            return None;
        }
        Some(chosen.as_ref().copied().map_err(String::as_str))
    }

    /// The proxies' (decoded) passwords, to scrub from library messages.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.proxies.iter().filter_map(|p| p.password.as_deref())
    }
}

/// The hosts that bypass the proxy (`no_proxy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    /// `*`: every host.
    all: bool,
    /// Domains, lowercase, without a leading `.` or `*.` or a trailing `.`.
    domains: Vec<String>,
    /// Addresses and ranges: an address is a range of its full length.
    nets: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    /// Parses a comma-separated list; entries are trimmed and empty ones
    /// skipped. An entry that is neither an address, a range nor `*` is a
    /// domain (as in curl, it never fails).
    pub fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                no_proxy.all = true;
            } else if let Some(net) = parse_net(entry) {
                no_proxy.nets.push(net);
            } else {
                let domain = entry
                    .strip_prefix("*.")
                    .or_else(|| entry.strip_prefix('.'))
                    .unwrap_or(entry);
                let domain = domain.strip_suffix('.').unwrap_or(domain);
                if !domain.is_empty() {
                    no_proxy.domains.push(domain.to_ascii_lowercase());
                }
            }
        }
        no_proxy
    }

    /// Whether `host` (a URI host: a name, an IPv4 literal or a bracketed
    /// IPv6 literal) is reached directly. An IP host matches only
    /// addresses and ranges, a name only domains.
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.nets.iter().any(|&(net, len)| in_net(ip, net, len));
        }
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        self.domains.iter().any(|d| {
            name == *d
                || (name.len() > d.len()
                    && name.ends_with(d.as_str())
                    && name.as_bytes()[name.len() - d.len() - 1] == b'.')
        })
    }
}

/// `1.2.3.4`, `[::1]`, `::1`, `10.0.0.0/8` or `fd00::/8`.
fn parse_net(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match entry.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip, len))
}

/// Whether `ip` lies in `net/len` (an IPv4-mapped IPv6 address counts as
/// its IPv4 address).
fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let len = u32::from(len);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (ip >> shift) == (net >> shift)
}

/// Percent-decodes `s`; `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits: at most 255.
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A proxy value for a message: whatever precedes the last `@` of its
/// authority (the credentials) is hidden, scheme or not.
pub fn shown(value: &str) -> String {
    let value = value.trim();
    let start = value.find("://").map_or(0, |i| i + 3);
    let end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    let shown = match value[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &value[start + at..]),
        None => value.to_owned(),
    };
    crate::text::escape::all_as_unicode(&shown)
}

/// ureq's form of a proxy: ureq tunnels every request through an HTTP
/// proxy with `CONNECT host:port` (the only way ureq 3.5 speaks to one);
/// SOCKS5 is spoken by our connector (`net::socks`), which reads the
/// protocol and whether the target is resolved here from it.
pub(in crate::fetch) fn ureq_proxy(p: &ProxyUrl) -> anyhow::Result<Proxy> {
    let protocol = match p.kind {
        ProxyKind::Http => ProxyProtocol::Http,
        ProxyKind::Https => ProxyProtocol::Https,
        ProxyKind::Socks5 => ProxyProtocol::Socks5,
        ProxyKind::Socks5h => ProxyProtocol::Socks5h,
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

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
