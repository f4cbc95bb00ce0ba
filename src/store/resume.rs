//! Resumable downloads: a body cut short (a timeout, a reset, a signal, a
//! full disk) keeps its bytes in a hidden part file beside the file it was
//! to become, so that a later attempt, or a later run with `--continue`,
//! asks only for the rest (`Range` + `If-Range`).
//!
//! - **Names.** The body of `NAME` is written to `.fetchpool-part-NAME` in
//!   the same folder, and what it is part of (the `If-Range` validator: a
//!   strong `ETag`, else the `Last-Modified` date) to
//!   `.fetchpool-part-NAME.json`, written first. Saved names never start
//!   with `.` (see [`super::names`]), so neither can be taken for a saved
//!   file, nor for a validators file of `--update`.
//! - **Only what can be proven.** A body is written this way only when the
//!   response carries such a validator: without one, a later request could
//!   not ask "the rest of *this* body", and the two halves of different
//!   versions would be saved as one file. Other bodies use an ordinary
//!   temporary file, removed on failure.
//! - **A part file is always a prefix of its body**: bytes are written in
//!   order, and straight to the file (no buffer in the process), so
//!   whatever ends the writing, even a run that stops waiting for a worker
//!   blocked on its server, leaves every byte received so far.
//! - **One writer.** The part file is locked while written (`flock`); a
//!   second fetchpool on the same DIR that finds it locked does not resume
//!   it and writes a temporary file of its own.
//! - **Committed like any body**: synced, then renamed to `NAME`, and the
//!   metadata removed. Final names never hold partial bytes.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use super::save::{self, Unfinished};

/// Prefix of every part file's name.
pub const PART_PREFIX: &str = ".fetchpool-part-";
/// Largest metadata file read; anything larger is corrupt.
const MAX_META: u64 = 8 * 1024;

/// What a part file is part of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    /// Format version.
    v: u32,
    /// The `If-Range` value: a strong `ETag` or an HTTP date.
    if_range: String,
}

/// A part file found for a saved name, ready to be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Bytes already there: the request asks for `bytes=offset-`.
    pub offset: u64,
    /// The `If-Range` value to send.
    pub if_range: String,
}

/// `.fetchpool-part-FILE` in the folder of `name` (a path relative to DIR).
fn part_name(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((folder, file)) => format!("{folder}/{PART_PREFIX}{file}"),
        None => format!("{PART_PREFIX}{name}"),
    }
}

fn meta_name(name: &str) -> String {
    format!("{}.json", part_name(name))
}

/// The `If-Range` value a response allows: its `ETag` when strong (a weak
/// one may not be sent in `If-Range`), else its `Last-Modified`.
pub fn validator(etag: Option<&str>, last_modified: Option<&str>) -> Option<String> {
    let usable = |v: &&str| !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| b >= 0x20);
    match etag.filter(usable) {
        Some(tag) if tag.starts_with('"') => Some(tag.to_owned()),
        _ => last_modified
            .filter(usable)
            .filter(|d| httpdate::parse_http_date(d).is_ok())
            .map(str::to_owned),
    }
}

/// The part file of `name` under `dir`, if there is one that can be
/// resumed: a regular file (not a link) of at least one byte, with
/// readable metadata.
pub fn find(dir: &Path, name: &str) -> Option<Found> {
    let part = fs::symlink_metadata(dir.join(part_name(name))).ok()?;
    if !part.file_type().is_file() || part.len() == 0 {
        return None;
    }
    let meta_path = dir.join(meta_name(name));
    let meta = fs::symlink_metadata(&meta_path).ok()?;
    if !meta.file_type().is_file() || meta.len() > MAX_META {
        return None;
    }
    let meta: Meta = serde_json::from_slice(&fs::read(meta_path).ok()?).ok()?;
    (meta.v == 1 && validator(Some(&meta.if_range), Some(&meta.if_range)).is_some()).then_some(
        Found {
            offset: part.len(),
            if_range: meta.if_range,
        },
    )
}

/// Removes the part file of `name` and its metadata, if any.
pub fn forget(dir: &Path, name: &str) {
    let _ = fs::remove_file(dir.join(part_name(name)));
    let _ = fs::remove_file(dir.join(meta_name(name)));
}

/// A body being written to its part file.
pub struct Part {
    path: PathBuf,
    target: PathBuf,
    meta: PathBuf,
    file: File,
}

impl Part {
    /// Opens the part file of `name` under `dir` for a body whose
    /// `If-Range` value is `if_range`: from the start, or (`from` = the
    /// offset of a [`Found`] part, answered with a `206`) after its first
    /// `from` bytes, which are then fed to `prefix` (to be hashed).
    /// `None` when another process holds the part file. Its metadata file
    /// is listed in `unfinished` while it is written.
    pub fn open(
        dir: &Path,
        name: &str,
        if_range: &str,
        from: u64,
        prefix: impl FnMut(&[u8]),
        unfinished: &Unfinished,
    ) -> io::Result<Option<Part>> {
        let target = dir.join(name);
        if let Some(folder) = target.parent() {
            fs::create_dir_all(folder)?;
        }
        let path = dir.join(part_name(name));
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Ok(None);
        }
        let meta = dir.join(meta_name(name));
        if from == 0 {
            let json = serde_json::to_vec(&Meta {
                v: 1,
                if_range: if_range.to_owned(),
            })
            .map_err(io::Error::other)?;
            let started = file
                .set_len(0)
                .and_then(|()| save::write_atomic(dir, &meta_name(name), &json, unfinished));
            if let Err(e) = started {
                // A part without its validator can never be resumed (a
                // full disk, say): leave no empty hidden file behind.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        } else {
            read_prefix(&mut file, from, prefix)?;
            file.set_len(from)?;
        }
        file.seek(SeekFrom::Start(from))?;
        Ok(Some(Part {
            path,
            target,
            meta,
            file,
        }))
    }

    /// Appends body bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    /// Syncs the whole body and renames it into place; returns its path.
    pub fn commit(self) -> io::Result<PathBuf> {
        self.file.sync_all()?;
        fs::rename(&self.path, &self.target)?;
        let _ = fs::remove_file(&self.meta);
        Ok(self.target)
    }

    /// Stops writing, keeping the bytes written so far for a later resume.
    pub fn keep(self) {}

    /// Stops writing and removes the part (a body that can never be whole,
    /// such as one over `--max-size`).
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_file(&self.meta);
    }
}

/// Feeds the first `len` bytes of `file` to `prefix`.
fn read_prefix(file: &mut File, len: u64, mut prefix: impl FnMut(&[u8])) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    let mut buf = vec![0; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the part file is shorter than when it was found",
            ));
        }
        prefix(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strong_etags_and_dates_are_validators() {
        let date = "Tue, 01 Jul 2025 10:00:00 GMT";
        assert_eq!(validator(Some("\"v1\""), None).as_deref(), Some("\"v1\""));
        assert_eq!(
            validator(Some("W/\"v1\""), Some(date)).as_deref(),
            Some(date)
        );
        assert_eq!(validator(Some("W/\"v1\""), None), None);
        assert_eq!(validator(None, Some("yesterday")), None);
        assert_eq!(validator(Some("\"a\nb\""), None), None);
    }

    #[test]
    fn a_part_whose_validator_cannot_be_kept_is_not_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let name = "f.bin";
        // A directory where the metadata goes: writing it fails, as on a
        // full disk.
        fs::create_dir(dir.path().join(meta_name(name))).unwrap();
        assert!(
            Part::open(
                dir.path(),
                name,
                "\"v1\"",
                0,
                |_| {},
                &Unfinished::default()
            )
            .is_err()
        );
        assert!(
            !dir.path().join(part_name(name)).exists(),
            "an empty part left"
        );
    }

    #[test]
    fn a_kept_part_is_found_and_resumed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let name = "h/a/f.bin";
        let mut part = Part::open(
            dir.path(),
            name,
            "\"v1\"",
            0,
            |_| {},
            &Unfinished::default(),
        )
        .unwrap()
        .unwrap();
        part.write(b"hello ").unwrap();
        part.keep();
        assert!(
            !dir.path().join(name).exists(),
            "never under the final name"
        );
        let found = find(dir.path(), name).unwrap();
        assert_eq!(found.offset, 6);
        assert_eq!(found.if_range, "\"v1\"");

        let mut seen = Vec::new();
        let mut part = Part::open(
            dir.path(),
            name,
            &found.if_range,
            6,
            |b| seen.extend_from_slice(b),
            &Unfinished::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(seen, b"hello ");
        part.write(b"world").unwrap();
        let path = part.commit().unwrap();
        assert_eq!(fs::read(path).unwrap(), b"hello world");
        assert_eq!(find(dir.path(), name), None);
        let left: Vec<_> = fs::read_dir(dir.path().join("h/a")).unwrap().collect();
        assert_eq!(left.len(), 1, "the part and its metadata are gone");
    }

    #[test]
    fn a_locked_part_is_not_shared() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            Part::open(dir.path(), "f", "\"v\"", 0, |_| {}, &Unfinished::default()).unwrap();
        assert!(first.is_some());
        assert!(
            Part::open(dir.path(), "f", "\"v\"", 0, |_| {}, &Unfinished::default())
                .unwrap()
                .is_none()
        );
        drop(first);
        assert!(
            Part::open(dir.path(), "f", "\"v\"", 0, |_| {}, &Unfinished::default())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn empty_corrupt_or_linked_parts_are_not_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join(part_name("a")), b"").unwrap();
        fs::write(d.join(meta_name("a")), br#"{"v":1,"if_range":"\"x\""}"#).unwrap();
        assert_eq!(find(d, "a"), None, "empty");
        fs::write(d.join(part_name("b")), b"abc").unwrap();
        fs::write(d.join(meta_name("b")), b"{oops").unwrap();
        assert_eq!(find(d, "b"), None, "corrupt");
        fs::write(d.join("elsewhere"), b"abc").unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join(part_name("c"))).unwrap();
        fs::write(d.join(meta_name("c")), br#"{"v":1,"if_range":"\"x\""}"#).unwrap();
        assert_eq!(find(d, "c"), None, "a link");
    }
}
