//! Manifests and their validation, the study planner, the engine that runs generations of
//! pseudo-labelling, the run store and the results tables.
//!
//! Architecture invariant: the study decides *what* runs and *where* it is stored; how a network
//! trains lives in `echoseg-nets`, how a metric is computed in `echoseg-agree`, how a figure looks
//! in `echoseg-report`. Nothing here draws or prints.

pub mod answers;
pub mod data;
pub mod engine;
pub mod error;
pub mod export;
pub mod fingerprints;
pub mod finish;
pub mod folder_split;
pub mod intervals;
pub mod label_issues;
pub mod manifest;
pub mod outcome;
pub mod overview;
pub mod plan;
pub mod predict;
pub mod provenance;
pub mod resolution;
pub mod rounds;
pub mod rows;
pub mod samples;
pub mod schedule;
pub mod selection;
pub mod store;
pub mod strategy;
pub mod tables;
pub mod targets;

pub use echoseg_nets::{IGNORE, LEVELLED_OFF};
pub use engine::{Observer, Reuse, Shard, Silent, StudySummary, merge_study, run_study, run_study_shard};
pub use error::StudyError;
pub use manifest::{Manifest, ManifestError};
pub use outcome::RunOutcome;
pub use plan::{Plan, PlannedRun, plan};
pub use provenance::Provenance;
pub use store::StudyDir;
pub use strategy::{Strategy, Treatment};
