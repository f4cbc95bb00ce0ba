//! When an attempt is worth repeating, and how long to wait first.

use std::time::{Duration, SystemTime};

use ureq::http::HeaderMap;

/// Statuses worth another attempt (`docs/contract.md`, "Requests").
pub const RETRY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];
/// First backoff delay; it doubles per attempt, with jitter.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest backoff delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// `200 ms * 2^(attempt-1)`, capped at 10 s, with full jitter on the upper half.
pub fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_START
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    base / 2 + base.mul_f64(fastrand::f64() / 2.0)
}

/// Retry-After in seconds or as an HTTP date. A number of seconds too
/// large to hold is longer than any wait: [`Duration::MAX`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().ok();
        return Some(secs.map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let base = BACKOFF_START
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_MAX);
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30) <= BACKOFF_MAX);
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", " 3 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            "Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "99999999999999999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::MAX));
        h.insert("retry-after", "-1".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
