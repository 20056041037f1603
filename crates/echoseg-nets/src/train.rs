//! Supervised training: weighted soft-target cross-entropy on labelled samples, with early
//! stopping on the validation split only. The epoch driver ([`crate::epochs`]) runs the loop.

use std::borrow::Cow;
use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use echoseg_scene::Rng;
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::{Network, NetworkSpec};
use crate::checkpoint::CheckpointStore;
use crate::data::{Batch, Cut, Sample, Target, batches_by_size, centre_crops, check_samples, make_batch, training_crop};
use crate::epochs::{Course, LearningRate, Objective, Progress, Step, TrainReport, drive};
use crate::init::init_network;
use crate::settings::{SettingProblem, Settings, Valid};

/// Optimiser steps of a training whose manifest gives neither `steps` nor `epochs`: chosen by
/// measurement so that exact-label training of every architecture of the default world learns
/// the task in every one of four seeds (experiments/README.md, "How long networks train": at 300
/// steps one of four dilated networks had not yet learned thin structures).
pub const DEFAULT_STEPS: usize = 600;

/// Training settings; every knob has a default suited to the quick study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Budget in optimiser steps, whatever the number of samples, so a student on a small pool
    /// gets as much optimisation as its teacher ([`DEFAULT_STEPS`] when neither this nor `epochs` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Budget in passes over the training set instead of steps (at most one of the two).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Adam's peak learning rate; a cosine schedule decays it to `min_lr_ratio` of itself.
    pub learning_rate: f64,
    /// Final learning rate as a share of the peak.
    pub min_lr_ratio: f64,
    /// Share of the steps over which the learning rate climbs linearly to its peak.
    pub warmup: f64,
    /// Epochs without a better validation loss before stopping (0 = never stop early).
    pub patience: usize,
    /// Class balancing of the loss: each pixel weighs (share of its class)^−`class_balance`
    /// among the training labels, normalised to a mean of 1 (0 = plain, 1 = inverse frequency).
    pub class_balance: f64,
    /// Random horizontal and vertical flips of training images.
    pub augment: bool,
    /// Side of the square random crops every training step cuts its images to; without it,
    /// chosen from the data ([`crate::data::training_crop`]: images of one size up to 128 px
    /// train whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: None,
            epochs: None,
            batch_size: 8,
            learning_rate: 0.01,
            min_lr_ratio: 0.05,
            warmup: 0.05,
            patience: 0,
            class_balance: 0.0,
            augment: true,
            crop: None,
        }
    }
}

impl Settings for TrainConfig {
    fn problems(&self) -> Vec<SettingProblem> {
        let mut out = Vec::new();
        if let Some(epochs) = self.epochs
            && !(1..=10_000).contains(&epochs)
        {
            out.push(("epochs".into(), format!("must be between 1 and 10000, got {epochs}")));
        }
        if let Some(steps) = self.steps
            && !(1..=1_000_000).contains(&steps)
        {
            out.push(("steps".into(), format!("must be between 1 and 1000000, got {steps}")));
        }
        if self.steps.is_some() && self.epochs.is_some() {
            out.push(("steps".into(), "and `epochs` are two budgets for one training: give one of them".into()));
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
        if !(0.0..=0.5).contains(&self.warmup) {
            out.push(("warmup".into(), format!("must lie in [0, 0.5] (a share of the steps), got {}", self.warmup)));
        }
        if let Some(crop) = self.crop
            && !(8..=4096).contains(&crop)
        {
            out.push(("crop".into(), format!("must be between 8 and 4096 px, got {crop}")));
        }
        if !(0.0..=1.0).contains(&self.class_balance) {
            out.push((
                "class_balance".into(),
                format!("must lie in [0, 1] (0 = plain, 1 = inverse class frequency), got {}", self.class_balance),
            ));
        }
        out
    }
}

/// How much optimisation a training gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// A number of optimiser steps.
    Steps(usize),
    /// A number of passes over the training samples.
    Epochs(usize),
}

impl TrainConfig {
    /// The budget these settings give.
    pub fn budget(&self) -> Budget {
        match (self.steps, self.epochs) {
            (Some(steps), _) => Budget::Steps(steps),
            (None, Some(epochs)) => Budget::Epochs(epochs),
            (None, None) => Budget::Steps(DEFAULT_STEPS),
        }
    }

    /// Optimiser steps of a training on `samples` samples.
    pub fn total_steps(&self, samples: usize) -> usize {
        match self.budget() {
            Budget::Steps(steps) => steps,
            Budget::Epochs(epochs) => epochs * samples.div_ceil(self.batch_size.max(1)),
        }
    }

    /// The learning-rate schedule these settings describe.
    pub(crate) fn schedule(&self) -> LearningRate {
        LearningRate::Cosine { peak: self.learning_rate, floor: self.min_lr_ratio, warmup: self.warmup }
    }
}

/// Weighted cross-entropy against soft targets: Σ w·(−Σ_k t_k log p_k) / Σ w.
pub fn soft_cross_entropy(logits: Tensor<4>, targets: Tensor<4>, weights: Tensor<4>) -> Tensor<1> {
    let per_pixel = (log_softmax(logits, 1) * targets).sum_dim(1).neg();
    let total = weights.clone().sum().clamp_min(1e-6);
    (per_pixel * weights).sum() / total
}

pub(crate) fn batch_loss(network: &Network, batch: Batch, class_weights: Option<&[f32]>) -> Tensor<1> {
    let out = network.forward(batch.images);
    let weights = match class_weights {
        // Σ_k t_k w_k per pixel: a hard target's class weight, or a soft target's mean of them.
        Some(w) => {
            let w = Tensor::<4>::from_data(TensorData::new(w.to_vec(), [1, w.len(), 1, 1]), &batch.targets.device());
            batch.weights * (batch.targets.clone() * w).sum_dim(1)
        }
        None => batch.weights,
    };
    soft_cross_entropy(out.logits, batch.targets, weights)
}

/// Loss weight of each class: (its share of the weighted training pixels)^−`balance`,
/// normalised so the mean pixel weighs 1, and capped at 100 so a class of a handful of pixels
/// cannot dominate; `None` when `balance` is 0. Shares come from hard targets and soft ones alike.
pub(crate) fn class_weights(samples: &[Sample], classes: usize, balance: f64) -> Option<Vec<f32>> {
    if balance == 0.0 {
        return None;
    }
    let mut mass = vec![0.0f64; classes];
    for s in samples {
        let plane = s.image.width * s.image.height;
        let weight = |p: usize| s.weight.as_ref().map_or(1.0, |w| f64::from(w[p]));
        match &s.target {
            Target::Hard(labels) => {
                for (p, &l) in labels.iter().enumerate() {
                    if usize::from(l) < classes {
                        mass[usize::from(l)] += weight(p);
                    }
                }
            }
            Target::Soft(probs) => {
                for (c, m) in mass.iter_mut().enumerate() {
                    *m += (0..plane).map(|p| f64::from(probs[c * plane + p]) * weight(p)).sum::<f64>();
                }
            }
        }
    }
    let total: f64 = mass.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let raw: Vec<f64> = mass.iter().map(|&m| if m > 0.0 { (m / total).powf(-balance) } else { 1.0 }).collect();
    let mean: f64 = mass.iter().zip(&raw).map(|(m, w)| m * w).sum::<f64>() / total;
    Some(raw.iter().map(|w| (w / mean).min(100.0) as f32).collect())
}

/// What one training learns and how: the network, its checked settings and seed, the samples
/// and the device. Every training takes one, so a call names each part instead of passing ten
/// arguments in an order.
#[derive(Clone, Copy)]
pub struct TrainingRequest<'a> {
    /// The network to train.
    pub spec: &'a NetworkSpec,
    /// Training settings, checked.
    pub config: &'a Valid<TrainConfig>,
    /// Seed of the initial weights, the sample order and the augmentation.
    pub seed: u64,
    /// The samples it learns from.
    pub train: &'a [Sample],
    /// Held-out samples for early stopping (may be empty).
    pub val: &'a [Sample],
    /// Where it trains.
    pub device: &'a Device,
}

impl TrainingRequest<'_> {
    /// The first weights: `initial`, or fresh ones from the seed.
    fn start(&self, initial: Option<Network>) -> Network {
        initial.unwrap_or_else(|| init_network(self.spec, self.seed, &self.device.clone().autodiff()))
    }
}

/// Trains a network from scratch on the request's samples, stopping early on its validation
/// samples when configured. Returns the kept weights (in inference mode) and the training record.
pub fn train(request: &TrainingRequest<'_>, progress: &mut dyn FnMut(&Progress)) -> Result<(Network, TrainReport), NetsError> {
    let labelled = Labelled::new(request, &[])?;
    supervise(request.start(None), None, labelled, request.config, progress)
}

/// Trains like [`train`], but keeps its state in `checkpoint` after every epoch and, when that
/// directory already holds the state of the same training, continues from it: a training killed
/// midway loses at most one epoch, and the result is identical to an uninterrupted one.
/// `initial` gives the starting weights of a fresh training (`None`: initialise from the seed).
pub fn train_resumable(
    initial: Option<Network>,
    request: &TrainingRequest<'_>,
    checkpoint: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let store = CheckpointStore { dir: checkpoint, key: resume_key(request) };
    let labelled = Labelled::new(request, &[])?;
    supervise(request.start(initial), Some(store), labelled, request.config, progress)
}

/// What identifies one training, so a checkpoint of another one is never resumed by mistake.
pub(crate) fn resume_key(request: &TrainingRequest<'_>) -> String {
    let TrainingRequest { spec, config, seed, train, val, .. } = request;
    let config: &TrainConfig = config;
    format!("{spec:?}|{config:?}|seed {seed}|train {}|val {}", train.len(), val.len())
}

fn supervise(
    network: Network,
    store: Option<CheckpointStore<'_>>,
    labelled: Labelled<'_>,
    config: &Valid<TrainConfig>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let network = network.train().fork(&labelled.train_device);
    let course = labelled.course(config, config.patience, store);
    let trained = drive(course, network, Supervised(labelled), progress)?;
    Ok((trained.network, trained.report))
}

/// The labelled part of a training: samples, their flips and crops, and the validation loss.
/// The mean teacher learns from it too, next to its pool.
pub(crate) struct Labelled<'a> {
    train: &'a [Sample],
    /// The validation samples, cut to their centre crops when training crops.
    val: Cow<'a, [Sample]>,
    pub(crate) spec: &'a NetworkSpec,
    batch_size: usize,
    augment: bool,
    /// Per-class loss weights from the training labels (`None`: unbalanced).
    class_weights: Option<Vec<f32>>,
    seed: u64,
    flips: Rng,
    /// The side of the square crops every step cuts its images to (`None`: whole images).
    pub(crate) crop: Option<usize>,
    crops: Rng,
    pub(crate) device: &'a Device,
    pub(crate) train_device: Device,
}

impl<'a> Labelled<'a> {
    /// Checks the samples and chooses the crop over them and `other_sizes` (a pool trained on in
    /// the same steps).
    pub(crate) fn new(request: &TrainingRequest<'a>, other_sizes: &[(usize, usize)]) -> Result<Self, NetsError> {
        let TrainingRequest { spec, config, seed, train, val, device } = *request;
        let config: &TrainConfig = config;
        check_samples(train, spec.classes)?;
        if !val.is_empty() {
            check_samples(val, spec.classes)?;
        }
        let sizes = train.iter().chain(val).map(|s| (s.image.width, s.image.height)).chain(other_sizes.iter().copied());
        let crop = training_crop(config.crop, sizes)?;
        let val = match crop {
            Some(side) => Cow::Owned(centre_crops(val, side, spec.classes)),
            None => Cow::Borrowed(val),
        };
        Ok(Self {
            train,
            val,
            spec,
            batch_size: config.batch_size,
            augment: config.augment,
            class_weights: class_weights(train, spec.classes, config.class_balance),
            seed,
            flips: Rng::with_index(seed, "flips", 0),
            crop,
            crops: Rng::with_index(seed, "crops", 0),
            device,
            train_device: device.clone().autodiff(),
        })
    }

    /// The course of a training on these samples with `config`, stopping early after `patience`
    /// epochs without a better validation loss (0 = never).
    pub(crate) fn course(&self, config: &TrainConfig, patience: usize, store: Option<CheckpointStore<'a>>) -> Course<'a> {
        Course {
            steps: config.total_steps(self.train.len()),
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

    /// Draws the flips and crops of `epoch` from their own streams.
    pub(crate) fn start_epoch(&mut self, epoch: usize) {
        self.flips = Rng::with_index(self.seed, "flips", epoch as u64);
        self.crops = Rng::with_index(self.seed, "crops", epoch as u64);
    }

    /// The weighted cross-entropy of `network` on the samples at `batch`.
    pub(crate) fn loss(&mut self, network: &Network, batch: &[usize]) -> Tensor<1> {
        let flips = self.augment.then_some(&mut self.flips);
        let cut = match self.crop {
            Some(side) => Cut::Crops { side, rng: &mut self.crops },
            None => Cut::Whole,
        };
        let batch = make_batch(self.train, batch, self.spec.classes, flips, cut, &self.train_device);
        batch_loss(network, batch, self.class_weights.as_deref())
    }

    /// The mean loss of an inference-mode `network` on the validation samples, if there are any.
    pub(crate) fn val_loss(&self, network: &Network) -> Option<f32> {
        let weights = self.class_weights.as_deref();
        // Inference-mode BatchNorm makes the loss independent of the batch, so a larger one only saves time.
        let batch = self.batch_size.max(VALIDATION_BATCH);
        (!self.val.is_empty()).then(|| mean_loss(network, &self.val, self.spec.classes, weights, batch, self.device))
    }
}

/// Images per batch of the validation loss, at least (it runs after every epoch).
const VALIDATION_BATCH: usize = 32;

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

/// Mean weighted loss of an inference-mode network over `samples` (batched by size), with the
/// training's class weights.
pub fn mean_loss(
    network: &Network,
    samples: &[Sample],
    classes: usize,
    class_weights: Option<&[f32]>,
    batch_size: usize,
    device: &Device,
) -> f32 {
    let sizes: Vec<(usize, usize)> = samples.iter().map(|s| (s.image.width, s.image.height)).collect();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for chunk in batches_by_size(&sizes, batch_size) {
        let batch = make_batch(samples, &chunk, classes, None, Cut::Whole, device);
        let len = batch.len;
        sum += f64::from(batch_loss(network, batch, class_weights).into_scalar::<f32>()) * len as f64;
        n += len;
    }
    (sum / n.max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use echoseg_scene::Image;

    fn sample(labels: Vec<u8>) -> Sample {
        let n = labels.len();
        Sample::hard(Image { width: n, height: 1, pixels: vec![0.0; 3 * n] }, labels)
    }

    #[test]
    fn class_weights_lift_a_rare_class_and_keep_the_mean_pixel_weight_at_one() {
        // 90 background pixels, 10 thin ones.
        let samples = vec![sample([vec![0u8; 90], vec![1u8; 10]].concat())];
        assert_eq!(class_weights(&samples, 2, 0.0), None);
        let w = class_weights(&samples, 2, 1.0).unwrap();
        assert!((w[1] / w[0] - 9.0).abs() < 1e-4, "inverse frequency: {w:?}");
        assert!(((90.0 * w[0] + 10.0 * w[1]) / 100.0 - 1.0).abs() < 1e-5, "mean pixel weight 1: {w:?}");
        let half = class_weights(&samples, 2, 0.5).unwrap();
        assert!((half[1] / half[0] - 3.0).abs() < 1e-4, "square root: {half:?}");
    }

    #[test]
    fn a_step_budget_is_the_same_whatever_the_sample_count_and_epochs_are_an_alternative() {
        let steps = TrainConfig { steps: Some(300), batch_size: 8, ..TrainConfig::default() };
        assert_eq!((steps.total_steps(77), steps.total_steps(64)), (300, 300));
        let epochs = TrainConfig { epochs: Some(3), batch_size: 8, ..TrainConfig::default() };
        assert_eq!(epochs.total_steps(77), 30);
        assert_eq!(TrainConfig::default().budget(), Budget::Steps(DEFAULT_STEPS));
        let both = TrainConfig { steps: Some(10), epochs: Some(2), ..TrainConfig::default() }.problems();
        assert_eq!(both.len(), 1, "{both:?}");
    }
}
