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

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, ShutdownHandle, Transport,
};
use ureq::{Error, Timeout};

use crate::result::trace::{self, Kind};

pub use super::buffers::{ConnBuffers, MAX_HEAD, OUTPUT_MAX};
pub use super::exchange::{begin, current, rewrite_method};
pub(super) use super::exchange::{
    record_connected, record_received, record_reused, record_sending, record_tls,
};
use super::framing::Fault;

// ------------------------------------------------------------ the socket

/// A connected TCP socket whose reads and writes keep to a deadline held in
/// user space.
///
/// ureq hands every call the time left ([`NextTimeout`]). A socket timeout
/// longer than that could let a read block past the deadline, so the armed
/// `SO_RCVTIMEO`/`SO_SNDTIMEO` is kept at or below the time left: it is
/// re-armed when it is longer (to 7/8 of the time left, so the next requests
/// of the connection, whose time left is about the same, need no change), or
/// when a read or write woke up before the deadline (to exactly the time
/// left). A server that drips bytes gets no more time: the time left shrinks
/// with each call and ends in a timeout at the deadline.
pub struct Socket {
    stream: Arc<TcpStream>,
    deadline: Option<Instant>,
    reason: Timeout,
    read_armed: Option<Duration>,
    write_armed: Option<Duration>,
}

/// Below this a timeout is armed as it is, not shortened to 7/8.
const ARM_EXACT_BELOW: Duration = Duration::from_millis(8);

#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

impl Socket {
    fn new(stream: TcpStream) -> Socket {
        Socket {
            stream: Arc::new(stream),
            deadline: None,
            reason: Timeout::Global,
            read_armed: None,
            write_armed: None,
        }
    }

    /// A handle ureq's agent can use to shut the socket down.
    fn shutdown_handle(&self) -> Weak<dyn ShutdownHandle> {
        Arc::downgrade(&self.stream) as Weak<dyn ShutdownHandle>
    }

    /// Sets the deadline for the following reads and writes.
    pub fn set_timeout(&mut self, timeout: NextTimeout) {
        self.deadline = match timeout.after {
            UreqDuration::Exact(d) => Instant::now().checked_add(d),
            UreqDuration::NotHappening => None,
        };
        self.reason = timeout.reason;
    }

    /// The time left; `TimedOut` once the deadline has passed.
    fn time_left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(Some(left))
    }

    /// Arms the socket timeout for `dir` so that no call blocks past the
    /// deadline; `woke_early` after a call timed out before it.
    fn arm(&mut self, dir: Direction, woke_early: bool) -> io::Result<()> {
        let left = self.time_left()?;
        let armed = match dir {
            Direction::Read => self.read_armed,
            Direction::Write => self.write_armed,
        };
        let want = match left {
            None => None,
            Some(left) => match armed {
                Some(a) if a <= left && !woke_early => return Ok(()),
                _ if woke_early || left < ARM_EXACT_BELOW => Some(left),
                _ => Some(left - left / 8),
            },
        };
        if want == armed {
            return Ok(());
        }
        match dir {
            Direction::Read => {
                self.stream.set_read_timeout(want)?;
                self.read_armed = want;
            }
            Direction::Write => {
                self.stream.set_write_timeout(want)?;
                self.write_armed = want;
            }
        }
        Ok(())
    }

    /// The address at the other end, for the trace.
    pub fn peer(&self) -> String {
        self.stream
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string())
    }

    /// A ureq error for an I/O error of this socket.
    pub fn error(&self, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(self.reason),
            _ => Error::Io(e),
        }
    }

    /// Whether an idle connection is still usable: nothing to read and not
    /// closed, found with one non-blocking peek.
    #[cfg(unix)]
    fn probe(&self) -> bool {
        use rustix::io::Errno;
        use rustix::net::{RecvFlags, recv};
        let mut byte = [0u8; 1];
        loop {
            return match recv(
                &*self.stream,
                &mut byte,
                RecvFlags::PEEK | RecvFlags::DONTWAIT,
            ) {
                // Nothing waiting: the normal state of an idle connection.
                Err(Errno::WOULDBLOCK) => true,
                Err(Errno::INTR) => continue,
                // 0: closed by the server; more: bytes nobody asked for.
                Ok(_) | Err(_) => false,
            };
        }
    }

    /// Whether an idle connection is still usable (portable version).
    #[cfg(not(unix))]
    fn probe(&self) -> bool {
        let mut byte = [0u8; 1];
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open = matches!(self.stream.peek(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

impl Socket {
    /// Runs one read or write, arming the deadline first and again after a
    /// wake-up that came before it (the armed timeout is an upper bound).
    fn io(
        &mut self,
        direction: Direction,
        mut op: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut woke_early = false;
        loop {
            self.arm(direction, woke_early)?;
            match op(&self.stream) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    woke_early = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(Direction::Read, |mut stream| stream.read(buf))
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io(Direction::Write, |mut stream| stream.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

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
        (details.register_shutdown)(transport.socket.shutdown_handle())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_timeouts_armed_once_and_never_past_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut s = Socket::new(stream);
        let next = |secs| NextTimeout {
            after: UreqDuration::Exact(Duration::from_secs(secs)),
            reason: Timeout::Global,
            ..NextTimeout::default()
        };
        s.set_timeout(next(30));
        s.arm(Direction::Read, false).unwrap();
        let first = s.read_armed.unwrap();
        assert!(first <= Duration::from_secs(30) && first > Duration::from_secs(25));
        // The next request of the connection: same armed value.
        s.set_timeout(next(30));
        s.arm(Direction::Read, false).unwrap();
        assert_eq!(s.read_armed, Some(first));
        // Less time left than armed: lowered.
        s.set_timeout(next(2));
        s.arm(Direction::Read, false).unwrap();
        assert!(s.read_armed.unwrap() <= Duration::from_secs(2));
        // Woke early: armed to what is left.
        s.set_timeout(next(20));
        s.arm(Direction::Read, true).unwrap();
        assert!(s.read_armed.unwrap() > Duration::from_secs(19));
    }
}
