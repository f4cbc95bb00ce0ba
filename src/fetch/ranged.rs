//! Resuming a cut download in one attempt: the part file the store kept
//! for the entry's name ([`crate::store::resume`]) becomes `Range:
//! bytes=N-` with `If-Range`, and the answer decides what happens to it.
//!
//! - a `206` that is the rest of the file continues the part: its
//!   `Content-Range` runs from N to the last byte of the length it gives,
//!   its `Content-Length` is that span (so a body cut short is seen as
//!   cut), and its `ETag`, if it has one, is the one `If-Range` named;
//! - a `200` (the server ignored the range, or the file changed, which
//!   `If-Range` turns into a full answer) starts the file over;
//! - a `416`, or a `206` for any other range, cannot continue the part: it
//!   is removed and the whole body asked for at once, in the same attempt.

use std::path::Path;

use ureq::http::{Method, Response};

use super::config::RequestConfig;
use super::redirect::{Failed, Landed};
use crate::result::accept::Accept;
use crate::store::StoreConfig;
use crate::store::resume::{self, Found};

/// What an answer to a ranged request means for the part file.
pub(super) enum Answered {
    /// It continues the part.
    Continues,
    /// It is a whole answer of its own (a `200`, a `404`, ...).
    Whole,
    /// It cannot continue the part: forget it and ask for the whole body.
    Refused,
}

/// The part file to resume for the entry saved as `name`, when `allowed`
/// (`--continue`, or a retry in this run): only for GET, only when a `206`
/// is an accepted status, not when the user sends a `Range` of their own,
/// and not with `--compressed` (a range of an encoded body cannot be
/// decoded on its own, and the part holds decoded bytes).
pub(super) fn resumable(
    config: &RequestConfig,
    store: &StoreConfig,
    accept: &Accept,
    name: Option<&str>,
    allowed: bool,
) -> Option<Found> {
    let dir = store.dir.as_deref()?;
    let own_range = config
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("range") || n.eq_ignore_ascii_case("if-range"));
    if !allowed
        || config.method != Method::GET
        || !accept.contains(206)
        || own_range
        || config.compressed
    {
        return None;
    }
    resume::find(dir, name?)
}

/// Sends the request with `send`, asking only for the rest of `resume`
/// when given; a server that cannot continue it is asked for the whole
/// body at once, after `forget` removed the part. Also the part the answer
/// continues, if it does.
pub(super) fn send(
    send: impl Fn(&[(String, String)]) -> Result<Landed, Failed>,
    extra: &[(String, String)],
    resume: Option<Found>,
    forget: impl FnOnce(),
) -> (Result<Landed, Failed>, Option<Found>) {
    let Some(found) = resume else {
        return (send(extra), None);
    };
    let mut ranged = extra.to_vec();
    ranged.extend(headers(&found));
    let sent = send(&ranged);
    match sent.as_ref().map(|landed| answered(landed, &found)) {
        Ok(Answered::Continues) => (sent, Some(found)),
        Ok(Answered::Refused) => {
            if let Ok(landed) = sent {
                super::body::drain(landed.response);
            }
            forget();
            (send(extra), None)
        }
        _ => (sent, None),
    }
}

/// The headers that ask for the rest of `found`.
pub(super) fn headers(found: &Found) -> [(String, String); 2] {
    [
        ("Range".to_owned(), format!("bytes={}-", found.offset)),
        ("If-Range".to_owned(), found.if_range.clone()),
    ]
}

/// What `landed` says about the rest of `found` asked for.
pub(super) fn answered(landed: &Landed, found: &Found) -> Answered {
    let response: &Response<ureq::Body> = &landed.response;
    match response.status().as_u16() {
        206 if is_the_rest(response, found) => Answered::Continues,
        206 | 416 => Answered::Refused,
        _ => Answered::Whole,
    }
}

/// Whether a `206` holds exactly the bytes from `found.offset` to the end
/// of the file `found` is part of. Anything less would leave a file short
/// of its length under its final name; another `ETag` is another file.
fn is_the_rest(response: &Response<ureq::Body>, found: &Found) -> bool {
    let headers = response.headers();
    let Some((first, last, length)) = headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(content_range)
    else {
        return false;
    };
    let sent_length = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let same_tag = match headers.get("etag").and_then(|v| v.to_str().ok()) {
        Some(tag) if found.if_range.starts_with('"') => tag.trim() == found.if_range,
        _ => true,
    };
    first == found.offset
        && last.checked_add(1) == Some(length)
        && sent_length == Some(length - first)
        && same_tag
}

/// `Content-Range: bytes FIRST-LAST/LENGTH` as numbers, when
/// `FIRST <= LAST < LENGTH`.
fn content_range(value: &str) -> Option<(u64, u64, u64)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, length) = range.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, length) = (
        first.trim().parse::<u64>().ok()?,
        last.trim().parse::<u64>().ok()?,
        length.trim().parse::<u64>().ok()?,
    );
    (first <= last && last < length).then_some((first, last, length))
}

/// Removes the part file of `name` under the output folder, if any.
pub(super) fn forget(store: &StoreConfig, name: Option<&str>) {
    if let (Some(dir), Some(name)) = (store.dir.as_deref(), name) {
        resume::forget(Path::new(dir), name);
    }
}
