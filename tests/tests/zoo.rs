//! The architecture zoo and the training loop: every architecture learns, bnonly trains only
//! BatchNorm, a seed fixes the weights, a resumed training (plain or mean teacher) equals an
//! uninterrupted one, and an absurd learning rate is stopped with a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_agree::truth_scores;
use echoseg_nets::{
    Architecture, Device, DeviceChoice, EmaConfig, NetsError, Network, NetworkSpec, Probabilities, Sample, Settings, TrainConfig,
    TrainReport, TrainingRequest, Valid, init_network, predict, train_mean_teacher, train_resumable,
};
use echoseg_scene::{CueRule, Scene, Style, WorldConfig, generate_world};
use echoseg_tests::Scratch;

struct TinyWorld {
    train: Vec<Sample>,
    test: Vec<Scene>,
    classes: usize,
}

fn tiny_world() -> TinyWorld {
    let world = WorldConfig { size: 32, min_objects: 2, max_objects: 4, ..WorldConfig::default() };
    let exact = |s: &Scene| Sample::hard(s.image.clone(), s.truth.as_ref().unwrap().labels.labels.clone());
    let train = generate_world(&world, 11, 0, 48, Style::Real, CueRule::Absent).iter().map(exact).collect();
    let test = generate_world(&world, 11, 1000, 16, Style::Real, CueRule::Absent);
    TinyWorld { train, test, classes: world.num_classes() }
}

fn spec(architecture: Architecture, classes: usize) -> NetworkSpec {
    let (width, depth) = match architecture {
        // Narrower U-Nets on this tiny, background-heavy world settle on "all background".
        Architecture::Unet => (16, 2),
        Architecture::Fcn => (8, 4),
        Architecture::Dilated => (8, 3),
        Architecture::Bnonly => (32, 4),
        Architecture::Pixel => (16, 2),
    };
    NetworkSpec { architecture, width, depth, inputs: 3, classes, pretrain: None }
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig { epochs: Some(epochs), batch_size: 8, learning_rate: 0.01, ..TrainConfig::default() }
}

fn valid<S: Settings>(settings: S) -> Valid<S> {
    settings.validate().unwrap()
}

/// The values of every parameter, without burn's random parameter ids.
fn values(network: &Network) -> Vec<Vec<f32>> {
    network.parameter_values().into_iter().map(|p| p.values).collect()
}

/// Index of the first parameter tensor whose values differ, if any.
fn first_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<usize> {
    assert_eq!(a.len(), b.len(), "the networks have different parameter counts");
    a.iter().zip(b).position(|(x, y)| x.iter().map(|v| v.to_bits()).ne(y.iter().map(|v| v.to_bits())))
}

fn device() -> Device {
    DeviceChoice::Flex.open().unwrap()
}

/// Trains a network of `spec` from scratch with `config` and `seed` on `train`, without validation.
fn trained(spec: &NetworkSpec, config: TrainConfig, seed: u64, train: &[Sample]) -> Result<(Network, TrainReport), NetsError> {
    let (config, device) = (valid(config), device());
    echoseg_nets::train(&TrainingRequest { spec, config: &config, seed, train, val: &[], device: &device }, &mut |_| {})
}

/// The request of a resumable training in these tests.
fn request<'a>(
    spec: &'a NetworkSpec,
    config: &'a Valid<TrainConfig>,
    seed: u64,
    train: &'a [Sample],
    val: &'a [Sample],
    device: &'a Device,
) -> TrainingRequest<'a> {
    TrainingRequest { spec, config, seed, train, val, device }
}

fn miou(network: &Network, world: &TinyWorld) -> f64 {
    let images: Vec<_> = world.test.iter().map(|s| &s.image).collect();
    let labels: Vec<Vec<u8>> = predict(network, &images, 16, &device()).unwrap().iter().map(Probabilities::argmax).collect();
    let predicted: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
    let truth: Vec<&[u8]> = world.test.iter().map(|s| s.truth.as_ref().unwrap().labels.labels.as_slice()).collect();
    truth_scores(&predicted, &truth, world.classes).miou
}

/// mIoU of predicting background everywhere: what a network that learned nothing scores.
fn chance_miou(world: &TinyWorld) -> f64 {
    let background: Vec<Vec<u8>> = world.test.iter().map(|s| vec![0; s.truth.as_ref().unwrap().labels.labels.len()]).collect();
    let predicted: Vec<&[u8]> = background.iter().map(Vec::as_slice).collect();
    let truth: Vec<&[u8]> = world.test.iter().map(|s| s.truth.as_ref().unwrap().labels.labels.as_slice()).collect();
    truth_scores(&predicted, &truth, world.classes).miou
}

#[test]
fn every_architecture_learns_a_tiny_world() {
    let world = tiny_world();
    let chance = chance_miou(&world);
    let mut scores = Vec::new();
    for architecture in Architecture::ALL {
        let (network, report) = trained(&spec(architecture, world.classes), config(10), 1, &world.train).unwrap();
        let first = report.history.first().unwrap().train_loss;
        let last = report.history.last().unwrap().train_loss;
        scores.push((architecture, miou(&network, &world), first, last));
    }
    for (architecture, m, first, last) in &scores {
        assert!(last < first, "{architecture}: training loss went from {first:.3} to {last:.3}");
        // bnonly only re-weights random features, so it is held to a lower bar than the others.
        let margin = if *architecture == Architecture::Bnonly { 0.04 } else { 0.15 };
        assert!(*m > chance + margin, "{architecture}: mIoU {m:.3}, chance (all background) {chance:.3}; all: {scores:?}");
    }
}

#[test]
fn bnonly_trains_only_batchnorm() {
    let world = tiny_world();
    let spec = spec(Architecture::Bnonly, world.classes);
    let initial = init_network(&spec, 4, &device().autodiff()).parameter_values();
    let (trained, _) = trained(&spec, config(6), 4, &world.train).unwrap();
    let trained = trained.parameter_values();
    assert_eq!(initial.len(), trained.len());
    let (mut kernels, mut trainable) = (0, 0);
    for (before, after) in initial.iter().zip(&trained) {
        assert_eq!(before.shape, after.shape);
        if before.shape.len() == 4 {
            assert!(!before.trainable, "convolution kernel {:?} is trainable", before.shape);
            assert!(before.values == after.values, "convolution kernel {:?} changed in training", before.shape);
            kernels += 1;
        }
        if before.trainable {
            // Only BatchNorm's per-channel scale and shift may train, and each of them did.
            assert_eq!(before.shape.len(), 1, "a trainable parameter {:?} is not a BatchNorm vector", before.shape);
            assert!(before.values != after.values, "BatchNorm parameter {:?} did not move", before.shape);
            trainable += 1;
        }
    }
    // 4 blocks and the head; BatchNorm after each block and on the logits: 5 × (scale, shift).
    assert_eq!((kernels, trainable), (5, 10));
}

#[test]
fn a_seed_fixes_the_weights() {
    let world = tiny_world();
    let spec = spec(Architecture::Dilated, world.classes);
    let run = |seed| values(&trained(&spec, config(2), seed, &world.train).unwrap().0);
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(first_difference(&a, &b), None, "the same seed gave different weights");
    assert!(first_difference(&a, &c).is_some(), "different seeds gave the same weights");
}

#[test]
fn a_resumed_training_equals_an_uninterrupted_one() {
    let world = tiny_world();
    let val = &world.train[..8];
    let spec = spec(Architecture::Unet, world.classes);
    let config = TrainConfig { patience: 3, ..config(4) };
    let scratch = Scratch::new("resume");
    let (whole_dir, killed_dir) = (scratch.path().join("whole"), scratch.path().join("killed"));

    let (config, device) = (valid(config), device());
    let request = request(&spec, &config, 5, &world.train, val, &device);
    let (whole, whole_report) = train_resumable(None, &request, &whole_dir, &mut |_| {}).unwrap();

    // Kill the second training in the middle of epoch 3, as a crash or Ctrl-C would.
    let killed = std::panic::catch_unwind(|| {
        train_resumable(None, &request, &killed_dir, &mut |p| {
            assert!(!(p.epoch == 3 && p.step == 2), "killed");
        })
    });
    assert!(killed.is_err());
    let mut epochs_seen = Vec::new();
    let (resumed, resumed_report) = train_resumable(None, &request, &killed_dir, &mut |p| {
        epochs_seen.push(p.epoch);
    })
    .unwrap();
    assert_eq!(epochs_seen.first(), Some(&3), "the resumed training should start at epoch 3");
    assert_eq!(first_difference(&values(&resumed), &values(&whole)), None, "resumed weights differ from an uninterrupted training");
    assert_eq!(resumed_report.history.len(), whole_report.history.len());
    for (a, b) in resumed_report.history.iter().zip(&whole_report.history) {
        assert_eq!((a.train_loss, a.val_loss), (b.train_loss, b.val_loss));
    }
}

#[test]
fn a_resumed_mean_teacher_equals_an_uninterrupted_one() {
    let world = tiny_world();
    let (labelled, val) = (&world.train[8..24], &world.train[..8]);
    let pool: Vec<_> = world.test.iter().map(|s| &s.image).collect();
    let spec = spec(Architecture::Fcn, world.classes);
    let ema = EmaConfig { ramp_up: 1, ..EmaConfig::default() };
    let scratch = Scratch::new("resume-ema");
    let run = |dir: &str, kill_at: Option<usize>, epochs_seen: &mut Vec<usize>| {
        let initial = init_network(&spec, 4, &device());
        let (config, device) = (valid(config(4)), device());
        train_mean_teacher(
            initial,
            &request(&spec, &config, 5, labelled, val, &device),
            &valid(ema.clone()),
            &pool,
            &scratch.path().join(dir),
            &mut |p| {
                epochs_seen.push(p.epoch);
                assert!(kill_at != Some(p.epoch) || p.step < 2, "killed");
            },
        )
    };
    let (whole, whole_report) = run("whole", None, &mut Vec::new()).unwrap();
    // Killed in the middle of epoch 3: the student, the teacher, the optimiser and the place in
    // the pool must all come back for the result to be the same.
    assert!(std::panic::catch_unwind(|| run("killed", Some(3), &mut Vec::new())).is_err());
    let mut epochs_seen = Vec::new();
    let (resumed, resumed_report) = run("killed", None, &mut epochs_seen).unwrap();
    assert_eq!(epochs_seen.first(), Some(&3), "the resumed mean teacher should start at epoch 3");
    assert_eq!(first_difference(&values(&resumed), &values(&whole)), None, "resumed teacher differs from an uninterrupted one");
    let losses = |r: &echoseg_nets::TrainReport| r.history.iter().map(|e| (e.train_loss, e.val_loss)).collect::<Vec<_>>();
    assert_eq!(losses(&resumed_report), losses(&whole_report));
}

#[test]
fn an_absurd_learning_rate_is_stopped_with_a_clear_error() {
    let world = tiny_world();
    let config = TrainConfig { learning_rate: 1e9, ..config(3) };
    let err = trained(&spec(Architecture::Fcn, world.classes), config, 1, &world.train).unwrap_err();
    assert!(matches!(err, NetsError::Diverged { .. }), "{err:?}");
    assert!(err.to_string().contains("lower train.learning_rate"), "{err}");
}

#[test]
fn folding_batchnorm_for_inference_keeps_the_predictions() {
    let world = tiny_world();
    for architecture in Architecture::ALL {
        let (network, _) = trained(&spec(architecture, world.classes), config(2), 3, &world.train).unwrap();
        let images: Vec<_> = world.test.iter().map(|s| &s.image).collect();
        let plain = predict(&network, &images, 8, &device()).unwrap();
        let fused = predict(&network.for_inference(), &images, 8, &device()).unwrap();
        let worst =
            plain.iter().zip(&fused).flat_map(|(a, b)| a.values.iter().zip(&b.values).map(|(x, y)| (x - y).abs())).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{architecture}: folding BatchNorm changed a probability by {worst}");
    }
}
