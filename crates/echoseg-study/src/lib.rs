//! Manifests and their validation, the study planner, the engine that runs generations of
//! pseudo-labelling, the run store and the results tables.
//!
//! The folders follow a study's stages, and each uses only the ones before it (with `store`
//! and `error`, which every stage shares): [`plan`] (what runs), [`analysis`] (what the runs
//! measured, tabled), [`run`] (training the runs and asking the analysis for the tables), and
//! [`take_home`] (export, predict, answers). [`read`] is what the report reads.
//!
//! Architecture invariant: the study decides *what* runs and *where* it is stored; how a network
//! trains lives in `echoseg-nets`, how a metric is computed in `echoseg-agree`, how a figure looks
//! in `echoseg-report`. Nothing here draws or prints.

// Some modules are crate-private; a type reachable from outside must still be nameable there.
#![warn(unnameable_types)]

pub mod analysis;
pub mod error;
pub mod plan;
pub mod read;
pub mod run;
pub mod store;
pub mod take_home;

pub use analysis::outcome::RunOutcome;
pub use echoseg_nets::{IGNORE, LEVELLED_OFF};
pub use error::StudyError;
pub use plan::manifest::{Manifest, ManifestError};
pub use plan::strategy::{Strategy, Treatment};
pub use plan::{Plan, PlannedRun, plan};
pub use run::engine::{Observer, Reuse, Shard, Silent, StudySummary, merge_study, run_study, run_study_shard};
pub use run::provenance::Provenance;
pub use store::StudyDir;
