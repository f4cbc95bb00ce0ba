//! The one loopback HTTP/1.1 test server of the suite, std only (plus
//! rustls for [`TestServer::start_tls`]).
//!
//! It binds `127.0.0.1:0`, serves each connection on its own thread with
//! keep-alive, and never opens a connection to any other address. Dropping
//! the [`TestServer`] stops the listener and releases every handler that is
//! waiting (`/hold`, `/gate`, `/slow`, the slow faults, [`Reply::delay`]).
//!
//! # What it records
//!
//! Every request, in arrival order, as a [`Request`]: method, target,
//! headers (names lowercased), the body, how the body was framed
//! ([`Framing`]: none, `Content-Length` or chunked), its arrival number
//! across *all* servers of the test binary ([`Request::order`], so the order
//! in which two hosts were asked can be compared), its count for its path
//! ([`Request::nth`]), its connection ([`Request::connection`]) and how many
//! requests this server had in flight when it arrived, itself included
//! ([`Request::in_flight`]). [`TestServer::max_in_flight`] is the most it
//! ever had at once, [`TestServer::connections`] the connections accepted.
//!
//! # Answers
//!
//! Routes added with [`TestServer::route`] come first, in the order added;
//! a pattern is a path (`/a/b`, query ignored) or a prefix ending in `*`
//! (`/files/*`, or `*` for everything):
//!
//! ```ignore
//! let server = TestServer::start();
//! server.route("/login", |req| match req.header("authorization") {
//!     Some(_) => Reply::ok("welcome\n"),
//!     None => Reply::status(401).header("WWW-Authenticate", "Basic"),
//! });
//! // A malformed reply: exactly these bytes, then close.
//! server.route("/bad", |_| Reply::raw(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").close());
//! ```
//!
//! [`TestServer::routed`] answers everything from one closure (no built-in
//! routes). A [`Reply`] adds `Content-Length` itself (none for 1xx, 204,
//! 304, no body for HEAD); [`Reply::raw`] writes bytes as given, for
//! malformed replies; [`Reply::close`] and [`Reply::close_soon`] end the
//! connection after the answer (the latter after a moment, so the client's
//! next request meets a reset, as with a dead keep-alive connection);
//! [`Reply::hold`] keeps the connection open until the client closes it
//! (a server stalled mid-body); [`Reply::delay`] waits before answering.
//! [`TestServer::answered`] counts answers written in full.
//!
//! Then the built-in routes ([`builtin`]; the query string is ignored, so
//! `/ok?i=3` is `/ok`):
//!
//! | path | answer |
//! |---|---|
//! | `/ok` | 200, body `ok\n` |
//! | `/status/NNN` | that status, short body |
//! | `/bytes/N`, `/bytes?n=N` | 200, exactly N bytes of [`body_byte`] content |
//! | `/big` | 200, [`BIG_LEN`] bytes |
//! | `/redirect/N` | 302 to `/redirect/N-1`, `/redirect/1` goes to `/ok` |
//! | `/hold` | waits until [`TestServer::set_hold_target`] requests are in flight (or 20 s), then 200 |
//! | `/slow/MS` | sleeps MS milliseconds, then 200 |
//! | `/gate` | waits until [`TestServer::open_gate`] (or 40 s), then 200 |
//! | `/fault/reset` | closes with RST (see below) |
//! | `/fault/hang` | reads the request, never answers, keeps the socket open |
//! | `/fault/garbage` | `SSH-2.0-nope\r\n\r\n`, then close |
//! | `/fault/short` | promises 1000 bytes, sends 10, closes |
//! | `/fault/drip` | 200 with 100 bytes, one every 200 ms |
//! | `/fault/endless` | a chunked body that never ends |
//! | `/fault/self-redirect` | 302 to itself |
//! | `/fault/flaky503/ID` | 503 the first two times for ID, then 200 |
//! | `/fault/retry-after/ID` | 429 with `Retry-After: 1` the first time for ID, then 200 |
//! | anything else | 404, or after [`TestServer::serve_any`] 200 with [`echo_body`] of the target |
//!
//! A real RST without `SO_LINGER` (`TcpStream::set_linger` is unstable and
//! socket2 is not a dependency): on plain connections the request head is
//! only *peeked* before it is routed, and for `/fault/reset` the stream is
//! dropped with the request still unread in the kernel's receive queue.
//! Linux (RFC 2525, 2.17) answers a close with unread data with RST.
//!
//! Outside HTTP, [`raw::listen`] serves each connection with a closure over
//! the raw socket (a server that never speaks, or speaks something else),
//! and [`proxy::TunnelProxy`] is a recording `CONNECT` proxy.

mod builtin;
pub mod proxy;
pub mod raw;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use builtin::{BIG_LEN, body_byte, echo_body};
use wire::Conn;

/// Idle keep-alive connections are closed after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Numbers every request any server of the test binary receives.
static ARRIVALS: AtomicU64 = AtomicU64::new(0);

/// How a request body was framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`.
    None,
    /// `Content-Length: N`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One request as the server read it. Header names are lowercased.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    pub framing: Framing,
    /// Arrival number across every server of the test binary.
    pub order: u64,
    /// How many requests with this path this server had received, this one included.
    pub nth: usize,
    /// The connection it came on: 1 for the first one this server accepted.
    pub connection: usize,
    /// Requests this server had in flight when it arrived, this one included.
    pub in_flight: usize,
}

impl Request {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        path_of(&self.target)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `pattern` names this request: with a `?` it must equal the
    /// whole target, without one it must equal the path.
    fn matches(&self, pattern: &str) -> bool {
        if pattern.contains('?') {
            self.target == pattern
        } else {
            self.path() == pattern
        }
    }
}

/// What the connection does after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Wait for the next request (unless the client asked to close).
    KeepAlive,
    /// Close at once.
    Close,
    /// Close after a moment without saying so: the client's next request
    /// is by then in the receive queue, so it meets a reset.
    CloseSoon,
    /// Keep the connection open, reading nothing, until the client closes it
    /// (a server stalled mid-body).
    Hold,
}

/// An answer from a route.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    /// Values are bytes, so a test can send what no well-behaved server would.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Bytes written instead of a response built from the fields above.
    pub raw: Option<Vec<u8>>,
    pub after: After,
    /// Waited before answering (cut short when the server stops).
    pub delay: Duration,
}

impl Reply {
    /// 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            raw: None,
            after: After::KeepAlive,
            delay: Duration::ZERO,
        }
    }

    /// `status` with a short body naming it.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok(format!("status {status}\n"))
        }
    }

    /// A redirect with `location` sent as raw bytes (None: no header).
    pub fn redirect(status: u16, location: Option<&[u8]>) -> Reply {
        let reply = Reply {
            status,
            ..Reply::ok("moved\n")
        };
        match location {
            Some(l) => reply.header("Location", l),
            None => reply,
        }
    }

    /// Exactly `bytes` on the wire, for malformed replies.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            raw: Some(bytes.into()),
            ..Reply::ok("")
        }
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Reply {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub fn close(mut self) -> Reply {
        self.after = After::Close;
        self
    }

    pub fn close_soon(mut self) -> Reply {
        self.after = After::CloseSoon;
        self
    }

    pub fn hold(mut self) -> Reply {
        self.after = After::Hold;
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Writes the answer to `req`.
    fn write(&self, out: &mut dyn Write, req: &Request) -> io::Result<()> {
        if let Some(raw) = &self.raw {
            out.write_all(raw)?;
            return out.flush();
        }
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).into_bytes();
        for (name, value) in &self.headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        if !bodiless {
            head.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        if !bodiless && !req.method.eq_ignore_ascii_case("HEAD") {
            head.extend_from_slice(&self.body);
        }
        out.write_all(&head)?;
        out.flush()
    }
}

/// A route's answer to one request.
type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running loopback server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    listener: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds 127.0.0.1 on a free port and serves the built-in routes.
    pub fn start() -> TestServer {
        Self::launch(true, None)
    }

    /// Like [`TestServer::start`], over TLS with `config`.
    pub fn start_tls(config: Arc<rustls::ServerConfig>) -> TestServer {
        Self::launch(true, Some(config))
    }

    /// A server that answers every request with `answer` (no built-in routes).
    pub fn routed(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> TestServer {
        let server = Self::launch(false, None);
        server.route("*", answer);
        server
    }

    fn launch(builtins: bool, tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(State {
            builtins,
            ..State::default()
        });
        let shared = Arc::clone(&state);
        let listener = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || accept_loop(listener, shared, tls))
            .expect("spawn listener thread");
        TestServer {
            addr,
            state,
            listener: Some(listener),
        }
    }

    /// Answers requests that `pattern` names with `answer`, before any
    /// route added later and before the built-in ones: a path (query
    /// ignored), or a prefix ending in `*`.
    pub fn route(
        &self,
        pattern: &str,
        answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> &TestServer {
        let handler: Arc<Handler> = Arc::new(answer);
        self.state
            .routes
            .write()
            .unwrap()
            .push((pattern.to_owned(), handler));
        self
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    /// `https://127.0.0.1:PORT` followed by `path`, for [`TestServer::start_tls`].
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`, the host's key in politeness and summaries.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// Lets every waiting and future `/gate` request through.
    pub fn open_gate(&self) {
        self.state.lock().gate_open = true;
        self.state.changed.notify_all();
    }

    /// `/gate` requests that gave up waiting ([`builtin::GATE_FALLBACK`]) instead of
    /// being let through by [`TestServer::open_gate`].
    pub fn gate_fallbacks(&self) -> usize {
        self.state.lock().gate_fallbacks
    }

    /// From now on, answer unknown paths with 200 and [`echo_body`] of the
    /// target (path and query as received) instead of 404.
    pub fn serve_any(&self) {
        self.state.serve_any.store(true, Ordering::SeqCst);
    }

    /// When each request arrived (was read), in arrival order.
    pub fn arrival_times(&self) -> Vec<Instant> {
        self.state.requests.lock().unwrap().times.clone()
    }

    /// `/hold` requests that gave up waiting for their batch (20 s).
    pub fn hold_fallbacks(&self) -> usize {
        self.state.lock().hold_fallbacks
    }

    /// How many requests in flight release the waiting `/hold` requests.
    pub fn set_hold_target(&self, target: usize) {
        self.state.lock().hold_target = target;
    }

    /// Requests whose path (or, if `pattern` has a `?`, whole target) is `pattern`.
    pub fn hits(&self, pattern: &str) -> usize {
        self.requests_for(pattern).len()
    }

    /// The requests [`TestServer::hits`] counts, in arrival order.
    pub fn requests_for(&self, pattern: &str) -> Vec<Request> {
        let log = self.state.requests.lock().unwrap();
        log.all
            .iter()
            .filter(|r| r.matches(pattern))
            .cloned()
            .collect()
    }

    /// The one request whose whole target is `target`; panics unless there
    /// is exactly one.
    pub fn only(&self, target: &str) -> Request {
        let mut hits: Vec<Request> = self
            .requests()
            .into_iter()
            .filter(|r| r.target == target)
            .collect();
        assert_eq!(hits.len(), 1, "requests for {target}: {:?}", self.targets());
        hits.remove(0)
    }

    /// The targets received, in arrival order.
    pub fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.target).collect()
    }

    pub fn total_requests(&self) -> usize {
        self.state.requests.lock().unwrap().all.len()
    }

    /// A copy of every request read so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().all.clone()
    }

    /// The most requests that were ever read and not yet answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().max_in_flight
    }

    /// Answers written in full so far (a raw reply counts once its bytes
    /// are written, even if it promised more).
    pub fn answered(&self) -> usize {
        self.state.answered.load(Ordering::SeqCst)
    }

    /// Polls until at least `n` answers were written; false if `bound` passed first.
    pub fn wait_for_answers(&self, n: usize, bound: Duration) -> bool {
        let start = Instant::now();
        while self.answered() < n {
            if start.elapsed() > bound {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Polls until at least `n` requests have arrived; false if `bound` passed first.
    pub fn wait_for_requests(&self, n: usize, bound: Duration) -> bool {
        let start = Instant::now();
        while self.total_requests() < n {
            if start.elapsed() > bound {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        self.state.changed.notify_all();
        // Wake the blocking accept() so the listener thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

#[derive(Default)]
struct State {
    shutdown: AtomicBool,
    connections: AtomicUsize,
    /// Answers written in full.
    answered: AtomicUsize,
    /// Whether the built-in routes answer what no added route does.
    builtins: bool,
    /// Unknown paths get 200 and [`echo_body`] instead of 404.
    serve_any: AtomicBool,
    routes: RwLock<Vec<(String, Arc<Handler>)>>,
    requests: Mutex<Log>,
    flight: Mutex<Flight>,
    /// Signalled on every change of `flight` and on shutdown.
    changed: Condvar,
}

#[derive(Default)]
struct Log {
    all: Vec<Request>,
    /// When each request of `all` arrived.
    times: Vec<Instant>,
    /// Requests per path, so routing never scans `all`.
    per_path: HashMap<String, usize>,
}

#[derive(Default)]
struct Flight {
    in_flight: usize,
    max_in_flight: usize,
    hold_target: usize,
    /// `/hold` requests waiting for their batch to fill.
    hold_waiting: usize,
    /// Bumped each time a `/hold` batch fills; its waiters leave when it moves.
    hold_epoch: u64,
    /// `/hold` requests that hit `HOLD_FALLBACK` instead of filling a batch.
    hold_fallbacks: usize,
    /// Set by [`TestServer::open_gate`].
    gate_open: bool,
    /// `/gate` requests that hit [`builtin::GATE_FALLBACK`].
    gate_fallbacks: usize,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Flight> {
        self.flight.lock().unwrap()
    }

    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, or less if the server shuts down. False on shutdown.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut guard = self.lock();
        loop {
            if self.is_shutdown() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Numbers and records the request; `in_flight` is this server's count
    /// with it included.
    fn record(&self, req: &mut Request, in_flight: usize) {
        let mut log = self.requests.lock().unwrap();
        let count = log.per_path.entry(req.path().to_string()).or_insert(0);
        *count += 1;
        req.nth = *count;
        req.in_flight = in_flight;
        req.order = ARRIVALS.fetch_add(1, Ordering::SeqCst);
        log.all.push(req.clone());
        log.times.push(Instant::now());
    }

    /// Counts a request in flight; returns the guard and the new count.
    fn begin(&self) -> (InFlight<'_>, usize) {
        let mut f = self.lock();
        f.in_flight += 1;
        f.max_in_flight = f.max_in_flight.max(f.in_flight);
        let now = f.in_flight;
        let guard = InFlight {
            state: self,
            done: false,
        };
        (guard, now)
    }

    /// The added route for `req`, if any.
    fn handler(&self, req: &Request) -> Option<Arc<Handler>> {
        let routes = self.routes.read().unwrap();
        routes
            .iter()
            .find(|(pattern, _)| match pattern.strip_suffix('*') {
                Some(prefix) => req.path().starts_with(prefix),
                None => req.path() == pattern,
            })
            .map(|(_, h)| Arc::clone(h))
    }
}

/// A request that has been read and not yet answered. It stops counting
/// *before* the answer is written, so a client can never observe a response
/// and start its next request while the server still counts the old one.
struct InFlight<'a> {
    state: &'a State,
    done: bool,
}

impl InFlight<'_> {
    fn answer(&mut self) {
        if !self.done {
            self.done = true;
            self.state.lock().in_flight -= 1;
            self.state.changed.notify_all();
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.answer();
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>, tls: Option<Arc<rustls::ServerConfig>>) {
    for stream in listener.incoming() {
        if state.is_shutdown() {
            break;
        }
        let Ok(stream) = stream else { continue };
        let number = state.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let state = Arc::clone(&state);
        let tls = tls.clone();
        let _ = thread::Builder::new()
            .name("test-server-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
                let _ = stream.set_nodelay(true);
                if let Some(conn) = Conn::new(stream, tls) {
                    serve_connection(conn, number, &state);
                }
            });
    }
}

fn serve_connection(mut conn: Conn, number: usize, state: &State) {
    while let Some((head_len, mut req)) = conn.peek_request() {
        req.connection = number;
        if state.builtins && req.path() == "/fault/reset" && conn.is_plain() {
            let (_flight, n) = state.begin();
            state.record(&mut req, n);
            // Drop with the request unread: the kernel sends RST.
            return;
        }
        if conn.consume_request(head_len, &mut req).is_err() {
            return;
        }
        let (mut flight, n) = state.begin();
        state.record(&mut req, n);
        // A write error means the client went away: close.
        let after = answer(&mut conn, state, &req, &mut flight);
        drop(flight);
        if after.is_ok() {
            state.answered.fetch_add(1, Ordering::SeqCst);
        }
        let after = after.unwrap_or(After::Close);
        let client_closes = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match after {
            After::KeepAlive if !client_closes && !state.is_shutdown() => continue,
            After::CloseSoon => thread::sleep(Duration::from_millis(2)),
            After::Hold => conn.wait_for_close(),
            _ => conn.shutdown(),
        }
        return;
    }
}

/// Answers one request from the added routes or the built-in ones.
fn answer(
    conn: &mut Conn,
    state: &State,
    req: &Request,
    flight: &mut InFlight<'_>,
) -> io::Result<After> {
    let Some(handler) = state.handler(req) else {
        let keep = if state.builtins {
            builtin::route(conn.writer(), state, req, flight)?
        } else {
            flight.answer();
            Reply::status(404).write(conn.writer(), req)?;
            true
        };
        return Ok(if keep { After::KeepAlive } else { After::Close });
    };
    let reply = handler(req);
    if !reply.delay.is_zero() && !state.sleep(reply.delay) {
        return Ok(After::Close);
    }
    flight.answer();
    reply.write(conn.writer(), req)?;
    Ok(reply.after)
}

fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Shuts a TCP stream down both ways, ignoring errors.
fn close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}
