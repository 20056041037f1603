//! The third stage: what the runs measured, tabled. Per-run records (outcome, fingerprints),
//! the tables and their typed rows, intervals and verdicts, targets, committee masks, label
//! issues and the sample panels. It reads the plan and the runs' files; it never trains.

pub mod committee;
pub mod fingerprints;
pub mod intervals;
pub(crate) mod label_issues;
pub(crate) mod outcome;
pub mod resolution;
pub mod rows;
pub(crate) mod samples;
pub(crate) mod tables;
