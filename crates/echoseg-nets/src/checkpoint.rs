//! Checkpoints: a network's weights in burn's burnpack format, and the per-epoch state of a
//! training in progress, so a killed training continues where it stopped.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::tensor::Device;
use serde::Serialize;

use crate::NetsError;
use crate::arch::{Network, NetworkSpec};

/// Writes `network`'s weights to `path`.
pub fn save_network(network: &Network, path: &Path) -> Result<(), NetsError> {
    network.clone().save_file(path).map_err(|e| NetsError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
}

/// Reads weights for a network of `spec` from `path`, in inference mode on `device`.
pub fn load_network(spec: &NetworkSpec, path: &Path, device: &Device) -> Result<Network, NetsError> {
    Network::new(spec, device)
        .try_load_file(path)
        .map(|n| n.valid())
        .map_err(|e| NetsError::Checkpoint { path: path.to_path_buf(), message: e.to_string() })
}

/// The directory where one training keeps its state after every epoch, and the key that says
/// which training that state belongs to.
pub(crate) struct CheckpointStore<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) key: String,
}

impl CheckpointStore<'_> {
    const STATE: &'static str = "train-state.json";

    fn file(&self, epoch: usize, what: &str) -> PathBuf {
        self.dir.join(format!("epoch-{epoch}-{what}.bpk"))
    }

    fn error(path: &Path, message: impl std::fmt::Display) -> NetsError {
        NetsError::Checkpoint { path: path.to_path_buf(), message: message.to_string() }
    }

    /// The saved state, if any and if it is this training's (its `key` matches); a state of
    /// another training is ignored.
    pub(crate) fn load_state<S: serde::de::DeserializeOwned>(&self) -> Result<Option<S>, NetsError> {
        let path = self.dir.join(Self::STATE);
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Self::error(&path, e))?;
        if value.get("key").and_then(serde_json::Value::as_str) != Some(self.key.as_str()) {
            return Ok(None);
        }
        serde_json::from_value(value).map(Some).map_err(|e| Self::error(&path, e))
    }

    /// The module saved at `epoch` under `what` (`model`, `best`, `teacher`, …), loaded into `blank`.
    pub(crate) fn load_module<M: Module>(&self, epoch: usize, what: &str, blank: M) -> Result<M, NetsError> {
        let file = self.file(epoch, what);
        blank.try_load_file(&file).map_err(|e| Self::error(&file, e))
    }

    /// The optimiser state saved at `epoch`.
    pub(crate) fn load_optimiser(&self, epoch: usize) -> Result<OptimizerRecord, NetsError> {
        let file = self.file(epoch, "optimizer");
        OptimizerRecord::load(&file).map_err(|e| Self::error(&file, e))
    }

    /// Saves `module` for `epoch` under `what`. `valid` folds BatchNorm's pending running-statistics
    /// updates into the saved values; a training-mode module would save stale ones.
    pub(crate) fn save_module<M: Module>(&self, epoch: usize, what: &str, module: &M) -> Result<(), NetsError> {
        std::fs::create_dir_all(self.dir).map_err(|e| Self::error(self.dir, e))?;
        let file = self.file(epoch, what);
        module.valid().save_file(&file).map_err(|e| Self::error(&file, e))
    }

    /// Saves the optimiser state for `epoch`.
    pub(crate) fn save_optimiser(&self, epoch: usize, record: OptimizerRecord) -> Result<(), NetsError> {
        let file = self.file(epoch, "optimizer");
        record.save(&file).map_err(|e| Self::error(&file, e))
    }

    /// Writes the state of `epoch`, whose files are saved (the commit), then removes the previous
    /// epoch's files: a kill at any moment leaves one whole state.
    pub(crate) fn commit<S: Serialize>(&self, epoch: usize, state: &S) -> Result<(), NetsError> {
        let path = self.dir.join(Self::STATE);
        let partial = self.dir.join(format!("{}.partial", Self::STATE));
        let text = serde_json::to_string(state).map_err(|e| Self::error(&path, e))?;
        std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, &path)).map_err(|e| Self::error(&path, e))?;
        if epoch > 0 {
            let previous = format!("epoch-{}-", epoch - 1);
            for entry in std::fs::read_dir(self.dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(&previous) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}
