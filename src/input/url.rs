//! Which entries are fetchable URLs, and the exact form sent on the wire.
//!
//! An entry is parsed as the WHATWG URL Standard says, as a browser parses
//! an `href` (the `url` crate): raw spaces and quotes are percent-encoded,
//! backslashes are slashes, `..` segments are resolved, tabs and newlines
//! are dropped, host names are lowercased and converted to their `xn--`
//! form (IDNA), numeric hosts such as `0x7f.1` are read as IPv4. What it
//! accepts with the scheme `http` or `https` is fetched, as its
//! serialization without the fragment (a fragment is never sent).

use std::borrow::Cow;

use http::Uri;
use url::{ParseError, Url};

/// Longest URL shown in a message or an output line for a rejected entry.
const SHOWN_MAX: usize = 200;

/// Longest URI an [`http::Uri`] holds.
const MAX_URI: usize = u16::MAX as usize - 1;

/// Checks that `s` is an absolute `http`/`https` URL fetchpool can request
/// and returns the URI to request: the WHATWG serialization of `s`, without
/// its fragment. The error says what is wrong, in words meant for the user;
/// it never contains a password from `s`.
pub fn check(s: &str) -> Result<Uri, String> {
    let url = Url::parse(s).map_err(|e| explain(s, e))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(unsupported_scheme(s, url.scheme()));
    }
    // WHATWG takes port 0; nothing can be connected to on it.
    if url.port() == Some(0) {
        return Err("port 0 cannot be connected to: a port is 1 to 65535".to_owned());
    }
    to_uri(url)
}

/// The request form of a parsed http/https URL: its serialization without
/// the fragment, as an [`http::Uri`].
fn to_uri(mut url: Url) -> Result<Uri, String> {
    url.set_fragment(None);
    let href = String::from(url);
    if href.len() > MAX_URI {
        return Err(format!(
            "too long: {} bytes once percent-encoded, at most {MAX_URI} can be sent",
            href.len()
        ));
    }
    // WHATWG allows a few characters in a host name (such as `{` or `"`)
    // that cannot appear in an HTTP request's authority.
    Uri::try_from(href)
        .map_err(|_| "the host has characters an HTTP request cannot carry".to_owned())
}

/// Why the WHATWG parser rejected `s`, in our words.
fn explain(s: &str, e: ParseError) -> String {
    match e {
        ParseError::RelativeUrlWithoutBase => missing_scheme(s),
        ParseError::EmptyHost => "has no host".to_owned(),
        ParseError::InvalidPort => "the port is not a number from 1 to 65535".to_owned(),
        ParseError::InvalidIpv4Address => {
            "the host is a malformed IPv4 address (such as 1.2.3.256)".to_owned()
        }
        ParseError::InvalidIpv6Address => {
            "the host is a malformed IPv6 address (the part in [brackets])".to_owned()
        }
        // The IDNA step also rejects the characters WHATWG forbids in a
        // domain: name the character when there is one.
        ParseError::IdnaError | ParseError::InvalidDomainCharacter => {
            match forbidden_host_char(s) {
                Some(c) => format!(
                    "the host contains {}, which a host name cannot",
                    describe(c)
                ),
                None if e == ParseError::IdnaError => {
                    "the host is not a valid internationalized domain name (IDNA)".to_owned()
                }
                None => "the host contains a character a host name cannot".to_owned(),
            }
        }
        ParseError::Overflow => "too long".to_owned(),
        other => format!("not a valid URL ({other})"),
    }
}

/// The message for an entry without a scheme, with a suggestion when it
/// starts like a host name.
fn missing_scheme(s: &str) -> String {
    if let Some(rest) =
        strip_prefix_ignore_case(s, "https//").or_else(|| strip_prefix_ignore_case(s, "http//"))
    {
        let scheme = &s[..s.len() - rest.len() - 2];
        return format!(
            "missing ':' after the scheme: did you mean {}?",
            shown_redacted(&format!("{scheme}://{rest}"))
        );
    }
    if looks_like_host(s) {
        format!(
            "missing scheme: did you mean {}?",
            shown_redacted(&format!("{}://{s}", likely_scheme(s)))
        )
    } else {
        "not a URL: expected http:// or https://".to_owned()
    }
}

/// The message for a scheme other than http and https. `example.com:8080/x`
/// parses as the scheme `example.com`, `user:pw@example.com:8080` as the
/// scheme `user`: when a port follows, that is a missing scheme too.
fn unsupported_scheme(s: &str, scheme: &str) -> String {
    let after = &s[s.find(':').map_or(s.len(), |i| i + 1)..];
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let port = match authority.rsplit_once('@') {
        Some((_, host_port)) => host_port.rsplit_once(':').map_or("", |(_, p)| p),
        None => authority,
    };
    let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if is_port && looks_like_host(s) {
        return missing_scheme(s);
    }
    format!(
        "unsupported scheme {:?}: only http and https are fetched",
        shown(scheme)
    )
}

/// `https`, unless the entry names a port other than 443, an IP literal or
/// localhost: those are mostly plain-HTTP services on a local network.
fn likely_scheme(s: &str) -> &'static str {
    let authority = s.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (host_port, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local = host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok();
    match port {
        Some("443") => "https",
        Some(_) => "http",
        None if local => "http",
        None => "https",
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Whether `s` starts with something like `host.example`, `localhost`,
/// `127.0.0.1` or `[::1]`, maybe after `user:pass@` and before `:port`.
fn looks_like_host(s: &str) -> bool {
    let authority = s.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.contains(']');
    }
    let host = host_port.split(':').next().unwrap_or("");
    host.eq_ignore_ascii_case("localhost")
        || (host.contains('.')
            && !host.starts_with('.')
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-'))
}

/// The first character of the host of `s` that WHATWG forbids in a domain
/// (a forbidden domain code point), if one can be found.
fn forbidden_host_char(s: &str) -> Option<char> {
    let authority = &s[crate::input::uri::authority_span(s)];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host.chars().find(|&c| {
        c.is_ascii_control()
            || matches!(
                c,
                ' ' | '#' | '%' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|'
            )
    })
}

/// `c` named for a message: `the control character '\0'`, `'%'`.
fn describe(c: char) -> String {
    if c.is_control() {
        format!("the control character {:?}", c)
    } else {
        format!("{c:?}")
    }
}

/// `s` with any password masked, cut to a length fit for a message.
fn shown_redacted(s: &str) -> String {
    shown(&crate::text::redact::url(s)).into_owned()
}

/// `s` cut to a length fit for one output line.
pub fn shown(s: &str) -> Cow<'_, str> {
    if s.len() <= SHOWN_MAX {
        return Cow::Borrowed(s);
    }
    let mut end = SHOWN_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...({} bytes)", &s[..end], s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is sent for `s`, or why it is rejected.
    fn sent(s: &str) -> Result<String, String> {
        check(s).map(|u| u.to_string())
    }

    #[test]
    fn accepts_http_and_https() {
        for ok in [
            "http://127.0.0.1:8080/x",
            "https://example.com",
            "HTTPS://example.com/a?b=c#d",
            "http://u:p@h/",
            "http://[::1]:80/",
            "https://example.com/caf\u{e9}",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn sends_the_whatwg_serialization_without_the_fragment() {
        let cases = [
            ("HTTP://Example.COM", "http://example.com/"),
            ("https://h/a b?c d#e f", "https://h/a%20b?c%20d"),
            ("http://h/\"<>`{}", "http://h/%22%3C%3E%60%7B%7D"),
            ("http://h/?q=\"<>`{}", "http://h/?q=%22%3C%3E`{}"),
            ("http://h/a\tb\nc", "http://h/abc"),
            ("http:\\\\h\\a\\b", "http://h/a/b"),
            ("http://h/a/./b/../../c/%2e%2E/d", "http://h/d"),
            ("http://h/caf\u{e9}", "http://h/caf%C3%A9"),
            ("https://\u{e9}.example/", "https://xn--9ca.example/"),
            (
                "https://B\u{fc}cher.example/",
                "https://xn--bcher-kva.example/",
            ),
            ("http://0x7f.1:8080/", "http://127.0.0.1:8080/"),
            ("http://h:80/", "http://h/"),
            ("https://h:443/", "https://h/"),
            ("http://h:65535/", "http://h:65535/"),
            ("http:h/x", "http://h/x"),
            ("http://u:p w@h/", "http://u:p%20w@h/"),
            ("http://h/a\0b", "http://h/a%00b"),
            ("http://[0:0::1]/", "http://[::1]/"),
        ];
        for (input, wire) in cases {
            assert_eq!(sent(input).as_deref(), Ok(wire), "{input:?}");
        }
    }

    #[test]
    fn explains_what_is_wrong() {
        let err = |s: &str| check(s).unwrap_err();
        assert_eq!(
            err("example.com/x"),
            "missing scheme: did you mean https://example.com/x?"
        );
        assert_eq!(
            err("127.0.0.1:18080/a.txt"),
            "missing scheme: did you mean http://127.0.0.1:18080/a.txt?"
        );
        assert_eq!(
            err("example.com:443/x"),
            "missing scheme: did you mean https://example.com:443/x?"
        );
        assert!(err("localhost:8080/x").contains("http://localhost:8080/x?"));
        assert!(err("example.com:8080").contains("http://example.com:8080?"));
        assert!(err("127.0.0.1:9/x").contains("http://127.0.0.1:9/x?"));
        assert!(err("https//h/x").contains("did you mean https://h/x?"));
        assert!(err("ftp://x").contains("unsupported scheme \"ftp\""));
        assert!(err("mailto:a@b.example").contains("unsupported scheme \"mailto\""));
        assert!(err("garbage").contains("not a URL"));
        assert!(err("http://").contains("no host"));
        assert!(err("http:///").contains("no host"));
        assert!(err("http://h:0/").contains("port 0"));
        assert!(err("http://h:65536/").contains("1 to 65535"));
        assert!(err("http://h:8x/").contains("1 to 65535"));
        assert!(err("http://1.2.3.256/").contains("IPv4"));
        assert!(err("http://[::1/").contains("IPv6"));
        assert!(err("http://[1:2:3]/").contains("IPv6"));
        assert!(err("http://x\0y/").contains("control character '\\0'"));
        assert!(err("http://a b/").contains("' '"));
        assert!(err("http://xn--a.example/").contains("IDNA"));
        assert!(err("http://a{b}/").contains("cannot carry"));
    }

    #[test]
    fn messages_never_show_a_password() {
        for s in [
            "bob:hunter2@example.com",
            "bob:hunter2@example.com/x",
            "https//bob:hunter2@example.com/",
            "http:/bob:hunter2@h:99999",
            "user:hunter2@host:8080/path",
        ] {
            let e = check(s).unwrap_err();
            assert!(!e.contains("hunter2"), "{s}: {e}");
        }
        assert!(
            check("bob:hunter2@example.com:8080/x")
                .unwrap_err()
                .contains("http://bob:***@example.com:8080/x")
        );
        assert!(
            check("https//bob:hunter2@example.com/x")
                .unwrap_err()
                .contains("https://bob:***@example.com/x")
        );
    }

    #[test]
    fn a_too_long_url_is_rejected_not_truncated() {
        let long = format!("http://h/{}", "\u{e9}".repeat(30_000));
        assert!(check(&long).unwrap_err().contains("too long"));
        let long = format!("http://u:{}@h/", "@".repeat(30_000));
        assert!(check(&long).unwrap_err().contains("too long"));
        let fits = format!("http://h/{}", "a".repeat(MAX_URI - 9));
        assert_eq!(check(&fits).map(|u| u.to_string().len()), Ok(MAX_URI));
    }

    #[test]
    fn shortens_long_text_on_a_char_boundary() {
        let long = "\u{e9}".repeat(500);
        let s = shown(&long);
        assert!(s.len() < 250);
        assert!(s.ends_with("(1000 bytes)"));
    }
}
