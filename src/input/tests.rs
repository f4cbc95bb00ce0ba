//! Unit tests of the reader: lines, BOM, seq, filters, raw bytes.

use super::*;
use std::io::Cursor;

fn entries_of(text: &[u8], filter: Filter) -> Vec<Entry> {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, text).unwrap();
    std::io::Seek::rewind(&mut file).unwrap();
    let sources = vec![Source::File("t".into(), file)];
    Entries::new(sources, filter, Arc::default())
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_read_error_is_the_last_item_and_names_its_source() {
    let dir = tempfile::tempdir().unwrap();
    // Opening a directory works; reading it fails (EISDIR).
    let sources = vec![
        Source::Args(vec!["http://a/".into()]),
        Source::File(dir.path().into(), File::open(dir.path()).unwrap()),
        Source::Args(vec!["http://never-read/".into()]),
    ];
    let stats = Arc::new(InputStats::default());
    let mut entries = Entries::new(sources, Filter::default(), Arc::clone(&stats));
    assert_eq!(entries.next().unwrap().unwrap().url, "http://a/");
    let err = entries.next().unwrap().unwrap_err();
    assert_eq!(err.to_string(), format!("reading {}", dir.path().display()));
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("directory"), "{source}");
    assert!(entries.next().is_none());
    assert!(stats.done.load(Ordering::SeqCst));
    assert_eq!(stats.kept.load(Ordering::SeqCst), 1);
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
        Source::Args(vec![b"http://z/".to_vec(), b" ".to_vec()]),
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
