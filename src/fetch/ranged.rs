//! Resuming a cut download in one attempt: the part file the store kept
//! for the entry's name ([`crate::store::resume`]) becomes `Range:
//! bytes=N-` with `If-Range`, and the answer decides what happens to it.
//!
//! - a `206` whose `Content-Range` starts at N continues the part;
//! - a `200` (the server ignored the range, or the file changed, which
//!   `If-Range` turns into a full answer) starts the file over;
//! - a `416`, or a `206` for any other range, cannot continue the part: it
//!   is removed and the whole body asked for at once, in the same attempt.

use std::path::Path;

use ureq::http::{Method, Response};

use super::RequestConfig;
use super::redirect::Landed;
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
    name: Option<&str>,
    allowed: bool,
) -> Option<Found> {
    let dir = config.output_dir.as_deref()?;
    let own_range = config
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("range") || n.eq_ignore_ascii_case("if-range"));
    if !allowed
        || config.method != Method::GET
        || !config.accept.contains(206)
        || own_range
        || config.compressed
    {
        return None;
    }
    resume::find(dir, name?)
}

/// The headers that ask for the rest of `found`.
pub(super) fn headers(found: &Found) -> [(String, String); 2] {
    [
        ("Range".to_owned(), format!("bytes={}-", found.offset)),
        ("If-Range".to_owned(), found.if_range.clone()),
    ]
}

/// What `landed` says about the range asked from `offset`.
pub(super) fn answered(landed: &Landed, offset: u64) -> Answered {
    let response: &Response<ureq::Body> = &landed.response;
    match response.status().as_u16() {
        206 if content_range_start(response) == Some(offset) => Answered::Continues,
        206 | 416 => Answered::Refused,
        _ => Answered::Whole,
    }
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/LENGTH` header.
fn content_range_start(response: &Response<ureq::Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, _length) = range.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last) = (
        first.trim().parse::<u64>().ok()?,
        last.trim().parse::<u64>().ok()?,
    );
    (first <= last).then_some(first)
}

/// Removes the part file of `name` under the output folder, if any.
pub(super) fn forget(config: &RequestConfig, name: Option<&str>) {
    if let (Some(dir), Some(name)) = (config.output_dir.as_deref(), name) {
        resume::forget(Path::new(dir), name);
    }
}
