//! The files a run writes besides stdout (`--write-failed`,
//! `--summary-json`, `--output-dir`), checked before the first request: a
//! bad path is a usage error up front, never a surprise after an hour of
//! fetching.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::input::Source;
use crate::report::summary::Report;

/// The opened output files of a run.
pub struct Outputs {
    /// `--write-failed`, created (truncated) up front.
    pub write_failed: Option<BufWriter<File>>,
    summary_json: Option<(PathBuf, File)>,
}

impl Outputs {
    /// Checks and opens every path the run will write. None may be one of
    /// the input files: `-i list --write-failed list` would empty the list
    /// before reading it.
    pub fn open(
        write_failed: Option<&Path>,
        summary_json: Option<&Path>,
        output_dir: Option<&Path>,
        sources: &[Source],
    ) -> Result<Self> {
        for (flag, path) in [
            ("--write-failed", write_failed),
            ("--summary-json", summary_json),
        ] {
            if let Some(path) = path
                && let Some(input) = sources.iter().find(|s| s.is_file_at(path))
            {
                bail!(
                    "{flag} {} is also an input file ({}): write it elsewhere",
                    path.display(),
                    input.name()
                );
            }
        }
        if let (Some(a), Some(b)) = (write_failed, summary_json)
            && same_file(a, b)
        {
            bail!(
                "--write-failed and --summary-json name the same file ({}): give each its own",
                a.display()
            );
        }
        if let Some(dir) = output_dir {
            check_dir(dir)?;
        }
        Ok(Outputs {
            write_failed: write_failed
                .map(|p| create(p, "--write-failed").map(BufWriter::new))
                .transpose()?,
            summary_json: summary_json
                .map(|p| create(p, "--summary-json").map(|f| (p.to_owned(), f)))
                .transpose()?,
        })
    }

    /// Writes the `--summary-json` file, if asked for.
    pub fn write_summary(&mut self, report: &Report) -> Result<()> {
        let Some((path, file)) = &mut self.summary_json else {
            return Ok(());
        };
        let mut w = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut w, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(w))
            .and_then(|()| w.flush())
            .with_context(|| format!("--summary-json: writing {}", path.display()))
    }
}

/// Whether `a` and `b` are one file: the same path, or (when it exists)
/// the same file under two names.
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

fn create(path: &Path, flag: &str) -> Result<File> {
    File::create(path).with_context(|| format!("{flag}: cannot create {}", path.display()))
}

/// Creates `dir` if needed and checks that a file can be made in it.
fn check_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--output-dir: {} is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--output-dir: cannot create {}", dir.display()))?;
    // Removed when dropped.
    tempfile::Builder::new()
        .prefix(".fetchpool-check-")
        .tempfile_in(dir)
        .with_context(|| format!("--output-dir: cannot write in {}", dir.display()))?;
    Ok(())
}
