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
    Attempts,
    FinalUrl,
    Error,
    Sha256,
    SavedTo,
}

const FIELDS: [(&str, Field); 11] = [
    ("seq", Field::Seq),
    ("url", Field::Url),
    ("ok", Field::Ok),
    ("status", Field::Status),
    ("bytes", Field::Bytes),
    ("elapsed_ms", Field::ElapsedMs),
    ("attempts", Field::Attempts),
    ("final_url", Field::FinalUrl),
    ("error", Field::Error),
    ("sha256", Field::Sha256),
    ("saved_to", Field::SavedTo),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template. `{{` and `}}` are literal braces; `\t`, `\n` and `\\`
/// are escapes; a missing value (no status, no error) prints as nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `spec`; an unknown placeholder is an error naming it.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = spec.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('t') => text.push('\t'),
                    Some('n') => text.push('\n'),
                    Some('\\') => text.push('\\'),
                    Some(other) => {
                        text.push('\\');
                        text.push(other);
                    }
                    None => text.push('\\'),
                },
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let Some(&(_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                        bail!(
                            "--format: unknown placeholder {{{name}}} (known: {})",
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
            let _ = match piece {
                Piece::Text(t) => out.write_str(t),
                Piece::Field(f) => match f {
                    Field::Seq => write!(out, "{}", r.seq),
                    Field::Url => out.write_str(&r.url),
                    Field::Ok => write!(out, "{}", r.ok),
                    Field::Status => r.status.map_or(Ok(()), |s| write!(out, "{s}")),
                    Field::Bytes => write!(out, "{}", r.bytes),
                    Field::ElapsedMs => write!(out, "{}", r.elapsed_ms),
                    Field::Attempts => write!(out, "{}", r.attempts),
                    Field::FinalUrl => out.write_str(r.final_url.unwrap_or("")),
                    Field::Error => r.error.map_or(Ok(()), |e| {
                        write!(out, "{}: {}", e.kind.as_str(), e.message)
                    }),
                    Field::Sha256 => out.write_str(r.sha256.flatten().unwrap_or("")),
                    Field::SavedTo => out.write_str(r.saved_to.flatten().unwrap_or("")),
                },
            };
        }
    }
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
            elapsed_ms: 3.5,
            attempts: 1,
            final_url: None,
            error: None,
            sha256: Some(Some("ab")),
            saved_to: None,
            unchanged: false,
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
        assert!(err.contains("{nope}"), "{err}");
    }
}
