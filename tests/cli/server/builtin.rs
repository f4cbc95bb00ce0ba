//! The built-in routes of [`TestServer`](super::TestServer) (listed in
//! the module doc of [`super`]).

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{InFlight, Request, State, reason};

/// Length of the `/big` body: 10 MB.
pub const BIG_LEN: u64 = 10_000_000;
/// How long a `/hold` request waits at most for its batch to fill.
const HOLD_FALLBACK: Duration = Duration::from_secs(20);
/// How long a `/gate` request waits at most for the gate to open.
pub const GATE_FALLBACK: Duration = Duration::from_secs(40);

/// The body served for an unknown `target` after
/// [`TestServer::serve_any`](super::TestServer::serve_any): a few kilobytes
/// that name the target exactly as it arrived.
pub fn echo_body(target: &str) -> Vec<u8> {
    (0..40)
        .flat_map(|i| format!("{i:02} {target}\n").into_bytes())
        .collect()
}

/// Deterministic content of byte `i` of every generated body.
pub fn body_byte(i: u64) -> u8 {
    b'a' + (i % 26) as u8
}

fn query_param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

impl State {
    /// Waits until the gate is open (or the fallback passed, which is counted).
    pub(super) fn gate(&self) {
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
    pub(super) fn hold(&self) {
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
                f.hold_fallbacks += usize::from(now >= deadline);
                return;
            }
            f = self.changed.wait_timeout(f, deadline - now).unwrap().0;
        }
    }
}

/// Serves one request. Ok(true) keeps the connection open for the next one.
pub(super) fn route(
    stream: &mut dyn Write,
    state: &State,
    req: &Request,
    flight: &mut InFlight<'_>,
) -> io::Result<bool> {
    let nth = req.nth;
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut reply = Replier {
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

struct Replier<'a> {
    stream: &'a mut dyn Write,
    head_only: bool,
}

impl Replier<'_> {
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
