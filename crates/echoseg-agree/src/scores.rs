//! Scores over whole image sets, computed in parallel over images and pooled.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::confusion::Confusion;
use crate::fingerprint::{BoundaryOffset, boundary_offset};

/// Size of the label maps in a set: every map is `width × height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Number of classes (labels ≥ this are ignored).
    pub classes: usize,
}

/// Scores of a set of predictions against truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthScores {
    /// Mean IoU over classes present in the pooled truth or prediction.
    pub miou: f64,
    /// Pixel accuracy.
    pub accuracy: f64,
    /// IoU per class (`None` when a class is absent from both).
    pub iou: Vec<Option<f64>>,
    /// Mean signed boundary offset in px (+ = over-segmentation); `None` without boundaries.
    pub boundary_offset: Option<f64>,
}

/// Scores `predicted[i]` against `truth[i]` for every image, pooling pixels over the set.
pub fn truth_scores(predicted: &[&[u8]], truth: &[&[u8]], shape: MapShape, max_offset: f32) -> TruthScores {
    let (confusion, offset) = predicted
        .par_iter()
        .zip(truth.par_iter())
        .map(|(p, t)| {
            let c = Confusion::from_maps(t, p, shape.classes);
            let o = boundary_offset(p, t, shape.width, shape.height, shape.classes, max_offset);
            (c, o)
        })
        .reduce(
            || (Confusion::new(shape.classes), BoundaryOffset::default()),
            |(mut c1, mut o1), (c2, o2)| {
                c1.merge(&c2);
                o1.merge(o2);
                (c1, o1)
            },
        );
    TruthScores {
        miou: confusion.miou(),
        accuracy: confusion.accuracy(),
        iou: (0..shape.classes).map(|c| confusion.iou(c)).collect(),
        boundary_offset: offset.mean(),
    }
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
    let confusion = a.par_iter().zip(b.par_iter()).map(|(x, y)| Confusion::from_maps(x, y, classes)).reduce(
        || Confusion::new(classes),
        |mut m, n| {
            m.merge(&n);
            m
        },
    );
    PairScores { agreement: confusion.accuracy(), kappa: confusion.kappa() }
}
