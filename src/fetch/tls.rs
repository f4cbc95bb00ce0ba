//! TLS on our socket layer: rustls (ring provider), with the trust curl
//! gives.
//!
//! - Trust: the system's store (through `rustls-native-certs`, which reads
//!   `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the distribution's
//!   bundle), loaded at the first `https://` connection; when it is empty or
//!   unreadable, the Mozilla roots bundled in fetchpool. The certificates of
//!   `--cacert` are added either way.
//! - A `--cacert` certificate that the server presents as its own is
//!   trusted as such, even when it is marked CA:TRUE (the self-signed
//!   certificate `openssl req -x509` makes, which curl accepts): only the
//!   host name and the validity dates are checked ([`PinnedVerifier`]).
//! - `-k`: no verification at all.
//!
//! A TLS connection sits directly on our [`Socket`] (one pair of plaintext
//! buffers, deadlines as for plain TCP); through a CONNECT proxy it sits on
//! the tunnel ureq made.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport, TransportAdapter,
};
use ureq::{Error, Timeout};

use super::transport::{
    ConnBuffers, Socket, TcpTransport, check_open, record_received, record_sending, record_tls,
};

/// TLS settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Certificates of `--cacert`.
    pub extra: Vec<CertificateDer<'static>>,
    /// `-k`: no verification.
    pub insecure: bool,
}

/// Wraps a connection in TLS when the URL is `https`.
pub struct TlsConnector {
    settings: TlsSettings,
    config: OnceLock<Arc<ClientConfig>>,
}

impl TlsConnector {
    /// A connector with these settings; the trust store is loaded at the
    /// first `https://` connection.
    pub fn new(settings: TlsSettings) -> Self {
        TlsConnector {
            settings,
            config: OnceLock::new(),
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(
            self.config
                .get_or_init(|| Arc::new(client_config(&self.settings))),
        )
    }
}

/// The rustls config for `settings`.
fn client_config(settings: &TlsSettings) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        // The ring provider supports every safe default version.
        .unwrap_or_else(|e| unreachable!("ring supports TLS 1.2 and 1.3: {e}"));
    let roots = root_store(&settings.extra);
    let verifier: Arc<dyn ServerCertVerifier> = if settings.insecure {
        Arc::new(NoVerifier(provider))
    } else {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            // Never empty: the bundled roots fill in for an empty system store.
            .unwrap_or_else(|e| unreachable!("root store has anchors: {e}"));
        Arc::new(PinnedVerifier {
            pinned: settings.extra.clone(),
            webpki,
        })
    };
    builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// The system's roots, or the bundled ones if it has none; plus `extra`.
fn root_store(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let (added, _) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots.add_parsable_certificates(extra.iter().cloned());
    roots
}

/// The usual WebPKI verification, except for a certificate the user gave
/// with `--cacert` that the server presents as its own: then the user's
/// explicit trust stands in for the chain (and for the CA:TRUE a leaf must
/// not have), and only the host name and the validity dates are checked.
/// The handshake signatures are verified as always.
#[derive(Debug)]
struct PinnedVerifier {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
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
struct NoVerifier(Arc<CryptoProvider>);

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

// ------------------------------------------------------------ transport

impl<In: Transport> Connector<Either<In, TcpTransport>> for TlsConnector {
    // Boxed, and made out of line: the connector chain moves its output
    // through every layer, and a TLS connection by value (over a kilobyte)
    // in those frames costs every worker's stack, plain http included.
    type Out = Either<Either<In, TcpTransport>, Box<TlsTransport>>;

    #[inline(never)]
    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<Either<In, TcpTransport>>,
    ) -> Result<Option<Self::Out>, Error> {
        let Some(chained) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || chained.is_tls() {
            return Ok(Some(Either::A(chained)));
        }
        let io = match chained {
            Either::B(tcp) => TlsIo::Direct(tcp.into_socket()),
            Either::A(tunnel) => TlsIo::Tunnel(TransportAdapter::new(
                Box::new(tunnel),
                details.current_time.clone(),
            )),
        };
        self.wrap(details, io).map(|t| Some(Either::B(t)))
    }
}

impl TlsConnector {
    /// The TLS handshake over `io`.
    #[inline(never)]
    fn wrap(&self, details: &ConnectionDetails, mut io: TlsIo) -> Result<Box<TlsTransport>, Error> {
        let host = details
            .uri
            .host()
            .ok_or(Error::Tls("no host name for TLS"))?;
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| Error::Tls("the host is not a valid TLS server name"))?
            .to_owned();
        let started = Instant::now();
        io.set_timeout(details.timeout);
        let mut transport = Box::new(TlsTransport {
            conn: ClientConnection::new(self.config(), name)?,
            io,
            buffers: ConnBuffers::default(),
            used: true,
        });
        transport.handshake(details.timeout.reason)?;
        record_tls(started.elapsed());
        Ok(transport)
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("extra_roots", &self.settings.extra.len())
            .field("insecure", &self.settings.insecure)
            .finish()
    }
}

/// What TLS runs on: our socket, or a proxy's tunnel.
enum TlsIo {
    Direct(Socket),
    Tunnel(TransportAdapter<Box<dyn Transport>>),
}

impl TlsIo {
    fn set_timeout(&mut self, timeout: NextTimeout) {
        match self {
            TlsIo::Direct(s) => s.set_timeout(timeout),
            TlsIo::Tunnel(t) => t.set_timeout(timeout),
        }
    }
}

impl Read for TlsIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TlsIo::Direct(s) => s.read(buf),
            TlsIo::Tunnel(t) => t.read(buf),
        }
    }
}

impl Write for TlsIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            TlsIo::Direct(s) => s.write(buf),
            TlsIo::Tunnel(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TLS connection.
pub struct TlsTransport {
    conn: ClientConnection,
    io: TlsIo,
    buffers: ConnBuffers,
    /// I/O happened since the last liveness check.
    used: bool,
}

/// A ureq error for an I/O error of the TLS stack: rustls's own errors as
/// such, timeouts with their reason.
fn io_error(e: io::Error, reason: Timeout) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        if let Some(Ok(tls)) = e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            return Error::Rustls(*tls);
        }
        return Error::Tls("TLS error");
    }
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(reason),
        // A tunnel's errors come wrapped; unwrap them.
        _ => Error::from(e),
    }
}

impl TlsTransport {
    fn handshake(&mut self, reason: Timeout) -> Result<(), Error> {
        while self.conn.is_handshaking() {
            self.conn
                .complete_io(&mut self.io)
                .map_err(|e| io_error(e, reason))?;
        }
        self.flush(reason)
    }

    /// Sends what rustls has queued.
    fn flush(&mut self, reason: Timeout) -> Result<(), Error> {
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut self.io)
                .map_err(|e| io_error(e, reason))?;
        }
        Ok(())
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.used = true;
        record_sending();
        let timeout = timeout.for_write();
        self.io.set_timeout(timeout);
        let mut rest = &self.buffers.output()[..amount];
        while !rest.is_empty() {
            let n = self.conn.writer().write(rest)?;
            rest = &rest[n..];
            while self.conn.wants_write() {
                self.conn
                    .write_tls(&mut self.io)
                    .map_err(|e| io_error(e, timeout.reason))?;
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.used = true;
        let timeout = timeout.for_read();
        self.io.set_timeout(timeout);
        let TlsTransport {
            conn, io, buffers, ..
        } = self;
        let input = buffers.input_append_buf();
        let n = loop {
            match conn.reader().read(input) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing decrypted yet: read more from the socket.
                    conn.read_tls(io).map_err(|e| io_error(e, timeout.reason))?;
                    conn.process_new_packets()?;
                    while conn.wants_write() {
                        conn.write_tls(io)
                            .map_err(|e| io_error(e, timeout.reason))?;
                    }
                }
                Err(e) => return Err(io_error(e, timeout.reason)),
            }
        };
        buffers.input_appended(n);
        if n > 0 {
            record_received();
        }
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        match &mut self.io {
            TlsIo::Direct(socket) => check_open(socket, &mut self.used),
            TlsIo::Tunnel(tunnel) => tunnel.get_mut().is_open(),
        }
    }

    fn is_tls(&self) -> bool {
        true
    }
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TlsTransport");
        if let TlsIo::Direct(socket) = &self.io {
            d.field("socket", socket);
        }
        d.finish()
    }
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
