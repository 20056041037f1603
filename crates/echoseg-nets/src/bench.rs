//! `echoseg bench`: training and inference throughput and peak memory of each architecture on
//! synthetic scenes, with the time of one training step split into forward, backward and
//! optimiser, so a slow case shows where its time goes.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use echoseg_scene::{CueRule, ObjectKind, Style, WorldConfig, generate_world};
use serde::{Deserialize, Serialize};

pub use echoseg_kernels::gemm_gflops;

use crate::NetsError;
use crate::arch::{Architecture, NetworkSpec};
use crate::data::{Cut, Sample, image_batch, make_batch};
use crate::init::init_network;
use crate::train::batch_loss;

/// One benchmark case: an architecture at a size, on images of `size`² pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchCase {
    /// The network.
    pub network: NetworkSpec,
    /// Image side in pixels.
    pub size: usize,
    /// Images per step.
    pub batch: usize,
    /// Timed training steps (after two untimed warm-up steps).
    pub steps: usize,
}

/// What one case measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// The case.
    pub case: BenchCase,
    /// Trainable and frozen parameters.
    pub parameters: usize,
    /// Training images per second (forward, backward and Adam step).
    pub train_images_per_second: f64,
    /// Inference images per second (forward pass, batched, BatchNorm as a separate layer).
    pub infer_images_per_second: f64,
    /// Inference images per second with BatchNorm folded into the convolutions.
    pub infer_fused_images_per_second: f64,
    /// Mean milliseconds per training step in the forward pass and loss.
    pub forward_ms: f64,
    /// Mean milliseconds per training step in the backward pass.
    pub backward_ms: f64,
    /// Mean milliseconds per training step in the optimiser.
    pub optimiser_ms: f64,
    /// Peak resident memory of the process during this case, in MiB (Linux only).
    pub peak_rss_mib: Option<f64>,
    /// GFLOP of the convolutions' matrix products per trained image, as the kernels counted them
    /// (`None` on a device whose products the CPU kernels do not run).
    #[serde(default)]
    pub train_gflop_per_image: Option<f64>,
    /// Those products' GFLOP per second of training.
    #[serde(default)]
    pub train_gflops: Option<f64>,
    /// GFLOP per second of inference with BatchNorm folded.
    #[serde(default)]
    pub infer_fused_gflops: Option<f64>,
}

/// Runs one case on `device`.
pub fn bench(case: &BenchCase, device: &Device) -> Result<BenchResult, NetsError> {
    reset_peak_rss();
    // Background and three object classes: the 4 classes of the reference case.
    let world =
        WorldConfig { size: case.size, classes: vec![ObjectKind::Blob, ObjectKind::Thin, ObjectKind::Box], ..WorldConfig::default() };
    let classes = world.num_classes();
    let spec = NetworkSpec { inputs: 3, classes, ..case.network };
    let scenes = generate_world(&world, 1, 0, u32::try_from(case.batch * 2).unwrap_or(u32::MAX), Style::Real, CueRule::Absent);
    let samples: Vec<Sample> =
        scenes.iter().filter_map(|s| s.truth.as_ref().map(|t| Sample::hard(s.image.clone(), t.labels.labels.clone()))).collect();
    let train_device = device.clone().autodiff();
    let mut network = init_network(&spec, 1, &train_device);
    let parameters = network.num_params();
    let mut optimiser = AdamConfig::new().init();
    let (mut forward, mut backward, mut step_time, mut train_flops) = (0.0, 0.0, 0.0, 0u64);
    let steps = case.steps.max(1);
    for step in 0..steps + 2 {
        let first = (step % 2) * case.batch;
        let indices: Vec<usize> = (first..first + case.batch).collect();
        let batch = make_batch(&samples, &indices, classes, None, Cut::Whole, &train_device);
        let (t0, flops0) = (Instant::now(), echoseg_kernels::flops());
        let loss = batch_loss(&network, batch, None);
        let value = loss.clone().into_scalar::<f32>();
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &network);
        let t2 = Instant::now();
        network = optimiser.step(1e-3, network, grads);
        // flex runs eagerly, so the step has finished when it returns; reading a parameter
        // would force any lazy backend to finish too.
        let t3 = Instant::now();
        if !value.is_finite() {
            return Err(NetsError::Diverged { epoch: 1, step: step + 1, loss: value, learning_rate: 1e-3 });
        }
        if step >= 2 {
            forward += (t1 - t0).as_secs_f64();
            backward += (t2 - t1).as_secs_f64();
            step_time += (t3 - t2).as_secs_f64();
            train_flops += echoseg_kernels::flops() - flops0;
        }
    }
    let train_seconds = forward + backward + step_time;

    let images: Vec<_> = scenes.iter().take(case.batch).map(|s| &s.image).collect();
    let time_inference = |inference: &crate::Network| {
        let run = || inference.forward(image_batch(&images, device)).logits.into_data();
        run();
        let (started, flops0) = (Instant::now(), echoseg_kernels::flops());
        for _ in 0..steps {
            run();
        }
        (started.elapsed().as_secs_f64(), echoseg_kernels::flops() - flops0)
    };
    let valid = network.valid();
    let (infer_seconds, _) = time_inference(&valid);
    let (fused_seconds, fused_flops) = time_inference(&valid.for_inference());
    // Nothing counted: the products ran elsewhere (the GPU).
    let rate = |flops: u64, seconds: f64| (flops > 0).then(|| flops as f64 / seconds.max(1e-9) / 1e9);
    let per_step = |s: f64| 1e3 * s / steps as f64;
    Ok(BenchResult {
        case: BenchCase { network: spec, ..case.clone() },
        parameters,
        train_images_per_second: (steps * case.batch) as f64 / train_seconds.max(1e-9),
        infer_images_per_second: (steps * case.batch) as f64 / infer_seconds.max(1e-9),
        infer_fused_images_per_second: (steps * case.batch) as f64 / fused_seconds.max(1e-9),
        forward_ms: per_step(forward),
        backward_ms: per_step(backward),
        optimiser_ms: per_step(step_time),
        peak_rss_mib: peak_rss_mib(),
        train_gflop_per_image: (train_flops > 0).then(|| train_flops as f64 / (steps * case.batch) as f64 / 1e9),
        train_gflops: rate(train_flops, train_seconds),
        infer_fused_gflops: rate(fused_flops, fused_seconds),
    })
}

/// The reference case of the nets issue: `unet`, width 16, 3 levels, 64×64, batch 16.
pub fn reference_case() -> BenchCase {
    BenchCase {
        network: NetworkSpec { architecture: Architecture::Unet, width: 16, depth: 3, inputs: 3, classes: 4, pretrain: None },
        size: 64,
        batch: 16,
        steps: 20,
    }
}

/// Resets the kernel's peak-RSS mark so the next reading covers only what follows.
fn reset_peak_rss() {
    // "5" resets VmHWM (Documentation/filesystems/proc.rst); harmless where unsupported.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory (VmHWM) in MiB, where the OS reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
