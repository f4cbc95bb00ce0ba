//! The request body and credentials flags, read as curl reads them:
//! `-d/--data`, `--data-binary`, `--json-body` and `-u/--user`.
//!
//! A body is read once, before anything is sent, and the same bytes go to
//! every URL. It is held in memory (shared by all workers), so a file is
//! refused past [`MAX_BODY`] with a message that says so.

use std::io::{IsTerminal, Read};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;

/// The largest request body read from a file or stdin.
pub const MAX_BODY: u64 = 64 << 20;

/// The body flags as given.
pub struct BodyFlags<'a> {
    /// `-d/--data`, in order: `@FILE` has its CR and LF dropped, as in curl.
    pub data: &'a [String],
    /// `--data-binary`, in order: `@FILE` is sent byte for byte.
    pub binary: &'a [String],
    /// `--json-body`: a JSON body (`@FILE` byte for byte).
    pub json: Option<&'a str>,
    /// Whether stdin also gives the URLs (so `@-` cannot be used).
    pub stdin_has_urls: bool,
}

/// A request body and the headers that describe it.
#[derive(Clone)]
pub struct Body {
    /// The bytes, shared by every request.
    pub bytes: Arc<[u8]>,
    /// The `Content-Type` to send unless `-H` sets one.
    pub content_type: &'static str,
    /// `--json-body` also asks for JSON back, as curl's `--json` does.
    pub json: bool,
}

/// The body the flags ask for, if any.
pub fn body(flags: &BodyFlags<'_>) -> Result<Option<Body>> {
    let given = [
        !flags.data.is_empty(),
        !flags.binary.is_empty(),
        flags.json.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() > 1 {
        bail!("-d/--data, --data-binary and --json-body cannot be combined: choose one");
    }
    let (bytes, content_type, json) = if !flags.data.is_empty() {
        let parts = flags
            .data
            .iter()
            .map(|d| piece("--data", d, true, flags.stdin_has_urls))
            .collect::<Result<Vec<_>>>()?;
        (parts.join(&b'&'), FORM, false)
    } else if !flags.binary.is_empty() {
        let parts = flags
            .binary
            .iter()
            .map(|d| piece("--data-binary", d, false, flags.stdin_has_urls))
            .collect::<Result<Vec<_>>>()?;
        (parts.join(&b'&'), FORM, false)
    } else if let Some(j) = flags.json {
        let bytes = piece("--json-body", j, false, flags.stdin_has_urls)?;
        (bytes, JSON, true)
    } else {
        return Ok(None);
    };
    Ok(Some(Body {
        bytes: bytes.into(),
        content_type,
        json,
    }))
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// One value of a body flag: the text itself, or `@FILE` read whole
/// (`@-`: stdin). `strip` drops CR and LF from a file, as `-d @FILE` does.
fn piece(flag: &str, value: &str, strip: bool, stdin_has_urls: bool) -> Result<Vec<u8>> {
    let Some(path) = value.strip_prefix('@') else {
        return Ok(value.as_bytes().to_vec());
    };
    let mut bytes = if path == "-" {
        if stdin_has_urls {
            bail!(
                "{flag} @-: stdin already gives the URLs; pass them as arguments or with \
                 -i FILE, or put the body in a file"
            );
        }
        read_limited(flag, "stdin", std::io::stdin().lock())?
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("{flag}: cannot read {path}"))?;
        read_limited(flag, path, file)?
    };
    if strip {
        bytes.retain(|&b| b != b'\r' && b != b'\n');
    }
    Ok(bytes)
}

/// Reads `from` whole, refusing more than [`MAX_BODY`] bytes.
fn read_limited(flag: &str, name: &str, from: impl Read) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    from.take(MAX_BODY + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{flag}: cannot read {name}"))?;
    if bytes.len() as u64 > MAX_BODY {
        bail!(
            "{flag}: {name} is larger than {} MiB, the largest request body fetchpool holds",
            MAX_BODY >> 20
        );
    }
    Ok(bytes)
}

/// The `Authorization` value for `-u user:password`; `-u user` asks for the
/// password on the terminal, as curl does, when stdin is one. Also returns
/// the password, to keep it out of messages.
pub fn basic_auth(user: &str) -> Result<(String, String)> {
    let (name, password) = match user.split_once(':') {
        Some((name, password)) => (name.to_owned(), password.to_owned()),
        None => {
            if !std::io::stdin().is_terminal() {
                bail!(
                    "--user {user:?} has no password and stdin is not a terminal to ask for \
                     one: use -u '{user}:PASSWORD'"
                );
            }
            let prompt = format!(
                "Enter password for user '{}': ",
                crate::text::escape::for_field(user)
            );
            let password =
                rpassword::prompt_password(prompt).context("--user: cannot read the password")?;
            (user.to_owned(), password)
        }
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    Ok((format!("Basic {token}"), password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags<'a>(data: &'a [String], binary: &'a [String], json: Option<&'a str>) -> BodyFlags<'a> {
        BodyFlags {
            data,
            binary,
            json,
            stdin_has_urls: true,
        }
    }

    #[test]
    fn data_pieces_join_with_ampersands_and_files_lose_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        std::fs::write(&path, "x=1\r\ny=2\n").unwrap();
        let data = vec!["a=b".to_owned(), format!("@{}", path.display())];
        let b = body(&flags(&data, &[], None)).unwrap().unwrap();
        assert_eq!(&*b.bytes, b"a=b&x=1y=2");
        assert_eq!(b.content_type, FORM);
        let binary = vec![format!("@{}", path.display())];
        let b = body(&flags(&[], &binary, None)).unwrap().unwrap();
        assert_eq!(&*b.bytes, b"x=1\r\ny=2\n");
        let b = body(&flags(&[], &[], Some("{\"a\":1}"))).unwrap().unwrap();
        assert!(b.json && b.content_type == JSON && &*b.bytes == b"{\"a\":1}");
        assert!(body(&flags(&[], &[], None)).unwrap().is_none());
    }

    #[test]
    fn bad_body_flags_say_why() {
        let data = vec!["a".to_owned()];
        let e = body(&flags(&data, &data, None)).err().unwrap().to_string();
        assert!(e.contains("cannot be combined"), "{e}");
        let missing = vec!["@/nonexistent/body".to_owned()];
        let e = format!("{:#}", body(&flags(&missing, &[], None)).err().unwrap());
        assert!(
            e.starts_with("--data: cannot read /nonexistent/body"),
            "{e}"
        );
        let stdin = vec!["@-".to_owned()];
        let e = body(&flags(&stdin, &[], None)).err().unwrap().to_string();
        assert!(e.contains("stdin already gives the URLs"), "{e}");
        let big = std::io::repeat(b'x');
        let e = read_limited("--data", "f", big).unwrap_err().to_string();
        assert!(e.contains("larger than 64 MiB"), "{e}");
    }

    #[test]
    fn basic_credentials_are_base64() {
        let (header, password) = basic_auth("aladdin:opensesame").unwrap();
        assert_eq!(header, "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        assert_eq!(password, "opensesame");
        let (header, _) = basic_auth("u:p:q").unwrap();
        assert_eq!(header, format!("Basic {}", "dTpwOnE="));
    }
}
