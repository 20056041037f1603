//! Label sources: labellers with known bias models, each applied to a share of the training images.
//!
//! | source | bias model |
//! | --- | --- |
//! | `exact` | none: the truth (the oracle baseline) |
//! | `manual` | random boundary jitter, polygon simplification, missed small objects, class slips; systematic dilation or erosion, skipped thin structures, a fixed class confusion |
//! | `heuristic` | whatever its algorithm gets wrong: threshold (Otsu or fixed), opening/closing, connected components, shape rules; shadows are included, faint objects missed, touching objects merged, thin structures broken |
//! | `synthetic` | exact labels on images rendered in the flat synthetic style: a domain gap |
//! | `folder` | the user's masks, whatever their biases |

use std::collections::BTreeMap;

use crate::morph;
use crate::outline;
use crate::raster::{ClassId, ClassTable, LabelMap};
use crate::rng::Rng;
use crate::world::{ObjectAttributes, Scene, Style, Truth};

/// Objects thinner than this (area over half the perimeter, px) are thin structures.
const THIN_BELOW: f32 = 2.6;

/// Systematic and random errors of a human annotator.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ManualBias {
    /// Consistent boundary offset in px: positive dilates every object, negative erodes it.
    pub dilate: f32,
    /// Amplitude in px of a smooth random boundary wobble, different for every object.
    pub jitter: f32,
    /// Objects are drawn as polygons simplified to this tolerance in px (0 = traced exactly).
    pub simplify: f32,
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

/// A classic image-processing pipeline: threshold, opening and closing, connected components,
/// shape rules for the class.
#[derive(Clone, Debug, PartialEq)]
pub struct HeuristicRules {
    /// The grey-level threshold.
    pub threshold: Threshold,
    /// With Otsu, images whose two grey modes are closer than this are left all background.
    pub min_separation: f32,
    /// Radius of the morphological opening that removes specks (0 = none).
    pub opening: f32,
    /// Radius of the morphological closing that bridges gaps (0 = none).
    pub closing: f32,
    /// Components smaller than this many pixels are dropped.
    pub min_area: u32,
    /// Components thinner than this (area over half the perimeter, px) are `thin`.
    pub thin_below: f32,
    /// Components that fill at least this share of their bounding box are `box`.
    pub box_fill_above: f32,
}

impl Default for HeuristicRules {
    fn default() -> Self {
        Self {
            threshold: Threshold::Otsu,
            min_separation: 0.15,
            opening: 0.0,
            closing: 0.0,
            min_area: 4,
            thin_below: THIN_BELOW,
            box_fill_above: 0.88,
        }
    }
}

/// One set of masks read from a folder dataset (`masks/SET/NAME.png`), by image name.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSet {
    /// The set's directory name.
    pub name: String,
    /// Masks by image name (file stem).
    pub masks: BTreeMap<String, LabelMap>,
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
    /// Exact labels of images rendered in the synthetic style.
    Synthetic,
    /// Masks from disk.
    Folder(MaskSet),
}

/// Why a source could not label an image.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The source simulates errors on the truth, and this image has none.
    #[error("the {kind} source needs the exact truth, and image {image} has none (give the folder a truth mask set)")]
    NeedsTruth {
        /// The source kind.
        kind: &'static str,
        /// The image name.
        image: String,
    },
    /// A folder source has no mask for this image.
    #[error("mask set {set} has no mask for image {image}")]
    MissingMask {
        /// The mask set.
        set: String,
        /// The image name.
        image: String,
    },
}

impl LabelSource {
    /// The source kind as written in manifests.
    pub fn kind(&self) -> &'static str {
        match self {
            LabelSource::Exact => "exact",
            LabelSource::Manual(_) => "manual",
            LabelSource::Heuristic(_) => "heuristic",
            LabelSource::Synthetic => "synthetic",
            LabelSource::Folder(_) => "folder",
        }
    }

    /// The style the source's images are rendered in, for generated worlds.
    pub fn style(&self) -> Style {
        match self {
            LabelSource::Synthetic => Style::Synthetic,
            _ => Style::Real,
        }
    }

    /// Labels `scene` with `classes`; `seed` drives random errors, so labels are reproducible.
    pub fn label(&self, scene: &Scene, classes: &ClassTable, seed: u64) -> Result<LabelMap, SourceError> {
        let truth = || scene.truth.as_ref().ok_or_else(|| SourceError::NeedsTruth { kind: self.kind(), image: scene.name.clone() });
        match self {
            LabelSource::Exact | LabelSource::Synthetic => Ok(truth()?.labels.clone()),
            LabelSource::Manual(bias) => Ok(label_manual(bias, scene.index, truth()?, classes, seed)),
            LabelSource::Heuristic(rules) => Ok(label_heuristic(rules, scene, classes)),
            LabelSource::Folder(set) => set
                .masks
                .get(&scene.name)
                .cloned()
                .ok_or_else(|| SourceError::MissingMask { set: set.name.clone(), image: scene.name.clone() }),
        }
    }
}

fn label_manual(bias: &ManualBias, index: u32, truth: &Truth, classes: &ClassTable, seed: u64) -> LabelMap {
    let mut rng = Rng::with_index(seed, "manual", u64::from(index));
    let thin = classes.index_of("thin");
    let foreground: Vec<ClassId> = (1..classes.len() as ClassId).collect();
    // The class each object receives, or 0 when the annotator skips it.
    let given: Vec<ClassId> = truth
        .objects
        .iter()
        .map(|o| {
            // Draw every random number for every object so that one knob never shifts another's stream.
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
    let (w, h) = (truth.labels.width, truth.labels.height);
    let mut instances = truth.instances.clone();
    if bias.jitter > 0.0 {
        instances = jitter(&instances, w, h, &truth.objects, bias.jitter, &mut Rng::with_index(seed, "jitter", u64::from(index)));
    }
    if bias.simplify > 0.0 {
        instances = simplify_outlines(&instances, w, h, truth.objects.len(), bias.simplify);
    }
    let mut map =
        LabelMap { width: w, height: h, labels: instances.iter().map(|&i| if i == 0 { 0 } else { given[usize::from(i) - 1] }).collect() };
    if bias.dilate > 0.0 {
        map = morph::dilate(&map, bias.dilate);
    } else if bias.dilate < 0.0 {
        map = morph::erode(&map, -bias.dilate);
    }
    map
}

/// Moves every object's boundary by a smooth random field in [−amplitude, amplitude] px: a pixel
/// belongs to an object when its signed distance to the object's boundary is below the field.
/// Thin objects only ever grow: an annotator's wobbly stroke never breaks a line in two.
fn jitter(instances: &[u16], w: usize, h: usize, objects: &[ObjectAttributes], amplitude: f32, rng: &mut Rng) -> Vec<u16> {
    // Three random waves per object, about one cycle per 12 px.
    let waves: Vec<[(f32, f32, f32); 3]> = objects
        .iter()
        .map(|_| {
            std::array::from_fn(|_| {
                let a = rng.range(0.0, std::f32::consts::TAU);
                let f = rng.range(0.35, 0.7);
                (f * a.cos(), f * a.sin(), rng.range(0.0, std::f32::consts::TAU))
            })
        })
        .collect();
    let field = |o: usize, x: usize, y: usize| {
        let s: f32 = waves[o].iter().map(|&(fx, fy, p)| (fx * x as f32 + fy * y as f32 + p).sin()).sum();
        let f = amplitude * s / 3.0;
        if objects[o].thinness < THIN_BELOW { f.max(0.0) } else { f }
    };
    let reach = amplitude.ceil() + 1.0;
    let offsets = morph::disc_offsets(reach);
    let at = |x: usize, y: usize, (dx, dy): (i32, i32)| {
        let (nx, ny) = (x as i64 + i64::from(dx), y as i64 + i64::from(dy));
        (nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64).then(|| instances[ny as usize * w + nx as usize])
    };
    let mut out = instances.to_vec();
    for y in 0..h {
        for x in 0..w {
            let own = instances[y * w + x];
            if own != 0 {
                // Depth inside: distance to the nearest pixel not of this object, minus half a pixel.
                let depth = offsets
                    .iter()
                    .find(|&&o| at(x, y, o).is_some_and(|n| n != own))
                    .map_or(f32::INFINITY, |&(dx, dy)| ((dx * dx + dy * dy) as f32).sqrt() - 0.5);
                if -depth >= field(usize::from(own) - 1, x, y) {
                    out[y * w + x] = 0;
                }
            }
            // Growth outward: the nearest other object whose field reaches this pixel takes it.
            for &(dx, dy) in &offsets {
                let Some(n) = at(x, y, (dx, dy)).filter(|&n| n != 0 && n != own) else { continue };
                let distance = ((dx * dx + dy * dy) as f32).sqrt() - 0.5;
                if own == 0 && distance < field(usize::from(n) - 1, x, y) {
                    out[y * w + x] = n;
                    break;
                }
            }
        }
    }
    out
}

/// Redraws every object as its outline polygon simplified to `tolerance` px.
fn simplify_outlines(instances: &[u16], w: usize, h: usize, objects: usize, tolerance: f32) -> Vec<u16> {
    let mut out = vec![0u16; instances.len()];
    for inst in 1..=objects as u16 {
        let member: Vec<bool> = instances.iter().map(|&i| i == inst).collect();
        let (ids, comps) = morph::components(&member, w, h);
        for (c, comp) in comps.iter().enumerate() {
            let start = (comp.bbox[1]..=comp.bbox[3])
                .flat_map(|y| (comp.bbox[0]..=comp.bbox[2]).map(move |x| (x, y)))
                .find(|&(x, y)| ids[y * w + x] == c as u32);
            let Some((sx, sy)) = start else { continue };
            let inside =
                |x: i64, y: i64| x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h && ids[y as usize * w + x as usize] == c as u32;
            let polygon = outline::simplify(&outline::trace(&inside, (sx as i64, sy as i64)), f64::from(tolerance));
            for (x, y) in outline::rasterise(&polygon, w, h) {
                if out[y * w + x] == 0 {
                    out[y * w + x] = inst;
                }
            }
        }
    }
    out
}

fn label_heuristic(rules: &HeuristicRules, scene: &Scene, classes: &ClassTable) -> LabelMap {
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
    if rules.closing > 0.0 {
        mask = morph::close_mask(&mask, w, h, rules.closing);
    }
    let (ids, comps) = morph::components(&mask, w, h);
    let (thin, boxes, blob) = (classes.index_of("thin"), classes.index_of("box"), classes.index_of("blob"));
    // Without a class called `blob`, compact components go to the first class that is not thin.
    let compact = blob.or_else(|| (1..classes.len() as ClassId).find(|&c| Some(c) != thin)).or(thin).unwrap_or(1);
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
                compact
            }
        })
        .collect();
    LabelMap { width: w, height: h, labels: ids.iter().map(|&i| if i == u32::MAX { 0 } else { class_of[i as usize] }).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::generate_world;
    use crate::world::{CueRule, WorldConfig};

    fn share_labelled(scenes: &[Scene], source: &LabelSource, classes: &ClassTable, pick: impl Fn(&ObjectAttributes) -> bool) -> f32 {
        let (mut hit, mut all) = (0u64, 0u64);
        for s in scenes {
            let labels = source.label(s, classes, 9).unwrap();
            let t = s.truth.as_ref().unwrap();
            for (i, &l) in labels.labels.iter().enumerate() {
                if t.object_at(i).is_some_and(&pick) {
                    all += 1;
                    hit += u64::from(l != 0);
                }
            }
        }
        hit as f32 / all.max(1) as f32
    }

    fn scenes(world: &WorldConfig, seed: u64, n: u32) -> Vec<Scene> {
        generate_world(world, seed, 0, n, Style::Real, CueRule::Absent)
    }

    #[test]
    fn heuristic_misses_low_contrast_objects_but_finds_strong_ones() {
        let world = WorldConfig::default();
        let s = scenes(&world, 5, 40);
        let src = LabelSource::Heuristic(HeuristicRules::default());
        let classes = world.class_table();
        assert!(share_labelled(&s, &src, &classes, |o| o.low_contrast) < 0.1);
        assert!(share_labelled(&s, &src, &classes, |o| !o.low_contrast) > 0.9);
    }

    #[test]
    fn manual_skip_thin_and_miss_small() {
        let world = WorldConfig::default();
        let s = scenes(&world, 5, 20);
        let classes = world.class_table();
        let src = LabelSource::Manual(ManualBias { skip_thin: true, miss_small_below: 30, ..ManualBias::default() });
        assert_eq!(share_labelled(&s, &src, &classes, |o| o.class == 2), 0.0);
        assert_eq!(share_labelled(&s, &src, &classes, |o| o.area < 30), 0.0);
        assert!(share_labelled(&s, &src, &classes, |o| o.class == 1 && o.area >= 30) > 0.99);
    }

    #[test]
    fn jitter_and_simplification_change_boundaries_but_not_much_area() {
        let world = WorldConfig::default();
        let s = scenes(&world, 6, 20);
        let classes = world.class_table();
        for bias in [ManualBias { jitter: 1.5, ..ManualBias::default() }, ManualBias { simplify: 1.5, ..ManualBias::default() }] {
            let src = LabelSource::Manual(bias.clone());
            let (mut changed, mut fg_truth, mut fg_label) = (0usize, 0usize, 0usize);
            for scene in &s {
                let labels = src.label(scene, &classes, 1).unwrap();
                let truth = &scene.truth.as_ref().unwrap().labels;
                changed += labels.labels.iter().zip(&truth.labels).filter(|(a, b)| a != b).count();
                fg_truth += truth.labels.iter().filter(|&&l| l != 0).count();
                fg_label += labels.labels.iter().filter(|&&l| l != 0).count();
            }
            assert!(changed > fg_truth / 20, "{bias:?} changed only {changed} pixels");
            let ratio = fg_label as f32 / fg_truth as f32;
            assert!((0.8..1.25).contains(&ratio), "{bias:?} changed the foreground area by a factor {ratio}");
        }
    }

    #[test]
    fn sources_that_need_truth_say_so() {
        let world = WorldConfig::default();
        let mut scene = scenes(&world, 1, 1).remove(0);
        scene.truth = None;
        let err = LabelSource::Exact.label(&scene, &world.class_table(), 0).unwrap_err();
        assert!(err.to_string().contains("needs the exact truth"), "{err}");
        assert!(LabelSource::Heuristic(HeuristicRules::default()).label(&scene, &world.class_table(), 0).is_ok());
    }
}
