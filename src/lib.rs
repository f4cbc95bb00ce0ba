//! fetchpool: fetch many URLs at once on a fixed pool of threads.
//!
//! Data flows one way: [`input`] reads entries lazily on the pool's feeder
//! thread -> a bounded job queue -> [`pool`] workers, each calling [`fetch`]
//! with one shared HTTP agent -> a results channel -> the main thread, where
//! [`report`] prints each result in completion order, drives the progress
//! display and adds up the summary. [`control`] sits beside the pool and
//! makes every per-host decision; [`store`] keeps bodies under `-o`;
//! [`run`](mod@run) wires the stages together.
//!
//! The pool is generic and usable on its own; the binary is glue.

#![forbid(unsafe_code)]
// `eprintln!` panics when stderr cannot be written: use `report::stderr`.
#![warn(clippy::print_stderr)]

pub mod cli;
pub mod control;
pub mod fetch;
pub mod input;
pub mod lock;
pub mod pool;
pub mod report;
pub mod result;
pub mod run;
pub mod store;
pub mod text;

pub use run::{Exit, run};
