//! Redirects, followed by us rather than by ureq (whose agent has
//! `max_redirects(0)`), so each rule is ours and tested:
//!
//! - 301, 302, 303, 307 and 308 are followed, up to `--max-redirects`
//!   (0: the 3xx is the result). Other 3xx (304 above all) are results.
//! - `Location` is resolved against the URL of the request that got it, as
//!   the WHATWG URL Standard says (RFC 3986 references: query-only,
//!   dot-segments, scheme-relative), with the `url` crate.
//! - Only `http` and `https` targets are followed; any other scheme, or a
//!   missing, empty or unparsable `Location`, is error kind `redirects`,
//!   and the message names the target (password hidden, control and
//!   bidirectional characters escaped, long ones cut).
//! - Methods change as in browsers and curl: 303 makes a GET (HEAD stays
//!   HEAD), 301 and 302 turn a POST into a GET, 307 and 308 keep it. A
//!   request turned into a GET loses its `Content-*` headers.
//! - Credentials (URL `user:password@`, `Authorization`, `Cookie`,
//!   `Proxy-Authorization`) are sent only to the origin (scheme, host,
//!   port) of the URL as given.
//! - Two different `Location` headers are a protocol error; a `Location`
//!   that is not UTF-8 has its other bytes percent-encoded.
//! - `--timeout` bounds one attempt's whole chain: each hop gets what is left.
//! - Redirect bodies are drained when small, so the connection is reused.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ureq::http::{HeaderValue, Method, Response, Uri};
use url::Url;

use super::body;
use super::config::RequestConfig;
use crate::result::{ErrorKind, FetchError, trace};
use crate::text::{escape, redact};

/// Longest target shown in a message, in bytes (after escaping).
const SHOWN_MAX: usize = 200;

/// The response a chain of redirects led to.
pub(super) struct Landed {
    /// The last response: not a redirect we follow.
    pub response: Response<ureq::Body>,
    /// Where the redirects led (password hidden), when there were any.
    pub final_url: Option<String>,
}

/// A chain that ended without a response to read.
pub(super) struct Failed {
    /// What went wrong.
    pub error: FetchError,
    /// The status of the redirect that could not be followed, if that was it.
    pub status: Option<u16>,
    /// Where the redirects had led (password hidden), when there were any.
    pub final_url: Option<String>,
}

/// The state of a chain once it has been redirected at least once.
struct Redirected {
    /// The URL as given, parsed: its origin gets the credentials.
    first: Url,
    /// The URL of the next request.
    url: Url,
    /// The same, as sent.
    uri: Uri,
}

/// How one request of a chain is sent.
pub(super) struct Hop {
    /// To another origin than the URL as given: without the credential
    /// headers.
    pub(super) foreign: bool,
    /// A redirect made the request a GET: without the `Content-*` headers.
    pub(super) to_get: bool,
    /// For a later hop: what is left of `--timeout`, replacing the agent's.
    pub(super) timeout: Option<Duration>,
}

/// Sends `first` with `send` and follows its redirects as `config` says;
/// the whole chain must end by `deadline`.
pub(super) fn follow(
    config: &RequestConfig,
    first: &Uri,
    deadline: Instant,
    send: impl Fn(&Uri, &Method, Hop) -> Result<Response<ureq::Body>, FetchError>,
) -> Result<Landed, Failed> {
    let max = config.max_redirects;
    let mut method = config.method.clone();
    let mut to_get = false;
    let mut chain: Option<Redirected> = None;
    let mut followed = 0;
    loop {
        let final_url = || chain.as_ref().map(|c| shown_url(&c.url));
        let (uri, foreign, timeout) = match &chain {
            None => (first, false, None),
            Some(c) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Failed {
                        error: timed_out(config),
                        status: None,
                        final_url: final_url(),
                    });
                }
                (&c.uri, !same_origin(&c.first, &c.url), Some(left))
            }
        };
        let hop = Hop {
            foreign,
            to_get,
            timeout,
        };
        let response = match send(uri, &method, hop) {
            Ok(r) => r,
            Err(error) => {
                return Err(Failed {
                    error,
                    status: None,
                    final_url: final_url(),
                });
            }
        };
        let status = response.status().as_u16();
        if max == 0 || !is_followed(status) {
            return Ok(Landed {
                response,
                final_url: final_url(),
            });
        }
        let fail = |message: String| Failed {
            error: FetchError::new(ErrorKind::Redirects, message),
            status: Some(status),
            final_url: final_url(),
        };
        if followed == max {
            return Err(fail(format!("more than {max} redirects (--max-redirects)")));
        }
        let next = next_hop(first, chain.as_ref(), &response, &fail)?;
        body::drain(response);
        let new_method = next_method(status, &method);
        trace::emit(trace::Kind::Info, || {
            format!(
                "redirect {status} to {} ({new_method})",
                shown(next.url.as_str())
            )
        });
        to_get |= new_method != method && new_method == Method::GET;
        method = new_method;
        chain = Some(next);
        followed += 1;
    }
}

/// Where a redirect leads: its `Location` resolved against the URL of
/// the request that got it, with the credentials of the URL as given
/// when it stays on that origin. Out of line: it is needed only after a
/// redirect, and its frame need not sit under every request's.
#[inline(never)]
fn next_hop(
    first: &Uri,
    chain: Option<&Redirected>,
    response: &Response<ureq::Body>,
    fail: &dyn Fn(String) -> Failed,
) -> Result<Redirected, Failed> {
    let (first_url, base) = match chain {
        Some(c) => (c.first.clone(), c.url.clone()),
        None => {
            let parsed = Url::parse(&first.to_string()).map_err(|e| {
                fail(format!(
                    "cannot resolve a Location against {}: {e}",
                    shown(&first.to_string())
                ))
            })?;
            (parsed.clone(), parsed)
        }
    };
    let location = one_location(response).map_err(|message| Failed {
        error: FetchError::new(ErrorKind::Protocol, message),
        ..fail(String::new())
    })?;
    let mut url = resolve(&base, location).map_err(fail)?;
    carry_credentials(&first_url, &mut url);
    let uri = Uri::try_from(url.as_str()).map_err(|e| {
        fail(format!(
            "redirect to {}: cannot be requested ({e})",
            shown(url.as_str())
        ))
    })?;
    Ok(Redirected {
        first: first_url,
        url,
        uri,
    })
}

/// The error for a chain that used up its `--timeout`.
fn timed_out(config: &RequestConfig) -> FetchError {
    FetchError::new(
        ErrorKind::Timeout,
        format!(
            "no complete response within {:?} (--timeout)",
            config.timeout
        ),
    )
}

/// Whether a response with `status` is a redirect we follow.
pub(super) fn is_followed(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The method of the request that follows a `status` redirect of a
/// `method` request (WHATWG Fetch, "HTTP-redirect fetch"; curl does the same).
pub(super) fn next_method(status: u16, method: &Method) -> Method {
    match status {
        303 if *method != Method::HEAD => Method::GET,
        301 | 302 if *method == Method::POST => Method::GET,
        _ => method.clone(),
    }
}

/// Whether a header is a credential of the origin (not sent elsewhere).
pub(super) fn is_origin_credential(name: &str) -> bool {
    ["authorization", "cookie", "proxy-authorization"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

/// Whether a header describes a request body (dropped when a redirect
/// turns the request into a GET, as browsers do).
pub(super) fn is_body_header(name: &str) -> bool {
    name.len() > 8 && name[..8].eq_ignore_ascii_case("content-")
}

/// The `Location` of a redirect, if it has one. Two different ones are a
/// protocol error (browsers refuse to guess too); the same one repeated
/// is that one.
fn one_location(response: &Response<ureq::Body>) -> Result<Option<&HeaderValue>, String> {
    let mut all = response.headers().get_all("location").iter();
    let first = all.next();
    if let Some(other) = all.find(|v| Some(*v) != first) {
        let shown_value = |v: &HeaderValue| shown(&String::from_utf8_lossy(v.as_bytes()));
        return Err(format!(
            "a redirect with two different Location headers ({} and {})",
            first.map(shown_value).unwrap_or_default(),
            shown_value(other)
        ));
    }
    Ok(first)
}

/// The URL a redirect leads to, resolved against `base`; the error is the
/// message for the user. Bytes that are not UTF-8 (a Latin-1 `Location`)
/// are percent-encoded, as browsers and curl do.
pub(super) fn resolve(base: &Url, location: Option<&HeaderValue>) -> Result<Url, String> {
    let location = location.ok_or("redirect without a Location header")?;
    let location = match std::str::from_utf8(location.as_bytes()) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => std::borrow::Cow::Owned(percent_encode_high(location.as_bytes())),
    };
    let location = location.as_ref();
    if location.trim().is_empty() {
        return Err("redirect with an empty Location".to_owned());
    }
    let mut url = base
        .join(location)
        .map_err(|e| format!("redirect to {}: not a valid URL ({e})", shown(location)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "redirect to {}: only http and https URLs are followed",
            shown(url.as_str())
        ));
    }
    if url.port() == Some(0) {
        return Err(format!("redirect to {}: port 0", shown(url.as_str())));
    }
    url.set_fragment(None);
    Ok(url)
}

/// `bytes` with every byte outside ASCII percent-encoded.
fn percent_encode_high(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Gives `url` the credentials of `first` if it has the same origin, and
/// none otherwise (also none that the server put in the `Location`).
pub(super) fn carry_credentials(first: &Url, url: &mut Url) {
    let (user, password) = if same_origin(first, url) {
        (first.username(), first.password())
    } else {
        ("", None)
    };
    // Only fails for URLs without a host, which http/https URLs never are.
    let _ = url.set_username(user);
    let _ = url.set_password(password);
}

/// Same scheme, host and port (the port defaulting to the scheme's).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// A followed URL as reported in `final_url`.
fn shown_url(url: &Url) -> String {
    redact::url(url.as_str()).into_owned()
}

/// A target for a message: password hidden, escaped, cut to a line.
pub(super) fn shown(target: &str) -> String {
    let mut s = escape::all_as_unicode(&redact::url(target));
    if s.len() > SHOWN_MAX {
        let mut end = SHOWN_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let len = target.len();
        s.truncate(end);
        let _ = write!(s, "...({len} bytes)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://h.example/a/b?x=1").unwrap()
    }

    fn to(location: &str) -> Result<String, String> {
        let value = HeaderValue::from_bytes(location.as_bytes()).map_err(|e| e.to_string())?;
        resolve(&base(), Some(&value)).map(String::from)
    }

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        for (location, expected) in [
            ("?page=2", "http://h.example/a/b?page=2"),
            ("../../../../x", "http://h.example/x"),
            ("//other.example/p", "http://other.example/p"),
            ("c", "http://h.example/a/c"),
            ("/c?d#frag", "http://h.example/c?d"),
            ("https://s.example:8443/", "https://s.example:8443/"),
            ("HTTP://H.EXAMPLE:80/Z", "http://h.example/Z"),
            ("http://[::1]:8080/v6", "http://[::1]:8080/v6"),
            // As browsers read them.
            ("http:evil", "http://h.example/a/evil"),
            ("\\\\evil.example\\p", "http://evil.example/p"),
            ("/caf\u{e9} x", "http://h.example/caf%C3%A9%20x"),
            ("/\u{202e}txt", "http://h.example/%E2%80%AEtxt"),
        ] {
            assert_eq!(to(location).as_deref(), Ok(expected), "{location}");
        }
    }

    #[test]
    fn other_schemes_and_bad_locations_are_refused_naming_the_target() {
        for (location, needle) in [
            ("file:///etc/passwd", "file:///etc/passwd"),
            ("javascript:alert(1)", "javascript:alert(1)"),
            ("data:text/html,hi", "data:text/html,hi"),
            ("unix:/run/x.sock", "unix:/run/x.sock"),
            ("ftp://u:pw@f.example/", "ftp://u:***@f.example/"),
            ("http://h.example:99999/", "h.example:99999"),
            ("http://h.example:0/", "port 0"),
            ("http://exa\u{202e}mple.com/", "exa\\u{202e}mple.com"),
            ("http://u:hunter2@h:99999/", "u:***@h:99999"),
            ("http://[::1/", "[::1"),
        ] {
            let err = to(location).unwrap_err();
            assert!(err.contains(needle), "{location}: {err}");
            assert!(!err.contains("hunter2") && !err.contains(":pw@"), "{err}");
            assert!(!err.contains('\u{202e}'), "{err}");
        }
        assert!(
            resolve(&base(), None)
                .unwrap_err()
                .contains("without a Location")
        );
        for empty in ["", "  "] {
            assert!(
                to(empty).unwrap_err().contains("empty Location"),
                "{empty:?}"
            );
        }
        // Bytes that are not UTF-8 are percent-encoded, as browsers do.
        let latin1 = HeaderValue::from_bytes(b"/caf\xe9?q=\xff").unwrap();
        assert_eq!(
            resolve(&base(), Some(&latin1)).unwrap().as_str(),
            "http://h.example/caf%E9?q=%FF"
        );
    }

    #[test]
    fn only_the_five_redirects_are_followed() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_followed(s));
        }
        for s in [200, 300, 304, 305, 306, 309, 399, 404] {
            assert!(!is_followed(s), "{s}");
        }
    }

    #[test]
    fn methods_change_as_in_browsers() {
        let m = |s, m: Method| next_method(s, &m);
        assert_eq!(m(303, Method::POST), Method::GET);
        assert_eq!(m(303, Method::PUT), Method::GET);
        assert_eq!(m(303, Method::HEAD), Method::HEAD);
        assert_eq!(m(301, Method::POST), Method::GET);
        assert_eq!(m(302, Method::POST), Method::GET);
        assert_eq!(m(302, Method::PUT), Method::PUT);
        assert_eq!(m(302, Method::HEAD), Method::HEAD);
        assert_eq!(m(307, Method::POST), Method::POST);
        assert_eq!(m(308, Method::DELETE), Method::DELETE);
        assert!(is_body_header("Content-Type") && is_body_header("content-length"));
        assert!(!is_body_header("Content-") && !is_body_header("Accept"));
    }

    #[test]
    fn credentials_stay_with_the_origin() {
        let first = Url::parse("http://u:pw@h.example/a").unwrap();
        let carried = |to: &str| {
            let mut url = Url::parse(to).unwrap();
            carry_credentials(&first, &mut url);
            url.to_string()
        };
        assert_eq!(carried("http://h.example/b"), "http://u:pw@h.example/b");
        assert_eq!(carried("http://h.example:80/b"), "http://u:pw@h.example/b");
        assert_eq!(carried("http://x:y@h.example/b"), "http://u:pw@h.example/b");
        assert_eq!(carried("http://other.example/b"), "http://other.example/b");
        assert_eq!(
            carried("http://e:pw2@evil.example/"),
            "http://evil.example/"
        );
        assert_eq!(carried("https://h.example/b"), "https://h.example/b");
        assert_eq!(carried("http://h.example:81/b"), "http://h.example:81/b");
        assert!(is_origin_credential("AUTHORIZATION") && is_origin_credential("cookie"));
        assert!(is_origin_credential("Proxy-Authorization"));
        assert!(!is_origin_credential("accept"));
    }

    #[test]
    fn shown_targets_are_one_short_harmless_line() {
        assert_eq!(
            shown("http://u:pw@h/\n\u{1b}[2J"),
            "http://u:***@h/\\u{a}\\u{1b}[2J"
        );
        let long = format!("http://h/{}", "\u{e9}".repeat(10_000));
        let s = shown(&long);
        assert!(s.len() < SHOWN_MAX + 30, "{}", s.len());
        assert!(s.ends_with("(20009 bytes)"), "{s}");
    }
}
