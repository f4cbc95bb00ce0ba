//! Per-host decisions, beside the pool: when a host is paused, how fast it
//! is asked ([`polite`], [`rate`]), and the run-wide `--rate` ([`pace`]).
//!
//! Knows no HTTP and no threads: the fetcher reports what each answer said,
//! this folder decides, and the pool's gate carries the decision out.

pub mod pace;
pub mod polite;
pub mod rate;
