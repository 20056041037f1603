//! The study's data: images (generated or read from a folder) split into labelled (per source),
//! validation, test and pool images, with every source's labels.

use std::collections::BTreeMap;

use echoseg_scene::{ClassTable, CueRule, FolderDataset, LabelMap, LabelSource, MaskSet, Scene, Style, generate_scene, read_folder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::StudyError;
use crate::plan::folder_split::{Coverage, SplitInputs, split_folder, validation_count};
use crate::plan::manifest::{DataSpec, Labeller, Manifest, Overlap};

/// A scene with the labels one source gave it.
#[derive(Clone, Debug)]
pub struct LabelledScene {
    /// The scene.
    pub scene: Scene,
    /// Index of the source in the manifest.
    pub source: usize,
    /// The source's labels.
    pub labels: LabelMap,
}

/// Every image of a study, split.
#[derive(Clone, Debug)]
pub struct StudyData {
    /// The classes, background first.
    pub classes: ClassTable,
    /// Training images with their sources' labels.
    pub train: Vec<LabelledScene>,
    /// Validation images with their sources' labels (used for early stopping only).
    pub validation: Vec<LabelledScene>,
    /// Test images, scored against truth where it is known.
    pub test: Vec<Scene>,
    /// The test images again with the spurious cue flipped (empty without a cue).
    pub test_twins: Vec<Scene>,
    /// The class the spurious cue goes with in training (studies with a cue).
    pub cue_class: Option<u8>,
    /// Test images in the synthetic style (for the domain gap).
    pub synthetic_test: Vec<Scene>,
    /// Unlabelled images for pseudo-labels.
    pub pool: Vec<Scene>,
    /// Folder sources' masks on test images (never trained on; scored as the sources' quality).
    pub source_test: Vec<SourceOnTest>,
    /// Folder images in no split: not drawn for test or pool, and no source labels them.
    pub unused: usize,
}

/// A source's mask on a test image.
#[derive(Clone, Debug)]
pub struct SourceOnTest {
    /// Index of the source in the manifest.
    pub source: usize,
    /// Index into [`StudyData::test`].
    pub test: usize,
    /// The source's labels.
    pub labels: LabelMap,
}

/// The split files: image ids per split (and per source for the labelled ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    /// Training image ids per source.
    pub train: BTreeMap<String, Vec<String>>,
    /// Validation image ids per source.
    pub validation: BTreeMap<String, Vec<String>>,
    /// Test image ids.
    pub test: Vec<String>,
    /// Synthetic-style test image ids.
    pub synthetic_test: Vec<String>,
    /// Unlabelled pool image ids.
    pub pool: Vec<String>,
    /// Per source, the test images it has masks on (folder datasets): scored, never trained on.
    #[serde(default)]
    pub source_test: BTreeMap<String, Vec<String>>,
    /// How the images were split, in a sentence for the report.
    #[serde(default)]
    pub layout: String,
}

fn label_all(
    scenes: Vec<Scene>,
    source: usize,
    labeller: &LabelSource,
    classes: &ClassTable,
    seed: u64,
) -> Result<Vec<LabelledScene>, StudyError> {
    scenes
        .into_par_iter()
        .map(|scene| {
            let labels = labeller.label(&scene, classes, seed).map_err(StudyError::Source)?;
            Ok(LabelledScene { scene, source, labels })
        })
        .collect()
}

fn split_validation(labelled: Vec<LabelledScene>, share: f32, train: &mut Vec<LabelledScene>, validation: &mut Vec<LabelledScene>) {
    let held = validation_count(labelled.len(), share);
    let mut labelled = labelled;
    let cut = labelled.len() - held;
    validation.extend(labelled.split_off(cut));
    train.extend(labelled);
}

impl StudyData {
    /// Source `source`'s mask on test image `test`, where it has one: a simulated source labels
    /// the image now (as it labelled its own images), a folder source has its mask there or none.
    pub fn source_mask_on_test(&self, manifest: &Manifest, source: usize, test: usize) -> Option<LabelMap> {
        match &manifest.sources.get(source)?.labeller {
            Labeller::Simulated(labeller) => labeller.label(self.test.get(test)?, &manifest.classes, manifest.seed).ok(),
            Labeller::Masks(_) => self.source_test.iter().find(|o| o.source == source && o.test == test).map(|o| o.labels.clone()),
        }
    }

    /// Generates or reads the images and labels them as the manifest says.
    pub fn load(manifest: &Manifest) -> Result<Self, StudyError> {
        match &manifest.data {
            DataSpec::World(_) => Self::generate(manifest),
            DataSpec::Folder(spec) => Self::from_folder(manifest, read_folder(spec).map_err(StudyError::Data)?),
        }
    }

    /// Refuses a `train.crop` larger than an image trained on, naming the image; the rule is
    /// the networks' own ([`echoseg_nets::training_crop`]), only the image gets its name here.
    fn checked_crop(self, crop: Option<usize>) -> Result<Self, StudyError> {
        if crop.is_none() {
            return Ok(self);
        }
        let trained: Vec<&Scene> = self.train.iter().chain(&self.validation).map(|l| &l.scene).chain(&self.pool).collect();
        match echoseg_nets::training_crop(crop, Self::sizes(trained.iter().copied())) {
            Err(echoseg_nets::NetsError::CropTooLarge { side, index, width, height }) => Err(StudyError::Config(format!(
                "train.crop = {side} is larger than image `{}`, which is {width}×{height} px: set train.crop to at most {} or leave \
                 it out (then the smallest side, capped at {} px)",
                trained[index].name,
                width.min(height),
                echoseg_nets::CROP_LIMIT
            ))),
            _ => Ok(self),
        }
    }

    /// The side of the square images training steps see: the crop chosen for these images
    /// (see [`echoseg_nets::training_crop`]), or the images' own larger side.
    pub fn training_side(&self, crop: Option<usize>) -> usize {
        let sizes = Self::sizes(self.train.iter().chain(&self.validation).map(|l| &l.scene));
        let whole = sizes.iter().map(|&(w, h)| w.max(h)).max().unwrap_or(0);
        echoseg_nets::training_crop(crop, sizes).ok().flatten().unwrap_or(whole)
    }

    /// The images' sizes in words: `64×64 px`, or the range when they differ.
    pub fn sizes_in_words(&self) -> String {
        let all = self.train.iter().chain(&self.validation).map(|l| &l.scene).chain(&self.test).chain(&self.pool);
        let sizes = Self::sizes(all);
        let (Some(small), Some(large)) = (sizes.iter().min_by_key(|(w, h)| w * h), sizes.iter().max_by_key(|(w, h)| w * h)) else {
            return "no images".into();
        };
        if sizes.iter().all(|s| s == small) {
            format!("{}×{} px", small.0, small.1)
        } else {
            format!("{}×{} to {}×{} px", small.0, small.1, large.0, large.1)
        }
    }

    /// Generates the world and labels it. Scene indices are consecutive: each source's images,
    /// then the test, pool and synthetic test images, so growing a later split never changes an
    /// earlier one.
    fn generate(manifest: &Manifest) -> Result<Self, StudyError> {
        let Some(world) = manifest.world() else { return Err(StudyError::Config("generate needs the procedural world".into())) };
        let seed = manifest.seed;
        let scenes = |first: u32, count: usize, style: Style, cue: CueRule| -> Vec<Scene> {
            (first..first + count as u32).into_par_iter().map(|i| generate_scene(world, seed, i, style, cue)).collect()
        };
        let decorrelated = if manifest.cue.is_some() { CueRule::Random(0.5) } else { CueRule::Absent };
        let mut next = 0u32;
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for (s, spec) in manifest.sources.iter().enumerate() {
            let Labeller::Simulated(labeller) = &spec.labeller else {
                return Err(StudyError::Config(format!("source {} needs a folder dataset", spec.name)));
            };
            let count = spec.images.unwrap_or(0);
            let cue = match &manifest.cue {
                Some(c) if c.sources.contains(&s) => CueRule::WithClass { class: c.class, strength: c.strength },
                _ => decorrelated,
            };
            let labelled = label_all(scenes(next, count, labeller.style(), cue), s, labeller, &manifest.classes, seed)?;
            next += count as u32;
            split_validation(labelled, manifest.split.validation, &mut train, &mut validation);
        }
        // Validation refuses shares for the world, so both sizes are counts here.
        let (test_count, pool_count) = (manifest.split.test.count().unwrap_or(0), manifest.split.pool.count().unwrap_or(0));
        let test = scenes(next, test_count, Style::Real, decorrelated);
        let test_twins = match manifest.cue {
            Some(_) => test
                .par_iter()
                .map(|t| generate_scene(world, seed, t.index, Style::Real, if t.cue { CueRule::Absent } else { CueRule::Present }))
                .collect(),
            None => Vec::new(),
        };
        next += test_count as u32;
        let pool = scenes(next, pool_count, Style::Real, decorrelated);
        next += pool_count as u32;
        let synthetic_test = scenes(next, manifest.synthetic_test, Style::Synthetic, decorrelated);
        Self {
            classes: manifest.classes.clone(),
            train,
            validation,
            test,
            test_twins,
            cue_class: manifest.cue.as_ref().map(|c| c.class),
            synthetic_test,
            pool,
            source_test: Vec::new(),
            unused: 0,
        }
        .checked_crop(manifest.train.crop)
    }

    /// Splits a folder dataset (see [`crate::plan::folder_split`]): test, pool, training and validation
    /// images are drawn from all images; each source's masks on training images teach, its masks on
    /// test images are scored, its masks on pool images are not used.
    pub fn from_folder(manifest: &Manifest, folder: FolderDataset) -> Result<Self, StudyError> {
        let FolderDataset { scenes, mask_sets } = folder;
        let coverage: Vec<Coverage> = manifest
            .sources
            .iter()
            .map(|spec| match &spec.labeller {
                Labeller::Masks(set) => {
                    let masks = mask_sets.get(set).map(|m| &m.masks);
                    Coverage::Masks(scenes.iter().map(|s| masks.is_some_and(|m| m.contains_key(&s.name))).collect())
                }
                Labeller::Simulated(labeller) => {
                    Coverage::Simulated { needs_truth: !matches!(labeller, LabelSource::Heuristic(_)), limit: spec.images }
                }
            })
            .collect();
        let has_truth: Vec<bool> = scenes.iter().map(|s| s.truth.is_some()).collect();
        let shares: Vec<f32> = manifest.sources.iter().map(|s| s.share).collect();
        let names: Vec<String> = manifest.sources.iter().map(|s| s.name.clone()).collect();
        let inputs = SplitInputs {
            has_truth: &has_truth,
            truth_set: has_truth_set(manifest),
            coverage: &coverage,
            shares: &shares,
            split: &manifest.split,
            seed: manifest.seed,
        };
        let split = split_folder(&inputs, &names).map_err(|e| StudyError::Config(e.to_string()))?;
        let label = |t: &crate::plan::folder_split::Teaching| -> Result<LabelledScene, StudyError> {
            let scene = scenes[t.image].clone();
            let labels = match &manifest.sources[t.source].labeller {
                Labeller::Masks(set) => mask_sets[set].masks[&scene.name].clone(),
                Labeller::Simulated(labeller) => labeller.label(&scene, &manifest.classes, manifest.seed).map_err(StudyError::Source)?,
            };
            Ok(LabelledScene { scene, source: t.source, labels })
        };
        let train = split.train.par_iter().map(label).collect::<Result<Vec<_>, _>>()?;
        let validation = split.validation.par_iter().map(label).collect::<Result<Vec<_>, _>>()?;
        let position: BTreeMap<usize, usize> = split.test.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        let source_test = split
            .source_test
            .iter()
            .map(|t| {
                let Labeller::Masks(set) = &manifest.sources[t.source].labeller else { unreachable!("only mask sets cover test images") };
                SourceOnTest { source: t.source, test: position[&t.image], labels: mask_sets[set].masks[&scenes[t.image].name].clone() }
            })
            .collect();
        let pick = |idx: &[usize]| idx.iter().map(|&i| scenes[i].clone()).collect::<Vec<_>>();
        Self {
            classes: manifest.classes.clone(),
            train,
            validation,
            test: pick(&split.test),
            test_twins: Vec::new(),
            cue_class: None,
            synthetic_test: Vec::new(),
            pool: pick(&split.pool),
            source_test,
            unused: split.unused.len(),
        }
        .checked_crop(manifest.train.crop)
    }

    /// The ids of every split, for the split files.
    pub fn splits(&self, manifest: &Manifest) -> Splits {
        let per_source = |set: &[LabelledScene]| {
            let mut map: BTreeMap<String, Vec<String>> = manifest.sources.iter().map(|s| (s.name.clone(), Vec::new())).collect();
            for l in set {
                map.entry(manifest.sources[l.source].name.clone()).or_default().push(l.scene.name.clone());
            }
            map
        };
        let ids = |scenes: &[Scene]| scenes.iter().map(|s| s.name.clone()).collect();
        Splits {
            train: per_source(&self.train),
            validation: per_source(&self.validation),
            test: ids(&self.test),
            synthetic_test: ids(&self.synthetic_test),
            pool: ids(&self.pool),
            source_test: self.source_test.iter().fold(BTreeMap::new(), |mut map, o| {
                map.entry(manifest.sources[o.source].name.clone()).or_insert_with(Vec::new).push(self.test[o.test].name.clone());
                map
            }),
            layout: self.layout(manifest),
        }
    }

    /// How the images were split and who teaches a training image, in a sentence.
    pub fn layout(&self, manifest: &Manifest) -> String {
        let images = |samples: &[LabelledScene]| samples.iter().map(|l| l.scene.index).collect::<std::collections::BTreeSet<_>>().len();
        let (train, validation) = (images(&self.train), images(&self.validation));
        let counts = format!(
            "{train} training, {validation} validation, {} test and {} pool images ({} training samples)",
            self.test.len(),
            self.pool.len(),
            self.train.len()
        );
        match &manifest.data {
            DataSpec::World(_) => format!("Procedural world: each source labels images of its own; {counts}."),
            DataSpec::Folder(_) => {
                let teaching = match manifest.split.overlap {
                    Overlap::All => "overlap = \"all\": every source's mask on a training image is a training sample of its own",
                    Overlap::Assign => {
                        "overlap = \"assign\": each training image is taught by one source that labelled it, drawn with the seed"
                    }
                };
                let scored = if self.source_test.is_empty() {
                    String::new()
                } else {
                    format!("; {} source mask(s) on test images are scored, never trained on", self.source_test.len())
                };
                let unused =
                    if self.unused > 0 { format!("; {} image(s) unused (no source labels them)", self.unused) } else { String::new() };
                format!("Folder dataset split by the study (seeded), {teaching}; {counts}{scored}{unused}.")
            }
        }
    }

    /// Width and height of each of `scenes`' images, as label files store them.
    pub fn sizes<'s>(scenes: impl IntoIterator<Item = &'s Scene>) -> Vec<(usize, usize)> {
        scenes.into_iter().map(|s| (s.image.width, s.image.height)).collect()
    }

    /// Whether every image generation 0 learns from (training and validation) has exact truth,
    /// so the study can train the exact-label ceiling on them.
    pub fn truth_covers_training(&self) -> bool {
        self.train.iter().chain(&self.validation).all(|l| l.scene.truth.is_some())
    }

    /// True when every test image has exact truth.
    pub fn test_has_truth(&self) -> bool {
        self.test.iter().all(|s| s.truth.is_some())
    }
}

fn has_truth_set(manifest: &Manifest) -> bool {
    matches!(&manifest.data, DataSpec::Folder(f) if f.truth.is_some())
}

/// Which images a source's masks cover when a study's data is written as a folder dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskCoverage {
    /// Each source masks the images it labelled in the study.
    OwnImages,
    /// Each source that labels real-style images masks every real-style image (several raters);
    /// a synthetic source, whose images are renders of its own, keeps its own.
    EveryImage,
}

impl StudyData {
    /// Writes every image (training, validation, test, pool, synthetic test) in the folder layout,
    /// with the exact truth as mask set `truth` and each source's labels as a mask set named after
    /// the source, so the study's data can be inspected and read back as a folder dataset.
    pub fn export(&self, manifest: &Manifest, root: &std::path::Path, coverage: MaskCoverage) -> Result<(), StudyError> {
        let labelled: Vec<&LabelledScene> = self.train.iter().chain(&self.validation).collect();
        let mut scenes: Vec<Scene> = labelled.iter().map(|l| l.scene.clone()).collect();
        scenes.extend(self.test.iter().chain(&self.pool).chain(&self.synthetic_test).cloned());
        let truth = MaskSet {
            name: "truth".into(),
            masks: scenes.iter().filter_map(|s| s.truth_labels().map(|t| (s.name.clone(), t.clone()))).collect(),
        };
        let mut sets = vec![truth];
        for (i, spec) in manifest.sources.iter().enumerate() {
            let mut masks: BTreeMap<String, LabelMap> =
                labelled.iter().filter(|l| l.source == i).map(|l| (l.scene.name.clone(), l.labels.clone())).collect();
            if let (MaskCoverage::EveryImage, Labeller::Simulated(labeller)) = (coverage, &spec.labeller)
                && labeller.style() == Style::Real
            {
                let others: Vec<&Scene> = scenes.iter().filter(|s| s.style == Style::Real && !masks.contains_key(&s.name)).collect();
                let labels = others
                    .par_iter()
                    .map(|s| Ok((s.name.clone(), labeller.label(s, &manifest.classes, manifest.seed).map_err(StudyError::Source)?)))
                    .collect::<Result<Vec<_>, StudyError>>()?;
                masks.extend(labels);
            }
            sets.push(MaskSet { name: spec.name.clone(), masks });
        }
        echoseg_scene::write_folder(root, &scenes, &sets)
            .map_err(|e| StudyError::Io { path: root.to_path_buf(), source: std::io::Error::other(e.to_string()) })
    }
}
