//! The study's data: the world split into labelled (per source), validation, test and pool images.

use std::collections::BTreeMap;

use echoseg_scene::{LabelMap, Scene, Style, generate_world, scene_id};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;

/// A scene with the labels one source gave it.
#[derive(Clone, Debug)]
pub struct LabelledScene {
    /// The scene (image and exact truth).
    pub scene: Scene,
    /// Index of the source in the manifest.
    pub source: usize,
    /// The source's labels.
    pub labels: LabelMap,
}

/// Every image of a study, split.
#[derive(Clone, Debug)]
pub struct StudyData {
    /// Training images with their sources' labels.
    pub train: Vec<LabelledScene>,
    /// Validation images with their sources' labels (used for early stopping only).
    pub validation: Vec<LabelledScene>,
    /// Test images, scored against truth.
    pub test: Vec<Scene>,
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
    /// Unlabelled pool image ids.
    pub pool: Vec<String>,
}

/// How many of a source's `images` go to validation for a share `validation`.
pub fn validation_count(images: usize, validation: f32) -> usize {
    if validation <= 0.0 {
        return 0;
    }
    ((images as f32 * validation).round() as usize).clamp(1, images - 1)
}

impl StudyData {
    /// Generates the world and labels it. Scene indices are consecutive: each source's images,
    /// then the test images, then the pool, so adding pool images never changes earlier ones.
    pub fn generate(manifest: &Manifest) -> Self {
        let mut next = 0u32;
        let mut train = Vec::new();
        let mut validation = Vec::new();
        for (s, spec) in manifest.sources.iter().enumerate() {
            let scenes = generate_world(&manifest.world, manifest.seed, next, spec.images as u32, Style::Real);
            next += spec.images as u32;
            let held = validation_count(spec.images, manifest.split.validation);
            let labelled: Vec<LabelledScene> = scenes
                .into_par_iter()
                .map(|scene| {
                    let labels = spec.source.label(&scene, &manifest.world, manifest.seed);
                    LabelledScene { scene, source: s, labels }
                })
                .collect();
            let cut = labelled.len() - held;
            let mut labelled = labelled;
            validation.extend(labelled.split_off(cut));
            train.extend(labelled);
        }
        let test = generate_world(&manifest.world, manifest.seed, next, manifest.split.test as u32, Style::Real);
        next += manifest.split.test as u32;
        let pool = generate_world(&manifest.world, manifest.seed, next, manifest.split.pool as u32, Style::Real);
        Self { train, validation, test, pool }
    }

    /// The ids of every split, for the split files.
    pub fn splits(&self, manifest: &Manifest) -> Splits {
        let per_source = |set: &[LabelledScene]| {
            let mut map: BTreeMap<String, Vec<String>> = manifest.sources.iter().map(|s| (s.name.clone(), Vec::new())).collect();
            for l in set {
                map.entry(manifest.sources[l.source].name.clone()).or_default().push(l.scene.id());
            }
            map
        };
        Splits {
            train: per_source(&self.train),
            validation: per_source(&self.validation),
            test: self.test.iter().map(Scene::id).collect(),
            pool: self.pool.iter().map(|s| scene_id(s.index)).collect(),
        }
    }
}
