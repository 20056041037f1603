//! The vocabulary of measurements: every metric and bias the tables carry, named once, with how
//! each is read (unit, sign, decimals) and, for a bias, how far a value lies from unbiased.
//!
//! Names are parsed at the file boundary ([`Metric::from_name`], [`Bias::from_name`]) and written
//! back with `name()`; everything in between works with the enums.

use std::fmt;

/// Tolerance in px of the boundary F1 ([`Bias::BoundaryF1`]): part of what that bias means.
pub const BOUNDARY_TOLERANCE: f32 = 2.0;

/// What a value is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Pixels (distances).
    Pixels,
    /// A share in [0, 1] (recalls, rates, F1), or a difference of shares.
    Share,
}

/// Which values are good: what an unbiased model scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sense {
    /// Zero is unbiased and the sign says which way (boundary offset: + = over-segmentation).
    Signed,
    /// One is unbiased: a recall or an F1.
    HigherIsBetter,
    /// Zero is unbiased: a rate of errors.
    LowerIsBetter,
}

/// One bias of a fingerprint, measured against truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bias {
    /// Mean signed boundary offset in px (+ = over-segmentation).
    BoundaryOffset,
    /// Boundary F1 at [`BOUNDARY_TOLERANCE`] px.
    BoundaryF1,
    /// Share of thin-structure pixels labelled as thin.
    ThinRecall,
    /// Share of small-object pixels given their true class.
    SmallObjectRecall,
    /// Share of low-contrast-object pixels given their true class.
    LowContrastRecall,
    /// Share of cast-shadow pixels (background in truth) labelled as foreground.
    ShadowFpRate,
    /// Share of pixels whose label changes when only the spurious cue is flipped.
    CueReliance,
    /// mIoU on real-style minus mIoU on synthetic-style test images.
    DomainGap,
}

impl Bias {
    /// Every bias, in fingerprint order.
    pub const ALL: [Bias; 8] = [
        Bias::BoundaryOffset,
        Bias::BoundaryF1,
        Bias::ThinRecall,
        Bias::SmallObjectRecall,
        Bias::LowContrastRecall,
        Bias::ShadowFpRate,
        Bias::CueReliance,
        Bias::DomainGap,
    ];

    /// The biases counted image by image, so with intervals over images and verdicts (cue
    /// reliance in studies with a cue, the domain gap in studies with synthetic test images,
    /// each synthetic image paired with the real one of its index): every bias.
    pub const COUNTED: [Bias; 8] = Bias::ALL;

    /// The biases measured on a subgroup of pixels (thin structures, small and low-contrast
    /// objects, cast shadows), where label biases hide.
    pub const SUBGROUPS: [Bias; 4] = [Bias::ThinRecall, Bias::SmallObjectRecall, Bias::LowContrastRecall, Bias::ShadowFpRate];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Bias::BoundaryOffset => "boundary_offset",
            Bias::BoundaryF1 => "boundary_f1",
            Bias::ThinRecall => "thin_recall",
            Bias::SmallObjectRecall => "small_object_recall",
            Bias::LowContrastRecall => "low_contrast_recall",
            Bias::ShadowFpRate => "shadow_fp_rate",
            Bias::CueReliance => "cue_reliance",
            Bias::DomainGap => "domain_gap",
        }
    }

    /// The bias a table name stands for.
    pub fn from_name(name: &str) -> Option<Bias> {
        Bias::ALL.into_iter().find(|b| b.name() == name)
    }

    /// How readers see the bias named in sentences, figure titles and table headers.
    pub fn display_name(self) -> String {
        match self {
            Bias::BoundaryOffset => "boundary offset (px)".into(),
            Bias::BoundaryF1 => format!("boundary F1 ({BOUNDARY_TOLERANCE} px)"),
            Bias::ThinRecall => "thin-structure recall".into(),
            Bias::SmallObjectRecall => "small-object recall".into(),
            Bias::LowContrastRecall => "low-contrast recall".into(),
            Bias::ShadowFpRate => "shadow false-positive rate".into(),
            Bias::CueReliance => "spurious-cue reliance".into(),
            Bias::DomainGap => "domain gap".into(),
        }
    }

    /// What the value is measured in.
    pub fn unit(self) -> Unit {
        match self {
            Bias::BoundaryOffset => Unit::Pixels,
            _ => Unit::Share,
        }
    }

    /// Which values are good.
    pub fn sense(self) -> Sense {
        match self {
            Bias::BoundaryOffset | Bias::DomainGap => Sense::Signed,
            Bias::BoundaryF1 | Bias::ThinRecall | Bias::SmallObjectRecall | Bias::LowContrastRecall => Sense::HigherIsBetter,
            Bias::ShadowFpRate | Bias::CueReliance => Sense::LowerIsBetter,
        }
    }

    /// True when values are shown with their sign, because the sign is the direction of the bias.
    pub fn signed(self) -> bool {
        self.sense() == Sense::Signed
    }

    /// Decimals shown in tables of scores: hundredths of a pixel, thousandths of a share.
    pub fn decimals(self) -> usize {
        match self.unit() {
            Unit::Pixels => 2,
            Unit::Share => 3,
        }
    }

    /// How far `value` lies from an unbiased model: |offset| for a signed bias, 1 − value for
    /// a recall or F1, |rate| for a rate. A bias amplifies when this grows.
    pub fn size(self, value: f64) -> f64 {
        match self.sense() {
            Sense::HigherIsBetter => 1.0 - value,
            Sense::Signed | Sense::LowerIsBetter => value.abs(),
        }
    }
}

impl fmt::Display for Bias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every quantity the results tables carry, in the `metric` column: scores against truth,
/// agreement between models, and what a run measured of its own training.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Mean IoU over the classes present.
    Miou,
    /// Share of pixels labelled right.
    Accuracy,
    /// IoU of one class (named).
    Iou(String),
    /// Dice of one class (named).
    Dice(String),
    /// Mean over test images of one class's 95th-percentile Hausdorff distance, px (named class).
    Hd95(String),
    /// Mean over test images of one class's average symmetric surface distance, px (named class).
    Assd(String),
    /// Mean over test images of one class's normalised surface Dice at [`crate::SURFACE_TOLERANCE`] (named class).
    SurfaceDice(String),
    /// Mean over test images of one class's centreline Dice, clDice (named class).
    ClDice(String),
    /// Test images where exactly one of the prediction and the truth has the class (named): its
    /// surface metrics count there at their worst values.
    SurfaceEmpty(String),
    /// A bias of the fingerprint.
    Bias(Bias),
    /// Expected calibration error.
    Ece,
    /// Pixel agreement between two models.
    Agreement,
    /// Cohen's kappa between two models.
    Kappa,
    /// Mean of two models' error rates against truth.
    MeanError,
    /// Phi correlation of two models' per-pixel errors.
    ErrorPhi,
    /// Fleiss' kappa over a committee of models.
    FleissKappa,
    /// Mean vote entropy over a committee of models.
    VoteEntropy,
    /// A model's sensitivity (recall) of one class (named), against truth.
    Sensitivity(String),
    /// STAPLE's estimate of a model's sensitivity of one class (named), without truth.
    StapleSensitivity(String),
    /// Share of pool pixels the teachers offered a pseudo-label for.
    OfferedFraction,
    /// Share of pool pixels with a pseudo-label after selection.
    KeptFraction,
    /// The pseudo-labels' share of the student's loss weight.
    PseudoShare,
    /// Accuracy of the pool's pseudo-labels before selection.
    PseudoAccuracyBefore,
    /// Accuracy of the pool's pseudo-labels after selection.
    PseudoAccuracyAfter,
    /// BYOL pre-training: loss of its first epoch.
    ByolLossFirst,
    /// BYOL pre-training: loss of its last epoch.
    ByolLossLast,
    /// BYOL pre-training: spread of the unit embeddings before it.
    ByolEmbeddingStdInitial,
    /// BYOL pre-training: spread of the unit embeddings after its last epoch.
    ByolEmbeddingStdLast,
    /// Optimiser steps a run took.
    Steps,
    /// 1 when a run's validation loss had levelled off within its budget, else 0.
    Converged,
    /// mIoU of a run's predictions against the labels it trained on (its training images):
    /// how well it learned what it was taught.
    FitMiou,
    /// mIoU against truth of the labels a generation-0 run learned from, on its training images:
    /// a network trained on labels with only random errors should score above it on the test images.
    LabelsMiou,
    /// 1 when a run's test predictions collapsed (a class of the truth never predicted, or one
    /// class everywhere), else 0.
    Collapsed,
}

/// The metrics named by a fixed word, with their names (per-class metrics are prefixes).
const FIXED: [(Metric, &str); 23] = [
    (Metric::Miou, "miou"),
    (Metric::Accuracy, "accuracy"),
    (Metric::Ece, "ece"),
    (Metric::Agreement, "agreement"),
    (Metric::Kappa, "kappa"),
    (Metric::MeanError, "mean_error"),
    (Metric::ErrorPhi, "error_phi"),
    (Metric::FleissKappa, "fleiss_kappa"),
    (Metric::VoteEntropy, "vote_entropy"),
    (Metric::OfferedFraction, "offered_fraction"),
    (Metric::KeptFraction, "kept_fraction"),
    (Metric::PseudoShare, "pseudo_share"),
    (Metric::PseudoAccuracyBefore, "pseudo_accuracy_before"),
    (Metric::PseudoAccuracyAfter, "pseudo_accuracy_after"),
    (Metric::ByolLossFirst, "byol_loss_first"),
    (Metric::ByolLossLast, "byol_loss_last"),
    (Metric::ByolEmbeddingStdInitial, "byol_embedding_std_initial"),
    (Metric::ByolEmbeddingStdLast, "byol_embedding_std_last"),
    (Metric::Steps, "steps"),
    (Metric::Converged, "converged"),
    (Metric::FitMiou, "fit_miou"),
    (Metric::LabelsMiou, "labels_miou"),
    (Metric::Collapsed, "collapsed"),
];

/// Makes a per-class metric from its class name.
type OfClass = fn(String) -> Metric;

/// The per-class metrics: a prefix, then the class name.
const PER_CLASS: [(&str, OfClass); 9] = [
    ("iou_", Metric::Iou),
    ("dice_", Metric::Dice),
    ("hd95_", Metric::Hd95),
    ("assd_", Metric::Assd),
    ("surface_dice_", Metric::SurfaceDice),
    ("cldice_", Metric::ClDice),
    ("surface_empty_", Metric::SurfaceEmpty),
    ("staple_sensitivity_", Metric::StapleSensitivity),
    ("sensitivity_", Metric::Sensitivity),
];

impl Metric {
    /// Metrics that have per-image counts, so intervals over images: mIoU and the biases a
    /// verdict is given on ([`Bias::COUNTED`]).
    pub fn counted() -> impl Iterator<Item = Metric> {
        std::iter::once(Metric::Miou).chain(Bias::COUNTED.map(Metric::Bias))
    }

    /// The name in tables (`miou`, `iou_blob`, `boundary_offset`, …).
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The metric a table name stands for; `None` for a name echoseg does not write.
    pub fn from_name(name: &str) -> Option<Metric> {
        if let Some(bias) = Bias::from_name(name) {
            return Some(Metric::Bias(bias));
        }
        if let Some((metric, _)) = FIXED.iter().find(|(_, n)| *n == name) {
            return Some(metric.clone());
        }
        PER_CLASS.iter().find_map(|(prefix, of)| name.strip_prefix(prefix).filter(|c| !c.is_empty()).map(|c| of(c.to_string())))
    }

    /// The bias, for a fingerprint metric.
    pub fn bias(&self) -> Option<Bias> {
        match self {
            Metric::Bias(b) => Some(*b),
            _ => None,
        }
    }

    /// True when values are shown with their sign (see [`Bias::signed`]).
    pub fn signed(&self) -> bool {
        self.bias().is_some_and(Bias::signed)
    }

    /// The values it can take where they are bounded: [0, 1] for a share, [−1, 1] for kappa and
    /// a difference of shares; `None` for distances, losses and spreads.
    pub fn range(&self) -> Option<(f64, f64)> {
        match self {
            Metric::Miou | Metric::Accuracy | Metric::Iou(_) | Metric::Dice(_) | Metric::Ece | Metric::Agreement => Some((0.0, 1.0)),
            Metric::SurfaceDice(_) | Metric::ClDice(_) => Some((0.0, 1.0)),
            Metric::Sensitivity(_) | Metric::StapleSensitivity(_) => Some((0.0, 1.0)),
            Metric::Kappa => Some((-1.0, 1.0)),
            Metric::Bias(b) => match (b.unit(), b.sense()) {
                (Unit::Pixels, _) => None,
                (Unit::Share, Sense::Signed) => Some((-1.0, 1.0)),
                (Unit::Share, _) => Some((0.0, 1.0)),
            },
            _ => None,
        }
    }

    /// How far `value` lies from the ideal in the direction a change is judged: [`Bias::size`]
    /// for a bias, the value itself for a score (so its change is after − before).
    pub fn size(&self, value: f64) -> f64 {
        match self {
            Metric::Bias(b) => b.size(value),
            _ => value.abs(),
        }
    }
}

impl From<Bias> for Metric {
    fn from(bias: Bias) -> Self {
        Metric::Bias(bias)
    }
}

impl fmt::Display for Metric {
    /// The name in tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = |prefix: &str, class: &str, f: &mut fmt::Formatter<'_>| write!(f, "{prefix}{class}");
        match self {
            Metric::Bias(b) => f.write_str(b.name()),
            Metric::Iou(c) => class("iou_", c, f),
            Metric::Dice(c) => class("dice_", c, f),
            Metric::Hd95(c) => class("hd95_", c, f),
            Metric::Assd(c) => class("assd_", c, f),
            Metric::SurfaceDice(c) => class("surface_dice_", c, f),
            Metric::ClDice(c) => class("cldice_", c, f),
            Metric::SurfaceEmpty(c) => class("surface_empty_", c, f),
            Metric::Sensitivity(c) => class("sensitivity_", c, f),
            Metric::StapleSensitivity(c) => class("staple_sensitivity_", c, f),
            fixed => f.write_str(FIXED.iter().find(|(m, _)| m == fixed).map_or("", |(_, n)| n)),
        }
    }
}

impl serde::Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for bias in Bias::ALL {
            assert_eq!(Bias::from_name(bias.name()), Some(bias));
            assert_eq!(Metric::from_name(bias.name()), Some(Metric::Bias(bias)));
        }
        for (metric, name) in FIXED {
            assert_eq!(metric.name(), name);
            assert_eq!(Metric::from_name(name), Some(metric));
        }
        for metric in [
            Metric::Iou("blob".into()),
            Metric::Dice("thin".into()),
            Metric::Sensitivity("box".into()),
            Metric::StapleSensitivity("thin".into()),
            Metric::Hd95("blob".into()),
            Metric::Assd("thin".into()),
            Metric::SurfaceDice("blob".into()),
            Metric::ClDice("thin".into()),
            Metric::SurfaceEmpty("thin".into()),
        ] {
            assert_eq!(Metric::from_name(&metric.name()), Some(metric));
        }
        // `surface_dice_` is read as itself, never as `dice_` of a class named `surface…`.
        assert_eq!(Metric::from_name("surface_dice_blob"), Some(Metric::SurfaceDice("blob".into())));
        assert_eq!(Metric::StapleSensitivity("x".into()).name(), "staple_sensitivity_x");
        assert_eq!(Metric::from_name("iou"), None);
        assert_eq!(Metric::from_name("iou_"), None);
        assert_eq!(Bias::from_name("miou"), None);
    }

    #[test]
    fn bias_size_is_the_distance_from_an_unbiased_model() {
        assert_eq!(Bias::BoundaryOffset.size(-1.5), 1.5);
        assert_eq!(Bias::ThinRecall.size(0.75), 0.25);
        assert_eq!(Bias::BoundaryF1.size(0.75), 0.25);
        assert_eq!(Bias::ShadowFpRate.size(0.2), 0.2);
        assert_eq!(Bias::DomainGap.size(-0.1), 0.1);
        assert_eq!(Metric::Miou.size(0.8), 0.8);
        assert_eq!(Bias::BoundaryF1.display_name(), "boundary F1 (2 px)");
    }
}
