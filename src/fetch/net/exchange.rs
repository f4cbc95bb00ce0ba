//! The record of each request, per worker thread: whether its connection
//! was reused, how long connecting and the TLS handshake took, when the
//! request went out and when the first response byte came. The fetch reads
//! it for the `timings` of a result and to re-send a request that met a
//! dead keep-alive connection.

use std::cell::Cell;
use std::time::{Duration, Instant};

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
}

/// Starts the record of an exchange on this thread. `longest_row` is the
/// longest line of the request head (request line or one header).
pub fn begin(longest_row: usize) {
    EXCHANGE.with(|e| e.set(Exchange::NONE));
    OUTPUT_NEED.with(|n| n.set(longest_row));
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
}
