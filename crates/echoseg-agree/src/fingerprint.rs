//! Bias fingerprints: one signed number per bias, measured against truth.

use serde::{Deserialize, Serialize};

use crate::calibration::{BoundaryMatch, boundary_match};
use crate::distance::{is_far, squared_distance};
use crate::metric::{BOUNDARY_TOLERANCE, Bias};

/// Predicted boundary pixels farther than this from the true boundary belong to objects the
/// other map does not have at all; they measure detection, not boundary placement.
pub const DEFAULT_MAX_OFFSET: f32 = 6.0;

/// Sum and count of signed boundary distances, so images can be pooled before averaging.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BoundaryOffset {
    /// Sum of signed distances in px.
    pub sum: f64,
    /// Number of boundary pixels measured.
    pub count: u64,
}

impl BoundaryOffset {
    /// The mean signed offset in px (+ = over-segmentation); `None` without boundary pixels.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Pools another measurement into this one.
    pub fn merge(&mut self, other: BoundaryOffset) {
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// Boundary offset of `predicted` against `truth` over the foreground classes `1..classes`.
///
/// The boundary of a class region is its inner boundary: the pixels of the class with a
/// 4-neighbour (inside the image) of another class. For every predicted boundary pixel, the
/// Euclidean distance to the nearest true boundary pixel of the same class, signed + when the
/// pixel lies outside the true region and − inside, so a perfect prediction scores 0 and one
/// dilated (eroded) by k px about +k (−k). Pixels farther than `max_offset` px are left out:
/// they belong to missed or invented objects, not misplaced boundaries.
pub fn boundary_offset(predicted: &[u8], truth: &[u8], width: usize, height: usize, classes: usize, max_offset: f32) -> BoundaryOffset {
    let mut result = BoundaryOffset::default();
    let mut true_boundary = vec![false; truth.len()];
    let mut distance = Vec::new();
    for c in 1..classes as u8 {
        if !predicted.contains(&c) || !truth.contains(&c) {
            continue;
        }
        for (i, b) in true_boundary.iter_mut().enumerate() {
            *b = truth[i] == c && on_boundary(truth, width, height, i % width, i / width, c);
        }
        squared_distance(&true_boundary, width, height, &mut distance);
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                if predicted[i] != c || !on_boundary(predicted, width, height, x, y, c) || is_far(distance[i]) {
                    continue;
                }
                let d = distance[i].sqrt();
                let signed = if truth[i] == c { -d } else { d };
                if d <= max_offset {
                    result.sum += f64::from(signed);
                    result.count += 1;
                }
            }
        }
    }
    result
}

fn on_boundary(map: &[u8], width: usize, height: usize, x: usize, y: usize, c: u8) -> bool {
    (x > 0 && map[y * width + x - 1] != c)
        || (x + 1 < width && map[y * width + x + 1] != c)
        || (y > 0 && map[(y - 1) * width + x] != c)
        || (y + 1 < height && map[(y + 1) * width + x] != c)
}

/// Hits over a total, pooled over images before dividing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ratio {
    /// Counted hits.
    pub hits: u64,
    /// Counted cases.
    pub total: u64,
}

impl Ratio {
    /// hits / total; `None` without cases.
    pub fn value(&self) -> Option<f64> {
        (self.total > 0).then(|| self.hits as f64 / self.total as f64)
    }

    /// Pools another count into this one.
    pub fn merge(&mut self, other: Ratio) {
        self.hits += other.hits;
        self.total += other.total;
    }
}

/// Among pixels where `member` is true, those whose predicted class equals the true class.
pub fn subgroup_recall(predicted: &[u8], truth: &[u8], member: impl Fn(usize) -> bool) -> Ratio {
    let mut r = Ratio::default();
    for (i, (&p, &t)) in predicted.iter().zip(truth).enumerate() {
        if member(i) {
            r.total += 1;
            r.hits += u64::from(p == t);
        }
    }
    r
}

/// Among pixels where `member` is true, those predicted as any foreground class (label ≠ 0).
pub fn foreground_rate(predicted: &[u8], member: impl Fn(usize) -> bool) -> Ratio {
    let mut r = Ratio::default();
    for (i, &p) in predicted.iter().enumerate() {
        if member(i) {
            r.total += 1;
            r.hits += u64::from(p != 0);
        }
    }
    r
}

/// Among pixels where `member` is true, those labelled differently in `a` and `b`.
pub fn change_rate(a: &[u8], b: &[u8], member: impl Fn(usize) -> bool) -> Ratio {
    let mut r = Ratio::default();
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        if member(i) {
            r.total += 1;
            r.hits += u64::from(x != y);
        }
    }
    r
}

/// Per-pixel subgroups of one image, for the subgroup fingerprints.
#[derive(Clone, Copy, Debug)]
pub struct Subgroups<'a> {
    /// The class of thin structures, if the data has one.
    pub thin: Option<u8>,
    /// Pixels of small objects.
    pub small: &'a [bool],
    /// Pixels of low-contrast objects.
    pub low_contrast: &'a [bool],
    /// Background pixels in a cast shadow.
    pub shadow: &'a [bool],
}

/// The counts behind a fingerprint, pooled over images.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FingerprintCounts {
    /// Signed boundary distances.
    pub boundary: BoundaryOffset,
    /// Thin-structure pixels recovered.
    pub thin: Ratio,
    /// Small-object pixels recovered.
    pub small: Ratio,
    /// Low-contrast-object pixels recovered.
    pub low_contrast: Ratio,
    /// Shadow pixels labelled as foreground.
    pub shadow: Ratio,
    /// Boundary pixels matched within [`BOUNDARY_TOLERANCE`].
    pub boundary_match: BoundaryMatch,
}

impl FingerprintCounts {
    /// Counts one image.
    pub fn of_image(predicted: &[u8], truth: &[u8], width: usize, height: usize, classes: usize, groups: &Subgroups<'_>) -> Self {
        Self {
            boundary: boundary_offset(predicted, truth, width, height, classes, DEFAULT_MAX_OFFSET),
            thin: groups.thin.map_or_else(Ratio::default, |c| subgroup_recall(predicted, truth, |i| truth[i] == c)),
            small: subgroup_recall(predicted, truth, |i| groups.small[i]),
            low_contrast: subgroup_recall(predicted, truth, |i| groups.low_contrast[i]),
            shadow: foreground_rate(predicted, |i| groups.shadow[i]),
            boundary_match: boundary_match(predicted, truth, width, height, classes, BOUNDARY_TOLERANCE),
        }
    }

    /// Pools another image's counts.
    pub fn merge(&mut self, other: &FingerprintCounts) {
        self.boundary.merge(other.boundary);
        self.thin.merge(other.thin);
        self.small.merge(other.small);
        self.low_contrast.merge(other.low_contrast);
        self.shadow.merge(other.shadow);
        self.boundary_match.merge(&other.boundary_match);
    }

    /// The fingerprint these counts give (cue reliance and domain gap need other images and stay empty).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            boundary_offset: self.boundary.mean(),
            boundary_f1: self.boundary_match.f1(),
            thin_recall: self.thin.value(),
            small_object_recall: self.small.value(),
            low_contrast_recall: self.low_contrast.value(),
            shadow_fp_rate: self.shadow.value(),
            cue_reliance: None,
            domain_gap: None,
        }
    }
}

/// One signed number per bias, measured against truth; `None` where the data cannot show it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fingerprint {
    /// Mean signed boundary offset in px (+ = over-segmentation); see [`boundary_offset`].
    pub boundary_offset: Option<f64>,
    /// Boundary F1 at [`BOUNDARY_TOLERANCE`] px; see [`BoundaryMatch::f1`].
    pub boundary_f1: Option<f64>,
    /// Share of thin-structure pixels labelled as thin.
    pub thin_recall: Option<f64>,
    /// Share of small-object pixels given their true class.
    pub small_object_recall: Option<f64>,
    /// Share of low-contrast-object pixels given their true class.
    pub low_contrast_recall: Option<f64>,
    /// Share of cast-shadow pixels (background in truth) labelled as foreground.
    pub shadow_fp_rate: Option<f64>,
    /// Share of the cue's pixels (the tinted objects) whose membership of the cue's class changes when only the cue is flipped.
    pub cue_reliance: Option<f64>,
    /// mIoU on real-style minus mIoU on synthetic-style test images.
    pub domain_gap: Option<f64>,
}

impl Fingerprint {
    /// The value of one bias.
    pub fn get(&self, bias: Bias) -> Option<f64> {
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

    /// Every bias with its value, in [`Bias::ALL`] order.
    pub fn named(&self) -> [(Bias, Option<f64>); 8] {
        Bias::ALL.map(|b| (b, self.get(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(size: usize, r: f32, class: u8) -> Vec<u8> {
        let c = size as f32 / 2.0;
        (0..size * size)
            .map(|i| {
                let (x, y) = ((i % size) as f32 + 0.5 - c, (i / size) as f32 + 0.5 - c);
                if (x * x + y * y).sqrt() <= r { class } else { 0 }
            })
            .collect()
    }

    #[test]
    fn perfect_is_zero_and_a_larger_disc_is_over_segmented_by_its_margin() {
        let truth = disc(40, 10.0, 1);
        let same = boundary_offset(&truth, &truth, 40, 40, 2, DEFAULT_MAX_OFFSET);
        assert_eq!(same.mean(), Some(0.0));
        for k in [1.0f32, 2.0, 3.0] {
            let bigger = disc(40, 10.0 + k, 1);
            let m = boundary_offset(&bigger, &truth, 40, 40, 2, DEFAULT_MAX_OFFSET).mean().unwrap();
            assert!((m - f64::from(k)).abs() < 0.25, "dilated by {k}: {m}");
            let smaller = disc(40, 10.0 - k, 1);
            let m = boundary_offset(&smaller, &truth, 40, 40, 2, DEFAULT_MAX_OFFSET).mean().unwrap();
            assert!((m + f64::from(k)).abs() < 0.25, "eroded by {k}: {m}");
        }
    }

    #[test]
    fn missing_class_gives_no_measurement() {
        let truth = disc(20, 5.0, 1);
        let empty = vec![0u8; 400];
        assert_eq!(boundary_offset(&empty, &truth, 20, 20, 2, DEFAULT_MAX_OFFSET).mean(), None);
    }
}
