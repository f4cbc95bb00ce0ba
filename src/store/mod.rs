//! Bodies kept under `-o DIR`: safe file names and all-or-nothing writes
//! ([`save`]), and the validators `--update` keeps beside each file
//! ([`update`]).

pub mod save;
pub mod update;

use std::path::PathBuf;

/// What becomes of each body besides being counted: hashed, saved, kept
/// up to date.
#[derive(Debug, Clone, Default)]
pub struct StoreConfig {
    /// `--sha256`: hash every body.
    pub sha256: bool,
    /// `-o DIR`: save bodies here.
    pub dir: Option<PathBuf>,
    /// `--update`: ask whether saved files changed, with their validators.
    pub update: bool,
}
