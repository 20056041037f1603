//! Tests of `figures`.

use super::*;

#[test]
fn tick_labels_stay_distinct_on_narrow_and_wide_axes() {
    // (range, the finest step plotters takes for it): 0.05 wide gives ticks 0.005 apart.
    for (lo, hi, step) in [(0.01, 0.06, 0.005), (0.0, 0.2, 0.02), (0.3, 1.0, 0.1), (0.0, 30.0, 5.0), (-0.4, 0.4, 0.1)] {
        let decimals = tick_decimals(lo, hi);
        let labels: Vec<String> = (0..10).map(|i| format!("{:.*}", decimals, lo + f64::from(i) * step)).collect();
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "{lo}..{hi}: {labels:?}");
    }
    assert_eq!(tick_decimals(0.0, 30.0), 0, "whole pixels need no decimals");
}

#[test]
fn losses_over_seeds_are_a_median_and_the_middle_half_per_epoch() {
    let row = |repeat: i64, epoch: i64, val: Option<f64>| HistoryRow {
        run: format!("r{repeat}"),
        model: "fcn".into(),
        generation: 0,
        treatment: Treatment::Labels,
        teacher: String::new(),
        repeat,
        epoch,
        train_loss: 1.0,
        val_loss: val,
    };
    let rows = [
        row(0, 1, Some(0.5)),
        row(1, 1, Some(3.0)),
        row(2, 1, Some(0.7)),
        row(3, 1, Some(0.6)),
        row(4, 1, Some(0.4)),
        row(0, 2, Some(0.4)),
        row(1, 2, None),
        row(2, 2, Some(0.2)),
    ];
    let refs: Vec<&HistoryRow> = rows.iter().collect();
    let over = over_seeds(&refs, |h| h.val_loss);
    // Epoch 1 sorted: 0.4 0.5 0.6 0.7 3.0; epoch 2: 0.2 0.4 (seed 1 has no value).
    assert_eq!(over.len(), 2);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(over[0].median, 0.6) && close(over[0].low, 0.5) && close(over[0].high, 0.7), "{:?}: the spike stays out", over[0]);
    assert!(close(over[1].median, 0.3) && close(over[1].low, 0.25) && close(over[1].high, 0.35), "{:?}", over[1]);
}
