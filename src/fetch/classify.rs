//! Maps what ureq, rustls and the OS report to our error kinds, by type
//! (never by message text), with messages in our own words.

use std::io::ErrorKind as IoKind;

use rustls::{CertificateError, Error as TlsError, InvalidMessage};
use ureq::Error as E;

use super::RequestConfig;
use super::net::transport::{MAX_HEAD, OUTPUT_MAX};
use crate::result::{ErrorKind as K, FetchError};

/// Maps a ureq error to our kinds, with a message in our words.
#[inline(never)]
pub fn classify(e: &E, config: &RequestConfig) -> FetchError {
    let (kind, message) = match e {
        E::Timeout(ureq::Timeout::Connect) => (
            K::Timeout,
            format!(
                "no connection within {:?} (--connect-timeout)",
                config.connect_timeout
            ),
        ),
        E::Timeout(ureq::Timeout::Resolve) => (K::Dns, "name lookup timed out".to_owned()),
        E::Timeout(_) => (
            K::Timeout,
            format!(
                "no complete response within {:?} (--timeout)",
                config.timeout
            ),
        ),
        E::HostNotFound => (K::Dns, "host name not found".to_owned()),
        E::ConnectionFailed => (K::Connect, "connection failed".to_owned()),
        E::Io(io) => classify_io(io),
        E::TooManyRedirects => (
            K::Redirects,
            format!(
                "more than {} redirects (--max-redirects)",
                config.max_redirects
            ),
        ),
        E::RedirectFailed => (
            K::Redirects,
            "redirect without a usable Location".to_owned(),
        ),
        E::ConnectProxyFailed(reason) => match reason.strip_prefix("SOCKS5: ") {
            Some(why) => (
                K::Connect,
                format!("the SOCKS5 proxy did not connect: {why}"),
            ),
            None => (
                K::Connect,
                format!("the proxy did not open a tunnel (CONNECT): {reason}"),
            ),
        },
        E::InvalidProxyUrl => (K::Connect, "invalid proxy URL".to_owned()),
        E::Tls(m) => (K::Tls, (*m).to_owned()),
        E::Rustls(r) => (K::Tls, tls_message(r)),
        E::Pem(_) => (K::Tls, "bad certificate".to_owned()),
        E::BodyExceedsLimit(n) => (K::TooLarge, format!("body larger than {n} bytes")),
        E::LargeResponseHeader(..) => (
            K::Protocol,
            format!(
                "response head larger than the {} KiB limit",
                MAX_HEAD / 1024
            ),
        ),
        E::Protocol(ureq_proto::Error::OutputOverflow) => (
            K::Protocol,
            format!(
                "a request line or header longer than {} KiB",
                OUTPUT_MAX / 1024
            ),
        ),
        E::Protocol(ureq_proto::Error::HttpParseTooManyHeaders) => (
            K::Protocol,
            "response head has more than 128 header lines (the HTTP library's limit)".to_owned(),
        ),
        E::Protocol(p) => (K::Protocol, format!("not a valid HTTP response: {p}")),
        E::BadUri(m) => (K::InvalidUrl, m.clone()),
        E::Http(h) => (K::InvalidUrl, h.to_string()),
        E::BodyStalled => (K::Timeout, "body stalled".to_owned()),
        other => (K::Protocol, other.to_string()),
    };
    FetchError::new(kind, message)
}

/// rustls's errors, with what to do about the common certificate ones.
fn tls_message(e: &TlsError) -> String {
    let cert = match e {
        TlsError::InvalidCertificate(cert) => cert,
        // The first byte of an HTTP answer ('H') is no TLS record type.
        TlsError::InvalidMessage(InvalidMessage::InvalidContentType) => {
            return "the server does not speak TLS on this port".to_owned();
        }
        other => return other.to_string(),
    };
    match cert {
        CertificateError::UnknownIssuer => {
            "certificate signed by an unknown authority (trust it with --cacert FILE)".to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate is not valid for this host name".to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet".to_owned()
        }
        CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "the server presents a CA certificate (CA:TRUE) as its own; \
             trust that certificate with --cacert FILE or issue the server a leaf certificate"
                .to_owned()
        }
        other => format!("bad certificate: {other:?}"),
    }
}

fn classify_io(io: &std::io::Error) -> (K, String) {
    // rustls reports certificate problems as I/O errors carrying its error,
    // directly or inside a ureq error.
    if let Some(inner) = io.get_ref() {
        if let Some(tls) = inner.downcast_ref::<TlsError>() {
            return (K::Tls, tls_message(tls));
        }
        if let Some(E::Rustls(tls)) = inner.downcast_ref::<E>() {
            return (K::Tls, tls_message(tls));
        }
    }
    match io.kind() {
        IoKind::ConnectionRefused => (K::Connect, "connection refused".to_owned()),
        IoKind::HostUnreachable | IoKind::NetworkUnreachable | IoKind::AddrNotAvailable => {
            (K::Connect, io.to_string())
        }
        IoKind::TimedOut | IoKind::WouldBlock => (K::Timeout, "timed out".to_owned()),
        IoKind::ConnectionReset => (K::Io, "connection reset by peer".to_owned()),
        IoKind::ConnectionAborted => (K::Io, "connection aborted".to_owned()),
        IoKind::UnexpectedEof => (K::Io, "connection closed early".to_owned()),
        IoKind::InvalidData => (K::Protocol, io.to_string()),
        _ => (K::Io, io.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn config() -> RequestConfig {
        RequestConfig {
            timeout: Duration::from_secs(7),
            connect_timeout: Duration::from_secs(3),
            ..RequestConfig::for_tests()
        }
    }

    fn kind(e: E) -> (K, String) {
        let f = classify(&e, &config());
        (f.kind, f.message)
    }

    #[test]
    fn timeouts_name_their_flag() {
        let (k, m) = kind(E::Timeout(ureq::Timeout::Connect));
        assert_eq!(k, K::Timeout);
        assert!(m.contains("--connect-timeout"), "{m}");
        let (k, m) = kind(E::Timeout(ureq::Timeout::Global));
        assert_eq!(k, K::Timeout);
        assert!(m.contains("--timeout") && m.contains("7s"), "{m}");
        assert_eq!(kind(E::Timeout(ureq::Timeout::Resolve)).0, K::Dns);
        assert_eq!(kind(E::BodyStalled).0, K::Timeout);
    }

    #[test]
    fn each_kind_from_its_type() {
        assert_eq!(kind(E::HostNotFound).0, K::Dns);
        assert_eq!(kind(E::ConnectionFailed).0, K::Connect);
        assert_eq!(kind(E::TooManyRedirects).0, K::Redirects);
        assert_eq!(kind(E::RedirectFailed).0, K::Redirects);
        assert_eq!(kind(E::BodyExceedsLimit(10)).0, K::TooLarge);
        let (k, m) = kind(E::Protocol(ureq_proto::Error::OutputOverflow));
        assert_eq!(k, K::Protocol);
        assert!(m.contains("request line or header"), "{m}");
        let (k, m) = kind(E::LargeResponseHeader(70_000, MAX_HEAD));
        assert_eq!(k, K::Protocol);
        assert!(m.contains("64 KiB limit"), "{m}");
        assert_eq!(
            kind(E::Protocol(ureq_proto::Error::ChunkLenNotANumber)).0,
            K::Protocol
        );
        assert_eq!(kind(E::BadUri("x".into())).0, K::InvalidUrl);
    }

    #[test]
    fn io_errors_by_kind() {
        let io = |k: io::ErrorKind| kind(E::Io(io::Error::from(k)));
        assert_eq!(io(io::ErrorKind::ConnectionRefused).0, K::Connect);
        assert_eq!(io(io::ErrorKind::TimedOut).0, K::Timeout);
        assert_eq!(io(io::ErrorKind::ConnectionReset).0, K::Io);
        assert_eq!(io(io::ErrorKind::UnexpectedEof).0, K::Io);
        assert_eq!(io(io::ErrorKind::InvalidData).0, K::Protocol);
    }

    #[test]
    fn certificate_errors_are_tls_with_advice() {
        let cert = |c: CertificateError| TlsError::InvalidCertificate(c);
        let (k, m) = kind(E::Rustls(cert(CertificateError::UnknownIssuer)));
        assert_eq!(k, K::Tls);
        assert!(m.contains("--cacert"), "{m}");
        // As rustls's stream reports it: an I/O error carrying its error.
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            cert(CertificateError::NotValidForName),
        );
        let (k, m) = kind(E::Io(wrapped));
        assert_eq!(k, K::Tls);
        assert!(m.contains("host name"), "{m}");
        let ca = CertificateError::Other(rustls::OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        )));
        let (k, m) = kind(E::Rustls(cert(ca)));
        assert_eq!(k, K::Tls);
        assert!(m.contains("CA:TRUE"), "{m}");
        let plain = TlsError::InvalidMessage(InvalidMessage::InvalidContentType);
        assert_eq!(
            kind(E::Rustls(plain)),
            (
                K::Tls,
                "the server does not speak TLS on this port".to_owned()
            )
        );
    }
}
