//! Tests of `intervals`.

use super::*;
use echoseg_agree::Subgroups;

/// A 32 × 32 image with a disc of class 1 of radius `r` centred at (`cx`, 16).
fn disc(r: f32, cx: f32) -> Vec<u8> {
    (0..32 * 32)
        .map(|i| {
            let (x, y) = ((i % 32) as f32 + 0.5 - cx, (i / 32) as f32 + 0.5 - 16.0);
            u8::from((x * x + y * y).sqrt() <= r)
        })
        .collect()
}

fn counts(predicted: &[u8], truth: &[u8]) -> ImageCounts {
    let none = vec![false; truth.len()];
    let groups = Subgroups { thin: None, small: &none, low_contrast: &none, shadow: &none };
    ImageCounts {
        confusion: Confusion::from_maps(truth, predicted, 2),
        fingerprint: FingerprintCounts::of_image(predicted, truth, 32, 32, 2, &groups),
        cue: None,
        synthetic: None,
    }
}

/// Two seeds of 12 images each; `after` predicts every disc dilated by `grow` px.
fn study(before_grow: f32, after_grow: f32) -> Vec<Vec<(ImageCounts, ImageCounts)>> {
    (0..2)
        .map(|seed| {
            (0..12)
                .map(|i| {
                    let (r, cx) = (5.0 + (i % 4) as f32, 12.0 + (i + seed) as f32 % 8.0);
                    let truth = disc(r, cx);
                    (counts(&disc(r + before_grow, cx), &truth), counts(&disc(r + after_grow, cx), &truth))
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_dilation_that_grows_from_one_to_two_px_grows_with_an_interval_around_one() {
    let c = compare(&study(1.0, 2.0), &Metric::Bias(Bias::BoundaryOffset), 0.25, &BootstrapConfig::default()).unwrap();
    assert!((c.before.estimate - 1.0).abs() < 0.25, "{c:?}");
    assert!((c.after.estimate - 2.0).abs() < 0.25, "{c:?}");
    assert!(c.change.low > 0.5 && c.change.high < 1.5, "{c:?}");
    assert_eq!(c.verdict, Verdict::Grows);
    let factor = c.factor.unwrap();
    assert!(factor.low > 1.5 && factor.high < 2.5, "{factor:?}");
}

#[test]
fn a_shrinking_offset_shrinks_and_an_unchanged_one_holds() {
    assert_eq!(
        compare(&study(2.0, 0.0), &Metric::Bias(Bias::BoundaryOffset), 0.25, &BootstrapConfig::default()).unwrap().verdict,
        Verdict::Shrinks
    );
    let same = compare(&study(1.0, 1.0), &Metric::Bias(Bias::BoundaryOffset), 0.25, &BootstrapConfig::default()).unwrap();
    assert_eq!(same.verdict, Verdict::Holds);
    assert_eq!((same.change.low, same.change.high), (0.0, 0.0));
}

#[test]
fn a_committee_is_judged_against_its_best_member() {
    let units: Vec<GapUnit> = (0..8)
        .map(|i| {
            let (r, cx) = (5.0 + (i % 4) as f32, 12.0 + i as f32);
            let truth = disc(r, cx);
            let grown = |by: f32| counts(&disc(r + by, cx), &truth);
            GapUnit { teachers: vec![grown(3.0), grown(1.0), grown(2.0)], student: grown(0.5), ceiling: grown(0.0) }
        })
        .collect();
    let all: Vec<&GapUnit> = units.iter().collect();
    let member = |m: usize| metric(&Metric::Miou, &all.iter().map(|u| &u.teachers[m]).collect::<Vec<_>>()).unwrap();
    assert!(member(1) > member(2) && member(2) > member(0));
    assert_eq!(teacher_miou(&all), Some(member(1)), "the 1-px member is the best");
    let alone: Vec<GapUnit> = units.iter().map(|u| GapUnit { teachers: vec![u.teachers[0].clone()], ..u.clone() }).collect();
    assert_eq!(teacher_miou(&alone.iter().collect::<Vec<_>>()), Some(member(0)), "a single teacher is itself");
}

#[test]
fn pretraining_verdicts_name_directions_of_miou_apart_from_biases() {
    for v in PretrainingVerdict::ALL {
        assert_eq!(PretrainingVerdict::from_name(v.name()), Some(v));
    }
    assert_eq!(PretrainingVerdict::of(&Metric::Miou, Verdict::Amplifies), PretrainingVerdict::Raises);
    assert_eq!(PretrainingVerdict::of(&Metric::Miou, Verdict::Holds), PretrainingVerdict::Holds);
    assert_eq!(PretrainingVerdict::of(&Metric::Bias(Bias::ThinRecall), Verdict::Cancels), PretrainingVerdict::Cancels);
}
