//! Training is real: what a model learns follows the labels it was given.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_agree::truth_scores;
use echoseg_nets::{
    Architecture, DeviceChoice, NetworkSpec, Probabilities, Sample, Settings, TrainConfig, TrainingRequest, predict, train,
};
use echoseg_scene::{CueRule, LabelSource, ManualBias, Style, WorldConfig, generate_world};
use echoseg_study::analysis::fingerprints::fingerprint_of;

#[test]
fn exact_labels_beat_heavily_corrupted_labels() {
    let world = WorldConfig { size: 32, min_objects: 2, max_objects: 4, ..WorldConfig::default() };
    let scenes = generate_world(&world, 5, 0, 64, Style::Real, CueRule::Absent);
    let test = generate_world(&world, 5, 1000, 24, Style::Real, CueRule::Absent);
    let corrupt = LabelSource::Manual(ManualBias { dilate: 3.0, class_slip: 0.6, miss_small_below: 60, ..ManualBias::default() });
    let spec =
        NetworkSpec { architecture: Architecture::Unet, width: 8, depth: 2, inputs: 3, classes: world.num_classes(), pretrain: None };
    let config = TrainConfig { epochs: Some(12), batch_size: 8, learning_rate: 0.01, ..TrainConfig::default() };
    let device = DeviceChoice::Flex.open().unwrap();
    let classes = world.class_table();

    let score = |source: &LabelSource| {
        let samples: Vec<Sample> =
            scenes.iter().map(|s| Sample::hard(s.image.clone(), source.label(s, &classes, 1).unwrap().labels)).collect();
        let config = config.clone().validate().unwrap();
        let request = TrainingRequest { spec: &spec, config: &config, seed: 3, train: &samples, val: &[], device: &device };
        let (net, _) = train(&request, &mut |_| {}).unwrap();
        let images: Vec<_> = test.iter().map(|s| &s.image).collect();
        let labels: Vec<Vec<u8>> = predict(&net, &images, 16, &device).unwrap().iter().map(Probabilities::argmax).collect();
        let predicted: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
        let truth: Vec<&[u8]> = test.iter().map(|s| s.truth.as_ref().unwrap().labels.labels.as_slice()).collect();
        (truth_scores(&predicted, &truth, classes.len()), fingerprint_of(&predicted, &test.iter().collect::<Vec<_>>(), &classes))
    };
    let (exact, exact_fingerprint) = score(&LabelSource::Exact);
    let (corrupted, _) = score(&corrupt);
    assert!(exact.miou > 0.5, "a model trained on exact labels reached only mIoU {:.3}", exact.miou);
    assert!(exact.miou > corrupted.miou + 0.1, "exact {:.3} vs corrupted {:.3}", exact.miou, corrupted.miou);
    // Labels dilated by 2 px (and nothing else) teach the model to over-segment by about as much.
    let (_, dilated) = score(&LabelSource::Manual(ManualBias { dilate: 2.0, ..ManualBias::default() }));
    let (e, d) = (exact_fingerprint.boundary_offset.unwrap(), dilated.boundary_offset.unwrap());
    assert!(d > e + 1.0, "boundary offset: exact labels {e:+.2} px, dilated labels {d:+.2} px");
}
