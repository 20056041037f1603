//! Checkpoints: a network's weights in burn's burnpack format.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

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
