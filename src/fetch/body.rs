//! Streaming a response body: counted, hashed and saved as asked, never
//! held whole.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use ureq::http::{Response, StatusCode};

use crossbeam_channel::Receiver;

use super::classify::{FD_WAIT, cancelled_error, classify, is_cancelled, is_out_of_fds};
use super::config::RequestConfig;
use crate::result::accept::Accept;
use crate::result::{ErrorKind, FetchError, Fetched};
use crate::store::StoreConfig;
use crate::store::save::{PartFile, Unfinished};

/// Error bodies up to this size are read before a retry so the connection
/// goes back to the pool; larger ones are dropped with their connection.
const DRAIN_MAX: u64 = 64 * 1024;
/// A worker's body read buffer, on its stack: zeroed per fetch, so kept small.
/// It lives in the frame of [`BodyReader::read_body`] (or of what it calls),
/// which is never inlined into its caller: otherwise the buffer would also
/// sit under the request (ureq's deepest frames), making every worker's
/// touched stack 4 KiB deeper.
const READ_BUF: usize = 4 * 1024;

/// What reading a body needs: the fetcher's settings and state, borrowed.
pub(super) struct BodyReader<'a> {
    pub(super) config: &'a RequestConfig,
    pub(super) store: &'a StoreConfig,
    pub(super) accept: &'a Accept,
    /// Where a body's temporary file is listed while it is written.
    pub(super) unfinished: &'a Unfinished,
    /// Disconnected when the run stops waiting: the read ends.
    pub(super) cancel: &'a Receiver<()>,
}

impl BodyReader<'_> {
    /// Streams the body of `response` to its end (or to a failure).
    #[inline(never)]
    pub(super) fn read_body(
        &self,
        url: &str,
        repeat: u32,
        status: StatusCode,
        response: Response<ureq::Body>,
    ) -> Fetched {
        let mut fetched = Fetched::default();
        let max = self.config.max_size.unwrap_or(u64::MAX);
        if let Some(len) = response.body().content_length()
            && len > max
        {
            fetched.error = Some(too_large(max));
            return fetched;
        }
        // A HEAD, 1xx, 204 or 304 response has no body: there is nothing to
        // hash or save, and an empty file must never replace a download.
        let has_body = self.config.method != ureq::http::Method::HEAD
            && !status.is_informational()
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED;
        let mut hasher = (self.store.sha256 && has_body).then(Sha256::new);
        let save = self
            .store
            .dir
            .as_deref()
            .filter(|_| has_body && self.accept.contains(status.as_u16()));
        let mut part = match save
            .map(|dir| self.create_part(dir, url, repeat))
            .transpose()
        {
            Ok(part) => part,
            Err(e) => {
                fetched.error = Some(io_error("cannot create file", &e));
                return fetched;
            }
        };
        let reader = response.into_body().into_reader();
        let streamed = self.stream(reader, max, hasher.as_mut(), part.as_mut());
        fetched.bytes = match streamed {
            Ok(bytes) => bytes,
            Err((bytes, error)) => {
                fetched.bytes = bytes;
                fetched.error = Some(error);
                return fetched;
            }
        };
        fetched.sha256 = hasher.map(|h| crate::store::save::hex(&h.finalize()));
        if let Some(p) = part {
            match p.commit() {
                Ok(path) => fetched.saved_to = Some(path.display().to_string()),
                Err(e) => fetched.error = Some(io_error("cannot save file", &e)),
            }
        }
        fetched
    }
}

impl BodyReader<'_> {
    /// Reads `reader` to its end through a small buffer, hashing and saving
    /// each chunk; never reads more than one byte past `max`. Returns the
    /// bytes read, with the error that ended the read early.
    fn stream(
        &self,
        mut reader: impl Read,
        max: u64,
        mut hasher: Option<&mut Sha256>,
        mut part: Option<&mut PartFile>,
    ) -> Result<u64, (u64, FetchError)> {
        let mut bytes = 0u64;
        let mut buf = [0u8; READ_BUF];
        loop {
            let room = usize::try_from(max.saturating_add(1) - bytes).unwrap_or(usize::MAX);
            let n = match reader.read(&mut buf[..room.min(READ_BUF)]) {
                Ok(0) => return Ok(bytes),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let mut err = classify(&ureq::Error::from(e), self.config);
                    if err.kind == ErrorKind::Io {
                        err.message = format!("{} after {bytes} bytes of body", err.message);
                    }
                    return Err((bytes, err));
                }
            };
            bytes += n as u64;
            if bytes > max {
                return Err((bytes, too_large(max)));
            }
            let chunk = &buf[..n];
            if let Some(h) = &mut hasher {
                h.update(chunk);
            }
            if let Some(p) = &mut part
                && let Err(e) = p.write(chunk)
            {
                return Err((bytes, io_error("cannot write file", &e)));
            }
            if is_cancelled(self.cancel) {
                return Err((bytes, cancelled_error()));
            }
        }
    }

    /// Creates the temporary file for a body. Out of file descriptors (other
    /// programs, or a limit lowered under us), it waits for one to be freed:
    /// our own shortage is never a URL's result.
    fn create_part(&self, dir: &Path, url: &str, repeat: u32) -> std::io::Result<PartFile> {
        loop {
            match PartFile::create(dir, url, repeat, self.unfinished) {
                Err(e) if is_out_of_fds(&e) && !is_cancelled(self.cancel) => {
                    std::thread::sleep(FD_WAIT);
                }
                other => return other,
            }
        }
    }
}

fn io_error(what: &str, e: &std::io::Error) -> FetchError {
    FetchError::new(ErrorKind::Io, format!("{what}: {e}"))
}

fn too_large(max: u64) -> FetchError {
    FetchError::new(
        ErrorKind::TooLarge,
        format!("body larger than --max-size ({max} bytes)"),
    )
}

/// Reads a small error or redirect body to its end so its connection can
/// be reused; a body known to be larger is dropped unread, with its
/// connection.
pub(super) fn drain(response: Response<ureq::Body>) -> u64 {
    if response
        .body()
        .content_length()
        .is_some_and(|n| n > DRAIN_MAX)
    {
        return 0;
    }
    let mut reader = response.into_body().into_reader().take(DRAIN_MAX);
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap_or(0)
}
