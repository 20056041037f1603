//! Manifests: a `RawManifest` as written (serde, unknown keys rejected) becomes a [`Manifest`]
//! by [`validate`], which collects every problem at once, so a typo fails in milliseconds.

pub mod locate;
mod raw;
mod read;
#[cfg(test)]
mod tests;
mod validate;

use std::path::{Path, PathBuf};

use echoseg_agree::{Bias, VerdictRules};
use echoseg_nets::{Architecture, ByolConfig, DeviceChoice, EmaConfig, NetworkSpec, Pretrain, Settings, Tiling, TrainConfig, Valid};
use echoseg_scene::{ClassId, ClassTable, FolderSpec, HeuristicRules, LabelSource, ManualBias, Threshold, WorldConfig};
use serde::Serialize;

pub use raw::*;
pub use read::{load, load_with, parse};
pub use validate::validate;

pub use crate::plan::strategy::Strategy;
use crate::plan::strategy::{EVERY_LABEL, PseudoLabels};

use crate::plan::selection::{PseudoLabelDilation, Selection, SelectionRule, ShapeRule, VerifierRules};
use crate::plan::targets::Target;

/// A problem found while validating a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The dotted key (`train.epochs`, `sources[1].dilate`).
    pub key: String,
    /// The line where the key is written, when it is.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, a key is unknown or a value has the wrong type.
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Syntax {
        /// The manifest path.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key involved, when known.
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// A `--set key=value` override is malformed or names an unknown key.
    #[error("--set {setting}: {message}")]
    Override {
        /// The override as given.
        setting: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// `--jobs`, which stands in for the manifest's `jobs`, is out of range.
    #[error("--jobs {jobs}: {message}")]
    Jobs {
        /// The value given.
        jobs: usize,
        /// What is allowed.
        message: String,
    },
    /// Values parse but are not allowed.
    #[error("{}", format_problems(path, problems))]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn format_problems(path: &Path, problems: &[Problem]) -> String {
    let mut s = format!("{} has {} problem{}:", path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" });
    for p in problems {
        match p.line {
            Some(line) => s.push_str(&format!("\n  {}:{line}: `{}` {}", path.display(), p.key, p.message)),
            None => s.push_str(&format!("\n  {}: `{}` {}", path.display(), p.key, p.message)),
        }
    }
    s
}

/// Where a source's labels come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Labeller {
    /// A simulated labeller applied to the source's images.
    Simulated(LabelSource),
    /// A mask set of the folder dataset.
    Masks(String),
}

/// A validated label source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// Name in the report.
    pub name: String,
    /// The source kind as written.
    pub kind: SourceKind,
    /// Where its labels come from.
    pub labeller: Labeller,
    /// Images it labels, validation images included (`None` for a mask set: all its images).
    pub images: Option<usize>,
    /// Its weight when `folder.overlap = "assign"` draws an image's teacher (default 1).
    pub share: f32,
}

/// Validated `[split]`: the sizes with their defaults filled in, and how a folder's sources share images.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSpec {
    /// Share of the labelled images held out for validation.
    pub validation: f32,
    /// Test images.
    pub test: SplitSize,
    /// Unlabelled pool images.
    pub pool: SplitSize,
    /// How a folder dataset's sources share an image (`all` for the world, where sources never share one).
    pub overlap: Overlap,
}

/// A validated spurious cue.
#[derive(Clone, Debug, PartialEq)]
pub struct CueSpec {
    /// The class the tint goes with.
    pub class: ClassId,
    /// Indices of the sources whose images carry the correlation.
    pub sources: Vec<usize>,
    /// 1 = exactly the class's objects are tinted.
    pub strength: f32,
}

/// Where the images come from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    /// The procedural world.
    World(WorldConfig),
    /// A folder dataset.
    Folder(FolderSpec),
}

/// A validated manifest: everything a study needs, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file's text, copied into the report.
    pub text: String,
    /// Study name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// The device.
    pub device: DeviceChoice,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Runs trained at once (0 = one per worker thread).
    pub jobs: usize,
    /// The images.
    pub data: DataSpec,
    /// The classes, background first.
    pub classes: ClassTable,
    /// The label sources.
    pub sources: Vec<SourceSpec>,
    /// The spurious cue, if any.
    pub cue: Option<CueSpec>,
    /// Split sizes.
    pub split: SplitSpec,
    /// Synthetic-style test images (resolved from `split.synthetic_test`).
    pub synthetic_test: usize,
    /// One network per model (`unet`, `unet+byol`), in manifest order.
    pub networks: Vec<NetworkSpec>,
    /// Settings of BYOL pre-training, present (and checked) when a `+byol` model is listed.
    pub byol: Option<Valid<ByolConfig>>,
    /// Images per inference batch.
    pub inference_batch: usize,
    /// How images larger than `nets.inference_tile` are segmented.
    pub tiling: Tiling,
    /// Training settings.
    pub train: Valid<TrainConfig>,
    /// Generations, strategies and repeats (`study.ema` as written; the study uses [`Manifest::ema`]).
    pub study: StudySettings,
    /// Settings of the `ema` strategy, checked.
    pub ema: Valid<EmaConfig>,
    /// The selections of pseudo-labelled pixels, at least `all` (validated `study.selections`).
    pub selections: Vec<Selection>,
    /// How pseudo-labels are grown or shrunk per class before a student learns them (validated
    /// `study.dilate_pseudo_labels`).
    pub pseudo_label_dilation: PseudoLabelDilation,
    /// The pseudo-label modes, each its own chains, in manifest order without repeats
    /// (validated `study.pseudo_labels`).
    pub pseudo_labels: Vec<PseudoLabels>,
    /// Targets judged in the report.
    pub targets: Vec<Target>,
    /// Practical minimums of the verdicts (`[verdict]`).
    pub verdict: VerdictRules,
    /// The search for label issues (`[label_issues]`), when asked for.
    pub label_issues: Option<LabelIssueSettings>,
    /// Everything that decides the images and their labels, as stable text (part of every run id).
    pub data_key: String,
}

/// How label issues are searched for, checked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LabelIssueSettings {
    /// Folds of the labelled images, 2 to 10.
    pub folds: u32,
    /// Softmin temperature, > 0.
    pub temperature: f64,
    /// Worst images per source in the report.
    pub worst: usize,
    /// Whether the probabilities are also written as .npy files.
    pub export_probabilities: bool,
    /// Whether each source is also scored by networks trained on the other sources only.
    pub leave_source_out: bool,
}

impl Manifest {
    /// The inference tile as run ids hold it: only when it is not the default, whose ids predate it.
    pub fn inference_tile_key(&self) -> Option<usize> {
        (self.tiling != Tiling::default()).then_some(self.tiling.side)
    }

    /// The world settings, when the study uses the procedural world.
    pub fn world(&self) -> Option<&WorldConfig> {
        match &self.data {
            DataSpec::World(w) => Some(w),
            DataSpec::Folder(_) => None,
        }
    }
}

struct Problems<'a> {
    text: &'a str,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = locate::line_of(self.text, &key).or_else(|| {
            // a table key (`[cue]`) or an inline table: point at its first line
            locate::assignments(self.text).into_iter().find(|a| a.path.starts_with(&format!("{key}."))).map(|a| a.line)
        });
        self.list.push(Problem { key, line, message: message.into() });
    }
}
