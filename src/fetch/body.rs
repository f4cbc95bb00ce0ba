//! Streaming a response body: counted, hashed and saved as asked, never
//! held whole.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use ureq::http::{Response, StatusCode};

use super::Fetcher;
use super::classify::classify;
use super::decode;
use crate::result::{ErrorKind, FetchError, Fetched};
use crate::store::save::PartFile;

/// Error bodies up to this size are read before a retry so the connection
/// goes back to the pool; larger ones are dropped with their connection.
const DRAIN_MAX: u64 = 64 * 1024;
/// A worker's body read buffer, on its stack: zeroed per fetch, so kept small.
/// It lives in [`Fetcher::read_body`]'s own frame, which is never inlined
/// into its caller: otherwise the buffer would also sit under the request
/// (ureq's deepest frames), making every worker's touched stack 4 KiB
/// deeper.
const READ_BUF: usize = 4 * 1024;

impl Fetcher {
    /// Streams the body of `response` to its end (or to a failure),
    /// decoded when `--compressed` asked for it and the server encoded it.
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
        // A HEAD, 1xx, 204 or 304 response has no body: there is nothing to
        // hash or save, and an empty file must never replace a download.
        let has_body = self.config.method != ureq::http::Method::HEAD
            && !status.is_informational()
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED;
        let codings = if self.config.compressed && has_body {
            decode::codings(response.headers())
        } else {
            Vec::new()
        };
        // The announced length is of the encoded body: it bounds the
        // decoded size only when nothing is decoded.
        if codings.is_empty()
            && let Some(len) = response.body().content_length()
            && len > max
        {
            fetched.error = Some(too_large(max));
            return fetched;
        }
        let save = self
            .config
            .output_dir
            .as_deref()
            .filter(|_| has_body && self.config.accept.contains(status.as_u16()));
        let part = match save
            .map(|dir| self.create_part(dir, url, repeat))
            .transpose()
        {
            Ok(part) => part,
            Err(e) => {
                fetched.error = Some(io_error("cannot create file", &e));
                return fetched;
            }
        };
        let wire = Cell::new(0);
        let failed = RefCell::new(None);
        let counted = decode::Counted {
            inner: response.into_body().into_reader(),
            count: &wire,
            failed: &failed,
        };
        let mut fetched = match decode::decoder(Box::new(counted), &codings) {
            Ok(mut reader) => {
                let hasher = (self.config.sha256 && has_body).then(Sha256::new);
                self.stream(&mut reader, hasher, part, &codings, &failed)
            }
            Err(message) => Fetched {
                error: Some(FetchError::new(ErrorKind::Protocol, message)),
                ..Fetched::default()
            },
        };
        fetched.wire_bytes = wire.get();
        fetched
    }

    /// Reads `reader` to its end: counted, hashed into `hasher`, written to
    /// `part`, never more than one byte past `--max-size`. An error of the
    /// connection (in `failed`) is classified as such; any other while
    /// `codings` are undone is a body that does not decode.
    fn stream(
        &self,
        reader: &mut dyn Read,
        mut hasher: Option<Sha256>,
        mut part: Option<PartFile>,
        codings: &[String],
        failed: &RefCell<Option<std::io::Error>>,
    ) -> Fetched {
        let mut fetched = Fetched::default();
        let max = self.config.max_size.unwrap_or(u64::MAX);
        let mut buf = [0u8; READ_BUF];
        loop {
            // Never read more than one byte past --max-size.
            let room = usize::try_from(max.saturating_add(1) - fetched.bytes).unwrap_or(usize::MAX);
            let n = match reader.read(&mut buf[..room.min(READ_BUF)]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let inner = failed.borrow_mut().take();
                    fetched.error = Some(match inner {
                        None if !codings.is_empty() => FetchError::new(
                            ErrorKind::Protocol,
                            format!(
                                "the {} body does not decode after {} bytes: {e}",
                                codings.join(", "),
                                fetched.bytes
                            ),
                        ),
                        inner => {
                            let e = inner.unwrap_or(e);
                            let mut err = classify(&ureq::Error::from(e), &self.config);
                            if err.kind == ErrorKind::Io {
                                err.message = format!(
                                    "{} after {} bytes of body",
                                    err.message, fetched.bytes
                                );
                            }
                            err
                        }
                    });
                    return fetched;
                }
            };
            fetched.bytes += n as u64;
            if fetched.bytes > max {
                fetched.error = Some(too_large(max));
                return fetched;
            }
            let chunk = &buf[..n];
            if let Some(h) = &mut hasher {
                h.update(chunk);
            }
            if let Some(p) = &mut part
                && let Err(e) = p.write(chunk)
            {
                fetched.error = Some(io_error("cannot write file", &e));
                return fetched;
            }
            if self.is_cancelled() {
                fetched.error = Some(super::cancelled_error());
                return fetched;
            }
        }
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

impl Fetcher {
    /// Creates the temporary file for a body. Out of file descriptors (other
    /// programs, or a limit lowered under us), it waits for one to be freed:
    /// our own shortage is never a URL's result.
    fn create_part(&self, dir: &Path, url: &str, repeat: u32) -> std::io::Result<PartFile> {
        loop {
            match PartFile::create(dir, url, repeat) {
                Err(e) if super::is_out_of_fds(&e) && !self.is_cancelled() => {
                    std::thread::sleep(super::FD_WAIT);
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
