//! Results in input order: a reorder buffer bounded by credits, so the
//! feeder does not run ahead of the slowest unfinished job by more than the
//! window.

use std::collections::BTreeMap;

use crossbeam_channel::Receiver;

use super::{Completed, Finished, Results, StopHandle};

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
}

impl<J, R> Iterator for Ordered<J, R> {
    type Item = Finished<J, R>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(done) = self.pending.remove(&self.next) {
                self.next += 1;
                // Let the feeder start one more job.
                let _ = self.credits.try_recv();
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
