//! The study's data: images (generated or read from a folder) split into labelled (per source),
//! validation, test and pool images, with every source's labels.

use std::collections::BTreeMap;

use echoseg_scene::{ClassTable, CueRule, FolderDataset, LabelMap, LabelSource, MaskSet, Scene, Style, generate_scene, read_folder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::StudyError;
use crate::manifest::{DataSpec, Labeller, Manifest};

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
    /// Image width in pixels (all images share it).
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
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
}

/// How many of a source's `images` go to validation for a share `validation`.
pub fn validation_count(images: usize, validation: f32) -> usize {
    if validation <= 0.0 || images < 2 {
        return 0;
    }
    ((images as f32 * validation).round() as usize).clamp(1, images - 1)
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
    /// Generates or reads the images and labels them as the manifest says.
    pub fn load(manifest: &Manifest) -> Result<Self, StudyError> {
        match &manifest.data {
            DataSpec::World(_) => Self::generate(manifest),
            DataSpec::Folder(spec) => {
                let folder = read_folder(spec).map_err(StudyError::Data)?;
                Self::from_folder(manifest, folder)
            }
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
        let test = scenes(next, manifest.split.test, Style::Real, decorrelated);
        let test_twins = match manifest.cue {
            Some(_) => test
                .par_iter()
                .map(|t| generate_scene(world, seed, t.index, Style::Real, if t.cue { CueRule::Absent } else { CueRule::Present }))
                .collect(),
            None => Vec::new(),
        };
        next += manifest.split.test as u32;
        let pool = scenes(next, manifest.split.pool, Style::Real, decorrelated);
        next += manifest.split.pool as u32;
        let synthetic_test = scenes(next, manifest.synthetic_test, Style::Synthetic, decorrelated);
        Ok(Self {
            classes: manifest.classes.clone(),
            width: world.size,
            height: world.size,
            train,
            validation,
            test,
            test_twins,
            cue_class: manifest.cue.as_ref().map(|c| c.class),
            synthetic_test,
            pool,
        })
    }

    /// Splits a folder dataset. Test images are ones no training source labels (with truth when a
    /// truth set exists); each folder source takes its mask set's remaining images, each simulated
    /// source the next unassigned images; what is left becomes the pool. Assignment order is a
    /// seeded shuffle, so file names do not decide the split.
    fn from_folder(manifest: &Manifest, folder: FolderDataset) -> Result<Self, StudyError> {
        let FolderDataset { scenes, mask_sets } = folder;
        let n = scenes.len();
        let (width, height) = scenes.first().map_or((0, 0), |s| (s.image.width, s.image.height));
        let mut order: Vec<usize> = (0..n).collect();
        echoseg_scene::Rng::new(manifest.seed, "folder-split").shuffle(&mut order);
        let training_sets: Vec<&MaskSet> = manifest
            .sources
            .iter()
            .filter_map(|s| match &s.labeller {
                Labeller::Masks(set) => mask_sets.get(set),
                Labeller::Simulated(_) => None,
            })
            .collect();
        let in_training_set = |i: usize| training_sets.iter().any(|m| m.masks.contains_key(&scenes[i].name));
        let mut taken = vec![false; n];
        let take = |taken: &mut Vec<bool>, eligible: &dyn Fn(usize) -> bool, count: usize| -> Vec<usize> {
            let picked: Vec<usize> = order.iter().copied().filter(|&i| !taken[i] && eligible(i)).take(count).collect();
            for &i in &picked {
                taken[i] = true;
            }
            picked
        };
        let with_truth = has_truth_set(manifest);
        let test_idx = take(&mut taken, &|i| !in_training_set(i) && (scenes[i].truth.is_some() || !with_truth), manifest.split.test);
        if test_idx.is_empty() {
            return Err(StudyError::Config(
                "no image is left for the test split: every image is in a training mask set (or has no truth mask); add images or lower the sources' `images`".into(),
            ));
        }
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for (s, spec) in manifest.sources.iter().enumerate() {
            let labelled: Vec<LabelledScene> = match &spec.labeller {
                Labeller::Masks(set) => {
                    let masks = mask_sets.get(set).ok_or_else(|| StudyError::Config(format!("mask set {set} is missing")))?;
                    let idx = take(&mut taken, &|i| masks.masks.contains_key(&scenes[i].name), spec.images.unwrap_or(usize::MAX));
                    idx.into_iter()
                        .map(|i| LabelledScene { scene: scenes[i].clone(), source: s, labels: masks.masks[&scenes[i].name].clone() })
                        .collect()
                }
                Labeller::Simulated(labeller) => {
                    let needs_truth = !matches!(labeller, LabelSource::Heuristic(_));
                    let idx =
                        take(&mut taken, &|i| !in_training_set(i) && (!needs_truth || scenes[i].truth.is_some()), spec.images.unwrap_or(0));
                    label_all(idx.into_iter().map(|i| scenes[i].clone()).collect(), s, labeller, &manifest.classes, manifest.seed)?
                }
            };
            if labelled.len() < 2 {
                return Err(StudyError::Config(format!(
                    "source {} got {} image(s) from the folder; it needs at least 2 (training plus validation)",
                    spec.name,
                    labelled.len()
                )));
            }
            split_validation(labelled, manifest.split.validation, &mut train, &mut validation);
        }
        let pool_idx = take(&mut taken, &|_| true, manifest.split.pool);
        let pick = |idx: &[usize]| idx.iter().map(|&i| scenes[i].clone()).collect::<Vec<_>>();
        Ok(Self {
            classes: manifest.classes.clone(),
            width,
            height,
            train,
            validation,
            test: pick(&test_idx),
            test_twins: Vec::new(),
            cue_class: None,
            synthetic_test: Vec::new(),
            pool: pick(&pool_idx),
        })
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
        }
    }

    /// True when every test image has exact truth.
    pub fn test_has_truth(&self) -> bool {
        self.test.iter().all(|s| s.truth.is_some())
    }
}

fn has_truth_set(manifest: &Manifest) -> bool {
    matches!(&manifest.data, DataSpec::Folder(f) if f.truth.is_some())
}

impl StudyData {
    /// Writes every image (training, validation, test, pool, synthetic test) in the folder layout,
    /// with the exact truth as mask set `truth` and each source's labels as a mask set named after
    /// the source, so the study's data can be inspected and read back as a folder dataset.
    pub fn export(&self, manifest: &Manifest, root: &std::path::Path) -> Result<(), StudyError> {
        let labelled: Vec<&LabelledScene> = self.train.iter().chain(&self.validation).collect();
        let mut scenes: Vec<Scene> = labelled.iter().map(|l| l.scene.clone()).collect();
        scenes.extend(self.test.iter().chain(&self.pool).chain(&self.synthetic_test).cloned());
        let truth = MaskSet {
            name: "truth".into(),
            masks: scenes.iter().filter_map(|s| s.truth_labels().map(|t| (s.name.clone(), t.clone()))).collect(),
        };
        let mut sets = vec![truth];
        for (i, spec) in manifest.sources.iter().enumerate() {
            let masks = labelled.iter().filter(|l| l.source == i).map(|l| (l.scene.name.clone(), l.labels.clone())).collect();
            sets.push(MaskSet { name: spec.name.clone(), masks });
        }
        echoseg_scene::write_folder(root, &scenes, &sets)
            .map_err(|e| StudyError::Io { path: root.to_path_buf(), source: std::io::Error::other(e.to_string()) })
    }
}
