//! Locking that survives a poisoned mutex.
//!
//! Every job runs under `catch_unwind` outside any lock, and no code holding
//! one of our locks can panic halfway through an update, so a poisoned
//! mutex never guards inconsistent data: keep going rather than cascade the
//! panic into every thread that shares it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the guard if a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
