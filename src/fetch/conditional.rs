//! `--update` in one attempt: the stored validators of the URL's saved file
//! become `If-None-Match` / `If-Modified-Since`; a `304` is the existing
//! file, untouched; a saved `200` gets its validators stored (see
//! [`crate::store::update`]).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use ureq::http::{HeaderMap, Method, StatusCode};

use super::config::RequestConfig;
use crate::result::Fetched;
use crate::store::StoreConfig;
use crate::store::save::{self, Unfinished};
use crate::store::update::{self, Validators};

/// `--update` for one attempt of one URL.
pub(super) struct Conditional<'a> {
    dir: &'a Path,
    /// Where the validators file being written is listed.
    unfinished: &'a Unfinished,
    /// The saved file's name in `dir`.
    name: String,
    /// Its stored validators, when usable and sent.
    stored: Option<Validators>,
    /// The file's SHA-256 as read before the request, when `--sha256`
    /// needed it to check the stored one.
    on_disk: Option<String>,
}

impl<'a> Conditional<'a> {
    /// The conditional request for the entry saved as `name`, with
    /// `--update` (GET and HEAD only), made as `config` says. Each entry has
    /// its own name (a URL listed twice too), and so its own validators.
    ///
    /// With `--sha256`, validators that recorded a hash are used only while
    /// the file still has it: a file edited in place (same size and time)
    /// is downloaded again rather than called unchanged.
    pub(super) fn new(
        name: Option<&str>,
        config: &RequestConfig,
        store: &'a StoreConfig,
        unfinished: &'a Unfinished,
    ) -> Option<Self> {
        if !store.update || ![Method::GET, Method::HEAD].contains(&config.method) {
            return None;
        }
        let dir = store.dir.as_deref()?;
        let name = name?.to_owned();
        // Validators of the user's own (-H) win; then a 304 is not ours.
        let own = config.headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("if-none-match") || n.eq_ignore_ascii_case("if-modified-since")
        });
        let mut stored = (!own).then(|| Validators::load(dir, &name)).flatten();
        let mut on_disk = None;
        if store.sha256
            && let Some(recorded) = stored.as_ref().and_then(|v| v.sha256.as_deref())
        {
            on_disk = hash_file(&dir.join(&name));
            if on_disk.as_deref() != Some(recorded) {
                stored = None;
            }
        }
        Some(Conditional {
            dir,
            unfinished,
            name,
            stored,
            on_disk,
        })
    }
}

impl Conditional<'_> {
    /// The headers that make the request conditional.
    pub(super) fn headers(&self) -> Vec<(String, String)> {
        let Some(v) = &self.stored else {
            return Vec::new();
        };
        let mut headers = Vec::with_capacity(2);
        if let Some(etag) = &v.etag {
            headers.push(("If-None-Match".to_owned(), etag.clone()));
        }
        if let Some(date) = &v.last_modified {
            headers.push(("If-Modified-Since".to_owned(), date.clone()));
        }
        headers
    }

    /// The result of a `304`: ok, the existing file (if there is one) as
    /// `saved_to`, nothing written. Its `sha256` is that of the bytes on
    /// disk, never one recorded earlier.
    pub(super) fn unchanged(&self, status: StatusCode, sha256: bool) -> Option<Fetched> {
        if status != StatusCode::NOT_MODIFIED {
            return None;
        }
        let path = self.dir.join(&self.name);
        let exists = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        let sha256 = (sha256 && exists)
            .then(|| self.on_disk.clone().or_else(|| hash_file(&path)))
            .flatten();
        Some(Fetched {
            ok: true,
            status: Some(status.as_u16()),
            saved_to: exists.then(|| path.display().to_string()),
            sha256,
            unchanged: true,
            ..Fetched::default()
        })
    }

    /// What to store once the body of a response with `headers` is saved.
    pub(super) fn validators(&self, headers: &HeaderMap) -> Option<Validators> {
        let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
        Validators::from_response(value("etag"), value("last-modified"), None)
    }

    /// The body was saved as `fetched` says: stores its validators, or
    /// forgets old ones when it came without any.
    pub(super) fn saved(self, fetched: &Fetched, validators: Option<Validators>) {
        if fetched.saved_to.is_none() || fetched.error.is_some() {
            return;
        }
        match validators {
            Some(mut v) => {
                v.sha256.clone_from(&fetched.sha256);
                v.store(self.dir, &self.name, self.unfinished);
            }
            None => update::forget(self.dir, &self.name),
        }
    }
}

/// The SHA-256 of the file at `path`, if it can be read.
fn hash_file(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 8 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(save::hex(&hasher.finalize()))
}
