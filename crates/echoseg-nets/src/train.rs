//! One training loop for every architecture: Adam, a cosine schedule, weighted soft-target
//! cross-entropy, early stopping on the validation split only, and a divergence guard.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, OptimizerRecord};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use echoseg_scene::Rng;
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::{Network, NetworkSpec};
use crate::data::{Batch, Sample, check_samples, make_batch};

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

impl TrainConfig {
    /// Every problem with the settings, as (key, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
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

    pub(crate) fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let progress = step as f64 / total.max(1) as f64;
        let floor = self.learning_rate * self.min_lr_ratio;
        floor + 0.5 * (self.learning_rate - floor) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// A report from inside the loop, for progress bars.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Current epoch (1-based).
    pub epoch: usize,
    /// Planned epochs.
    pub epochs: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// Mean training loss of this epoch so far.
    pub loss: f32,
    /// Training throughput of this epoch so far.
    pub images_per_second: f32,
    /// True while pre-training (BYOL on the pool), before the supervised epochs.
    pub pretraining: bool,
}

/// The record of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f32,
    /// Mean validation loss (`None` without a validation split).
    pub val_loss: Option<f32>,
    /// Training images per second.
    pub images_per_second: f32,
}

/// What a finished training reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Every epoch run.
    pub history: Vec<EpochRecord>,
    /// The epoch whose weights were kept (best validation loss, or the last).
    pub best_epoch: usize,
    /// True when early stopping ended training before `epochs`.
    pub stopped_early: bool,
}

// Parameter initialisation draws from the backend's global generator; holding this lock while
// seeding and initialising keeps concurrent trainings from interleaving their draws.
static INIT_LOCK: Mutex<()> = Mutex::new(());

struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// A network whose initial weights depend only on `spec`, `seed` and the device.
pub fn init_network(spec: &NetworkSpec, seed: u64, device: &Device) -> Network {
    seeded(seed, device, || Network::new(spec, device))
}

/// Builds modules with `make` from the device's generator seeded with `seed`, drawing every
/// parameter before another training may draw, so their values depend only on the seed.
pub(crate) fn seeded<M: Module>(seed: u64, device: &Device, make: impl FnOnce() -> M) -> M {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let modules = make();
    // Parameters are lazy: draw them now, in module order, while the seed is ours.
    modules.visit(&mut Materialise);
    modules
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
    config: &TrainConfig,
    seed: u64,
    train: &[Sample],
    val: &[Sample],
    device: &Device,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let network = init_network(spec, seed, &device.clone().autodiff());
    run_epochs(network, None, spec, config, seed, train, val, device, progress)
}

/// Trains like [`train`], but keeps its state in `checkpoint` after every epoch and, when that
/// directory already holds the state of the same training, continues from it: a training killed
/// midway loses at most one epoch, and the result is identical to an uninterrupted one.
/// `initial` gives the starting weights of a fresh training (`None`: initialise from `seed`).
#[allow(clippy::too_many_arguments)]
pub fn train_resumable(
    initial: Option<Network>,
    spec: &NetworkSpec,
    config: &TrainConfig,
    seed: u64,
    train: &[Sample],
    val: &[Sample],
    device: &Device,
    checkpoint: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let store = CheckpointStore { dir: checkpoint, key: resume_key(spec, config, seed, train.len(), val.len()) };
    let train_device = device.clone().autodiff();
    let network = initial.unwrap_or_else(|| init_network(spec, seed, &train_device));
    run_epochs(network, Some(&store), spec, config, seed, train, val, device, progress)
}

/// What identifies one training, so a checkpoint of another one is never resumed by mistake.
pub(crate) fn resume_key(spec: &NetworkSpec, config: &TrainConfig, seed: u64, train: usize, val: usize) -> String {
    format!("{spec:?}|{config:?}|seed {seed}|train {train}|val {val}")
}

/// The loop's state between epochs; with the weights and optimiser state it is all a resume needs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct LoopState {
    pub(crate) key: String,
    pub(crate) epochs_done: usize,
    pub(crate) history: Vec<EpochRecord>,
    pub(crate) first_loss: Option<f32>,
    pub(crate) best: Option<(f32, usize)>,
    pub(crate) stopped_early: bool,
    /// The mean teacher's place in its shuffled pool (absent for plain training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pool: Option<PoolPosition>,
}

/// The order the pool is drawn in and how far into it the draws are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PoolPosition {
    pub(crate) order: Vec<usize>,
    pub(crate) cursor: usize,
}

pub(crate) struct CheckpointStore<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) key: String,
}

/// A training restored from its last checkpoint: loop state, network and optimiser.
type Restored = (LoopState, Network, OptimizerRecord);

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

    /// The saved state of this training: loop state, network and optimiser.
    pub(crate) fn load(&self, spec: &NetworkSpec, device: &Device) -> Result<Option<Restored>, NetsError> {
        let Some(state) = self.load_state::<LoopState>()? else { return Ok(None) };
        let network = self.load_module(state.epochs_done, "model", Network::new(spec, device))?;
        let optimiser = self.load_optimiser(state.epochs_done)?;
        Ok(Some((state, network, optimiser)))
    }

    /// Saves the network, the optimiser and the `extra` networks by name, then commits `state`.
    pub(crate) fn save(
        &self,
        state: &LoopState,
        network: &Network,
        optimiser: OptimizerRecord,
        extra: &[(&str, &Network)],
    ) -> Result<(), NetsError> {
        let epoch = state.epochs_done;
        self.save_module(epoch, "model", network)?;
        self.save_optimiser(epoch, optimiser)?;
        for (what, other) in extra {
            self.save_module(epoch, what, *other)?;
        }
        self.commit(epoch, state)
    }
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    network: Network,
    store: Option<&CheckpointStore<'_>>,
    spec: &NetworkSpec,
    config: &TrainConfig,
    seed: u64,
    train: &[Sample],
    val: &[Sample],
    device: &Device,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    check_train_and_val(train, val, spec.classes)?;
    let train_device = device.clone().autodiff();
    let mut network = network.train().fork(&train_device);
    let mut optimiser = AdamConfig::new().init();
    let mut state = LoopState { key: store.map(|s| s.key.clone()).unwrap_or_default(), ..LoopState::default() };
    let mut best: Option<Network> = None;
    if let Some(store) = store
        && let Some((saved, weights, record)) = store.load(spec, device)?
    {
        network = weights.train().fork(&train_device);
        optimiser = optimiser.load_record(record);
        if saved.best.is_some() {
            best = Some(store.load_module(saved.epochs_done, "best", Network::new(spec, device))?.valid());
        }
        state = saved;
    }
    let steps = train.len().div_ceil(config.batch_size);
    let total_steps = steps * config.epochs;
    let last_epoch = if state.stopped_early { state.epochs_done } else { config.epochs };
    for epoch in state.epochs_done + 1..=last_epoch {
        // Per-epoch streams, so a resumed training draws exactly what an uninterrupted one would.
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::with_index(seed, "shuffle", epoch as u64).shuffle(&mut order);
        let mut flips = Rng::with_index(seed, "flips", epoch as u64);
        let mut meter = EpochMeter::new(epoch);
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let lr = config.learning_rate_at((epoch - 1) * steps + step, total_steps);
            let batch = make_batch(train, chunk, spec.classes, config.augment.then_some(&mut flips), &train_device);
            let n = batch.len;
            let loss = batch_loss(&network, batch);
            meter.add(loss.clone().into_scalar::<f32>(), n, &mut state.first_loss, step, config)?;
            let grads = GradientsParams::from_grads(loss.backward(), &network);
            network = optimiser.step(lr, network, grads);
            progress(&meter.progress(step, steps, config));
        }
        let val_loss = (!val.is_empty()).then(|| mean_loss(&network.valid(), val, spec.classes, config.batch_size, device));
        state.history.push(meter.record(val_loss));
        state.epochs_done = epoch;
        let mut stop = false;
        if config.patience > 0
            && let Some(v) = val_loss
        {
            if state.best.is_none_or(|(b, _)| v < b) {
                state.best = Some((v, epoch));
                best = Some(network.valid());
            } else if state.best.is_some_and(|(_, e)| epoch - e >= config.patience) {
                state.stopped_early = epoch < config.epochs;
                stop = true;
            }
        }
        if let Some(store) = store {
            let best: Vec<(&str, &Network)> = best.iter().map(|b| ("best", b)).collect();
            store.save(&state, &network, optimiser.to_record(), &best)?;
        }
        if stop {
            break;
        }
    }
    let (network, best_epoch) = match (best, state.best) {
        (Some(kept), Some((_, epoch))) => (kept, epoch),
        _ => (network.valid(), state.history.len()),
    };
    Ok((network, TrainReport { history: state.history, best_epoch, stopped_early: state.stopped_early }))
}

/// Checks the training samples and, when there are any, the validation samples.
pub(crate) fn check_train_and_val(train: &[Sample], val: &[Sample], classes: usize) -> Result<(), NetsError> {
    check_samples(train, classes)?;
    if !val.is_empty() {
        check_samples(val, classes)?;
    }
    Ok(())
}

/// One epoch's running loss and throughput, with the divergence guard.
pub(crate) struct EpochMeter {
    epoch: usize,
    started: Instant,
    loss_sum: f64,
    seen: usize,
}

impl EpochMeter {
    pub(crate) fn new(epoch: usize) -> Self {
        Self { epoch, started: Instant::now(), loss_sum: 0.0, seen: 0 }
    }

    /// Counts a step's loss over `n` images; fails when it is not finite or has climbed a
    /// thousand times above the loss of the training's first step (a sound run never does).
    pub(crate) fn add(
        &mut self,
        value: f32,
        n: usize,
        first_loss: &mut Option<f32>,
        step: usize,
        config: &TrainConfig,
    ) -> Result<(), NetsError> {
        let reference = *first_loss.get_or_insert(value);
        if !value.is_finite() || value > 1e3 * reference.max(1.0) {
            return Err(NetsError::Diverged { epoch: self.epoch, step: step + 1, loss: value, learning_rate: config.learning_rate });
        }
        self.loss_sum += f64::from(value) * n as f64;
        self.seen += n;
        Ok(())
    }

    fn images_per_second(&self) -> f32 {
        self.seen as f32 / self.started.elapsed().as_secs_f32().max(1e-6)
    }

    pub(crate) fn progress(&self, step: usize, steps: usize, config: &TrainConfig) -> Progress {
        Progress {
            epoch: self.epoch,
            epochs: config.epochs,
            step: step + 1,
            steps,
            loss: (self.loss_sum / self.seen.max(1) as f64) as f32,
            images_per_second: self.images_per_second(),
            pretraining: false,
        }
    }

    pub(crate) fn record(&self, val_loss: Option<f32>) -> EpochRecord {
        EpochRecord {
            epoch: self.epoch,
            train_loss: (self.loss_sum / self.seen.max(1) as f64) as f32,
            val_loss,
            images_per_second: self.images_per_second(),
        }
    }
}

/// Mean weighted loss of an inference-mode network over `samples`.
pub fn mean_loss(network: &Network, samples: &[Sample], classes: usize, batch_size: usize, device: &Device) -> f32 {
    let order: Vec<usize> = (0..samples.len()).collect();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for chunk in order.chunks(batch_size) {
        let batch = make_batch(samples, chunk, classes, None, device);
        let len = batch.len;
        sum += f64::from(batch_loss(network, batch).into_scalar::<f32>()) * len as f64;
        n += len;
    }
    (sum / n.max(1) as f64) as f32
}
