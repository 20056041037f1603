//! Manifests: a `RawManifest` as written (serde, unknown keys rejected) becomes a [`Manifest`]
//! by [`validate`], which collects every problem at once, so a typo fails in milliseconds.

pub mod locate;
mod raw;

use std::path::{Path, PathBuf};

use echoseg_agree::{Bias, VerdictRules};
use echoseg_nets::{Architecture, ByolConfig, DeviceChoice, EmaConfig, NetworkSpec, Pretrain, Settings, Tiling, TrainConfig, Valid};
use echoseg_scene::{ClassId, ClassTable, FolderSpec, HeuristicRules, LabelSource, ManualBias, Threshold, WorldConfig};
use serde::Serialize;

pub use raw::*;

use crate::strategy::EVERY_LABEL;
pub use crate::strategy::Strategy;

use crate::selection::{PseudoLabelDilation, Selection, SelectionRule, ShapeRule, VerifierRules};
use crate::targets::Target;

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

/// `[label_issues]`, with its defaults filled in.
fn label_issue_settings(raw: Option<&RawLabelIssues>, sources: usize, p: &mut Problems<'_>) -> Option<LabelIssueSettings> {
    let raw = raw?;
    let settings = LabelIssueSettings {
        folds: raw.folds.unwrap_or(2),
        temperature: raw.temperature.unwrap_or(0.1),
        worst: raw.worst.unwrap_or(4),
        export_probabilities: raw.export_probabilities.unwrap_or(false),
        leave_source_out: raw.leave_source_out.unwrap_or(false),
    };
    if !(2..=10).contains(&settings.folds) {
        p.add(
            "label_issues.folds",
            format!("must be between 2 and 10 (each fold is scored by networks trained on the others), got {}", settings.folds),
        );
    }
    if !(settings.temperature.is_finite() && settings.temperature > 0.0) {
        p.add("label_issues.temperature", format!("must be a number > 0 (cleanlab's default is 0.1), got {}", settings.temperature));
    }
    if settings.worst > 50 {
        p.add("label_issues.worst", format!("must be at most 50 images per source, got {}", settings.worst));
    }
    if settings.leave_source_out && sources < 2 {
        p.add(
            "label_issues.leave_source_out",
            format!("needs at least two label sources (each is scored by networks trained on the others), the manifest has {sources}"),
        );
    }
    Some(settings)
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

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    load_with(path, &[])
}

/// Reads the manifest at `path`, applies command-line overrides such as `train.epochs=4` (the
/// value is TOML: `4`, `0.5`, `true`, `["unet", "fcn"]`; anything else is taken as a string),
/// and validates the result.
pub fn load_with(path: &Path, overrides: &[String]) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_path_buf(), source })?;
    if overrides.is_empty() {
        return parse(path, &text);
    }
    // A syntax error in the file itself is reported against the file.
    let mut table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(_) => return parse(path, &text),
    };
    let mut keys = Vec::new();
    for setting in overrides {
        keys.push(apply_override(&mut table, setting)?);
    }
    let effective =
        toml::to_string(&table).map_err(|e| ManifestError::Override { setting: overrides.join(" "), message: e.to_string() })?;
    let raw: RawManifest = toml::from_str(&effective).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let key = locate::assignment_at(&effective, offset).map(|a| a.path);
        let blamed = key.as_ref().and_then(|k| keys.iter().position(|o| k == o || k.starts_with(&format!("{o}."))));
        match blamed {
            Some(i) => ManifestError::Override { setting: overrides[i].clone(), message: e.message().trim().to_string() },
            None => {
                let (line, column) = locate::line_column(&effective, offset);
                ManifestError::Syntax { path: path.to_path_buf(), line, column, key, message: e.message().trim().to_string() }
            }
        }
    })?;
    let mut manifest = validate(path, &text, raw)?;
    // The report's copy of the manifest must be what actually ran.
    let header: String = overrides.iter().map(|o| format!("#   --set {o}\n")).collect();
    manifest.text = format!("# {} with these command-line overrides applied:\n{header}\n{effective}", path.display());
    Ok(manifest)
}

/// Applies one `key.path=value` override to `table`; returns the key path.
fn apply_override(table: &mut toml::Table, setting: &str) -> Result<String, ManifestError> {
    let fail = |message: String| ManifestError::Override { setting: setting.to_string(), message };
    let (key, value) = setting.split_once('=').ok_or_else(|| fail("expected KEY=VALUE, for example train.epochs=4".into()))?;
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(fail(format!("`{key}` is not a key path such as train.epochs")));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {}", value.trim())) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.trim().to_string())),
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    let (last, parents) = parts.split_last().ok_or_else(|| fail("empty key".into()))?;
    let mut node = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = node.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(fail(format!("`{}` is not a section, so `{key}` cannot be set", parts[..=depth].join(".")))),
        };
    }
    node.insert(last.to_string(), value);
    Ok(key.to_string())
}

/// Parses and validates manifest `text`; `path` names it in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = locate::line_column(text, offset);
        let key = e.span().and_then(|_| locate::assignment_at(text, offset)).map(|a| a.path);
        ManifestError::Syntax { path: path.to_path_buf(), line, column, key, message: e.message().trim().to_string() }
    })?;
    validate(path, text, raw)
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

fn source_spec(i: usize, s: &RawSource, classes: &ClassTable, folder: bool, p: &mut Problems<'_>) -> Option<SourceSpec> {
    let at = |k: &str| format!("sources[{i}].{k}");
    let Some(kind) = s.kind else {
        p.add(at("kind"), format!("is missing; allowed: {}", quoted(&SourceKind::ALL.map(SourceKind::name))));
        return None;
    };
    let kind_name = kind.name();
    let only = |keys: &[(&str, bool)], allowed: SourceKind, p: &mut Problems<'_>| {
        for (key, set) in keys {
            if *set && kind != allowed {
                p.add(at(key), format!("applies only to kind = \"{}\", not \"{kind_name}\"", allowed.name()));
            }
        }
    };
    only(
        &[
            ("dilate", s.dilate.is_some()),
            ("jitter", s.jitter.is_some()),
            ("simplify", s.simplify.is_some()),
            ("miss_small_below", s.miss_small_below.is_some()),
            ("skip_thin", s.skip_thin.is_some()),
            ("class_slip", s.class_slip.is_some()),
            ("confusion", s.confusion.is_some()),
        ],
        SourceKind::Manual,
        p,
    );
    only(
        &[
            ("threshold", s.threshold.is_some()),
            ("min_separation", s.min_separation.is_some()),
            ("opening", s.opening.is_some()),
            ("closing", s.closing.is_some()),
            ("min_area", s.min_area.is_some()),
            ("thin_below", s.thin_below.is_some()),
            ("box_fill_above", s.box_fill_above.is_some()),
        ],
        SourceKind::Heuristic,
        p,
    );
    only(&[("masks", s.masks.is_some())], SourceKind::Folder, p);
    // A folder source is named after its mask set unless it has a name of its own.
    let name = s.name.clone().or_else(|| s.masks.clone()).unwrap_or_else(|| kind_name.to_string());
    if let Some(msg) = name_problem(&name) {
        p.add(at("name"), msg);
    }
    match (kind, s.images) {
        (SourceKind::Folder, Some(_)) => p.add(
            at("images"),
            "applies to simulated sources; a folder source labels every image its mask set covers, and the study draws the split ([split] test, pool, validation)",
        ),
        (SourceKind::Folder, None) => {}
        // On a folder dataset a simulated source labels every training image it can unless capped.
        (_, None) if folder => {}
        (_, images) if images.unwrap_or(0) < 2 => {
            p.add(at("images"), format!("must be at least 2 (training plus validation images), got {}", images.unwrap_or(0)))
        }
        _ => {}
    }
    let px = |p: &mut Problems<'_>, key: &str, value: Option<f32>, lo: f32, hi: f32| {
        let v = value.unwrap_or(0.0);
        if !(lo..=hi).contains(&v) {
            p.add(at(key), format!("must lie in [{lo}, {hi}], got {v}"));
        }
        v
    };
    let labeller = match kind {
        SourceKind::Exact => Labeller::Simulated(LabelSource::Exact),
        SourceKind::Synthetic => Labeller::Simulated(LabelSource::Synthetic),
        SourceKind::Folder => Labeller::Masks(s.masks.clone().unwrap_or_else(|| name.clone())),
        SourceKind::Manual => {
            let dilate = px(p, "dilate", s.dilate, -8.0, 8.0);
            let jitter = px(p, "jitter", s.jitter, 0.0, 8.0);
            let simplify = px(p, "simplify", s.simplify, 0.0, 16.0);
            let class_slip = px(p, "class_slip", s.class_slip, 0.0, 1.0);
            let confusion = match s.confusion.as_deref() {
                None => None,
                Some([from, to]) => match (classes.index_of(from).filter(|&c| c > 0), classes.index_of(to).filter(|&c| c > 0)) {
                    (Some(f), Some(t)) if f != t => Some((f, t)),
                    _ => {
                        p.add(at("confusion"), format!("must name two different object classes ({})", classes.names()[1..].join(", ")));
                        None
                    }
                },
                Some(_) => {
                    p.add(at("confusion"), "must be [\"from\", \"to\"], two class names");
                    None
                }
            };
            Labeller::Simulated(LabelSource::Manual(ManualBias {
                dilate,
                jitter,
                simplify,
                miss_small_below: s.miss_small_below.unwrap_or(0),
                skip_thin: s.skip_thin.unwrap_or(false),
                class_slip,
                confusion,
            }))
        }
        SourceKind::Heuristic => {
            let d = HeuristicRules::default();
            let threshold = match s.threshold {
                Some(t) if !(0.0..=1.0).contains(&t) => {
                    p.add(at("threshold"), format!("is a grey level in [0, 1], got {t}"));
                    Threshold::Otsu
                }
                Some(t) => Threshold::Fixed(t),
                None => Threshold::Otsu,
            };
            let opening = px(p, "opening", s.opening, 0.0, 8.0);
            let closing = px(p, "closing", s.closing, 0.0, 8.0);
            Labeller::Simulated(LabelSource::Heuristic(HeuristicRules {
                threshold,
                min_separation: s.min_separation.unwrap_or(d.min_separation),
                opening,
                closing,
                min_area: s.min_area.unwrap_or(d.min_area),
                thin_below: s.thin_below.unwrap_or(d.thin_below),
                box_fill_above: s.box_fill_above.unwrap_or(d.box_fill_above),
            }))
        }
    };
    let share = s.share.unwrap_or(1.0);
    if !(share.is_finite() && share > 0.0) {
        p.add(at("share"), format!("is a weight > 0, got {share}"));
    }
    Some(SourceSpec { name, kind, labeller, images: s.images, share })
}

/// What is wrong with `jobs` runs at once, if anything.
fn jobs_problem(jobs: usize) -> Option<String> {
    const MOST_JOBS: usize = 1024;
    (jobs > MOST_JOBS).then(|| format!("must be between 0 (one per worker thread) and {MOST_JOBS}, got {jobs}"))
}

impl Manifest {
    /// The manifest with `jobs` runs trained at once (`--jobs`), checked as its `jobs` key is;
    /// the manifest's copy is left as written, since jobs change no result.
    pub fn with_jobs(mut self, jobs: usize) -> Result<Self, ManifestError> {
        if let Some(message) = jobs_problem(jobs) {
            return Err(ManifestError::Jobs { jobs, message });
        }
        self.jobs = jobs;
        Ok(self)
    }
}

/// Checks every value of `raw`, collecting all problems before failing.
pub fn validate(path: &Path, text: &str, raw: RawManifest) -> Result<Manifest, ManifestError> {
    let mut p = Problems { text, list: Vec::new() };
    // Sections in the order their problems are listed; later ones are checked against earlier ones.
    let name = study_name(path, &raw, &mut p);
    if let Some(problem) = jobs_problem(raw.jobs) {
        p.add("jobs", problem);
    }
    let (data, classes) = data_spec(path, &raw, &mut p);
    let train = checked(raw.train.clone(), "train", &mut p);
    let sources = source_specs(&raw.sources, &data, &classes, &mut p);
    let cue = cue_spec(raw.cue.as_ref(), &data, &classes, &sources, &mut p);
    let (split, synthetic_test) = split_spec(&raw, &data, &sources, &mut p);
    let (networks, byol) = network_specs(&raw, &classes, &mut p);
    let selections = study_problems(&raw.study, &networks, &classes, &mut p);
    let pseudo_label_dilation = pseudo_label_dilation(&raw.study, &classes, &mut p);
    let ema = checked(raw.study.ema.clone(), "study.ema", &mut p);
    let targets = targets(&raw.targets, &mut p);
    let verdict = verdict_rules(&raw.verdict, &mut p);
    let label_issues = label_issue_settings(raw.label_issues.as_ref(), sources.len(), &mut p);

    // Settings that failed their check are None, and their problems are in the list.
    let (Some(train), Some(ema), true) = (train, ema, p.list.is_empty()) else {
        return Err(ManifestError::Invalid { path: path.to_path_buf(), problems: p.list });
    };
    let data_key = data_key(&raw, &data);
    Ok(Manifest {
        path: path.to_path_buf(),
        text: text.to_string(),
        name,
        seed: raw.seed,
        device: raw.device,
        threads: raw.threads,
        jobs: raw.jobs,
        data,
        classes,
        sources,
        cue,
        split,
        synthetic_test,
        networks,
        inference_batch: raw.nets.inference_batch,
        tiling: Tiling::with_side(raw.nets.inference_tile),
        byol,
        train,
        study: raw.study,
        ema,
        selections,
        pseudo_label_dilation,
        targets,
        verdict,
        label_issues,
        data_key,
    })
}

/// The `[verdict]` table as rules; a minimum must be a finite number ≥ 0.
fn verdict_rules(raw: &RawVerdict, p: &mut Problems<'_>) -> VerdictRules {
    let mut rules = VerdictRules::default();
    for bias in Bias::ALL {
        let Some(minimum) = raw.written(bias) else { continue };
        if minimum.is_finite() && minimum >= 0.0 {
            rules.minimum.insert(bias, minimum);
        } else {
            p.add(
                format!("verdict.{}", bias.name()),
                format!("must be a number ≥ 0 (the smallest change called a direction), got {minimum}"),
            );
        }
    }
    rules
}

/// Names as a manifest writes them, `"a", "b", "c"`, for messages that say what is allowed.
fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// Like [`quoted`], the last two joined by "or": `"a", "b" or "c"`.
fn quoted_or(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or \"{last}\"", quoted(rest)),
        _ => quoted(names),
    }
}

/// `name`: the study's name, by default the manifest's file name.
fn study_name(path: &Path, raw: &RawManifest, p: &mut Problems<'_>) -> String {
    let name =
        raw.name.clone().unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "study".into()));
    if let Some(msg) = name_problem(&name) {
        p.add("name", msg);
    }
    name
}

/// `[world]` or `[folder]`: where the images come from, and their classes.
fn data_spec(path: &Path, raw: &RawManifest, p: &mut Problems<'_>) -> (DataSpec, ClassTable) {
    match (&raw.world, &raw.folder) {
        (Some(_), Some(_)) => {
            p.add("folder", "and [world] exclude each other: a study uses either the procedural world or a folder dataset");
            (DataSpec::World(WorldConfig::default()), WorldConfig::default().class_table())
        }
        (_, Some(f)) => {
            if f.classes.len() < 2 {
                p.add("folder.classes", "needs the background and at least one object class");
            }
            if f.classes.len() > 255 {
                p.add("folder.classes", "may list at most 255 classes");
            }
            if let Some(c) = &f.colours
                && c.len() != f.classes.len()
            {
                p.add("folder.colours", format!("lists {} colours for {} classes; give one per class", c.len(), f.classes.len()));
            }
            let root = if f.path.is_absolute() { f.path.clone() } else { path.parent().unwrap_or(Path::new(".")).join(&f.path) };
            let required = raw
                .sources
                .iter()
                .filter(|s| s.kind == Some(SourceKind::Folder))
                .map(|s| s.masks.clone().or_else(|| s.name.clone()).unwrap_or_else(|| "folder".into()))
                .collect();
            let classes = ClassTable::new(f.classes.clone());
            let spec =
                FolderSpec { root, classes: classes.clone(), colours: f.colours.clone(), truth: f.truth.clone(), required_sets: required };
            (DataSpec::Folder(spec), classes)
        }
        (world, None) => {
            let world = world.clone().unwrap_or_default();
            for (key, msg) in world.problems() {
                p.add(format!("world.{key}"), msg);
            }
            let classes = world.class_table();
            (DataSpec::World(world), classes)
        }
    }
}

/// `settings` (`[train]`, `[nets.byol]`, `[study.ema]`) checked, or None with their problems
/// added under `prefix`.
fn checked<S: Settings>(settings: S, prefix: &str, p: &mut Problems<'_>) -> Option<Valid<S>> {
    settings.validate().map_err(|problems| problems.into_iter().for_each(|(key, msg)| p.add(format!("{prefix}.{key}"), msg))).ok()
}

/// `[[sources]]`: each source on its own, then against the others and the data.
fn source_specs(raw: &[RawSource], data: &DataSpec, classes: &ClassTable, p: &mut Problems<'_>) -> Vec<SourceSpec> {
    let mut sources: Vec<SourceSpec> = Vec::new();
    if raw.is_empty() {
        let kinds = quoted_or(&SourceKind::ALL.map(SourceKind::name));
        p.add("sources", format!("needs at least one [[sources]] table (kind = {kinds})"));
    }
    for (i, s) in raw.iter().enumerate() {
        let Some(spec) = source_spec(i, s, classes, matches!(data, DataSpec::Folder(_)), p) else { continue };
        if sources.iter().any(|o| o.name == spec.name) {
            p.add(format!("sources[{i}].name"), format!("\"{}\" is used by two sources; give each a distinct name", spec.name));
        }
        match (data, spec.kind) {
            (DataSpec::World(_), SourceKind::Folder) => p.add(format!("sources[{i}].kind"), "\"folder\" needs a [folder] dataset"),
            (DataSpec::Folder(_), SourceKind::Synthetic) => {
                p.add(format!("sources[{i}].kind"), "\"synthetic\" renders the procedural world and cannot label a folder dataset")
            }
            (DataSpec::Folder(f), SourceKind::Exact | SourceKind::Manual) if f.truth.is_none() => p.add(
                format!("sources[{i}].kind"),
                format!("\"{}\" simulates errors on the exact truth; set folder.truth to the mask set that holds it", spec.kind.name()),
            ),
            _ => {}
        }
        sources.push(spec);
    }
    sources
}

/// `[cue]`, against the classes and the source names.
fn cue_spec(raw: Option<&RawCue>, data: &DataSpec, classes: &ClassTable, sources: &[SourceSpec], p: &mut Problems<'_>) -> Option<CueSpec> {
    let c = raw?;
    if matches!(data, DataSpec::Folder(_)) {
        p.add("cue", "needs the procedural world: the tint is drawn when images are rendered");
        return None;
    }
    let class = classes.index_of(&c.class).filter(|&i| i > 0);
    if class.is_none() {
        p.add("cue.class", format!("\"{}\" is not an object class ({})", c.class, classes.names()[1..].join(", ")));
    }
    if !(0.0..=1.0).contains(&c.strength) {
        p.add("cue.strength", format!("is a probability in [0, 1], got {}", c.strength));
    }
    let mut idx = Vec::new();
    for n in &c.sources {
        match sources.iter().position(|s| &s.name == n) {
            Some(i) => idx.push(i),
            None => p.add(
                "cue.sources",
                format!("\"{n}\" is not a source name ({})", sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")),
            ),
        }
    }
    if c.sources.is_empty() {
        idx = (0..sources.len()).collect();
    }
    class.map(|class| CueSpec { class, sources: idx, strength: c.strength })
}

/// `[split]` with its defaults, which depend on where the images come from; also returns the
/// number of synthetic-style test images.
fn split_spec(raw: &RawManifest, data: &DataSpec, sources: &[SourceSpec], p: &mut Problems<'_>) -> (SplitSpec, usize) {
    let written = &raw.split;
    let validation = written.validation.unwrap_or(DEFAULT_VALIDATION);
    if !(0.0..0.9).contains(&validation) {
        p.add("split.validation", format!("is a share in [0, 0.9), got {validation}"));
    }
    let needs_pool = raw.study.generations > 0 || raw.nets.architectures.iter().any(|a| a.contains('+'));
    let (test, pool, overlap) = match data {
        DataSpec::World(_) => {
            for (key, size) in [("split.test", written.test), ("split.pool", written.pool)] {
                if let Some(SplitSize::Share(s)) = size {
                    p.add(key, format!("is a share ({s}), but the procedural world has no total to take it of; give a number of images"));
                }
            }
            (written.test.unwrap_or(WORLD_TEST), written.pool.unwrap_or(WORLD_POOL), Overlap::All)
        }
        DataSpec::Folder(_) => {
            let overlap = raw.folder.as_ref().and_then(|f| f.overlap).unwrap_or_default();
            (
                written.test.unwrap_or(FOLDER_TEST),
                written.pool.unwrap_or(if needs_pool { FOLDER_POOL } else { SplitSize::Count(0) }),
                overlap,
            )
        }
    };
    for (i, (s, spec)) in raw.sources.iter().zip(sources).enumerate() {
        if s.share.is_some() && overlap != Overlap::Assign {
            p.add(
                format!("sources[{i}].share"),
                format!("weighs {} when folder.overlap = \"assign\" draws an image's teacher; this study does not draw", spec.name),
            );
        }
    }
    if test.is_zero() {
        p.add("split.test", "must be at least 1 image");
    }
    if raw.study.generations > 0 && pool.is_zero() {
        p.add("split.pool", "must be at least 1 image when study.generations > 0");
    }
    let has_synthetic = sources.iter().any(|s| s.kind == SourceKind::Synthetic);
    let synthetic_test = match (written.synthetic_test, data) {
        (Some(n), DataSpec::Folder(_)) if n > 0 => {
            p.add("split.synthetic_test", "needs the procedural world");
            0
        }
        (Some(n), _) => n,
        (None, DataSpec::World(_)) if has_synthetic => test.count().unwrap_or(0),
        (None, _) => 0,
    };
    (SplitSpec { validation, test, pool, overlap }, synthetic_test)
}

/// `[nets]`: the models, their sizes, BYOL pre-training (checked when a model uses it) and inference.
fn network_specs(raw: &RawManifest, classes: &ClassTable, p: &mut Problems<'_>) -> (Vec<NetworkSpec>, Option<Valid<ByolConfig>>) {
    let mut networks: Vec<NetworkSpec> = Vec::new();
    let architectures: Vec<&str> = Architecture::ALL.iter().map(|a| a.name()).collect();
    if raw.nets.architectures.is_empty() {
        p.add("nets.architectures", format!("needs at least one of {}", quoted(&architectures)));
    }
    for written in &raw.nets.architectures {
        let Some((a, pretrain)) = model_name(written) else {
            p.add(
                "nets.architectures",
                format!(
                    "\"{written}\" is not a model: write an architecture ({}), optionally followed by +{} for pre-training",
                    architectures.join(", "),
                    Pretrain::ALL.map(|p| p.name()).join(" or +")
                ),
            );
            continue;
        };
        let (w, d) = a.default_shape();
        let shape = raw.nets.shape(a);
        let spec = NetworkSpec {
            architecture: a,
            width: shape.and_then(|s| s.width).unwrap_or(w),
            depth: shape.and_then(|s| s.depth).unwrap_or(d),
            inputs: 3,
            classes: classes.len(),
            pretrain,
        };
        if networks.iter().any(|n| n.name() == spec.name()) {
            p.add("nets.architectures", format!("lists \"{}\" twice", spec.name()));
            continue;
        }
        if !networks.iter().any(|n| n.architecture == a) {
            for (key, msg) in spec.problems() {
                p.add(format!("nets.{a}.{key}"), msg);
            }
        }
        networks.push(spec);
    }
    let mut byol = None;
    if networks.iter().any(|n| n.pretrain.is_some()) {
        byol = checked(raw.nets.byol.clone(), "nets.byol", p);
        if raw.split.pool.is_some_and(SplitSize::is_zero) {
            p.add("split.pool", "must be at least 1: BYOL pre-trains on the unlabelled pool");
        }
    }
    if raw.nets.inference_batch == 0 {
        p.add("nets.inference_batch", "must be at least 1");
    }
    if !(16..=4096).contains(&raw.nets.inference_tile) {
        p.add("nets.inference_tile", format!("must be between 16 and 4096 px, got {}", raw.nets.inference_tile));
    }
    (networks, byol)
}

/// `[study]`: strategies against the models, generations, repeats, mix and selections (`ema` is
/// checked into its settings apart); returns the validated selections.
fn study_problems(study: &StudySettings, networks: &[NetworkSpec], classes: &ClassTable, p: &mut Problems<'_>) -> Vec<Selection> {
    if study.generations > 0 && study.strategies.is_empty() {
        let strategies = quoted(&Strategy::ALL.map(Strategy::name));
        p.add("study.strategies", format!("needs at least one of {strategies} when study.generations > 0"));
    }
    for committee in [Strategy::Ensemble, Strategy::Consensus] {
        if study.strategies.contains(&committee) && networks.len() < 3 {
            p.add(
                "study.strategies",
                format!("\"{}\" needs at least three architectures in nets.architectures (two teachers per student)", committee.name()),
            );
        }
    }
    if study.strategies.contains(&Strategy::Cross) && networks.len() < 2 {
        p.add("study.strategies", format!("\"{}\" needs at least two architectures in nets.architectures", Strategy::Cross.name()));
    }
    if study.generations > 10 {
        p.add("study.generations", format!("must be at most 10, got {}", study.generations));
    }
    if !(1..=100).contains(&study.repeats) {
        p.add("study.repeats", format!("must be between 1 and 100, got {}", study.repeats));
    }
    if let Some(most) = study.max_repeats
        && !(study.repeats..=100).contains(&most)
    {
        p.add("study.max_repeats", format!("must lie between study.repeats ({}) and 100, got {most}", study.repeats));
    }
    if study.repeats_per_round == 0 {
        p.add("study.repeats_per_round", "must be at least 1 (seeds added per round)".to_string());
    }

    if !(0.0..=1.0).contains(&study.mix) {
        p.add(
            "study.mix",
            format!(
                "is the pseudo-labels' share of the loss weight in [0, 1] (1 = pseudo-labels only, 0 = the null arm: labels only), got {}",
                study.mix
            ),
        );
    }
    selections(&study.selections, classes, p)
}

/// `study.dilate_pseudo_labels`: object classes of the study, a finite non-zero number of px up to
/// 8, and pseudo-labels for it to act on (no `ema`, whose targets are made online, no null arm).
fn pseudo_label_dilation(study: &StudySettings, classes: &ClassTable, p: &mut Problems<'_>) -> PseudoLabelDilation {
    let mut by_class = Vec::new();
    for (name, &px) in &study.dilate_pseudo_labels {
        let at = format!("study.dilate_pseudo_labels.{name}");
        match classes.index_of(name).filter(|&c| c > 0) {
            None => p.add(at, format!("names no object class ({})", classes.names()[1..].join(", "))),
            Some(_) if !(px.is_finite() && px != 0.0 && px.abs() <= 8.0) => {
                p.add(at, format!("is the px the class grows (negative: shrinks), non-zero and at most 8 either way, got {px}"))
            }
            Some(class) => by_class.push((class, px)),
        }
    }
    if !study.dilate_pseudo_labels.is_empty() {
        if study.strategies.contains(&Strategy::Ema) {
            let why = "does not apply to the \"ema\" strategy, whose targets are made online; run it in a study of its own";
            p.add("study.dilate_pseudo_labels", why.to_string());
        }
        if study.mix == 0.0 {
            p.add("study.dilate_pseudo_labels", "needs pseudo-labels to act on: study.mix is 0 (the null arm)".to_string());
        }
    }
    PseudoLabelDilation { by_class }
}

/// `targets`.
fn targets(raw: &[String], p: &mut Problems<'_>) -> Vec<Target> {
    let mut targets = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        match Target::parse(t) {
            Ok(t) => targets.push(t),
            Err(e) => p.add(format!("targets[{i}]"), e),
        }
    }
    targets
}

/// Everything that decides the images and their labels, as stable text. The world's split is
/// written with its defaults filled in, as it was when they were plain numbers, so run ids of
/// world studies outlive the change.
fn data_key(raw: &RawManifest, data: &DataSpec) -> String {
    #[derive(Serialize)]
    struct DataKey<'a> {
        seed: u64,
        world: &'a Option<WorldConfig>,
        folder: &'a Option<RawFolder>,
        sources: &'a [RawSource],
        cue: &'a Option<RawCue>,
        split: &'a Split,
    }
    let mut split = raw.split.clone();
    if let DataSpec::World(_) = data {
        split.validation = split.validation.or(Some(DEFAULT_VALIDATION));
        split.test = split.test.or(Some(WORLD_TEST));
        split.pool = split.pool.or(Some(WORLD_POOL));
    }
    serde_json::to_string(&DataKey {
        seed: raw.seed,
        world: &raw.world,
        folder: &raw.folder,
        sources: &raw.sources,
        cue: &raw.cue,
        split: &split,
    })
    .unwrap_or_default()
}

/// An architecture and pre-training from a model name as written (`unet`, `unet+byol`).
fn model_name(written: &str) -> Option<(Architecture, Option<Pretrain>)> {
    let (architecture, pretrain) = match written.split_once('+') {
        Some((a, p)) => (a, Some(Pretrain::ALL.into_iter().find(|x| x.name() == p)?)),
        None => (written, None),
    };
    Some((Architecture::ALL.into_iter().find(|a| a.name() == architecture)?, pretrain))
}

/// Validates `study.selections`; none written means `all`.
fn selections(raw: &[RawSelection], classes: &ClassTable, p: &mut Problems<'_>) -> Vec<Selection> {
    if raw.is_empty() {
        return vec![Selection::all()];
    }
    let mut out: Vec<Selection> = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let at = |k: &str| format!("study.selections[{i}].{k}");
        let Some(kind) = s.kind else {
            p.add(at("kind"), format!("is missing; allowed: {}", quoted(&SelectionKind::ALL.map(SelectionKind::name))));
            continue;
        };
        let only = |key: &str, set: bool, allowed: SelectionKind, p: &mut Problems<'_>| {
            if set && kind != allowed {
                p.add(at(key), format!("applies only to kind = \"{}\"", allowed.name()));
            }
        };
        only("threshold", s.threshold.is_some(), SelectionKind::Confidence, p);
        only("keep", s.keep.is_some(), SelectionKind::Hardness, p);
        for (key, set) in [("min_area", s.min_area.is_some()), ("max_components", s.max_components.is_some()), ("shape", s.shape.is_some())]
        {
            only(key, set, SelectionKind::Verifier, p);
        }
        let share = |key: &str, v: f32, p: &mut Problems<'_>| {
            if !(v > 0.0 && v <= 1.0) {
                p.add(at(key), format!("must lie in (0, 1], got {v}"));
            }
            v
        };
        let (rule, default_name) = match kind {
            SelectionKind::All => (SelectionRule::All, EVERY_LABEL.to_string()),
            SelectionKind::Confidence => {
                let threshold = share("threshold", s.threshold.unwrap_or(0.9), p);
                (SelectionRule::Confidence { threshold }, format!("confidence{threshold}"))
            }
            SelectionKind::Hardness => {
                let keep = share("keep", s.keep.unwrap_or(0.5), p);
                (SelectionRule::Hardness { keep }, format!("easiest{keep}"))
            }
            SelectionKind::Verifier => {
                let mut shapes = Vec::new();
                for (class, rule) in s.shape.iter().flatten() {
                    let Some(id) = classes.index_of(class).filter(|&c| c > 0) else {
                        p.add(at(&format!("shape.{class}")), format!("names no object class ({})", classes.names()[1..].join(", ")));
                        continue;
                    };
                    let (min_fill, max_fill) = (rule.min_fill.unwrap_or(0.0), rule.max_fill.unwrap_or(1.0));
                    if !(0.0..=1.0).contains(&min_fill) || !(0.0..=1.0).contains(&max_fill) || min_fill > max_fill {
                        p.add(
                            at(&format!("shape.{class}")),
                            format!("needs 0 <= min_fill <= max_fill <= 1 (shares of the bounding box), got {min_fill} and {max_fill}"),
                        );
                    }
                    shapes.push(ShapeRule { class: id, min_fill, max_fill });
                }
                if s.max_components == Some(0) {
                    p.add(at("max_components"), "must be at least 1 (leave it out for no limit)");
                }
                let rules = VerifierRules { min_area: s.min_area.unwrap_or(0), max_components: s.max_components, shapes };
                if rules == VerifierRules::default() {
                    p.add(format!("study.selections[{i}]"), "a verifier needs at least one rule: min_area, max_components or shape");
                }
                (SelectionRule::Verifier(rules), "verifier".to_string())
            }
        };
        let name = s.name.clone().unwrap_or(default_name);
        if let Some(msg) = name_problem(&name) {
            p.add(at("name"), msg);
        } else if out.iter().any(|o| o.name == name) {
            p.add(at("name"), format!("\"{name}\" names two selections; give each its own name"));
        }
        out.push(Selection { name, rule });
    }
    out
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
    fn verdict_minimums_and_training_budgets_are_checked_with_their_line() {
        let text = format!("{GOOD}[train]\nsteps = 100\nepochs = 4\n[verdict]\nthin_recall = -0.1\nboundary_offset = 0.5\n");
        let err = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
        assert!(err.contains("t.toml:12: `train.steps` and `epochs` are two budgets"), "{err}");
        assert!(err.contains("t.toml:15: `verdict.thin_recall` must be a number ≥ 0"), "{err}");
        let ok = parse(Path::new("t.toml"), &format!("{GOOD}[verdict]\nboundary_offset = 0.5\n")).unwrap();
        assert_eq!((ok.verdict.minimum(Bias::BoundaryOffset), ok.verdict.minimum(Bias::ThinRecall)), (0.5, 0.05));
        let typo = parse(Path::new("t.toml"), &format!("{GOOD}[verdict]\nboundary = 0.5\n")).unwrap_err().to_string();
        assert!(typo.contains("boundary"), "{typo}");
    }

    #[test]
    fn label_issue_settings_default_to_cleanlabs_and_bad_values_name_their_line() {
        assert_eq!(parse(Path::new("t.toml"), GOOD).unwrap().label_issues, None, "absent: not searched");
        let on = parse(Path::new("t.toml"), &format!("{GOOD}[label_issues]\n")).unwrap().label_issues.unwrap();
        assert_eq!((on.folds, on.temperature, on.worst, on.export_probabilities, on.leave_source_out), (2, 0.1, 4, false, false));
        let alone = "[[sources]]\nkind = \"manual\"\nimages = 4\n[label_issues]\nleave_source_out = true\n";
        let err = parse(Path::new("t.toml"), alone).unwrap_err().to_string();
        assert!(err.contains("t.toml:5: `label_issues.leave_source_out` needs at least two label sources"), "{err}");
        let text = format!("{GOOD}[label_issues]\nfolds = 1\ntemperature = 0\n");
        let err = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
        let lines = GOOD.lines().count();
        assert!(err.contains(&format!("t.toml:{}: `label_issues.folds` must be between 2 and 10", lines + 2)), "{err}");
        assert!(err.contains(&format!("t.toml:{}: `label_issues.temperature` must be a number > 0", lines + 3)), "{err}");
        let typo = parse(Path::new("t.toml"), &format!("{GOOD}[label_issues]\nfold = 3\n")).unwrap_err().to_string();
        assert!(typo.contains("fold"), "{typo}");
    }

    #[test]
    fn kind_names_are_the_manifest_names() {
        for kind in SourceKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
        }
        for kind in SelectionKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
        }
    }

    #[test]
    fn missing_kinds_and_empty_lists_say_what_is_allowed() {
        let err = parse(Path::new("t.toml"), "[nets]\narchitectures = []\n[study]\nstrategies = []\n").unwrap_err().to_string();
        for needle in [
            "`sources` needs at least one [[sources]] table (kind = \"exact\", \"manual\", \"heuristic\", \"synthetic\" or \"folder\")",
            "`nets.architectures` needs at least one of \"unet\", \"fcn\", \"dilated\", \"bnonly\", \"pixel\"",
            "`study.strategies` needs at least one of \"self\", \"cross\", \"ensemble\", \"consensus\", \"ema\" when study.generations > 0",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
        let err = parse(Path::new("t.toml"), "[[sources]]\nimages = 4\n").unwrap_err().to_string();
        let needle = "`sources[0].kind` is missing; allowed: \"exact\", \"manual\", \"heuristic\", \"synthetic\", \"folder\"";
        assert!(err.contains(needle), "missing {needle} in {err}");
    }

    #[test]
    fn a_good_manifest_validates_with_defaults() {
        let m = parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!(m.sources.len(), 2);
        assert_eq!(m.sources[0].name, "manual");
        assert_eq!(m.networks.len(), 2);
        assert_eq!(*m.train, TrainConfig::default());
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
        assert_eq!(keys, ["train.epochs", "sources[0].threshold", "sources[0].images"]);
        assert_eq!(problems[1].line, Some(7));
    }

    #[test]
    fn sources_cue_and_folder_are_checked_against_each_other() {
        let text = format!("{GOOD}\n[[sources]]\nkind = \"folder\"\n\n[cue]\nclass = \"tree\"\nsources = [\"nobody\"]\n");
        let err = parse(Path::new("t.toml"), &text).unwrap_err().to_string();
        for needle in [
            "`sources[2].kind` \"folder\" needs a [folder] dataset",
            "`cue.class` \"tree\" is not an object class (blob, thin)",
            "`cue.sources` \"nobody\" is not a source name",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
        let folder = "[folder]\npath = \"data\"\nclasses = [\"background\", \"cell\"]\n[[sources]]\nkind = \"manual\"\nimages = 4\n[[sources]]\nkind = \"folder\"\nmasks = \"painted\"\n";
        let err = parse(Path::new("d/t.toml"), folder).unwrap_err().to_string();
        assert!(err.contains("set folder.truth to the mask set that holds it"), "{err}");
        let m =
            parse(Path::new("d/t.toml"), &folder.replace("kind = \"manual\"\nimages = 4\n", "kind = \"heuristic\"\nimages = 4\n")).unwrap();
        let DataSpec::Folder(spec) = &m.data else { panic!() };
        assert_eq!(spec.root, Path::new("d/data"));
        assert_eq!(spec.required_sets, ["painted"]);
        assert_eq!(m.classes.names(), ["background", "cell"]);
    }

    #[test]
    fn synthetic_sources_get_a_synthetic_test_set_by_default() {
        let text = GOOD.replace("kind = \"heuristic\"", "kind = \"synthetic\"");
        let m = parse(Path::new("t.toml"), &text).unwrap();
        assert_eq!(Some(m.synthetic_test), m.split.test.count());
        assert_eq!(parse(Path::new("t.toml"), GOOD).unwrap().synthetic_test, 0);
    }

    #[test]
    fn added_seeds_are_validated_and_every_look_is_paid_for() {
        let m = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\nrepeats = 4\nmax_repeats = 9\n")).unwrap();
        // Rounds of 2, 2 and 1 seeds: four looks, each at 1 − 0.05 / 4.
        assert_eq!((m.study.most_repeats(), m.study.looks()), (9, 4));
        assert!((m.study.verdict_confidence() - 0.9875).abs() < 1e-12);
        let once = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\nrepeats = 4\n")).unwrap();
        assert_eq!((once.study.looks(), once.study.verdict_confidence()), (1, 0.95));
        let bad = format!("{GOOD}\n[study]\nrepeats = 4\nmax_repeats = 3\nrepeats_per_round = 0\n");
        let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert!(err.contains("`study.max_repeats` must lie between study.repeats (4) and 100, got 3"), "{err}");
        assert!(err.contains("`study.repeats_per_round` must be at least 1"), "{err}");
    }

    #[test]
    fn pseudo_label_dilation_names_object_classes_and_needs_pseudo_labels() {
        let m = parse(Path::new("t.toml"), &format!("{GOOD}\n[study]\ndilate_pseudo_labels = {{ thin = 1, blob = -0.5 }}\n")).unwrap();
        assert_eq!(m.pseudo_label_dilation.by_class, [(1, -0.5), (2, 1.0)], "class order, whatever the order written");
        assert!(parse(Path::new("t.toml"), GOOD).unwrap().pseudo_label_dilation.is_none());
        let bad = format!(
            "{GOOD}\n[study]\nstrategies = [\"self\", \"ema\"]\nmix = 0\ndilate_pseudo_labels = {{ tree = 1, background = 1, thin = 0, blob = 9 }}\n"
        );
        let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        for expected in [
            "`study.dilate_pseudo_labels.tree` names no object class (blob, thin)",
            "`study.dilate_pseudo_labels.background` names no object class",
            "`study.dilate_pseudo_labels.thin` is the px the class grows (negative: shrinks), non-zero and at most 8 either way, got 0",
            "`study.dilate_pseudo_labels.blob` is the px",
            "`study.dilate_pseudo_labels` does not apply to the \"ema\" strategy",
            "`study.dilate_pseudo_labels` needs pseudo-labels to act on: study.mix is 0",
        ] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
    }

    #[test]
    fn selections_mix_and_targets_are_validated_with_what_is_allowed() {
        let m = parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!((m.selections.clone(), m.study.mix, m.targets.len()), (vec![Selection::all()], 1.0, 0));
        let good = format!(
            "targets = [\"miou >= 0.8\"]\n{GOOD}\n[study]\nmix = 0.5\n[[study.selections]]\nkind = \"confidence\"\n\
             [[study.selections]]\nkind = \"hardness\"\nkeep = 0.3\n[[study.selections]]\nkind = \"verifier\"\nmin_area = 5\n\
             shape = {{ thin = {{ max_fill = 0.5 }} }}\n"
        );
        let m = parse(Path::new("t.toml"), &good).unwrap();
        let names: Vec<&str> = m.selections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["confidence0.9", "easiest0.3", "verifier"]);
        let SelectionRule::Verifier(rules) = &m.selections[2].rule else { panic!() };
        assert_eq!(rules.shapes, [ShapeRule { class: 2, min_fill: 0.0, max_fill: 0.5 }]);
        assert_eq!((m.study.mix, m.targets[0].text.as_str()), (0.5, "miou >= 0.8"));

        let bad = format!(
            "targets = [\"iou > 1\"]\n{GOOD}\n[study]\nmix = 1.5\n[[study.selections]]\nkind = \"confidence\"\nkeep = 0.5\n\
             [[study.selections]]\nkind = \"hardness\"\nkeep = 1.5\n[[study.selections]]\nkind = \"verifier\"\n\
             [[study.selections]]\nkind = \"verifier\"\nname = \"verifier\"\nshape = {{ tree = {{ min_fill = 0.5 }} }}\n\
             [[study.selections]]\nthreshold = 0.5\n"
        );
        let err = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        for needle in [
            "`study.mix` is the pseudo-labels' share of the loss weight in [0, 1]",
            "`study.selections[0].keep` applies only to kind = \"hardness\"",
            "`study.selections[1].keep` must lie in (0, 1], got 1.5",
            "`study.selections[2]` a verifier needs at least one rule",
            "`study.selections[3].shape.tree` names no object class (blob, thin)",
            "`study.selections[3].name` \"verifier\" names two selections",
            "`study.selections[4].kind` is missing; allowed: \"all\", \"confidence\", \"hardness\", \"verifier\"",
            "`targets[0]` \"iou > 1\": unknown metric `iou`; allowed: miou,",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
    }
}
