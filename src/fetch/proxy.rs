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
//! - A proxy is `[http://|https://][user:password@]host[:port]`; the port
//!   defaults to 1080 for `http://` and 443 for `https://`, as in curl.
//!   Other schemes (SOCKS) are refused up front rather than bypassed.

use std::fmt;
use std::net::IpAddr;

use ureq::http::Uri;

/// One proxy server: where it is and the credentials it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// TLS to the proxy itself (`https://` proxy).
    pub secure: bool,
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
        let secure = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(bad(&format!(
                    "uses {other}://, which is not supported: use an http:// or https:// proxy"
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
            None if secure => 443,
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
            secure,
            host: host.to_ascii_lowercase(),
            port,
            user,
            password,
        })
    }

    /// Whether the proxy wants credentials (`Proxy-Authorization: Basic`).
    pub fn has_credentials(&self) -> bool {
        self.user.is_some() || self.password.is_some()
    }
}

/// `http://host:port`, never the credentials.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
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
    /// Index in `proxies` of the proxy for `http://` URLs.
    http: Option<usize>,
    /// Index in `proxies` of the proxy for `https://` URLs.
    https: Option<usize>,
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
        config.http = http.map(|(n, v)| config.add(&n, &v)).transpose()?;
        config.https = https.map(|(n, v)| config.add(&n, &v)).transpose()?;
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
    /// `None`: connect directly.
    pub fn select(&self, https: bool, host: &str) -> Option<usize> {
        let index = if https { self.https } else { self.http }?;
        (!self.no_proxy.matches(host)).then_some(index)
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
    super::redirect::escaped(&shown)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// The proxy chosen for `url`'s scheme and host, as `host:port`.
    fn route(config: &ProxyConfig, url: &str) -> Option<String> {
        let uri: Uri = url.parse().unwrap();
        let https = uri.scheme_str() == Some("https");
        config
            .select(https, uri.host().unwrap())
            .map(|i| format!("{}:{}", config.proxies()[i].host, config.proxies()[i].port))
    }

    fn config(vars: &[(&str, &str)]) -> ProxyConfig {
        ProxyConfig::from_env(None, None, env(vars)).unwrap()
    }

    #[test]
    fn http_urls_use_lowercase_http_proxy_only() {
        let c = config(&[("http_proxy", "http://p:1")]);
        assert_eq!(route(&c, "http://a/").as_deref(), Some("p:1"));
        assert_eq!(route(&c, "https://a/"), None);
        // HTTP_PROXY is never read (httpoxy); HTTPS_PROXY is for https only.
        let c = config(&[("HTTP_PROXY", "http://p:1"), ("HTTPS_PROXY", "http://q:2")]);
        assert_eq!(route(&c, "http://a/"), None);
        assert_eq!(route(&c, "https://a/").as_deref(), Some("q:2"));
    }

    #[test]
    fn https_urls_use_either_case_lowercase_first() {
        let c = config(&[
            ("https_proxy", "http://low:1"),
            ("HTTPS_PROXY", "http://up:2"),
        ]);
        assert_eq!(route(&c, "https://a/").as_deref(), Some("low:1"));
        let c = config(&[("HTTPS_PROXY", "http://up:2")]);
        assert_eq!(route(&c, "https://a/").as_deref(), Some("up:2"));
        let c = config(&[("https_proxy", "http://p:1")]);
        assert_eq!(route(&c, "http://a/"), None);
    }

    #[test]
    fn all_proxy_when_the_scheme_one_is_unset_or_empty() {
        let c = config(&[("all_proxy", "http://all:1"), ("ALL_PROXY", "http://ALL:2")]);
        assert_eq!(route(&c, "http://a/").as_deref(), Some("all:1"));
        assert_eq!(route(&c, "https://a/").as_deref(), Some("all:1"));
        let c = config(&[("ALL_PROXY", "http://all:2"), ("http_proxy", "http://h:1")]);
        assert_eq!(route(&c, "http://a/").as_deref(), Some("h:1"));
        assert_eq!(route(&c, "https://a/").as_deref(), Some("all:2"));
        let c = config(&[("http_proxy", ""), ("all_proxy", "http://all:1")]);
        assert_eq!(route(&c, "http://a/").as_deref(), Some("all:1"));
        assert_eq!(config(&[]), ProxyConfig::default());
        assert!(config(&[]).proxies().is_empty());
    }

    #[test]
    fn one_entry_per_distinct_proxy() {
        let c = config(&[("all_proxy", "http://p:1")]);
        assert_eq!(c.proxies().len(), 1);
        let c = config(&[("http_proxy", "p:1"), ("https_proxy", "https://p:1")]);
        assert_eq!(c.proxies().len(), 2);
    }

    #[test]
    fn flags_override_the_environment() {
        let vars = env(&[
            ("http_proxy", "http://envp:1"),
            ("no_proxy", "flagged.example"),
        ]);
        let c = ProxyConfig::from_env(Some("http://flag:9"), None, &vars).unwrap();
        assert_eq!(route(&c, "http://a/").as_deref(), Some("flag:9"));
        assert_eq!(route(&c, "https://a/").as_deref(), Some("flag:9"));
        assert_eq!(route(&c, "http://flagged.example/"), None);
        let c = ProxyConfig::from_env(Some(""), None, &vars).unwrap();
        assert_eq!(route(&c, "http://a/"), None);
        let c = ProxyConfig::from_env(None, Some(""), &vars).unwrap();
        assert_eq!(
            route(&c, "http://flagged.example/").as_deref(),
            Some("envp:1")
        );
        let c = ProxyConfig::from_env(None, Some("a"), &vars).unwrap();
        assert_eq!(route(&c, "http://a/"), None);
    }

    #[test]
    fn no_proxy_lowercase_first_then_uppercase() {
        let c = config(&[
            ("http_proxy", "p:1"),
            ("no_proxy", "low"),
            ("NO_PROXY", "up"),
        ]);
        assert_eq!(route(&c, "http://low/"), None);
        assert!(route(&c, "http://up/").is_some());
        let c = config(&[("http_proxy", "p:1"), ("NO_PROXY", "up")]);
        assert_eq!(route(&c, "http://up/"), None);
    }

    #[test]
    fn no_proxy_entries_are_trimmed_names_domains_ips_and_star() {
        let n = NoProxy::parse(
            " a.example , .b.example,*.c.example, 10.1.2.3 ,[::1], 192.168.0.0/16, fd00::/8,,",
        );
        for direct in [
            "a.example",
            "x.a.example",
            "A.EXAMPLE.",
            "b.example",
            "y.b.example",
            "c.example",
            "z.c.example",
            "10.1.2.3",
            "[::1]",
            "192.168.7.9",
            "[fd12::5]",
            "[::ffff:192.168.1.1]",
        ] {
            assert!(n.matches(direct), "{direct}");
        }
        for proxied in [
            "xa.example",
            "a.example.org",
            "example",
            "10.1.2.4",
            "192.169.0.1",
            "[::2]",
            "[fe80::1]",
        ] {
            assert!(!n.matches(proxied), "{proxied}");
        }
        assert!(NoProxy::parse("*").matches("anything.example"));
        assert!(NoProxy::parse("a, *").matches("[::1]"));
        assert!(!NoProxy::parse("").matches("a"));
        // A name entry does not match an address, nor a range a name.
        assert!(!NoProxy::parse("0.1").matches("127.0.0.1"));
        assert!(NoProxy::parse("0.0.0.0/0").matches("127.0.0.1"));
        assert!(!NoProxy::parse("0.0.0.0/0").matches("localhost"));
        assert!(!NoProxy::parse("10.0.0.0/33").matches("10.0.0.1"));
    }

    #[test]
    fn proxy_urls_parse_as_curl_reads_them() {
        let p = ProxyUrl::parse("x", "proxy.example").unwrap();
        assert_eq!(p.to_string(), "http://proxy.example:1080");
        let p = ProxyUrl::parse("x", "https://Proxy.Example").unwrap();
        assert_eq!(p.to_string(), "https://proxy.example:443");
        let p = ProxyUrl::parse("x", "http://proxy:80/ignored").unwrap();
        assert_eq!(p.port, 80);
        let p = ProxyUrl::parse("x", "http://[::1]:3128").unwrap();
        assert_eq!(p.to_string(), "http://[::1]:3128");
        let p = ProxyUrl::parse("x", "http://us%40er:p%3Aw@proxy:3128").unwrap();
        assert_eq!(p.user.as_deref(), Some("us@er"));
        assert_eq!(p.password.as_deref(), Some("p:w"));
        assert!(p.has_credentials());
        assert!(!p.to_string().contains("p:w"));
        assert!(!format!("{p:?}").contains("p:w"));
        for bad in [
            "socks5://proxy:1080",
            "ftp://proxy",
            "http://",
            "http://proxy:0",
            "http://proxy:99999",
            "http://a b",
        ] {
            assert!(ProxyUrl::parse("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_source_and_hide_the_password() {
        let e = ProxyConfig::from_env(None, None, env(&[("https_proxy", "socks5://u:hunter2@p")]))
            .unwrap_err();
        assert!(e.starts_with("https_proxy: "), "{e}");
        assert!(e.contains("socks5"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = ProxyUrl::parse("--proxy", "u:hunter2@bad host").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("***@bad host"), "{e}");
        assert_eq!(shown("http://u:pw@h:1/x@y"), "http://***@h:1/x@y");
        assert_eq!(shown("h\u{1b}[31m"), "h\\u{1b}[31m");
    }

    #[test]
    fn secrets_are_the_passwords() {
        let c = config(&[("all_proxy", "http://u:s%65cret@p:1")]);
        assert_eq!(c.secrets().collect::<Vec<_>>(), ["secret"]);
    }
}
