//! `-v`: what a fetch did, as events, for whoever listens.
//!
//! The fetcher (and the host controller) call [`emit`] at each step: name
//! resolution, connection, TLS, proxy, the request and response heads,
//! redirects, retries, pauses and rates. Each event carries the `seq` of
//! the entry being worked on by the calling thread ([`scope`]), so the
//! fetcher needs no handle to pass around and knows nothing of terminals:
//! the one listener, installed by the run ([`install`]), decides how the
//! events are shown (`crate::report::verbose` prints them on stderr).
//! Without a listener an event costs one atomic load and is never built.

use std::cell::Cell;
use std::sync::OnceLock;

/// What an event is about, as curl marks its trace lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something that happened (`*`).
    Info,
    /// A line of a request head sent (`>`).
    Sent,
    /// A line of a response head received (`<`).
    Received,
}

/// One event of one entry's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The entry's `seq`, when the thread is working on one.
    pub seq: Option<u64>,
    /// What it is about.
    pub kind: Kind,
    /// What happened, in words; may hold anything a server sent (the
    /// listener escapes it), never a secret.
    pub text: String,
}

type Listener = Box<dyn Fn(Event) + Send + Sync>;

static LISTENER: OnceLock<Listener> = OnceLock::new();

thread_local! {
    static SEQ: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Sets the one listener of the process; later calls change nothing.
pub fn install(listener: impl Fn(Event) + Send + Sync + 'static) {
    let _ = LISTENER.set(Box::new(listener));
}

/// Whether anyone listens.
pub fn enabled() -> bool {
    LISTENER.get().is_some()
}

/// Emits an event of `kind`; `text` is only called when someone listens.
pub fn emit(kind: Kind, text: impl FnOnce() -> String) {
    if let Some(listener) = LISTENER.get() {
        listener(Event {
            seq: SEQ.with(Cell::get),
            kind,
            text: text(),
        });
    }
}

/// Marks this thread as working on entry `seq` until the guard drops.
pub fn scope(seq: u64) -> Scope {
    Scope(SEQ.with(|s| s.replace(Some(seq))))
}

/// Restores the thread's previous entry when dropped.
#[must_use]
pub struct Scope(Option<u64>);

impl Drop for Scope {
    fn drop(&mut self) {
        SEQ.with(|s| s.set(self.0));
    }
}

/// Whether `name` is a header whose value is never shown: credentials and
/// cookies, sent or set.
pub fn is_hidden_header(name: &str) -> bool {
    crate::text::redact::is_secret_header(name) || name.eq_ignore_ascii_case("set-cookie")
}

/// A header line as traced: `name: value`, the value of a hidden one
/// replaced by `***`.
pub fn header_line(name: &str, value: &[u8]) -> String {
    if is_hidden_header(name) {
        format!("{name}: ***")
    } else {
        format!("{name}: {}", String::from_utf8_lossy(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_hidden_headers_are_masked() {
        {
            let _a = scope(3);
            assert_eq!(SEQ.with(Cell::get), Some(3));
            {
                let _b = scope(4);
                assert_eq!(SEQ.with(Cell::get), Some(4));
            }
            assert_eq!(SEQ.with(Cell::get), Some(3));
        }
        assert_eq!(SEQ.with(Cell::get), None);
        assert_eq!(
            header_line("Authorization", b"Basic x"),
            "Authorization: ***"
        );
        assert_eq!(header_line("set-cookie", b"a=b"), "set-cookie: ***");
        assert_eq!(header_line("Cookie", b"a=b"), "Cookie: ***");
        assert_eq!(header_line("X-A", b"b"), "X-A: b");
    }
}
