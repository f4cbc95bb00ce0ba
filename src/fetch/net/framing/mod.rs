//! Response framing checked as the bytes arrive (RFC 9112 sections 6 and
//! 7), in front of ureq's own parser.
//!
//! ureq-proto frames bodies itself, with gaps that would make a result lie
//! or wait for nothing: it refuses a chunk-size line longer than 20 bytes
//! (valid chunk extensions included), waits until the deadline on a chunk
//! line ended by a bare LF, dechunks `Transfer-Encoding: chunked, gzip`
//! instead of reading it to the close, and frames an HTTP/1.0 response by
//! its length although it names a transfer coding. Every byte of a response
//! passes through [`Framing`] (in the connection's buffers) before ureq
//! sees it, which:
//!
//! - refuses at once what cannot be framed ([`Fault::protocol`]): a chunk
//!   line that is not a hexadecimal size ended by CRLF, chunk data not
//!   followed by CRLF, `Transfer-Encoding` in an HTTP/1.0 response,
//!   `chunked` applied twice, disagreeing `Content-Length` values, a `101`
//!   nobody asked for;
//! - rewrites in place what ureq would misread: a chunk-size line becomes
//!   its size alone (extensions carry nothing we use), a head whose last
//!   transfer coding is not `chunked` loses its `Transfer-Encoding` and
//!   `Content-Length` lines, so that ureq reads the body to the close, a
//!   folded header line is unfolded (httparse refuses obs-fold), and a
//!   `100 Continue` loses its fields (ureq refuses any);
//! - reports a connection that closes anywhere in a chunked body, trailer
//!   section included, as cut ([`Framing::at_close`]);
//! - passes everything else through byte for byte.
//!
//! A rewrite only ever shortens, so it is done in place. An incomplete head
//! or line stays at the end of the input until the rest arrives; ureq never
//! consumes part of one (it waits for the whole head, and for a CRLF before
//! it reads a chunk line).
//!
//! The framing of a response depends on its request (a `HEAD` has no body, a
//! `CONNECT` answered 2xx becomes a tunnel), so the connection tells it the
//! first bytes of each request ([`Framing::sent`]).

mod chunk;
mod head;

use std::borrow::Cow;
use std::fmt;
use std::io;

use super::buffers::MAX_HEAD;
use super::exchange::record_proxy_refused;
use crate::result::trace::{self, Kind};
use chunk::{chunk_size, crlf_line, write_size};
use head::{HeadInfo, Parsed, Te, parse_head, status_line_only, strip_framing_headers, unfold};

/// Longest chunk-size or trailer line accepted: the head limit.
const LINE_MAX: usize = MAX_HEAD;
/// Header lines httparse is given room for: ureq-proto's own limit, so that
/// both see the same heads.
const MAX_HEADERS: usize = 128;

/// A response that cannot be framed, or a connection that ended where it
/// must not. Handed to ureq as an I/O error of a kind it does not take for
/// the server closing the connection (it ends a close-delimited body as if
/// whole on an early end of stream, a reset or an abort).
#[derive(Debug)]
pub struct Fault {
    /// Which kind of failure.
    pub cut: bool,
    message: Cow<'static, str>,
}

impl Fault {
    /// The response cannot be framed.
    pub fn protocol(message: impl Into<Cow<'static, str>>) -> Fault {
        Fault {
            cut: false,
            message: message.into(),
        }
    }

    /// The connection ended before the response did, or without the proof
    /// that it was whole.
    pub fn cut(message: &'static str) -> Fault {
        Fault {
            cut: true,
            message: Cow::Borrowed(message),
        }
    }

    /// The error for ureq.
    pub fn into_ureq(self) -> ureq::Error {
        ureq::Error::Io(io::Error::other(self))
    }

    /// The fault `e` carries, if it carries one.
    pub fn of(e: &io::Error) -> Option<&Fault> {
        e.get_ref()?.downcast_ref::<Fault>()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fault {}

/// Where the connection's input stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A response head (or the next one, after a 1xx).
    Head,
    /// A body of this many more bytes.
    Length(u64),
    /// A chunked body.
    Chunked(Chunk),
    /// A body that ends when the connection closes.
    ToClose,
    /// A tunnel made by `CONNECT`, before its first request: TLS or HTTP.
    Tunnel,
    /// Bytes not framed here: TLS through a tunnel, or a response ureq
    /// rejects itself.
    Opaque,
}

/// Where a chunked body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// A chunk-size line.
    Size,
    /// Chunk data, this many more bytes.
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd,
    /// Trailer lines, up to an empty one.
    Trailer,
}

/// What matters of the request a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Connect,
    Other,
}

/// The framing state of one connection's input.
#[derive(Debug)]
pub struct Framing {
    phase: Phase,
    /// The next bytes sent start a request.
    request_next: bool,
    method: Method,
    /// Bytes at the end of the input not framed yet: an incomplete head or
    /// line.
    pending: usize,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            phase: Phase::Head,
            request_next: true,
            method: Method::Other,
            pending: 0,
        }
    }
}

impl Framing {
    /// Bytes at the end of the input that wait for the rest of their head
    /// or line.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Notes bytes going out: the first ones of a request tell its method.
    pub fn sent(&mut self, out: &[u8]) {
        if !self.request_next || out.is_empty() {
            return;
        }
        self.request_next = false;
        if self.phase == Phase::Tunnel {
            // 0x16: a TLS handshake record; no request line starts so.
            if out[0] == 0x16 {
                self.phase = Phase::Opaque;
                return;
            }
            self.phase = Phase::Head;
        }
        self.method = if out.starts_with(b"HEAD ") {
            Method::Head
        } else if out.starts_with(b"CONNECT ") {
            Method::Connect
        } else {
            Method::Other
        };
    }

    /// The fault of a connection that ended now (the server closed it):
    /// anywhere in a chunked body, up to the empty line that ends its
    /// trailer section, the body is cut short (ureq would wait for the rest
    /// of a line that cannot come, or take the trailer fields it has for
    /// the whole section).
    pub fn at_close(&self) -> Option<Fault> {
        match self.phase {
            Phase::Chunked(_) if self.pending > 0 => Some(Fault::cut(
                "connection closed in the middle of a chunk line",
            )),
            Phase::Chunked(_) => Some(Fault::cut(
                "connection closed before the end of the chunked body",
            )),
            _ => None,
        }
    }

    /// Frames `buf`: the pending bytes followed by those just received.
    /// Returns how many bytes are left in place for ureq (framed ones, then
    /// the new pending ones).
    pub fn frame(&mut self, buf: &mut [u8]) -> Result<usize, Fault> {
        let len = buf.len();
        let (mut r, mut w) = (0, 0);
        while r < len {
            let step = match self.phase {
                Phase::Head => self.head(buf, r, w)?,
                Phase::Length(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(len - r);
                    self.phase = Phase::Length(left - take as u64);
                    if take as u64 == left {
                        self.message_end();
                    }
                    Some((take, pass(buf, r, w, take)))
                }
                Phase::ToClose | Phase::Tunnel | Phase::Opaque => {
                    Some((len - r, pass(buf, r, w, len - r)))
                }
                Phase::Chunked(chunk) => self.chunked(chunk, buf, r, w)?,
            };
            let Some((read, written)) = step else { break };
            r += read;
            w += written;
        }
        let rest = len - r;
        if rest > LINE_MAX && matches!(self.phase, Phase::Chunked(_)) {
            return Err(Fault::protocol(format!(
                "a chunk line longer than {} KiB",
                LINE_MAX / 1024
            )));
        }
        buf.copy_within(r..len, w);
        self.pending = rest;
        Ok(w + rest)
    }

    /// The end of a response: a request comes next.
    fn message_end(&mut self) {
        self.phase = Phase::Head;
        self.request_next = true;
        self.method = Method::Other;
    }

    /// Frames a response head at `r`, if it is complete: the bytes read
    /// and written, or `None` to wait for more.
    fn head(
        &mut self,
        buf: &mut [u8],
        r: usize,
        w: usize,
    ) -> Result<Option<(usize, usize)>, Fault> {
        unfold(&mut buf[r..]);
        let info = match parse_head(&buf[r..]) {
            Parsed::Partial => return Ok(None),
            // ureq parses the same bytes and says what is wrong.
            Parsed::Invalid => {
                self.phase = Phase::Opaque;
                return Ok(Some((0, 0)));
            }
            Parsed::Complete(info) => info,
        };
        let n = info.len;
        let written = if self.on_head(&info)? {
            // `-v` shows the head ureq parses, which no longer says so.
            trace::emit(Kind::Info, || {
                "the last transfer coding is not chunked: the body is read to the close, \
                 as sent (Transfer-Encoding and Content-Length set aside)"
                    .to_owned()
            });
            strip_framing_headers(buf, r, n, w)
        } else if info.status == 100 {
            // ureq refuses a 100 with fields, which RFC 9110 allows; they
            // carry nothing for us.
            status_line_only(buf, r, n, w)
        } else {
            pass(buf, r, w, n)
        };
        Ok(Some((n, written)))
    }

    /// Sets the phase a response head leads to; true when the head must
    /// lose its framing headers (it is read to the close).
    fn on_head(&mut self, info: &HeadInfo) -> Result<bool, Fault> {
        let status = info.status;
        if status == 101 {
            return Err(Fault::protocol(
                "the server switched protocols (101 Switching Protocols) though none was asked for",
            ));
        }
        if (100..200).contains(&status) {
            // Informational: the answer follows.
            return Ok(false);
        }
        if self.method == Method::Connect {
            if (200..300).contains(&status) {
                self.message_end();
                self.phase = Phase::Tunnel;
            } else {
                record_proxy_refused(status);
                self.phase = Phase::Opaque;
            }
            return Ok(false);
        }
        if info.http10 && info.te.is_some() {
            return Err(Fault::protocol(
                "an HTTP/1.0 response with Transfer-Encoding (its framing cannot be trusted)",
            ));
        }
        let length = info.content_length.map_err(Fault::protocol)?;
        if self.method == Method::Head || status == 204 || status == 304 {
            self.message_end();
            return Ok(false);
        }
        match info.te {
            Some(Te { codings: 0, .. }) => Err(Fault::protocol(
                "a Transfer-Encoding header that names no coding",
            )),
            Some(Te {
                last_chunked: true,
                chunked: 1,
                ..
            }) => {
                self.phase = Phase::Chunked(Chunk::Size);
                Ok(false)
            }
            Some(Te {
                last_chunked: true, ..
            }) => Err(Fault::protocol(
                "a Transfer-Encoding that applies chunked more than once",
            )),
            // The last coding is not chunked: the body ends at the close
            // (RFC 9112 section 6.3).
            Some(_) => {
                self.phase = Phase::ToClose;
                Ok(true)
            }
            None => {
                match length {
                    Some(0) => self.message_end(),
                    Some(n) => self.phase = Phase::Length(n),
                    None => self.phase = Phase::ToClose,
                }
                Ok(false)
            }
        }
    }

    /// Frames the chunked body at `r`: the bytes read and written, or
    /// `None` to wait for more.
    fn chunked(
        &mut self,
        chunk: Chunk,
        buf: &mut [u8],
        r: usize,
        w: usize,
    ) -> Result<Option<(usize, usize)>, Fault> {
        let avail = buf.len() - r;
        match chunk {
            Chunk::Data(left) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(avail);
                self.phase = Phase::Chunked(if take as u64 == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - take as u64)
                });
                Ok(Some((take, pass(buf, r, w, take))))
            }
            Chunk::DataEnd => {
                if buf[r] != b'\r' || (avail >= 2 && buf[r + 1] != b'\n') {
                    return Err(Fault::protocol(
                        "chunk data not followed by CRLF (longer than its size, or a bare LF)",
                    ));
                }
                if avail < 2 {
                    return Ok(None);
                }
                self.phase = Phase::Chunked(Chunk::Size);
                Ok(Some((2, pass(buf, r, w, 2))))
            }
            Chunk::Size => {
                let Some(line) = crlf_line(&buf[r..])? else {
                    return Ok(None);
                };
                let size = chunk_size(&buf[r..r + line])?;
                self.phase = Phase::Chunked(if size == 0 {
                    Chunk::Trailer
                } else {
                    Chunk::Data(size)
                });
                // The size alone, in no more bytes than the line had.
                Ok(Some((line + 2, write_size(&mut buf[w..], size))))
            }
            Chunk::Trailer => {
                let Some(line) = crlf_line(&buf[r..])? else {
                    return Ok(None);
                };
                if line == 0 {
                    self.message_end();
                }
                // Trailer fields pass as they are; ureq skips them.
                Ok(Some((line + 2, pass(buf, r, w, line + 2))))
            }
        }
    }
}

/// Moves `n` bytes from `r` to `w` (never after `r`); returns `n`.
pub(super) fn pass(buf: &mut [u8], r: usize, w: usize, n: usize) -> usize {
    if r != w {
        buf.copy_within(r..r + n, w);
    }
    n
}

#[cfg(test)]
mod tests;
