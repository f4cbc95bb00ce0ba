//! The `fetchpool` binary: parse, validate, run, exit. All logic is in the
//! library.

use std::process::ExitCode;

use fetchpool::Exit;
use fetchpool::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::from_args();
    if let Some(shell) = cli.completions {
        Cli::write_completions(shell, &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    if cli.man {
        return match Cli::write_man(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.into()),
        };
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

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("fetchpool: error: {e:#}");
    ExitCode::from(Exit::Usage.code())
}
