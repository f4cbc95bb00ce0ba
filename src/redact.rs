//! Keeps credentials out of everything fetchpool prints or writes.
//!
//! A password in a URL (`user:pass@host`) is shown as `user:***@host`; the
//! values of credential headers and URL passwords are scrubbed from any
//! message that comes from a library, since we cannot vet its wording.

use std::borrow::Cow;

/// Header names whose values are secrets.
pub fn is_secret_header(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

/// The URL with any password replaced by `***`.
pub fn url(url: &str) -> Cow<'_, str> {
    match password_span(url) {
        Some((start, end)) => Cow::Owned(format!("{}***{}", &url[..start], &url[end..])),
        None => Cow::Borrowed(url),
    }
}

/// The password of a URL, if it has one.
pub fn password(url: &str) -> Option<&str> {
    password_span(url).map(|(s, e)| &url[s..e])
}

/// Byte range of the password in `scheme://user:password@host/...`.
fn password_span(url: &str) -> Option<(usize, usize)> {
    url.find("://")?;
    let span = crate::uri::authority_span(url);
    let authority = &url[span.clone()];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    (colon + 1 < at).then_some((span.start + colon + 1, span.start + at))
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
    fn scrubs_every_secret() {
        assert_eq!(
            scrub("a secret and secret", &["secret", ""]),
            "a *** and ***"
        );
    }
}
