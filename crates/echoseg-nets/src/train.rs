//! Supervised training: weighted soft-target cross-entropy on labelled samples, with early
//! stopping on the validation split only. The epoch driver ([`crate::epochs`]) runs the loop.

use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use echoseg_scene::Rng;
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::{Network, NetworkSpec};
use crate::checkpoint::CheckpointStore;
use crate::data::{Batch, Sample, check_samples, make_batch};
use crate::epochs::{Course, LearningRate, Objective, Progress, Step, TrainReport, drive};
use crate::init::init_network;
use crate::settings::{SettingProblem, Settings, Valid};

/// Training settings; every knob has a default suited to the quick study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set (the most; early stopping may end sooner).
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Adam's peak learning rate; a cosine schedule decays it to `min_lr_ratio` of itself.
    pub learning_rate: f64,
    /// Final learning rate as a share of the peak.
    pub min_lr_ratio: f64,
    /// Epochs without a better validation loss before stopping (0 = never stop early).
    pub patience: usize,
    /// Random horizontal and vertical flips of training images.
    pub augment: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { epochs: 12, batch_size: 16, learning_rate: 0.01, min_lr_ratio: 0.05, patience: 0, augment: true }
    }
}

impl Settings for TrainConfig {
    fn problems(&self) -> Vec<SettingProblem> {
        let mut out = Vec::new();
        if !(1..=10_000).contains(&self.epochs) {
            out.push(("epochs".into(), format!("must be between 1 and 10000, got {}", self.epochs)));
        }
        if !(1..=4096).contains(&self.batch_size) {
            out.push(("batch_size".into(), format!("must be between 1 and 4096, got {}", self.batch_size)));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            out.push(("learning_rate".into(), format!("must be a positive number, got {}", self.learning_rate)));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            out.push(("min_lr_ratio".into(), format!("must lie in [0, 1], got {}", self.min_lr_ratio)));
        }
        out
    }
}

impl TrainConfig {
    /// The learning-rate schedule these settings describe.
    pub(crate) fn schedule(&self) -> LearningRate {
        LearningRate::Cosine { peak: self.learning_rate, floor: self.min_lr_ratio }
    }
}

/// Weighted cross-entropy against soft targets: Σ w·(−Σ_k t_k log p_k) / Σ w.
pub fn soft_cross_entropy(logits: Tensor<4>, targets: Tensor<4>, weights: Tensor<4>) -> Tensor<1> {
    let per_pixel = (log_softmax(logits, 1) * targets).sum_dim(1).neg();
    let total = weights.clone().sum().clamp_min(1e-6);
    (per_pixel * weights).sum() / total
}

pub(crate) fn batch_loss(network: &Network, batch: Batch) -> Tensor<1> {
    let out = network.forward(batch.images);
    soft_cross_entropy(out.logits, batch.targets, batch.weights)
}

/// Trains a network of `spec` from scratch on `train`, stopping early on `val` when configured.
/// Returns the kept weights (in inference mode) and the training record.
pub fn train(
    spec: &NetworkSpec,
    config: &Valid<TrainConfig>,
    seed: u64,
    train: &[Sample],
    val: &[Sample],
    device: &Device,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let network = init_network(spec, seed, &device.clone().autodiff());
    supervise(network, None, Labelled::new(train, val, spec, config, seed, device), config, progress)
}

/// Trains like [`train`], but keeps its state in `checkpoint` after every epoch and, when that
/// directory already holds the state of the same training, continues from it: a training killed
/// midway loses at most one epoch, and the result is identical to an uninterrupted one.
/// `initial` gives the starting weights of a fresh training (`None`: initialise from `seed`).
#[allow(clippy::too_many_arguments)]
pub fn train_resumable(
    initial: Option<Network>,
    spec: &NetworkSpec,
    config: &Valid<TrainConfig>,
    seed: u64,
    train: &[Sample],
    val: &[Sample],
    device: &Device,
    checkpoint: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let store = CheckpointStore { dir: checkpoint, key: resume_key(spec, config, seed, train.len(), val.len()) };
    let network = initial.unwrap_or_else(|| init_network(spec, seed, &device.clone().autodiff()));
    supervise(network, Some(store), Labelled::new(train, val, spec, config, seed, device), config, progress)
}

/// What identifies one training, so a checkpoint of another one is never resumed by mistake.
pub(crate) fn resume_key(spec: &NetworkSpec, config: &TrainConfig, seed: u64, train: usize, val: usize) -> String {
    format!("{spec:?}|{config:?}|seed {seed}|train {train}|val {val}")
}

fn supervise(
    network: Network,
    store: Option<CheckpointStore<'_>>,
    labelled: Labelled<'_>,
    config: &Valid<TrainConfig>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    check_train_and_val(labelled.train, labelled.val, labelled.spec.classes)?;
    let network = network.train().fork(&labelled.train_device);
    let course = labelled.course(config, config.patience, store);
    let trained = drive(course, network, Supervised(labelled), progress)?;
    Ok((trained.network, trained.report))
}

/// The labelled part of a training: samples, their flips and the validation loss. The mean
/// teacher learns from it too, next to its pool.
pub(crate) struct Labelled<'a> {
    train: &'a [Sample],
    val: &'a [Sample],
    pub(crate) spec: &'a NetworkSpec,
    batch_size: usize,
    augment: bool,
    seed: u64,
    flips: Rng,
    pub(crate) device: &'a Device,
    pub(crate) train_device: Device,
}

impl<'a> Labelled<'a> {
    pub(crate) fn new(
        train: &'a [Sample],
        val: &'a [Sample],
        spec: &'a NetworkSpec,
        config: &TrainConfig,
        seed: u64,
        device: &'a Device,
    ) -> Self {
        Self {
            train,
            val,
            spec,
            batch_size: config.batch_size,
            augment: config.augment,
            seed,
            flips: Rng::with_index(seed, "flips", 0),
            device,
            train_device: device.clone().autodiff(),
        }
    }

    /// The course of a training on these samples with `config`, stopping early after `patience`
    /// epochs without a better validation loss (0 = never).
    pub(crate) fn course(&self, config: &TrainConfig, patience: usize, store: Option<CheckpointStore<'a>>) -> Course<'a> {
        Course {
            epochs: config.epochs,
            batch_size: config.batch_size,
            items: self.train.len(),
            learning_rate: config.schedule(),
            seed: self.seed,
            shuffle: "shuffle",
            patience,
            pretraining: false,
            store,
            spec: self.spec,
            device: self.device,
        }
    }

    /// Draws the flips of `epoch` from their own stream.
    pub(crate) fn start_epoch(&mut self, epoch: usize) {
        self.flips = Rng::with_index(self.seed, "flips", epoch as u64);
    }

    /// The weighted cross-entropy of `network` on the samples at `batch`.
    pub(crate) fn loss(&mut self, network: &Network, batch: &[usize]) -> Tensor<1> {
        let flips = self.augment.then_some(&mut self.flips);
        batch_loss(network, make_batch(self.train, batch, self.spec.classes, flips, &self.train_device))
    }

    /// The mean loss of an inference-mode `network` on the validation samples, if there are any.
    pub(crate) fn val_loss(&self, network: &Network) -> Option<f32> {
        (!self.val.is_empty()).then(|| mean_loss(network, self.val, self.spec.classes, self.batch_size, self.device))
    }
}

/// Plain supervised training on the labelled samples.
struct Supervised<'a>(Labelled<'a>);

impl Objective for Supervised<'_> {
    type Model = Network;
    type State = ();

    fn start_epoch(&mut self, epoch: usize) {
        self.0.start_epoch(epoch);
    }

    fn loss(&mut self, network: &Network, batch: &[usize], _step: Step) -> Result<Tensor<1>, NetsError> {
        Ok(self.0.loss(network, batch))
    }

    fn end_epoch(&mut self, network: &Network, _epoch: usize, _train_loss: f32) -> Result<Option<f32>, NetsError> {
        Ok(self.0.val_loss(&network.valid()))
    }

    fn output(&self, network: &Network) -> Network {
        network.valid()
    }

    fn state(&self) {}

    fn restore(&mut self, _store: &CheckpointStore<'_>, _epoch: usize, _state: ()) -> Result<Network, NetsError> {
        Ok(Network::new(self.0.spec, self.0.device))
    }
}

/// Checks the training samples and, when there are any, the validation samples.
pub(crate) fn check_train_and_val(train: &[Sample], val: &[Sample], classes: usize) -> Result<(), NetsError> {
    check_samples(train, classes)?;
    if !val.is_empty() {
        check_samples(val, classes)?;
    }
    Ok(())
}

/// Mean weighted loss of an inference-mode network over `samples`.
pub fn mean_loss(network: &Network, samples: &[Sample], classes: usize, batch_size: usize, device: &Device) -> f32 {
    let order: Vec<usize> = (0..samples.len()).collect();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for chunk in order.chunks(batch_size.max(1)) {
        let batch = make_batch(samples, chunk, classes, None, device);
        let len = batch.len;
        sum += f64::from(batch_loss(network, batch).into_scalar::<f32>()) * len as f64;
        n += len;
    }
    (sum / n.max(1) as f64) as f32
}
