//! `--format TEMPLATE`: result lines from `{placeholder}`s.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::Record;

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Seq,
    Url,
    Ok,
    Status,
    Bytes,
    ElapsedMs,
    WaitedMs,
    Attempts,
    FinalUrl,
    Error,
    Sha256,
    SavedTo,
    ConnectMs,
    TlsMs,
    TtfbMs,
    Reused,
    WireBytes,
}

const FIELDS: [(&str, Field); 17] = [
    ("seq", Field::Seq),
    ("url", Field::Url),
    ("ok", Field::Ok),
    ("status", Field::Status),
    ("bytes", Field::Bytes),
    ("elapsed_ms", Field::ElapsedMs),
    ("waited_ms", Field::WaitedMs),
    ("attempts", Field::Attempts),
    ("final_url", Field::FinalUrl),
    ("error", Field::Error),
    ("sha256", Field::Sha256),
    ("saved_to", Field::SavedTo),
    ("connect_ms", Field::ConnectMs),
    ("tls_ms", Field::TlsMs),
    ("ttfb_ms", Field::TtfbMs),
    ("reused", Field::Reused),
    ("wire_bytes", Field::WireBytes),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template. `{{` and `}}` are literal braces; `\t`, `\n` and `\\`
/// are escapes; a missing value (no status, no error) prints as nothing.
/// Values are escaped for the terminal ([`crate::text::escape::for_field`]), so
/// each result stays one line whatever a URL or a message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `spec`. An unknown placeholder, a `{` that is not closed and a
    /// `}` that closes nothing are errors that point at the column (counted
    /// in characters from 1) where the mistake starts.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = spec.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            let column = i + 1;
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('t') => text.push('\t'),
                    Some('n') => text.push('\n'),
                    Some('\\') => text.push('\\'),
                    Some(other) => {
                        text.push('\\');
                        text.push(other);
                    }
                    None => text.push('\\'),
                },
                '{' if chars.peek().is_some_and(|&(_, c)| c == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, c)| c == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => bail!(
                    "--format: '}}' at column {column} closes no '{{' (write '}}}}' for a \
                     literal brace)"
                ),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        if c == '{' {
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        let fragment: String = spec.chars().skip(i).take(20).collect();
                        bail!(
                            "--format: unclosed '{{' at column {column} in '{}' (write '{{{{' \
                             for a literal brace)",
                            crate::text::escape::for_field(&fragment)
                        );
                    }
                    let Some(&(_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                        bail!(
                            "--format: unknown placeholder {{{}}} at column {column} (known: {})",
                            crate::text::escape::for_field(&name),
                            known.join(", ")
                        );
                    };
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(field));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template(pieces))
    }

    /// Appends the line for `r` to `out` (without a trailing newline).
    pub fn render(&self, r: &Record<'_>, out: &mut String) {
        for piece in &self.0 {
            let start = out.len();
            let _ = match piece {
                Piece::Text(t) => out.write_str(t),
                Piece::Field(f) => match f {
                    Field::Seq => write!(out, "{}", r.seq),
                    Field::Url => out.write_str(&r.url),
                    Field::Ok => write!(out, "{}", r.ok),
                    Field::Status => r.status.map_or(Ok(()), |s| write!(out, "{s}")),
                    Field::Bytes => write!(out, "{}", r.bytes),
                    Field::WireBytes => write!(out, "{}", r.wire_bytes),
                    Field::ElapsedMs => write!(out, "{}", r.elapsed_ms),
                    Field::WaitedMs => write!(out, "{}", r.waited_ms),
                    Field::Attempts => write!(out, "{}", r.attempts),
                    Field::FinalUrl => out.write_str(r.final_url.unwrap_or("")),
                    Field::Error => r.error.map_or(Ok(()), |e| {
                        write!(out, "{}: {}", e.kind.as_str(), e.message)
                    }),
                    Field::Sha256 => out.write_str(r.sha256.flatten().unwrap_or("")),
                    Field::SavedTo => out.write_str(r.saved_to.flatten().unwrap_or("")),
                    Field::ConnectMs => ms(out, r.timings.and_then(|t| t.connect_ms)),
                    Field::TlsMs => ms(out, r.timings.and_then(|t| t.tls_ms)),
                    Field::TtfbMs => ms(out, r.timings.and_then(|t| t.ttfb_ms)),
                    Field::Reused => r.timings.map_or(Ok(()), |t| write!(out, "{}", t.reused)),
                },
            };
            // Values come from input and servers: one line, no controls.
            // The template's own text is written as given.
            if matches!(piece, Piece::Field(_)) {
                crate::text::escape::field_from(out, start);
            }
        }
    }
}

/// A millisecond value, or nothing when there is none.
fn ms(out: &mut String, value: Option<f64>) -> std::fmt::Result {
    value.map_or(Ok(()), |v| write!(out, "{v}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{ErrorKind, FetchError};

    fn record() -> Record<'static> {
        Record {
            seq: 7,
            url: "http://h/x".into(),
            ok: true,
            status: Some(200),
            bytes: 12,
            wire_bytes: 5,
            elapsed_ms: 3.5,
            waited_ms: 0.0,
            attempts: 1,
            final_url: None,
            error: None,
            sha256: Some(Some("ab")),
            saved_to: None,
            timings: None,
            unchanged: false,
            resumed_from: None,
        }
    }

    fn render(spec: &str, r: &Record<'_>) -> String {
        let mut s = String::new();
        Template::parse(spec).unwrap().render(r, &mut s);
        s
    }

    #[test]
    fn fills_placeholders_and_escapes() {
        let r = record();
        assert_eq!(
            render(r"{seq}\t{status}\t{bytes}\t{url}\t{sha256}{{x}}\n", &r),
            "7\t200\t12\thttp://h/x\tab{x}\n"
        );
        assert_eq!(
            render("{ok} {elapsed_ms} {attempts} [{final_url}]", &r),
            "true 3.5 1 []"
        );
    }

    #[test]
    fn timings_render_in_ms_or_nothing() {
        let r = Record {
            timings: Some(super::super::TimingsMs {
                connect_ms: None,
                tls_ms: None,
                ttfb_ms: Some(0.25),
                reused: true,
            }),
            ..record()
        };
        assert_eq!(
            render("[{connect_ms}] [{tls_ms}] {ttfb_ms} {reused}", &r),
            "[] [] 0.25 true"
        );
        assert_eq!(render("[{ttfb_ms}] [{reused}]", &record()), "[] []");
    }

    #[test]
    fn failures_render_their_error() {
        let err = FetchError::new(ErrorKind::Timeout, "slow");
        let r = Record {
            ok: false,
            status: None,
            error: Some(&err),
            ..record()
        };
        assert_eq!(render("{status}|{error}", &r), "|timeout: slow");
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let err = Template::parse("{seq} {nope}").unwrap_err().to_string();
        assert!(err.contains("{nope} at column 7"), "{err}");
    }

    #[test]
    fn brace_mistakes_point_at_their_column() {
        let err = |spec: &str| Template::parse(spec).unwrap_err().to_string();
        assert_eq!(
            err("{status"),
            "--format: unclosed '{' at column 1 in '{status' (write '{{' for a literal brace)"
        );
        let e = err("x{status y");
        assert!(e.contains("unclosed '{' at column 2 in '{status y'"), "{e}");
        assert!(err("{a{b}").contains("unclosed '{' at column 1"));
        assert_eq!(
            err("a}b"),
            "--format: '}' at column 2 closes no '{' (write '}}' for a literal brace)"
        );
        assert!(err("{ok}}").contains("column 5"));
        assert!(
            err("\u{e9}{").contains("column 2"),
            "columns count characters"
        );
        assert_eq!(render("{{}}}}{{", &record()), "{}}{");
    }

    #[test]
    fn values_are_escaped_and_template_text_is_not() {
        let err = FetchError::new(ErrorKind::Protocol, "bad\r\n\x1b[2J");
        let r = Record {
            url: "http://h/\u{202e}\t".into(),
            error: Some(&err),
            ..record()
        };
        assert_eq!(
            render("{url}\t{error}\n", &r),
            "http://h/\\u{202e}\\t\tprotocol: bad\\r\\n\\x1b[2J\n"
        );
    }
}
