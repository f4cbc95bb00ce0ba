//! The reference tables of `--help` and the man page: output fields, error
//! kinds, exit codes and examples. Both are rendered from these constants,
//! so they cannot drift apart; `docs/contract.md` is the full text.

use std::fmt::Write as _;

/// One line about fetchpool: `-h`, `--help`, the man page's NAME and the
/// crate description say the same.
pub const TAGLINE: &str =
    "Fetch many URLs at once on a fixed pool of threads; one honest result per URL";

/// What follows the tagline in `--help` and the man page's DESCRIPTION.
pub const DESCRIPTION: &str = "URLs come from the arguments, then from each -i FILE ('-' is \
    stdin), or from stdin when it is piped. Results stream to stdout in completion order, one \
    line per URL: aligned text, NDJSON (--json) or a template (--format). A progress bar \
    (on a terminal) and a summary go to stderr.";

/// The NDJSON fields of `--json`: name, type, meaning.
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("seq", "int", "0-based position among all entries"),
    (
        "url",
        "string",
        "the entry as given, any password replaced by ***",
    ),
    ("ok", "bool", "no error, and the final status in --accept"),
    (
        "status",
        "int or null",
        "final HTTP status; null if no response arrived",
    ),
    (
        "bytes",
        "int",
        "body bytes read in the last attempt (decoded, with --compressed)",
    ),
    (
        "wire_bytes",
        "int",
        "body bytes received in the last attempt, before --compressed decoding",
    ),
    (
        "elapsed_ms",
        "number",
        "the whole fetch, retries and waits included",
    ),
    (
        "waited_ms",
        "number",
        "time held back by the host's pause or rate, or by --rate",
    ),
    ("attempts", "int", "attempts made; 0 for invalid_url"),
    (
        "final_url",
        "string or null",
        "where redirects led, when any were followed",
    ),
    (
        "error",
        "object or null",
        "{\"kind\", \"message\"}; null for a status outside --accept",
    ),
    (
        "sha256",
        "string or null",
        "only with --sha256; null when there was no body",
    ),
    (
        "saved_to",
        "string or null",
        "only with -o; null when nothing was saved",
    ),
    (
        "resumed_from",
        "int",
        "only when the body continued a part file (--continue, or a retry): its bytes",
    ),
    (
        "timings",
        "object or null",
        "the last attempt's connect_ms, tls_ms, ttfb_ms (each null when not measured) and \
         reused (bool); null when nothing was fetched",
    ),
];

/// The error kinds: kind, meaning, whether it is retried.
pub const ERROR_KINDS: &[(&str, &str, bool)] = &[
    (
        "invalid_url",
        "not an absolute http(s) URL, not UTF-8, or over 64 KiB; nothing was sent",
        false,
    ),
    ("dns", "the host name does not resolve", false),
    (
        "connect",
        "connection refused, or host or network unreachable",
        true,
    ),
    (
        "tls",
        "handshake or certificate failure (see --cacert, -k)",
        false,
    ),
    ("timeout", "--connect-timeout or --timeout passed", true),
    ("too_large", "the body exceeds --max-size", false),
    (
        "redirects",
        "more than --max-redirects, or a redirect that cannot be followed",
        false,
    ),
    (
        "protocol",
        "the reply is not valid HTTP, or its body cannot be framed",
        false,
    ),
    (
        "proxy",
        "the proxy refused the tunnel or asked for credentials (407)",
        false,
    ),
    (
        "io",
        "the connection broke mid-response, or saving the body failed (a cut download \
         kept in a part file under -o is retried for the rest)",
        false,
    ),
    (
        "cancelled",
        "interrupted while its body was still being read",
        false,
    ),
    ("internal", "a bug in fetchpool (please report it)", false),
];

/// Said after the error kinds.
pub const RETRIES: &str = "Statuses 408, 429, 500, 502, 503 and 504 are retried too, for \
    idempotent methods, up to --retries times (--retries 0: one attempt, whatever the \
    answer); a status in --accept is never retried. A status outside --accept is a failure \
    with ok false and error null.";

/// The exit codes: code, short meaning (`-h`), full meaning.
pub const EXIT_CODES: &[(u8, &str, &str)] = &[
    (
        0,
        "all ok",
        "every entry ok, including a run with no entries (an empty list or file)",
    ),
    (
        1,
        "some failed",
        "one or more entries failed or were never started (a --fail-fast stop, a closed \
         stdout)",
    ),
    (
        2,
        "usage or input error",
        "usage or input error, before anything is fetched: a bad flag or value, an \
         unreadable input or body file, no URL source at all (no arguments, no -i, stdin \
         a terminal), an output path that cannot be written; or, after the run, a \
         --write-failed or --summary-json file not written in full",
    ),
    (
        130,
        "interrupted (SIGINT)",
        "interrupted by Ctrl-C (SIGINT)",
    ),
    (143, "terminated (SIGTERM)", "terminated (SIGTERM)"),
];

/// Examples: what, then the command.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "Fetch a list; print only the failures and keep them for a re-run with -i failed.txt:",
        "fetchpool -i urls.txt --failures-only --write-failed failed.txt",
    ),
    (
        "NDJSON for scripts:",
        "fetchpool -i urls.txt --json | jq -c 'select(.ok | not)'",
    ),
    (
        "Your own columns:",
        "fetchpool -i urls.txt --format '{status}\\t{elapsed_ms}\\t{url}'",
    ),
    (
        "HEAD requests with a 5 s deadline, 304 counting as success:",
        "fetchpool -X HEAD -m 5 --accept 200-299,304 -i urls.txt",
    ),
    (
        "Download with checksums:",
        "fetchpool -i files.txt -o downloads --sha256",
    ),
    (
        "A link check in CI: only the broken links printed, a summary kept as a file:",
        "fetchpool -i links.txt --failures-only --summary-json summary.json",
    ),
    (
        "An API smoke test: POST a JSON body with basic auth, only 201 counts as success:",
        "fetchpool --json-body @new.json -u ci:$PW --accept 201 https://api.test/",
    ),
    (
        "What each request did (connection, TLS, heads, redirects, retries), on stderr:",
        "fetchpool -v -q https://example.com/",
    ),
    (
        "Shard 2 of 4 (each entry lands in exactly one shard):",
        "fetchpool -i urls.txt --shard 2/4 --json > part-2.ndjson",
    ),
];

/// Width the closing sections of `-h` and `--help` are wrapped to.
const WIDTH: usize = 80;

/// `-h`'s closing lines.
pub fn after_help() -> String {
    let codes: Vec<String> = EXIT_CODES
        .iter()
        .map(|(code, short, _)| format!("{code} {short}"))
        .collect();
    let mut s = wrap(&format!("Exit codes: {}.", codes.join(", ")), "", "  ");
    s.push_str("See --help for output fields, error kinds and examples.");
    s
}

/// `--help`'s closing sections.
pub fn after_long_help() -> String {
    let mut s = String::new();
    s.push_str("Output fields (--json; --format takes the same names, and those of timings):\n");
    let width = FIELDS.iter().map(|f| f.0.len()).max().unwrap_or(0);
    for (name, kind, meaning) in FIELDS {
        let head = format!("  {name:<width$}  ");
        s.push_str(&wrap(
            &format!("{meaning} ({kind})"),
            &head,
            &" ".repeat(head.len()),
        ));
    }
    s.push_str("\nError kinds (* retried):\n");
    let width = ERROR_KINDS.iter().map(|k| k.0.len()).max().unwrap_or(0) + 2;
    for (kind, meaning, retried) in ERROR_KINDS {
        let name = if *retried {
            format!("{kind} *")
        } else {
            (*kind).to_owned()
        };
        let head = format!("  {name:<width$}  ");
        s.push_str(&wrap(meaning, &head, &" ".repeat(head.len())));
    }
    s.push_str(&wrap(RETRIES, "", ""));
    s.push_str("\nExit codes:\n");
    for (code, _, meaning) in EXIT_CODES {
        let head = format!("  {code:<3}  ");
        s.push_str(&wrap(meaning, &head, &" ".repeat(head.len())));
    }
    s.push_str("\nExamples:\n");
    for (what, command) in EXAMPLES {
        s.push_str(&wrap(what, "  ", "  "));
        let _ = writeln!(s, "    {command}");
    }
    s.truncate(s.trim_end().len());
    s
}

/// `text` wrapped at [`WIDTH`] columns: the first line starts with `first`,
/// the others with `rest`. Ends with a newline.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split(' ') {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The man page's own sections (after OPTIONS), in roff.
pub fn man_sections() -> String {
    let mut s = String::new();
    s.push_str(".SH \"OUTPUT FIELDS\"\n");
    s.push_str(&roff_text(
        "With --json each result is one JSON object per line (NDJSON); --format takes the \
         same names as placeholders.",
    ));
    for (name, kind, meaning) in FIELDS {
        let _ = write!(
            s,
            ".TP\n\\fB{}\\fR ({})\n{}",
            roff_escape(name),
            roff_escape(kind),
            roff_text(meaning)
        );
    }
    s.push_str(".SH \"ERROR KINDS\"\n");
    s.push_str(&roff_text(
        "A failed fetch is a result, not a crash: its error has one of these kinds.",
    ));
    for (kind, meaning, retried) in ERROR_KINDS {
        let retried = if *retried { " (retried)" } else { "" };
        let _ = write!(
            s,
            ".TP\n\\fB{}\\fR{retried}\n{}",
            roff_escape(kind),
            roff_text(meaning)
        );
    }
    s.push_str(".PP\n");
    s.push_str(&roff_text(RETRIES));
    s.push_str(".SH \"EXIT STATUS\"\n");
    for (code, _, meaning) in EXIT_CODES {
        let _ = write!(s, ".TP\n\\fB{code}\\fR\n{}", roff_text(meaning));
    }
    s.push_str(".SH EXAMPLES\n");
    for (what, command) in EXAMPLES {
        let _ = write!(
            s,
            ".PP\n{}.RS 4\n.nf\n{}.fi\n.RE\n",
            roff_text(what),
            roff_text(command)
        );
    }
    s
}

/// Text for roff, as one input line: safe whatever it starts with.
pub fn roff_text(text: &str) -> String {
    let escaped = roff_escape(text);
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}\n")
    } else {
        format!("{escaped}\n")
    }
}

/// Backslashes and hyphens escaped for roff (`\e`, `\-`), so flags stay
/// searchable and copyable.
pub fn roff_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\e"),
            '-' => s.push_str("\\-"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ErrorKind;

    #[test]
    fn the_tables_cover_every_kind_and_field() {
        let kinds = [
            ErrorKind::InvalidUrl,
            ErrorKind::Dns,
            ErrorKind::Connect,
            ErrorKind::Tls,
            ErrorKind::Timeout,
            ErrorKind::TooLarge,
            ErrorKind::Redirects,
            ErrorKind::Protocol,
            ErrorKind::Proxy,
            ErrorKind::Io,
            ErrorKind::Cancelled,
            ErrorKind::Internal,
        ];
        let listed: Vec<&str> = ERROR_KINDS.iter().map(|k| k.0).collect();
        assert_eq!(listed, kinds.map(ErrorKind::as_str));
        for (kind, _, retried) in ERROR_KINDS {
            let k = kinds.iter().find(|k| k.as_str() == *kind).unwrap();
            assert_eq!(k.is_retryable(), *retried, "{kind}");
        }
        let codes: Vec<u8> = EXIT_CODES.iter().map(|c| c.0).collect();
        assert_eq!(codes, [0, 1, 2, 130, 143]);
    }

    #[test]
    fn help_lines_fit_80_columns() {
        for line in after_long_help().lines().chain(after_help().lines()) {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
        assert!(after_long_help().contains("\n  2    usage or input error, before anything is fetched: a bad flag or value, an\n       unreadable"));
    }

    #[test]
    fn roff_is_escaped() {
        assert_eq!(roff_text("-i a\\tb"), "\\-i a\\etb\n");
        assert_eq!(roff_text(".SH not a macro"), "\\&.SH not a macro\n");
        assert_eq!(roff_text("'quote"), "\\&'quote\n");
        let man = man_sections();
        assert!(
            man.contains(".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\n"),
            "{man}"
        );
        assert!(!man.contains('`'));
    }
}
