//! Label sources have the biases they are documented to have, measured against truth.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_agree::{DEFAULT_MAX_OFFSET, MapShape, truth_scores};
use echoseg_scene::{HeuristicRules, LabelSource, ManualBias, Scene, Style, WorldConfig, generate_world};

fn offset_and_scores(scenes: &[Scene], source: &LabelSource, world: &WorldConfig) -> echoseg_agree::TruthScores {
    let labels: Vec<Vec<u8>> = scenes.iter().map(|s| source.label(s, world, 3).labels).collect();
    let predicted: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
    let truth: Vec<&[u8]> = scenes.iter().map(|s| s.truth.labels.as_slice()).collect();
    let shape = MapShape { width: world.size, height: world.size, classes: world.num_classes() };
    truth_scores(&predicted, &truth, shape, DEFAULT_MAX_OFFSET)
}

#[test]
fn manual_dilation_by_one_pixel_measures_about_plus_one() {
    let world = WorldConfig::default();
    let scenes = generate_world(&world, 11, 0, 40, Style::Real);
    let manual = LabelSource::Manual(ManualBias { dilate: 1.0, ..ManualBias::default() });
    let offset = offset_and_scores(&scenes, &manual, &world).boundary_offset.unwrap();
    assert!((offset - 1.0).abs() < 0.2, "manual dilate=1 measured {offset:+.3} px");
    let eroded = LabelSource::Manual(ManualBias { dilate: -1.0, ..ManualBias::default() });
    let offset = offset_and_scores(&scenes, &eroded, &world).boundary_offset.unwrap();
    assert!((offset + 1.0).abs() < 0.25, "manual dilate=-1 measured {offset:+.3} px");
    let exact = offset_and_scores(&scenes, &LabelSource::Exact, &world);
    assert_eq!((exact.boundary_offset, exact.miou), (Some(0.0), 1.0));
}

#[test]
fn heuristic_misses_low_contrast_objects() {
    let world = WorldConfig { low_contrast: 0.5, ..WorldConfig::default() };
    let scenes = generate_world(&world, 12, 0, 40, Style::Real);
    let heuristic = LabelSource::Heuristic(HeuristicRules::default());
    let (mut faint, mut faint_hit, mut strong, mut strong_hit) = (0u64, 0u64, 0u64, 0u64);
    for s in &scenes {
        let labels = heuristic.label(s, &world, 0);
        for (i, &inst) in s.instances.iter().enumerate() {
            if inst == 0 {
                continue;
            }
            let hit = u64::from(labels.labels[i] != 0);
            if s.objects[usize::from(inst) - 1].low_contrast {
                faint += 1;
                faint_hit += hit;
            } else {
                strong += 1;
                strong_hit += hit;
            }
        }
    }
    let (faint_recall, strong_recall) = (faint_hit as f64 / faint as f64, strong_hit as f64 / strong as f64);
    assert!(faint_recall < 0.1, "low-contrast pixel recall {faint_recall:.3}");
    assert!(strong_recall > 0.9, "normal-contrast pixel recall {strong_recall:.3}");
}
