//! The second stage: training the planned runs (whole, in shards, or merged), asking the analysis
//! to table them after every round, and finishing the study with its provenance.

pub mod engine;
pub mod finish;
pub mod provenance;
