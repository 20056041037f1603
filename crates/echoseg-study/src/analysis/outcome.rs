//! What a finished run leaves behind besides its files, read by every table and the report.

use echoseg_agree::{Calibration, Fingerprint, TruthScores};
use echoseg_nets::{ByolReport, TrainReport};
use serde::{Deserialize, Serialize};

use crate::plan::selection::SelectionRecord;

/// Everything a finished run leaves behind besides its files: written last, as `outcome.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The run's id.
    pub id: String,
    /// Scores of its test predictions against truth (meaningless when `scored` is false).
    pub test: TruthScores,
    /// True when the test images had truth to score against (real folder data may have none).
    #[serde(default = "scored_by_default")]
    pub scored: bool,
    /// Its bias fingerprint on the test images.
    pub fingerprint: Fingerprint,
    /// Expected calibration error of its test probabilities against truth (15 bins).
    #[serde(default)]
    pub calibration_error: Option<f64>,
    /// The reliability bins behind it (for the report's calibration diagrams).
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// What the selection kept of its pseudo-labels and how right they were (later generations).
    #[serde(default)]
    pub selection: Option<SelectionRecord>,
    /// Its BYOL pre-training, for a pre-trained model that did not start from a teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretraining: Option<ByolReport>,
    /// Its training record (steps, whether it converged, every epoch's losses).
    pub training: TrainReport,
    /// mIoU of its predictions on its own training images against the labels it learned from.
    #[serde(default)]
    pub fit_miou: Option<f64>,
    /// True when its test predictions collapsed ([`echoseg_agree::Confusion::collapsed`]).
    #[serde(default)]
    pub collapsed: bool,
    /// Wall time of training and prediction, in seconds.
    pub seconds: f64,
}

/// Outcomes written before `scored` existed were all scored against truth.
fn scored_by_default() -> bool {
    true
}
