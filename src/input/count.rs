//! Counting the entries of the input ahead of the reader, so the progress
//! bar has a total and an ETA from the start.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{BOM, Filter, InputStats, MAX_LINE, Source, is_entry};

/// Counts the entries of `sources` ahead of the reader, on its own thread,
/// so the progress bar has a total and an ETA from the start. Only for
/// arguments and regular files read with positioned reads (the reader's own
/// offset is untouched); stdin, pipes and `--dedup` leave the total unknown
/// until the input ends.
pub fn count_ahead(sources: &[Source], filter: Filter, stats: &Arc<InputStats>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        if filter.dedup {
            return;
        }
        let mut plan = Vec::new();
        for source in sources {
            match source {
                Source::Args(urls) => {
                    plan.push(Err(urls.iter().filter(|u| is_entry(u)).count() as u64))
                }
                Source::File(_, f) if f.metadata().is_ok_and(|m| m.is_file()) => {
                    match f.try_clone() {
                        Ok(f) => plan.push(Ok(f)),
                        Err(_) => return,
                    }
                }
                _ => return,
            }
        }
        let stats = Arc::clone(stats);
        let counter = move || {
            let mut total = 0u64;
            for item in plan {
                total += match item {
                    Err(n) => n,
                    Ok(file) => {
                        let mut counter = LineCounter::default();
                        let mut buf = vec![0; MAX_LINE];
                        let mut offset = 0;
                        loop {
                            match file.read_at(&mut buf, offset) {
                                Ok(0) => break,
                                Ok(n) => {
                                    counter.feed(&buf[..n]);
                                    offset += n as u64;
                                }
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(_) => return,
                            }
                        }
                        counter.finish()
                    }
                };
            }
            let kept = match filter.shard {
                Some((k, n)) => total / n + u64::from(k < total % n),
                None => total,
            };
            stats.expected.store(kept, Ordering::SeqCst);
        };
        let _ = std::thread::Builder::new()
            .name("fetchpool-count".into())
            .spawn(counter);
    }
}

/// Counts entry lines in a byte stream fed in pieces.
#[derive(Default)]
pub(super) struct LineCounter {
    entries: u64,
    /// First non-blank byte of the current line, if seen.
    first: Option<u8>,
    /// Bytes of the stream seen so far, up to the length of a BOM.
    start: usize,
}

impl LineCounter {
    /// Whether `b` belongs to a byte order mark at the start, as the reader
    /// skips it (see [`SkipBom`]).
    fn bom_left(&mut self, b: u8) -> bool {
        if self.start >= BOM.len() {
            return false;
        }
        if b == BOM[self.start] {
            self.start += 1;
            return true;
        }
        if self.start > 0 {
            // A partial BOM is content: the line is not blank.
            self.first = Some(BOM[0]);
        }
        self.start = BOM.len();
        false
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.bom_left(b) {
                continue;
            }
            if b == b'\n' {
                self.end_line();
            } else if self.first.is_none() && !b.is_ascii_whitespace() {
                self.first = Some(b);
            }
        }
    }

    fn end_line(&mut self) {
        if self.first.take().is_some_and(|b| b != b'#') {
            self.entries += 1;
        }
    }

    fn finish(mut self) -> u64 {
        if (1..BOM.len()).contains(&self.start) {
            // The stream was only the start of a BOM: that is one entry.
            self.first = Some(BOM[0]);
        }
        self.end_line();
        self.entries
    }
}
