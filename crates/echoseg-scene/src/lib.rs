//! Procedural scenes with exact truth and per-object attributes, label-source simulators
//! and PNG I/O.
//!
//! Architecture invariant: this crate knows nothing of networks, metrics or studies; it makes
//! images and labels, and nothing it produces depends on anything but its inputs and a seed.

pub mod morph;
pub mod png;
pub mod raster;
pub mod rng;
pub mod source;
pub mod world;

pub use raster::{ClassId, Image, LabelMap};
pub use rng::Rng;
pub use source::{HeuristicRules, LabelSource, ManualBias, Threshold};
pub use world::{ObjectAttributes, ObjectKind, Scene, Style, WorldConfig, generate_scene, generate_world, scene_id};
