//! Unit tests of proxy selection: every rule of curl's reading.

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
    config.select(https, uri.host().unwrap()).map(|i| match i {
        Ok(i) => format!("{}:{}", config.proxies()[i].host, config.proxies()[i].port),
        Err(e) => format!("error: {e}"),
    })
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
    assert!(!p.to_string().contains("p:w"));
    assert!(!format!("{p:?}").contains("p:w"));
    let p = ProxyUrl::parse("x", "SOCKS5h://u:p@proxy").unwrap();
    assert_eq!(
        (p.kind, p.to_string().as_str()),
        (ProxyKind::Socks5h, "socks5h://proxy:1080")
    );
    let p = ProxyUrl::parse("x", "socks5://proxy:9050").unwrap();
    assert_eq!(p.kind, ProxyKind::Socks5);
    for bad in [
        "socks4://proxy:1080",
        "socks://proxy:1080",
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
    let e = ProxyConfig::from_env(Some("socks4://u:hunter2@p"), None, env(&[])).unwrap_err();
    assert!(e.starts_with("--proxy: "), "{e}");
    assert!(e.contains("socks4"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    // From a variable: an error for the URLs it would serve, none for the
    // others, and never for a run that does not use it.
    let c = config(&[
        ("https_proxy", "socks4://u:hunter2@p"),
        ("no_proxy", "local.example"),
    ]);
    let e = route(&c, "https://a/").unwrap();
    assert!(e.starts_with("error: https_proxy: "), "{e}");
    assert!(e.contains("socks4") && !e.contains("hunter2"), "{e}");
    assert_eq!(route(&c, "https://local.example/"), None);
    assert_eq!(route(&c, "http://a/"), None);
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
