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
pub use text::human_ms;
use text::text_line;

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
    /// `--update` kept the saved file (304); in text only (NDJSON has the status).
    #[serde(skip)]
    pub unchanged: bool,
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
            elapsed_ms: 1234.5,
            attempts: 1,
            final_url: None,
            error,
            sha256: None,
            saved_to: None,
            unchanged: false,
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
}
