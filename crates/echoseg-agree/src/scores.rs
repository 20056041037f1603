//! Scores over whole image sets, computed in parallel over images and pooled.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::confusion::Confusion;

/// Scores of a set of predictions against truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthScores {
    /// Mean IoU over classes present in the pooled truth or prediction.
    pub miou: f64,
    /// Pixel accuracy.
    pub accuracy: f64,
    /// IoU per class (`None` when a class is absent from both).
    pub iou: Vec<Option<f64>>,
    /// Dice per class (`None` when a class is absent from both).
    #[serde(default)]
    pub dice: Vec<Option<f64>>,
}

impl TruthScores {
    /// The scores a pooled confusion matrix (reference = truth) gives.
    pub fn of(confusion: &Confusion) -> Self {
        let classes = confusion.classes();
        TruthScores {
            miou: confusion.miou(),
            accuracy: confusion.accuracy(),
            iou: (0..classes).map(|c| confusion.iou(c)).collect(),
            dice: (0..classes).map(|c| confusion.dice(c)).collect(),
        }
    }
}

/// Scores `predicted[i]` against `truth[i]` for every image, pooling pixels over the set.
pub fn truth_scores(predicted: &[&[u8]], truth: &[&[u8]], classes: usize) -> TruthScores {
    TruthScores::of(&pooled_confusion(truth, predicted, classes))
}

/// The confusion matrix of `other[i]` against `reference[i]`, pooled over every image.
pub fn pooled_confusion(reference: &[&[u8]], other: &[&[u8]], classes: usize) -> Confusion {
    reference.par_iter().zip(other.par_iter()).map(|(r, o)| Confusion::from_maps(r, o, classes)).reduce(
        || Confusion::new(classes),
        |mut m, n| {
            m.merge(&n);
            m
        },
    )
}

/// Agreement between two raters over a set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairScores {
    /// Share of pixels with equal labels.
    pub agreement: f64,
    /// Cohen's kappa over the pooled pixels.
    pub kappa: f64,
}

/// Pixel agreement and Cohen's kappa between rater `a` and rater `b` over a set.
pub fn pair_scores(a: &[&[u8]], b: &[&[u8]], classes: usize) -> PairScores {
    let confusion = pooled_confusion(a, b, classes);
    PairScores { agreement: confusion.accuracy(), kappa: confusion.kappa() }
}
