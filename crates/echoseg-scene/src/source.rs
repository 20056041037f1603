//! Label sources: labellers with known bias models, each applied to a share of the training images.

use crate::morph;
use crate::raster::{ClassId, LabelMap};
use crate::rng::Rng;
use crate::world::{ObjectKind, Scene, WorldConfig};

/// Systematic and random errors of a human annotator.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ManualBias {
    /// Consistent boundary offset in px: positive dilates every object, negative erodes it.
    pub dilate: f32,
    /// Objects smaller than this many pixels are missed (0 = none missed).
    pub miss_small_below: u32,
    /// Thin structures are not labelled at all.
    pub skip_thin: bool,
    /// Share of objects given a wrong, random foreground class.
    pub class_slip: f32,
    /// A fixed confusion: every object of the first class is labelled as the second.
    pub confusion: Option<(ClassId, ClassId)>,
}

/// How the heuristic labeller picks its grey-level threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// Otsu's method per image.
    Otsu,
    /// A fixed grey level in [0, 1]; darker pixels are foreground.
    Fixed(f32),
}

/// A classic image-processing pipeline: threshold, opening, connected components, shape rules.
#[derive(Clone, Debug, PartialEq)]
pub struct HeuristicRules {
    /// The grey-level threshold.
    pub threshold: Threshold,
    /// With Otsu, images whose two grey modes are closer than this are left all background.
    pub min_separation: f32,
    /// Radius of the morphological opening that removes specks (0 = none).
    pub opening: f32,
    /// Components smaller than this many pixels are dropped.
    pub min_area: u32,
    /// Components thinner than this (area over half the perimeter, px) are `thin`.
    pub thin_below: f32,
    /// Components that fill at least this share of their bounding box are `box`.
    pub box_fill_above: f32,
}

impl Default for HeuristicRules {
    fn default() -> Self {
        Self { threshold: Threshold::Otsu, min_separation: 0.15, opening: 0.0, min_area: 4, thin_below: 2.6, box_fill_above: 0.88 }
    }
}

/// A labeller with a known bias model.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelSource {
    /// The exact truth: the oracle baseline.
    Exact,
    /// A human annotator with the given errors.
    Manual(ManualBias),
    /// A classic algorithm run on the pixels; its errors come from the algorithm.
    Heuristic(HeuristicRules),
}

impl LabelSource {
    /// The source kind as written in manifests.
    pub fn kind(&self) -> &'static str {
        match self {
            LabelSource::Exact => "exact",
            LabelSource::Manual(_) => "manual",
            LabelSource::Heuristic(_) => "heuristic",
        }
    }

    /// Labels `scene`; `seed` drives the random errors, so labels are reproducible.
    pub fn label(&self, scene: &Scene, world: &WorldConfig, seed: u64) -> LabelMap {
        match self {
            LabelSource::Exact => scene.truth.clone(),
            LabelSource::Manual(bias) => label_manual(bias, scene, world, seed),
            LabelSource::Heuristic(rules) => label_heuristic(rules, scene, world),
        }
    }
}

fn label_manual(bias: &ManualBias, scene: &Scene, world: &WorldConfig, seed: u64) -> LabelMap {
    let mut rng = Rng::with_index(seed, "manual", u64::from(scene.index));
    let thin = world.class_of(ObjectKind::Thin);
    let foreground: Vec<ClassId> = (1..world.num_classes() as ClassId).collect();
    // The class each object receives, or 0 when the annotator skips it.
    let given: Vec<ClassId> = scene
        .objects
        .iter()
        .map(|o| {
            let slip = rng.chance(bias.class_slip);
            let pick = rng.int(0, foreground.len() as i64 - 2).max(0) as usize;
            if o.area < bias.miss_small_below || (bias.skip_thin && Some(o.class) == thin) {
                return 0;
            }
            let mut class = o.class;
            if let Some((from, to)) = bias.confusion
                && class == from
            {
                class = to;
            }
            if slip && foreground.len() > 1 {
                let others: Vec<ClassId> = foreground.iter().copied().filter(|&c| c != class).collect();
                class = others[pick.min(others.len() - 1)];
            }
            class
        })
        .collect();
    let mut map = LabelMap {
        width: scene.truth.width,
        height: scene.truth.height,
        labels: scene.instances.iter().map(|&i| if i == 0 { 0 } else { given[usize::from(i) - 1] }).collect(),
    };
    if bias.dilate > 0.0 {
        map = morph::dilate(&map, bias.dilate);
    } else if bias.dilate < 0.0 {
        map = morph::erode(&map, -bias.dilate);
    }
    map
}

fn label_heuristic(rules: &HeuristicRules, scene: &Scene, world: &WorldConfig) -> LabelMap {
    let (w, h) = (scene.image.width, scene.image.height);
    let grey = scene.image.grey();
    let threshold = match rules.threshold {
        Threshold::Fixed(t) => Some(t),
        Threshold::Otsu => {
            let t = morph::otsu_threshold(&grey);
            let mean = |dark: bool| {
                let (sum, n) = grey.iter().filter(|&&g| (g < t) == dark).fold((0.0, 0u32), |(s, n), &g| (s + g, n + 1));
                if n == 0 { t } else { sum / n as f32 }
            };
            (mean(false) - mean(true) >= rules.min_separation).then_some(t)
        }
    };
    let Some(threshold) = threshold else {
        return LabelMap::filled(w, h, 0);
    };
    let mut mask: Vec<bool> = grey.iter().map(|&g| g < threshold).collect();
    if rules.opening > 0.0 {
        mask = morph::open_mask(&mask, w, h, rules.opening);
    }
    let (ids, comps) = morph::components(&mask, w, h);
    let thin = world.class_of(ObjectKind::Thin);
    let boxes = world.class_of(ObjectKind::Box);
    let blob = world.class_of(ObjectKind::Blob);
    let fallback = world.classes.iter().filter_map(|&k| world.class_of(k)).find(|&c| Some(c) != thin).or(thin).unwrap_or(1);
    let class_of: Vec<ClassId> = comps
        .iter()
        .map(|c| {
            if c.area < rules.min_area {
                0
            } else if let Some(t) = thin.filter(|_| c.thickness() < rules.thin_below) {
                t
            } else if let Some(b) = boxes.filter(|_| c.fill() >= rules.box_fill_above) {
                b
            } else {
                blob.unwrap_or(fallback)
            }
        })
        .collect();
    LabelMap { width: w, height: h, labels: ids.iter().map(|&i| if i == u32::MAX { 0 } else { class_of[i as usize] }).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Style, generate_world};

    fn share_labelled(
        scenes: &[Scene],
        source: &LabelSource,
        world: &WorldConfig,
        pick: impl Fn(&crate::world::ObjectAttributes) -> bool,
    ) -> f32 {
        let (mut hit, mut all) = (0u64, 0u64);
        for s in scenes {
            let labels = source.label(s, world, 9);
            for (i, &inst) in s.instances.iter().enumerate() {
                if inst != 0 && pick(&s.objects[usize::from(inst) - 1]) {
                    all += 1;
                    hit += u64::from(labels.labels[i] != 0);
                }
            }
        }
        hit as f32 / all.max(1) as f32
    }

    #[test]
    fn heuristic_misses_low_contrast_objects_but_finds_strong_ones() {
        let world = WorldConfig::default();
        let scenes = generate_world(&world, 5, 0, 40, Style::Real);
        let src = LabelSource::Heuristic(HeuristicRules::default());
        let faint = share_labelled(&scenes, &src, &world, |o| o.low_contrast);
        let strong = share_labelled(&scenes, &src, &world, |o| !o.low_contrast);
        assert!(faint < 0.1, "low-contrast recall {faint}");
        assert!(strong > 0.9, "strong recall {strong}");
    }

    #[test]
    fn manual_skip_thin_and_miss_small() {
        let world = WorldConfig::default();
        let scenes = generate_world(&world, 5, 0, 20, Style::Real);
        let src = LabelSource::Manual(ManualBias { skip_thin: true, miss_small_below: 30, ..ManualBias::default() });
        assert_eq!(share_labelled(&scenes, &src, &world, |o| o.class == 2), 0.0);
        assert_eq!(share_labelled(&scenes, &src, &world, |o| o.area < 30), 0.0);
        assert!(share_labelled(&scenes, &src, &world, |o| o.class == 1 && o.area >= 30) > 0.99);
    }
}
