//! The default text line: aligned columns for people.

use std::fmt::Write as _;

use indicatif::HumanBytes;

use super::Record;
use crate::text::escape;

/// Hex digits of the SHA-256 shown in a text line (as `git` shortens
/// hashes); `--json` and `{sha256}` give the whole hash.
pub const SHORT_HASH: usize = 12;

/// `STATUS  SIZE  TIME  [HASH]  URL[  -> final_url | kind: message][  (N
/// tries)][  saved to PATH | no body]`.
///
/// The first columns have fixed widths so URLs line up: the hash column
/// (with `--sha256`) is [`SHORT_HASH`] wide, `-` where there is no hash. What
/// follows the URL is there only when it says something: the attempts when
/// there were retries, and with `-o` where the body went. Every value from
/// input or a server is escaped for the terminal.
pub fn text_line(r: &Record<'_>, color: bool, out: &mut String) {
    let status = r.status.map_or_else(|| "ERR".to_owned(), |s| s.to_string());
    let paint = match (color, r.ok) {
        (false, _) => ("", ""),
        (true, true) => ("\x1b[32m", "\x1b[0m"),
        (true, false) => ("\x1b[31m", "\x1b[0m"),
    };
    let _ = write!(
        out,
        "{}{status:>3}{}  {:>11}  {:>8}  ",
        paint.0,
        paint.1,
        human_bytes(r.bytes),
        human_ms(r.elapsed_ms),
    );
    if let Some(sha) = r.sha256 {
        let short = sha.map_or("-", |h| &h[..h.len().min(SHORT_HASH)]);
        let _ = write!(out, "{short:<SHORT_HASH$}  ");
    }
    escape::push_field(out, &r.url);
    if let Some(e) = r.error {
        let _ = write!(out, "  {}: ", e.kind.as_str());
        escape::push_field(out, &e.message);
    } else if r.unchanged {
        out.push_str("  unchanged");
    } else if let Some(to) = r.final_url {
        out.push_str("  -> ");
        escape::push_field(out, to);
    }
    if r.attempts > 1 {
        let _ = write!(out, "  ({} tries)", r.attempts);
    }
    match r.saved_to {
        Some(Some(path)) => {
            out.push_str("  saved to ");
            escape::push_field(out, path);
        }
        // Asked to save, and ok, but nothing saved: HEAD, 204, 304, 1xx.
        Some(None) if r.ok && r.error.is_none() => out.push_str("  no body"),
        _ => {}
    }
}

/// `HumanBytes(n).to_string()` (`15 B`, `1.46 KiB`), without formatting a
/// float, which was a tenth of the main thread's work per result line.
///
/// Exact: below 2^53 bytes indicatif's divisions by 1024 are exact, so its
/// value is `n / 1024^k`, and `{:.2}` rounds that to hundredths with ties
/// to even, as done here in integers.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    if n >= 1 << 53 {
        return HumanBytes(n).to_string();
    }
    let mut k = 0;
    let mut div: u64 = 1024;
    while n / div >= 1024 {
        div <<= 10;
        k += 1;
    }
    let hundredths = n * 100;
    let (mut q, r) = (hundredths / div, hundredths % div);
    if 2 * r > div || (2 * r == div && q % 2 == 1) {
        q += 1;
    }
    format!("{}.{:02} {}", q / 100, q % 100, UNITS[k])
}

/// `12 ms`, `1.25 s`, `95.0 s`.
pub fn human_ms(ms: f64) -> String {
    if (0.0..1000.0).contains(&ms) {
        // As `{ms:.0}` (ties to even), without formatting a float.
        format!("{} ms", ms.round_ties_even() as u32)
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// A rate of requests for people, the same in the progress bar, the plain
/// progress lines and the summary: `602 req/s`, `1.4 req/s`, and below one
/// a second per minute (`12 req/min`, `1.5 req/min`) rather than `0 req/s`.
pub fn human_rate(per_s: f64) -> String {
    let per_min = per_s * 60.0;
    if !per_s.is_finite() || per_s <= 0.0 {
        "0 req/s".to_owned()
    } else if per_s >= 9.95 {
        format!("{per_s:.0} req/s")
    } else if per_s >= 0.995 {
        format!("{per_s:.1} req/s")
    } else if per_min >= 9.95 {
        format!("{per_min:.0} req/min")
    } else if per_min >= 0.05 {
        format!("{per_min:.1} req/min")
    } else {
        "<0.1 req/min".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stdout::tests::record;
    use crate::result::{ErrorKind, FetchError};

    #[test]
    fn human_bytes_is_indicatifs() {
        let same = |n: u64| assert_eq!(human_bytes(n), HumanBytes(n).to_string(), "{n}");
        (0..300_000).for_each(same);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            same(x >> (x % 60));
        }
        for k in 1..6 {
            let unit = 1u64 << (10 * k);
            // Ties: n * 100 / 1024^k exactly half way between hundredths.
            for q in [0u64, 1, 2, 7, 100, 101_234] {
                let Some(n) = unit.checked_mul(2 * q + 1).map(|x| x / 200) else {
                    continue;
                };
                [n.saturating_sub(1), n, n + 1].into_iter().for_each(same);
            }
            [unit - 1, unit, unit + 1, 1024 * unit - 1]
                .into_iter()
                .for_each(same);
        }
        [(1 << 53) - 1, 1 << 53, u64::MAX]
            .into_iter()
            .for_each(same);
    }

    #[test]
    fn human_ms_rounds_as_float_formatting() {
        for ms in [
            0.0, 0.5, 1.5, 2.5, 2.499, 12.0, 999.4, 999.5, 999.999, 1000.0,
        ] {
            let old = if ms < 1000.0 {
                format!("{ms:.0} ms")
            } else {
                format!("{:.2} s", ms / 1000.0)
            };
            assert_eq!(human_ms(ms), old, "{ms}");
        }
    }

    #[test]
    fn text_columns_line_up() {
        let err = FetchError::new(ErrorKind::Timeout, "slow");
        let lines: Vec<String> = [
            record("http://a/", Some(200), None),
            record("http://bb/", None, Some(&err)),
            Record {
                bytes: 3,
                elapsed_ms: 2.0,
                waited_ms: 0.0,
                ..record("http://c/", Some(404), None)
            },
            // The widest size: four digits before the point.
            Record {
                bytes: 1_048_575,
                elapsed_ms: 99_999.0,
                waited_ms: 0.0,
                ..record("http://d/", Some(200), None)
            },
        ]
        .iter()
        .map(|r| {
            let mut s = String::new();
            text_line(r, false, &mut s);
            s
        })
        .collect();
        let col = lines[0].find("http://").unwrap();
        for l in &lines {
            assert_eq!(l.find("http://"), Some(col), "{l}");
        }
        assert!(lines[1].starts_with("ERR") && lines[1].ends_with("timeout: slow"));
    }

    fn line(r: &Record<'_>) -> String {
        let mut s = String::new();
        text_line(r, false, &mut s);
        s
    }

    #[test]
    fn hash_column_keeps_urls_in_line() {
        let sha = "0123456789abcdef".repeat(4);
        let err = FetchError::new(ErrorKind::Connect, "refused");
        let lines = [
            line(&Record {
                sha256: Some(Some(&sha)),
                ..record("http://a/", Some(200), None)
            }),
            line(&Record {
                sha256: Some(None),
                ..record("http://b/", None, Some(&err))
            }),
        ];
        assert_eq!(
            lines[0].find("http://"),
            lines[1].find("http://"),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("  0123456789ab  http://a/"),
            "{}",
            lines[0]
        );
        assert!(!lines[0].contains(&sha), "{}", lines[0]);
        assert!(
            lines[1].contains("  -             http://b/"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn tries_and_saving_are_said_after_the_url() {
        let err = FetchError::new(ErrorKind::Timeout, "slow");
        let failed = line(&Record {
            attempts: 3,
            ..record("http://a/", None, Some(&err))
        });
        assert!(
            failed.ends_with("http://a/  timeout: slow  (3 tries)"),
            "{failed}"
        );
        let saved = line(&Record {
            saved_to: Some(Some("dl/a.txt")),
            ..record("http://a/", Some(200), None)
        });
        assert!(saved.ends_with("http://a/  saved to dl/a.txt"), "{saved}");
        let bodiless = line(&Record {
            saved_to: Some(None),
            ..record("http://a/", Some(304), None)
        });
        assert!(bodiless.ends_with("http://a/  no body"), "{bodiless}");
        let not_found = line(&Record {
            ok: false,
            saved_to: Some(None),
            ..record("http://a/", Some(404), None)
        });
        assert!(not_found.ends_with("http://a/"), "{not_found}");
        assert!(!line(&record("http://a/", Some(200), None)).contains("tries"));
    }

    #[test]
    fn values_from_input_and_servers_are_escaped() {
        let err = FetchError::new(ErrorKind::InvalidUrl, "bad \x1b[2J\n");
        let l = line(&Record {
            saved_to: Some(Some("d/\u{202e}")),
            final_url: Some("http://x/\u{85}"),
            ..record("http://a/\u{202e}\t\r", None, Some(&err))
        });
        assert_eq!(
            l,
            "ERR   120.56 KiB    1.23 s  http://a/\\u{202e}\\t\\r  invalid_url: bad \\x1b[2J\\n  \
             saved to d/\\u{202e}"
        );
        let redirected = line(&Record {
            final_url: Some("http://x/\u{85}"),
            ..record("http://a/", Some(200), None)
        });
        assert!(redirected.ends_with("-> http://x/\\u{85}"), "{redirected}");
    }

    #[test]
    fn rates_never_round_to_zero() {
        assert_eq!(human_rate(601.6), "602 req/s");
        assert_eq!(human_rate(12.3), "12 req/s");
        assert_eq!(human_rate(9.96), "10 req/s");
        assert_eq!(human_rate(1.44), "1.4 req/s");
        assert_eq!(human_rate(1.0), "1.0 req/s");
        assert_eq!(human_rate(0.2), "12 req/min");
        assert_eq!(human_rate(0.1), "6.0 req/min");
        assert_eq!(human_rate(1.0 / 3600.0), "<0.1 req/min");
        assert_eq!(human_rate(0.0), "0 req/s");
        assert_eq!(human_rate(f64::NAN), "0 req/s");
    }

    #[test]
    fn times_are_short() {
        assert_eq!(human_ms(12.4), "12 ms");
        assert_eq!(human_ms(1250.0), "1.25 s");
        assert_eq!(human_ms(95_000.0), "95.0 s");
    }
}
