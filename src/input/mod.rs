//! Reads URL entries lazily from arguments, files and stdin.
//!
//! Lines are trimmed; blank lines and `#` comments are skipped. Every other
//! line is an entry and gets the next `seq`, before `--dedup` and `--shard`
//! drop any. A UTF-8 byte order mark at the start of a file or of stdin is
//! skipped. A line is never buffered past [`MAX_LINE`] bytes (and one), so
//! one huge line cannot blow up memory; it becomes an `invalid_url` entry.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use http::Uri;

mod count;
pub mod uri;
pub mod url;

pub use count::count_ahead;
#[cfg(test)]
mod whatwg_tests;

/// Where URL lines come from, already opened (so an unreadable file is a
/// usage error before anything is fetched).
#[derive(Debug)]
pub enum Source {
    /// URLs given as arguments, as bytes: an argument that is not UTF-8
    /// is an entry like any other (`invalid_url`), not a usage error.
    Args(Vec<Vec<u8>>),
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
            let ours = match self {
                Source::Args(_) => return false,
                Source::File(_, f) => f.metadata(),
                // `< list.txt` makes stdin that very file.
                Source::Stdin => std::fs::metadata("/dev/stdin"),
            };
            match (ours, std::fs::metadata(path)) {
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
    /// Which of its URL's saved names this entry takes (0: the plain one),
    /// handed out in input order by the [`Claim`] given to
    /// [`Entries::claiming`]: two entries of a run never save to one file.
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
    /// All input has been read (or a read error ended it).
    pub done: AtomicBool,
    /// Entries the input will hold, when known before it is all read
    /// (see [`count_ahead`]); 0 when unknown.
    pub expected: AtomicU64,
    /// Entries skipped by `--dedup` as repeats of an earlier one.
    pub duplicates: AtomicU64,
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

/// A read error that ended the input early. The run ends with it: a
/// half-read input must not look complete.
#[derive(Debug)]
pub struct InputError {
    /// The source, as messages name it.
    name: String,
    error: io::Error,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading {}", self.name)
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Whether `line` is an entry: not blank, not a `#` comment.
fn is_entry(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    !t.is_empty() && !t.starts_with(b"#")
}

/// What to read, and which entries to keep.
#[derive(Debug)]
pub struct InputConfig {
    /// Input sources, in order.
    pub sources: Vec<Source>,
    /// Which entries to keep.
    pub filter: Filter,
}

/// Which entries to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Skip URLs already seen.
    pub dedup: bool,
    /// Keep only `seq % n == k`.
    pub shard: Option<(u64, u64)>,
}

/// Hands out saved names in input order (see [`Entry::repeat`]).
pub trait Claim: Send {
    /// The `repeat` of the entry `text`, requested as `uri`.
    fn claim(&mut self, text: &str, uri: &Uri) -> u32;
}

/// An iterator over the kept entries of all sources, in order.
pub struct Entries {
    sources: std::vec::IntoIter<Source>,
    current: Option<Lines>,
    filter: Filter,
    /// Hashes of the entries seen, for `--dedup` (16 bytes per distinct
    /// entry).
    seen: HashSet<u128>,
    names: Option<Box<dyn Claim>>,
    hashers: (RandomState, RandomState),
    next_seq: u64,
    stats: Arc<InputStats>,
}

enum Lines {
    Args(std::vec::IntoIter<Vec<u8>>),
    Reader(String, Box<dyn BufRead + Send>),
}

impl Entries {
    /// Entries from `sources`, filtered, reporting to `stats`.
    pub fn new(sources: Vec<Source>, filter: Filter, stats: Arc<InputStats>) -> Self {
        Entries {
            sources: sources.into_iter(),
            current: None,
            filter,
            seen: HashSet::new(),
            names: None,
            hashers: (RandomState::new(), RandomState::new()),
            next_seq: 0,
            stats,
        }
    }

    /// Entries that will be saved: each kept entry's [`Entry::repeat`]
    /// comes from `names`.
    pub fn claiming(mut self, names: Box<dyn Claim>) -> Self {
        self.names = Some(names);
        self
    }

    /// The next raw line of any source into `buf`: whether it is longer
    /// than [`MAX_LINE`]; `None` at the end of the input. A read error ends
    /// the input.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> Result<Option<bool>, InputError> {
        loop {
            let lines = match &mut self.current {
                Some(lines) => lines,
                None => {
                    let Some(source) = self.sources.next() else {
                        return Ok(None);
                    };
                    self.current = Some(match source {
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
                    buf.extend_from_slice(&u);
                    false
                }),
                Lines::Reader(name, r) => match read_line(r, buf) {
                    Ok(line) => line,
                    Err(error) => {
                        let name = std::mem::take(name);
                        // Stop here: nothing after it is read.
                        self.sources = Vec::new().into_iter();
                        self.current = None;
                        return Err(InputError { name, error });
                    }
                },
            };
            match line {
                Some(overflow) => return Ok(Some(overflow)),
                None => self.current = None,
            }
        }
    }

    /// Dedup looks at every entry before sharding, so N machines sharding
    /// one list agree on which occurrence of a URL is the first: together
    /// they fetch each URL once.
    /// Returns whether to keep the entry.
    fn keep(&mut self, seq: u64, raw: &[u8]) -> bool {
        if self.filter.dedup {
            let (a, b) = &self.hashers;
            let hash = (u128::from(a.hash_one(raw)) << 64) | u128::from(b.hash_one(raw));
            if !self.seen.insert(hash) {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        self.filter.shard.is_none_or(|(k, n)| seq % n == k)
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
    type Item = Result<Entry, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        loop {
            let overflow = match self.next_line(&mut buf) {
                Ok(Some(overflow)) => overflow,
                Ok(None) => {
                    self.stats.done.store(true, Ordering::SeqCst);
                    return None;
                }
                Err(e) => {
                    self.stats.done.store(true, Ordering::SeqCst);
                    return Some(Err(e));
                }
            };
            if !is_entry(&buf) {
                continue;
            }
            let line = buf.trim_ascii();
            let seq = self.next_seq;
            self.next_seq += 1;
            self.stats.entries.fetch_add(1, Ordering::Relaxed);
            let mut entry = classify(seq, line, overflow);
            if self.keep(seq, &entry.raw) {
                if let (Some(names), Ok(uri)) = (&mut self.names, &entry.target) {
                    entry.repeat = names.claim(&entry.url, uri);
                }
                self.stats.kept.fetch_add(1, Ordering::Relaxed);
                return Some(Ok(entry));
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
mod tests;
