//! Every label source has the biases it is documented to have, measured against truth with the
//! expected sign and rough size.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_agree::Fingerprint;
use echoseg_scene::{CueRule, HeuristicRules, LabelSource, ManualBias, ObjectKind, Scene, Style, WorldConfig, generate_world};
use echoseg_study::analysis::fingerprints::fingerprint_of;

fn world() -> WorldConfig {
    WorldConfig {
        classes: vec![ObjectKind::Blob, ObjectKind::Thin, ObjectKind::Box],
        low_contrast: 0.3,
        shadows: 0.5,
        ..WorldConfig::default()
    }
}

fn scenes(w: &WorldConfig) -> Vec<Scene> {
    generate_world(w, 11, 0, 48, Style::Real, CueRule::Absent)
}

fn fingerprint(source: &LabelSource, w: &WorldConfig, scenes: &[Scene]) -> Fingerprint {
    let classes = w.class_table();
    let labels: Vec<Vec<u8>> = scenes.iter().map(|s| source.label(s, &classes, 3).unwrap().labels).collect();
    let slices: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
    fingerprint_of(&slices, &scenes.iter().collect::<Vec<_>>(), &classes)
}

fn manual(bias: ManualBias) -> LabelSource {
    LabelSource::Manual(bias)
}

#[test]
fn exact_labels_have_a_perfect_fingerprint() {
    let w = world();
    let f = fingerprint(&LabelSource::Exact, &w, &scenes(&w));
    assert_eq!(f.boundary_offset, Some(0.0));
    for (name, v) in [("thin", f.thin_recall), ("small", f.small_object_recall), ("low", f.low_contrast_recall)] {
        assert_eq!(v, Some(1.0), "{name} recall");
    }
    assert_eq!(f.shadow_fp_rate, Some(0.0));
}

#[test]
fn dilation_by_k_pixels_measures_about_plus_k() {
    let w = world();
    let s = scenes(&w);
    for k in [1.0f32, 2.0, -1.0] {
        let offset = fingerprint(&manual(ManualBias { dilate: k, ..ManualBias::default() }), &w, &s).boundary_offset.unwrap();
        // Discrete discs reach a little less than k along diagonals, and objects that touch
        // block each other's growth, so the measure runs slightly below k as k grows.
        let tolerance = 0.2 + 0.1 * f64::from(k.abs());
        assert!((offset - f64::from(k)).abs() < tolerance, "dilate = {k} measured {offset:+.3} px");
    }
}

#[test]
fn skipping_thin_structures_and_small_objects_shows_as_low_recall() {
    let w = world();
    let s = scenes(&w);
    let f = fingerprint(&manual(ManualBias { skip_thin: true, ..ManualBias::default() }), &w, &s);
    assert_eq!(f.thin_recall, Some(0.0));
    assert!(f.small_object_recall.unwrap() < 0.9, "small thin objects are small objects too");
    let f = fingerprint(&manual(ManualBias { miss_small_below: 41, ..ManualBias::default() }), &w, &s);
    assert_eq!(f.small_object_recall, Some(0.0), "objects under 1 % of a 64×64 image (41 px) are all missed");
    assert_eq!(f.thin_recall.map(|r| r > 0.3), Some(true));
}

#[test]
fn heuristic_misses_faint_objects_and_labels_shadows() {
    let w = world();
    let s = scenes(&w);
    let f = fingerprint(&LabelSource::Heuristic(HeuristicRules::default()), &w, &s);
    assert!(f.low_contrast_recall.unwrap() < 0.1, "low-contrast recall {:?}", f.low_contrast_recall);
    assert!(f.shadow_fp_rate.unwrap() > 0.5, "shadow false-positive rate {:?}", f.shadow_fp_rate);
    // The shadows it includes extend objects outward ...
    assert!(f.boundary_offset.unwrap() > 0.4, "boundary offset with shadows {:?}", f.boundary_offset);
    // ... while without shadows its boundaries follow the pixels.
    let sunless = WorldConfig { shadows: 0.0, ..w };
    let f = fingerprint(&LabelSource::Heuristic(HeuristicRules::default()), &sunless, &scenes(&sunless));
    assert!(f.boundary_offset.unwrap().abs() < 0.3, "boundary offset without shadows {:?}", f.boundary_offset);
    assert_eq!(f.shadow_fp_rate, None, "no shadows, no rate");
}

#[test]
fn random_annotator_errors_move_boundaries_both_ways() {
    let w = world();
    let s = scenes(&w);
    let exact = fingerprint(&LabelSource::Exact, &w, &s);
    for bias in [ManualBias { jitter: 1.5, ..ManualBias::default() }, ManualBias { simplify: 2.0, ..ManualBias::default() }] {
        let f = fingerprint(&manual(bias.clone()), &w, &s);
        // no systematic offset, but the labels are no longer exact
        assert!(f.boundary_offset.unwrap().abs() < 0.5, "{bias:?}: {:?}", f.boundary_offset);
        assert_ne!(f, exact, "{bias:?} changed nothing");
    }
    let slips = fingerprint(&manual(ManualBias { class_slip: 1.0, ..ManualBias::default() }), &w, &s);
    assert_eq!(slips.thin_recall, Some(0.0), "every object gets a wrong class");
}

#[test]
fn synthetic_source_labels_exactly_but_renders_flat_images() {
    let w = world();
    let source = LabelSource::Synthetic;
    let s = generate_world(&w, 11, 0, 8, source.style(), CueRule::Absent);
    assert_eq!(fingerprint(&source, &w, &s).boundary_offset, Some(0.0));
    assert!(s.iter().all(|scene| scene.style == Style::Synthetic));
    let noise = |scene: &Scene| {
        let t = scene.truth.as_ref().unwrap();
        let bg: Vec<f32> = scene.image.grey().into_iter().enumerate().filter(|(i, _)| t.labels.labels[*i] == 0).map(|(_, g)| g).collect();
        bg.iter().map(|g| (g - bg[0]).abs()).fold(0.0f32, f32::max)
    };
    assert_eq!(noise(&s[0]), 0.0);
    let real = generate_world(&w, 11, 0, 1, Style::Real, CueRule::Absent);
    assert!(noise(&real[0]) > 0.05);
}
