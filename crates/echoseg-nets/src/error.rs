//! Errors of the networks crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, training or running a network.
#[derive(Debug, thiserror::Error)]
pub enum NetsError {
    /// The loss became NaN, infinite or exploded; training stopped.
    #[error("training diverged at epoch {epoch}, step {step}: loss {loss} (lower train.learning_rate, now {learning_rate})")]
    Diverged {
        /// Epoch (1-based) where it happened.
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// The offending loss value.
        loss: f32,
        /// The learning rate in use.
        learning_rate: f64,
    },
    /// No training samples were given.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// A sample's target or weights do not fit its image.
    #[error("sample {index} is {found}, expected {expected}")]
    InconsistentSample {
        /// Index of the offending sample.
        index: usize,
        /// Its shape, in words.
        found: String,
        /// The shape it should have, in words.
        expected: String,
    },
    /// `train.crop` is larger than an image it would be cut from.
    #[error(
        "train.crop = {side} is larger than image {index}, which is {width}×{height} px: set train.crop to at most {} or leave it out (the smallest side, capped at 128 px)",
        width.min(height)
    )]
    CropTooLarge {
        /// The requested crop side.
        side: usize,
        /// Index of the smallest image among those trained on.
        index: usize,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
    },
    /// The requested device cannot be used.
    #[error("{0}")]
    DeviceUnavailable(String),
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Reading a tensor back from the device failed.
    #[error("reading results back from the device failed: {0}")]
    Readback(String),
}
