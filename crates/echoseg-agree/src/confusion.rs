//! The confusion matrix and the truth metrics read from it.

/// Pixel counts of (reference class, predicted class) pairs for `k` classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confusion {
    k: usize,
    counts: Vec<u64>,
}

impl Confusion {
    /// An empty matrix for `k` classes.
    pub fn new(k: usize) -> Self {
        Self { k, counts: vec![0; k * k] }
    }

    /// Counts every pixel pair of two equally sized label maps; labels ≥ k are ignored.
    pub fn from_maps(reference: &[u8], predicted: &[u8], k: usize) -> Self {
        let mut m = Self::new(k);
        m.add_maps(reference, predicted);
        m
    }

    /// Adds every pixel pair of two equally sized label maps; labels ≥ k are ignored.
    pub fn add_maps(&mut self, reference: &[u8], predicted: &[u8]) {
        debug_assert_eq!(reference.len(), predicted.len());
        let k = self.k;
        for (&r, &p) in reference.iter().zip(predicted) {
            let (r, p) = (usize::from(r), usize::from(p));
            if r < k && p < k {
                self.counts[r * k + p] += 1;
            }
        }
    }

    /// Adds one pixel pair; labels ≥ k are ignored.
    #[inline]
    pub fn add_pixel(&mut self, reference: u8, predicted: u8) {
        let (r, p) = (usize::from(reference), usize::from(predicted));
        if r < self.k && p < self.k {
            self.counts[r * self.k + p] += 1;
        }
    }

    /// Adds another matrix of the same size.
    pub fn merge(&mut self, other: &Confusion) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.k
    }

    /// True when the predictions have collapsed: a class the reference has is never predicted,
    /// or a single class is predicted everywhere. Such a network has stopped segmenting, and
    /// its scores say nothing about the biases of its labels.
    pub fn collapsed(&self) -> bool {
        let k = self.k;
        let predicted = |c: usize| (0..k).map(|r| self.count(r, c)).sum::<u64>();
        let present = |c: usize| (0..k).map(|p| self.count(c, p)).sum::<u64>();
        let used = (0..k).filter(|&c| predicted(c) > 0).count();
        used <= 1 || (0..k).any(|c| present(c) > 0 && predicted(c) == 0)
    }

    /// Pixels with reference class `r` predicted as `p`.
    pub fn count(&self, r: usize, p: usize) -> u64 {
        self.counts[r * self.k + p]
    }

    /// All counted pixels.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn row(&self, c: usize) -> u64 {
        (0..self.k).map(|p| self.count(c, p)).sum()
    }

    fn col(&self, c: usize) -> u64 {
        (0..self.k).map(|r| self.count(r, c)).sum()
    }

    /// IoU_c = TP / (TP + FP + FN); `None` when the class is absent from both maps.
    pub fn iou(&self, c: usize) -> Option<f64> {
        let tp = self.count(c, c);
        let union = self.row(c) + self.col(c) - tp;
        (union > 0).then(|| tp as f64 / union as f64)
    }

    /// Recall (sensitivity) of class c: TP / (TP + FN); `None` when the reference lacks the class.
    pub fn recall(&self, c: usize) -> Option<f64> {
        let row = self.row(c);
        (row > 0).then(|| self.count(c, c) as f64 / row as f64)
    }

    /// Dice_c = 2TP / (2TP + FP + FN); `None` when the class is absent from both maps.
    pub fn dice(&self, c: usize) -> Option<f64> {
        let tp = self.count(c, c);
        let denom = self.row(c) + self.col(c);
        (denom > 0).then(|| 2.0 * tp as f64 / denom as f64)
    }

    /// Mean IoU over the classes present in either map; 1 for an empty matrix.
    pub fn miou(&self) -> f64 {
        let ious: Vec<f64> = (0..self.k).filter_map(|c| self.iou(c)).collect();
        if ious.is_empty() { 1.0 } else { ious.iter().sum::<f64>() / ious.len() as f64 }
    }

    /// Share of pixels on the diagonal (pixel accuracy, or agreement between two raters).
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 1.0;
        }
        (0..self.k).map(|c| self.count(c, c)).sum::<u64>() as f64 / total as f64
    }

    /// Cohen's kappa (p_o − p_e) / (1 − p_e), p_e from the two marginals.
    /// When both raters use one and the same class everywhere (p_e = 1), kappa is 1.
    pub fn kappa(&self) -> f64 {
        let total = self.total() as f64;
        if total == 0.0 {
            return 1.0;
        }
        let po = self.accuracy();
        let pe: f64 = (0..self.k).map(|c| self.row(c) as f64 * self.col(c) as f64).sum::<f64>() / (total * total);
        if (1.0 - pe).abs() < 1e-12 { 1.0 } else { (po - pe) / (1.0 - pe) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_background_and_a_missing_class_are_collapsed_a_weak_segmenter_is_not() {
        let truth = [0, 0, 1, 1, 2, 2];
        assert!(Confusion::from_maps(&truth, &[0; 6], 3).collapsed(), "background everywhere");
        assert!(Confusion::from_maps(&truth, &[0, 0, 1, 1, 1, 1], 3).collapsed(), "class 2 never predicted");
        assert!(!Confusion::from_maps(&truth, &[0, 1, 1, 0, 2, 0], 3).collapsed(), "poor but every class predicted");
        // A class absent from the reference need not be predicted.
        assert!(!Confusion::from_maps(&[0, 0, 1, 1], &[0, 0, 1, 1], 3).collapsed());
    }

    #[test]
    fn hand_computed_iou_dice_and_kappa() {
        // reference: 0 0 1 1, predicted: 0 1 1 1
        let m = Confusion::from_maps(&[0, 0, 1, 1], &[0, 1, 1, 1], 2);
        assert_eq!(m.iou(0), Some(0.5));
        assert!((m.iou(1).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.dice(1).unwrap() - 0.8).abs() < 1e-12);
        assert!((m.miou() - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // p_o = 3/4, p_e = (2·1 + 2·3)/16 = 1/2, kappa = 0.5
        assert!((m.kappa() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn absent_class_is_skipped_and_identical_constant_maps_have_kappa_one() {
        let m = Confusion::from_maps(&[1, 1, 1], &[1, 1, 1], 3);
        assert_eq!(m.iou(0), None);
        assert_eq!(m.iou(2), None);
        assert_eq!(m.miou(), 1.0);
        assert_eq!(m.kappa(), 1.0);
    }

    #[test]
    fn a_rater_always_wrong_has_negative_kappa() {
        let m = Confusion::from_maps(&[0, 1, 0, 1], &[1, 0, 1, 0], 2);
        assert_eq!(m.accuracy(), 0.0);
        assert!((m.kappa() + 1.0).abs() < 1e-12);
    }
}
