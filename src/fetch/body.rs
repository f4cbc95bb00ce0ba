//! Streaming a response body: counted, hashed and saved as asked, never
//! held whole.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use ureq::http::{Response, StatusCode};

use crossbeam_channel::Receiver;

use super::classify::{FD_WAIT, cancelled_error, classify, is_cancelled, is_out_of_fds};
use super::config::RequestConfig;
use super::decode;
use crate::result::accept::Accept;
use crate::result::{ErrorKind, FetchError, Fetched};
use crate::store::StoreConfig;
use crate::store::resume::{self, Found, Part};
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
    /// Streams the body of `response` to its end (or to a failure),
    /// decoded when `--compressed` asked for it and the server encoded it.
    /// `resumed` is the part file this response (a `206` for the range
    /// Whether the user's own headers (`-H Range: ...`) ask for a part.
    fn asked_a_range(&self) -> bool {
        self.config
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("range"))
    }

    /// asked) continues: its bytes count, are hashed, and stay in front.
    #[inline(never)]
    pub(super) fn read_body(
        &self,
        name: Option<&str>,
        resumed: Option<&Found>,
        status: StatusCode,
        response: Response<ureq::Body>,
    ) -> Fetched {
        let mut fetched = Fetched::default();
        if status == StatusCode::PARTIAL_CONTENT && resumed.is_none() && !self.asked_a_range() {
            // Part of a body nobody asked a part of: saved or hashed, it
            // would pass for the whole.
            fetched.error = Some(FetchError::new(
                ErrorKind::Protocol,
                "206 Partial Content to a request that asked for no range",
            ));
            return fetched;
        }
        let max = self.config.max_size.unwrap_or(u64::MAX);
        let already = resumed.map_or(0, |f| f.offset);
        let has_body = has_body(&self.config.method, status);
        let codings = if self.config.compressed && has_body {
            decode::codings(response.headers())
        } else {
            Vec::new()
        };
        // The announced length is of the encoded body: it bounds the
        // decoded size only when nothing is decoded.
        if codings.is_empty()
            && let Some(len) = response.body().content_length()
            && len.saturating_add(already) > max
        {
            fetched.error = Some(too_large(max));
            return fetched;
        }
        let mut hasher = (self.store.sha256 && has_body).then(Sha256::new);
        let save = self
            .store
            .dir
            .as_deref()
            .zip(name)
            .filter(|_| has_body && self.accept.contains(status.as_u16()));
        let sink = match self.open_sink(save, &response, resumed, hasher.as_mut()) {
            Ok(sink) => sink,
            Err(e) => {
                fetched.error = Some(io_error("cannot create file", &e));
                return fetched;
            }
        };
        fetched.bytes = already;
        fetched.resumed_from = resumed.map(|f| f.offset);
        let sink = match self.decode_and_stream(
            response,
            &codings,
            &mut fetched,
            max,
            hasher.as_mut(),
            sink,
        ) {
            Ok(sink) => sink,
            Err(error) => {
                fetched.error = Some(error);
                return fetched;
            }
        };
        fetched.sha256 = hasher.map(|h| crate::store::save::hex(&h.finalize()));
        if let Some(sink) = sink {
            match sink.commit() {
                Ok(path) => fetched.saved_to = Some(path.display().to_string()),
                Err(e) => fetched.error = Some(io_error("cannot save file", &e)),
            }
        }
        fetched
    }

    /// Streams the body through the decoders of `codings` (none: as sent),
    /// counting the bytes received in `fetched.wire_bytes`.
    fn decode_and_stream(
        &self,
        response: Response<ureq::Body>,
        codings: &[String],
        fetched: &mut Fetched,
        max: u64,
        hasher: Option<&mut Sha256>,
        sink: Option<Sink>,
    ) -> Result<Option<Sink>, FetchError> {
        let wire = Cell::new(0);
        let failed = RefCell::new(None);
        let counted = decode::Counted {
            inner: response.into_body().into_reader(),
            count: &wire,
            failed: &failed,
        };
        let streamed = match decode::decoder(Box::new(counted), codings) {
            Ok(mut reader) => {
                let body = Body {
                    reader: &mut reader,
                    codings,
                    failed: &failed,
                };
                self.stream(body, fetched, max, hasher, sink)
            }
            Err(message) => Err(FetchError::new(ErrorKind::Protocol, message)),
        };
        fetched.wire_bytes = wire.get();
        streamed
    }

    /// Where a body to be saved (`save`: the folder and the name) is
    /// written, as [`BodyReader::create_sink`] says; nothing when it is not
    /// saved. A decoded body is never kept to be resumed (see `ranged`).
    fn open_sink(
        &self,
        save: Option<(&Path, &str)>,
        response: &Response<ureq::Body>,
        resumed: Option<&Found>,
        hasher: Option<&mut Sha256>,
    ) -> std::io::Result<Option<Sink>> {
        let Some((dir, name)) = save else {
            return Ok(None);
        };
        let if_range =
            resume::validator(header(response, "etag"), header(response, "last-modified"))
                .filter(|_| !self.config.compressed);
        self.create_sink(dir, name, if_range.as_deref(), resumed, hasher)
            .map(Some)
    }

    /// Reads the body to its end into `fetched.bytes`, the hasher and the
    /// sink; gives the sink back when the body is whole. A body cut short
    /// keeps a resumable part file ([`Fetched::kept_part`]); one over
    /// `--max-size` keeps nothing.
    fn stream(
        &self,
        body: Body<'_, '_>,
        fetched: &mut Fetched,
        max: u64,
        mut hasher: Option<&mut Sha256>,
        mut sink: Option<Sink>,
    ) -> Result<Option<Sink>, FetchError> {
        let Body {
            reader,
            codings,
            failed,
        } = body;
        let mut buf = [0u8; READ_BUF];
        // A body cut short keeps its part; one the server framed wrongly
        // does not (it is final, and its bytes are not to be trusted).
        let cut = |sink: Option<Sink>, fetched: &mut Fetched, error: FetchError| {
            match sink {
                Some(sink) if error.kind == ErrorKind::Protocol => sink.discard(),
                sink => fetched.kept_part = sink.is_some_and(Sink::keep),
            }
            Err(error)
        };
        loop {
            // Never read more than one byte past --max-size.
            let room = usize::try_from(max.saturating_add(1) - fetched.bytes).unwrap_or(usize::MAX);
            let n = match reader.read(&mut buf[..room.min(READ_BUF)]) {
                Ok(0) => return Ok(sink),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let err = self.read_error(e, codings, failed, fetched.bytes);
                    return cut(sink, fetched, err);
                }
            };
            fetched.bytes += n as u64;
            if fetched.bytes > max {
                if let Some(sink) = sink {
                    sink.discard();
                }
                return Err(too_large(max));
            }
            let chunk = &buf[..n];
            if let Some(h) = &mut hasher {
                h.update(chunk);
            }
            if let Some(p) = &mut sink
                && let Err(e) = p.write(chunk)
            {
                return cut(sink, fetched, io_error("cannot write file", &e));
            }
            if is_cancelled(self.cancel) {
                return cut(sink, fetched, cancelled_error());
            }
        }
    }

    /// The error for a failed read of `body` after `bytes`: the connection's
    /// own (kept apart by [`decode::Counted`]) in our kinds, else, while
    /// codings are undone, a body that does not decode (`protocol`).
    fn read_error(
        &self,
        e: std::io::Error,
        codings: &[String],
        failed: &RefCell<Option<std::io::Error>>,
        bytes: u64,
    ) -> FetchError {
        let inner = failed.borrow_mut().take();
        if inner.is_none() && !codings.is_empty() {
            return FetchError::new(
                ErrorKind::Protocol,
                format!(
                    "the {} body does not decode after {bytes} bytes: {e}",
                    codings.join(", ")
                ),
            );
        }
        let mut err = classify(&ureq::Error::from(inner.unwrap_or(e)), self.config);
        if err.kind == ErrorKind::Io {
            err.message = format!("{} after {bytes} bytes of body", err.message);
        }
        err
    }

    /// Where a body to be saved as `name` is written: the part file it
    /// continues (`resumed`, whose bytes go to `hasher` first); a new part
    /// file when the response names what it is (`if_range`), so a cut can
    /// be resumed; else a temporary file.
    fn create_sink(
        &self,
        dir: &Path,
        name: &str,
        if_range: Option<&str>,
        resumed: Option<&Found>,
        hasher: Option<&mut Sha256>,
    ) -> std::io::Result<Sink> {
        let mut hasher = hasher;
        let prefix = |bytes: &[u8]| {
            if let Some(h) = &mut hasher {
                h.update(bytes);
            }
        };
        if let Some(found) = resumed {
            return match Part::open(
                dir,
                name,
                &found.if_range,
                found.offset,
                prefix,
                self.unfinished,
            )? {
                Some(part) => Ok(Sink::Part(part)),
                None => Err(std::io::Error::other(
                    "its part file is being written by another process",
                )),
            };
        }
        if let Some(if_range) = if_range
            && let Some(part) = Part::open(dir, name, if_range, 0, prefix, self.unfinished)?
        {
            return Ok(Sink::Part(part));
        }
        self.create_part(dir, name)
            .map(|p| Sink::Temp(p, dir.to_owned(), name.to_owned()))
    }

    /// Creates the temporary file for a body. Out of file descriptors (other
    /// programs, or a limit lowered under us), it waits for one to be freed:
    /// our own shortage is never a URL's result.
    fn create_part(&self, dir: &Path, name: &str) -> std::io::Result<PartFile> {
        loop {
            match PartFile::create(dir, name, self.unfinished) {
                Err(e) if is_out_of_fds(&e) && !is_cancelled(self.cancel) => {
                    std::thread::sleep(FD_WAIT);
                }
                other => return other,
            }
        }
    }
}

/// A body being read: decoded when `codings` are undone, with the
/// connection's own error kept apart in `failed`.
struct Body<'r, 'a> {
    reader: &'r mut (dyn Read + 'a),
    codings: &'r [String],
    failed: &'r RefCell<Option<std::io::Error>>,
}

/// Where a body being saved is written.
enum Sink {
    /// A temporary file, removed unless whole; the part file an earlier
    /// run may have left for the same name is removed once it is.
    Temp(PartFile, std::path::PathBuf, String),
    /// A resumable part file.
    Part(Part),
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Temp(p, ..) => p.write(bytes),
            Sink::Part(p) => p.write(bytes),
        }
    }

    fn commit(self) -> std::io::Result<std::path::PathBuf> {
        match self {
            Sink::Temp(p, dir, name) => {
                let path = p.commit()?;
                resume::forget(&dir, &name);
                Ok(path)
            }
            Sink::Part(p) => p.commit(),
        }
    }

    /// Stops at a cut; whether a part file was kept.
    fn keep(self) -> bool {
        match self {
            Sink::Temp(..) => false,
            Sink::Part(p) => {
                p.keep();
                true
            }
        }
    }

    fn discard(self) {
        if let Sink::Part(p) = self {
            p.discard();
        }
    }
}

/// The value of the response header `name`, when it is text.
fn header<'a>(response: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether a response with `status` to a `method` request has a body: a
/// HEAD, 1xx, 204 or 304 response has none, so there is nothing to hash or
/// save, and an empty file must never replace a download.
fn has_body(method: &ureq::http::Method, status: StatusCode) -> bool {
    *method != ureq::http::Method::HEAD
        && !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
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
