//! A raw-socket loopback server, std only: each request is handed to a
//! closure that writes whatever bytes it likes on the stream (a whole
//! answer, half of one, nothing) and says whether the connection stays
//! open. Every request is recorded, and a test can wait until the server
//! has seen a number of them: signals and other steps are synchronised on
//! what the server observed, never on clocks.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Largest request head read.
const MAX_HEAD: usize = 64 * 1024;

/// One request as the server read it; header names lowercased.
#[derive(Clone, Debug)]
pub struct Req {
    pub target: String,
    pub headers: HashMap<String, String>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What the handler did with the connection.
pub enum Then {
    /// The answer was whole: read the next request.
    KeepAlive,
    /// Close the connection (FIN).
    Close,
    /// Close with the request unread, so the kernel sends RST.
    Reset,
    /// Keep the connection open without answering until the server stops.
    Hang,
}

type Handler = dyn Fn(&Req, &mut TcpStream, &Stopped) -> io::Result<Then> + Send + Sync;

/// The server's stop flag, for handlers that wait (slow bodies, hangs).
#[derive(Clone, Default)]
pub struct Stopped(Arc<AtomicBool>);

impl Stopped {
    /// Sleeps `d` unless the server stops first; false once it has.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.0.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(Duration::from_millis(5).min(end - Instant::now()));
        }
        !self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<Req>>,
    more: Condvar,
}

/// A running server on 127.0.0.1; stops when dropped.
pub struct RawServer {
    port: u16,
    log: Arc<Log>,
    stopped: Stopped,
}

impl RawServer {
    /// Starts serving with `handler`.
    pub fn start(
        handler: impl Fn(&Req, &mut TcpStream, &Stopped) -> io::Result<Then> + Send + Sync + 'static,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let log = Arc::new(Log::default());
        let stopped = Stopped::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (l, s) = (Arc::clone(&log), stopped.clone());
        thread::spawn(move || {
            while !s.0.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (l, s, h) = (Arc::clone(&l), s.clone(), Arc::clone(&handler));
                        thread::spawn(move || serve(stream, &l, &s, &*h));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        RawServer { port, log, stopped }
    }

    /// `http://127.0.0.1:PORT` + `target`.
    pub fn url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}{target}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Req> {
        self.log.seen.lock().unwrap().clone()
    }

    /// Requests so far for `target`.
    pub fn seen_for(&self, target: &str) -> Vec<Req> {
        self.seen()
            .into_iter()
            .filter(|r| r.target == target)
            .collect()
    }

    /// Waits until the server has read `n` requests in all; false if
    /// `bound` passed first (a bound against hangs, not a timing).
    pub fn wait_for(&self, n: usize, bound: Duration) -> bool {
        let end = Instant::now() + bound;
        let mut seen = self.log.seen.lock().unwrap();
        while seen.len() < n {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            seen = self.log.more.wait_timeout(seen, end - now).unwrap().0;
        }
        true
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stopped.0.store(true, Ordering::SeqCst);
    }
}

fn serve(mut stream: TcpStream, log: &Log, stopped: &Stopped, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    loop {
        let Some((req, len)) = peek_head(&stream, stopped) else {
            return;
        };
        {
            let mut seen = log.seen.lock().unwrap();
            seen.push(req.clone());
            log.more.notify_all();
        }
        let then = handler(&req, &mut stream, stopped);
        // The head is consumed after the answer, so that a reset finds it
        // still unread: Linux answers a close with unread data with RST.
        if !matches!(then, Ok(Then::Reset)) {
            let mut head = vec![0u8; len];
            if stream.read_exact(&mut head).is_err() {
                return;
            }
        }
        match then {
            Ok(Then::KeepAlive) => {}
            Ok(Then::Close) | Err(_) => {
                let _ = stream.flush();
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Ok(Then::Reset) => return,
            Ok(Then::Hang) => {
                while stopped.sleep(Duration::from_millis(50)) {}
                return;
            }
        }
    }
}

/// Peeks at the next request head, leaving it in the kernel; (request,
/// head length). None when the client closed or the server stopped.
fn peek_head(stream: &TcpStream, stopped: &Stopped) -> Option<(Req, usize)> {
    let mut buf = vec![0u8; MAX_HEAD];
    loop {
        if stopped.0.load(Ordering::SeqCst) {
            return None;
        }
        match stream.peek(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                    return Some((parse(&buf[..end])?, end + 4));
                }
                if n == buf.len() {
                    return None;
                }
                thread::sleep(Duration::from_millis(1));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
}

fn parse(head: &[u8]) -> Option<Req> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let _method = first.next()?;
    let target = first.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Req { target, headers })
}

/// Writes a whole answer with a `Content-Length` (none for 1xx, 204, 304).
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<Then> {
    let bodiless = status < 200 || status == 204 || status == 304;
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !bodiless {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !bodiless {
        stream.write_all(body)?;
    }
    Ok(Then::KeepAlive)
}
