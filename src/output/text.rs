//! The default text line: aligned columns for people.

use std::fmt::Write as _;

use indicatif::HumanBytes;

use super::Record;

/// `STATUS  SIZE  TIME  URL[  kind: message]`, the first three columns of
/// fixed width so URLs line up.
pub fn text_line(r: &Record<'_>, color: bool, out: &mut String) {
    let status = r.status.map_or_else(|| "ERR".to_owned(), |s| s.to_string());
    let paint = match (color, r.ok) {
        (false, _) => ("", ""),
        (true, true) => ("\x1b[32m", "\x1b[0m"),
        (true, false) => ("\x1b[31m", "\x1b[0m"),
    };
    let _ = write!(
        out,
        "{}{status:>3}{}  {:>10}  {:>8}  {}",
        paint.0,
        paint.1,
        HumanBytes(r.bytes).to_string(),
        human_ms(r.elapsed_ms),
        r.url
    );
    if let Some(e) = r.error {
        let _ = write!(out, "  {}: {}", e.kind.as_str(), e.message);
    } else if r.unchanged {
        out.push_str("  unchanged");
    } else if let Some(to) = r.final_url {
        let _ = write!(out, "  -> {to}");
    }
}

/// `12 ms`, `1.25 s`, `95.0 s`.
pub fn human_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::record;
    use crate::result::{ErrorKind, FetchError};

    #[test]
    fn text_columns_line_up() {
        let err = FetchError::new(ErrorKind::Timeout, "slow");
        let lines: Vec<String> = [
            record("http://a/", Some(200), None),
            record("http://bb/", None, Some(&err)),
            Record {
                bytes: 3,
                elapsed_ms: 2.0,
                ..record("http://c/", Some(404), None)
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

    #[test]
    fn times_are_short() {
        assert_eq!(human_ms(12.4), "12 ms");
        assert_eq!(human_ms(1250.0), "1.25 s");
        assert_eq!(human_ms(95_000.0), "95.0 s");
    }
}
