//! BYOL pre-training (Grill et al. 2020) of a segmenter's encoder on the unlabelled pool, made
//! dense: every pixel's embedding of one view predicts the moving-average target's projection of
//! the same scene point in another view. The classification head is left alone; supervised
//! training fine-tunes everything afterwards.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use echoseg_scene::{Image, Rng};
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::block::ConvBnRelu;
use crate::arch::{Network, NetworkSpec};
use crate::augment::{Augmentation, Geometry, view_of};
use crate::mean_teacher::ema_update;
use crate::train::{CheckpointStore, Progress, init_network, seeded};

/// How a network's weights start before supervised training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pretrain {
    /// BYOL on the unlabelled pool ([`pretrain_byol`]).
    Byol,
}

impl Pretrain {
    /// The manifest name, also the suffix of the model's name (`unet+byol`).
    pub fn name(self) -> &'static str {
        match self {
            Pretrain::Byol => "byol",
        }
    }

    /// Every pre-training, for error messages.
    pub const ALL: [Pretrain; 1] = [Pretrain::Byol];
}

/// Settings of BYOL pre-training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ByolConfig {
    /// Passes over the pool.
    pub epochs: usize,
    /// Pool images per step (each seen in two views).
    pub batch_size: usize,
    /// Adam's learning rate (constant).
    pub learning_rate: f64,
    /// target ← decay · target + (1 − decay) · online after every step.
    pub decay: f64,
    /// Channels of the projection the loss compares.
    pub projection: usize,
    /// Hidden channels of the projector and the predictor.
    pub hidden: usize,
    /// Augmentations of each view; the two views draw them independently.
    pub views: Vec<Augmentation>,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 16,
            learning_rate: 0.003,
            // Short pre-trainings need a target that follows faster than BYOL's 0.996.
            decay: 0.95,
            projection: 32,
            hidden: 64,
            views: vec![Augmentation::Flip, Augmentation::Shift, Augmentation::Jitter, Augmentation::Blur],
        }
    }
}

impl ByolConfig {
    /// Every problem with the settings, as (key, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(1..=10_000).contains(&self.epochs) {
            out.push(("epochs".into(), format!("must be between 1 and 10000, got {}", self.epochs)));
        }
        if !(2..=4096).contains(&self.batch_size) {
            out.push(("batch_size".into(), format!("must be between 2 and 4096, got {}", self.batch_size)));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            out.push(("learning_rate".into(), format!("must be a positive number, got {}", self.learning_rate)));
        }
        if !(0.0..1.0).contains(&self.decay) {
            out.push(("decay".into(), format!("must lie in [0, 1), got {}", self.decay)));
        }
        for (key, value) in [("projection", self.projection), ("hidden", self.hidden)] {
            if !(1..=1024).contains(&value) {
                out.push((key.into(), format!("must be between 1 and 1024, got {value}")));
            }
        }
        if self.views.is_empty() {
            out.push((
                "views".into(),
                "needs at least one of \"flip\", \"shift\", \"jitter\", \"blur\": identical views teach nothing".into(),
            ));
        }
        out
    }
}

/// One epoch of pre-training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ByolEpoch {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean BYOL loss, 2 − 2·cos between prediction and target projection (0 = aligned, 2 = unrelated).
    pub loss: f32,
    /// Mean over embedding channels of the standard deviation, over pool pixels, of the unit-length
    /// embedding: near 0 when the representation has collapsed to a constant.
    pub embedding_std: f32,
}

/// What a finished pre-training reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ByolReport {
    /// The embedding spread before the first step.
    pub initial_embedding_std: f32,
    /// Every epoch.
    pub history: Vec<ByolEpoch>,
}

/// A 1×1 two-layer perceptron applied at every pixel: BYOL's projector and predictor.
#[derive(Module, Debug)]
struct PixelMlp {
    hidden: ConvBnRelu,
    out: Conv2d,
}

impl PixelMlp {
    fn new(cin: usize, hidden: usize, cout: usize, device: &Device) -> Self {
        Self { hidden: ConvBnRelu::pointwise(cin, hidden, device), out: Conv2dConfig::new([hidden, cout], [1, 1]).init(device) }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.out.forward(self.hidden.forward(x))
    }
}

/// The network and its projector: the part the target network averages.
#[derive(Module, Debug)]
struct Encoder {
    network: Network,
    projector: PixelMlp,
}

impl Encoder {
    fn project(&self, x: Tensor<4>) -> Tensor<4> {
        self.projector.forward(self.network.forward(x).embedding)
    }
}

/// The online side: the encoder plus the predictor only it has.
#[derive(Module, Debug)]
struct Online {
    encoder: Encoder,
    predictor: PixelMlp,
}

/// What a pre-training keeps between epochs besides its modules and optimiser.
#[derive(Serialize, Deserialize)]
struct ByolState {
    key: String,
    epochs_done: usize,
    report: ByolReport,
}

/// Initialises a network of `spec` from `seed`, pre-trains it with BYOL on the unlabelled `pool`
/// and returns it (in inference mode) with the loss and embedding spread per epoch; the same
/// arguments give the same network. With a `checkpoint` directory it keeps its state there after
/// every epoch and, killed, continues from it to the same result.
#[allow(clippy::too_many_arguments)]
pub fn pretrain_byol(
    spec: &NetworkSpec,
    config: &ByolConfig,
    seed: u64,
    pool: &[&Image],
    device: &Device,
    checkpoint: Option<&Path>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, ByolReport), NetsError> {
    let Some(first) = pool.first() else { return Err(NetsError::EmptyTrainingSet) };
    let (w, h) = (first.width, first.height);
    if let Some(index) = pool.iter().position(|i| (i.width, i.height) != (w, h)) {
        return Err(NetsError::InconsistentSample {
            index,
            found: format!("{} × {} px", pool[index].width, pool[index].height),
            expected: format!("{w} × {h} px"),
        });
    }
    let train_device = device.clone().autodiff();
    let network = init_network(spec, seed, &train_device);
    let probe = &pool[..pool.len().min(16)];
    let initial = network.valid();
    let initial_embedding_std = embedding_std(&initial, probe, device)?;
    let channels = initial.forward(Tensor::zeros([1, spec.inputs, h, w], device)).embedding.dims()[1];
    let (projector, predictor) = seeded(seed ^ 0x6279_6f6c, &train_device, || {
        (
            PixelMlp::new(channels, config.hidden, config.projection, &train_device),
            PixelMlp::new(config.projection, config.hidden, config.projection, &train_device),
        )
    });
    let mut online = Online { encoder: Encoder { network: network.train().fork(&train_device), projector }, predictor };
    // `valid()` gives the target its own BatchNorm statistics (a clone would share them).
    let mut target = online.encoder.valid();
    let mut optimiser = AdamConfig::new().init();
    let mut state = ByolState {
        key: format!("{spec:?}|{config:?}|seed {seed}|pool {}", pool.len()),
        epochs_done: 0,
        report: ByolReport { initial_embedding_std, history: Vec::with_capacity(config.epochs) },
    };
    let store = checkpoint.map(|dir| CheckpointStore { dir, key: state.key.clone() });
    if let Some(store) = &store
        && let Some(saved) = store.load_state::<ByolState>()?
    {
        // Blank modules of the same shapes; loading fills every value.
        let encoder = || Encoder {
            network: Network::new(spec, device),
            projector: PixelMlp::new(channels, config.hidden, config.projection, device),
        };
        let blank = Online { encoder: encoder(), predictor: PixelMlp::new(config.projection, config.hidden, config.projection, device) };
        online = store.load_module(saved.epochs_done, "online", blank)?.train().fork(&train_device);
        target = store.load_module(saved.epochs_done, "target", encoder())?.valid();
        optimiser = optimiser.load_record(store.load_optimiser(saved.epochs_done)?);
        state = saved;
    }
    let steps = pool.len().div_ceil(config.batch_size);
    for epoch in state.epochs_done + 1..=config.epochs {
        let mut order: Vec<usize> = (0..pool.len()).collect();
        Rng::with_index(seed, "byol-shuffle", epoch as u64).shuffle(&mut order);
        let mut rng = Rng::with_index(seed, "byol-views", epoch as u64);
        let started = std::time::Instant::now();
        let (mut sum, mut images) = (0.0f64, 0usize);
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let n = chunk.len();
            let (mut x1, mut x2) = (Vec::with_capacity(n * 3 * w * h), Vec::with_capacity(n * 3 * w * h));
            let mut geometries = Vec::with_capacity(n);
            for &i in chunk {
                let (g1, g2) = (Geometry::draw(&config.views, &mut rng), Geometry::draw(&config.views, &mut rng));
                x1.extend(view_of(pool[i], &g1, &config.views, &mut rng));
                x2.extend(view_of(pool[i], &g2, &config.views, &mut rng));
                geometries.push((g1, g2));
            }
            let project = |x: &[f32]| -> Result<Vec<f32>, NetsError> {
                target
                    .project(Tensor::from_data(TensorData::new(x.to_vec(), [n, 3, h, w]), device))
                    .into_data()
                    .try_into_vec::<f32>()
                    .map_err(|e| NetsError::Readback(format!("{e:?}")))
            };
            let (z1, z2) = (project(&x1)?, project(&x2)?);
            // Symmetric loss: view 1 predicts the target's view 2 and the other way round,
            // compared at the pixels both views show.
            let d = config.projection;
            let per_image = d * w * h;
            let (mut targets, mut masks) = (Vec::with_capacity(2 * n * per_image), Vec::with_capacity(2 * n * w * h));
            for flip in [false, true] {
                for (b, (g1, g2)) in geometries.iter().enumerate() {
                    let (z, from, to) = if flip { (&z1, g1, g2) } else { (&z2, g2, g1) };
                    let (values, mask) = warp(&z[b * per_image..(b + 1) * per_image], d, w, h, from, to);
                    targets.extend(normalised(values, d, w * h));
                    masks.extend(mask);
                }
            }
            x1.extend(x2);
            let x = Tensor::from_data(TensorData::new(x1, [2 * n, 3, h, w]), &train_device);
            let prediction = online.predictor.forward(online.encoder.project(x));
            let loss = byol_loss(
                prediction,
                Tensor::from_data(TensorData::new(targets, [2 * n, d, h, w]), &train_device),
                Tensor::from_data(TensorData::new(masks, [2 * n, 1, h, w]), &train_device),
            );
            let value = loss.clone().into_scalar::<f32>();
            if !value.is_finite() {
                return Err(NetsError::Diverged { epoch, step: step + 1, loss: value, learning_rate: config.learning_rate });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &online);
            online = optimiser.step(config.learning_rate, online, grads);
            target = ema_update(target, &online.encoder, config.decay);
            sum += f64::from(value) * n as f64;
            images += n;
            progress(&Progress {
                epoch,
                epochs: config.epochs,
                step: step + 1,
                steps,
                loss: (sum / images as f64) as f32,
                images_per_second: images as f32 / started.elapsed().as_secs_f32().max(1e-6),
                pretraining: true,
            });
        }
        let embedding_std = embedding_std(&online.encoder.network.valid(), probe, device)?;
        state.report.history.push(ByolEpoch { epoch, loss: (sum / images.max(1) as f64) as f32, embedding_std });
        state.epochs_done = epoch;
        if let Some(store) = &store {
            store.save_module(epoch, "online", &online)?;
            store.save_module(epoch, "target", &target)?;
            store.save_optimiser(epoch, optimiser.to_record())?;
            store.commit(epoch, &state)?;
        }
    }
    Ok((online.encoder.network.valid(), state.report))
}

/// Mean over dimensions of 2 − 2·cos(prediction, target) at the pixels where `mask` is 1;
/// `target` is already unit length along the channels.
fn byol_loss(prediction: Tensor<4>, target: Tensor<4>, mask: Tensor<4>) -> Tensor<1> {
    let norm = (prediction.clone() * prediction.clone()).sum_dim(1).sqrt().clamp_min(1e-6);
    let cosine = (prediction / norm * target).sum_dim(1);
    let per_pixel = cosine.neg().mul_scalar(2.0).add_scalar(2.0);
    (per_pixel * mask.clone()).sum() / mask.sum().clamp_min(1.0)
}

/// Each pixel's `d` channel values (planar, `plane` pixels) scaled to unit length.
fn normalised(mut values: Vec<f32>, d: usize, plane: usize) -> Vec<f32> {
    for p in 0..plane {
        let norm = (0..d).map(|c| values[c * plane + p].powi(2)).sum::<f32>().sqrt().max(1e-6);
        (0..d).for_each(|c| values[c * plane + p] /= norm);
    }
    values
}

/// A `[d, h, w]` map computed on view `from`, moved onto the pixels of view `to` (both views of
/// one image): each pixel of `to` takes the value at the pixel of `from` showing the same scene
/// point. The mask is 0 where `from` does not show that point (shifted out).
fn warp(values: &[f32], d: usize, w: usize, h: usize, from: &Geometry, to: &Geometry) -> (Vec<f32>, Vec<f32>) {
    let plane = w * h;
    let mut shown_at = vec![usize::MAX; plane];
    for p in 0..plane {
        if let Some(q) = from.source(p % w, p / w, w, h) {
            shown_at[q] = p;
        }
    }
    let (mut out, mut mask) = (vec![0.0f32; d * plane], vec![0.0f32; plane]);
    for p in 0..plane {
        let Some(q) = to.source(p % w, p / w, w, h) else { continue };
        let at = shown_at[q];
        if at == usize::MAX {
            continue;
        }
        mask[p] = 1.0;
        (0..d).for_each(|c| out[c * plane + p] = values[c * plane + at]);
    }
    (out, mask)
}

/// Mean over embedding channels of the per-channel standard deviation of the unit-length
/// embeddings of every pixel of `images`: a collapsed representation scores 0.
pub fn embedding_std(network: &Network, images: &[&Image], device: &Device) -> Result<f32, NetsError> {
    let Some(first) = images.first() else { return Ok(0.0) };
    let (w, h) = (first.width, first.height);
    let pixels: Vec<f32> = images.iter().flat_map(|i| i.pixels.iter().copied()).collect();
    let embedding = network.forward(Tensor::from_data(TensorData::new(pixels, [images.len(), 3, h, w]), device)).embedding;
    let [n, d, _, _] = embedding.dims();
    let values = embedding.into_data().try_into_vec::<f32>().map_err(|e| NetsError::Readback(format!("{e:?}")))?;
    let plane = w * h;
    let mut unit = Vec::with_capacity(values.len());
    for b in 0..n {
        unit.extend(normalised(values[b * d * plane..(b + 1) * d * plane].to_vec(), d, plane));
    }
    let count = (n * plane) as f64;
    let std_of = |c: usize| {
        let channel = (0..n).flat_map(|b| unit[(b * d + c) * plane..(b * d + c + 1) * plane].iter().map(|&v| f64::from(v)));
        let (sum, sq) = channel.fold((0.0, 0.0), |(s, q), v| (s + v, q + v * v));
        let mean = sum / count;
        (sq / count - mean * mean).max(0.0).sqrt()
    };
    Ok(((0..d).map(std_of).sum::<f64>() / d as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Architecture;

    #[test]
    fn warping_finds_the_same_scene_point_in_the_other_view() {
        let (w, h) = (5, 4);
        // One channel holding each pixel's source index in view `from`.
        let from = Geometry { flip_x: true, flip_y: false, dx: 1, dy: 0 };
        let to = Geometry { flip_x: false, flip_y: true, dx: 0, dy: -1 };
        let values: Vec<f32> = (0..w * h).map(|p| from.source(p % w, p / w, w, h).map_or(-1.0, |q| q as f32)).collect();
        let (out, mask) = warp(&values, 1, w, h, &from, &to);
        for p in 0..w * h {
            match to.source(p % w, p / w, w, h) {
                // The warped value names the same source pixel that `to` shows here.
                Some(q) if mask[p] == 1.0 => assert_eq!(out[p], q as f32, "pixel {p}"),
                _ => assert_eq!(mask[p], 0.0, "pixel {p}"),
            }
        }
        // `from` shifts one column out and `to` one row: 4 × 3 = 12 points are in both, minus
        // the column `from` lost — exactly those pixels are compared.
        let both = (0..w * h)
            .filter(|&p| to.source(p % w, p / w, w, h).is_some_and(|q| (0..w * h).any(|r| from.source(r % w, r / w, w, h) == Some(q))))
            .count();
        assert_eq!(mask.iter().filter(|&&m| m == 1.0).count(), both);
        assert_eq!(both, (w - 1) * (h - 1));
    }

    fn pool() -> Vec<Image> {
        // Bright discs and bars on a dark, noisy background: structure worth encoding.
        (0..12)
            .map(|i| {
                let mut rng = Rng::with_index(7, "pool", i);
                let (cx, cy, r) = (rng.range(4.0, 12.0), rng.range(4.0, 12.0), rng.range(2.0, 4.0));
                let bar = rng.int(0, 15) as usize;
                let mut pixels = vec![0.0f32; 3 * 256];
                for p in 0..256 {
                    let (x, y) = ((p % 16) as f32, (p / 16) as f32);
                    let inside = (x - cx).powi(2) + (y - cy).powi(2) < r * r || p % 16 == bar;
                    for c in 0..3 {
                        pixels[c * 256 + p] = if inside { 0.8 - 0.2 * c as f32 } else { 0.1 } + rng.normal() * 0.03;
                    }
                }
                Image { width: 16, height: 16, pixels }
            })
            .collect()
    }

    #[test]
    fn byol_lowers_its_loss_on_a_tiny_pool_without_collapsing() {
        let device = Device::flex();
        let spec = NetworkSpec { architecture: Architecture::Fcn, width: 8, depth: 2, inputs: 3, classes: 2, pretrain: None };
        let images = pool();
        let refs: Vec<&Image> = images.iter().collect();
        let config = ByolConfig { epochs: 8, batch_size: 6, ..ByolConfig::default() };
        let (network, report) = pretrain_byol(&spec, &config, 3, &refs, &device, None, &mut |_| {}).unwrap();
        let losses: Vec<f32> = report.history.iter().map(|e| e.loss).collect();
        assert!(losses.iter().all(|l| l.is_finite() && (0.0..=4.0).contains(l)), "{losses:?}");
        assert!(losses[losses.len() - 1] < 0.8 * losses[0], "the BYOL loss did not fall: {losses:?}");
        // Not collapsed: unit embeddings still spread over their channels, as at initialisation.
        let last = report.history.last().unwrap().embedding_std;
        assert!(last > 0.05, "embedding std {last} (collapsed), initially {}", report.initial_embedding_std);
        // The same arguments give the same network.
        let values = |n: &Network| n.parameter_values().into_iter().map(|p| p.values).collect::<Vec<_>>();
        let (again, _) = pretrain_byol(&spec, &config, 3, &refs, &device, None, &mut |_| {}).unwrap();
        assert!(values(&network) == values(&again), "two pre-trainings with the same seed differ");
        // The weights moved from their initialisation.
        assert!(values(&init_network(&spec, 3, &device)) != values(&network), "pre-training changed nothing");
        eprintln!("byol losses {losses:?}, embedding std {} -> {last}", report.initial_embedding_std);
    }

    #[test]
    fn every_architecture_pretrains_and_frozen_weights_stay_frozen() {
        let device = Device::flex();
        let images = pool();
        let refs: Vec<&Image> = images.iter().take(4).collect();
        let config = ByolConfig { epochs: 1, batch_size: 2, hidden: 8, projection: 4, ..ByolConfig::default() };
        for architecture in Architecture::ALL {
            let spec = NetworkSpec { architecture, width: 4, depth: 2, inputs: 3, classes: 2, pretrain: Some(Pretrain::Byol) };
            let (network, report) = pretrain_byol(&spec, &config, 1, &refs, &device, None, &mut |_| {}).unwrap();
            assert!(report.history[0].loss.is_finite(), "{architecture}");
            let before = init_network(&spec, 1, &device.clone().autodiff()).parameter_values();
            let after = network.parameter_values();
            let moved =
                |keep: &dyn Fn(&crate::ParameterValues) -> bool| before.iter().zip(&after).any(|(b, a)| keep(b) && b.values != a.values);
            assert!(moved(&|p| p.trainable), "{architecture}: pre-training moved no trainable weight");
            // bnonly's random convolution kernels are frozen: BYOL may move its BatchNorm only.
            assert!(!moved(&|p| !p.trainable && p.shape.len() == 4), "{architecture}: a frozen kernel moved");
        }
    }

    #[test]
    fn a_killed_pretraining_resumes_to_the_same_network() {
        let device = Device::flex();
        let spec =
            NetworkSpec { architecture: Architecture::Unet, width: 4, depth: 2, inputs: 3, classes: 2, pretrain: Some(Pretrain::Byol) };
        let images = pool();
        let refs: Vec<&Image> = images.iter().collect();
        let config = ByolConfig { epochs: 3, batch_size: 4, hidden: 8, projection: 4, ..ByolConfig::default() };
        let dir = std::env::temp_dir().join(format!("echoseg-byol-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (whole, whole_report) = pretrain_byol(&spec, &config, 2, &refs, &device, None, &mut |_| {}).unwrap();
        // Killed in the middle of epoch 2, as a crash or Ctrl-C would.
        let killed = std::panic::catch_unwind(|| {
            pretrain_byol(&spec, &config, 2, &refs, &device, Some(&dir), &mut |p| assert!(!(p.epoch == 2 && p.step == 2), "killed"))
        });
        assert!(killed.is_err());
        let mut epochs = Vec::new();
        let (resumed, resumed_report) =
            pretrain_byol(&spec, &config, 2, &refs, &device, Some(&dir), &mut |p| epochs.push(p.epoch)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(epochs.first(), Some(&2), "the resumed pre-training should start at epoch 2");
        let values = |n: &Network| n.parameter_values().into_iter().map(|p| p.values).collect::<Vec<_>>();
        assert!(values(&resumed) == values(&whole), "a resumed pre-training differs from an uninterrupted one");
        assert_eq!(resumed_report, whole_report);
    }

    #[test]
    fn a_constant_representation_has_zero_embedding_std() {
        let device = Device::flex();
        let spec = NetworkSpec { architecture: Architecture::Pixel, width: 4, depth: 1, inputs: 3, classes: 2, pretrain: None };
        let network = init_network(&spec, 1, &device);
        let flat = Image { width: 4, height: 4, pixels: vec![0.5; 48] };
        assert!(embedding_std(&network, &[&flat, &flat], &device).unwrap() < 1e-6);
        let images = pool();
        assert!(embedding_std(&network, &images.iter().collect::<Vec<_>>(), &device).unwrap() > 0.01);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = ByolConfig { decay: 1.0, views: Vec::new(), batch_size: 1, ..ByolConfig::default() };
        let keys: Vec<String> = bad.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["batch_size", "decay", "views"]);
        assert!(ByolConfig::default().problems().is_empty());
    }
}
