//! The manifest as written: serde types that reject unknown keys. Defaults live here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use echoseg_nets::{Architecture, DeviceChoice, TrainConfig};
use echoseg_scene::WorldConfig;

use crate::plan::strategy::{EVERY_LABEL, PseudoLabels, Strategy};
use serde::{Deserialize, Serialize};

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
    /// Exact labels on images in the synthetic rendering style.
    Synthetic,
    /// A mask set of a folder dataset.
    Folder,
}

impl SourceKind {
    /// Every source kind, in the order manifests list them.
    pub const ALL: [SourceKind; 5] =
        [SourceKind::Exact, SourceKind::Manual, SourceKind::Heuristic, SourceKind::Synthetic, SourceKind::Folder];

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Exact => "exact",
            SourceKind::Manual => "manual",
            SourceKind::Heuristic => "heuristic",
            SourceKind::Synthetic => "synthetic",
            SourceKind::Folder => "folder",
        }
    }
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
    /// manual: amplitude in px of a smooth random boundary wobble.
    pub jitter: Option<f32>,
    /// manual: polygon simplification tolerance in px.
    pub simplify: Option<f32>,
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
    /// heuristic: closing radius in px.
    pub closing: Option<f32>,
    /// heuristic: smallest component kept, in pixels.
    pub min_area: Option<u32>,
    /// heuristic: components thinner than this are `thin`.
    pub thin_below: Option<f32>,
    /// heuristic: components filling this share of their box are `box`.
    pub box_fill_above: Option<f32>,
    /// folder: the mask set (`masks/SET/`); defaults to the source's name.
    pub masks: Option<String>,
    /// With `folder.overlap = "assign"`: this source's weight when an image is drawn a teacher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f32>,
}

/// A split's size: a number of images, or a share of a folder dataset's images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SplitSize {
    /// This many images.
    Count(usize),
    /// This share of all images (folder datasets only), rounded, at least 1 when above 0.
    Share(f64),
}

impl SplitSize {
    /// The number of images out of `total`.
    pub fn of(self, total: usize) -> usize {
        match self {
            SplitSize::Count(n) => n,
            SplitSize::Share(s) if s <= 0.0 => 0,
            SplitSize::Share(s) => ((s * total as f64).round() as usize).clamp(1, total.max(1)),
        }
    }

    /// The count, when the size is one (the procedural world has no total to take a share of).
    pub fn count(self) -> Option<usize> {
        match self {
            SplitSize::Count(n) => Some(n),
            SplitSize::Share(_) => None,
        }
    }

    /// True when the size is no image at all.
    pub fn is_zero(self) -> bool {
        match self {
            SplitSize::Count(n) => n == 0,
            SplitSize::Share(s) => s <= 0.0,
        }
    }
}

impl<'de> Deserialize<'de> for SplitSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SplitSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of images (48) or a share of a folder dataset's images (0.2)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SplitSize, E> {
                Ok(SplitSize::Count(v as usize))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SplitSize, E> {
                usize::try_from(v).map(SplitSize::Count).map_err(|_| E::custom(format!("a number of images cannot be negative, got {v}")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SplitSize, E> {
                if (0.0..=1.0).contains(&v) {
                    Ok(SplitSize::Share(v))
                } else {
                    Err(E::custom(format!("a share of the images lies in [0, 1], got {v}; write a whole number for a count")))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[split]` as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Split {
    /// Share of the labelled images held out for validation (labelled by the same sources).
    pub validation: Option<f32>,
    /// Test images, scored against exact truth (default: 48 in the world, 0.2 of a folder's images).
    pub test: Option<SplitSize>,
    /// Unlabelled pool images that later generations pseudo-label (default: 96 in the world, 0.25
    /// of a folder's images; none for a folder study without pseudo-labels or pre-training).
    pub pool: Option<SplitSize>,
    /// Test images in the synthetic style, for the domain gap (default: as many as `test` when a
    /// `synthetic` source exists, else none).
    pub synthetic_test: Option<usize>,
}

/// The default share of labelled images held out for validation.
pub const DEFAULT_VALIDATION: f32 = 0.2;
/// The world's default test and pool sizes.
pub const WORLD_TEST: SplitSize = SplitSize::Count(48);
/// The world's default pool size.
pub const WORLD_POOL: SplitSize = SplitSize::Count(96);
/// A folder dataset's default test share.
pub const FOLDER_TEST: SplitSize = SplitSize::Share(0.2);
/// A folder dataset's default pool share (when the study pseudo-labels or pre-trains).
pub const FOLDER_POOL: SplitSize = SplitSize::Share(0.25);

/// How a folder dataset's sources share an image that several of them labelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Every source's mask on a training image is a training sample of its own (several raters).
    #[default]
    All,
    /// Each training image is taught by one of the sources that labelled it, drawn with the seed.
    Assign,
}

impl Overlap {
    /// Every overlap mode, in the order messages list them.
    pub const ALL: [Overlap; 2] = [Overlap::All, Overlap::Assign];

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Overlap::All => "all",
            Overlap::Assign => "assign",
        }
    }
}

/// `[cue]`: a spurious tint correlated with a class in some sources' images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCue {
    /// The class the tint goes with.
    pub class: String,
    /// The sources whose training images carry the correlation (default: all).
    #[serde(default)]
    pub sources: Vec<String>,
    /// 1 = exactly the class's objects are tinted; 0.5 = independent of class.
    #[serde(default = "default_cue_strength")]
    pub strength: f32,
}

fn default_cue_strength() -> f32 {
    1.0
}

/// `[folder]`: the user's own images and masks instead of the procedural world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFolder {
    /// The dataset directory, relative to the manifest.
    pub path: PathBuf,
    /// Class names, background first; a grey mask value is an index into this list.
    pub classes: Vec<String>,
    /// RGB colour per class when masks are colour images.
    pub colours: Option<Vec<[u8; 3]>>,
    /// The mask set holding exact truth, if any.
    pub truth: Option<String>,
    /// How sources share an image they all labelled (default `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
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
    /// The models to train, each on the same data: an architecture, optionally followed by a
    /// pre-training (`"unet+byol"`: the unet pre-trained with BYOL on the pool).
    pub architectures: Vec<String>,
    /// Size of the `unet`.
    pub unet: Option<ArchitectureShape>,
    /// Size of the `fcn`.
    pub fcn: Option<ArchitectureShape>,
    /// Size of the `dilated` network.
    pub dilated: Option<ArchitectureShape>,
    /// Size of the `bnonly` network.
    pub bnonly: Option<ArchitectureShape>,
    /// Size of the `pixel` network.
    pub pixel: Option<ArchitectureShape>,
    /// Images per inference batch.
    pub inference_batch: usize,
    /// Side in px of the overlapping tiles larger images are segmented in (sharing an eighth).
    pub inference_tile: usize,
    /// Settings of BYOL pre-training (models named `ARCHITECTURE+byol`).
    pub byol: echoseg_nets::ByolConfig,
}

impl Default for RawNets {
    fn default() -> Self {
        Self {
            architectures: vec!["unet".into(), "fcn".into()],
            unet: None,
            fcn: None,
            dilated: None,
            bnonly: None,
            pixel: None,
            inference_batch: 32,
            inference_tile: echoseg_nets::Tiling::default().side,
            byol: echoseg_nets::ByolConfig::default(),
        }
    }
}

impl RawNets {
    /// The size overrides written for architecture `a`.
    pub fn shape(&self, a: Architecture) -> Option<&ArchitectureShape> {
        match a {
            Architecture::Unet => self.unet.as_ref(),
            Architecture::Fcn => self.fcn.as_ref(),
            Architecture::Dilated => self.dilated.as_ref(),
            Architecture::Bnonly => self.bnonly.as_ref(),
            Architecture::Pixel => self.pixel.as_ref(),
        }
    }
}

/// How pseudo-labelled pixels are chosen, as written in `[[study.selections]] kind = ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectionKind {
    /// Every pixel.
    All,
    /// Pixels the teachers are confident about.
    Confidence,
    /// The easiest share by angular hardness.
    Hardness,
    /// Pixels no verifier rule rejects.
    Verifier,
}

impl SelectionKind {
    /// Every selection kind, in the order manifests list them.
    pub const ALL: [SelectionKind; 4] = [SelectionKind::All, SelectionKind::Confidence, SelectionKind::Hardness, SelectionKind::Verifier];

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            // The kind that keeps every label is named like the selection column says it.
            SelectionKind::All => EVERY_LABEL,
            SelectionKind::Confidence => "confidence",
            SelectionKind::Hardness => "hardness",
            SelectionKind::Verifier => "verifier",
        }
    }
}

/// A `[[study.selections]]` table as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelection {
    /// Name in tables and the report (default from the kind and its value).
    pub name: Option<String>,
    /// The kind.
    pub kind: Option<SelectionKind>,
    /// confidence: the mean top-class probability a pixel needs (default 0.9).
    pub threshold: Option<f32>,
    /// hardness: the share of each class's pixels kept (default 0.5).
    pub keep: Option<f32>,
    /// verifier: components with fewer pixels are rejected.
    pub min_area: Option<u32>,
    /// verifier: at most this many components per class and image are kept (the largest).
    pub max_components: Option<u32>,
    /// verifier: per class name, the share of its bounding box a component must fill.
    pub shape: Option<std::collections::BTreeMap<String, RawShapeRule>>,
}

/// A class-shape rule as written: `shape = { box = { min_fill = 0.8 } }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShapeRule {
    /// Smallest share of the bounding box a component fills (default 0).
    pub min_fill: Option<f32>,
    /// Largest share (default 1).
    pub max_fill: Option<f32>,
}

/// How a student's weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StudentStart {
    /// Freshly initialised from the run's seed.
    #[default]
    Reinit,
    /// From the teacher's trained weights, where the teacher has the student's architecture
    /// (every `self` student); other students start fresh.
    Continue,
}

/// A name or a list of names, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(deserializer) {
        Ok(OneOrMany::One(name)) => Ok(vec![name]),
        Ok(OneOrMany::Many(names)) => Ok(names),
        Err(_) => Err(serde::de::Error::custom("expected a name or a list of names")),
    }
}

/// The default `study.pseudo_labels`, left out when the settings are written back.
fn replaces_only(modes: &[String]) -> bool {
    modes == [PseudoLabels::Replace.name()]
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
    /// The most seeds a verdict's configuration may get: after the planned `repeats`, seeds are
    /// added in rounds to the chains whose verdicts are still undecided, up to this many.
    /// `None`: no seeds are added (`repeats` is the cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_repeats: Option<u32>,
    /// Seeds added per round (with `max_repeats`).
    pub repeats_per_round: u32,
    /// Share of a student's loss weight carried by pseudo-labels; 1 = pseudo-labels only.
    pub mix: f32,
    /// Px by which each named object class of the pseudo-labels is grown (negative: shrunk)
    /// before a student learns them: a deliberate correction, or a bias of known direction for
    /// checking the verdicts. Empty: the teachers' labels as they are.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dilate_pseudo_labels: BTreeMap<String, f32>,
    /// `"replace"` (each generation learns its teachers' pseudo-labels only), `"accumulate"`
    /// (every earlier generation's too), or both as a list: each mode its own chains.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "replaces_only")]
    pub pseudo_labels: Vec<String>,
    /// Whether a student starts fresh or from its teacher's weights.
    pub student: StudentStart,
    /// Which pseudo-labelled pixels students learn from; each selection is run with every strategy
    /// except `ema`, which has its own confidence threshold.
    pub selections: Vec<RawSelection>,
    /// Settings of the `ema` strategy.
    pub ema: echoseg_nets::EmaConfig,
    /// Also train every architecture on exact labels of generation 0's images with its seeds
    /// (the ceiling), where the study has truth for them.
    pub ceiling: bool,
    /// `cross` at generation 1 trains every teacher→student pair (true) or only the chain's
    /// rotation, one teacher per student (false: a third of the runs with three architectures).
    pub cross_matrix: bool,
}

impl StudySettings {
    /// The most seeds any configuration gets: `max_repeats`, or `repeats` when none are added.
    pub fn most_repeats(&self) -> u32 {
        self.max_repeats.unwrap_or(self.repeats).max(self.repeats)
    }

    /// How often the verdicts are looked at: after the planned repeats and after every round.
    pub fn looks(&self) -> u32 {
        1 + (self.most_repeats() - self.repeats).div_ceil(self.repeats_per_round.max(1))
    }

    /// The confidence of every verdict's interval: the 5 % error split evenly over the looks
    /// (Bonferroni), so that a verdict decided at whichever look is wrong at most 5 % of the time.
    pub fn verdict_confidence(&self) -> f64 {
        1.0 - (1.0 - VERDICT_CONFIDENCE) / f64::from(self.looks())
    }
}

/// The confidence of a verdict's interval in a study that looks once (no added seeds).
pub const VERDICT_CONFIDENCE: f64 = 0.95;

impl Default for StudySettings {
    fn default() -> Self {
        Self {
            generations: 1,
            strategies: vec![Strategy::SelfTraining, Strategy::Cross],
            repeats: 1,
            max_repeats: None,
            repeats_per_round: 2,
            mix: 1.0,
            dilate_pseudo_labels: BTreeMap::new(),
            pseudo_labels: vec![PseudoLabels::Replace.name().to_string()],
            student: StudentStart::Reinit,
            selections: Vec::new(),
            ema: echoseg_nets::EmaConfig::default(),
            ceiling: true,
            cross_matrix: true,
        }
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
    /// Runs trained at once, sharing the worker threads (0 = one per thread).
    #[serde(default)]
    pub jobs: usize,
    /// The procedural world.
    pub world: Option<WorldConfig>,
    /// A folder dataset instead of the world.
    pub folder: Option<RawFolder>,
    /// A spurious cue.
    pub cue: Option<RawCue>,
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
    /// Goals such as `"miou >= 0.8"`, each judged met, missed or undecided in the report.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The practical minimum change per bias below which a verdict says "holds".
    #[serde(default)]
    pub verdict: RawVerdict,
    /// Which given masks look wrong, from cross-fitted networks (absent: not searched).
    pub label_issues: Option<RawLabelIssues>,
}

/// The `[label_issues]` table: every labelled image of every source scored by networks that did
/// not train on it (cross-fitting over folds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabelIssues {
    /// Folds of the labelled images (default 2): each fold is scored by networks trained on the others.
    pub folds: Option<u32>,
    /// Softmin temperature of the image score (default 0.1, cleanlab's).
    pub temperature: Option<f64>,
    /// Worst images per source shown in the report (default 4).
    pub worst: Option<usize>,
    /// Also write the out-of-sample probabilities and labels as .npy files (default false), for
    /// bench/label_issues_reference.py.
    pub export_probabilities: Option<bool>,
    /// Also score each source with networks trained on the other sources' labels only (default
    /// false): they can see a bias the source draws the same way on every image.
    pub leave_source_out: Option<bool>,
}

/// The `[verdict]` table: for each bias the smallest change a verdict may call a direction
/// (boundary offset in px, the rest as shares); a bias left out keeps its default
/// (`echoseg_agree::VerdictRules::default_minimum`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerdict {
    /// Boundary offset, px (default 0.25).
    pub boundary_offset: Option<f64>,
    /// Boundary F1 (default 0.05).
    pub boundary_f1: Option<f64>,
    /// Thin-structure recall (default 0.05).
    pub thin_recall: Option<f64>,
    /// Small-object recall (default 0.05).
    pub small_object_recall: Option<f64>,
    /// Low-contrast recall (default 0.05).
    pub low_contrast_recall: Option<f64>,
    /// Shadow false-positive rate (default 0.05).
    pub shadow_fp_rate: Option<f64>,
    /// Spurious-cue reliance (default 0.02).
    pub cue_reliance: Option<f64>,
    /// Domain gap, in mIoU (default 0.05).
    pub domain_gap: Option<f64>,
}

impl RawVerdict {
    /// The minimum written for `bias`, if any.
    pub fn written(&self, bias: echoseg_agree::Bias) -> Option<f64> {
        use echoseg_agree::Bias;
        match bias {
            Bias::BoundaryOffset => self.boundary_offset,
            Bias::BoundaryF1 => self.boundary_f1,
            Bias::ThinRecall => self.thin_recall,
            Bias::SmallObjectRecall => self.small_object_recall,
            Bias::LowContrastRecall => self.low_contrast_recall,
            Bias::ShadowFpRate => self.shadow_fp_rate,
            Bias::CueReliance => self.cue_reliance,
            Bias::DomainGap => self.domain_gap,
        }
    }
}

fn default_seed() -> u64 {
    1
}
