//! `--update`: the validators (`ETag`, `Last-Modified`) of each file saved
//! under `--output-dir`, kept in DIR so the next run can ask the server
//! whether the file changed (`If-None-Match`, `If-Modified-Since`).
//!
//! - **One small file per saved file**, `.fetchpool-meta-NAME` beside
//!   `NAME`: each worker writes only its own, so many workers need no
//!   shared index, and an interrupted run loses at most the files being
//!   written. The name starts with `.`, which no saved file's name does
//!   (see [`crate::store::save`]), so the two can never be taken for each other,
//!   and it is a plain name directly inside DIR.
//! - **Written atomically** (a temporary file renamed into place), after the
//!   body is in place.
//! - **Tied to the file they describe**: they record its size and
//!   modification time, and are used only while the file still has them. A
//!   file replaced or edited since, a run interrupted between the body and
//!   its validators, a validators file missing, unreadable or corrupt: each
//!   means a full download, never a failed entry.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::store::save::{self, Unfinished};

/// Prefix of every validators file's name.
pub const META_PREFIX: &str = ".fetchpool-meta-";
/// Largest validators file read; anything larger is corrupt.
const MAX_META: u64 = 16 * 1024;
/// Longest validator value kept (longer ones are not worth a header).
const MAX_VALUE: usize = 4 * 1024;
/// The format's version, first in the file.
const VERSION: u32 = 1;

/// The validators of one saved file, and what identifies that file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// Format version.
    v: u32,
    /// The `ETag` the file was served with.
    pub etag: Option<String>,
    /// Its `Last-Modified`.
    pub last_modified: Option<String>,
    /// The body's SHA-256, when it was hashed (`--sha256`).
    pub sha256: Option<String>,
    /// The file's size when saved.
    size: u64,
    /// The file's modification time when saved: seconds and nanoseconds
    /// since the Unix epoch.
    mtime: (u64, u32),
}

/// The validators file of the saved file `name` (a path relative to DIR):
/// in the same folder, its file name prefixed with [`META_PREFIX`].
pub fn meta_name(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((folder, file)) => format!("{folder}/{META_PREFIX}{file}"),
        None => format!("{META_PREFIX}{name}"),
    }
}

/// Size and modification time of the regular file at `path` (not a link).
fn identity(path: &Path) -> Option<(u64, (u64, u32))> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let since = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), (since.as_secs(), since.subsec_nanos())))
}

/// Whether `value` can be sent back as a header value as it is.
fn sendable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE
        && value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

impl Validators {
    /// Validators from a response's `etag` and `last_modified` header
    /// values; `None` when it had neither (usable).
    pub fn from_response(
        etag: Option<&str>,
        last_modified: Option<&str>,
        sha256: Option<&str>,
    ) -> Option<Self> {
        let keep = |v: Option<&str>| v.map(str::trim).filter(|v| sendable(v)).map(str::to_owned);
        let (etag, last_modified) = (keep(etag), keep(last_modified));
        (etag.is_some() || last_modified.is_some()).then(|| Validators {
            v: VERSION,
            etag,
            last_modified,
            sha256: sha256.map(str::to_owned),
            size: 0,
            mtime: (0, 0),
        })
    }

    /// The validators stored for the file `name` in `dir`, if they are
    /// readable, well-formed and still describe that file.
    pub fn load(dir: &Path, name: &str) -> Option<Self> {
        let path = dir.join(meta_name(name));
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() || meta.len() > MAX_META {
            return None;
        }
        let mut text = String::new();
        fs::File::open(&path)
            .ok()?
            .take(MAX_META)
            .read_to_string(&mut text)
            .ok()?;
        let v: Validators = serde_json::from_str(&text).ok()?;
        let usable = v.v == VERSION
            && (v.etag.is_some() || v.last_modified.is_some())
            && v.etag.as_deref().is_none_or(sendable)
            && v.last_modified.as_deref().is_none_or(sendable);
        (usable && identity(&dir.join(name)) == Some((v.size, v.mtime))).then_some(v)
    }

    /// Stores these validators for the file `name` just saved in `dir`, with
    /// that file's size and time. On failure the file is left without
    /// validators (the next run downloads it in full). The temporary file
    /// is listed in `unfinished` while it is written.
    pub fn store(mut self, dir: &Path, name: &str, unfinished: &Unfinished) {
        let stored = identity(&dir.join(name)).is_some_and(|(size, mtime)| {
            self.size = size;
            self.mtime = mtime;
            serde_json::to_vec(&self).is_ok_and(|json| {
                save::write_atomic(dir, &meta_name(name), &json, unfinished).is_ok()
            })
        });
        if !stored {
            forget(dir, name);
        }
    }
}

/// Removes the validators of the file `name` in `dir`, if any: it was saved
/// without validators, so old ones must not describe it.
pub fn forget(dir: &Path, name: &str) {
    let _ = fs::remove_file(dir.join(meta_name(name)));
}

/// Moves the modification time of the file at `path` five seconds ahead.
#[cfg(test)]
fn touch_later(path: &Path) {
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(later).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(dir: &Path, name: &str, body: &[u8]) {
        fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn stored_validators_load_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let name = "h-0123.txt";
        saved(dir.path(), name, b"body");
        let v =
            Validators::from_response(Some("\"abc\""), Some("Tue, 01 Jul 2025 00:00:00 GMT"), None)
                .unwrap();
        v.clone().store(dir.path(), name, &Unfinished::default());
        let loaded = Validators::load(dir.path(), name).unwrap();
        assert_eq!(loaded.etag.as_deref(), Some("\"abc\""));
        assert_eq!(loaded.last_modified, v.last_modified);
        assert!(dir.path().join(".fetchpool-meta-h-0123.txt").is_file());

        // The file changed under them: no longer theirs.
        touch_later(&dir.path().join(name));
        assert_eq!(Validators::load(dir.path(), name), None);
        saved(dir.path(), name, b"other body");
        assert_eq!(Validators::load(dir.path(), name), None);
    }

    #[test]
    fn missing_corrupt_or_unsendable_validators_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let name = "f";
        saved(dir.path(), name, b"x");
        assert_eq!(Validators::load(dir.path(), name), None);
        for junk in [
            &b"not json"[..],
            b"{}",
            b"{\"v\":1,\"etag\":null,\"last_modified\":null,\"sha256\":null,\"size\":1,\"mtime\":[0,0]}",
            b"{\"v\":1,\"etag\":\"a\\r\\nX: y\",\"last_modified\":null,\"sha256\":null,\"size\":1,\"mtime\":[0,0]}",
            &[0xff, 0xfe, 0x00],
        ] {
            fs::write(dir.path().join(meta_name(name)), junk).unwrap();
            assert_eq!(Validators::load(dir.path(), name), None, "{junk:?}");
        }
        assert_eq!(Validators::from_response(None, None, None), None);
        assert_eq!(
            Validators::from_response(Some("a\nb"), Some(""), None),
            None
        );
    }

    #[test]
    fn forgetting_removes_old_validators() {
        let dir = tempfile::tempdir().unwrap();
        saved(dir.path(), "f", b"x");
        Validators::from_response(Some("\"1\""), None, None)
            .unwrap()
            .store(dir.path(), "f", &Unfinished::default());
        forget(dir.path(), "f");
        assert_eq!(Validators::load(dir.path(), "f"), None);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }
}
