//! The main thread's half of a run: what happens to each result.
//! [`collect`] takes each finished entry and hands it to the result lines
//! on stdout ([`stdout`]), the other files a run writes ([`files`]), the
//! [`progress`] display on stderr and the [`summary`]. With `-v`,
//! [`verbose`] prints what each fetch did on stderr.

pub mod collect;
pub mod files;
pub mod progress;
pub mod stdout;
pub mod summary;
pub mod verbose;
