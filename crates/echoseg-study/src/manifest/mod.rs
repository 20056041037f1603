//! Manifests: a `RawManifest` as written (serde, unknown keys rejected) becomes a [`Manifest`]
//! by [`validate`], which collects every problem at once, so a typo fails in milliseconds.

pub mod locate;

use std::path::{Path, PathBuf};

use echoseg_nets::{Architecture, DeviceChoice, NetworkSpec, TrainConfig};
use echoseg_scene::{HeuristicRules, LabelSource, ManualBias, Threshold, WorldConfig};
use serde::{Deserialize, Serialize};

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

/// The kind of a label source, as written in `[[sources]] kind = ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The exact truth.
    Exact,
    /// A simulated human annotator.
    Manual,
    /// A classic image-processing pipeline.
    Heuristic,
}

/// A `[[sources]]` table as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Name in the report (defaults to the kind).
    pub name: Option<String>,
    /// The source kind.
    pub kind: Option<SourceKind>,
    /// How many training images this source labels.
    pub images: Option<usize>,
    /// manual: boundary offset in px (+ dilates, − erodes).
    pub dilate: Option<f32>,
    /// manual: objects smaller than this many pixels are missed.
    pub miss_small_below: Option<u32>,
    /// manual: thin structures are not labelled.
    pub skip_thin: Option<bool>,
    /// manual: share of objects given a wrong class.
    pub class_slip: Option<f32>,
    /// manual: `[from, to]` class names of a fixed confusion.
    pub confusion: Option<Vec<String>>,
    /// heuristic: a fixed grey threshold in [0, 1] (default: Otsu per image).
    pub threshold: Option<f32>,
    /// heuristic: with Otsu, the least grey-mode separation to label anything.
    pub min_separation: Option<f32>,
    /// heuristic: opening radius in px.
    pub opening: Option<f32>,
    /// heuristic: smallest component kept, in pixels.
    pub min_area: Option<u32>,
    /// heuristic: components thinner than this are `thin`.
    pub thin_below: Option<f32>,
    /// heuristic: components filling this share of their box are `box`.
    pub box_fill_above: Option<f32>,
}

/// `[split]` as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Split {
    /// Share of each source's images held out for validation (labelled by the same source).
    pub validation: f32,
    /// Test images, scored against exact truth.
    pub test: usize,
    /// Unlabelled pool images that later generations pseudo-label.
    pub pool: usize,
}

impl Default for Split {
    fn default() -> Self {
        Self { validation: 0.2, test: 48, pool: 96 }
    }
}

/// Per-architecture size overrides (`[nets.unet]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchitectureShape {
    /// Channels of the first level.
    pub width: Option<usize>,
    /// Levels or blocks.
    pub depth: Option<usize>,
}

/// `[nets]` as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawNets {
    /// The architectures to train, each on the same data.
    pub architectures: Vec<Architecture>,
    /// Size of the `unet`.
    pub unet: Option<ArchitectureShape>,
    /// Size of the `fcn`.
    pub fcn: Option<ArchitectureShape>,
    /// Images per inference batch.
    pub inference_batch: usize,
}

impl Default for RawNets {
    fn default() -> Self {
        Self { architectures: vec![Architecture::Unet, Architecture::Fcn], unet: None, fcn: None, inference_batch: 32 }
    }
}

impl RawNets {
    fn shape(&self, a: Architecture) -> Option<&ArchitectureShape> {
        match a {
            Architecture::Unet => self.unet.as_ref(),
            Architecture::Fcn => self.fcn.as_ref(),
        }
    }
}

/// Who teaches whom in generations after the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// A model learns from its own outputs.
    #[serde(rename = "self")]
    SelfTraining,
    /// A model learns from another architecture's outputs.
    Cross,
}

impl Strategy {
    /// The manifest and report name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SelfTraining => "self",
            Strategy::Cross => "cross",
        }
    }
}

/// Whether pseudo-labels replace the original labels or are added to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PseudoLabels {
    /// Train on the pool's pseudo-labels only.
    #[default]
    Replace,
    /// Train on the original labelled images plus the pool's pseudo-labels.
    Accumulate,
}

/// `[study]` as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudySettings {
    /// Pseudo-labelling generations after generation 0.
    pub generations: u32,
    /// Strategies run in every generation after the first.
    pub strategies: Vec<Strategy>,
    /// Repeats of every configuration with different seeds.
    pub repeats: u32,
    /// Replace or accumulate.
    pub pseudo_labels: PseudoLabels,
}

impl Default for StudySettings {
    fn default() -> Self {
        Self { generations: 1, strategies: vec![Strategy::SelfTraining, Strategy::Cross], repeats: 1, pseudo_labels: PseudoLabels::Replace }
    }
}

/// A manifest as written in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// Study name: the report goes to `reports/NAME/` (default: the file name).
    pub name: Option<String>,
    /// The seed every random generator derives from.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `flex` (CPU) or `wgpu` (GPU).
    #[serde(default)]
    pub device: DeviceChoice,
    /// Worker threads (0 = one per core).
    #[serde(default)]
    pub threads: usize,
    /// The procedural world.
    #[serde(default)]
    pub world: WorldConfig,
    /// The label sources and how many images each labels.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// Validation, test and pool sizes.
    #[serde(default)]
    pub split: Split,
    /// Architectures and their sizes.
    #[serde(default)]
    pub nets: RawNets,
    /// Training settings shared by every run.
    #[serde(default)]
    pub train: TrainConfig,
    /// Generations, strategies and repeats.
    #[serde(default)]
    pub study: StudySettings,
}

fn default_seed() -> u64 {
    1
}

/// A validated label source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// Name in the report.
    pub name: String,
    /// The labeller.
    pub source: LabelSource,
    /// Training images it labels (validation images come on top).
    pub images: usize,
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
    /// The world.
    pub world: WorldConfig,
    /// The label sources.
    pub sources: Vec<SourceSpec>,
    /// Split sizes.
    pub split: Split,
    /// One network per architecture, in manifest order.
    pub networks: Vec<NetworkSpec>,
    /// Images per inference batch.
    pub inference_batch: usize,
    /// Training settings.
    pub train: TrainConfig,
    /// Generations, strategies and repeats.
    pub study: StudySettings,
}

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

/// Parses and validates manifest `text`; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = locate::line_column(text, offset);
        let key = e.span().and_then(|_| locate::assignment_at(text, offset)).map(|a| a.path);
        ManifestError::Syntax { path: path.to_path_buf(), line, column, key, message: e.message().trim().to_string() }
    })?;
    validate(path, text, raw)
}

/// Checks every value of `raw`, collecting all problems before failing.
pub fn validate(path: &Path, text: &str, raw: RawManifest) -> Result<Manifest, ManifestError> {
    let mut problems = Vec::new();
    let mut problem = |key: String, message: String| {
        let line = locate::line_of(text, &key);
        problems.push(Problem { key, line, message });
    };

    let name =
        raw.name.clone().unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "study".into()));
    if let Some(msg) = name_problem(&name) {
        problem("name".into(), msg);
    }
    for (key, msg) in raw.world.problems() {
        problem(format!("world.{key}"), msg);
    }
    for (key, msg) in raw.train.problems() {
        problem(format!("train.{key}"), msg);
    }

    let class_names = raw.world.class_names();
    let mut sources = Vec::new();
    if raw.sources.is_empty() {
        problem("sources".into(), "needs at least one [[sources]] table (kind = \"exact\", \"manual\" or \"heuristic\")".into());
    }
    for (i, s) in raw.sources.iter().enumerate() {
        let at = |k: &str| format!("sources[{i}].{k}");
        let Some(kind) = s.kind else {
            problem(at("kind"), "is missing; allowed: \"exact\", \"manual\", \"heuristic\"".into());
            continue;
        };
        let images = s.images.unwrap_or(0);
        if images < 2 {
            problem(at("images"), format!("must be at least 2 (training plus validation images), got {images}"));
        }
        let manual_keys = [
            ("dilate", s.dilate.is_some()),
            ("miss_small_below", s.miss_small_below.is_some()),
            ("skip_thin", s.skip_thin.is_some()),
            ("class_slip", s.class_slip.is_some()),
            ("confusion", s.confusion.is_some()),
        ];
        let heuristic_keys = [
            ("threshold", s.threshold.is_some()),
            ("min_separation", s.min_separation.is_some()),
            ("opening", s.opening.is_some()),
            ("min_area", s.min_area.is_some()),
            ("thin_below", s.thin_below.is_some()),
            ("box_fill_above", s.box_fill_above.is_some()),
        ];
        let kind_name = match kind {
            SourceKind::Exact => "exact",
            SourceKind::Manual => "manual",
            SourceKind::Heuristic => "heuristic",
        };
        for (key, set) in manual_keys {
            if set && kind != SourceKind::Manual {
                problem(at(key), format!("applies only to kind = \"manual\", not \"{kind_name}\""));
            }
        }
        for (key, set) in heuristic_keys {
            if set && kind != SourceKind::Heuristic {
                problem(at(key), format!("applies only to kind = \"heuristic\", not \"{kind_name}\""));
            }
        }
        let source = match kind {
            SourceKind::Exact => LabelSource::Exact,
            SourceKind::Manual => {
                let dilate = s.dilate.unwrap_or(0.0);
                if dilate.abs() > 8.0 {
                    problem(at("dilate"), format!("must lie in [-8, 8] px, got {dilate}"));
                }
                let class_slip = s.class_slip.unwrap_or(0.0);
                if !(0.0..=1.0).contains(&class_slip) {
                    problem(at("class_slip"), format!("is a share in [0, 1], got {class_slip}"));
                }
                let confusion = match s.confusion.as_deref() {
                    None => None,
                    Some([from, to]) => {
                        let index = |n: &str| class_names.iter().position(|c| c == n).filter(|&p| p > 0);
                        match (index(from), index(to)) {
                            (Some(f), Some(t)) if f != t => Some((f as u8, t as u8)),
                            _ => {
                                problem(
                                    at("confusion"),
                                    format!("must name two different object classes of the world ({})", class_names[1..].join(", ")),
                                );
                                None
                            }
                        }
                    }
                    Some(_) => {
                        problem(at("confusion"), "must be [\"from\", \"to\"], two class names".into());
                        None
                    }
                };
                LabelSource::Manual(ManualBias {
                    dilate,
                    miss_small_below: s.miss_small_below.unwrap_or(0),
                    skip_thin: s.skip_thin.unwrap_or(false),
                    class_slip,
                    confusion,
                })
            }
            SourceKind::Heuristic => {
                let d = HeuristicRules::default();
                let threshold = match s.threshold {
                    Some(t) if !(0.0..=1.0).contains(&t) => {
                        problem(at("threshold"), format!("is a grey level in [0, 1], got {t}"));
                        Threshold::Otsu
                    }
                    Some(t) => Threshold::Fixed(t),
                    None => Threshold::Otsu,
                };
                LabelSource::Heuristic(HeuristicRules {
                    threshold,
                    min_separation: s.min_separation.unwrap_or(d.min_separation),
                    opening: s.opening.unwrap_or(d.opening),
                    min_area: s.min_area.unwrap_or(d.min_area),
                    thin_below: s.thin_below.unwrap_or(d.thin_below),
                    box_fill_above: s.box_fill_above.unwrap_or(d.box_fill_above),
                })
            }
        };
        let source_name = s.name.clone().unwrap_or_else(|| kind_name.to_string());
        if let Some(msg) = name_problem(&source_name) {
            problem(at("name"), msg);
        }
        if sources.iter().any(|o: &SourceSpec| o.name == source_name) {
            problem(at("name"), format!("\"{source_name}\" is used by two sources; give each a distinct name"));
        }
        sources.push(SourceSpec { name: source_name, source, images });
    }

    if !(0.0..0.9).contains(&raw.split.validation) {
        problem("split.validation".into(), format!("is a share in [0, 0.9), got {}", raw.split.validation));
    }
    if raw.split.test == 0 {
        problem("split.test".into(), "must be at least 1 image".into());
    }
    if raw.study.generations > 0 && raw.split.pool == 0 {
        problem("split.pool".into(), "must be at least 1 image when study.generations > 0".into());
    }

    let mut networks = Vec::new();
    if raw.nets.architectures.is_empty() {
        problem("nets.architectures".into(), "needs at least one of \"unet\", \"fcn\"".into());
    }
    for (i, &a) in raw.nets.architectures.iter().enumerate() {
        if raw.nets.architectures[..i].contains(&a) {
            problem("nets.architectures".into(), format!("lists \"{a}\" twice"));
            continue;
        }
        let (w, d) = a.default_shape();
        let shape = raw.nets.shape(a);
        let spec = NetworkSpec {
            architecture: a,
            width: shape.and_then(|s| s.width).unwrap_or(w),
            depth: shape.and_then(|s| s.depth).unwrap_or(d),
            inputs: 3,
            classes: raw.world.num_classes(),
        };
        for (key, msg) in spec.problems() {
            problem(format!("nets.{a}.{key}"), msg);
        }
        networks.push(spec);
    }
    if raw.nets.inference_batch == 0 {
        problem("nets.inference_batch".into(), "must be at least 1".into());
    }

    if raw.study.generations > 0 && raw.study.strategies.is_empty() {
        problem("study.strategies".into(), "needs at least one of \"self\", \"cross\" when study.generations > 0".into());
    }
    if raw.study.strategies.contains(&Strategy::Cross) && networks.len() < 2 {
        problem("study.strategies".into(), "\"cross\" needs at least two architectures in nets.architectures".into());
    }
    if raw.study.generations > 10 {
        problem("study.generations".into(), format!("must be at most 10, got {}", raw.study.generations));
    }
    if !(1..=100).contains(&raw.study.repeats) {
        problem("study.repeats".into(), format!("must be between 1 and 100, got {}", raw.study.repeats));
    }

    if !problems.is_empty() {
        return Err(ManifestError::Invalid { path: path.to_path_buf(), problems });
    }
    Ok(Manifest {
        path: path.to_path_buf(),
        text: text.to_string(),
        name,
        seed: raw.seed,
        device: raw.device,
        threads: raw.threads,
        world: raw.world,
        sources,
        split: raw.split,
        networks,
        inference_batch: raw.nets.inference_batch,
        train: raw.train,
        study: raw.study,
    })
}

/// Names become directory names: no separators, no leading dot, nothing invisible.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 100 {
        return Some(format!("must be 1 to 100 characters, got {}", name.len()));
    }
    if name.starts_with('.') || name.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Some(format!("\"{}\" may not start with '.' or contain '/', '\\' or control characters", name.escape_debug()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[[sources]]
kind = "manual"
images = 10
dilate = 1

[[sources]]
kind = "heuristic"
images = 10
"#;

    #[test]
    fn a_good_manifest_validates_with_defaults() {
        let m = parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!(m.sources.len(), 2);
        assert_eq!(m.sources[0].name, "manual");
        assert_eq!(m.networks.len(), 2);
        assert_eq!(m.train, TrainConfig::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = format!("{GOOD}\n[train]\nepochz = 3\n");
        let err = parse(Path::new("x/t.toml"), &text).unwrap_err();
        let msg = err.to_string();
        let line = text.lines().position(|l| l.starts_with("epochz")).unwrap() + 1;
        assert!(msg.starts_with(&format!("x/t.toml:{line}:1: key `train.epochz`: unknown field `epochz`")), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = GOOD.replace("dilate = 1", "dilate = \"one\"");
        let msg = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
        assert!(msg.contains("t.toml:6:") && msg.contains("key `sources[0].dilate`") && msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn all_semantic_problems_are_reported_at_once() {
        let text = GOOD.replace("images = 10\ndilate = 1", "images = 1\ndilate = 1\nthreshold = 0.4") + "[train]\nepochs = 0\n";
        let err = parse(Path::new("t.toml"), &text).unwrap_err();
        let ManifestError::Invalid { problems, .. } = &err else { panic!("{err}") };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["train.epochs", "sources[0].images", "sources[0].threshold"]);
        assert_eq!(problems[2].line, Some(7));
    }
}
