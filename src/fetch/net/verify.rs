//! Certificate checks beyond rustls's own: a trusted certificate (from
//! `--cacert` or the system's store) that the server presents as its own
//! is trusted as such ([`PinnedVerifier`]), and
//! `-k` accepts anything ([`NoVerifier`]). The pinned check needs the
//! validity dates, which webpki does not expose: a small DER reader gets
//! them (RFC 5280, 4.1).

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
        let now = now.as_secs();
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

/// `notBefore` and `notAfter` of an X.509 certificate, in Unix seconds.
///
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE { notBefore
/// Time, notAfter Time }, ... }, ... }` (RFC 5280, 4.1).
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (cert, _) = tlv(der, 0x30)?;
    let (mut tbs, _) = tlv(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30] {
        tbs = tlv(tbs, tag)?.1; // serial, signature algorithm, issuer
    }
    let (validity, _) = tlv(tbs, 0x30)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

/// One DER element with tag `tag`: its contents and what follows it.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), in
/// Unix seconds, and what follows it.
fn time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (text, rest, year_digits) = match input.first()? {
        0x17 => tlv(input, 0x17).map(|(t, r)| (t, r, 2))?,
        0x18 => tlv(input, 0x18).map(|(t, r)| (t, r, 4))?,
        _ => return None,
    };
    if text.len() != year_digits + 11 || text.last() != Some(&b'Z') {
        return None;
    }
    let digits = &text[..text.len() - 1];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'))
    };
    let mut year = num(0..year_digits);
    if year_digits == 2 {
        // RFC 5280: YY >= 50 is 19YY, else 20YY.
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let at = year_digits;
    let (month, day) = (num(at..at + 2), num(at + 2..at + 4));
    let (hour, minute, second) = (
        num(at + 4..at + 6),
        num(at + 6..at + 8),
        num(at + 8..at + 10),
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || year < 1970
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian; H. Hinnant's
/// `days_from_civil`), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2038, 1, 19), 24_855);
    }

    #[test]
    fn times_in_both_forms() {
        // UTCTime 500101000000Z is 1950: before 1970, refused.
        assert!(time(b"\x17\x0d500101000000Z").is_none());
        let (t, rest) = time(b"\x17\x0d700102000000Zxy").unwrap();
        assert_eq!((t, rest), (86_400, &b"xy"[..]));
        let (t, _) = time(b"\x18\x0f20380119031407Z").unwrap();
        assert_eq!(t, 2_147_483_647);
        assert!(time(b"\x18\x0f2038011903140+Z").is_none());
        assert!(time(b"\x17\x0d701302000000Z").is_none());
    }

    #[test]
    fn long_form_lengths() {
        let mut der = vec![0x30, 0x82, 0x01, 0x00];
        der.extend(std::iter::repeat_n(7u8, 256));
        let (content, rest) = tlv(&der, 0x30).unwrap();
        assert_eq!((content.len(), rest.len()), (256, 0));
        assert!(tlv(&der[..100], 0x30).is_none());
        assert!(tlv(&der, 0x31).is_none());
    }
}
