//! Saving bodies under `--output-dir`: safe, stable file names and
//! all-or-nothing writes.
//!
//! A name is a function of the URL alone: a readable slug of host, path and
//! query made only of `[A-Za-z0-9._-]`, then 128 bits of the URL's SHA-256,
//! then the path's extension if it has a short one. It has no `/` or `\`,
//! never starts with `.`, and is at most [`MAX_NAME`] bytes, so it always
//! names a file directly inside the directory; the hash keeps different URLs
//! apart. Credentials never enter the name.
//!
//! A body is written to a hidden temporary file in the same directory and
//! renamed into place only when complete, so a failed, too large or
//! interrupted download never leaves a file under the final name.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::lock::lock;

/// Longest file name produced, in bytes.
pub const MAX_NAME: usize = 200;
const MAX_SLUG: usize = 150;

/// The file name for the `repeat`-th repeat of `url` in one run (0: its
/// first occurrence): repeats get `-N` (N from 2) after the hash, before
/// the extension. The hash is 32 hex digits and never holds a `-`, so no
/// other URL's name can take this form.
pub fn name_for(url: &str, repeat: u32) -> String {
    let hash = hex(&Sha256::digest(url.as_bytes())[..16]);
    let span = crate::input::uri::authority_span(url);
    let authority = &url[span.clone()];
    let rest = &url[span.end..];
    let path = rest.split('#').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);

    let suffix = if repeat == 0 {
        String::new()
    } else {
        format!("-{}", u64::from(repeat) + 1)
    };
    let max_slug = MAX_SLUG - suffix.len();
    let mut slug = String::with_capacity(MAX_SLUG);
    for c in host.chars().chain(path.chars()) {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
            c
        } else {
            '_'
        };
        if c == '_' && slug.ends_with('_') {
            continue;
        }
        if slug.len() == max_slug {
            break;
        }
        slug.push(c);
    }
    let slug = slug
        .trim_start_matches(['.', '_', '-'])
        .trim_end_matches('_');
    let ext = extension(path);
    let name = if slug.is_empty() {
        format!("{hash}{suffix}{ext}")
    } else {
        format!("{slug}-{hash}{suffix}{ext}")
    };
    debug_assert!(name.len() <= MAX_NAME);
    name
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `.ext` of the last path segment when it is 1 to 10 letters or digits.
fn extension(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=10).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{ext}")
        }
        _ => String::new(),
    }
}

/// A body being written to a hidden temporary file in the target's
/// directory (`.fetchpool-XXXXXXXXXXXXXXXX.part`: a name no saved file
/// has), renamed to its final name by [`PartFile::commit`], deleted if
/// dropped before that.
pub struct PartFile {
    file: Option<BufWriter<NamedTempFile>>,
    /// The temporary file's path, as listed in `unfinished`.
    temp: PathBuf,
    target: PathBuf,
    unfinished: Unfinished,
}

impl PartFile {
    /// Creates a temporary file for the file `name` (a path relative to
    /// `dir`, see [`super::names`]), beside it: in the folder it will be
    /// renamed into, which is created first if need be. It is listed in
    /// `unfinished` until committed or dropped.
    pub fn create(dir: &Path, name: &str, unfinished: &Unfinished) -> io::Result<Self> {
        let target = dir.join(name);
        let folder = match target.parent() {
            Some(parent) if parent != dir => {
                std::fs::create_dir_all(parent)?;
                parent
            }
            _ => dir,
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".fetchpool-").suffix(".part").rand_bytes(16);
        // As a file the user creates: 0666 less the umask, not tempfile's
        // private 0600 (the file is theirs once renamed into place).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let file = builder.tempfile_in(folder)?;
        let temp = file.path().to_owned();
        lock(&unfinished.0).insert(temp.clone());
        Ok(PartFile {
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            temp,
            target,
            unfinished: unfinished.clone(),
        })
    }

    /// Appends body bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(bytes),
            None => Ok(()),
        }
    }

    /// Flushes and renames the file into place; returns its final path.
    pub fn commit(self) -> io::Result<PathBuf> {
        self.commit_with(true)
    }

    /// [`PartFile::commit`], syncing the data to disk first or not. On an
    /// error the temporary file is removed.
    fn commit_with(mut self, sync: bool) -> io::Result<PathBuf> {
        let Some(file) = self.file.take() else {
            return Ok(std::mem::take(&mut self.target));
        };
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        if sync {
            file.as_file().sync_all()?;
        }
        file.persist(&self.target).map_err(|e| e.error)?;
        Ok(std::mem::take(&mut self.target))
    }
}

/// Writes `bytes` as the file `name` in `dir` all at once: to a temporary
/// file, renamed into place, so a reader sees the old file or the new one,
/// never a part (not synced to disk: for small files whose loss is harmless).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    unfinished: &Unfinished,
) -> io::Result<()> {
    let mut part = PartFile::create(dir, name, unfinished)?;
    part.write(bytes)?;
    part.commit_with(false).map(drop)
}

/// The temporary files of one run still being written, so a run that stops
/// waiting for its workers (they may be blocked on a server that never
/// answers) can still remove them before it exits. Clones share the list.
#[derive(Debug, Clone, Default)]
pub struct Unfinished(Arc<Mutex<BTreeSet<PathBuf>>>);

impl Unfinished {
    /// Removes every temporary file still being written.
    pub fn remove_all(&self) {
        for temp in std::mem::take(&mut *lock(&self.0)) {
            let _ = std::fs::remove_file(temp);
        }
    }
}

impl Drop for PartFile {
    /// The temporary file is gone by now (renamed, or removed with its
    /// handle): it is no longer unfinished.
    fn drop(&mut self) {
        drop(self.file.take());
        lock(&self.unfinished.0).remove(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }

    #[test]
    fn repeats_of_a_url_get_names_of_their_own() {
        let long = format!("http://h.example/{}.tar.gz", "a".repeat(400));
        for url in [
            "http://h.example/a.b/file.txt",
            "http://h.example/x.y/",
            &long,
        ] {
            let names: Vec<String> = [0, 1, 2, u32::MAX]
                .iter()
                .map(|&r| name_for(url, r))
                .collect();
            assert_eq!(names[0], name_for(url, 0));
            for n in &names {
                assert!(valid(n), "{n}");
            }
            let distinct: std::collections::BTreeSet<_> = names.iter().collect();
            assert_eq!(distinct.len(), names.len(), "{names:?}");
        }
        assert!(name_for("http://h/f.txt", 1).ends_with("-2.txt"));
    }

    #[test]
    fn names_are_safe_stable_and_distinct() {
        let urls = [
            "http://h/../../etc/passwd",
            "http://h/%2e%2e/%2e%2e/etc/passwd",
            "http://h/..%2f..%2fetc",
            "http://h/a\\..\\b",
            "http://h/",
            "http://h",
            "http://h/a/",
            "http://h/a",
            "http://h/a?x=1",
            "http://h/a?x=2",
            "http://other/a",
            "http://u:secret@h/a",
            "http://h/caf\u{e9}/\u{1F600}",
            "http://h/.hidden",
            "http://.../...",
        ];
        let long = format!("http://h/{}", "a/".repeat(2500));
        let mut names: Vec<String> = urls
            .iter()
            .copied()
            .chain([long.as_str()])
            .map(|u| name_for(u, 0))
            .collect();
        for n in &names {
            assert!(valid(n), "{n}");
            assert!(!n.contains("secret"), "{n}");
        }
        assert_eq!(name_for(urls[0], 0), names[0]);
        assert!(names[7].ends_with(".gz") || !names[7].contains('.') || valid(&names[7]));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), urls.len() + 1);
    }

    #[test]
    fn keeps_a_short_extension() {
        assert!(name_for("https://h/dl/file.tar.gz?x=1", 0).ends_with(".gz"));
        assert!(
            !name_for("https://h/dl/file.verylongextension", 0).ends_with(".verylongextension")
        );
    }

    #[test]
    fn part_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = "http://h/x.txt";
        let mut part =
            PartFile::create(dir.path(), &name_for(url, 0), &Unfinished::default()).unwrap();
        part.write(b"hello").unwrap();
        let target = dir.path().join(name_for(url, 0));
        assert!(!target.exists());
        assert_eq!(part.commit().unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");

        let mut dropped = PartFile::create(
            dir.path(),
            &name_for("http://h/y", 0),
            &Unfinished::default(),
        )
        .unwrap();
        dropped.write(b"partial").unwrap();
        drop(dropped);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the committed file remains");
    }

    /// The names in `dir`.
    fn names_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn part_files_are_hidden_listed_and_removed_when_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let unfinished = Unfinished::default();
        let mut part =
            PartFile::create(dir.path(), &name_for("http://h/x.txt", 0), &unfinished).unwrap();
        part.write(b"partial").unwrap();
        let names = names_in(dir.path());
        assert_eq!(names.len(), 1);
        let temp = &names[0];
        assert!(
            temp.starts_with(".fetchpool-") && temp.ends_with(".part"),
            "{temp}"
        );
        assert_ne!(*temp, name_for("http://h/x.txt", 0));
        assert_eq!(
            lock(&unfinished.0).iter().collect::<Vec<_>>(),
            [&dir.path().join(temp)]
        );
        // A run that gives up removes it while its writer is still busy.
        unfinished.remove_all();
        assert!(names_in(dir.path()).is_empty());
        drop(part);
        assert!(lock(&unfinished.0).is_empty());
    }

    #[test]
    fn committed_files_leave_the_list_and_get_a_user_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let unfinished = Unfinished::default();
        write_atomic(dir.path(), "meta", b"{}", &unfinished).unwrap();
        let mut part =
            PartFile::create(dir.path(), &name_for("http://h/b", 0), &unfinished).unwrap();
        part.write(b"body").unwrap();
        let saved = part.commit().unwrap();
        assert!(lock(&unfinished.0).is_empty());
        assert_eq!(std::fs::read(dir.path().join("meta")).unwrap(), b"{}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            let plain = dir.path().join("plain");
            std::fs::File::create(&plain).unwrap();
            assert_eq!(mode(&saved), mode(&plain));
            assert_eq!(mode(&dir.path().join("meta")), mode(&plain));
        }
        let mut names = names_in(dir.path());
        names.sort();
        assert_eq!(
            names,
            [name_for("http://h/b", 0), "meta".into(), "plain".into()]
        );
    }
}
