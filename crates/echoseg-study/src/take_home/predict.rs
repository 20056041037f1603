//! Segmenting new images with a finished run's network, the way the study segmented its test
//! images: the same weights, inference batch and tiling.

use std::path::{Path, PathBuf};

use echoseg_nets::{Device, Network, NetworkSpec, Probabilities, Tiling, load_network, predict_tiled};
use echoseg_scene::Image;
use serde::Deserialize;

use crate::StudyError;
use crate::plan::manifest;
use crate::store::{RunDir, read_json};

/// A trained network with the inference settings of the study that trained it.
pub struct TrainedModel {
    /// The run's id (its directory's name).
    pub run: String,
    /// The network's architecture, size, input channels and classes.
    pub spec: NetworkSpec,
    /// The trained network, in inference mode.
    pub network: Network,
    /// Images (or tiles) per forward pass, as in the study.
    pub batch: usize,
    /// How images larger than a tile are cut, as in the study.
    pub tiling: Tiling,
}

/// The part of a run's `run.json` a prediction needs.
#[derive(Deserialize)]
struct RunSettings {
    id: String,
    network: NetworkSpec,
}

/// Loads the network of the finished run in `run_dir` (`reports/NAME/runs/RUN`), with the
/// inference batch and tiling of its study's manifest copy (`reports/NAME/manifest.toml`).
pub fn load_trained(run_dir: &Path, device: &Device) -> Result<TrainedModel, StudyError> {
    // Canonical, so that `--model .` from inside the run still finds the study two levels up.
    let run_dir = &std::fs::canonicalize(run_dir).map_err(|e| not_a_run(run_dir, &e.to_string()))?;
    let run = RunDir::at(run_dir);
    let settings: RunSettings = read_json(&run.settings()).map_err(|e| not_a_run(run_dir, &e.to_string()))?;
    if !run.checkpoint().is_file() {
        return Err(not_a_run(run_dir, "it has no trained weights (model.bpk): the run did not finish"));
    }
    let study = run_dir.parent().and_then(Path::parent).map(|s| s.join("manifest.toml")).unwrap_or_default();
    let manifest = manifest::load(&study).map_err(|e| StudyError::Config(format!("the study's manifest copy cannot be read: {e}")))?;
    // BatchNorm folded into the convolutions, as the study predicted its test images.
    let network = load_network(&settings.network, &run.checkpoint(), device)
        .map_err(|source| StudyError::Nets { run: settings.id.clone(), source })?
        .for_inference();
    Ok(TrainedModel { run: settings.id, spec: settings.network, network, batch: manifest.inference_batch, tiling: manifest.tiling })
}

fn not_a_run(run_dir: &Path, why: &str) -> StudyError {
    StudyError::Config(format!(
        "{} is not a finished run of a study (a directory reports/NAME/runs/RUN with run.json and model.bpk): {why}",
        run_dir.display()
    ))
}

impl TrainedModel {
    /// Class probabilities of every image; an image whose channels the network was not trained
    /// on is an error naming its file (`names[i]` is `images[i]`'s).
    pub fn segment(&self, images: &[&Image], names: &[PathBuf], device: &Device) -> Result<Vec<Probabilities>, StudyError> {
        for (image, name) in images.iter().zip(names) {
            let channels = image.pixels.len() / (image.width * image.height).max(1);
            if channels != self.spec.inputs {
                return Err(StudyError::Config(format!(
                    "{}: the image has {channels} channel(s), but run {} was trained on {}",
                    name.display(),
                    self.run,
                    self.spec.inputs
                )));
            }
        }
        predict_tiled(&self.network, images, self.batch, self.tiling, device)
            .map_err(|source| StudyError::Nets { run: self.run.clone(), source })
    }
}
