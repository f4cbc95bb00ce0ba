//! Certificate checks beyond rustls's own: a trusted certificate (from
//! `--cacert` or the system's store) that the server presents as its own
//! is trusted as such ([`PinnedVerifier`]), and
//! `-k` accepts anything ([`NoVerifier`]). The pinned check needs the
//! validity dates, which webpki does not expose: x509-parser reads them.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The usual WebPKI verification, except for a trusted certificate (from
/// `--cacert` or the system's store) that the server presents as its own:
/// then that explicit trust stands in for the chain (and for the CA:TRUE a
/// leaf must not have), and only the host name and the validity dates are
/// checked.
/// The handshake signatures are verified as always.
#[derive(Debug)]
pub(super) struct PinnedVerifier {
    /// The trusted certificates: the system's and those of `--cacert`.
    pub(super) pinned: Vec<CertificateDer<'static>>,
    /// The usual verification, for every other certificate.
    pub(super) webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            );
        }
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_name(&cert, server_name)?;
        let (not_before, not_after) = validity(end_entity.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < not_before {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > not_after {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `-k`: accepts any certificate and signature.
#[derive(Debug)]
pub(super) struct NoVerifier(pub(super) Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ------------------------------------------------------------ validity

/// `notBefore` and `notAfter` of an X.509 certificate, in Unix seconds
/// (RFC 5280, 4.1.2.5: UTCTime or GeneralizedTime), read by x509-parser.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = cert.validity();
    Some((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};
    use rustls::RootCertStore;

    /// A self-signed certificate for `localhost`, valid from `from` to
    /// `until` (year, month, day, at midnight UTC).
    fn cert(from: (i32, u8, u8), until: (i32, u8, u8)) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(until.0, until.1, until.2);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    /// Whether `der` holds `time` as a DER element with tag `tag`.
    fn encodes(der: &[u8], tag: u8, time: &[u8]) -> bool {
        let mut element = vec![tag, u8::try_from(time.len()).unwrap()];
        element.extend_from_slice(time);
        der.windows(element.len()).any(|w| w == element)
    }

    #[test]
    fn validity_reads_utc_times() {
        // Years before 2050 are UTCTime (YYMMDDHHMMSSZ).
        let der = cert((2001, 9, 9), (2038, 1, 19));
        assert!(encodes(&der, 0x17, b"010909000000Z"));
        assert!(encodes(&der, 0x17, b"380119000000Z"));
        assert_eq!(validity(&der), Some((999_993_600, 2_147_472_000)));
    }

    #[test]
    fn validity_reads_generalized_times() {
        // From 2050 on, GeneralizedTime (YYYYMMDDHHMMSSZ).
        let der = cert((2049, 12, 31), (2100, 3, 1));
        assert!(encodes(&der, 0x17, b"491231000000Z"));
        assert!(encodes(&der, 0x18, b"21000301000000Z"));
        assert_eq!(validity(&der), Some((2_524_521_600, 4_107_542_400)));
    }

    #[test]
    fn validity_reads_dates_before_1970() {
        // UTCTime 50-99 is 19YY: before the Unix epoch, negative.
        let der = cert((1960, 1, 1), (2030, 1, 1));
        assert!(encodes(&der, 0x17, b"600101000000Z"));
        assert_eq!(validity(&der), Some((-315_619_200, 1_893_456_000)));
    }

    #[test]
    fn validity_of_anything_else_is_none() {
        let der = cert((2001, 1, 1), (2030, 1, 1));
        assert_eq!(validity(&der[..der.len() / 2]), None);
        assert_eq!(validity(b""), None);
        assert_eq!(validity(b"\x30\x03\x02\x01\x00"), None);
    }

    /// Verifies the pinned `der` for `localhost` at `now` (Unix seconds).
    fn pinned_at(der: &CertificateDer<'static>, now: u64) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let verifier = PinnedVerifier {
            pinned: vec![der.clone()],
            webpki,
        };
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now));
        verifier
            .verify_server_cert(der, &[], &name, &[], now)
            .map(drop)
    }

    #[test]
    fn a_pinned_certificate_is_checked_against_its_dates() {
        let der = cert((2049, 12, 31), (2100, 3, 1));
        let (not_before, not_after) = (2_524_521_600, 4_107_542_400);
        let invalid = |e| rustls::Error::InvalidCertificate(e);
        assert_eq!(
            pinned_at(&der, not_before - 1),
            Err(invalid(CertificateError::NotValidYet))
        );
        assert_eq!(pinned_at(&der, not_before), Ok(()));
        assert_eq!(pinned_at(&der, not_after), Ok(()));
        assert_eq!(
            pinned_at(&der, not_after + 1),
            Err(invalid(CertificateError::Expired))
        );
        // Valid since before 1970: any time after is fine.
        let old = cert((1960, 1, 1), (2030, 1, 1));
        assert_eq!(pinned_at(&old, 0), Ok(()));
        assert_eq!(
            pinned_at(&old, 1_893_456_001),
            Err(invalid(CertificateError::Expired))
        );
    }
}
