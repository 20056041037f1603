//! Label issues: how likely each given label is to be wrong, from out-of-sample class
//! probabilities, image by image, so memory does not grow with the number of images.
//!
//! The definitions follow cleanlab (`cleanlab.segmentation`, Northcutt et al. 2021's confident
//! learning), so that the two can be compared on the same probabilities:
//! - a pixel's **label quality** is the probability given to the label it was given ("self-confidence");
//! - an image's **score** is the softmin of its pixels' qualities, Σ qᵢ·wᵢ with weights
//!   wᵢ ∝ exp((1 − qᵢ)/T) (temperature T, 0.1 by default): close to the worst pixels' quality, so
//!   one badly wrong object lowers a score more than faint doubt spread over the whole image;
//! - a pixel is **flagged** as cleanlab's `segmentation.filter.find_label_issues` does: confident
//!   learning counts the pixels whose most probable class j is not the given one and reaches j's
//!   threshold tⱼ (the mean probability of class j over the pixels given j: a per-class threshold,
//!   because networks are surer of some classes); that many pixels with the lowest label quality
//!   are flagged, less those whose most probable class is the given one.
//!
//! Thresholds, the count and the flags each need the images once more: [`SelfConfidence`], then
//! [`IssueCount`], then [`ImageIssues::of`] image by image in the same order.
//!
//! The probabilities must be out of sample (from networks that did not train on the image);
//! in-sample probabilities have learned the very errors they should reveal.

use crate::confusion::Confusion;

/// Class-planar probabilities of one image: `values[c * pixels + p]`.
#[derive(Clone, Copy, Debug)]
pub struct ClassProbabilities<'a> {
    /// Number of classes.
    pub classes: usize,
    /// The probabilities, one plane per class.
    pub values: &'a [f32],
}

impl ClassProbabilities<'_> {
    /// Pixels per plane.
    pub fn pixels(&self) -> usize {
        self.values.len() / self.classes.max(1)
    }

    /// Probability of class `c` at pixel `p`.
    pub fn at(&self, c: usize, p: usize) -> f32 {
        self.values[c * self.pixels() + p]
    }

    /// The most probable class at pixel `p` (the lowest class on ties).
    pub fn argmax(&self, p: usize) -> u8 {
        (1..self.classes).fold(0, |best, c| if self.at(c, p) > self.at(best, p) { c } else { best }) as u8
    }
}

/// The first pass: per class, the mean probability of that class over the pixels given it.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfConfidence {
    sums: Vec<f64>,
    counts: Vec<u64>,
}

impl SelfConfidence {
    /// Nothing seen yet.
    pub fn new(classes: usize) -> Self {
        Self { sums: vec![0.0; classes], counts: vec![0; classes] }
    }

    /// Adds one image's given labels and probabilities.
    pub fn add(&mut self, given: &[u8], probabilities: ClassProbabilities<'_>) {
        for (p, &g) in given.iter().enumerate() {
            let g = usize::from(g);
            if g < self.sums.len() {
                self.sums[g] += f64::from(probabilities.at(g, p));
                self.counts[g] += 1;
            }
        }
    }

    /// Per-class thresholds; a class nobody gave has threshold 1 (it flags only certainties).
    pub fn thresholds(&self) -> Vec<f32> {
        self.sums.iter().zip(&self.counts).map(|(&s, &n)| if n == 0 { 1.0 } else { (s / n as f64) as f32 }).collect()
    }
}

/// cleanlab's softmin of pixel qualities at `temperature`: a weighted mean that leans on the
/// lowest. Shifted by the best weight before `exp`, so a small temperature cannot overflow.
pub fn softmin_score(qualities: &[f32], temperature: f64) -> f64 {
    let lowest = qualities.iter().copied().fold(f32::INFINITY, f32::min);
    if qualities.is_empty() || !lowest.is_finite() {
        return 1.0;
    }
    let (mut weighted, mut total) = (0.0f64, 0.0f64);
    for &q in qualities {
        let w = ((f64::from(lowest) - f64::from(q)) / temperature).exp();
        weighted += w * f64::from(q);
        total += w;
    }
    weighted / total
}

/// Bins of the label-quality histogram that sets how many pixels are flagged: far finer than
/// the spacing of probabilities stored in 1/255 steps and averaged over up to five networks.
pub const QUALITY_BINS: usize = 1 << 16;

fn quality_bin(q: f32) -> usize {
    ((f64::from(q.clamp(0.0, 1.0)) * (QUALITY_BINS - 1) as f64).round()) as usize
}

/// An image's score: the softmin of its given labels' probabilities.
pub fn image_score(given: &[u8], probabilities: ClassProbabilities<'_>, temperature: f64) -> f64 {
    let top = probabilities.classes.saturating_sub(1);
    let qualities: Vec<f32> = given.iter().enumerate().map(|(p, &g)| probabilities.at(usize::from(g).min(top), p)).collect();
    softmin_score(&qualities, temperature)
}

/// The second pass: how many pixels look mislabelled (confident learning's count: the most
/// probable class is not the given one and reaches its threshold), and the histogram of label
/// qualities that decides which pixels those are.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueCount {
    thresholds: Vec<f32>,
    issues: u64,
    histogram: Vec<u64>,
}

impl IssueCount {
    /// Nothing counted yet, with [`SelfConfidence::thresholds`].
    pub fn new(thresholds: Vec<f32>) -> Self {
        Self { thresholds, issues: 0, histogram: vec![0; QUALITY_BINS] }
    }

    /// Counts one image.
    pub fn add(&mut self, given: &[u8], probabilities: ClassProbabilities<'_>) {
        let top = probabilities.classes.saturating_sub(1);
        for (p, &g) in given.iter().enumerate() {
            let likely = probabilities.argmax(p);
            let best = usize::from(likely);
            // cleanlab compares with a margin of 1e-6 for floating-point noise.
            if likely != g && probabilities.at(best, p) >= self.thresholds[best] - 1e-6 {
                self.issues += 1;
            }
            self.histogram[quality_bin(probabilities.at(usize::from(g).min(top), p))] += 1;
        }
    }

    /// Pixels that look mislabelled.
    pub fn issues(&self) -> u64 {
        self.issues
    }

    /// Which pixels the third pass flags: the [`IssueCount::issues`] lowest label qualities,
    /// ties at the cut taken in image order.
    pub fn budget(&self) -> FlagBudget {
        let mut left = self.issues;
        for (bin, &count) in self.histogram.iter().enumerate() {
            if count >= left {
                return FlagBudget { bin, left_in_bin: left };
            }
            left -= count;
        }
        FlagBudget { bin: QUALITY_BINS, left_in_bin: 0 }
    }
}

/// The quality below which pixels are flagged, and how many more pixels at exactly the cut may
/// be; spent as images are scored in the order they were counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagBudget {
    bin: usize,
    left_in_bin: u64,
}

/// What the third pass found in one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageIssues {
    /// Per pixel, the most probable class when the pixel is flagged.
    pub flagged: Vec<Option<u8>>,
    /// Given class → most probable class, over every pixel (the diagonal included).
    pub confusions: Confusion,
}

impl ImageIssues {
    /// Flags the pixels of an image whose label quality is among the lowest of its source
    /// (`budget`, from [`IssueCount::budget`]), except where the given label is also the most
    /// probable one: cleanlab's `segmentation.filter.find_label_issues` at `downsample = 1`.
    pub fn of(given: &[u8], probabilities: ClassProbabilities<'_>, budget: &mut FlagBudget) -> Self {
        let top = probabilities.classes.saturating_sub(1);
        let mut confusions = Confusion::new(probabilities.classes);
        let mut flagged = Vec::with_capacity(given.len());
        for (p, &g) in given.iter().enumerate() {
            let likely = probabilities.argmax(p);
            confusions.add_pixel(g, likely);
            let bin = quality_bin(probabilities.at(usize::from(g).min(top), p));
            let low = bin < budget.bin || (bin == budget.bin && budget.left_in_bin > 0);
            if bin == budget.bin && low {
                budget.left_in_bin -= 1;
            }
            flagged.push((low && likely != g).then_some(likely));
        }
        Self { flagged, confusions }
    }

    /// Flagged pixels.
    pub fn flagged_pixels(&self) -> usize {
        self.flagged.iter().filter(|f| f.is_some()).count()
    }
}

/// Flagged pixels against the pixels whose given label is truly wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagCounts {
    /// Flagged and wrong.
    pub true_positive: u64,
    /// Flagged but right.
    pub false_positive: u64,
    /// Wrong but not flagged.
    pub false_negative: u64,
}

impl FlagCounts {
    /// Counts one image: `flagged` from [`ImageIssues`], `given` and `truth` its labels.
    pub fn of(flagged: &[Option<u8>], given: &[u8], truth: &[u8]) -> Self {
        let mut counts = Self::default();
        for ((f, g), t) in flagged.iter().zip(given).zip(truth) {
            match (f.is_some(), g != t) {
                (true, true) => counts.true_positive += 1,
                (true, false) => counts.false_positive += 1,
                (false, true) => counts.false_negative += 1,
                (false, false) => {}
            }
        }
        counts
    }

    /// Adds another image's counts.
    pub fn merge(&mut self, other: &Self) {
        self.true_positive += other.true_positive;
        self.false_positive += other.false_positive;
        self.false_negative += other.false_negative;
    }

    /// Share of flagged pixels that are wrong; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.true_positive + self.false_positive;
        (flagged > 0).then(|| self.true_positive as f64 / flagged as f64)
    }

    /// Share of wrong pixels that were flagged; `None` when no pixel was wrong.
    pub fn recall(&self) -> Option<f64> {
        let wrong = self.true_positive + self.false_negative;
        (wrong > 0).then(|| self.true_positive as f64 / wrong as f64)
    }
}

/// How well image scores rank images by how wrong their labels truly are: over every pair of
/// images whose true error shares differ, the share in which the more wrong image has the lower
/// score (ties in score count half). This is Harrell's concordance index; when error shares are
/// only 0 or 1 it is exactly the AUROC of the score for "has an error", and it needs no threshold
/// when every image has some error (a source that dilates every object). `None` without such a pair.
pub fn error_concordance(scores: &[f64], error_shares: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len().min(error_shares.len())).collect();
    order.sort_by(|&a, &b| error_shares[a].total_cmp(&error_shares[b]));
    let (mut concordant, mut pairs) = (0.0f64, 0u64);
    // Pairs are counted within each image's strictly less wrong predecessors; O(n²), which is a
    // fraction of a second for the ten thousand images of one source.
    for (k, &i) in order.iter().enumerate() {
        for &j in &order[..k] {
            if error_shares[j] < error_shares[i] {
                pairs += 1;
                concordant += match scores[i].total_cmp(&scores[j]) {
                    std::cmp::Ordering::Less => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Greater => 0.0,
                };
            }
        }
    }
    (pairs > 0).then(|| concordant / pairs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes(values: &[f32]) -> ClassProbabilities<'_> {
        ClassProbabilities { classes: 2, values }
    }

    #[test]
    fn softmin_leans_on_the_worst_pixel_and_matches_the_formula() {
        // Hand-computed: weights exp((1 - q) / 0.1) for q = 0.9, 0.9, 0.1 are e¹, e¹, e⁹.
        let q = [0.9f32, 0.9, 0.1];
        let (a, b) = (1f64.exp(), 9f64.exp());
        let expected = (2.0 * a * 0.9 + b * 0.1) / (2.0 * a + b);
        // Within f32's rounding of 0.9 and 0.1.
        assert!((softmin_score(&q, 0.1) - expected).abs() < 1e-6);
        assert!(softmin_score(&q, 0.1) < 0.11, "one bad pixel decides");
        let mean = q.iter().map(|&v| f64::from(v)).sum::<f64>() / 3.0;
        assert!((softmin_score(&q, 1e6) - mean).abs() < 1e-6, "a huge temperature is the plain mean");
        assert!(softmin_score(&[0.5; 4], 1e-4).is_finite(), "a tiny temperature does not overflow");
    }

    #[test]
    fn as_many_pixels_are_flagged_as_confident_learning_counts_the_least_sure_first() {
        // Four pixels given 0, 0, 1, 1. Background planes, then class-1 planes.
        let values = [0.9, 0.3, 0.2, 0.6, 0.1, 0.7, 0.8, 0.4];
        let given = [0u8, 0, 1, 1];
        let mut pass = SelfConfidence::new(2);
        pass.add(&given, planes(&values));
        let t = pass.thresholds();
        assert!((t[0] - 0.6).abs() < 1e-6 && (t[1] - 0.6).abs() < 1e-6, "{t:?}");
        let mut count = IssueCount::new(t);
        count.add(&given, planes(&values));
        // Pixel 1: class 1 (0.7 ≥ 0.6) beats the given 0; pixel 3: class 0 (0.6 ≥ 0.6) beats the given 1.
        assert_eq!(count.issues(), 2);
        let mut budget = count.budget();
        let issues = ImageIssues::of(&given, planes(&values), &mut budget);
        // Qualities 0.9, 0.3, 0.8, 0.4: the two lowest are pixels 1 and 3.
        assert_eq!(issues.flagged, vec![None, Some(1), None, Some(0)]);
        assert_eq!(issues.confusions.count(0, 1), 1, "given background, predicted class 1 once");
        let truth = [0u8, 1, 0, 1];
        let counts = FlagCounts::of(&issues.flagged, &given, &truth);
        assert_eq!((counts.true_positive, counts.false_positive, counts.false_negative), (1, 1, 1));
        assert_eq!((counts.precision(), counts.recall()), (Some(0.5), Some(0.5)));
        assert!((image_score(&given, planes(&values), 0.1) - softmin_score(&[0.9, 0.3, 0.8, 0.4], 0.1)).abs() < 1e-12);
    }

    #[test]
    fn ties_at_the_cut_are_flagged_in_image_order_and_agreeing_pixels_never() {
        // Three pixels given 0, each with label quality 0.4 and class 1 at 0.6: one issue each.
        let values = [0.4f32, 0.4, 0.4, 0.6, 0.6, 0.6];
        let given = [0u8, 0, 0];
        let mut count = IssueCount::new(vec![0.4, 0.6]);
        count.add(&given, planes(&values));
        assert_eq!(count.issues(), 3);
        let mut budget = count.budget();
        assert_eq!(ImageIssues::of(&given[..2], planes(&[0.4, 0.4, 0.6, 0.6]), &mut budget).flagged_pixels(), 2);
        assert_eq!(ImageIssues::of(&given[..1], planes(&[0.4, 0.6]), &mut budget).flagged_pixels(), 1);
        assert_eq!(ImageIssues::of(&given[..1], planes(&[0.4, 0.6]), &mut budget).flagged_pixels(), 0, "the budget is spent");
        // A low-quality pixel whose given label is still the most probable is not flagged.
        let mut wide = IssueCount::new(vec![1.0, 1.0]).budget();
        wide.bin = QUALITY_BINS - 1;
        wide.left_in_bin = 9;
        assert_eq!(ImageIssues::of(&[0], planes(&[0.5, 0.5]), &mut wide).flagged_pixels(), 0);
    }

    #[test]
    fn concordance_is_the_auroc_for_binary_errors_and_ranks_degrees_of_error() {
        // Binary: images 2 and 3 are wrong; scores rank 3 lowest, then 0, then 2, then 1.
        let scores = [0.5, 0.9, 0.6, 0.1];
        let wrong = [0.0, 0.0, 1.0, 1.0];
        // Pairs (wrong, right): (2,0) no, (2,1) yes, (3,0) yes, (3,1) yes: AUROC 3/4.
        assert_eq!(error_concordance(&scores, &wrong), Some(0.75));
        let shares = [0.01, 0.02, 0.3, 0.5];
        assert_eq!(error_concordance(&[0.9, 0.8, 0.4, 0.2], &shares), Some(1.0));
        assert_eq!(error_concordance(&[0.2, 0.4, 0.8, 0.9], &shares), Some(0.0));
        assert_eq!(error_concordance(&[0.5; 4], &shares), Some(0.5), "ties count half");
        assert_eq!(error_concordance(&[0.5, 0.4], &[0.1, 0.1]), None, "no pair differs");
    }
}
