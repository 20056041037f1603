//! The epoch driver: the one loop every training runs in. It owns the shuffling, the learning-rate
//! schedule, the optimiser step, the divergence guard, progress, early stopping, per-epoch
//! checkpoints and resuming; a training method (supervised, mean teacher, BYOL) supplies only its
//! [`Objective`]: batches in, loss out, plus whatever extra state it keeps.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use echoseg_scene::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::{Network, NetworkSpec};
use crate::checkpoint::CheckpointStore;

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
    /// Optimiser steps taken.
    #[serde(default)]
    pub steps: usize,
    /// True when the validation loss (the training loss without a validation split) had levelled
    /// off: early stopping ended the training, or its last quarter of epochs lowered the best loss
    /// by less than [`LEVELLED_OFF`] of it.
    #[serde(default)]
    pub converged: bool,
}

/// The improvement of the best loss over a training's last quarter below which it has levelled off.
pub const LEVELLED_OFF: f32 = 0.05;

/// Whether a training with these epochs has levelled off (see [`TrainReport::converged`]).
pub fn levelled_off(history: &[EpochRecord], stopped_early: bool) -> bool {
    if stopped_early {
        return true;
    }
    let losses: Vec<f32> = history.iter().map(|r| r.val_loss.unwrap_or(r.train_loss)).collect();
    if losses.len() < 4 {
        return false;
    }
    let split = losses.len() - losses.len() / 4;
    let best = |l: &[f32]| l.iter().copied().fold(f32::INFINITY, f32::min);
    let (before, after) = (best(&losses[..split]), best(&losses[split..]));
    before - after < LEVELLED_OFF * before.abs()
}

/// How the learning rate moves over a training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LearningRate {
    /// Up from zero to `peak` over the first `warmup` share of the steps, then down to
    /// `peak · floor` along half a cosine over the rest.
    Cosine {
        /// The largest rate, reached at the end of the warm-up.
        peak: f64,
        /// The last step's rate as a share of the peak.
        floor: f64,
        /// Share of the steps spent climbing to the peak.
        warmup: f64,
    },
    /// The same rate at every step.
    Constant(f64),
}

impl LearningRate {
    /// The rate at `step` of `total` steps.
    pub(crate) fn at(self, step: usize, total: usize) -> f64 {
        match self {
            LearningRate::Cosine { peak, floor, warmup } => {
                let warm = (warmup * total as f64).round() as usize;
                if step < warm {
                    return peak * (step + 1) as f64 / warm as f64;
                }
                let progress = (step - warm) as f64 / (total - warm).max(1) as f64;
                let floor = peak * floor;
                floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            LearningRate::Constant(rate) => rate,
        }
    }

    /// The largest rate, named when a training diverges.
    fn peak(self) -> f64 {
        match self {
            LearningRate::Cosine { peak, .. } | LearningRate::Constant(peak) => peak,
        }
    }
}

/// How long and how a training runs: the part of its settings the driver needs.
pub(crate) struct Course<'a> {
    /// Optimiser steps in all (the most; early stopping may end sooner); the last epoch may be cut short.
    pub(crate) steps: usize,
    /// Items per optimiser step; at least 1 (the settings are [`crate::Valid`]).
    pub(crate) batch_size: usize,
    /// Items shuffled per epoch: training samples, or pool images.
    pub(crate) items: usize,
    /// The learning-rate schedule.
    pub(crate) learning_rate: LearningRate,
    /// Seed of the shuffling.
    pub(crate) seed: u64,
    /// Name of the shuffling's random stream (distinct trainings draw distinct orders).
    pub(crate) shuffle: &'static str,
    /// Epochs without a better validation loss before stopping (0 = never stop early).
    pub(crate) patience: usize,
    /// Whether progress reports say "pre-training".
    pub(crate) pretraining: bool,
    /// Where the state is kept after every epoch (`None`: not resumable).
    pub(crate) store: Option<CheckpointStore<'a>>,
    /// The network kept as best is loaded into a blank of this spec on resume…
    pub(crate) spec: &'a NetworkSpec,
    /// …on this (inference) device.
    pub(crate) device: &'a Device,
}

impl Course<'_> {
    /// Optimiser steps of one full pass over the items.
    pub(crate) fn steps_per_epoch(&self) -> usize {
        self.items.div_ceil(self.batch_size)
    }

    /// Epochs the step budget spans (the last one possibly cut short).
    pub(crate) fn epochs(&self) -> usize {
        self.steps.div_ceil(self.steps_per_epoch().max(1))
    }
}

/// Where in the training one step is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    /// Step within the whole training (0-based).
    pub(crate) global: usize,
    /// Steps per epoch.
    pub(crate) per_epoch: usize,
}

/// What one training method supplies to the driver.
pub(crate) trait Objective {
    /// The module the optimiser trains (on the autodiff device).
    type Model: Module;
    /// What the method keeps between epochs besides its modules; saved with every checkpoint.
    type State: Serialize + DeserializeOwned + Default;

    /// Prepares the random streams of `epoch` (1-based).
    fn start_epoch(&mut self, epoch: usize);

    /// The loss of the items at `batch` (indices into the items of [`Course::items`]).
    fn loss(&mut self, model: &Self::Model, batch: &[usize], step: Step) -> Result<Tensor<1>, NetsError>;

    /// After every optimiser step (a moving average follows the model here).
    fn after_step(&mut self, _model: &Self::Model) {}

    /// After every epoch, with its mean training loss: the validation loss, if the method has one.
    fn end_epoch(&mut self, model: &Self::Model, epoch: usize, train_loss: f32) -> Result<Option<f32>, NetsError>;

    /// The network the training would hand back now, in inference mode (kept when it is the best).
    fn output(&self, model: &Self::Model) -> Network;

    /// The method's extra state, for a checkpoint.
    fn state(&self) -> Self::State;

    /// Saves the method's extra modules for `epoch` (the teacher, the target).
    fn save_modules(&self, _store: &CheckpointStore<'_>, _epoch: usize) -> Result<(), NetsError> {
        Ok(())
    }

    /// Restores the extra state and modules saved at `epoch`, and returns a blank model (on the
    /// inference device) for the driver to load the trained weights into.
    fn restore(&mut self, store: &CheckpointStore<'_>, epoch: usize, state: Self::State) -> Result<Self::Model, NetsError>;
}

/// The driver's state between epochs; with the modules and optimiser state it is all a resume needs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LoopState<S> {
    key: String,
    epochs_done: usize,
    history: Vec<EpochRecord>,
    first_loss: Option<f32>,
    best: Option<(f32, usize)>,
    stopped_early: bool,
    #[serde(default)]
    steps_done: usize,
    method: S,
}

/// A finished training: the network it hands back (in inference mode) and its record.
pub(crate) struct Trained<O: Objective> {
    pub(crate) network: Network,
    pub(crate) report: TrainReport,
    pub(crate) objective: O,
}

/// Trains `model` (already on the autodiff device, in training mode) with `objective` for
/// `course`, continuing from the checkpoint store's state when it holds this training's.
pub(crate) fn drive<O: Objective>(
    course: Course<'_>,
    model: O::Model,
    objective: O,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained<O>, NetsError> {
    let key = course.store.as_ref().map(|s| s.key.clone()).unwrap_or_default();
    let mut run = Driver { objective, optimiser: AdamConfig::new().init(), state: LoopState { key, ..LoopState::default() }, best: None };
    let mut model = run.resume(&course)?.unwrap_or(model);
    let steps = course.steps_per_epoch();
    let last_epoch = if run.state.stopped_early { run.state.epochs_done } else { course.epochs() };
    for epoch in run.state.epochs_done + 1..=last_epoch {
        model = run.epoch(&course, model, epoch, steps, progress)?;
        let stop = run.judge(&course, &model, epoch);
        run.checkpoint(&course, &model, epoch)?;
        if stop {
            break;
        }
    }
    Ok(run.finish(&model))
}

/// A training in progress: what the driver carries from step to step besides the model, which
/// the optimiser takes and gives back at every step.
struct Driver<O: Objective> {
    objective: O,
    optimiser: ModuleOptimizer,
    state: LoopState<O::State>,
    /// The network of the best validation loss so far, when stopping early.
    best: Option<Network>,
}

impl<O: Objective> Driver<O> {
    /// Continues from the store's state, when it holds this training's: the saved model.
    fn resume(&mut self, course: &Course<'_>) -> Result<Option<O::Model>, NetsError> {
        let Some(store) = &course.store else { return Ok(None) };
        let Some(mut saved) = store.load_state::<LoopState<O::State>>()? else { return Ok(None) };
        let epoch = saved.epochs_done;
        let blank = self.objective.restore(store, epoch, std::mem::take(&mut saved.method))?;
        let model = store.load_module(epoch, "model", blank)?.train().fork(&course.device.clone().autodiff());
        let optimiser = std::mem::replace(&mut self.optimiser, AdamConfig::new().init());
        self.optimiser = optimiser.load_record(store.load_optimiser(epoch)?);
        if saved.best.is_some() {
            self.best = Some(store.load_module(epoch, "best", Network::new(course.spec, course.device))?.valid());
        }
        self.state = saved;
        Ok(Some(model))
    }

    /// One pass over the items, in an order and with random draws that depend only on the seed
    /// and the epoch, so a resumed training draws exactly what an uninterrupted one would.
    fn epoch(
        &mut self,
        course: &Course<'_>,
        mut model: O::Model,
        epoch: usize,
        steps: usize,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<O::Model, NetsError> {
        let mut order: Vec<usize> = (0..course.items).collect();
        Rng::with_index(course.seed, course.shuffle, epoch as u64).shuffle(&mut order);
        self.objective.start_epoch(epoch);
        let mut meter = EpochMeter::new(epoch);
        for (step, chunk) in order.chunks(course.batch_size).enumerate() {
            let global = (epoch - 1) * steps + step;
            if global >= course.steps {
                break;
            }
            let rate = course.learning_rate.at(global, course.steps);
            let loss = self.objective.loss(&model, chunk, Step { global, per_epoch: steps })?;
            meter.add(loss.clone().into_scalar::<f32>(), chunk.len(), &mut self.state.first_loss, step, course.learning_rate)?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = self.optimiser.step(rate, model, grads);
            self.state.steps_done += 1;
            self.objective.after_step(&model);
            progress(&meter.progress(step, steps, course.epochs(), course.pretraining));
        }
        let val_loss = self.objective.end_epoch(&model, epoch, meter.mean_loss())?;
        self.state.history.push(meter.record(val_loss));
        self.state.epochs_done = epoch;
        Ok(model)
    }

    /// Keeps the network when its validation loss is the best so far; true when `patience`
    /// epochs have passed without a better one.
    fn judge(&mut self, course: &Course<'_>, model: &O::Model, epoch: usize) -> bool {
        let Some(v) = self.state.history.last().and_then(|r| r.val_loss) else { return false };
        if course.patience == 0 {
            return false;
        }
        if self.state.best.is_none_or(|(b, _)| v < b) {
            self.state.best = Some((v, epoch));
            self.best = Some(self.objective.output(model));
            false
        } else if self.state.best.is_some_and(|(_, e)| epoch - e >= course.patience) {
            self.state.stopped_early = epoch < course.epochs();
            true
        } else {
            false
        }
    }

    /// Saves the model, the optimiser, the best network and the method's modules, then commits
    /// the loop state: a kill at any moment leaves one whole epoch to resume from.
    fn checkpoint(&mut self, course: &Course<'_>, model: &O::Model, epoch: usize) -> Result<(), NetsError> {
        let Some(store) = &course.store else { return Ok(()) };
        store.save_module(epoch, "model", model)?;
        store.save_optimiser(epoch, self.optimiser.to_record())?;
        if let Some(best) = &self.best {
            store.save_module(epoch, "best", best)?;
        }
        self.objective.save_modules(store, epoch)?;
        self.state.method = self.objective.state();
        store.commit(epoch, &self.state)
    }

    /// The best network when early stopping kept one, else the last.
    fn finish(self, model: &O::Model) -> Trained<O> {
        let (network, best_epoch) = match (self.best, self.state.best) {
            (Some(kept), Some((_, epoch))) => (kept, epoch),
            _ => (self.objective.output(model), self.state.history.len()),
        };
        let converged = levelled_off(&self.state.history, self.state.stopped_early);
        let report = TrainReport {
            history: self.state.history,
            best_epoch,
            stopped_early: self.state.stopped_early,
            steps: self.state.steps_done,
            converged,
        };
        Trained { network, report, objective: self.objective }
    }
}

/// One epoch's running loss and throughput, with the divergence guard.
struct EpochMeter {
    epoch: usize,
    started: Instant,
    loss_sum: f64,
    seen: usize,
}

impl EpochMeter {
    fn new(epoch: usize) -> Self {
        Self { epoch, started: Instant::now(), loss_sum: 0.0, seen: 0 }
    }

    /// Counts a step's loss over `n` images; fails when it is not finite or has climbed a
    /// thousand times above the loss of the training's first step (a sound run never does).
    fn add(&mut self, value: f32, n: usize, first_loss: &mut Option<f32>, step: usize, rate: LearningRate) -> Result<(), NetsError> {
        let reference = *first_loss.get_or_insert(value);
        if !value.is_finite() || value > 1e3 * reference.max(1.0) {
            return Err(NetsError::Diverged { epoch: self.epoch, step: step + 1, loss: value, learning_rate: rate.peak() });
        }
        self.loss_sum += f64::from(value) * n as f64;
        self.seen += n;
        Ok(())
    }

    fn mean_loss(&self) -> f32 {
        (self.loss_sum / self.seen.max(1) as f64) as f32
    }

    fn images_per_second(&self) -> f32 {
        self.seen as f32 / self.started.elapsed().as_secs_f32().max(1e-6)
    }

    fn progress(&self, step: usize, steps: usize, epochs: usize, pretraining: bool) -> Progress {
        Progress {
            epoch: self.epoch,
            epochs,
            step: step + 1,
            steps,
            loss: self.mean_loss(),
            images_per_second: self.images_per_second(),
            pretraining,
        }
    }

    fn record(&self, val_loss: Option<f32>) -> EpochRecord {
        EpochRecord { epoch: self.epoch, train_loss: self.mean_loss(), val_loss, images_per_second: self.images_per_second() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, val: f32) -> EpochRecord {
        EpochRecord { epoch, train_loss: 1.0, val_loss: Some(val), images_per_second: 1.0 }
    }

    #[test]
    fn warm_up_climbs_to_the_peak_then_the_cosine_decays_to_the_floor() {
        let rate = LearningRate::Cosine { peak: 0.01, floor: 0.05, warmup: 0.1 };
        assert!((rate.at(0, 100) - 0.001).abs() < 1e-12, "first warm-up step at a tenth of the peak");
        assert!((rate.at(9, 100) - 0.01).abs() < 1e-12, "warm-up ends at the peak");
        assert!((rate.at(10, 100) - 0.01).abs() < 1e-12, "the cosine starts at the peak");
        assert!(rate.at(55, 100) < 0.0055 && rate.at(55, 100) > 0.005);
        assert!((rate.at(100, 100) - 0.0005).abs() < 1e-12, "ends at the floor");
        let none = LearningRate::Cosine { peak: 0.01, floor: 0.05, warmup: 0.0 };
        assert_eq!(none.at(0, 100), 0.01);
    }

    #[test]
    fn a_loss_still_falling_in_the_last_quarter_has_not_levelled_off() {
        let falling: Vec<EpochRecord> = (1..=8).map(|e| record(e, 1.0 / e as f32)).collect();
        assert!(!levelled_off(&falling, false));
        let flat: Vec<EpochRecord> = (1..=8).map(|e| record(e, if e < 4 { 1.0 / e as f32 } else { 0.25 })).collect();
        assert!(levelled_off(&flat, false));
        assert!(levelled_off(&falling[..2], true), "early stopping means it levelled off");
        assert!(!levelled_off(&falling[..3], false), "too few epochs to say");
    }
}
