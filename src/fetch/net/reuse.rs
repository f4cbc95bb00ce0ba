//! Keep-alive connections kept by the worker that used them.
//!
//! ureq's own idle pool is one list behind one mutex, pruned in full on
//! every check-out and every hand-back: each idle connection's scheme and
//! authority compared with the others', and every connection ever made
//! visited. That is O(workers) per request under a lock all workers share;
//! at `-j 4096` it was most of the client's CPU (see `BENCHMARKS.md`).
//!
//! Here each worker thread keeps the connection of its last exchange, as
//! wget2's threads do, so a worker that fetches from the same origin again
//! (the common case) touches no shared state at all. A worker moving to
//! another origin hands its idle connection to a shared overflow list, where
//! any worker can take it, so URLs spread over several hosts still reuse
//! connections. At most one idle connection per worker in all (its own or
//! in the overflow), as with ureq's pool sized to the worker count.
//!
//! ureq is kept out of this through its transport API alone: after a
//! complete exchange, ureq asks the transport whether it `is_open` before
//! pooling it. [`Kept`] then answers no and remembers that the exchange was
//! complete; ureq drops it, and its drop puts it here instead. A connection
//! ureq closes for any other reason (an unread body, `Connection: close`, an
//! error) is never asked, and closes. Connections through a proxy are left
//! to ureq's pool, as before.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::Error;
use ureq::http::Uri;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

use crate::lock::lock;

/// How long a connection may sit idle and still be used: ureq's own
/// default `max_idle_age`, which the agent keeps.
const MAX_IDLE_AGE: Duration = Duration::from_secs(15);

/// The origin a connection talks to: scheme and authority as in the URL
/// (userinfo included, as ureq's pool key does: connections made with
/// different credentials are not mixed).
#[derive(Debug, Clone)]
struct Origin {
    https: bool,
    authority: String,
}

impl Origin {
    fn of(uri: &Uri) -> Option<Origin> {
        Some(Origin {
            https: uri.scheme_str()?.eq_ignore_ascii_case("https"),
            authority: uri.authority()?.as_str().to_owned(),
        })
    }

    fn is(&self, uri: &Uri) -> bool {
        uri.scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https") == self.https)
            && uri
                .authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(&self.authority))
    }
}

/// An idle connection.
struct Idle {
    origin: Origin,
    transport: Box<dyn Transport>,
    since: Instant,
    /// The connector it came from: an idle connection is only ever used
    /// again by the same agent (the same TLS settings).
    owner: Arc<Overflow>,
}

impl Idle {
    /// Whether it can carry another exchange: young enough, nothing
    /// waiting on it, not closed (one non-blocking peek).
    fn usable(&mut self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < MAX_IDLE_AGE && self.transport.is_open()
    }
}

thread_local! {
    /// This worker's idle connection.
    static OWN: RefCell<Option<Idle>> = const { RefCell::new(None) };
    /// Set while a connection through a proxy is made: ureq then runs the
    /// whole chain again, this connector included, for the connection to
    /// the proxy itself, which becomes part of the tunnel (not ours).
    static TUNNELLING: Cell<bool> = const { Cell::new(false) };
}

/// Sets [`TUNNELLING`] for its lifetime.
struct Tunnelling;

impl Tunnelling {
    fn start() -> Tunnelling {
        TUNNELLING.set(true);
        Tunnelling
    }
}

impl Drop for Tunnelling {
    fn drop(&mut self) {
        TUNNELLING.set(false);
    }
}

/// Idle connections that their worker left for another origin.
struct Overflow {
    idle: Mutex<VecDeque<Idle>>,
    cap: usize,
}

impl Overflow {
    /// Adds `idle`, dropping the oldest past the cap (or too old).
    fn put(&self, idle: Idle) {
        let mut dropped = Vec::new();
        {
            let mut list = lock(&self.idle);
            list.push_back(idle);
            let now = Instant::now();
            while list.len() > self.cap
                || list
                    .front()
                    .is_some_and(|f| now.saturating_duration_since(f.since) >= MAX_IDLE_AGE)
            {
                dropped.extend(list.pop_front());
            }
        }
        // Closed outside the lock.
        drop(dropped);
    }

    /// The most recently idle connection to `uri`'s origin, if any.
    fn take(&self, uri: &Uri) -> Option<Idle> {
        let mut list = lock(&self.idle);
        let i = list.iter().rposition(|c| c.origin.is(uri))?;
        list.remove(i)
    }
}

/// Wraps the connector chain: hands out this worker's idle connection (or
/// one from the overflow) before making a new one.
pub struct Reuse<C> {
    inner: C,
    overflow: Arc<Overflow>,
}

impl<C> Reuse<C> {
    /// `inner` makes new connections; at most `workers` idle connections
    /// wait in the overflow.
    pub fn new(inner: C, workers: usize) -> Self {
        Reuse {
            inner,
            overflow: Arc::new(Overflow {
                idle: Mutex::default(),
                cap: workers,
            }),
        }
    }

    /// A usable idle connection to `uri`'s origin: this worker's own, or
    /// one from the overflow. This worker's idle connection to another
    /// origin goes to the overflow.
    fn take(&self, uri: &Uri) -> Option<Idle> {
        let now = Instant::now();
        let mut leaving = None;
        if let Some(mut own) = OWN.with_borrow_mut(Option::take) {
            if Arc::ptr_eq(&own.owner, &self.overflow) && own.origin.is(uri) {
                if own.usable(now) {
                    return Some(own);
                }
            } else {
                leaving = Some(own);
            }
        }
        let mut found = None;
        while let Some(mut idle) = self.overflow.take(uri) {
            if idle.usable(now) {
                found = Some(idle);
                break;
            }
        }
        // Handed over only now: with the overflow full, putting it first
        // could push out the very connection this request takes.
        if let Some(own) = leaving {
            let owner = Arc::clone(&own.owner);
            owner.put(own);
        }
        found
    }
}

impl<C> fmt::Debug for Reuse<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reuse").finish_non_exhaustive()
    }
}

impl<C> Connector<()> for Reuse<C>
where
    C: Connector<()>,
{
    type Out = Kept;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<Kept>, Error> {
        // Through a proxy: ureq's pool, as before (its key holds the proxy);
        // so is the connection to the proxy under it. A request marked fresh
        // must not reuse (`agent::configure`).
        let proxied = details.config.proxy().is_some();
        let ours = !proxied && !TUNNELLING.get();
        if ours
            && !super::agent::is_fresh(details.config)
            && let Some(idle) = self.take(details.uri)
        {
            return Ok(Some(Kept {
                transport: Some(idle.transport),
                origin: Some(idle.origin),
                owner: idle.owner,
                complete: false,
            }));
        }
        let tunnelling = proxied.then(Tunnelling::start);
        let made = self.inner.connect(details, None);
        drop(tunnelling);
        let Some(transport) = made? else {
            return Ok(None);
        };
        Ok(Some(Kept {
            transport: Some(Box::new(transport)),
            origin: if ours { Origin::of(details.uri) } else { None },
            owner: Arc::clone(&self.overflow),
            complete: false,
        }))
    }
}

/// A connection in use, which goes back to its worker when ureq is done
/// with it after a complete exchange.
pub struct Kept {
    /// Always `Some` until dropped.
    transport: Option<Box<dyn Transport>>,
    /// None: not kept here (through a proxy: ureq pools it).
    origin: Option<Origin>,
    owner: Arc<Overflow>,
    /// ureq found the exchange complete and would have pooled it.
    complete: bool,
}

impl Kept {
    fn inner(&mut self) -> &mut dyn Transport {
        match &mut self.transport {
            Some(t) => t.as_mut(),
            None => unreachable!("a connection is only taken apart when dropped"),
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if !self.complete {
            return;
        }
        let (Some(transport), Some(origin)) = (self.transport.take(), self.origin.take()) else {
            return;
        };
        let idle = Idle {
            origin,
            transport,
            since: Instant::now(),
            owner: Arc::clone(&self.owner),
        };
        // At thread exit the slot may be gone: the connection just closes.
        let _ = OWN.try_with(|own| {
            let previous = own.borrow_mut().replace(idle);
            if let Some(previous) = previous {
                let owner = Arc::clone(&previous.owner);
                owner.put(previous);
            }
        });
    }
}

impl Transport for Kept {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner().buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.inner().transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.inner().maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.inner().await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        let open = self.inner().is_open();
        if self.origin.is_none() {
            return open;
        }
        // Asked by ureq before pooling, after a complete exchange: kept
        // here instead (see the module comment).
        self.complete = open;
        false
    }

    fn is_tls(&self) -> bool {
        self.transport.as_ref().is_some_and(|t| t.is_tls())
    }
}

impl fmt::Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kept")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}
