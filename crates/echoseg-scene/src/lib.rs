//! Procedural scenes with exact truth and per-object attributes, label-source simulators
//! and PNG I/O.
//!
//! Architecture invariant: this crate knows nothing of networks, metrics or studies; it makes
//! images and labels, and nothing it produces depends on anything but its inputs and a seed.

pub mod folder;
pub mod generate;
pub mod morph;
pub mod outline;
pub mod png;
pub mod raster;
pub mod rng;
pub mod source;
pub mod world;

pub use folder::{DataProblem, FolderDataset, FolderError, FolderSpec, image_name, is_image_file, read_folder, write_folder};
pub use generate::{generate_scene, generate_world};
pub use raster::{ClassId, ClassTable, Image, LabelMap};
pub use rng::Rng;
pub use source::{HeuristicRules, LabelSource, ManualBias, MaskSet, SourceError, Threshold};
pub use world::{CueRule, ObjectAttributes, ObjectKind, Scene, Style, Truth, WorldConfig, scene_id};
