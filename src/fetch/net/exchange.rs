//! The record of each request, per worker thread: whether its connection
//! was reused, how long connecting and the TLS handshake took, when the
//! request went out and when the first response byte came. The fetch reads
//! it for the `timings` of a result and to re-send a request that met a
//! dead keep-alive connection.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crate::result::trace::{self, Kind};

/// What the transport saw of the current exchange on this thread.
///
/// A request runs on one worker thread from start to end of body, and ureq
/// does its I/O on the calling thread, so a thread-local record is exact.
/// [`begin`] resets it before each `Agent::run`; a redirect starts a new
/// exchange, so after a redirect it describes the last hop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The connection came out of the idle pool.
    pub reused: bool,
    /// Time to connect the socket (None on reuse).
    pub connect: Option<Duration>,
    /// Time of the TLS handshake (None on reuse and for plain http).
    pub tls: Option<Duration>,
    /// When the request head started going out.
    pub sent_at: Option<Instant>,
    /// When the first byte of the response arrived.
    pub first_byte_at: Option<Instant>,
    /// The status with which a proxy refused to open a tunnel.
    pub proxy_refused: Option<u16>,
}

impl Exchange {
    const NONE: Exchange = Exchange {
        reused: false,
        connect: None,
        tls: None,
        sent_at: None,
        first_byte_at: None,
        proxy_refused: None,
    };

    /// Time from sending the request to the first byte of the response.
    pub fn ttfb(&self) -> Option<Duration> {
        Some(self.first_byte_at?.saturating_duration_since(self.sent_at?))
    }

    /// Whether the exchange failed on a reused connection before any byte
    /// of the response arrived: the mark of a keep-alive connection that the
    /// server had closed.
    pub fn died_unanswered(&self) -> bool {
        self.reused && self.first_byte_at.is_none()
    }
}

thread_local! {
    static EXCHANGE: Cell<Exchange> = const { Cell::new(Exchange::NONE) };
    /// The longest row of the request about to be sent, so that the output
    /// buffer holds it.
    static OUTPUT_NEED: Cell<usize> = const { Cell::new(0) };
    /// A method to write on the wire in place of ureq's stand-in: the
    /// stand-in's request-line prefix (`GET `) and the real one (`PURGE `).
    static REWRITE: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Starts the record of an exchange on this thread. `longest_row` is the
/// longest line of the request head (request line or one header).
pub fn begin(longest_row: usize) {
    EXCHANGE.with(|e| e.set(Exchange::NONE));
    OUTPUT_NEED.with(|n| n.set(longest_row));
    REWRITE.with(|r| r.borrow_mut().take());
}

/// Has the transport write `real` as the method of the next request head
/// that starts with `stand_in` (ureq sends only the methods it knows; see
/// `wire_method` in the fetch). Cleared by [`begin`].
pub fn rewrite_method(stand_in: &str, real: &str) {
    REWRITE.with(|r| *r.borrow_mut() = Some((format!("{stand_in} "), format!("{real} "))));
}

/// The bytes to write for `output`: as they are, or, for the request head
/// that [`rewrite_method`] names, with the real method (once; a `CONNECT`
/// to a proxy before it is left alone).
pub(super) fn on_wire(output: &[u8]) -> Cow<'_, [u8]> {
    let output = rewritten(output);
    if trace::enabled() {
        trace_head(&output);
    }
    output
}

/// Traces a request head at the start of `output`, if there is one (a
/// request line ending in `HTTP/1.x`), one event per line, the values of
/// credential headers hidden.
fn trace_head(output: &[u8]) {
    let mut lines = output
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(first) = lines.next() else { return };
    if !(first.ends_with(b" HTTP/1.1") || first.ends_with(b" HTTP/1.0")) {
        return;
    }
    trace::emit(Kind::Sent, || String::from_utf8_lossy(first).into_owned());
    for line in lines.take_while(|l| !l.is_empty()) {
        let text = match line.iter().position(|&b| b == b':') {
            Some(i) => trace::header_line(
                &String::from_utf8_lossy(&line[..i]),
                line[i + 1..].trim_ascii_start(),
            ),
            None => String::from_utf8_lossy(line).into_owned(),
        };
        trace::emit(Kind::Sent, || text);
    }
}

/// `output`, with the real method in place of ureq's stand-in (see
/// [`rewrite_method`]).
fn rewritten(output: &[u8]) -> Cow<'_, [u8]> {
    REWRITE.with(|r| {
        let mut pending = r.borrow_mut();
        match pending.as_ref() {
            Some((stand_in, real)) if output.starts_with(stand_in.as_bytes()) => {
                let mut out = Vec::with_capacity(output.len() + real.len());
                out.extend_from_slice(real.as_bytes());
                out.extend_from_slice(&output[stand_in.len()..]);
                *pending = None;
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(output),
        }
    })
}

/// What the transport saw since [`begin`] on this thread.
pub fn current() -> Exchange {
    EXCHANGE.with(Cell::get)
}

fn update(f: impl FnOnce(&mut Exchange)) {
    EXCHANGE.with(|cell| {
        let mut e = cell.get();
        f(&mut e);
        cell.set(e);
    });
}

/// A new connection (or a new tunnel through a proxy) is ready.
pub(super) fn record_connected(connect: Option<Duration>) {
    update(|e| {
        *e = Exchange {
            connect,
            ..Exchange::NONE
        }
    });
}

/// The TLS handshake on the new connection took `took`.
pub(super) fn record_tls(took: Duration) {
    update(|e| e.tls = Some(took));
}

/// A proxy answered `CONNECT` with `status`, not 2xx.
pub(super) fn record_proxy_refused(status: u16) {
    update(|e| e.proxy_refused = Some(status));
}

pub(super) fn record_reused() {
    update(|e| {
        *e = Exchange {
            reused: true,
            ..Exchange::NONE
        }
    });
}

pub(super) fn record_sending() {
    update(|e| {
        if e.sent_at.is_none() {
            e.sent_at = Some(Instant::now());
        }
    });
}

pub(super) fn record_received() {
    update(|e| {
        if e.sent_at.is_some() && e.first_byte_at.is_none() {
            e.first_byte_at = Some(Instant::now());
        }
    });
}

/// The longest row of the request about to be sent on this thread (set by
/// [`begin`]), so that the output buffer holds it.
pub(super) fn output_need() -> usize {
    OUTPUT_NEED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_record() {
        begin(0);
        assert_eq!(current(), Exchange::default());
        record_received(); // Nothing sent yet: not a response byte.
        assert_eq!(current().first_byte_at, None);
        record_reused();
        assert!(current().died_unanswered());
        record_sending();
        record_received();
        let e = current();
        assert!(e.reused && !e.died_unanswered() && e.ttfb().is_some());
        record_connected(Some(Duration::from_millis(3)));
        assert_eq!(current().connect, Some(Duration::from_millis(3)));
        assert!(!current().reused);
    }

    #[test]
    fn a_stand_in_method_is_rewritten_once_and_connect_left_alone() {
        begin(0);
        assert_eq!(&*on_wire(b"GET / HTTP/1.1\r\n"), b"GET / HTTP/1.1\r\n");
        rewrite_method("GET", "PURGE");
        assert_eq!(
            &*on_wire(b"CONNECT h:80 HTTP/1.1\r\n"),
            b"CONNECT h:80 HTTP/1.1\r\n"
        );
        assert_eq!(&*on_wire(b"GET /a HTTP/1.1\r\n"), b"PURGE /a HTTP/1.1\r\n");
        assert_eq!(&*on_wire(b"GET /b"), b"GET /b");
        rewrite_method("POST", "PROPFIND");
        begin(0);
        assert_eq!(&*on_wire(b"POST /"), b"POST /");
    }
}
