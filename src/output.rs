//! Result lines on stdout: aligned text, NDJSON or a template.
//!
//! Formatting is separate from writing so it can be tested with plain
//! strings; [`Printer`] owns the stdout writer and its buffering policy.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::fetch::FetchError;

/// One result as printed (SPEC "Output" fields).
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Position among all input entries.
    pub seq: u64,
    /// The URL as given, password replaced by `***`.
    pub url: Cow<'a, str>,
    /// Whether it counts as success.
    pub ok: bool,
    /// Final HTTP status.
    pub status: Option<u16>,
    /// Body bytes read.
    pub bytes: u64,
    /// Wall time of the whole fetch, retries included.
    pub elapsed_ms: f64,
    /// Attempts made.
    pub attempts: u32,
    /// Where redirects led.
    pub final_url: Option<&'a str>,
    /// What went wrong, if anything did.
    pub error: Option<&'a FetchError>,
    /// Body hash, present when `--sha256` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Option<&'a str>>,
    /// Saved file, present when `--output-dir` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_to: Option<Option<&'a str>>,
}

/// Writes result lines to stdout in the chosen format.
pub struct Printer {
    out: Box<dyn Write>,
    format: OutputFormat,
    color: bool,
    flush_each: bool,
    follow: bool,
    line: String,
}

impl Printer {
    /// A printer on stdout: line-flushed and maybe coloured on a terminal,
    /// block-buffered otherwise (scripts read it; flushing per line is slow).
    pub fn stdout(format: OutputFormat) -> Self {
        use std::io::IsTerminal;
        let tty = io::stdout().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer {
            out: Box::new(io::BufWriter::with_capacity(64 * 1024, io::stdout())),
            format,
            color,
            flush_each: tty,
            follow: tty || !stdout_is_device(),
            line: String::with_capacity(256),
        }
    }

    /// Flushes if someone may be reading along (a pipe: `| head`, `| jq`;
    /// a file: `tail -f`); into /dev/null, lines wait for a full buffer.
    pub fn flush_if_followed(&mut self) -> io::Result<()> {
        if self.follow {
            self.out.flush()
        } else {
            Ok(())
        }
    }

    /// Whether lines go to a terminal (and so may meet the progress bar).
    pub fn is_terminal(&self) -> bool {
        self.flush_each
    }

    /// Writes one result line.
    pub fn print(&mut self, r: &Record<'_>) -> io::Result<()> {
        self.line.clear();
        match &self.format {
            OutputFormat::Json => {
                // Serializing plain data into a String cannot fail.
                let json = serde_json::to_string(r).unwrap_or_default();
                self.line.push_str(&json);
            }
            OutputFormat::Template(t) => t.render(r, &mut self.line),
            OutputFormat::Text => text_line(r, self.color, &mut self.line),
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Whether stdout is a character device (other than the terminal, checked
/// first): /dev/null, where nobody reads along.
fn stdout_is_device() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata("/dev/stdout").is_ok_and(|m| m.file_type().is_char_device())
    }
    #[cfg(not(unix))]
    false
}

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
        "{}{status:>3}{}  {:>9}  {:>8}  {}",
        paint.0,
        paint.1,
        human_bytes(r.bytes),
        human_ms(r.elapsed_ms),
        r.url
    );
    if let Some(e) = r.error {
        let _ = write!(out, "  {}: {}", e.kind.as_str(), e.message);
    } else if let Some(to) = r.final_url {
        let _ = write!(out, "  -> {to}");
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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
    use crate::fetch::ErrorKind;

    fn record<'a>(url: &'a str, status: Option<u16>, error: Option<&'a FetchError>) -> Record<'a> {
        Record {
            seq: 0,
            url: url.into(),
            ok: error.is_none(),
            status,
            bytes: 123_456,
            elapsed_ms: 1234.5,
            attempts: 1,
            final_url: None,
            error,
            sha256: None,
            saved_to: None,
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
    fn json_has_every_field_and_optional_ones_only_when_asked() {
        let r = record("http://a/", Some(200), None);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        for key in [
            "seq",
            "url",
            "ok",
            "status",
            "bytes",
            "elapsed_ms",
            "attempts",
            "final_url",
            "error",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v.get("sha256").is_none());
        let r = Record {
            sha256: Some(None),
            ..r
        };
        assert!(serde_json::to_value(&r).unwrap()["sha256"].is_null());
    }

    #[test]
    fn sizes_and_times_are_short() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 20), "10.0 MiB");
        assert_eq!(human_ms(12.4), "12 ms");
        assert_eq!(human_ms(1250.0), "1.25 s");
        assert_eq!(human_ms(95_000.0), "95.0 s");
    }
}
