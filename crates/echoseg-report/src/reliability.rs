//! Calibration diagrams: per model, accuracy against confidence in each probability bin, from
//! the reliability bins every run keeps in its `outcome.json`.

use echoseg_agree::Calibration;
use echoseg_study::read::read_json;
use echoseg_study::read::{RunOutcome, StudyDir};

use crate::figures::{LineGrid, LinePanel, Series, groups};
use echoseg_study::read::ResultRow;

/// Reliability diagrams at generation 0 and at the last generation of each strategy shown
/// ([`crate::figures::shown`]), the bins
/// pooled over seeds; `None` when no run kept its bins (older studies, no truth).
pub fn reliability_diagrams(dir: &StudyDir, rows: &[ResultRow], models: &[String]) -> Option<LineGrid> {
    let last = rows.iter().filter(|r| r.is_model()).map(|r| r.generation).max().unwrap_or(0);
    let groups: Vec<(i64, echoseg_study::read::Treatment)> = groups(rows).into_iter().filter(|(g, _)| *g == 0 || *g == last).collect();
    let panels: Vec<LinePanel> = groups
        .iter()
        .filter_map(|(g, s)| {
            let mut series: Vec<Series> = models
                .iter()
                .enumerate()
                .filter_map(|(mi, m)| {
                    let mut runs: Vec<&str> = rows
                        .iter()
                        .filter(|r| r.is_model() && r.chain && r.generation == *g && &r.treatment == s && &r.model == m)
                        .map(|r| r.run.as_str())
                        .collect();
                    runs.sort();
                    runs.dedup();
                    let mut pooled = Calibration::default();
                    for run in runs {
                        pooled.merge(&read_json::<RunOutcome>(&dir.run(run).outcome()).ok()?.calibration?);
                    }
                    let points: Vec<(f64, f64)> = (0..pooled.count.len())
                        .filter(|&b| pooled.count[b] > 0)
                        .map(|b| (pooled.confidence[b] / pooled.count[b] as f64, pooled.correct[b] as f64 / pooled.count[b] as f64))
                        .collect();
                    (!points.is_empty()).then(|| Series { label: m.clone(), colour: mi, dashed: false, points, band: Vec::new() })
                })
                .collect();
            if series.is_empty() {
                return None;
            }
            series.push(Series {
                label: "perfect calibration".into(),
                colour: 7,
                dashed: true,
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                band: Vec::new(),
            });
            let title = if *g == 0 { "generation 0".to_string() } else { format!("generation {g}, {s}") };
            Some(LinePanel {
                title,
                x_label: "mean top-class probability in bin".into(),
                y_label: "accuracy in bin".into(),
                series,
                references: Vec::new(),
                integer_x: false,
            })
        })
        .collect();
    (!panels.is_empty()).then_some(LineGrid { panels, columns: 3 })
}
