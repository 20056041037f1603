//! Errors of the study engine.

use std::path::PathBuf;

use crate::plan::manifest::ManifestError;

/// Everything that can stop a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A folder dataset has bad files.
    #[error(transparent)]
    Data(echoseg_scene::FolderError),
    /// A source could not label an image.
    #[error(transparent)]
    Source(echoseg_scene::SourceError),
    /// The settings cannot work together with the data.
    #[error("{0}")]
    Config(String),
    /// Merging found runs that no shard has finished.
    #[error("{} run(s) of the study are not finished in {}: {}; run the missing shards (with --resume) first", missing.len(), runs.display(), missing.join(", "))]
    Incomplete {
        /// The run store.
        runs: PathBuf,
        /// Ids of the unfinished runs.
        missing: Vec<String>,
    },
    /// A network could not be built, trained or run.
    #[error("run {run}: {source}")]
    Nets {
        /// The run that failed.
        run: String,
        /// The cause.
        source: echoseg_nets::NetsError,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file has unexpected content.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A results table could not be built or written.
    #[error("results table {}: {message}", path.display())]
    Table {
        /// The table file.
        path: PathBuf,
        /// The polars error.
        message: String,
    },
    /// A results table names a strategy, metric, bias or verdict echoseg does not know.
    #[error("results table {}: unknown {what} `{name}`", path.display())]
    UnknownName {
        /// The table file.
        path: PathBuf,
        /// What kind of name (`strategy`, `metric`, …).
        what: &'static str,
        /// The name as written.
        name: String,
    },
}
