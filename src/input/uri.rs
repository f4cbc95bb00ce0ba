//! Pieces of URLs that several parts need: where the authority of a raw
//! (maybe invalid) URL string lies, and the `host:port` of a parsed one.

use std::ops::Range;

use http::Uri;

/// Byte range of the authority (`user:pass@host:port`) of `url`: after
/// `scheme://` (or from the start when there is none) up to the first `/`,
/// `?` or `#`. Works on any string, valid URL or not.
pub fn authority_span(url: &str) -> Range<usize> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    start..start + len
}

/// The host (without userinfo) and port of `uri`, the port defaulting to
/// the scheme's (80 for http, 443 for https).
pub fn host_port(uri: &Uri) -> Option<(&str, u16)> {
    let authority = uri.authority()?;
    let port = match (authority.port_u16(), uri.scheme_str()?) {
        (Some(port), _) => port,
        (None, s) if s.eq_ignore_ascii_case("http") => 80,
        (None, s) if s.eq_ignore_ascii_case("https") => 443,
        _ => return None,
    };
    Some((authority.host(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_raw_strings() {
        let a = |s: &'static str| &s[authority_span(s)];
        assert_eq!(a("http://u:p@h:1/x?y#z"), "u:p@h:1");
        assert_eq!(a("https://h?q"), "h");
        assert_eq!(a("h.example/x"), "h.example");
        assert_eq!(a("http://"), "");
    }

    #[test]
    fn ports_default_by_scheme() {
        let hp = |s: &str| host_port(&s.parse().unwrap()).map(|(h, p)| (h.to_owned(), p));
        assert_eq!(hp("http://a/"), Some(("a".into(), 80)));
        assert_eq!(hp("https://a/"), Some(("a".into(), 443)));
        assert_eq!(hp("https://a:8443/"), Some(("a".into(), 8443)));
        assert_eq!(hp("http://[::1]/"), Some(("[::1]".into(), 80)));
    }
}
