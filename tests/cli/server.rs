//! A loopback HTTP/1.1 test server, std only.
//!
//! It binds `127.0.0.1:0`, serves each connection on its own thread with
//! keep-alive, records every request (method, target, headers) and counts
//! connections and requests in flight. It never opens a connection to any
//! other address. Dropping the [`TestServer`] stops the listener thread and
//! releases every handler that is waiting (`/hold`, `/slow`, `/fault/hang`,
//! `/fault/drip`, `/fault/endless`).
//!
//! Routes (the query string is ignored for routing, so `/ok?i=3` is `/ok`):
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
//! socket2 is not a dependency): the request head is only *peeked* before it
//! is routed, and for `/fault/reset` the stream is dropped with the request
//! still unread in the kernel's receive queue. Linux (RFC 2525, 2.17) answers
//! a close with unread data by sending RST instead of FIN.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Length of the `/big` body: 10 MB.
pub const BIG_LEN: u64 = 10_000_000;
/// How long a `/hold` request waits at most for its batch to fill.
const HOLD_FALLBACK: Duration = Duration::from_secs(20);
/// How long a `/gate` request waits at most for the gate to open.
pub const GATE_FALLBACK: Duration = Duration::from_secs(40);
/// Largest request head the server accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Idle keep-alive connections are closed after this long without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One request as the server read it. Header names are lowercased.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
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

/// The body served for an unknown `target` after [`TestServer::serve_any`]:
/// a few kilobytes that name the target exactly as it arrived.
pub fn echo_body(target: &str) -> Vec<u8> {
    (0..40)
        .flat_map(|i| format!("{i:02} {target}\n").into_bytes())
        .collect()
}

/// Deterministic content of byte `i` of every generated body.
pub fn body_byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}

/// A running loopback server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    listener: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let listener = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || accept_loop(listener, shared))
            .expect("spawn listener thread");
        TestServer {
            addr,
            state,
            listener: Some(listener),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Lets every waiting and future `/gate` request through.
    pub fn open_gate(&self) {
        self.state.lock().gate_open = true;
        self.state.changed.notify_all();
    }

    /// `/gate` requests that gave up waiting ([`GATE_FALLBACK`]) instead of
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

    /// How many requests in flight release the waiting `/hold` requests.
    pub fn set_hold_target(&self, target: usize) {
        self.state.lock().hold_target = target;
    }

    /// Requests whose path (or, if `pattern` has a `?`, whole target) is `pattern`.
    pub fn hits(&self, pattern: &str) -> usize {
        let log = self.state.requests.lock().unwrap();
        log.all.iter().filter(|r| r.matches(pattern)).count()
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
    /// Unknown paths get 200 and [`echo_body`] instead of 404.
    serve_any: AtomicBool,
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
    /// Set by [`TestServer::open_gate`].
    gate_open: bool,
    /// `/gate` requests that hit [`GATE_FALLBACK`].
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

    /// Records the request and returns how many requests with its path
    /// (this one included) have arrived so far.
    fn record(&self, req: &Request) -> usize {
        let mut log = self.requests.lock().unwrap();
        log.all.push(req.clone());
        log.times.push(Instant::now());
        let count = log.per_path.entry(req.path().to_string()).or_insert(0);
        *count += 1;
        *count
    }

    fn begin(&self) -> InFlight<'_> {
        let mut f = self.lock();
        f.in_flight += 1;
        f.max_in_flight = f.max_in_flight.max(f.in_flight);
        InFlight {
            state: self,
            done: false,
        }
    }

    /// Waits until the gate is open (or the fallback passed, which is counted).
    fn gate(&self) {
        let deadline = Instant::now() + GATE_FALLBACK;
        let mut f = self.lock();
        while !f.gate_open {
            let now = Instant::now();
            if self.is_shutdown() {
                return;
            }
            if now >= deadline {
                f.gate_fallbacks += 1;
                return;
            }
            f = self.changed.wait_timeout(f, deadline - now).unwrap().0;
        }
    }

    /// Waits until `hold_target` `/hold` requests wait together, then lets
    /// that batch go (or gives up after the fallback). Released requests no
    /// longer count towards the next batch, so a client with exactly
    /// `hold_target` workers moves through batch after batch without stalls.
    fn hold(&self) {
        let deadline = Instant::now() + HOLD_FALLBACK;
        let mut f = self.lock();
        if f.hold_target <= 1 {
            return;
        }
        let batch = f.hold_epoch;
        f.hold_waiting += 1;
        if f.hold_waiting >= f.hold_target {
            f.hold_epoch += 1;
            f.hold_waiting = 0;
            drop(f);
            self.changed.notify_all();
            return;
        }
        while f.hold_epoch == batch {
            let now = Instant::now();
            if now >= deadline || self.is_shutdown() {
                f.hold_waiting -= 1;
                return;
            }
            f = self.changed.wait_timeout(f, deadline - now).unwrap().0;
        }
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

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    for stream in listener.incoming() {
        if state.is_shutdown() {
            break;
        }
        let Ok(stream) = stream else { continue };
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = Arc::clone(&state);
        let _ = thread::Builder::new()
            .name("test-server-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || serve_connection(stream, &state));
    }
}

fn serve_connection(mut stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    while let Some((head_len, req)) = peek_request(&stream) {
        if req.path() == "/fault/reset" {
            state.record(&req);
            // Drop with the request unread: the kernel sends RST.
            return;
        }
        if consume_request(&mut stream, head_len, &req).is_err() {
            return;
        }
        let nth = state.record(&req);
        let mut flight = state.begin();
        // A write error means the client went away: close.
        let keep_alive = route(&mut stream, state, &req, nth, &mut flight).unwrap_or(false);
        drop(flight);
        let client_closes = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !keep_alive || client_closes || state.is_shutdown() {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Peeks until a whole request head is in the receive queue, without
/// consuming it. None when the client closed or sent something unusable.
fn peek_request(stream: &TcpStream) -> Option<(usize, Request)> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut seen = 0;
    loop {
        let n = stream.peek(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
            let head_len = end + 4;
            return parse_head(&buf[..head_len]).map(|req| (head_len, req));
        }
        if n == buf.len() {
            return None;
        }
        if n == seen {
            // peek() returns at once while partial data waits: back off a little.
            thread::sleep(Duration::from_millis(1));
        }
        seen = n;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        target,
        headers,
    })
}

/// Reads the peeked head (and any request body) off the stream.
fn consume_request(stream: &mut TcpStream, head_len: usize, req: &Request) -> io::Result<()> {
    let body_len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut sink = vec![0u8; head_len];
    stream.read_exact(&mut sink)?;
    io::copy(&mut (&*stream).take(body_len), &mut io::sink())?;
    Ok(())
}

fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

fn query_param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Serves one request. Ok(true) keeps the connection open for the next one.
fn route(
    stream: &mut TcpStream,
    state: &State,
    req: &Request,
    nth: usize,
    flight: &mut InFlight<'_>,
) -> io::Result<bool> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut reply = Reply {
        stream,
        head_only: req.method.eq_ignore_ascii_case("HEAD"),
    };
    match segments.as_slice() {
        ["ok"] => {
            flight.answer();
            reply.simple(200, &[], b"ok\n")
        }
        ["status", code] => {
            let code: u16 = code.parse().unwrap_or(400);
            flight.answer();
            reply.simple(code, &[], format!("status {code}\n").as_bytes())
        }
        ["bytes", n] => {
            flight.answer();
            reply.generated(n.parse().unwrap_or(0))
        }
        ["bytes"] => {
            let n = query_param(&req.target, "n").and_then(|n| n.parse().ok());
            flight.answer();
            reply.generated(n.unwrap_or(0))
        }
        ["big"] => {
            flight.answer();
            reply.generated(BIG_LEN)
        }
        ["redirect", n] => {
            let n: u32 = n.parse().unwrap_or(1);
            let next = if n <= 1 {
                "/ok".to_string()
            } else {
                format!("/redirect/{}", n - 1)
            };
            flight.answer();
            reply.simple(302, &[("Location", &next)], b"redirect\n")
        }
        ["hold"] => {
            state.hold();
            flight.answer();
            reply.simple(200, &[], b"held\n")
        }
        ["gate"] => {
            state.gate();
            flight.answer();
            reply.simple(200, &[], b"gate\n")
        }
        ["slow", ms] => {
            let ms = ms.parse().unwrap_or(0);
            if !state.sleep(Duration::from_millis(ms)) {
                return Ok(false);
            }
            flight.answer();
            reply.simple(200, &[], b"slow\n")
        }
        ["fault", "hang"] => {
            while state.sleep(Duration::from_secs(3600)) {}
            Ok(false)
        }
        ["fault", "garbage"] => {
            flight.answer();
            reply.stream.write_all(b"SSH-2.0-nope\r\n\r\n")?;
            Ok(false)
        }
        ["fault", "short"] => {
            flight.answer();
            reply.head(200, &[("Content-Length", "1000")])?;
            reply.stream.write_all(&[b'x'; 10])?;
            Ok(false)
        }
        ["fault", "drip"] => {
            flight.answer();
            reply.head(200, &[("Content-Length", "100")])?;
            for i in 0..100 {
                if !state.sleep(Duration::from_millis(200)) {
                    break;
                }
                reply.stream.write_all(&[body_byte(i)])?;
            }
            Ok(false)
        }
        ["fault", "endless"] => {
            flight.answer();
            reply.head(200, &[("Transfer-Encoding", "chunked")])?;
            let chunk = vec![b'e'; 16 * 1024];
            while state.sleep(Duration::from_millis(5)) {
                write!(reply.stream, "{:x}\r\n", chunk.len())?;
                reply.stream.write_all(&chunk)?;
                reply.stream.write_all(b"\r\n")?;
            }
            Ok(false)
        }
        ["fault", "self-redirect"] => {
            flight.answer();
            reply.simple(302, &[("Location", path)], b"again\n")
        }
        ["fault", "flaky503", _id] => {
            flight.answer();
            if nth <= 2 {
                reply.simple(503, &[], b"try later\n")
            } else {
                reply.simple(200, &[], b"ok\n")
            }
        }
        ["fault", "retry-after", _id] => {
            flight.answer();
            if nth == 1 {
                reply.simple(429, &[("Retry-After", "1")], b"slow down\n")
            } else {
                reply.simple(200, &[], b"ok\n")
            }
        }
        _ if state.serve_any.load(Ordering::SeqCst) => {
            flight.answer();
            reply.simple(200, &[], &echo_body(&req.target))
        }
        _ => {
            flight.answer();
            reply.simple(404, &[], b"not found\n")
        }
    }
}

struct Reply<'a> {
    stream: &'a mut TcpStream,
    head_only: bool,
}

impl Reply<'_> {
    fn head(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())
    }

    /// A complete response with `body`; the connection stays usable.
    fn simple(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> io::Result<bool> {
        let bodiless = status == 204 || status == 304 || status < 200;
        let len = body.len().to_string();
        let mut all = headers.to_vec();
        if !bodiless {
            all.push(("Content-Length", &len));
        }
        self.head(status, &all)?;
        if !bodiless && !self.head_only {
            self.stream.write_all(body)?;
        }
        Ok(true)
    }

    /// 200 with `len` bytes of generated content, streamed.
    fn generated(&mut self, len: u64) -> io::Result<bool> {
        self.head(200, &[("Content-Length", &len.to_string())])?;
        if self.head_only {
            return Ok(true);
        }
        let block = pattern_block();
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len() as u64);
            self.stream.write_all(&block[..n as usize])?;
            left -= n;
        }
        Ok(true)
    }
}

/// [`body_byte`] 0.. for a whole number of periods, so blocks written back
/// to back continue the pattern.
fn pattern_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| (0..26 * 2520).map(body_byte).collect())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    //! The server checked with a raw std client.
    use super::*;
    use std::io::{BufRead, BufReader};

    /// A raw HTTP/1.1 client on one connection.
    struct Raw {
        reader: BufReader<TcpStream>,
    }

    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    impl Raw {
        fn connect(server: &TestServer) -> Raw {
            let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            Raw {
                reader: BufReader::new(stream),
            }
        }

        fn send(&mut self, method: &str, target: &str, extra: &str) {
            let req = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        }

        fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
            let mut headers = Vec::new();
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (n, v) = l.split_once(':').unwrap();
                headers.push((n.to_string(), v.trim().to_string()));
            }
            Ok((status, headers))
        }

        fn get(&mut self, target: &str) -> Response {
            self.request("GET", target, "")
        }

        fn request(&mut self, method: &str, target: &str, extra: &str) -> Response {
            self.send(method, target, extra);
            let (status, headers) = self.read_head().unwrap();
            let mut resp = Response {
                status,
                headers,
                body: Vec::new(),
            };
            if method != "HEAD" {
                let len: usize = resp.header("content-length").unwrap().parse().unwrap();
                resp.body = vec![0; len];
                self.reader.read_exact(&mut resp.body).unwrap();
            }
            resp
        }

        /// Reads until EOF; the error if the connection broke instead.
        fn rest(&mut self) -> io::Result<Vec<u8>> {
            let mut all = Vec::new();
            self.reader.read_to_end(&mut all)?;
            Ok(all)
        }
    }

    #[test]
    fn keep_alive_routes_and_counters() {
        let server = TestServer::start();
        let mut c = Raw::connect(&server);
        let ok = c.request("GET", "/ok?i=1", "User-Agent: raw/1\r\nX-Test: 1\r\n");
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"ok\n"[..]));
        assert_eq!(c.get("/status/503").status, 503);
        let bytes = c.get("/bytes/1000");
        assert_eq!(bytes.body.len(), 1000);
        assert!(
            bytes
                .body
                .iter()
                .enumerate()
                .all(|(i, b)| *b == body_byte(i as u64))
        );
        assert_eq!(c.get("/bytes?n=7").body, b"abcdefg");
        let redirect = c.get("/redirect/2");
        assert_eq!(
            (redirect.status, redirect.header("location")),
            (302, Some("/redirect/1"))
        );
        assert_eq!(c.get("/redirect/1").header("location"), Some("/ok"));
        let head = c.request("HEAD", "/bytes/50", "");
        assert_eq!(head.header("content-length"), Some("50"));
        assert_eq!(c.get("/nope").status, 404);
        assert_eq!(
            c.get("/fault/self-redirect").header("location"),
            Some("/fault/self-redirect")
        );

        assert_eq!(server.connections(), 1);
        assert_eq!(server.total_requests(), 9);
        assert_eq!(server.hits("/ok"), 1);
        assert_eq!(server.hits("/ok?i=1"), 1);
        assert_eq!(server.hits("/ok?i=2"), 0);
        let first = &server.requests()[0];
        assert_eq!(first.header("user-agent"), Some("raw/1"));
        assert_eq!(first.header("X-TEST"), Some("1"));
        assert_eq!(server.max_in_flight(), 1);
    }

    #[test]
    fn connection_close_is_honoured() {
        let server = TestServer::start();
        let mut c = Raw::connect(&server);
        c.request("GET", "/ok", "Connection: close\r\n");
        assert!(c.rest().unwrap().is_empty());
    }

    #[test]
    fn flaky_and_retry_after_count_per_id() {
        let server = TestServer::start();
        let mut c = Raw::connect(&server);
        let flaky: Vec<u16> = (0..4).map(|_| c.get("/fault/flaky503/a").status).collect();
        assert_eq!(flaky, [503, 503, 200, 200]);
        assert_eq!(c.get("/fault/flaky503/b").status, 503);
        let first = c.get("/fault/retry-after/a");
        assert_eq!(
            (first.status, first.header("retry-after")),
            (429, Some("1"))
        );
        assert_eq!(c.get("/fault/retry-after/a").status, 200);
        assert_eq!(c.get("/fault/retry-after/b").status, 429);
    }

    #[test]
    fn hold_releases_batches_of_the_target() {
        let server = TestServer::start();
        server.set_hold_target(3);
        // Three clients, two requests each: two full batches, no stall.
        let clients: Vec<_> = (0..3)
            .map(|i| {
                let mut c = Raw::connect(&server);
                thread::spawn(move || {
                    let start = Instant::now();
                    for j in 0..2 {
                        assert_eq!(c.get(&format!("/hold?i={i}-{j}")).status, 200);
                    }
                    start.elapsed()
                })
            })
            .collect();
        for c in clients {
            assert!(c.join().unwrap() < HOLD_FALLBACK, "a batch stalled");
        }
        assert_eq!(server.hits("/hold"), 6);
        assert_eq!(server.max_in_flight(), 3);
    }

    #[test]
    fn reset_sends_rst() {
        let server = TestServer::start();
        let mut c = Raw::connect(&server);
        c.send("GET", "/fault/reset", "");
        let err = c.rest().expect_err("expected a reset, got a clean EOF");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(server.hits("/fault/reset"), 1);
    }

    #[test]
    fn garbage_short_and_big() {
        let server = TestServer::start();
        let mut c = Raw::connect(&server);
        c.send("GET", "/fault/garbage", "");
        assert_eq!(c.rest().unwrap(), b"SSH-2.0-nope\r\n\r\n");

        let mut c = Raw::connect(&server);
        c.send("GET", "/fault/short", "");
        let (status, headers) = c.read_head().unwrap();
        assert_eq!((status, headers[0].1.as_str()), (200, "1000"));
        assert_eq!(c.rest().unwrap().len(), 10);

        let mut c = Raw::connect(&server);
        assert_eq!(c.get("/big").body.len() as u64, BIG_LEN);
    }

    #[test]
    fn hang_drip_endless_end_when_server_drops() {
        let server = TestServer::start();
        let mut clients: Vec<Raw> = [
            "/fault/hang",
            "/fault/drip",
            "/fault/endless",
            "/slow/60000",
        ]
        .iter()
        .map(|path| {
            let mut c = Raw::connect(&server);
            c.send("GET", path, "");
            c
        })
        .collect();
        let (status, _) = clients[1].read_head().unwrap();
        assert_eq!(status, 200);
        let mut first = [0u8; 1];
        clients[1].reader.read_exact(&mut first).unwrap();
        assert_eq!(first[0], body_byte(0));
        let (_, headers) = clients[2].read_head().unwrap();
        assert_eq!(headers[0].1, "chunked");
        assert!(server.wait_for_requests(4, Duration::from_secs(10)));
        drop(server);
        // Every handler lets go of its socket once the server is gone.
        for c in &mut clients {
            let _ = c.rest();
        }
    }

    #[test]
    fn gate_serve_any_and_arrival_times() {
        let server = TestServer::start();
        let mut c = Raw::connect(&server);
        assert_eq!(c.get("/no/such?x=1").status, 404);
        server.serve_any();
        let any = c.get("/../a%2e?x=1");
        assert_eq!(any.status, 200);
        assert_eq!(any.body, echo_body("/../a%2e?x=1"));

        let gated = thread::spawn(move || c.get("/gate?i=1").status);
        assert!(server.wait_for_requests(3, Duration::from_secs(10)));
        assert_eq!(server.max_in_flight(), 1);
        server.open_gate();
        assert_eq!(gated.join().unwrap(), 200);
        assert_eq!(server.gate_fallbacks(), 0);
        let times = server.arrival_times();
        assert_eq!(times.len(), 3);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn slow_answers_after_the_delay() {
        let server = TestServer::start();
        let start = Instant::now();
        assert_eq!(Raw::connect(&server).get("/slow/100").status, 200);
        assert!(start.elapsed() >= Duration::from_millis(100));
    }
}
