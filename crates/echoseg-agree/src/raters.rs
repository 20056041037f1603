//! Agreement among several raters (models or annotators) labelling the same images, with and
//! without truth. `raters[j][i]` is rater j's label map of image i.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::confusion::Confusion;
use crate::error::{AgreeError, Who};

/// What the raters tell about each other, and about the truth when it is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaterAnalysis {
    /// Pixel agreement p_o of every pair (symmetric, 1 on the diagonal).
    pub agreement: Vec<Vec<f64>>,
    /// Cohen's kappa κ = (p_o − p_e) / (1 − p_e) of every pair, p_e from the pair's marginals.
    pub kappa: Vec<Vec<f64>>,
    /// Fleiss' kappa over all raters: (P̄ − P̄_e) / (1 − P̄_e), with P_i = (Σ_c n_ic² − n) / (n(n − 1))
    /// the agreement at pixel i among n raters and P̄_e = Σ_c p_c², p_c the share of labels in class c.
    pub fleiss_kappa: f64,
    /// Mean over pixels of the vote entropy −Σ_c (n_ic / n) ln(n_ic / n), in nats.
    pub mean_vote_entropy: f64,
    /// Scores against truth, when truth is given.
    pub truth: Option<TruthAnalysis>,
}

/// The raters against truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthAnalysis {
    /// Per rater: mean IoU over classes present in truth or prediction.
    pub miou: Vec<f64>,
    /// Per rater: pixel accuracy.
    pub accuracy: Vec<f64>,
    /// Per rater and class: Dice 2TP / (2TP + FP + FN), `None` when the class is absent from both.
    pub dice: Vec<Vec<Option<f64>>>,
    /// Phi correlation of the two raters' per-pixel errors e = [label ≠ truth]:
    /// (n11 n00 − n10 n01) / √(n1· n0· n·1 n·0); high means a shared bias. `None` when a rater
    /// makes no error or errs everywhere.
    pub error_phi: Vec<Vec<Option<f64>>>,
    /// For every pair: their disagreement rate beside their mean error rate. The
    /// generalisation-disagreement equality says the two match for a well-calibrated ensemble,
    /// so disagreement estimates error where truth is missing.
    pub disagreement_vs_error: Vec<DisagreementError>,
}

/// One pair's disagreement and mean error.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisagreementError {
    /// First rater.
    pub a: usize,
    /// Second rater.
    pub b: usize,
    /// Share of pixels where they differ.
    pub disagreement: f64,
    /// Mean of their error rates against truth.
    pub mean_error: f64,
}

/// Checks that every rater (and the truth, if given) has the same images, each of the same size
/// as the first rater's, with labels below `classes`.
pub fn check_raters(raters: &[Vec<&[u8]>], truth: Option<&[&[u8]]>, classes: usize) -> Result<(), AgreeError> {
    let first = raters.first().ok_or(AgreeError::TooFewRaters { needed: 1, got: 0 })?;
    let all = raters.iter().enumerate().map(|(j, r)| (Who::Rater(j), r.as_slice())).chain(truth.map(|t| (Who::Truth, t)));
    for (who, maps) in all {
        if maps.len() != first.len() {
            return Err(AgreeError::ImageCount { who, images: maps.len(), expected: first.len() });
        }
        for (image, map) in maps.iter().enumerate() {
            if map.len() != first[image].len() {
                return Err(AgreeError::Size { who, image, pixels: map.len(), expected: first[image].len() });
            }
            if let Some(&value) = map.iter().find(|&&v| usize::from(v) >= classes) {
                return Err(AgreeError::Label { who, image, value, classes });
            }
        }
    }
    Ok(())
}

/// Per-pixel tallies pooled over images.
#[derive(Clone, Debug)]
struct Tally {
    pairs: Vec<Confusion>,
    /// Σ_i Σ_c n_ic² over pixels.
    squares: u64,
    /// Labels per class over all raters and pixels.
    labels: Vec<u64>,
    entropy: f64,
    pixels: u64,
    /// Against truth: confusion per rater and error co-occurrence per pair ([n00, n01, n10, n11]).
    truth: Vec<Confusion>,
    errors: Vec<[u64; 4]>,
}

impl Tally {
    fn new(r: usize, classes: usize, with_truth: bool) -> Self {
        let pairs = r * (r - 1) / 2;
        Self {
            pairs: vec![Confusion::new(classes); pairs],
            squares: 0,
            labels: vec![0; classes],
            entropy: 0.0,
            pixels: 0,
            truth: if with_truth { vec![Confusion::new(classes); r] } else { Vec::new() },
            errors: if with_truth { vec![[0; 4]; pairs] } else { Vec::new() },
        }
    }

    fn merge(mut self, other: Self) -> Self {
        self.pairs.iter_mut().zip(&other.pairs).for_each(|(a, b)| a.merge(b));
        self.truth.iter_mut().zip(&other.truth).for_each(|(a, b)| a.merge(b));
        self.errors.iter_mut().zip(&other.errors).for_each(|(a, b)| (0..4).for_each(|k| a[k] += b[k]));
        self.labels.iter_mut().zip(&other.labels).for_each(|(a, b)| *a += b);
        self.squares += other.squares;
        self.entropy += other.entropy;
        self.pixels += other.pixels;
        self
    }
}

fn tally_image(maps: &[&[u8]], truth: Option<&[u8]>, classes: usize, entropy_of: &[f64]) -> Tally {
    let r = maps.len();
    let mut tally = Tally::new(r, classes, truth.is_some());
    let mut counts = vec![0u32; classes];
    let mut wrong = vec![false; r];
    let pixels = maps[0].len();
    for i in 0..pixels {
        let mut squares = 0u64;
        for m in maps {
            let c = usize::from(m[i]);
            squares += 2 * u64::from(counts[c]) + 1;
            counts[c] += 1;
        }
        tally.squares += squares;
        let mut entropy = 0.0;
        for m in maps {
            let c = usize::from(m[i]);
            if counts[c] > 0 {
                entropy += entropy_of[counts[c] as usize];
                tally.labels[c] += u64::from(counts[c]);
                counts[c] = 0;
            }
        }
        tally.entropy += entropy;
        let mut p = 0;
        for a in 0..r {
            for b in a + 1..r {
                tally.pairs[p].add_pixel(maps[a][i], maps[b][i]);
                p += 1;
            }
        }
        if let Some(t) = truth {
            for (j, m) in maps.iter().enumerate() {
                tally.truth[j].add_pixel(t[i], m[i]);
                wrong[j] = m[i] != t[i];
            }
            let mut p = 0;
            for a in 0..r {
                for b in a + 1..r {
                    tally.errors[p][usize::from(wrong[a]) * 2 + usize::from(wrong[b])] += 1;
                    p += 1;
                }
            }
        }
    }
    tally.pixels = pixels as u64;
    tally
}

/// Agreement, kappa, Fleiss' kappa and vote entropy of `raters`, and with `truth` (one map per
/// image) the truth scores, error correlation and disagreement-vs-error of every pair.
pub fn analyse_raters(raters: &[Vec<&[u8]>], truth: Option<&[&[u8]]>, classes: usize) -> Result<RaterAnalysis, AgreeError> {
    let r = raters.len();
    if r < 2 {
        return Err(AgreeError::TooFewRaters { needed: 2, got: r });
    }
    check_raters(raters, truth, classes)?;
    // −(k/n) ln(k/n) for every count k, once, instead of a logarithm per pixel.
    let entropy_of: Vec<f64> = (0..=r).map(|k| if k == 0 { 0.0 } else { -(k as f64 / r as f64) * (k as f64 / r as f64).ln() }).collect();
    let images = raters[0].len();
    let tally = (0..images)
        .into_par_iter()
        .map(|i| {
            let maps: Vec<&[u8]> = raters.iter().map(|rater| rater[i]).collect();
            tally_image(&maps, truth.map(|t| t[i]), classes, &entropy_of)
        })
        // Collected in image order and summed in that order: floating-point sums stay identical run to run.
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Tally::new(r, classes, truth.is_some()), Tally::merge);

    let mut agreement = vec![vec![1.0; r]; r];
    let mut kappa = vec![vec![1.0; r]; r];
    let mut p = 0;
    for a in 0..r {
        for b in a + 1..r {
            agreement[a][b] = tally.pairs[p].accuracy();
            agreement[b][a] = agreement[a][b];
            kappa[a][b] = tally.pairs[p].kappa();
            kappa[b][a] = kappa[a][b];
            p += 1;
        }
    }
    let n = r as f64;
    let pixels = tally.pixels as f64;
    let fleiss_kappa = if pixels == 0.0 {
        1.0
    } else {
        let p_bar = (tally.squares as f64 - pixels * n) / (pixels * n * (n - 1.0));
        let p_e: f64 = tally.labels.iter().map(|&c| (c as f64 / (pixels * n)).powi(2)).sum();
        if (1.0 - p_e).abs() < 1e-12 { 1.0 } else { (p_bar - p_e) / (1.0 - p_e) }
    };
    let truth_analysis = truth.map(|_| {
        let mut error_phi = vec![vec![None; r]; r];
        let mut pairs = Vec::new();
        let error_rate: Vec<f64> = tally.truth.iter().map(|c| 1.0 - c.accuracy()).collect();
        let mut p = 0;
        for a in 0..r {
            error_phi[a][a] = Some(1.0);
            for b in a + 1..r {
                let [n00, n01, n10, n11] = tally.errors[p].map(|x| x as f64);
                let denom = ((n10 + n11) * (n00 + n01) * (n01 + n11) * (n00 + n10)).sqrt();
                let phi = (denom > 0.0).then(|| (n11 * n00 - n10 * n01) / denom);
                error_phi[a][b] = phi;
                error_phi[b][a] = phi;
                pairs.push(DisagreementError {
                    a,
                    b,
                    disagreement: 1.0 - agreement[a][b],
                    mean_error: (error_rate[a] + error_rate[b]) / 2.0,
                });
                p += 1;
            }
        }
        TruthAnalysis {
            miou: tally.truth.iter().map(Confusion::miou).collect(),
            accuracy: tally.truth.iter().map(Confusion::accuracy).collect(),
            dice: tally.truth.iter().map(|c| (0..classes).map(|k| c.dice(k)).collect()).collect(),
            error_phi,
            disagreement_vs_error: pairs,
        }
    });
    Ok(RaterAnalysis { agreement, kappa, fleiss_kappa, mean_vote_entropy: tally.entropy / pixels.max(1.0), truth: truth_analysis })
}

/// Per pixel of `maps` (one map per rater, same size), the class most raters give (ties to the
/// lower class index) and how many gave it.
pub fn plurality(maps: &[&[u8]], classes: usize) -> Vec<(u8, usize)> {
    let top = classes.max(1) - 1;
    let mut votes = vec![0usize; top + 1];
    (0..maps.first().map_or(0, |m| m.len()))
        .map(|p| {
            votes.iter_mut().for_each(|v| *v = 0);
            maps.iter().for_each(|m| votes[usize::from(m[p]).min(top)] += 1);
            let best = (0..votes.len()).max_by_key(|&c| (votes[c], std::cmp::Reverse(c))).unwrap_or(0);
            (best as u8, votes[best])
        })
        .collect()
}

/// The vote entropy of every pixel of one image, in nats, into `out` (reused between images).
pub fn vote_entropy(maps: &[&[u8]], classes: usize, out: &mut Vec<f32>) {
    let n = maps.len() as f32;
    let mut counts = vec![0u32; classes];
    out.clear();
    for i in 0..maps.first().map_or(0, |m| m.len()) {
        maps.iter().for_each(|m| counts[usize::from(m[i])] += 1);
        let mut h = 0.0;
        for m in maps {
            let c = usize::from(m[i]);
            if counts[c] > 0 {
                let p = counts[c] as f32 / n;
                h -= p * p.ln();
                counts[c] = 0;
            }
        }
        out.push(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyse(raters: &[Vec<u8>], truth: Option<&[u8]>, classes: usize) -> RaterAnalysis {
        let sets: Vec<Vec<&[u8]>> = raters.iter().map(|m| vec![m.as_slice()]).collect();
        let truth = truth.map(|t| vec![t]);
        analyse_raters(&sets, truth.as_deref(), classes).unwrap()
    }

    #[test]
    fn fleiss_kappa_matches_a_hand_computation() {
        // Three raters, four pixels, two classes:
        // pixel 0: 0 0 0 (P=1), 1: 1 1 1 (P=1), 2: 0 0 1 (P=1/3), 3: 1 1 0 (P=1/3).
        // P̄ = 2/3; p_0 = p_1 = 6/12, P̄_e = 1/2; κ = (2/3 − 1/2) / (1/2) = 1/3.
        let a = analyse(&[vec![0, 1, 0, 1], vec![0, 1, 0, 1], vec![0, 1, 1, 0]], None, 2);
        assert!((a.fleiss_kappa - 1.0 / 3.0).abs() < 1e-12, "{}", a.fleiss_kappa);
        // Vote entropy: two unanimous pixels (0) and two 2:1 splits (−⅔ln⅔ − ⅓ln⅓ = 0.6365).
        let split = -(2.0f64 / 3.0) * (2.0f64 / 3.0).ln() - (1.0f64 / 3.0) * (1.0f64 / 3.0).ln();
        assert!((a.mean_vote_entropy - split / 2.0).abs() < 1e-12);
        // Raters 0 and 1 agree everywhere; 0 and 2 on half the pixels with kappa 0.
        assert_eq!(a.agreement[0][1], 1.0);
        assert_eq!(a.agreement[0][2], 0.5);
        assert!(a.kappa[0][2].abs() < 1e-12);
    }

    #[test]
    fn identical_raters_agree_perfectly_even_on_one_class() {
        let a = analyse(&[vec![2; 9], vec![2; 9], vec![2; 9]], None, 4);
        assert_eq!(a.fleiss_kappa, 1.0);
        assert_eq!(a.kappa[0][1], 1.0);
        assert_eq!(a.mean_vote_entropy, 0.0);
    }

    #[test]
    fn shared_errors_correlate_and_disagreement_tracks_error() {
        let truth = vec![0, 0, 0, 0, 1, 1, 1, 1];
        let a = vec![1, 0, 0, 0, 1, 1, 1, 0]; // errs at 0 and 7
        let b = vec![1, 0, 0, 0, 1, 1, 1, 0]; // the same errors
        let c = vec![0, 1, 0, 0, 1, 1, 0, 1]; // errs at 1 and 6
        let x = analyse(&[a, b, c], Some(&truth), 2);
        let t = x.truth.unwrap();
        assert_eq!(t.error_phi[0][1], Some(1.0));
        // a and c never err together: n11 = 0, n10 = n01 = 2, n00 = 4 → φ = −4 / √(2·6·2·6) = −1/3.
        assert!((t.error_phi[0][2].unwrap() + 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.accuracy, vec![0.75, 0.75, 0.75]);
        let ac = t.disagreement_vs_error.iter().find(|p| (p.a, p.b) == (0, 2)).unwrap();
        assert_eq!((ac.disagreement, ac.mean_error), (0.5, 0.25));
        // Dice of class 1 for a: TP 3, FP 1, FN 1 → 6/8.
        assert_eq!(t.dice[0][1], Some(0.75));
    }

    #[test]
    fn mismatched_sizes_and_out_of_range_labels_are_named() {
        let sets: Vec<Vec<&[u8]>> = vec![vec![&[0, 1, 1]], vec![&[0, 1]]];
        assert!(matches!(analyse_raters(&sets, None, 2), Err(AgreeError::Size { who: Who::Rater(1), image: 0, pixels: 2, expected: 3 })));
        let sets: Vec<Vec<&[u8]>> = vec![vec![&[0, 1]], vec![&[0, 5]]];
        assert!(matches!(analyse_raters(&sets, None, 2), Err(AgreeError::Label { who: Who::Rater(1), value: 5, .. })));
    }

    #[test]
    fn vote_entropy_map_is_zero_where_raters_agree() {
        let mut out = Vec::new();
        vote_entropy(&[&[0, 1], &[0, 0]], 2, &mut out);
        assert_eq!(out[0], 0.0);
        assert!((out[1] - std::f32::consts::LN_2).abs() < 1e-6);
    }
}
