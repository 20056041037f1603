//! Segmenter architectures on burn, the training loop (one epoch driver for supervised
//! training, the mean teacher and BYOL), batched inference, checkpoints and the device choice.
//!
//! Architecture invariant: tensors in, tensors out. This crate knows images and targets
//! (from `echoseg-scene`) but nothing of label sources, studies, metrics or reports.

pub mod arch;
pub mod augment;
pub mod bench;
pub mod byol;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod ema;
pub mod epochs;
pub mod error;
pub mod infer;
pub mod init;
pub mod mean_teacher;
pub mod settings;
pub mod train;

pub use arch::{Architecture, Network, NetworkSpec, ParameterValues, Pretrain, SegmenterOutput};
pub use augment::Augmentation;
pub use bench::{BenchCase, BenchResult, bench, gemm_gflops, peak_rss_mib, reference_case};
/// burn's runtime device, re-exported so callers need not depend on burn.
pub use burn::tensor::Device;
pub use byol::{ByolConfig, ByolEpoch, ByolReport, embedding_std, pretrain_byol};
pub use checkpoint::{load_network, save_network};
pub use data::{CROP_LIMIT, IGNORE, Sample, Target, training_crop};
pub use device::DeviceChoice;
pub use ema::{detached_copy, ema_update};
pub use epochs::{EpochRecord, LEVELLED_OFF, Progress, TrainReport, levelled_off};
pub use error::NetsError;
pub use infer::{Probabilities, Tiling, predict, predict_tiled, predict_with_hardness};
pub use init::init_network;
pub use mean_teacher::{EmaConfig, train_mean_teacher};
pub use settings::{SettingProblem, Settings, Valid};
pub use train::{Budget, DEFAULT_STEPS, TrainConfig, TrainingRequest, train, train_resumable};
