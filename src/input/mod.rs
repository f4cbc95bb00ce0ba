//! Reads URL entries lazily from arguments, files and stdin.
//!
//! Lines are trimmed; blank lines and `#` comments are skipped. Every other
//! line is an entry and gets the next `seq`, before `--dedup` and `--shard`
//! drop any. A UTF-8 byte order mark at the start of a file or of stdin is
//! skipped. A line is never buffered past [`MAX_LINE`] bytes (and one), so
//! one huge line cannot blow up memory; it becomes an `invalid_url` entry.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::Uri;

pub mod url;
#[cfg(test)]
mod whatwg_tests;

/// Where URL lines come from, already opened (so an unreadable file is a
/// usage error before anything is fetched).
#[derive(Debug)]
pub enum Source {
    /// URLs given as arguments.
    Args(Vec<String>),
    /// An opened input file, with its name for messages.
    File(PathBuf, File),
    /// Standard input.
    Stdin,
}

impl Source {
    /// Whether this is the input file at `path` (the same file, however
    /// it is named).
    pub fn is_file_at(&self, path: &std::path::Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let Source::File(_, f) = self else {
                return false;
            };
            match (f.metadata(), std::fs::metadata(path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            }
        }
        #[cfg(not(unix))]
        false
    }

    /// A name for messages.
    pub fn name(&self) -> String {
        match self {
            Source::Args(_) => "arguments".to_owned(),
            Source::File(path, _) => path.display().to_string(),
            Source::Stdin => "stdin".to_owned(),
        }
    }

    /// Whether reading it may wait for ever (a pipe or a terminal), as
    /// opposed to arguments and regular files.
    pub fn can_block(&self) -> bool {
        let regular = |m: std::io::Result<std::fs::Metadata>| m.is_ok_and(|m| m.is_file());
        match self {
            Source::Args(_) => false,
            Source::File(_, f) => !regular(f.metadata()),
            // `< urls.txt` makes stdin a regular file.
            Source::Stdin => !regular(std::fs::metadata("/dev/stdin")),
        }
    }
}

/// The longest entry accepted (after trimming); longer lines are rejected,
/// not read into memory.
pub const MAX_LINE: usize = 64 * 1024;

/// The UTF-8 byte order mark, skipped at the start of each file and stdin.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One URL entry of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 0-based position among all entries.
    pub seq: u64,
    /// The URL as given (shortened if it was rejected; invalid UTF-8 shown
    /// as U+FFFD).
    pub url: String,
    /// The entry's bytes exactly as read (trimmed), for `--write-failed`:
    /// invalid UTF-8 is kept byte for byte. A line longer than [`MAX_LINE`]
    /// is not buffered whole: its first `MAX_LINE + 1` bytes are kept, so
    /// that read again it is still one over-long entry and never a shorter
    /// URL that could be fetched.
    pub raw: Box<[u8]>,
    /// How many entries before this one had the same bytes (counted only
    /// when [`Filter::count_repeats`]): a saved body's file name tells the
    /// repeats of a URL apart.
    pub repeat: u32,
    /// The URI to request, or why this entry is not fetched.
    pub target: Result<Uri, String>,
}

/// What the reader has seen so far, shared with the progress display.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Entries read, before `--dedup` and `--shard`.
    pub entries: AtomicU64,
    /// Entries kept, which will each get a result.
    pub kept: AtomicU64,
    /// All input has been read.
    pub done: AtomicBool,
    /// A read error that ended the input early.
    pub error: Mutex<Option<String>>,
    /// Entries the input will hold, when known before it is all read
    /// (see [`count_ahead`]); 0 when unknown.
    pub expected: AtomicU64,
}

impl InputStats {
    /// The number of results this run will produce, as soon as it is known.
    pub fn total(&self) -> Option<u64> {
        if self.done.load(Ordering::SeqCst) {
            return Some(self.kept.load(Ordering::SeqCst));
        }
        Some(self.expected.load(Ordering::SeqCst)).filter(|&n| n > 0)
    }
}

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
                Source::Args(urls) => plan
                    .push(Err(
                        urls.iter().filter(|u| is_entry(u.as_bytes())).count() as u64
                    )),
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

fn is_entry(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    !t.is_empty() && !t.starts_with(b"#")
}

/// Counts entry lines in a byte stream fed in pieces.
#[derive(Default)]
struct LineCounter {
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

/// Which entries to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Skip URLs already seen.
    pub dedup: bool,
    /// Keep only `seq % n == k`.
    pub shard: Option<(u64, u64)>,
    /// Count earlier entries with the same bytes ([`Entry::repeat`]).
    pub count_repeats: bool,
}

/// An iterator over the kept entries of all sources, in order.
pub struct Entries {
    sources: std::vec::IntoIter<Source>,
    current: Option<Lines>,
    filter: Filter,
    /// Hashes of the entries seen, for `--dedup` and repeats (20 bytes per
    /// distinct entry), with how often each was seen.
    seen: HashMap<u128, u32>,
    hashers: (RandomState, RandomState),
    next_seq: u64,
    stats: Arc<InputStats>,
}

enum Lines {
    Args(std::vec::IntoIter<String>),
    Reader(String, Box<dyn BufRead + Send>),
}

impl Entries {
    /// Entries from `sources`, filtered, reporting to `stats`.
    pub fn new(sources: Vec<Source>, filter: Filter, stats: Arc<InputStats>) -> Self {
        Entries {
            sources: sources.into_iter(),
            current: None,
            filter,
            seen: HashMap::new(),
            hashers: (RandomState::new(), RandomState::new()),
            next_seq: 0,
            stats,
        }
    }

    /// The next raw line of any source: `(bytes, longer than MAX_LINE)`.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> Option<bool> {
        loop {
            let lines = match &mut self.current {
                Some(lines) => lines,
                None => {
                    self.current = Some(match self.sources.next()? {
                        Source::Args(urls) => Lines::Args(urls.into_iter()),
                        Source::File(path, file) => Lines::Reader(name(&path), reader(file)),
                        Source::Stdin => Lines::Reader("stdin".into(), reader(io::stdin())),
                    });
                    continue;
                }
            };
            let line = match lines {
                Lines::Args(urls) => urls.next().map(|u| {
                    buf.clear();
                    buf.extend_from_slice(u.as_bytes());
                    false
                }),
                Lines::Reader(name, r) => match read_line(r, buf) {
                    Ok(line) => line,
                    Err(e) => {
                        *crate::lock::lock(&self.stats.error) =
                            Some(format!("reading {name}: {e}"));
                        // Stop here: a half-read input must not look complete.
                        self.sources = Vec::new().into_iter();
                        None
                    }
                },
            };
            match line {
                Some(overflow) => return Some(overflow),
                None => self.current = None,
            }
        }
    }

    /// Dedup looks at every entry before sharding, so N machines sharding
    /// one list agree on which occurrence of a URL is the first: together
    /// they fetch each URL once.
    /// Returns the entry's repeat count, or `None` to drop it.
    fn keep(&mut self, seq: u64, raw: &[u8]) -> Option<u32> {
        let mut repeat = 0;
        if self.filter.dedup || self.filter.count_repeats {
            let (a, b) = &self.hashers;
            let hash = (u128::from(a.hash_one(raw)) << 64) | u128::from(b.hash_one(raw));
            let seen = self.seen.entry(hash).or_insert(0);
            repeat = *seen;
            *seen = seen.saturating_add(1);
            if self.filter.dedup && repeat > 0 {
                return None;
            }
        }
        self.filter
            .shard
            .is_none_or(|(k, n)| seq % n == k)
            .then_some(repeat)
    }
}

fn name(path: &std::path::Path) -> String {
    PathBuf::from(path).display().to_string()
}

fn reader(r: impl Read + Send + 'static) -> Box<dyn BufRead + Send> {
    Box::new(BufReader::with_capacity(MAX_LINE, SkipBom::new(r)))
}

/// A reader that drops a UTF-8 byte order mark at the start of `R`.
///
/// It waits for more bytes only while those read so far are a proper
/// prefix of the mark, so a line of a slow pipe is never held back.
struct SkipBom<R> {
    inner: R,
    /// The first bytes, while they may still be a BOM, then those to hand
    /// out before reading on.
    head: [u8; 3],
    len: usize,
    pos: usize,
    checked: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        SkipBom {
            inner,
            head: [0; 3],
            len: 0,
            pos: 0,
            checked: false,
        }
    }

    /// Reads the first bytes until they are a whole BOM (dropped), differ
    /// from it, or the input ends.
    fn check(&mut self) -> io::Result<()> {
        while self.len < BOM.len() && self.head[..self.len] == BOM[..self.len] {
            let n = self.inner.read(&mut self.head[self.len..])?;
            if n == 0 {
                break;
            }
            self.len += n;
        }
        if self.head[..self.len] == *BOM {
            self.len = 0;
        }
        self.checked = true;
        Ok(())
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.checked {
            self.check()?;
        }
        if self.pos < self.len {
            let n = buf.len().min(self.len - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl Iterator for Entries {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let mut buf = Vec::new();
        loop {
            let Some(overflow) = self.next_line(&mut buf) else {
                self.stats.done.store(true, Ordering::SeqCst);
                return None;
            };
            if !is_entry(&buf) {
                continue;
            }
            let line = buf.trim_ascii();
            let seq = self.next_seq;
            self.next_seq += 1;
            self.stats.entries.fetch_add(1, Ordering::Relaxed);
            let mut entry = classify(seq, line, overflow);
            if let Some(repeat) = self.keep(seq, &entry.raw) {
                entry.repeat = repeat;
                self.stats.kept.fetch_add(1, Ordering::Relaxed);
                return Some(entry);
            }
        }
    }
}

fn classify(seq: u64, line: &[u8], overflow: bool) -> Entry {
    let text = String::from_utf8_lossy(line);
    let target = if overflow {
        Err(format!("line is longer than {MAX_LINE} bytes"))
    } else if std::str::from_utf8(line).is_err() {
        Err("not valid UTF-8".to_owned())
    } else {
        crate::input::url::check(&text)
    };
    let url = match target {
        Err(_) => crate::input::url::shown(&text).into_owned(),
        Ok(_) => text.into_owned(),
    };
    Entry {
        seq,
        url,
        raw: line.into(),
        repeat: 0,
        target,
    }
}

/// Reads one line into `buf` (without its newline and its leading blanks),
/// keeping at most `MAX_LINE + 1` bytes and discarding the rest.
/// `Some(true)` if the trimmed line is longer than [`MAX_LINE`]: then `buf`
/// holds its first `MAX_LINE + 1` bytes, the last of them not blank (a blank
/// one is replaced by the next byte that is not), so that trimmed it is
/// still longer than `MAX_LINE`.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut cut = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let mut data = &chunk[..newline.unwrap_or(chunk.len())];
        if buf.is_empty() {
            let blanks = data.iter().take_while(|b| b.is_ascii_whitespace()).count();
            data = &data[blanks..];
        }
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(&b) = data[data.len().min(room)..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
        {
            cut = true;
            if let Some(last) = buf.last_mut().filter(|l| l.is_ascii_whitespace()) {
                *last = b;
            }
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            break;
        }
    }
    Ok(any.then(|| cut || buf.trim_ascii_end().len() > MAX_LINE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn entries_of(text: &[u8], filter: Filter) -> Vec<Entry> {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, text).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let sources = vec![Source::File("t".into(), file)];
        Entries::new(sources, filter, Arc::default()).collect()
    }

    #[test]
    fn skips_blanks_and_comments_and_numbers_the_rest() {
        let e = entries_of(
            b"# head\n\n  http://a/  \r\n\t# x\nhttp://b/\nhttp://c/",
            Filter::default(),
        );
        let urls: Vec<_> = e.iter().map(|e| (e.seq, e.url.as_str())).collect();
        assert_eq!(urls, [(0, "http://a/"), (1, "http://b/"), (2, "http://c/")]);
        assert!(e.iter().all(|e| e.target.is_ok()));
    }

    #[test]
    fn rejects_bad_lines_without_stopping() {
        let mut text = b"http://a/\n\xff\xfe\nhttp://x\0y/\n".to_vec();
        text.extend(std::iter::repeat_n(b'a', 1 << 20));
        text.extend(b"\nhttp://b/\n");
        let e = entries_of(&text, Filter::default());
        assert_eq!(e.len(), 5);
        assert!(e[1].target.as_ref().unwrap_err().contains("UTF-8"));
        assert!(
            e[2].target
                .as_ref()
                .unwrap_err()
                .contains("control character")
        );
        assert!(e[3].target.as_ref().unwrap_err().contains("longer than"));
        assert!(e[3].url.len() < 300);
        assert_eq!(e[4].url, "http://b/");
        assert_eq!(e[4].seq, 4);
    }

    /// A reader that hands out one byte per read, like a slow pipe.
    struct Trickle(Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    fn skip_bom(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        SkipBom::new(Trickle(Cursor::new(bytes.to_vec())))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn skips_a_bom_at_the_start_only_even_one_byte_at_a_time() {
        assert_eq!(skip_bom(b"\xEF\xBB\xBFhttp://a/\n"), b"http://a/\n");
        assert_eq!(skip_bom(b"\xEF\xBB\xBF"), b"");
        assert_eq!(skip_bom(b"\xEF\xBB\xBF\xEF\xBB\xBFx"), b"\xEF\xBB\xBFx");
        assert_eq!(skip_bom(b"x\xEF\xBB\xBF"), b"x\xEF\xBB\xBF");
        // A partial BOM is content, kept byte for byte.
        assert_eq!(skip_bom(b"\xEF\xBBx"), b"\xEF\xBBx");
        assert_eq!(skip_bom(b"\xEF"), b"\xEF");
        assert_eq!(skip_bom(b""), b"");
    }

    #[test]
    fn a_bom_starts_each_file_and_counting_ahead_agrees() {
        let text = b"\xEF\xBB\xBF# comment\nhttp://a/\n\xEF\xBB\xBFhttp://b/\n";
        let e = entries_of(text, Filter::default());
        let urls: Vec<_> = e.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(urls, ["http://a/", "\u{feff}http://b/"]);
        assert!(e[0].target.is_ok() && e[1].target.is_err());
        assert_eq!(counted_ahead(text), 2);
        assert_eq!(counted_ahead(b"\xEF\xBB\xBF\n\xEF\xBB\xBF\n"), 1);
        assert_eq!(counted_ahead(b"\xEF\xBB# not a comment\n"), 1);
        assert_eq!(counted_ahead(b"\xEF\xBB"), 1);
        assert_eq!(entries_of(b"\xEF\xBB", Filter::default()).len(), 1);
    }

    /// What [`count_ahead`] finds in a file holding `text`.
    fn counted_ahead(text: &[u8]) -> u64 {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, text).unwrap();
        let stats = Arc::new(InputStats::default());
        count_ahead(&[Source::File("t".into(), file)], Filter::default(), &stats);
        // The count is stored once, when done (0 stays unknown).
        let bound = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut n = 0;
        while n == 0 && std::time::Instant::now() < bound {
            std::thread::yield_now();
            n = stats.expected.load(Ordering::SeqCst);
        }
        n
    }

    #[test]
    fn keeps_the_raw_bytes_of_each_entry() {
        let mut text = b"  http://a/ \r\n\xff\xfe x\nhttp://x\0y/\n".to_vec();
        let long: Vec<u8> = std::iter::repeat_n(b'a', 100_000).collect();
        text.extend(&long);
        text.push(b'\n');
        let e = entries_of(&text, Filter::default());
        let raw: Vec<&[u8]> = e.iter().map(|e| &e.raw[..]).collect();
        assert_eq!(
            raw[..3],
            [&b"http://a/"[..], b"\xff\xfe x", b"http://x\0y/"]
        );
        assert_eq!(raw[3], &long[..MAX_LINE + 1]);
    }

    #[test]
    fn line_length_is_measured_after_trimming() {
        let blanks = " ".repeat(100_000);
        let text = format!("{blanks}http://a/\nhttp://b/{blanks}\n{blanks}\n\t{blanks}# c\n");
        let e = entries_of(text.as_bytes(), Filter::default());
        let urls: Vec<_> = e.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(urls, ["http://a/", "http://b/"]);
        assert!(e.iter().all(|e| e.target.is_ok()));
        assert_eq!(counted_ahead(text.as_bytes()), 2);

        // Exactly MAX_LINE is kept; one more is over-long.
        for (len, over) in [(MAX_LINE, false), (MAX_LINE + 1, true)] {
            let line = format!("http://h/{}", "a".repeat(len - 9));
            let e = entries_of(format!(" {line} \n").as_bytes(), Filter::default());
            let err = e[0].target.as_ref().err().map(String::as_str);
            assert_eq!(
                err.is_some_and(|m| m.contains("longer than")),
                over,
                "{len}"
            );
        }
        // Cut in the middle of blanks: still over-long when read again.
        let line = format!("{}{}b", "a".repeat(MAX_LINE - 10), " ".repeat(20));
        let e = entries_of(line.as_bytes(), Filter::default());
        assert!(e[0].target.as_ref().unwrap_err().contains("longer than"));
        let again = entries_of(&e[0].raw, Filter::default());
        assert!(
            again[0]
                .target
                .as_ref()
                .unwrap_err()
                .contains("longer than")
        );
    }

    #[test]
    fn dedup_compares_the_raw_bytes() {
        // Both lines show as U+FFFD, but they are different entries.
        let e = entries_of(
            b"\xff\n\xfe\n\xff\n",
            Filter {
                count_repeats: false,
                dedup: true,
                shard: None,
            },
        );
        let seqs: Vec<_> = e.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1]);
    }

    #[test]
    fn reads_lines_in_bounded_pieces() {
        let mut r = BufReader::with_capacity(7, Cursor::new(b"0123456789\nab".to_vec()));
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(false));
        assert_eq!(buf, b"0123456789");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(false));
        assert_eq!(buf, b"ab");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn counts_ahead_like_the_reader() {
        let text = b"# c\nhttp://a/\n\n  \t\nhttp://b/\r\n  # d\nx\ny";
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, text).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let sources = vec![
            Source::Args(vec!["http://z/".into(), " ".into()]),
            Source::File("t".into(), file),
        ];
        let stats = Arc::new(InputStats::default());
        count_ahead(&sources, Filter::default(), &stats);
        let read = Entries::new(sources, Filter::default(), Arc::clone(&stats)).count() as u64;
        assert_eq!(read, 5);
        while stats.expected.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(stats.expected.load(Ordering::SeqCst), read);
    }

    #[test]
    fn dedup_keeps_first_and_numbers_all() {
        let e = entries_of(
            b"http://a/\nhttp://b/\nhttp://a/\nhttp://c/\n",
            Filter {
                count_repeats: false,
                dedup: true,
                shard: None,
            },
        );
        let seqs: Vec<_> = e.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 3]);
    }

    #[test]
    fn shards_partition_the_input() {
        let text: String = (0..103).map(|i| format!("http://h/{i}\n")).collect();
        for n in 1..=5u64 {
            let mut all: Vec<u64> = (0..n)
                .flat_map(|k| {
                    entries_of(
                        text.as_bytes(),
                        Filter {
                            count_repeats: false,
                            dedup: false,
                            shard: Some((k, n)),
                        },
                    )
                    .into_iter()
                    .map(|e| e.seq)
                })
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..103).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
