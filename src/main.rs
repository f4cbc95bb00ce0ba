//! The `fetchpool` binary: parse, validate, run, exit. All logic is in the
//! library.
//!
//! Every error it prints is one line on stderr, `fetchpool: error: ...`,
//! escaped for the terminal; `--help`, `--version`, `--man` and
//! `--completions` end quietly with 0 when stdout is closed (`| head -1`).

use std::io::Write;
use std::process::ExitCode;

use fetchpool::Exit;
use fetchpool::cli::{self, Cli};
use fetchpool::text::escape;

fn main() -> ExitCode {
    let cli = match Cli::from_args() {
        Ok(cli) => cli,
        // --help and --version: printed on stdout; a closed stdout is fine.
        Err(e) if e.exit_code() == 0 => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage(&cli::usage_error(&e)),
    };
    if let Some(shell) = cli.completions {
        return print(&Cli::completions(shell));
    }
    if cli.man {
        return print(&Cli::man_page());
    }
    let exit = match cli.into_config() {
        Ok(config) => fetchpool::run(config),
        Err(e) => return fail(&e),
    };
    match exit {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => fail(&e),
    }
}

/// Writes `bytes` to stdout; a reader that went away early is no error.
fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&anyhow::Error::new(e).context("writing to stdout")),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    usage(&escape::for_field(&format!("{e:#}")))
}

/// Prints `message` (already escaped) as fetchpool's one-line error.
fn usage(message: &str) -> ExitCode {
    fetchpool::report::stderr::line(format_args!("fetchpool: error: {message}"));
    ExitCode::from(Exit::Usage.code())
}
