//! BYOL pre-training (Grill et al. 2020) of a segmenter's encoder on the unlabelled pool, made
//! dense: every pixel's embedding of one view predicts the moving-average target's projection of
//! the same scene point in another view. The classification head is left alone; supervised
//! training fine-tunes everything afterwards.

use std::borrow::Cow;
use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor, TensorData};
use echoseg_kernels::conv2d_forward;
use echoseg_scene::{Image, Rng};
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::block::ConvBnRelu;
use crate::arch::{Network, NetworkSpec};
use crate::augment::{Augmentation, Geometry, view_of};
use crate::checkpoint::CheckpointStore;
use crate::data::{Window, read_back, training_crop};
use crate::ema::ema_update;
use crate::epochs::{Course, LearningRate, Objective, Progress, Step, drive};
use crate::init::{init_network, seeded};
use crate::settings::{SettingProblem, Settings, Valid};

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

impl Settings for ByolConfig {
    fn problems(&self) -> Vec<SettingProblem> {
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
        conv2d_forward(&self.out, self.hidden.forward(x))
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

/// Initialises a network of `spec` from `seed`, pre-trains it with BYOL on the unlabelled `pool`
/// and returns it (in inference mode) with the loss and embedding spread per epoch; the same
/// arguments give the same network. Views are cut from square crops of side `crop` (chosen from
/// the pool when `None`, as in supervised training). With a `checkpoint` directory it keeps its
/// state there after every epoch and, killed, continues from it to the same result.
#[allow(clippy::too_many_arguments)]
pub fn pretrain_byol(
    spec: &NetworkSpec,
    config: &Valid<ByolConfig>,
    seed: u64,
    pool: &[&Image],
    crop: Option<usize>,
    device: &Device,
    checkpoint: Option<&Path>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, ByolReport), NetsError> {
    let Some(first) = pool.first() else { return Err(NetsError::EmptyTrainingSet) };
    let crop = training_crop(crop, pool.iter().map(|i| (i.width, i.height)))?;
    let (w, h) = crop.map_or((first.width, first.height), |side| (side, side));
    // The spread is followed on the same images all along: their centres when training crops.
    let probe: Vec<Image> = pool[..pool.len().min(16)]
        .iter()
        .map(|i| match crop {
            Some(side) => Window::centre(side, i.width, i.height).image(i),
            None => (*i).clone(),
        })
        .collect();
    let train_device = device.clone().autodiff();
    let network = init_network(spec, seed, &train_device);
    let initial = network.valid();
    let initial_embedding_std = embedding_std(&initial, &probe.iter().collect::<Vec<_>>(), device)?;
    let channels = initial.forward(Tensor::zeros([1, spec.inputs, h, w], device)).embedding.dims()[1];
    let (projector, predictor) = seeded(seed ^ 0x6279_6f6c, &train_device, || {
        (
            PixelMlp::new(channels, config.hidden, config.projection, &train_device),
            PixelMlp::new(config.projection, config.hidden, config.projection, &train_device),
        )
    });
    let online = Online { encoder: Encoder { network: network.train().fork(&train_device), projector }, predictor };
    let objective = Byol {
        // `valid()` gives the target its own BatchNorm statistics (a clone would share them).
        target: online.encoder.valid(),
        config,
        spec,
        seed,
        pool,
        probe,
        size: (w, h),
        crop,
        channels,
        views: Rng::with_index(seed, "byol-views", 0),
        report: ByolReport { initial_embedding_std, history: Vec::with_capacity(config.epochs) },
        device,
        train_device: train_device.clone(),
    };
    let mut key = format!("{spec:?}|{config:?}|seed {seed}|pool {}", pool.len());
    if let Some(side) = crop {
        key.push_str(&format!("|crop {side}"));
    }
    let course = Course {
        steps: config.epochs * pool.len().div_ceil(config.batch_size),
        batch_size: config.batch_size,
        items: pool.len(),
        learning_rate: LearningRate::Constant(config.learning_rate),
        seed,
        shuffle: "byol-shuffle",
        patience: 0,
        pretraining: true,
        store: checkpoint.map(|dir| CheckpointStore { dir, key }),
        spec,
        device,
    };
    let trained = drive(course, online, objective, progress)?;
    Ok((trained.network, trained.objective.report))
}

/// Dense BYOL on the pool: each image in two views, each view's prediction against the target's
/// projection of the other.
struct Byol<'a> {
    /// The moving average of the online encoder, whose projections are the targets.
    target: Encoder,
    config: &'a ByolConfig,
    spec: &'a NetworkSpec,
    seed: u64,
    pool: &'a [&'a Image],
    /// The images whose embedding spread is recorded after every epoch.
    probe: Vec<Image>,
    /// The size every view has: the crop's, or the pool's one size.
    size: (usize, usize),
    /// The side of the square crop cut from each pool image before its views (`None`: whole).
    crop: Option<usize>,
    channels: usize,
    views: Rng,
    report: ByolReport,
    device: &'a Device,
    train_device: Device,
}

impl Byol<'_> {
    /// A blank encoder (network and projector) of the pre-training's shapes; loading fills it.
    fn blank_encoder(&self) -> Encoder {
        let c = self.config;
        Encoder {
            network: Network::new(self.spec, self.device),
            projector: PixelMlp::new(self.channels, c.hidden, c.projection, self.device),
        }
    }
}

impl Objective for Byol<'_> {
    type Model = Online;
    type State = ByolReport;

    fn start_epoch(&mut self, epoch: usize) {
        self.views = Rng::with_index(self.seed, "byol-views", epoch as u64);
    }

    fn loss(&mut self, online: &Online, chunk: &[usize], _step: Step) -> Result<Tensor<1>, NetsError> {
        let target = &self.target;
        let ((w, h), views, rng) = (self.size, &self.config.views, &mut self.views);
        let n = chunk.len();
        let (mut x1, mut x2) = (Vec::with_capacity(n * 3 * w * h), Vec::with_capacity(n * 3 * w * h));
        let mut geometries = Vec::with_capacity(n);
        for &i in chunk {
            let image = match self.crop {
                Some(side) => Cow::Owned(Window::random(side, self.pool[i].width, self.pool[i].height, rng).image(self.pool[i])),
                None => Cow::Borrowed(self.pool[i]),
            };
            let (g1, g2) = (Geometry::draw(views, rng), Geometry::draw(views, rng));
            x1.extend(view_of(&image, &g1, views, rng));
            x2.extend(view_of(&image, &g2, views, rng));
            geometries.push((g1, g2));
        }
        let project = |x: &[f32]| read_back(target.project(Tensor::from_data(TensorData::new(x.to_vec(), [n, 3, h, w]), self.device)));
        let (z1, z2) = (project(&x1)?, project(&x2)?);
        // Symmetric loss: view 1 predicts the target's view 2 and the other way round,
        // compared at the pixels both views show.
        let d = self.config.projection;
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
        let device = &self.train_device;
        let x = Tensor::from_data(TensorData::new(x1, [2 * n, 3, h, w]), device);
        let prediction = online.predictor.forward(online.encoder.project(x));
        Ok(byol_loss(
            prediction,
            Tensor::from_data(TensorData::new(targets, [2 * n, d, h, w]), device),
            Tensor::from_data(TensorData::new(masks, [2 * n, 1, h, w]), device),
        ))
    }

    fn after_step(&mut self, online: &Online) {
        self.target = ema_update(self.target.clone(), &online.encoder, self.config.decay);
    }

    fn end_epoch(&mut self, online: &Online, epoch: usize, loss: f32) -> Result<Option<f32>, NetsError> {
        let embedding_std = embedding_std(&online.encoder.network.valid(), &self.probe.iter().collect::<Vec<_>>(), self.device)?;
        self.report.history.push(ByolEpoch { epoch, loss, embedding_std });
        Ok(None)
    }

    fn output(&self, online: &Online) -> Network {
        online.encoder.network.valid()
    }

    fn state(&self) -> ByolReport {
        self.report.clone()
    }

    fn save_modules(&self, store: &CheckpointStore<'_>, epoch: usize) -> Result<(), NetsError> {
        store.save_module(epoch, "target", &self.target)
    }

    fn restore(&mut self, store: &CheckpointStore<'_>, epoch: usize, report: ByolReport) -> Result<Online, NetsError> {
        self.target = store.load_module(epoch, "target", self.blank_encoder())?.valid();
        self.report = report;
        let c = self.config;
        Ok(Online { encoder: self.blank_encoder(), predictor: PixelMlp::new(c.projection, c.hidden, c.projection, self.device) })
    }
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
    let values = read_back(embedding)?;
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
    use crate::arch::{Architecture, Pretrain};

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
    fn a_pool_of_mixed_sizes_pre_trains_on_crops_and_repeats_exactly() {
        let device = Device::flex();
        let spec = NetworkSpec { architecture: Architecture::Fcn, width: 4, depth: 2, inputs: 3, classes: 2, pretrain: None };
        // Cut the 16-px pool to 12–16 px per side: crops of 12 px, chosen from the pool.
        let images: Vec<Image> =
            pool().iter().enumerate().map(|(i, im)| Window { x: 0, y: 0, width: 12 + i % 5, height: 16 - i % 3 }.image(im)).collect();
        let refs: Vec<&Image> = images.iter().collect();
        let config = ByolConfig { epochs: 2, batch_size: 4, ..ByolConfig::default() }.validate().unwrap();
        let (network, report) = pretrain_byol(&spec, &config, 5, &refs, None, &device, None, &mut |_| {}).unwrap();
        assert!(report.history.iter().all(|e| e.loss.is_finite() && e.embedding_std > 0.0), "{:?}", report.history);
        let (again, _) = pretrain_byol(&spec, &config, 5, &refs, None, &device, None, &mut |_| {}).unwrap();
        let values = |n: &Network| n.parameter_values().into_iter().map(|p| p.values).collect::<Vec<_>>();
        assert!(values(&network) == values(&again), "the crops are drawn from the seed");
        let err = pretrain_byol(&spec, &config, 5, &refs, Some(14), &device, None, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("train.crop = 14 is larger than image 0, which is 12×16 px"), "{err}");
    }

    #[test]
    fn byol_lowers_its_loss_on_a_tiny_pool_without_collapsing() {
        let device = Device::flex();
        let spec = NetworkSpec { architecture: Architecture::Fcn, width: 8, depth: 2, inputs: 3, classes: 2, pretrain: None };
        let images = pool();
        let refs: Vec<&Image> = images.iter().collect();
        let config = ByolConfig { epochs: 8, batch_size: 6, ..ByolConfig::default() }.validate().unwrap();
        let (network, report) = pretrain_byol(&spec, &config, 3, &refs, None, &device, None, &mut |_| {}).unwrap();
        let losses: Vec<f32> = report.history.iter().map(|e| e.loss).collect();
        assert!(losses.iter().all(|l| l.is_finite() && (0.0..=4.0).contains(l)), "{losses:?}");
        assert!(losses[losses.len() - 1] < 0.8 * losses[0], "the BYOL loss did not fall: {losses:?}");
        // Not collapsed: unit embeddings still spread over their channels, as at initialisation.
        let last = report.history.last().unwrap().embedding_std;
        assert!(last > 0.05, "embedding std {last} (collapsed), initially {}", report.initial_embedding_std);
        // The same arguments give the same network.
        let values = |n: &Network| n.parameter_values().into_iter().map(|p| p.values).collect::<Vec<_>>();
        let (again, _) = pretrain_byol(&spec, &config, 3, &refs, None, &device, None, &mut |_| {}).unwrap();
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
        let config = ByolConfig { epochs: 1, batch_size: 2, hidden: 8, projection: 4, ..ByolConfig::default() }.validate().unwrap();
        for architecture in Architecture::ALL {
            let spec = NetworkSpec { architecture, width: 4, depth: 2, inputs: 3, classes: 2, pretrain: Some(Pretrain::Byol) };
            let (network, report) = pretrain_byol(&spec, &config, 1, &refs, None, &device, None, &mut |_| {}).unwrap();
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
        let config = ByolConfig { epochs: 3, batch_size: 4, hidden: 8, projection: 4, ..ByolConfig::default() }.validate().unwrap();
        let dir = std::env::temp_dir().join(format!("echoseg-byol-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (whole, whole_report) = pretrain_byol(&spec, &config, 2, &refs, None, &device, None, &mut |_| {}).unwrap();
        // Killed in the middle of epoch 2, as a crash or Ctrl-C would.
        let killed = std::panic::catch_unwind(|| {
            pretrain_byol(&spec, &config, 2, &refs, None, &device, Some(&dir), &mut |p| assert!(!(p.epoch == 2 && p.step == 2), "killed"))
        });
        assert!(killed.is_err());
        let mut epochs = Vec::new();
        let (resumed, resumed_report) =
            pretrain_byol(&spec, &config, 2, &refs, None, &device, Some(&dir), &mut |p| epochs.push(p.epoch)).unwrap();
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
