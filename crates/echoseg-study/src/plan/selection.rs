//! Which pseudo-labelled pixels a student learns from: all of them, the ones its teachers are
//! confident about, the easiest fraction by angular hardness, or those no verifier rule can prove
//! wrong. A rejected pixel becomes [`IGNORE`]: it carries no loss, so the student is not pushed
//! towards either class there.

use echoseg_nets::IGNORE;
use echoseg_scene::morph::{components, dilate_classes, erode_classes};
use echoseg_scene::{ClassId, LabelMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::plan::strategy::EVERY_LABEL;

/// A rule on the shape of one class's connected components.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ShapeRule {
    /// The class it applies to.
    pub class: ClassId,
    /// Components filling less of their bounding box than this are rejected.
    pub min_fill: f32,
    /// Components filling more of their bounding box than this are rejected.
    pub max_fill: f32,
}

/// Verifier rules: each rejects whole components of an object class that it can prove wrong.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VerifierRules {
    /// Components with fewer pixels are rejected (0 = no rule).
    pub min_area: u32,
    /// At most this many components per class and image are kept, the largest (`None` = no rule).
    pub max_components: Option<u32>,
    /// Shape rules per class.
    pub shapes: Vec<ShapeRule>,
}

/// How pixels are chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SelectionRule {
    /// Every pseudo-labelled pixel.
    All,
    /// Pixels whose teachers' mean top-class probability is at least `threshold`.
    Confidence {
        /// The probability a pixel needs.
        threshold: f32,
    },
    /// Per class, the `keep` share of its pixels with the smallest angular hardness.
    Hardness {
        /// The share kept, (0, 1].
        keep: f32,
    },
    /// Pixels of components no rule rejects.
    Verifier(VerifierRules),
}

/// A named selection of pseudo-labelled pixels, one axis of the study next to the strategy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Selection {
    /// Name in tables, run ids and the report.
    pub name: String,
    /// How it chooses.
    pub rule: SelectionRule,
}

impl Selection {
    /// Every pixel (the default).
    pub fn all() -> Self {
        Self { name: EVERY_LABEL.into(), rule: SelectionRule::All }
    }

    /// True when nothing is rejected.
    pub fn is_all(&self) -> bool {
        self.rule == SelectionRule::All
    }

    /// Rejects pixels of the pool's pseudo-labels `labels` (one map per image, of the width and
    /// height `sizes` gives)
    /// by setting them to [`IGNORE`]. `confidence` and `hardness` are per pixel, aligned with
    /// `labels`: the teachers' mean top-class probability and mean angular hardness (radians).
    pub fn apply(&self, labels: &mut [Vec<u8>], confidence: &[Vec<f32>], hardness: &[Vec<f32>], sizes: &[(usize, usize)]) {
        match &self.rule {
            SelectionRule::All => {}
            SelectionRule::Confidence { threshold } => labels.par_iter_mut().zip(confidence).for_each(|(l, c)| {
                l.iter_mut().zip(c).filter(|(_, c)| **c < *threshold).for_each(|(l, _)| *l = IGNORE);
            }),
            SelectionRule::Hardness { keep } => keep_easiest(labels, hardness, *keep),
            SelectionRule::Verifier(rules) => labels.par_iter_mut().zip(sizes).for_each(|(l, &(w, h))| verify(l, w, h, rules)),
        }
    }
}

/// Per class, keeps the `keep` share (rounded up) of its pixels with the smallest hardness across
/// every image; ties go to the earlier image and pixel, so the choice is the same every run.
/// Per class, because a global cut would drop a class whose pixels are all harder than the
/// background's (thin structures are) before it dropped any background.
fn keep_easiest(labels: &mut [Vec<u8>], hardness: &[Vec<f32>], keep: f32) {
    let mut by_class: Vec<Vec<(f32, usize, usize)>> = Vec::new();
    for (i, (l, h)) in labels.iter().zip(hardness).enumerate() {
        for (p, (&c, &a)) in l.iter().zip(h).enumerate() {
            if c == IGNORE {
                continue;
            }
            if by_class.len() <= usize::from(c) {
                by_class.resize(usize::from(c) + 1, Vec::new());
            }
            by_class[usize::from(c)].push((a, i, p));
        }
    }
    for mut pixels in by_class {
        pixels.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let kept = ((pixels.len() as f64 * f64::from(keep)).ceil() as usize).min(pixels.len());
        for &(_, i, p) in &pixels[kept..] {
            labels[i][p] = IGNORE;
        }
    }
}

fn verify(labels: &mut [u8], width: usize, height: usize, rules: &VerifierRules) {
    let classes = labels.iter().filter(|&&c| c != IGNORE).copied().max().unwrap_or(0);
    let mut reject = vec![false; labels.len()];
    for class in 1..=classes {
        let member: Vec<bool> = labels.iter().map(|&c| c == class).collect();
        let (ids, found) = components(&member, width, height);
        let shape = rules.shapes.iter().find(|s| s.class == class);
        let mut bad: Vec<bool> = found
            .iter()
            .map(|c| c.area < rules.min_area || shape.is_some_and(|s| c.fill() < s.min_fill || c.fill() > s.max_fill))
            .collect();
        if let Some(max) = rules.max_components {
            let mut survivors: Vec<usize> = (0..found.len()).filter(|&k| !bad[k]).collect();
            survivors.sort_by_key(|&k| (std::cmp::Reverse(found[k].area), k));
            survivors.iter().skip(max as usize).for_each(|&k| bad[k] = true);
        }
        for (r, &id) in reject.iter_mut().zip(&ids) {
            if id != u32::MAX && bad[id as usize] {
                *r = true;
            }
        }
    }
    labels.iter_mut().zip(reject).filter(|(_, r)| *r).for_each(|(l, _)| *l = IGNORE);
}

/// How much a selection kept of a pool's pseudo-labels, how right the labels were, and what the
/// student finally trained on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectionRecord {
    /// Images the student trained on (pool images, plus the originals when `study.mix` < 1).
    #[serde(default)]
    pub training_images: usize,
    /// Share of the student's total loss weight carried by pseudo-labelled pixels.
    #[serde(default)]
    pub pseudo_share: f64,
    /// Share of the pool's pixels with a pseudo-label before selection.
    pub offered: f64,
    /// Share of the pool's pixels with a pseudo-label after selection.
    pub kept: f64,
    /// Share of the labelled pixels that match the truth, before selection (pools with truth only).
    pub accuracy_before: Option<f64>,
    /// The same after selection.
    pub accuracy_after: Option<f64>,
}

impl SelectionRecord {
    /// Compares pseudo-labels `before` and `after` selection, against `truth` where a pool image has it.
    pub fn of(before: &[Vec<u8>], after: &[Vec<u8>], truth: &[Option<&[u8]>]) -> Self {
        let pixels: usize = before.iter().map(Vec::len).sum();
        let accuracy = |maps: &[Vec<u8>]| {
            let (mut right, mut total) = (0usize, 0usize);
            for (m, t) in maps.iter().zip(truth) {
                let Some(t) = t else { continue };
                for (&c, &u) in m.iter().zip(t.iter()) {
                    if c != IGNORE {
                        total += 1;
                        right += usize::from(c == u);
                    }
                }
            }
            (total > 0).then(|| right as f64 / total as f64)
        };
        let share = |n: usize| if pixels == 0 { 0.0 } else { n as f64 / pixels as f64 };
        Self {
            training_images: before.len(),
            pseudo_share: 1.0,
            offered: share(labelled_pixels(before)),
            kept: share(labelled_pixels(after)),
            accuracy_before: accuracy(before),
            accuracy_after: accuracy(after),
        }
    }
}

/// Object classes of the pseudo-labels grown (positive px) or shrunk (negative) before a student
/// learns them, applied to the teachers' combined labels before any selection.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PseudoLabelDilation {
    /// (class, px) in class order; empty: labels as the teachers give them.
    pub by_class: Vec<(ClassId, f32)>,
}

impl PseudoLabelDilation {
    /// True when no class is changed.
    pub fn is_none(&self) -> bool {
        self.by_class.is_empty()
    }

    /// Grows or shrinks every listed class of `labels` (one map per image, of the width and
    /// height `sizes` gives); a class grows into the background only, never over another class
    /// or an ignored pixel.
    pub fn apply(&self, labels: &mut [Vec<u8>], sizes: &[(usize, usize)]) {
        if self.is_none() {
            return;
        }
        labels.par_iter_mut().zip(sizes).for_each(|(map, &(width, height))| {
            let mut m = LabelMap { width, height, labels: std::mem::take(map) };
            for &(class, px) in &self.by_class {
                m = if px > 0.0 { dilate_classes(&m, px, |c| c == class) } else { erode_classes(&m, -px, |c| c == class) };
            }
            *map = m.labels;
        });
    }
}

/// Loss weight of every pseudo-labelled pixel such that pseudo-labels carry the share `mix` of
/// the total weight when the originals' `original_pixels` labelled pixels weigh 1 each;
/// `None` when `mix` is 1 (the originals are left out) or nothing was kept.
pub fn pseudo_weight(mix: f32, original_pixels: usize, pseudo_pixels: usize) -> Option<f32> {
    if mix >= 1.0 || pseudo_pixels == 0 {
        return None;
    }
    Some(mix / (1.0 - mix) * original_pixels as f32 / pseudo_pixels as f32)
}

/// Pixels of `maps` that carry a label (not [`IGNORE`]).
pub fn labelled_pixels<'a>(maps: impl IntoIterator<Item = &'a Vec<u8>>) -> usize {
    maps.into_iter().map(|m| m.iter().filter(|&&c| c != IGNORE).count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: u8 = IGNORE;

    #[test]
    fn a_confidence_threshold_keeps_exactly_the_pixels_at_or_above_it() {
        let mut labels = vec![vec![0, 1, 1, 2]];
        let confidence = vec![vec![0.95, 0.89, 0.9, 0.5]];
        Selection { name: "c".into(), rule: SelectionRule::Confidence { threshold: 0.9 } }.apply(&mut labels, &confidence, &[], &[(4, 1)]);
        assert_eq!(labels, vec![vec![0, X, 1, X]]);
    }

    #[test]
    fn hardness_keeps_the_easiest_share_of_every_class_with_ties_by_position() {
        // Class 0: four pixels, hardness 0.1 0.4 0.2 0.4; class 1: two pixels 0.9 0.1.
        let mut labels = vec![vec![0, 0, 1], vec![0, 0, 1]];
        let hardness = vec![vec![0.1, 0.4, 0.9], vec![0.2, 0.4, 0.1]];
        Selection { name: "h".into(), rule: SelectionRule::Hardness { keep: 0.7 } }.apply(&mut labels, &[], &hardness, &[(3, 1); 2]);
        // ceil(0.7 × 4) = 3 background pixels: 0.1, 0.2 and the first 0.4; ceil(0.7 × 2) = 2 of class 1.
        assert_eq!(labels, vec![vec![0, 0, 1], vec![0, X, 1]]);
        let mut one = vec![vec![1, 1, 1, 1]];
        Selection { name: "h".into(), rule: SelectionRule::Hardness { keep: 0.5 } }.apply(
            &mut one,
            &[],
            &[vec![0.4, 0.3, 0.2, 0.1]],
            &[(4, 1)],
        );
        assert_eq!(one, vec![vec![X, X, 1, 1]]);
    }

    /// An 8 × 6 map: a 3 × 3 square and a 2-pixel speck of class 1, an L of class 2.
    fn scene() -> Vec<u8> {
        #[rustfmt::skip]
        let map = vec![
            1, 1, 1, 0, 0, 0, 0, 0,
            1, 1, 1, 0, 0, 2, 0, 0,
            1, 1, 1, 0, 0, 2, 0, 0,
            0, 0, 0, 0, 0, 2, 2, 2,
            0, 0, 0, 0, 0, 0, 0, 0,
            0, 1, 1, 0, 0, 0, 0, 0,
        ];
        map
    }

    fn verified(rules: VerifierRules) -> Vec<u8> {
        let mut labels = vec![scene()];
        Selection { name: "v".into(), rule: SelectionRule::Verifier(rules) }.apply(&mut labels, &[], &[], &[(8, 6)]);
        labels.remove(0)
    }

    fn rejected(map: &[u8]) -> Vec<usize> {
        map.iter().enumerate().filter(|(_, c)| **c == X).map(|(i, _)| i).collect()
    }

    #[test]
    fn the_verifier_rejects_small_components_surplus_components_and_wrong_shapes() {
        // The speck (2 px) is below a minimum area of 3; nothing else is.
        assert_eq!(rejected(&verified(VerifierRules { min_area: 3, ..VerifierRules::default() })), vec![41, 42]);
        // One component per class: the speck goes, the square (9 px) stays; class 2 has one.
        assert_eq!(rejected(&verified(VerifierRules { max_components: Some(1), ..VerifierRules::default() })), vec![41, 42]);
        // Class 2 must fill at least 60 % of its box: the L fills 5 / 9.
        let shape = ShapeRule { class: 2, min_fill: 0.6, max_fill: 1.0 };
        assert_eq!(rejected(&verified(VerifierRules { shapes: vec![shape], ..VerifierRules::default() })), vec![13, 21, 29, 30, 31]);
        // Background is never touched.
        let all = verified(VerifierRules { min_area: 100, ..VerifierRules::default() });
        assert!(all.iter().zip(scene()).all(|(a, s)| if s == 0 { *a == 0 } else { *a == X }));
    }

    #[test]
    fn the_record_counts_kept_pixels_and_their_accuracy() {
        let truth = vec![0u8, 1, 1, 0];
        let before = vec![vec![0, 1, 0, 1]];
        let after = vec![vec![0, 1, X, X]];
        let r = SelectionRecord::of(&before, &after, &[Some(&truth)]);
        assert_eq!((r.offered, r.kept, r.accuracy_before, r.accuracy_after), (1.0, 0.5, Some(0.5), Some(1.0)));
        assert_eq!(SelectionRecord::of(&before, &after, &[None]).accuracy_after, None);
    }

    #[test]
    fn the_mix_weight_gives_pseudo_labels_the_asked_share_of_the_loss() {
        let w = pseudo_weight(0.25, 300, 50).unwrap();
        assert!((w * 50.0 / (w * 50.0 + 300.0) - 0.25).abs() < 1e-6);
        assert_eq!(pseudo_weight(1.0, 300, 50), None);
        assert_eq!(pseudo_weight(0.5, 300, 0), None);
    }
}
