//! Bodies kept under `-o DIR`: how a URL is named ([`names`]), safe file
//! names and all-or-nothing writes ([`save`]), the validators `--update`
//! keeps beside each file ([`update`]), and the part files of cut
//! downloads ([`resume`]).

pub mod names;
pub mod resume;
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
    /// `--names`: how saved files are named under `dir`.
    pub names: names::Layout,
    /// `--continue`: resume part files left by earlier runs.
    pub resume: bool,
}

impl StoreConfig {
    /// The path under `dir` that the body of the URL `text` (requested as
    /// `uri`) is saved as: the `repeat`-th name of its URL in the
    /// `--names` layout; `None` without `-o`.
    pub fn save_name(&self, text: &str, uri: &http::Uri, repeat: u32) -> Option<String> {
        self.dir.as_ref()?;
        Some(names::relative_name(self.names, text, uri, repeat))
    }
}
