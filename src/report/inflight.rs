//! The entries being fetched right now: the progress display names the
//! oldest, and a run that stops waiting (a second signal, the grace over,
//! a closed stdout) reports each of them as cancelled, so no entry is lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::input::Entry;
use crate::lock::lock;

/// Entries in flight, by `seq`, with their start times; and how many
/// requests are being sent or answered right now (entries waiting between
/// attempts are in flight, but have no request out).
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashMap<u64, (Instant, Entry)>>, AtomicUsize);

/// A request out, counted while it lives.
pub struct Request<'a>(&'a AtomicUsize);

impl Drop for Request<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlight {
    /// Counts a request out until the returned guard is dropped.
    pub fn request(&self) -> Request<'_> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Request(&self.1)
    }

    /// How many requests are out right now.
    pub fn requests(&self) -> usize {
        self.1.load(Ordering::Relaxed)
    }

    /// Notes that `entry` started. Out of line: it runs on a worker's stack
    /// just before the fetch, and its frame need not sit under the fetch's.
    #[inline(never)]
    pub fn start(&self, entry: &Entry) {
        lock(&self.0).insert(entry.seq, (Instant::now(), entry.clone()));
    }

    /// Notes that entry `seq` finished: by its worker when the job ends,
    /// and again by the main thread when it takes the result, since an
    /// entry can also end without its job running again (a retry that a
    /// signal cut short ends in the pool with its last answer).
    pub fn finish(&self, seq: u64) {
        lock(&self.0).remove(&seq);
    }

    /// The longest-running URL (password hidden) and its age.
    pub fn oldest(&self) -> Option<(Duration, String)> {
        let map = lock(&self.0);
        let (at, entry) = map.values().min_by_key(|(at, _)| *at)?;
        Some((
            at.elapsed(),
            crate::text::redact::url(&entry.url).into_owned(),
        ))
    }

    /// How many entries are in flight.
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry in flight, with how long it has run, in `seq` order.
    pub fn snapshot(&self) -> Vec<(Duration, Entry)> {
        let mut all: Vec<_> = lock(&self.0)
            .values()
            .map(|(at, e)| (at.elapsed(), e.clone()))
            .collect();
        all.sort_by_key(|(_, e)| e.seq);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, url: &str) -> Entry {
        Entry {
            seq,
            url: url.to_owned(),
            raw: url.as_bytes().into(),
            repeat: 0,
            target: Err(String::new()),
        }
    }

    #[test]
    fn oldest_in_flight_is_named_without_password() {
        let f = InFlight::default();
        f.start(&entry(1, "http://u:pw@a/"));
        std::thread::sleep(Duration::from_millis(5));
        f.start(&entry(2, "http://b/"));
        let (_, url) = f.oldest().unwrap();
        assert_eq!(url, "http://u:***@a/");
        assert_eq!(f.snapshot().len(), 2);
        f.finish(1);
        assert_eq!(f.oldest().unwrap().1, "http://b/");
        f.finish(2);
        assert!(f.oldest().is_none());
        assert!(f.is_empty());
        let out = f.request();
        assert_eq!(f.requests(), 1);
        drop(out);
        assert_eq!(f.requests(), 0);
    }
}
