//! Keeps credentials out of everything fetchpool prints or writes.
//!
//! A password in a URL (`user:pass@host`) is shown as `user:***@host`; the
//! values of credential headers and URL passwords are scrubbed from any
//! message that comes from a library, since we cannot vet its wording.

use std::borrow::Cow;
use std::ops::Range;

use url::Url;

/// Header names whose values are secrets.
pub fn is_secret_header(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

/// The URL with any password replaced by `***`. Works on any entry, valid
/// or not: see [`password`].
pub fn url(url: &str) -> Cow<'_, str> {
    match password_span(url) {
        Some(span) => Cow::Owned(format!("{}***{}", &url[..span.start], &url[span.end..])),
        None => Cow::Borrowed(url),
    }
}

/// The password of a URL as written in it, if it has one.
///
/// A valid URL (WHATWG) has one when its parsed form does, and it is found
/// where the parser takes it from: after `scheme:` and any slashes, in the
/// authority (up to the first `/`, `?`, `#` or, for http and https, `\`),
/// between the first `:` and the last `@`. Any other entry, such as
/// `bob:pw@host` or `https//bob:pw@host/`, is read loosely: after an
/// optional `scheme:/`, `scheme://` or `scheme//`, a user name, a `:`, and
/// everything up to the entry's last `@` is the password. Masking too much
/// of an entry that is not fetched is better than showing a password.
pub fn password(url: &str) -> Option<&str> {
    password_span(url).map(|span| &url[span])
}

fn password_span(url: &str) -> Option<Range<usize>> {
    // Most URLs have no `@`: no parse for them.
    if !url.contains('@') {
        return None;
    }
    let span = match Url::parse(url) {
        Ok(parsed) if parsed.has_authority() => {
            parsed.password()?;
            authority_password(url, parsed.is_special()).or_else(|| loose_span(url))
        }
        _ => loose_span(url),
    }?;
    (!span.is_empty()).then_some(span)
}

/// Where a valid URL's password is: after `scheme:` and its slashes, in the
/// authority, from the first `:` to the last `@`. Tabs and newlines, which
/// the parser drops, are skipped like slashes.
fn authority_password(url: &str, special: bool) -> Option<Range<usize>> {
    let slash = |c: char| c == '/' || (special && c == '\\') || matches!(c, '\t' | '\n' | '\r');
    let after_scheme = url.find(':')? + 1;
    let start = url[after_scheme..]
        .find(|c| !slash(c))
        .map_or(url.len(), |i| after_scheme + i);
    let rest = &url[start..];
    let end = rest
        .find(|c| matches!(c, '/' | '?' | '#') || (special && c == '\\'))
        .unwrap_or(rest.len());
    userinfo_password(&rest[..end]).map(|r| start + r.start..start + r.end)
}

/// The password of an entry that is not a valid URL, read loosely: after an
/// optional scheme-like prefix (`scheme:` and slashes, or `scheme//`), a
/// user name without `/?#\\[@`, a `:`, and everything up to the last `@`
/// of the entry (so a password with a `/` or a `#` is masked whole).
fn loose_span(url: &str) -> Option<Range<usize>> {
    let start = scheme_prefix_len(url);
    let rest = &url[start..];
    let colon = rest.find(':')?;
    if rest[..colon].contains(['/', '?', '#', '\\', '[', '@']) {
        return None;
    }
    let at = rest.rfind('@')?;
    (at > colon).then(|| start + colon + 1..start + at)
}

/// `user:pass` of an authority `user:pass@host`, as a range of it.
fn userinfo_password(authority: &str) -> Option<Range<usize>> {
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(colon + 1..at)
}

/// Length of a leading `scheme:/`, `scheme://`, `scheme//` or a bare `//`
/// (scheme-relative; slashes or backslashes); 0 when there is none.
/// `bob:pw@host` has none: `bob:` is not followed by a slash.
fn scheme_prefix_len(url: &str) -> usize {
    let is_slash = |b: &u8| *b == b'/' || *b == b'\\';
    let bytes = url.as_bytes();
    let leading = bytes.iter().take_while(|b| is_slash(b)).count();
    if leading >= 2 {
        return leading;
    }
    let scheme = match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() => bytes
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
            .unwrap_or(bytes.len()),
        _ => return 0,
    };
    let colon = usize::from(bytes.get(scheme) == Some(&b':'));
    let slashes = bytes[scheme + colon..]
        .iter()
        .take_while(|b| is_slash(b))
        .count();
    if slashes >= 2 - colon {
        scheme + colon + slashes
    } else {
        0
    }
}

/// Replaces every occurrence of each non-empty secret in `text` by `***`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |acc, s| acc.replace(s, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_only() {
        assert_eq!(url("https://u:secret@h/p"), "https://u:***@h/p");
        assert_eq!(url("http://u:s%40c@h:8080/a@b"), "http://u:***@h:8080/a@b");
        assert_eq!(url("https://h/p?x=u:p@q"), "https://h/p?x=u:p@q");
        assert_eq!(url("https://user@h/"), "https://user@h/");
        assert_eq!(url("not a url"), "not a url");
        assert_eq!(password("https://u:pw@h/"), Some("pw"));
    }

    #[test]
    fn hides_passwords_of_entries_that_are_not_urls() {
        for (entry, shown) in [
            ("bob:hunter2@example.com", "bob:***@example.com"),
            ("https//bob:pw@host/", "https//bob:***@host/"),
            ("http:/bob:pw@host", "http:/bob:***@host"),
            ("user:pw@host:8080/path", "user:***@host:8080/path"),
            ("http://u:pw@h:99999/", "http://u:***@h:99999/"),
            ("http://u:pw@[::1/", "http://u:***@[::1/"),
            ("ftp://u:pw@h/", "ftp://u:***@h/"),
            ("foo://u:pw@h/", "foo://u:***@h/"),
            // A `/` or `#` in the password cuts the authority short, so the
            // entry is invalid; the password is still masked whole.
            ("http://u:pa/ss@h/", "http://u:***@h/"),
            ("http://u:pa#ss@h/", "http://u:***@h/"),
            ("mailto:x@y.example", "mailto:***@y.example"),
            ("//bob:hunter2@127.0.0.1:1/", "//bob:***@127.0.0.1:1/"),
            ("\\\\bob:pw@h/", "\\\\bob:***@h/"),
        ] {
            assert_eq!(url(entry), shown, "{entry}");
        }
    }

    #[test]
    fn hostile_passwords() {
        for (entry, shown) in [
            // Several `@`: the last one ends the user info (WHATWG).
            ("http://u:p@q@h/", "http://u:***@h/"),
            ("http://u:p@q@h/x@y", "http://u:***@h/x@y"),
            ("bob:a@b@host", "bob:***@host"),
            // Percent-encoded, and `:` inside the password.
            ("http://u:p%40%3Aw@h/", "http://u:***@h/"),
            ("http://u:a:b:c@h/", "http://u:***@h/"),
            // IPv6 hosts.
            ("http://u:pw@[::1]:8080/", "http://u:***@[::1]:8080/"),
            ("http://[::1]:8080/a:b@c", "http://[::1]:8080/a:b@c"),
            // Backslashes are slashes in http URLs.
            ("http:\\\\u:pw@h\\x@y", "http:\\\\u:***@h\\x@y"),
            // Tabs and newlines are dropped by the parser.
            ("http://u:p\tw@h/", "http://u:***@h/"),
            ("ht\ttp://u:pw@h/", "ht\ttp://u:***@h/"),
            // No password, or an empty one.
            ("http://u:@h/", "http://u:@h/"),
            ("http://:@h/", "http://:@h/"),
            ("http://@h/", "http://@h/"),
            ("https://h/p?x=u:p@q#a:b@c", "https://h/p?x=u:p@q#a:b@c"),
            ("example.com/a:b@c", "example.com/a:b@c"),
            // Non-ASCII passwords are cut on character boundaries.
            ("http://u:\u{e9}\u{202e}@h/", "http://u:***@h/"),
            ("u:\u{e9}@\u{e9}", "u:***@\u{e9}"),
        ] {
            assert_eq!(url(entry), shown, "{entry:?}");
        }
    }

    #[test]
    fn scrubs_every_secret() {
        assert_eq!(
            scrub("a secret and secret", &["secret", ""]),
            "a *** and ***"
        );
    }
}
