//! What framing needs of a response head, parsed as ureq parses it, and
//! the rewrites of a head that ureq would otherwise misread or refuse.

use super::{MAX_HEADERS, pass};

/// The transfer codings of a response head.
#[derive(Debug, Clone, Copy)]
pub(super) struct Te {
    /// How many codings in all.
    pub(super) codings: usize,
    /// How many of them are `chunked`.
    pub(super) chunked: usize,
    /// The last one is `chunked`.
    pub(super) last_chunked: bool,
}

/// What framing needs of a response head.
pub(super) struct HeadInfo {
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) http10: bool,
    pub(super) te: Option<Te>,
    /// The `Content-Length`, if any; an error when its values disagree or
    /// are not numbers.
    pub(super) content_length: Result<Option<u64>, &'static str>,
}

pub(super) enum Parsed {
    Partial,
    Invalid,
    Complete(HeadInfo),
}

/// Parses a response head as ureq does (httparse, the same header limit).
/// The header array (4 KiB) is on the heap: this runs under ureq's deepest
/// frames, and every page of stack a worker touches stays resident.
pub(super) fn parse_head(input: &[u8]) -> Parsed {
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    let (Some(status), Some(version)) = (res.code, res.version) else {
        return Parsed::Invalid;
    };
    let mut te: Option<Te> = None;
    let mut content_length = Ok(None);
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let t = te.get_or_insert(Te {
                codings: 0,
                chunked: 0,
                last_chunked: false,
            });
            for coding in h.value.split(|&b| b == b',') {
                let name = coding.split(|&b| b == b';').next().unwrap_or(b"");
                let name = name.trim_ascii();
                if name.is_empty() {
                    continue;
                }
                let chunked = name.eq_ignore_ascii_case(b"chunked");
                t.codings += 1;
                t.chunked += usize::from(chunked);
                t.last_chunked = chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            content_length = content_length.and_then(|prev| merge_length(prev, h.value));
        }
    }
    Parsed::Complete(HeadInfo {
        len,
        status,
        http10: version == 0,
        te,
        content_length,
    })
}

/// `prev` and the values of one `Content-Length` line, which must all be
/// the same number.
pub(super) fn merge_length(
    mut prev: Option<u64>,
    value: &[u8],
) -> Result<Option<u64>, &'static str> {
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        let n = std::str::from_utf8(digits)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("a Content-Length that is not a number")?;
        if prev.is_some_and(|p| p != n) {
            return Err("Content-Length values that disagree");
        }
        prev = Some(n);
    }
    Ok(prev)
}

/// Replaces each obs-fold (a line break followed by a space or tab) in the
/// header section at the start of `head` with spaces, as RFC 9112 section
/// 5.2 asks of a user agent; httparse refuses folded lines. Only the
/// complete lines present are looked at, and the bytes keep their length,
/// so it may run again on the same head as more of it arrives. A space
/// after the status line is not a fold (section 2.2): it is left for the
/// parser to refuse.
pub(super) fn unfold(head: &mut [u8]) {
    let Some(first) = head.iter().position(|&b| b == b'\n') else {
        return;
    };
    let mut at = first + 1;
    while let Some(lf) = head[at..].iter().position(|&b| b == b'\n').map(|i| at + i) {
        let line_start = at;
        at = lf + 1;
        let empty = lf == line_start || (lf == line_start + 1 && head[line_start] == b'\r');
        if empty {
            return;
        }
        if matches!(head.get(at), Some(b' ' | b'\t')) {
            head[lf] = b' ';
            if lf > line_start && head[lf - 1] == b'\r' {
                head[lf - 1] = b' ';
            }
        }
    }
}

/// Copies the status line of the head at `r` (`n` bytes) to `w`, ended
/// by an empty line, without its header fields; returns the bytes written.
pub(super) fn status_line_only(buf: &mut [u8], r: usize, n: usize, w: usize) -> usize {
    let line = buf[r..r + n]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(n, |i| i + 1);
    if line + 2 >= n {
        return pass(buf, r, w, n);
    }
    let written = pass(buf, r, w, line);
    buf[w + written..w + written + 2].copy_from_slice(b"\r\n");
    written + 2
}

/// Copies the head at `r` (`n` bytes) to `w` without its
/// `Transfer-Encoding` and `Content-Length` lines; returns the bytes
/// written.
pub(super) fn strip_framing_headers(buf: &mut [u8], r: usize, n: usize, w: usize) -> usize {
    let (mut at, mut out) = (r, w);
    let end = r + n;
    while at < end {
        let line_end = buf[at..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| at + i + 1);
        let line = &buf[at..line_end];
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        let framing = line.contains(&b':')
            && (name.eq_ignore_ascii_case(b"transfer-encoding")
                || name.eq_ignore_ascii_case(b"content-length"));
        if !framing {
            out += pass(buf, at, out, line_end - at);
        }
        at = line_end;
    }
    out - w
}
