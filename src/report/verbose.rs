//! `-v`: the trace of every request on stderr, one line per event:
//! `[seq] * what happened`, `[seq] > request head line`,
//! `[seq] < response head line`. Lines of concurrent fetches interleave,
//! but each is whole and names its entry, so `grep '^\[12\]'` follows one.
//! Text from servers is escaped as all stderr text is.

use std::io::Write;

use crate::result::trace::{self, Event, Kind};
use crate::text::escape;

/// Prints every trace event of the run on stderr.
pub fn install() {
    trace::install(|event| {
        let line = line(&event);
        // One write of a whole line under the lock: lines never mix. A
        // closed stderr is no reason to stop fetching.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    });
}

/// The line for `event`, newline included.
fn line(event: &Event) -> String {
    let mark = match event.kind {
        Kind::Info => '*',
        Kind::Sent => '>',
        Kind::Received => '<',
    };
    let seq = event.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
    format!("[{seq}] {mark} {}\n", escape::for_field(&event.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_entry_and_are_escaped() {
        let event = |seq, kind, text: &str| Event {
            seq,
            kind,
            text: text.to_owned(),
        };
        assert_eq!(
            line(&event(Some(12), Kind::Sent, "GET / HTTP/1.1")),
            "[12] > GET / HTTP/1.1\n"
        );
        assert_eq!(
            line(&event(None, Kind::Received, "x-a: \u{1b}[2J\n")),
            "[-] < x-a: \\x1b[2J\\n\n"
        );
        assert_eq!(line(&event(Some(0), Kind::Info, "ok")), "[0] * ok\n");
    }
}
