//! TLS on our socket layer: rustls (ring provider), with the trust curl
//! gives.
//!
//! - Trust: the system's store (through `rustls-native-certs`, which reads
//!   `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the distribution's
//!   bundle), loaded at the first `https://` connection; when it is empty or
//!   unreadable, the Mozilla roots bundled in fetchpool. The certificates of
//!   `--cacert` are added either way.
//! - A trusted certificate (from `--cacert` or the system's store) that
//!   the server presents as its own is trusted as such, even when it is
//!   marked CA:TRUE (the self-signed certificate `openssl req -x509`
//!   makes, which curl accepts): only the host name and the validity dates
//!   are checked (`verify.rs`).
//! - `-k`: no verification at all.
//!
//! A TLS connection sits directly on our [`Socket`] (one pair of plaintext
//! buffers, deadlines as for plain TCP); through a CONNECT proxy it sits on
//! the tunnel ureq made.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport, TransportAdapter,
};
use ureq::{Error, Timeout};

use super::framing::Fault;
use super::transport::{
    ConnBuffers, Socket, TcpTransport, check_open, received, record_received, record_sending,
    record_tls,
};
use super::verify::{NoVerifier, PinnedVerifier};
use crate::result::trace::{self, Kind};

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
    let (roots, pinned) = root_store(&settings.extra);
    let verifier: Arc<dyn ServerCertVerifier> = if settings.insecure {
        Arc::new(NoVerifier(provider))
    } else {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            // Never empty: the bundled roots fill in for an empty system store.
            .unwrap_or_else(|e| unreachable!("root store has anchors: {e}"));
        Arc::new(PinnedVerifier { pinned, webpki })
    };
    builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// The system's roots, or the bundled ones if it has none; plus `extra`.
/// Also every certificate given as such (the system's and `extra`), which
/// a server may present as its own: whichever way a certificate is
/// trusted, it is trusted the same (as curl does).
fn root_store(extra: &[CertificateDer<'static>]) -> (RootCertStore, Vec<CertificateDer<'static>>) {
    let mut roots = RootCertStore::empty();
    let mut certs = rustls_native_certs::load_native_certs().certs;
    let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots.add_parsable_certificates(extra.iter().cloned());
    certs.extend(extra.iter().cloned());
    (roots, certs)
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
        trace::emit(Kind::Info, || describe(&transport.conn));
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

/// The version and cipher of a handshake, and the subject, issuer and expiry
/// of the server's certificate, for the trace.
fn describe(conn: &ClientConnection) -> String {
    let version = conn
        .protocol_version()
        .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}"));
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or_else(String::new, |c| format!("{:?}", c.suite()));
    let mut s = format!("TLS {version} {cipher}").replace("TLS TLSv", "TLSv");
    if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first())
        && let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf)
    {
        let expiry = cert.validity().not_after.to_rfc2822().unwrap_or_else(|e| e);
        s.push_str(&format!(
            "; certificate: subject {}; issuer {}; expires {expiry}",
            cert.subject(),
            cert.issuer()
        ));
    }
    s
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
        // Never the end of a body (see `transport::received`).
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            Fault::cut("connection reset by peer").into_ureq()
        }
        // A tunnel's errors come wrapped; unwrap them.
        _ => Error::from(e),
    }
}

impl TlsTransport {
    fn handshake(&mut self, reason: Timeout) -> Result<(), Error> {
        while self.conn.is_handshaking() {
            match self.conn.complete_io(&mut self.io) {
                // The server hung up before the handshake was done: a TLS
                // failure, not a break in a response.
                Ok((0, 0)) => {
                    return Err(Error::Tls(
                        "the server closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Error::Tls(
                        "the server closed the connection during the TLS handshake",
                    ));
                }
                Err(e) => return Err(io_error(e, reason)),
            }
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
        // The method stand-ins of `on_wire` are never HEAD or CONNECT, so
        // the bytes before it tell the framing as much as those after.
        self.buffers.sending(amount);
        let output = super::exchange::on_wire(&self.buffers.output()[..amount]);
        let mut rest = &output[..];
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
                // The server closed the connection without close_notify:
                // for a body delimited by the close, that is the only proof
                // it is whole, and anyone on the path can cut it short.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(
                        Fault::cut("connection closed without TLS close_notify").into_ureq()
                    );
                }
                Err(e) => return Err(io_error(e, timeout.reason)),
            }
        };
        buffers.input_appended(n);
        if n > 0 {
            record_received();
        }
        received(buffers, n)
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
