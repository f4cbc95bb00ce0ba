//! Writing to stderr without panicking. `eprintln!` panics when stderr
//! cannot be written (a full disk under `2>log`, a reader that went away),
//! which would turn a run's documented exit code into a crash; what cannot
//! be said there is dropped instead, and the run ends as it would have.

use std::fmt::Arguments;
use std::io::Write;

/// Writes `line` and a newline to stderr, ignoring failure.
pub fn line(line: Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Writes `text` to stderr as it is, ignoring failure.
pub fn text(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
