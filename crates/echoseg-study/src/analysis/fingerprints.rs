//! Bias fingerprints of label maps against the scenes' truth, with the subgroups the scenes'
//! object attributes define.

use echoseg_agree::{Fingerprint, FingerprintCounts, Ratio, Subgroups};
use echoseg_scene::{ClassTable, Scene, Truth};
use rayon::prelude::*;

/// Objects covering less than this share of the image are small.
pub const SMALL_OBJECT_SHARE: f64 = 0.01;

/// Per-pixel membership of small objects and of low-contrast objects.
pub fn subgroup_masks(truth: &Truth) -> (Vec<bool>, Vec<bool>) {
    let area = truth.labels.len() as f64;
    let small =
        (0..truth.labels.len()).map(|i| truth.object_at(i).is_some_and(|o| f64::from(o.area) < SMALL_OBJECT_SHARE * area)).collect();
    let low = (0..truth.labels.len()).map(|i| truth.object_at(i).is_some_and(|o| o.low_contrast)).collect();
    (small, low)
}

/// The fingerprint counts of one label map against its scene's truth (`None` without truth).
pub fn image_counts(labels: &[u8], scene: &Scene, classes: &ClassTable) -> Option<FingerprintCounts> {
    let truth = scene.truth.as_ref()?;
    let (small, low) = subgroup_masks(truth);
    let groups = Subgroups { thin: classes.index_of("thin"), small: &small, low_contrast: &low, shadow: &truth.shadow };
    Some(FingerprintCounts::of_image(labels, &truth.labels.labels, truth.labels.width, truth.labels.height, classes.len(), &groups))
}

/// The fingerprint of `labels[i]` against `scenes[i]`'s truth, over the scenes that have truth.
pub fn fingerprint_of(labels: &[&[u8]], scenes: &[&Scene], classes: &ClassTable) -> Fingerprint {
    labels
        .par_iter()
        .zip(scenes.par_iter())
        .filter_map(|(l, s)| image_counts(l, s, classes))
        .collect::<Vec<_>>()
        .iter()
        // Summed in image order: the boundary offset is a floating-point sum.
        .fold(FingerprintCounts::default(), |mut a, b| {
            a.merge(b);
            a
        })
        .fingerprint()
}

/// Share of the cue's pixels (where an image and its twin with the cue flipped differ: the
/// tinted objects) that are labelled the cue's `class` in one of the two and not in the other:
/// the shortcut at work. Changes between other classes are left out, so a network merely
/// sensitive to any change of colour scores near 0.
pub fn cue_reliance(labels: &[Vec<u8>], twin_labels: &[Vec<u8>], scenes: &[Scene], twins: &[Scene], class: u8) -> Option<f64> {
    let mut pooled = Ratio::default();
    for (((a, b), s), t) in labels.iter().zip(twin_labels).zip(scenes).zip(twins) {
        pooled.merge(cue_changes(a, b, s, t, class));
    }
    pooled.value()
}

/// Of one image's cue pixels (where it and its `twin` differ), how many are labelled `class`
/// in exactly one of `labels` and `twin_labels`.
pub fn cue_changes(labels: &[u8], twin_labels: &[u8], scene: &Scene, twin: &Scene, class: u8) -> Ratio {
    let plane = scene.image.plane();
    let differs = |i: usize| (0..3).any(|c| scene.image.pixels[c * plane + i] != twin.image.pixels[c * plane + i]);
    let mut r = Ratio::default();
    for (i, (&x, &y)) in labels.iter().zip(twin_labels).enumerate() {
        if differs(i) {
            r.total += 1;
            r.hits += u64::from((x == class) != (y == class));
        }
    }
    r
}

/// Borrowed views of owned label maps.
pub fn as_slices(labels: &[Vec<u8>]) -> Vec<&[u8]> {
    labels.iter().map(Vec::as_slice).collect()
}
