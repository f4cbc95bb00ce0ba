//! Usage errors in one style: clap's errors are rendered as fetchpool's own
//! are, `fetchpool: error: <what> (<fix>)` on one line, escaped for the
//! terminal, instead of clap's block of error, tip, usage and "try --help".

use clap::error::{ContextKind, ContextValue};

use crate::text::escape;

/// The message for a clap error (not help or version), without the
/// `fetchpool: error: ` prefix: clap's first line, then what fixes it (a
/// similar flag, the possible values, the fetchpool form of a curl flag),
/// else a pointer to `--help`. Clap's tip to pass `-x` "as a value" after
/// `--` is dropped: it would make the value a URL.
pub fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default().trim();
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let mut fixes = Vec::new();
    let hint = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => curl_hint(arg),
        _ => None,
    };
    fixes.extend(hint.map(str::to_owned));
    let mut listed = Vec::new();
    for line in lines.map(str::trim) {
        // "the following required arguments were not provided:" lists
        // them on the lines after.
        if message.ends_with(':') && (line.starts_with('-') || line.starts_with('<')) {
            listed.push(line.to_owned());
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            // A curl hint says more than a similar spelling would.
            if !tip.contains("as a value, use '--") && hint.is_none() {
                fixes.push(tip.to_owned());
            }
        } else if let Some(values) = line
            .strip_prefix("[possible values: ")
            .and_then(|v| v.strip_suffix(']'))
        {
            fixes.push(format!("possible values: {values}"));
        }
    }
    if !listed.is_empty() {
        message.push(' ');
        message.push_str(&listed.join(", "));
    }
    if fixes.is_empty() {
        message.push_str(" (see --help)");
    } else {
        message.push_str("; ");
        message.push_str(&fixes.join("; "));
    }
    escape::for_field(&message).into_owned()
}

/// What to use instead of a curl, wget or xargs flag that fetchpool does
/// not have (or spells differently).
fn curl_hint(arg: &str) -> Option<&'static str> {
    Some(match arg {
        "-I" | "--head" => "for HEAD requests use -X HEAD",
        "-L" | "--location" => "redirects are followed by default (--max-redirects N)",
        "-s" | "--silent" => "-q turns off the progress display and the summary",
        "-O" | "--remote-name" => "-o DIR saves each body in DIR",
        "-f" | "--fail" => "the exit code is 1 whenever a URL fails (see --accept)",
        "--max-time" => "the deadline of one attempt is -m/--timeout SECS",
        "-x" => "a proxy is --proxy URL",
        "-w" | "--write-out" => "each result's line comes from --format TEMPLATE",
        "-Z" | "--parallel" | "-P" | "--concurrency" | "--parallel-max" => {
            "requests always run in parallel: -j/--workers N sets how many"
        }
        "--include" => {
            "response headers are not printed with results: --json shows every field of a \
             result, -v traces the headers on stderr"
        }
        "-b" | "--cookie" => "send cookies with -H 'Cookie: name=value'",
        "--user-password" | "--basic" => "basic auth is -u USER:PASSWORD",
        "--data-raw" | "--data-ascii" => "the body is -d DATA (or --data-binary DATA)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn error(args: &[&str]) -> String {
        let mut argv = vec!["fetchpool"];
        argv.extend_from_slice(args);
        one_line(&Cli::try_parse_from(argv).unwrap_err())
    }

    #[test]
    fn clap_errors_become_one_line_with_their_fix() {
        assert_eq!(
            error(&["--bogus"]),
            "unexpected argument '--bogus' found (see --help)"
        );
        let e = error(&["--worker", "3"]);
        assert!(e.contains("similar argument exists: '--workers'"), "{e}");
        let e = error(&["--progress", "fancy"]);
        assert!(e.ends_with("; possible values: bar, plain, off"), "{e}");
        let e = error(&["-I", "http://x/"]);
        assert!(e.contains("-X HEAD") && !e.contains("'-- -I'"), "{e}");
        // Not a number at all: clap names the flag (negative numbers pass
        // on to the flag's own range check).
        let e = error(&["--retries", "1.5"]);
        assert!(e.contains("'--retries <N>'") && !e.contains("'-- -"), "{e}");
        for (flag, hint) in [
            ("--max-time", "-m/--timeout"),
            ("-x", "--proxy URL"),
            ("-w", "--format"),
            ("--write-out", "--format"),
            ("-Z", "-j/--workers"),
            ("--parallel", "-j/--workers"),
            ("-P", "-j/--workers"),
            ("--concurrency", "-j/--workers"),
            ("--location", "followed by default"),
            ("--include", "--json"),
            ("-b", "-H 'Cookie: name=value'"),
            ("--cookie", "-H 'Cookie"),
        ] {
            let e = error(&[flag, "1", "http://x/"]);
            assert!(e.contains(hint), "{flag}: {e}");
            assert!(!e.contains("similar argument"), "{flag}: {e}");
        }
        let e = error(&["-m", "abc"]);
        assert!(e.contains("'--timeout <SECS>'"), "{e}");
        let e = error(&["--update", "http://x/"]);
        assert!(e.contains("not provided: --output-dir <DIR>"), "{e}");
        for e in [e, error(&["--json", "--format", "x"])] {
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn quoted_values_are_escaped() {
        // clap drops ANSI sequences itself; other controls are escaped here.
        let e = error(&["--progress", "\u{1b}[2J\u{9b}x\u{202e}"]);
        assert!(e.contains("\\u{9b}x\\u{202e}'"), "{e}");
    }
}
