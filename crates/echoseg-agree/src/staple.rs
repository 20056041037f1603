//! STAPLE: the expectation–maximisation estimate of a consensus segmentation and of each
//! rater's per-class performance (Warfield, Zou and Wells 2004; the multi-class form of
//! Rohlfing et al. 2004, as in SimpleITK's MultiLabelSTAPLE).
//!
//! Model: every pixel i has an unknown true class T_i with prior π_s; rater j labels it d_ij
//! with probability θ_j(d | s), its confusion row for true class s.
//! E-step: W_i(s) = π_s ∏_j θ_j(d_ij | s) / Σ_t π_t ∏_j θ_j(d_ij | t).
//! M-step: θ_j(d | s) = Σ_i W_i(s) [d_ij = d] / Σ_i W_i(s).
//! Stops when no θ entry moves by more than `tolerance` between iterations, or after
//! `max_iterations`. The prior π is fixed at the share of each class among all raters' labels
//! (SimpleITK's default). W depends on a pixel only through its tuple of rater labels, so EM
//! runs on the histogram of tuples, not on pixels: its cost is independent of image size.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AgreeError;

/// How STAPLE starts and when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StapleConfig {
    /// Initial probability that a rater gives the true class (the rest is spread evenly).
    pub initial_accuracy: f64,
    /// Stop when no confusion entry changes by more than this.
    pub tolerance: f64,
    /// Stop after this many iterations at the latest.
    pub max_iterations: usize,
}

impl Default for StapleConfig {
    fn default() -> Self {
        Self { initial_accuracy: 0.99, tolerance: 1e-6, max_iterations: 100 }
    }
}

/// STAPLE's estimates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Staple {
    /// Classes.
    pub classes: usize,
    /// Fixed prior π_s.
    pub prior: Vec<f64>,
    /// θ_j(d | s) per rater, row-major `[s * classes + d]`.
    pub confusion: Vec<Vec<f64>>,
    /// Sensitivity θ_j(s | s) per rater and class.
    pub sensitivity: Vec<Vec<f64>>,
    /// Specificity per rater and class: P(d ≠ s | T ≠ s) under the estimate.
    pub specificity: Vec<Vec<f64>>,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the tolerance was reached (not the iteration limit).
    pub converged: bool,
    /// Consensus class (argmax of W) per distinct rater-label tuple.
    consensus: HashMap<u64, u8>,
}

impl Staple {
    /// The consensus label map of one image from its raters' maps (`maps[j]` is rater j's).
    pub fn consensus_map(&self, maps: &[&[u8]]) -> Vec<u8> {
        let n = maps.first().map_or(0, |m| m.len());
        (0..n).map(|i| self.consensus.get(&tuple_key(maps, i, self.classes)).copied().unwrap_or(0)).collect()
    }
}

fn tuple_key(maps: &[&[u8]], i: usize, classes: usize) -> u64 {
    maps.iter().fold(0u64, |key, m| key * classes as u64 + u64::from(m[i]))
}

/// Runs STAPLE on `raters[j][image]`: every rater's label map of every image, all with values
/// below `classes`.
pub fn staple(raters: &[Vec<&[u8]>], classes: usize, config: &StapleConfig) -> Result<Staple, AgreeError> {
    let r = raters.len();
    if r < 2 {
        return Err(AgreeError::TooFewRaters { needed: 2, got: r });
    }
    if !(2..=256).contains(&classes) || (classes as f64).powi(r as i32) > u64::MAX as f64 {
        return Err(AgreeError::TooManyCombinations { raters: r, classes });
    }
    crate::raters::check_raters(raters, None, classes)?;
    let images = raters[0].len();
    // Histogram of rater-label tuples, counted per image in parallel.
    let histogram = (0..images)
        .into_par_iter()
        .map(|img| {
            let maps: Vec<&[u8]> = raters.iter().map(|rater| rater[img]).collect();
            let mut h: HashMap<u64, u64> = HashMap::new();
            let n = maps[0].len();
            // Runs of equal tuples are common (backgrounds): count them without hashing each pixel.
            let mut i = 0;
            while i < n {
                let key = tuple_key(&maps, i, classes);
                let mut j = i + 1;
                while j < n && maps.iter().all(|m| m[j] == m[i]) {
                    j += 1;
                }
                *h.entry(key).or_insert(0) += (j - i) as u64;
                i = j;
            }
            h
        })
        .reduce(HashMap::new, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_insert(0) += v;
            }
            a
        });
    // A fixed order, so that every floating-point sum below is the same run to run.
    let mut histogram: Vec<(u64, u64)> = histogram.into_iter().collect();
    histogram.sort_unstable();
    let tuples: Vec<(Vec<usize>, f64)> = histogram
        .into_iter()
        .map(|(key, count)| {
            let mut labels = vec![0usize; r];
            let mut rest = key;
            for j in (0..r).rev() {
                labels[j] = (rest % classes as u64) as usize;
                rest /= classes as u64;
            }
            (labels, count as f64)
        })
        .collect();

    let total: f64 = tuples.iter().map(|(_, n)| n).sum::<f64>() * r as f64;
    let mut prior = vec![0.0; classes];
    for (labels, n) in &tuples {
        for &d in labels {
            prior[d] += n;
        }
    }
    prior.iter_mut().for_each(|p| *p /= total.max(1.0));

    let off = (1.0 - config.initial_accuracy) / (classes - 1) as f64;
    let mut theta: Vec<Vec<f64>> = (0..r)
        .map(|_| (0..classes * classes).map(|i| if i / classes == i % classes { config.initial_accuracy } else { off }).collect())
        .collect();
    let mut weights = vec![0.0; tuples.len() * classes];
    let mut iterations = 0;
    let mut converged = false;
    while iterations < config.max_iterations {
        iterations += 1;
        // E-step.
        for (t, (labels, _)) in tuples.iter().enumerate() {
            let w = &mut weights[t * classes..(t + 1) * classes];
            for s in 0..classes {
                w[s] = prior[s] * labels.iter().enumerate().map(|(j, &d)| theta[j][s * classes + d]).product::<f64>();
            }
            let sum: f64 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|x| *x /= sum);
            } else {
                w.iter_mut().for_each(|x| *x = 1.0 / classes as f64);
            }
        }
        // M-step.
        let mut change: f64 = 0.0;
        for (j, theta_j) in theta.iter_mut().enumerate() {
            let mut next = vec![0.0; classes * classes];
            let mut mass = vec![0.0; classes];
            for (t, (labels, n)) in tuples.iter().enumerate() {
                for s in 0..classes {
                    let w = weights[t * classes + s] * n;
                    next[s * classes + labels[j]] += w;
                    mass[s] += w;
                }
            }
            for s in 0..classes {
                for d in 0..classes {
                    // A class no pixel is believed to have keeps its previous row.
                    let v = if mass[s] > 0.0 { next[s * classes + d] / mass[s] } else { theta_j[s * classes + d] };
                    change = change.max((v - theta_j[s * classes + d]).abs());
                    next[s * classes + d] = v;
                }
            }
            *theta_j = next;
        }
        if change <= config.tolerance {
            converged = true;
            break;
        }
    }

    // Specificity from the final W: P(d ≠ s | T ≠ s) = Σ_t Σ_{u≠s} W(u) n [d ≠ s] / Σ_t Σ_{u≠s} W(u) n.
    let mut specificity = vec![vec![0.0; classes]; r];
    for (j, spec) in specificity.iter_mut().enumerate() {
        for (s, value) in spec.iter_mut().enumerate() {
            let (mut hit, mut mass) = (0.0, 0.0);
            for (t, (labels, n)) in tuples.iter().enumerate() {
                let not_s: f64 = (0..classes).filter(|&u| u != s).map(|u| weights[t * classes + u]).sum::<f64>() * n;
                mass += not_s;
                if labels[j] != s {
                    hit += not_s;
                }
            }
            *value = if mass > 0.0 { hit / mass } else { 1.0 };
        }
    }
    let sensitivity = theta.iter().map(|th| (0..classes).map(|s| th[s * classes + s]).collect()).collect();
    let consensus = tuples
        .iter()
        .enumerate()
        .map(|(t, (labels, _))| {
            let w = &weights[t * classes..(t + 1) * classes];
            // Ties go to the lower class, as argmax does everywhere else in echoseg.
            let best = (0..classes).fold(0, |b, s| if w[s] > w[b] { s } else { b });
            (labels.iter().fold(0u64, |k, &d| k * classes as u64 + d as u64), best as u8)
        })
        .collect();
    Ok(Staple { classes, prior, confusion: theta, sensitivity, specificity, iterations, converged, consensus })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raters: &[Vec<u8>], classes: usize) -> Staple {
        let sets: Vec<Vec<&[u8]>> = raters.iter().map(|m| vec![m.as_slice()]).collect();
        staple(&sets, classes, &StapleConfig::default()).unwrap()
    }

    #[test]
    fn identical_raters_give_their_map_and_perfect_scores() {
        let map = vec![0, 0, 1, 1, 2, 2, 0, 1];
        let s = run(&[map.clone(), map.clone(), map.clone()], 3);
        assert_eq!(s.consensus_map(&[&map, &map, &map]), map);
        for j in 0..3 {
            for c in 0..3 {
                assert!((s.sensitivity[j][c] - 1.0).abs() < 1e-9, "rater {j} class {c}: {}", s.sensitivity[j][c]);
                assert!((s.specificity[j][c] - 1.0).abs() < 1e-9);
            }
        }
        assert!(s.converged);
    }

    #[test]
    fn a_rater_always_wrong_is_outvoted_and_scored_zero() {
        // Four raters agree; the fifth labels every pixel the other class.
        let truth: Vec<u8> = (0..200).map(|i| u8::from(i % 3 == 0)).collect();
        let wrong: Vec<u8> = truth.iter().map(|&t| 1 - t).collect();
        let raters = [truth.clone(), truth.clone(), truth.clone(), truth.clone(), wrong.clone()];
        let s = run(&raters, 2);
        let maps: Vec<&[u8]> = raters.iter().map(Vec::as_slice).collect();
        assert_eq!(s.consensus_map(&maps), truth);
        assert!(s.sensitivity[4][0] < 1e-6 && s.sensitivity[4][1] < 1e-6, "{:?}", s.sensitivity[4]);
        assert!(s.sensitivity[0][1] > 1.0 - 1e-6);
    }

    #[test]
    fn recovers_a_known_sensitivity_and_specificity() {
        // Truth: 1000 foreground, 3000 background pixels. Rater 0 misses every 5th foreground
        // pixel (sensitivity 0.8, specificity 1); raters 1–3 are exact except for disjoint slips.
        let truth: Vec<u8> = (0..4000).map(|i| u8::from(i < 1000)).collect();
        let r0: Vec<u8> = truth.iter().enumerate().map(|(i, &t)| if t == 1 && i % 5 == 0 { 0 } else { t }).collect();
        let slip =
            |offset: usize| -> Vec<u8> { truth.iter().enumerate().map(|(i, &t)| if i % 97 == offset { 1 - t } else { t }).collect() };
        let s = run(&[r0, slip(1), slip(2), slip(3)], 2);
        assert!((s.sensitivity[0][1] - 0.8).abs() < 0.01, "{}", s.sensitivity[0][1]);
        assert!((s.specificity[0][1] - 1.0).abs() < 0.01, "{}", s.specificity[0][1]);
        assert!(s.sensitivity[1][1] > 0.97 && s.sensitivity[1][1] < 1.0);
    }

    #[test]
    fn one_rater_is_refused() {
        let map = vec![0u8, 1];
        let err = staple(&[vec![map.as_slice()]], 2, &StapleConfig::default()).unwrap_err();
        assert!(matches!(err, AgreeError::TooFewRaters { needed: 2, got: 1 }));
    }

    #[test]
    fn counts_stay_exact_past_two_to_the_24_pixels() {
        // One 4200 × 4200 image (17.64 M pixels, past the 2^24 where a float32 count stops
        // growing by one; SimpleITK fixed such a bug in 2026, PR #2670): two raters mark every
        // 70th pixel, a third the same but for pixel 0, so the unmarked tuple counts 17.39 M in
        // runs of 69. The prior is exact label counts.
        let n: usize = 4200 * 4200;
        let marked: Vec<u8> = (0..n).map(|i| u8::from(i % 70 == 0)).collect();
        let mut third = marked.clone();
        third[0] = 0;
        let s = run(&[marked.clone(), marked, third], 2);
        let ones = n.div_ceil(70) as f64;
        let expected = (3.0 * ones - 1.0) / (3.0 * n as f64);
        assert!((s.prior[1] - expected).abs() < 1e-15, "{} against {expected}", s.prior[1]);
        assert!((s.prior[0] - (1.0 - expected)).abs() < 1e-15);
    }
}
