//! Maps what ureq, rustls and the OS report to our error kinds, by type
//! (never by message text), with messages in our own words.

use std::io::ErrorKind as IoKind;
use std::time::Duration;

use crossbeam_channel::Receiver;
use rustls::{CertificateError, Error as TlsError, InvalidMessage};
use ureq::Error as E;

use super::config::RequestConfig;
use super::net::exchange::current;
use super::net::framing::Fault;
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
        E::ConnectProxyFailed(reason) => proxy_failed(reason),
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
        // ureq's name for input it cannot frame after the server closed:
        // no deadline passed (our framing check refuses such input first).
        E::BodyStalled => (
            K::Protocol,
            "the server closed the connection in a body that cannot be framed".to_owned(),
        ),
        other => (K::Protocol, other.to_string()),
    };
    FetchError::new(kind, message)
}

/// A tunnel through a proxy that failed, as ureq says it did (`reason`).
/// A CONNECT refusal's status comes from what our connection layer saw of
/// the proxy's answer (ureq only gives a sentence).
fn proxy_failed(reason: &str) -> (K, String) {
    match (reason.strip_prefix("SOCKS5: "), current().proxy_refused) {
        // A proxy that hung up may do better next time; one that
        // answered no will not.
        (Some(why @ "the proxy closed the connection"), _) => (
            K::Connect,
            format!("the SOCKS5 proxy did not connect: {why}"),
        ),
        (Some(why), _) => (K::Proxy, format!("the SOCKS5 proxy did not connect: {why}")),
        (None, Some(status)) => (K::Proxy, proxy_refusal(status)),
        (None, None) => (
            K::Connect,
            "the proxy did not answer the tunnel request (CONNECT)".to_owned(),
        ),
    }
}

/// The message for a proxy that answered `CONNECT` with `status`.
fn proxy_refusal(status: u16) -> String {
    let reason = ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or_else(String::new, |r| format!(" {r}"));
    if status == 407 {
        format!(
            "the proxy responded 407{reason}: it wants credentials (give them in the proxy URL, user:password@host)"
        )
    } else {
        format!("the proxy refused the tunnel (CONNECT): it responded {status}{reason}")
    }
}

/// rustls's errors in words, with what to do about the common ones.
fn tls_message(e: &TlsError) -> String {
    use rustls::{AlertDescription as Alert, PeerIncompatible as Incompatible};
    match e {
        TlsError::InvalidCertificate(cert) => certificate_message(cert),
        // The first byte of an HTTP answer ('H') is no TLS record type.
        TlsError::InvalidMessage(InvalidMessage::InvalidContentType) => {
            "the server does not speak TLS on this port".to_owned()
        }
        TlsError::AlertReceived(Alert::ProtocolVersion)
        | TlsError::PeerIncompatible(
            Incompatible::ServerDoesNotSupportTls12Or13
            | Incompatible::Tls12NotOffered
            | Incompatible::Tls12NotOfferedOrEnabled,
        ) => "the server only offers an old TLS version (TLS 1.1 or older);               fetchpool needs TLS 1.2 or 1.3"
            .to_owned(),
        TlsError::AlertReceived(Alert::HandshakeFailure) => {
            "the server refused the TLS handshake (no TLS version or cipher suite in common)"
                .to_owned()
        }
        TlsError::AlertReceived(alert) => format!(
            "the server ended the TLS handshake with the alert \"{}\" ({})",
            words(&format!("{alert:?}")),
            u8::from(*alert)
        ),
        TlsError::PeerIncompatible(why) => format!(
            "the server's TLS is incompatible: {}",
            words(&format!("{why:?}"))
        ),
        TlsError::PeerMisbehaved(why) => format!(
            "the server broke the TLS protocol: {}",
            words(&format!("{why:?}"))
        ),
        TlsError::InvalidMessage(why) => format!(
            "the server sent an invalid TLS message: {}",
            words(&format!("{why:?}"))
        ),
        other => format!("TLS failure: {}", words(&format!("{other:?}"))),
    }
}

/// A certificate error in words, with advice for the common ones.
fn certificate_message(cert: &CertificateError) -> String {
    let text = match cert {
        CertificateError::UnknownIssuer => {
            "certificate signed by an unknown authority (trust it with --cacert FILE)"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate is not valid for this host name"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet"
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => {
                "the server presents a CA certificate (CA:TRUE) as its own; \
                 trust that certificate with --cacert FILE or issue the server a leaf certificate"
            }
            Some(webpki::Error::MaximumPathDepthExceeded) => {
                "the certificate chain is too long (more intermediate certificates than \
                 a verifier follows)"
            }
            Some(
                webpki::Error::MaximumSignatureChecksExceeded
                | webpki::Error::MaximumPathBuildCallsExceeded,
            ) => "the certificate chain is too complex to verify",
            Some(e) => return format!("bad certificate: {}", words(&format!("{e:?}"))),
            None => return format!("bad certificate: {}", words(&other.0.to_string())),
        },
        other => return format!("bad certificate: {}", words(&format!("{other:?}"))),
    };
    text.to_owned()
}

/// The name that leads a Rust `Debug` rendering (`MaximumPathDepthExceeded`,
/// `Other(...)`, `Revoked { .. }`) as lowercase words
/// ("maximum path depth exceeded"): libraries name their error variants
/// well, but their `Debug` text is no message.
fn words(debug: &str) -> String {
    let name: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ' ' || *c == '-')
        .collect();
    let mut out = String::with_capacity(name.len() + 8);
    let mut prev_lower = false;
    for c in name.trim().chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

fn classify_io(io: &std::io::Error) -> (K, String) {
    // Our connection layer's own findings: framing faults, cut connections.
    if let Some(fault) = Fault::of(io) {
        let kind = if fault.cut { K::Io } else { K::Protocol };
        return (kind, fault.to_string());
    }
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

/// How long to wait for a file descriptor to be freed before trying again.
pub(super) const FD_WAIT: Duration = Duration::from_millis(20);

/// Whether `e` says this process (or the system) is out of file
/// descriptors: a shortage of ours, waited out rather than reported.
pub(super) fn is_out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

pub(super) fn cancelled_error() -> FetchError {
    FetchError::new(K::Cancelled, "interrupted while the body was being read")
}

/// Whether `cancel` (never sent on) is disconnected: the run was
/// interrupted.
pub(super) fn is_cancelled(cancel: &Receiver<()>) -> bool {
    matches!(
        cancel.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    )
}

/// Whether `e` is what a keep-alive connection the server had closed gives:
/// a reset, an abort or an early end of stream (not a timeout).
pub(super) fn is_dead_connection(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e, ureq::Error::Io(io) if matches!(io.kind(),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
        | K::UnexpectedEof | K::NotConnected)
        || Fault::of(io).is_some_and(|f| f.cut))
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
        assert_eq!(kind(E::BodyStalled).0, K::Protocol);
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

    /// Every TLS error we can make, in words: no library's `Debug` text
    /// (`Other(`, `OtherError(`, `{ .. }`) reaches a message.
    #[test]
    fn tls_messages_show_no_debug_text() {
        let other = |e: webpki::Error| {
            TlsError::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(e))))
        };
        let mut errors = vec![
            other(webpki::Error::MaximumPathDepthExceeded),
            other(webpki::Error::MaximumSignatureChecksExceeded),
            other(webpki::Error::CaUsedAsEndEntity),
            other(webpki::Error::UnknownIssuer),
            other(webpki::Error::InvalidSignatureForPublicKey),
            TlsError::InvalidCertificate(CertificateError::Revoked),
            TlsError::InvalidCertificate(CertificateError::BadSignature),
            TlsError::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
                io::Error::other("custom"),
            )))),
            TlsError::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered),
            TlsError::PeerMisbehaved(rustls::PeerMisbehaved::TooManyEmptyFragments),
            TlsError::InvalidMessage(InvalidMessage::MessageTooLarge),
            TlsError::General("odd".into()),
            TlsError::NoCertificatesPresented,
            TlsError::DecryptError,
        ];
        errors.extend((0..=255u8).map(|n| TlsError::AlertReceived(n.into())));
        for e in errors {
            let (k, m) = kind(E::Rustls(e.clone()));
            assert_eq!(k, K::Tls, "{e:?}");
            for debug in ["Other(", "OtherError(", "{ ", "Unknown("] {
                assert!(!m.contains(debug), "{e:?} gave {m:?}");
            }
            assert!(
                !m.contains(char::is_uppercase) || m.contains("TLS") || m.contains("CA:TRUE"),
                "{e:?} gave {m:?}"
            );
        }
        let (_, m) = kind(E::Rustls(other(webpki::Error::MaximumPathDepthExceeded)));
        assert!(m.contains("chain is too long"), "{m}");
        let (_, m) = kind(E::Rustls(TlsError::AlertReceived(
            rustls::AlertDescription::ProtocolVersion,
        )));
        assert!(m.contains("old TLS version"), "{m}");
        assert_eq!(
            words("MaximumPathDepthExceeded"),
            "maximum path depth exceeded"
        );
        assert_eq!(words("Other(OtherError(X))"), "other");
    }

    #[test]
    fn a_proxy_refusal_names_its_status() {
        assert!(proxy_refusal(407).contains("407 Proxy Authentication Required"));
        assert!(proxy_refusal(403).contains("refused the tunnel"));
        assert!(proxy_refusal(403).contains("403 Forbidden"));
    }
}
