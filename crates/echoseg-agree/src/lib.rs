//! Metrics on label maps and probability maps: truth metrics, agreement, kappa and bias fingerprints.
//!
//! Architecture invariant: this crate never sees burn, a scene or a manifest. It takes label
//! maps as `&[u8]` (row-major, with their width and height) and probability maps as `&[f32]`,
//! so it serves model outputs and masks made anywhere alike.

pub mod bootstrap;
pub mod calibration;
pub mod confusion;
pub mod distance;
pub mod error;
pub mod fingerprint;
pub mod label_issues;
pub mod metric;
pub mod raters;
pub mod staple;
pub mod surface;
pub mod verdict;

pub use bootstrap::{BootstrapConfig, Estimated, Interval, Spread, bootstrap, bootstrap_spread};
pub use calibration::{BoundaryMatch, CALIBRATION_BINS, Calibration, boundary_match};
pub use confusion::Confusion;
pub use error::{AgreeError, Who};
pub use fingerprint::{
    BoundaryOffset, DEFAULT_MAX_OFFSET, Fingerprint, FingerprintCounts, Ratio, Subgroups, boundary_offset, change_rate, foreground_rate,
    subgroup_recall,
};
pub use label_issues::{
    ClassProbabilities, FlagBudget, FlagCounts, ImageIssues, IssueCount, SelfConfidence, error_concordance, image_score, softmin_score,
};
pub use metric::{BOUNDARY_TOLERANCE, Bias, Metric, Sense, Unit};
pub use raters::{DisagreementError, RaterAnalysis, TruthAnalysis, analyse_raters, check_raters, plurality, vote_entropy};
pub use staple::{Staple, StapleConfig, staple};
pub use surface::{ClassSurface, SURFACE_TOLERANCE, SurfaceScores, cl_dice, class_surfaces, surface_scores};
pub use verdict::{MAX_SEEDS_NEEDED, Trend, Verdict, VerdictRules, chance_decided, seeds_to_decide};
pub mod scores;

pub use scores::{PairScores, TruthScores, pair_scores, pooled_confusion, truth_scores};
