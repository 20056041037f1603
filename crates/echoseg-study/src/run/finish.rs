//! The last step of a study, the same for a study run whole and one merged from shards: the
//! manifest as it ran, how it was invoked, and what produced its numbers, written beside the
//! tables (which the engine has written by then).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::StudyError;
use crate::plan::manifest::{self, Manifest, ManifestError};
use crate::run::engine::StudySummary;
use crate::run::provenance::{BURN_VERSION, Provenance, cpu_seconds, git_revision, now_unix};
use crate::store::{StudyDir, read_json, write_atomic, write_json};

/// A manifest and the command-line overrides applied to it: what `merge` and `export` need to
/// load the manifest exactly as the study ran it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// The manifest file.
    pub manifest: PathBuf,
    /// `--set KEY=VALUE` overrides, in order.
    pub overrides: Vec<String>,
}

impl Invocation {
    /// The manifest, with the overrides applied and checked.
    pub fn load(&self) -> Result<Manifest, ManifestError> {
        manifest::load_with(&self.manifest, &self.overrides)
    }

    /// The invocation recorded in a study's folder (`invocation.json`).
    pub fn of_study(dir: &StudyDir) -> Result<Self, StudyError> {
        read_json(&dir.invocation())
    }

    /// Records it in the study's folder, with the manifest's path made absolute so that a
    /// later `merge` or `export` finds it from any working directory. Shards record it before
    /// they start: merge needs it whichever shard finishes last.
    pub fn record(&self, dir: &StudyDir) -> Result<(), StudyError> {
        std::fs::create_dir_all(dir.root()).map_err(|source| StudyError::Io { path: dir.root().to_path_buf(), source })?;
        let absolute = std::path::absolute(&self.manifest).unwrap_or_else(|_| self.manifest.clone());
        write_json(&dir.invocation(), &Self { manifest: absolute, overrides: self.overrides.clone() })
    }
}

/// How the process that finishes a study ran, for its provenance.
#[derive(Clone, Debug)]
pub struct Process<'a> {
    /// The command line.
    pub command: &'a str,
    /// The compute device's name.
    pub device: &'a str,
    /// Worker threads.
    pub threads: usize,
}

/// Writes the manifest copy, `invocation.json` and `provenance.json` of a study whose tables are
/// written (`summary` is what `run_study` or `merge_study` returned).
pub fn finish(
    manifest: &Manifest,
    dir: &StudyDir,
    invocation: &Invocation,
    summary: &StudySummary,
    process: &Process<'_>,
) -> Result<(), StudyError> {
    write_atomic(&dir.manifest_copy(), manifest.text.as_bytes())?;
    invocation.record(dir)?;
    let provenance = Provenance {
        echoseg_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: git_revision(),
        burn_version: BURN_VERSION.to_string(),
        device: process.device.to_string(),
        threads: process.threads,
        jobs: summary.jobs.jobs,
        threads_per_job: summary.jobs.threads_per_job,
        peak_memory_mib: echoseg_nets::peak_rss_mib(),
        command: process.command.to_string(),
        finished_unix: now_unix(),
        wall_seconds: summary.seconds,
        cpu_seconds: cpu_seconds(),
        runs_trained: summary.trained,
        runs_reused: summary.plan.runs.len() - summary.trained,
        seed: manifest.seed,
        architectures: manifest.networks.iter().map(|n| format!("{} (width {}, depth {})", n.name(), n.width, n.depth)).collect(),
        generations: manifest.study.generations,
        repeats: manifest.study.repeats,
    };
    write_json(&dir.provenance(), &provenance)
}
