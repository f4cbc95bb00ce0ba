//! Our TCP layer under ureq, through its `unversioned` transport API.
//!
//! ureq's own `TcpTransport` probes a pooled connection with three syscalls
//! (`set_nonblocking`, a read, `set_nonblocking` again) both when it returns
//! to the pool and when it is taken out, re-arms `SO_RCVTIMEO`/`SO_SNDTIMEO`
//! on nearly every request because the deadline shrinks, and gives every
//! connection fixed buffers (see `BENCHMARKS.md`). This one:
//!
//! - checks a pooled connection once, when it is taken out, with one
//!   non-blocking peek (`recv(MSG_PEEK | MSG_DONTWAIT)`); handing it back
//!   right after a complete exchange costs nothing;
//! - keeps each attempt's deadline in user space and arms the socket's
//!   timeouts only when the armed value would let a read or write block past
//!   that deadline, or when a read woke up early ([`Socket`]);
//! - disables Nagle;
//! - sizes buffers to what the exchange needs (`buffers.rs`);
//! - records, per worker thread, whether the connection was reused, how long
//!   connecting took and when the first response byte came (`exchange.rs`),
//!   which the fetch uses for timings and to re-send a request that met a
//!   dead keep-alive connection.
//!
//! The types come from ureq's `unversioned` module, outside semver: ureq's
//! minor version is pinned in `Cargo.toml` and only `src/fetch/` names them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ureq::Error;
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport,
};

use crate::result::trace::{self, Kind};

pub use super::buffers::{ConnBuffers, MAX_HEAD, OUTPUT_MAX};
pub use super::exchange::{begin, current, rewrite_method};
pub(super) use super::exchange::{
    record_connected, record_received, record_reused, record_sending, record_tls,
};
use super::framing::Fault;
pub use super::socket::Socket;

// ------------------------------------------------------------ connector

/// Opens TCP connections (or passes on a tunnel a proxy connector made).
#[derive(Debug, Default)]
pub struct TcpConnector;

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    // Out of line, as every connector of the chain (`agent::build`): the
    // chain runs them one after the other, so their frames need not stack.
    #[inline(never)]
    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(tunnel) = chained {
            // A CONNECT tunnel: the exchange on it starts now.
            record_connected(None);
            return Ok(Some(Either::A(tunnel)));
        }
        let started = Instant::now();
        let socks = details
            .config
            .proxy()
            .filter(|p| super::socks::is_socks5(p));
        let stream = match socks {
            Some(proxy) => {
                let addrs =
                    details
                        .resolver
                        .resolve(proxy.uri(), details.config, details.timeout)?;
                connect(&addrs, details.timeout)?
            }
            None => connect(&details.addrs, details.timeout)?,
        };
        stream.set_nodelay(true)?;
        let mut transport = TcpTransport {
            socket: Socket::new(stream),
            buffers: ConnBuffers::default(),
            used: true,
        };
        // No shutdown handle is registered with the agent: nothing calls
        // `Agent::shutdown`, and each registered handle is visited by ureq
        // on every pool check-out and hand-back.
        let took = started.elapsed();
        trace::emit(Kind::Info, || {
            let peer = transport.socket.peer();
            let via = if socks.is_some() {
                ", SOCKS5 proxy"
            } else {
                ""
            };
            format!(
                "connected to {peer} (new{via}, {:.1} ms)",
                took.as_secs_f64() * 1e3
            )
        });
        if let Some(proxy) = socks {
            socks_tunnel(&mut transport.socket, details, proxy)?;
        }
        record_connected(Some(started.elapsed()));
        Ok(Some(Either::B(transport)))
    }
}

/// Has the SOCKS5 `proxy` on `socket` connect to the request's host,
/// within the connect deadline: by the address resolved here
/// (`socks5://`) or by name (`socks5h://`).
fn socks_tunnel(
    socket: &mut Socket,
    details: &ConnectionDetails,
    proxy: &ureq::Proxy,
) -> Result<(), Error> {
    use super::socks::{Target, handshake};
    let port = details
        .uri
        .port_u16()
        .unwrap_or(if details.needs_tls() { 443 } else { 80 });
    let host = details.uri.host().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let target = if proxy.resolve_target() {
        let addr = details.addrs.first().ok_or(Error::HostNotFound)?;
        Target::Ip(addr.ip())
    } else {
        match bare.parse() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => Target::Name(bare),
        }
    };
    socket.set_timeout(details.timeout);
    handshake(socket, proxy, target, port)?;
    trace::emit(Kind::Info, || {
        let to = match target {
            Target::Ip(ip) => std::net::SocketAddr::new(ip, port).to_string(),
            Target::Name(name) => format!("{name}:{port}"),
        };
        format!("SOCKS5 proxy opened a tunnel to {to}")
    });
    Ok(())
}

/// Tries each address in turn within the connect budget: each but the last
/// gets half of what is left, so a black-holed first address leaves time for
/// the next.
fn connect(addrs: &[SocketAddr], timeout: NextTimeout) -> Result<TcpStream, Error> {
    let deadline = match timeout.after {
        UreqDuration::Exact(d) => Instant::now().checked_add(d),
        UreqDuration::NotHappening => None,
    };
    let mut last_err = None;
    for (i, addr) in addrs.iter().enumerate() {
        let last = i + 1 == addrs.len();
        let result = match deadline {
            None => TcpStream::connect(addr),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Timeout(timeout.reason));
                }
                let budget = if last {
                    left
                } else {
                    (left / 2).max(left.min(Duration::from_millis(10)))
                };
                TcpStream::connect_timeout(addr, budget)
            }
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                last_err = Some(Error::Timeout(timeout.reason));
            }
            Err(e) => last_err = Some(Error::Io(e)),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no address to connect to",
        ))
    }))
}

/// A plain TCP connection.
#[derive(Debug)]
pub struct TcpTransport {
    socket: Socket,
    buffers: ConnBuffers,
    /// I/O happened since the last liveness check.
    used: bool,
}

impl TcpTransport {
    /// The socket and its buffers, for a TLS layer that replaces this one.
    pub(super) fn into_socket(self) -> Socket {
        self.socket
    }
}

/// The error for a failed read: a reset is never the end of a body.
///
/// ureq takes an early end of stream, a reset or an abort from the
/// transport for the server closing the connection, which ends a body
/// delimited by the close as if it were whole.
fn read_error(socket: &Socket, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            Fault::cut("connection reset by peer").into_ureq()
        }
        _ => socket.error(e),
    }
}

/// The result of a read of `n` bytes into `buffers`, shared by the TCP
/// and TLS transports: progress, or what the framing found wrong.
pub(super) fn received(buffers: &mut ConnBuffers, n: usize) -> Result<bool, Error> {
    if let Some(fault) = buffers.take_fault() {
        return Err(fault.into_ureq());
    }
    if n == 0
        && let Some(fault) = buffers.fault_at_close()
    {
        return Err(fault.into_ureq());
    }
    Ok(n > 0)
}

/// The liveness check shared by the TCP and TLS transports: free right
/// after an exchange (ureq hands the connection back to the pool; the bytes
/// it did not consume are checked by ureq itself), one peek when it is taken
/// out again, which also marks the exchange as on a reused connection.
pub(super) fn check_open(socket: &Socket, used: &mut bool) -> bool {
    if std::mem::take(used) {
        return true;
    }
    let open = socket.probe();
    if open {
        record_reused();
        trace::emit(Kind::Info, || {
            format!("reusing the connection to {}", socket.peer())
        });
    }
    open
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.used = true;
        record_sending();
        self.socket.set_timeout(timeout.for_write());
        // See the TLS transport: the framing sees the request before
        // `on_wire`, which changes nothing it looks at.
        self.buffers.sending(amount);
        let output = super::exchange::on_wire(&self.buffers.output()[..amount]);
        self.socket
            .write_all(&output)
            .map_err(|e| self.socket.error(e))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.used = true;
        self.socket.set_timeout(timeout.for_read());
        let input = self.buffers.input_append_buf();
        let n = self
            .socket
            .read(input)
            .map_err(|e| read_error(&self.socket, e))?;
        self.buffers.input_appended(n);
        if n > 0 {
            record_received();
        }
        received(&mut self.buffers, n)
    }

    fn is_open(&mut self) -> bool {
        check_open(&self.socket, &mut self.used)
    }
}
