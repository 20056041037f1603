//! Calibration and boundary accuracy: expected calibration error from probability maps, and
//! boundary F1 at a pixel tolerance from label maps.

use serde::{Deserialize, Serialize};

use crate::distance::squared_distance;

/// Confidence bins of the expected calibration error.
pub const CALIBRATION_BINS: usize = 15;

/// Per-bin pixel counts, correct predictions and summed confidence, pooled over images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Pixels whose top-class probability falls in each bin of width 1/15.
    pub count: [u64; CALIBRATION_BINS],
    /// Of those, pixels whose top class is the true class.
    pub correct: [u64; CALIBRATION_BINS],
    /// Sum of their top-class probabilities.
    pub confidence: [f64; CALIBRATION_BINS],
}

impl Default for Calibration {
    fn default() -> Self {
        Self { count: [0; CALIBRATION_BINS], correct: [0; CALIBRATION_BINS], confidence: [0.0; CALIBRATION_BINS] }
    }
}

impl Calibration {
    /// Counts one image: `probabilities` class-planar (`classes` planes of `truth.len()` pixels).
    pub fn of_image(probabilities: &[f32], classes: usize, truth: &[u8]) -> Self {
        let plane = truth.len();
        let mut c = Self::default();
        for (i, &t) in truth.iter().enumerate() {
            let (mut best, mut p) = (0, probabilities[i]);
            for k in 1..classes {
                let q = probabilities[k * plane + i];
                if q > p {
                    (best, p) = (k, q);
                }
            }
            let bin = ((p * CALIBRATION_BINS as f32) as usize).min(CALIBRATION_BINS - 1);
            c.count[bin] += 1;
            c.correct[bin] += u64::from(best == usize::from(t));
            c.confidence[bin] += f64::from(p);
        }
        c
    }

    /// Pools another image.
    pub fn merge(&mut self, other: &Calibration) {
        for b in 0..CALIBRATION_BINS {
            self.count[b] += other.count[b];
            self.correct[b] += other.correct[b];
            self.confidence[b] += other.confidence[b];
        }
    }

    /// ECE = Σ_b (n_b / N) |accuracy_b − mean confidence_b| over 15 equal-width bins of the
    /// top-class probability; `None` without pixels.
    pub fn ece(&self) -> Option<f64> {
        let total: u64 = self.count.iter().sum();
        (total > 0).then(|| {
            (0..CALIBRATION_BINS)
                .filter(|&b| self.count[b] > 0)
                .map(|b| {
                    let n = self.count[b] as f64;
                    (n / total as f64) * (self.correct[b] as f64 / n - self.confidence[b] / n).abs()
                })
                .sum()
        })
    }
}

/// Boundary pixels matched within the tolerance, in both directions, pooled over images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundaryMatch {
    /// Predicted boundary pixels.
    pub predicted: u64,
    /// Of those, within the tolerance of a true boundary pixel of the same class.
    pub predicted_matched: u64,
    /// True boundary pixels.
    pub truth: u64,
    /// Of those, within the tolerance of a predicted boundary pixel of the same class.
    pub truth_matched: u64,
}

impl BoundaryMatch {
    /// Pools another image.
    pub fn merge(&mut self, other: &BoundaryMatch) {
        self.predicted += other.predicted;
        self.predicted_matched += other.predicted_matched;
        self.truth += other.truth;
        self.truth_matched += other.truth_matched;
    }

    /// Boundary F1 = 2PR / (P + R), with precision P = matched predicted / predicted boundary
    /// pixels and recall R = matched true / true boundary pixels; `None` when neither map has a
    /// boundary, 0 when only one has.
    pub fn f1(&self) -> Option<f64> {
        if self.predicted == 0 && self.truth == 0 {
            return None;
        }
        if self.predicted == 0 || self.truth == 0 {
            return Some(0.0);
        }
        let p = self.predicted_matched as f64 / self.predicted as f64;
        let r = self.truth_matched as f64 / self.truth as f64;
        Some(if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 })
    }
}

fn boundary_of(map: &[u8], width: usize, height: usize, c: u8, out: &mut [bool]) {
    for (i, b) in out.iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        *b = map[i] == c
            && ((x > 0 && map[i - 1] != c)
                || (x + 1 < width && map[i + 1] != c)
                || (y > 0 && map[i - width] != c)
                || (y + 1 < height && map[i + width] != c));
    }
}

/// Matches the inner boundaries of the foreground classes `1..classes` of `predicted` and `truth`
/// within `tolerance` px (Euclidean).
pub fn boundary_match(predicted: &[u8], truth: &[u8], width: usize, height: usize, classes: usize, tolerance: f32) -> BoundaryMatch {
    let mut m = BoundaryMatch::default();
    let (mut pb, mut tb) = (vec![false; truth.len()], vec![false; truth.len()]);
    let (mut to_truth, mut to_predicted) = (Vec::new(), Vec::new());
    let limit = tolerance * tolerance;
    for c in 1..classes as u8 {
        boundary_of(predicted, width, height, c, &mut pb);
        boundary_of(truth, width, height, c, &mut tb);
        let (np, nt) = (pb.iter().filter(|&&b| b).count() as u64, tb.iter().filter(|&&b| b).count() as u64);
        m.predicted += np;
        m.truth += nt;
        if np == 0 || nt == 0 {
            continue;
        }
        squared_distance(&tb, width, height, &mut to_truth);
        squared_distance(&pb, width, height, &mut to_predicted);
        m.predicted_matched += pb.iter().zip(&to_truth).filter(|&(&b, &d)| b && d <= limit).count() as u64;
        m.truth_matched += tb.iter().zip(&to_predicted).filter(|&(&b, &d)| b && d <= limit).count() as u64;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_of_hand_computed_bins() {
        // Two pixels at confidence 0.9 (one right), two at 0.6 (both right):
        // bin of 0.9: |0.5 − 0.9| = 0.4, bin of 0.6: |1 − 0.6| = 0.4 → ECE 0.4.
        let probs = [0.9, 0.9, 0.6, 0.4, 0.1, 0.1, 0.4, 0.6];
        let truth = [0, 1, 0, 1];
        let c = Calibration::of_image(&probs, 2, &truth);
        assert!((c.ece().unwrap() - 0.4).abs() < 1e-6, "{:?}", c.ece());
        // Perfectly confident and right everywhere: 0.
        let sure = Calibration::of_image(&[1.0, 0.0, 0.0, 1.0], 2, &[0, 1]);
        assert!(sure.ece().unwrap() < 1e-9);
    }

    fn square(lo: usize, hi: usize) -> Vec<u8> {
        (0..400).map(|i| u8::from((lo..hi).contains(&(i % 20)) && (lo..hi).contains(&(i / 20)))).collect()
    }

    #[test]
    fn boundary_f1_is_one_within_tolerance_and_drops_beyond_it() {
        let truth = square(5, 15);
        assert_eq!(boundary_match(&truth, &truth, 20, 20, 2, 0.0).f1(), Some(1.0));
        let wide = square(4, 16); // 1 px larger on every side
        assert_eq!(boundary_match(&wide, &truth, 20, 20, 2, 1.5).f1(), Some(1.0));
        let strict = boundary_match(&wide, &truth, 20, 20, 2, 0.5).f1().unwrap();
        assert!(strict < 0.2, "{strict}");
        // A class absent from both maps counts nothing; absent from one gives 0.
        assert_eq!(boundary_match(&[0; 400], &[0; 400], 20, 20, 2, 2.0).f1(), None);
        assert_eq!(boundary_match(&[0; 400], &truth, 20, 20, 2, 2.0).f1(), Some(0.0));
    }
}
