//! Results in input order: a reorder buffer bounded by credits, so the
//! feeder does not run ahead of the slowest unfinished job by more than the
//! window.

use std::collections::BTreeMap;

use crossbeam_channel::Receiver;

use std::time::Duration;

use super::{Completed, Finished, Next, Results, StopHandle};

/// Results of a pool run in input order (see [`Pool::ordered`](super::Pool::ordered)).
pub struct Ordered<J, R> {
    pub(super) completed: Completed<J, R>,
    pub(super) credits: Receiver<()>,
    pub(super) pending: BTreeMap<u64, Finished<J, R>>,
    pub(super) next: u64,
}

impl<J, R> Results for Ordered<J, R> {
    fn stop_handle(&self) -> StopHandle {
        self.completed.stop_handle()
    }

    fn ready(&self) -> bool {
        self.pending.contains_key(&self.next)
    }

    fn next_within(&mut self, timeout: Duration) -> Next<Self::Item> {
        loop {
            if let Some(done) = self.take_next() {
                return Next::Ready(done);
            }
            match self.completed.next_within(timeout) {
                Next::Ready(done) => {
                    self.pending.insert(done.index, done);
                }
                Next::Waiting => return Next::Waiting,
                // After a stop some indices never come back: flush in order.
                Next::End => match self.pending.first_key_value() {
                    Some((&index, _)) => self.next = index,
                    None => return Next::End,
                },
            }
        }
    }

    fn abandon(self: Box<Self>, settle: Duration) -> Vec<Self::Item> {
        let Ordered {
            completed,
            pending,
            credits,
            ..
        } = *self;
        let mut out: Vec<_> = pending.into_values().collect();
        out.extend(completed.abandon_with(settle, Some(&credits)));
        out.sort_by_key(|f| f.index);
        out
    }
}

impl<J, R> Ordered<J, R> {
    /// The result at `next`, if it is here.
    fn take_next(&mut self) -> Option<Finished<J, R>> {
        let done = self.pending.remove(&self.next)?;
        self.next += 1;
        // Let the feeder start one more job.
        let _ = self.credits.try_recv();
        Some(done)
    }
}

impl<J, R> Iterator for Ordered<J, R> {
    type Item = Finished<J, R>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(done) = self.take_next() {
                return Some(done);
            }
            match self.completed.next() {
                Some(done) => {
                    self.pending.insert(done.index, done);
                }
                // After a stop some indices never come back: flush in order.
                None => {
                    let (&index, _) = self.pending.first_key_value()?;
                    self.next = index;
                }
            }
        }
    }
}
