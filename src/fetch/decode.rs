//! `--compressed`: what we ask for, and decoding what comes back.
//!
//! The decoders are pure Rust, so the build needs no C toolchain and CI
//! compiles no C library: `flate2` on miniz_oxide (gzip, deflate),
//! `brotli-decompressor` (br) and `ruzstd` (zstd). A body is decoded as it
//! streams, so `--max-size` bounds the decoded bytes: a small body that
//! inflates to gigabytes (a decompression bomb) stops at the limit, having
//! read at most one byte past it.
//!
//! The bytes that came over the wire (after chunked framing, before
//! decoding) are counted by [`Counted`] and reported as `wire_bytes`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};

use ureq::http::HeaderMap;

/// `Accept-Encoding` with `--compressed`, in curl's order.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// The largest zstd window accepted (RFC 8878 asks HTTP decoders for at
/// least 8 MiB); a frame that wants more is refused rather than allocated.
const ZSTD_WINDOW_MAX: u64 = 8 << 20;

/// Reads through to the inner reader, counting bytes and keeping the inner
/// reader's own error apart from a decoder's.
pub struct Counted<'a, R> {
    /// The body as it came over the wire.
    pub inner: R,
    /// Bytes read from it so far.
    pub count: &'a Cell<u64>,
    /// The inner reader's error, if it failed (the decoder sees a stand-in).
    pub failed: &'a RefCell<Option<io::Error>>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count.set(self.count.get() + n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                *self.failed.borrow_mut() = Some(e);
                Err(io::Error::new(kind, "the connection failed"))
            }
        }
    }
}

/// The content codings of a response, in the order they were applied;
/// `identity` is left out.
pub fn codings(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("content-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect()
}

/// `body` decoded from `codings` (undone last first); an error names the
/// coding fetchpool cannot decode, or a zstd frame it refuses.
pub fn decoder<'a>(
    mut body: Box<dyn Read + 'a>,
    codings: &[String],
) -> Result<Box<dyn Read + 'a>, String> {
    for coding in codings.iter().rev() {
        body = match coding.as_str() {
            "gzip" | "x-gzip" => gzip(body),
            "deflate" => deflate(body),
            "br" => brotli(body),
            "zstd" => Box::new(Zstd::new(body)),
            other => {
                return Err(format!(
                    "Content-Encoding {:?} cannot be decoded (gzip, deflate, br and zstd can)",
                    crate::text::escape::for_field(other)
                ));
            }
        };
    }
    Ok(body)
}

// Each decoder is made in a function of its own, out of line: `Box::new`
// builds its value on the stack first, and a decoder's state is large
// (brotli's tens of KiB). In the caller's frame, that space would be
// reserved, and its pages touched by the stack probe, on every body read by
// every worker, decoded or not: 80 KiB of touched stack per worker instead
// of 32.

#[inline(never)]
fn gzip<'a>(body: Box<dyn Read + 'a>) -> Box<dyn Read + 'a> {
    Box::new(flate2::read::MultiGzDecoder::new(body))
}

#[inline(never)]
fn deflate<'a>(body: Box<dyn Read + 'a>) -> Box<dyn Read + 'a> {
    Box::new(flate2::read::ZlibDecoder::new(body))
}

#[inline(never)]
fn brotli<'a>(body: Box<dyn Read + 'a>) -> Box<dyn Read + 'a> {
    Box::new(brotli_decompressor::Decompressor::new(body, 4096))
}

/// A zstd stream, whose frame header is read at the first read (ruzstd
/// reads it when the decoder is made).
enum Zstd<'a> {
    Pending(Option<Box<dyn Read + 'a>>),
    Ready(
        Box<ruzstd::decoding::StreamingDecoder<Box<dyn Read + 'a>, ruzstd::decoding::FrameDecoder>>,
    ),
}

impl<'a> Zstd<'a> {
    fn new(body: Box<dyn Read + 'a>) -> Self {
        Zstd::Pending(Some(body))
    }
}

impl Read for Zstd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Zstd::Pending(body) = self {
            let Some(body) = body.take() else {
                return Err(io::Error::other("zstd stream unusable after an error"));
            };
            let decoder =
                ruzstd::decoding::StreamingDecoder::new_with_max_window_size(body, ZSTD_WINDOW_MAX)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            *self = Zstd::Ready(Box::new(decoder));
        }
        match self {
            Zstd::Ready(d) => d.read(buf),
            Zstd::Pending(_) => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"hello, compressed world\nhello, compressed world\n";

    fn decode(codings: &[&str], wire: &[u8]) -> Result<Vec<u8>, String> {
        let codings: Vec<String> = codings.iter().map(|c| (*c).to_owned()).collect();
        let mut reader = decoder(Box::new(wire), &codings)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// A brotli stream of one uncompressed meta-block (RFC 7932, 9.2).
    pub fn brotli_stored(data: &[u8]) -> Vec<u8> {
        let m = data.len() - 1;
        let mut out = vec![
            ((m & 0xf) << 4) as u8,
            ((m >> 4) & 0xff) as u8,
            0x10 | ((m >> 12) & 0xf) as u8,
        ];
        out.extend_from_slice(data);
        out.push(0x03);
        out
    }

    #[test]
    fn each_coding_decodes() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(TEXT).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(&["gzip"], &gz).unwrap(), TEXT);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(TEXT).unwrap();
        assert_eq!(decode(&["deflate"], &z.finish().unwrap()).unwrap(), TEXT);
        assert_eq!(decode(&["br"], &brotli_stored(TEXT)).unwrap(), TEXT);
        let zst =
            ruzstd::encoding::compress_to_vec(TEXT, ruzstd::encoding::CompressionLevel::Fastest);
        assert_eq!(decode(&["zstd"], &zst).unwrap(), TEXT);
        // Applied gzip then br: undone br first.
        assert_eq!(decode(&["gzip", "br"], &brotli_stored(&gz)).unwrap(), TEXT);
        assert!(decode(&["gzip"], b"not gzip").is_err());
        assert!(decode(&["zstd"], b"not zstd").is_err());
        let e = decode(&["compress"], b"").unwrap_err();
        assert!(e.contains("\"compress\" cannot be decoded"), "{e}");
    }

    #[test]
    fn codings_are_listed_in_order_without_identity() {
        let mut h = HeaderMap::new();
        h.append("content-encoding", "GZIP, identity".parse().unwrap());
        h.append("content-encoding", "br".parse().unwrap());
        assert_eq!(codings(&h), ["gzip", "br"]);
    }
}
