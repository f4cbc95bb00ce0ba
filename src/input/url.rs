//! Which entries are fetchable URLs, and the exact form sent on the wire.

use std::borrow::Cow;
use std::fmt::Write as _;

use http::Uri;

/// Longest URL shown in a message or an output line for a rejected entry.
const SHOWN_MAX: usize = 200;

/// Checks that `s` is an absolute `http`/`https` URL fetchpool can request
/// and returns it parsed, in its request form (see `request_form`). The error says what is
/// wrong, in words meant for the user.
pub fn check(s: &str) -> Result<Uri, String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {c:?}"));
    }
    if s.contains(char::is_whitespace) {
        return Err("contains whitespace (encode a space as %20)".to_owned());
    }
    let Some((scheme, _)) = s.split_once("://") else {
        return Err(if looks_like_host(s) {
            format!("missing scheme: did you mean https://{}?", shown(s))
        } else {
            "not a URL: expected http:// or https://".to_owned()
        });
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(format!(
            "unsupported scheme {:?}: only http and https are fetched",
            shown(scheme)
        ));
    }
    let authority = &s[crate::uri::authority_span(s)];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if !host.is_ascii() {
        return Err("internationalized host names are not supported: use the xn-- form".into());
    }
    match Uri::try_from(request_form(s).as_ref()) {
        Ok(u) if u.host().is_some_and(|h| !h.is_empty()) => Ok(u),
        Ok(_) => Err("has no host".to_owned()),
        Err(e) => Err(format!("not a valid URL: {e}")),
    }
}

/// The URL as sent: non-ASCII characters are percent-encoded as UTF-8 (what
/// browsers do), the rest is kept byte for byte.
fn request_form(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    Cow::Owned(out)
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

fn looks_like_host(s: &str) -> bool {
    let host = s.split(['/', '?', '#', ':']).next().unwrap_or("");
    host == "localhost"
        || (host.contains('.')
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn explains_what_is_wrong() {
        assert!(
            check("example.com/x")
                .unwrap_err()
                .contains("https://example.com/x")
        );
        assert!(check("ftp://x").unwrap_err().contains("unsupported scheme"));
        assert!(check("garbage").unwrap_err().contains("not a URL"));
        assert!(check("http://a b").unwrap_err().contains("whitespace"));
        assert!(check("http://a\0b").unwrap_err().contains("control"));
        assert!(check("http://").is_err());
        assert!(check("http:///path").is_err());
        assert!(
            check("https://\u{e9}.example/")
                .unwrap_err()
                .contains("xn--")
        );
    }

    #[test]
    fn encodes_non_ascii_only() {
        assert_eq!(request_form("http://h/a b"), "http://h/a b");
        assert_eq!(request_form("http://h/caf\u{e9}"), "http://h/caf%C3%A9");
    }

    #[test]
    fn shortens_long_text_on_a_char_boundary() {
        let long = "\u{e9}".repeat(500);
        let s = shown(&long);
        assert!(s.len() < 250);
        assert!(s.ends_with("(1000 bytes)"));
    }
}
