//! Result lines on stdout: aligned text, NDJSON or a template.
//!
//! Formatting is separate from writing so it can be tested with plain
//! strings; [`Printer`] owns the stdout writer and its buffering policy.

mod template;
mod text;

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use crate::result::FetchError;
pub use template::Template;
use text::text_line;
pub use text::{human_ms, human_rate};

/// How results are printed.
#[derive(Debug)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Text,
    /// One JSON object per line.
    Json,
    /// A user template.
    Template(Template),
}

/// The optional fields of a result line: present (null when unavailable)
/// only when their flag was given, so that scripts see the same shape on
/// every line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields {
    /// `sha256`, with `--sha256`.
    pub sha256: bool,
    /// `saved_to`, with `--output-dir`.
    pub saved_to: bool,
}

/// One result as printed (the NDJSON fields of `docs/contract.md`).
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
    /// Body bytes read (decoded, with `--compressed`).
    pub bytes: u64,
    /// Body bytes received, as sent.
    pub wire_bytes: u64,
    /// Wall time of the whole fetch, retries included.
    pub elapsed_ms: f64,
    /// Time held back by the host's pause, its rate, or `--rate`.
    pub waited_ms: f64,
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
    /// `--update` kept the saved file (304); in text only (NDJSON has the status).
    #[serde(skip)]
    pub unchanged: bool,
    /// Connection timings of the last attempt; null when nothing was sent.
    pub timings: Option<TimingsMs>,
    /// The body continued a part file of this many bytes (`--continue`, or
    /// a retry of a cut download); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<u64>,
}

/// [`crate::result::Timings`] as printed: milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TimingsMs {
    /// Time to connect; null when the connection was reused.
    pub connect_ms: Option<f64>,
    /// TLS handshake; null on reuse and for plain http.
    pub tls_ms: Option<f64>,
    /// From sending the request to the first response byte.
    pub ttfb_ms: Option<f64>,
    /// Whether the connection was a reused keep-alive one.
    pub reused: bool,
}

impl From<crate::result::Timings> for TimingsMs {
    fn from(t: crate::result::Timings) -> Self {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        TimingsMs {
            connect_ms: t.connect.map(ms),
            tls_ms: t.tls.map(ms),
            ttfb_ms: t.ttfb.map(ms),
            reused: t.reused,
        }
    }
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
            follow: tty || !stdout_is_null(),
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

    /// Whether stdout is a pipe whose reader has gone (`| head -1`), seen
    /// without writing: a run waiting on slow URLs notices at once, not at
    /// its next result.
    pub fn is_closed(&self) -> bool {
        #[cfg(unix)]
        {
            use rustix::event::{PollFd, PollFlags, poll};
            use std::os::fd::AsFd;
            let stdout = io::stdout();
            let fd = stdout.as_fd();
            let mut fds = [PollFd::new(&fd, PollFlags::empty())];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            poll(&mut fds, Some(&zero)).is_ok()
                && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
        }
        #[cfg(not(unix))]
        false
    }
}

/// Whether stdout is /dev/null, where nobody reads along. Other devices
/// are flushed like files: a write error there (/dev/full) must show while
/// the run goes on, not only at its end.
fn stdout_is_null() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (
            std::fs::metadata("/dev/stdout"),
            std::fs::metadata("/dev/null"),
        ) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino() && a.rdev() == b.rdev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn record<'a>(
        url: &'a str,
        status: Option<u16>,
        error: Option<&'a FetchError>,
    ) -> Record<'a> {
        Record {
            seq: 0,
            url: url.into(),
            ok: error.is_none(),
            status,
            bytes: 123_456,
            wire_bytes: 2_345,
            elapsed_ms: 1234.5,
            waited_ms: 0.0,
            attempts: 1,
            final_url: None,
            error,
            sha256: None,
            saved_to: None,
            timings: None,
            unchanged: false,
            resumed_from: None,
        }
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
            "wire_bytes",
            "elapsed_ms",
            "waited_ms",
            "attempts",
            "final_url",
            "error",
            "timings",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        let t = crate::result::Timings {
            connect: Some(std::time::Duration::from_micros(1500)),
            reused: false,
            ..Default::default()
        };
        let r2 = Record {
            timings: Some(t.into()),
            ..record("http://a/", Some(200), None)
        };
        let v2 = serde_json::to_value(&r2).unwrap();
        assert_eq!(
            v2["timings"],
            serde_json::json!({"connect_ms": 1.5, "tls_ms": null, "ttfb_ms": null, "reused": false})
        );
        assert!(v.get("sha256").is_none());
        let r = Record {
            sha256: Some(None),
            ..r
        };
        assert!(serde_json::to_value(&r).unwrap()["sha256"].is_null());
    }
}
