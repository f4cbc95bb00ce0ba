//! The host controller, beside the pool: every per-host decision of a run
//! ([`host`]): how many requests in flight ([`limit`], `-j auto`), when to
//! pause and how fast to ask ([`rate`]), when to give a host up; and the
//! run-wide `--rate`.
//!
//! Knows no HTTP and no threads: the fetcher reports what each answer said,
//! this folder decides, and the pool's gate carries the decision out.

pub mod host;
pub mod limit;
pub mod rate;
