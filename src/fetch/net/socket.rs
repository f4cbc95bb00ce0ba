//! A connected TCP socket that keeps each read and write to a deadline
//! held in user space, arming the socket's own timeouts only when they
//! would let a call block past it (see [`Socket`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::NextTimeout;
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::{Error, Timeout};

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
    stream: TcpStream,
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
    pub(super) fn new(stream: TcpStream) -> Socket {
        Socket {
            stream,
            deadline: None,
            reason: Timeout::Global,
            read_armed: None,
            write_armed: None,
        }
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
    pub(super) fn probe(&self) -> bool {
        use rustix::io::Errno;
        use rustix::net::{RecvFlags, recv};
        let mut byte = [0u8; 1];
        loop {
            return match recv(
                &self.stream,
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
    pub(super) fn probe(&self) -> bool {
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
