//! What the report reads of a finished study: the tables' typed rows, the side files' indexes,
//! the names parsed from the tables' columns and the constants its sentences quote. The report
//! uses nothing else of this crate, so a change elsewhere cannot reach a page unseen.

pub use crate::analysis::committee::MaskKind;
pub use crate::analysis::intervals::{LEARNED_CLASS_IOU, LEARNED_MIOU, PretrainingVerdict};
pub use crate::analysis::label_issues::{OTHER_SOURCES, WorstImage, WorstIndex, WorstMap};
pub use crate::analysis::outcome::RunOutcome;
pub use crate::analysis::rows::{
    GapRow, HistoryRow, LabelConfusionRow, LabelIssueQualityRow, MaskRow, PretrainingRow, ResultRow, SummaryRow, TargetRow, TrendRow,
    VerdictRow, answer_rows, read_gap, read_history, read_label_confusions, read_label_issue_quality, read_masks, read_pretraining,
    read_results, read_summary, read_targets, read_trends, read_verdicts,
};
pub use crate::analysis::samples::SampleIndex;
pub use crate::analysis::tables::Subject;
pub use crate::error::StudyError;
pub use crate::plan::data::Splits;
pub use crate::plan::settings_hash;
pub use crate::plan::strategy::{PseudoLabels, Strategy, Treatment};
pub use crate::plan::targets::{Judgement, Target};
pub use crate::run::provenance::Provenance;
pub use crate::store::{StudyDir, read_json, read_labels, write_atomic};
pub use echoseg_nets::{IGNORE, LEVELLED_OFF};
