//! The score tables: every model's estimates, the sources against truth, per-class scores and
//! surface distances.

use std::collections::BTreeSet;

use echoseg_agree::{Bias, Metric};
use echoseg_study::read::Treatment;
use echoseg_study::read::{ResultRow, SummaryRow};

use crate::figures::groups;
use crate::html::{Table, cell, interval_cell, number};
use crate::summaries::{metric_of, summary_of};

/// Per model, generation, treatment and teacher: mIoU and boundary offset (with intervals where
/// the summary has them), then the per-class and subgroup columns.
pub(crate) fn scores_table(rows: &[ResultRow], summary: &[SummaryRow], models: &[String], class_metrics: &[Metric]) -> Table {
    let offset = Bias::BoundaryOffset;
    let mut header: Vec<String> = ["model", "generation", "strategy", "teacher", "mIoU"].iter().map(|s| s.to_string()).collect();
    header.push(offset.display_name());
    header.extend(class_metrics.iter().map(column_title));
    let mut keys: Vec<(i64, Treatment, usize, String)> = rows
        .iter()
        .filter(|r| r.is_model())
        .map(|r| (r.generation, r.treatment.clone(), models.iter().position(|m| *m == r.model).unwrap_or(0), r.teacher.clone()))
        .collect();
    keys.sort_by_cached_key(|(g, s, mi, t)| (*g, s.to_string(), *mi, t.clone()));
    keys.dedup();
    let table_rows = keys
        .iter()
        .map(|(g, s, mi, t)| {
            let of = |metric: &Metric| {
                metric_of(
                    rows,
                    |r| r.is_model() && r.generation == *g && &r.treatment == s && r.model == models[*mi] && &r.teacher == t,
                    metric,
                )
            };
            let mut cells = vec![
                cell(&models[*mi]),
                cell(&g.to_string()),
                cell(&s.to_string()),
                cell(t),
                match summary_of(summary, *g, s, &models[*mi], t, &Metric::Miou) {
                    Some(v) => interval_cell(Some(v), 3, false),
                    None => number(of(&Metric::Miou), 3, false),
                },
                match summary_of(summary, *g, s, &models[*mi], t, &offset.into()) {
                    Some(v) => interval_cell(Some(v), offset.decimals(), offset.signed()),
                    None => number(of(&offset.into()), offset.decimals(), offset.signed()),
                },
            ];
            // The extra columns are compact, unsigned thousandths (the domain gap included).
            cells.extend(class_metrics.iter().map(|m| number(of(m), 3, false)));
            cells
        })
        .collect();
    Table { header, rows: table_rows }
}

/// Per model of each generation and strategy: mean disagreement with the other models and STAPLE's
/// estimated sensitivity per class (repeat means), the numbers a study without truth can give.
pub(crate) fn estimates_table(rows: &[ResultRow], models: &[String]) -> Table {
    let classes: Vec<&str> = rows
        .iter()
        .filter_map(|r| match &r.metric {
            Metric::StapleSensitivity(class) => Some(class.as_str()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut header: Vec<String> =
        ["model", "generation", "strategy", "mean disagreement with the others"].iter().map(|s| s.to_string()).collect();
    header.extend(classes.iter().map(|c| format!("STAPLE sensitivity {c}")));
    let table_rows = groups(rows)
        .iter()
        .flat_map(|(g, s)| models.iter().map(move |m| (*g, s.clone(), m)))
        .filter_map(|(g, s, m)| {
            let disagreement = metric_of(
                rows,
                |r| r.is_pair() && r.generation == g && r.treatment == s && (&r.model == m || &r.peer == m),
                &Metric::Agreement,
            )
            .map(|a| 1.0 - a);
            let of = |metric: &Metric| {
                metric_of(rows, |r| r.is_model() && r.chain && r.generation == g && r.treatment == s && &r.model == m, metric)
            };
            let sensitivities: Vec<Option<f64>> = classes.iter().map(|c| of(&Metric::StapleSensitivity(c.to_string()))).collect();
            if disagreement.is_none() && sensitivities.iter().all(Option::is_none) {
                return None;
            }
            let mut cells = vec![cell(m), cell(&g.to_string()), cell(&s.to_string()), number(disagreement, 3, false)];
            cells.extend(sensitivities.into_iter().map(|v| number(v, 3, false)));
            Some(cells)
        })
        .collect();
    Table { header, rows: table_rows }
}

/// Each source's labels against truth: mIoU, boundary offset and the extra columns.
pub(crate) fn sources_table(rows: &[ResultRow], class_metrics: &[Metric]) -> Table {
    let offset = Bias::BoundaryOffset;
    let mut names: Vec<String> = rows.iter().filter(|r| r.is_source()).map(|r| r.model.clone()).collect();
    names.dedup();
    let mut header: Vec<String> = vec!["source".into(), "mIoU vs truth".into(), offset.display_name()];
    header.extend(class_metrics.iter().map(column_title));
    let table_rows = names
        .iter()
        .map(|n| {
            let of = |metric: &Metric| metric_of(rows, |r| r.is_source() && &r.model == n, metric);
            let mut cells =
                vec![cell(n), number(of(&Metric::Miou), 3, false), number(of(&offset.into()), offset.decimals(), offset.signed())];
            cells.extend(class_metrics.iter().map(|m| number(of(m), 3, false)));
            cells
        })
        .collect();
    Table { header, rows: table_rows }
}

/// Whether a metric is one of the per-class surface metrics.
fn is_surface(metric: &Metric) -> bool {
    matches!(metric, Metric::Hd95(_) | Metric::Assd(_) | Metric::SurfaceDice(_) | Metric::ClDice(_) | Metric::SurfaceEmpty(_))
}

/// Each source, and each model per generation and treatment (means over seeds), by the
/// per-class surface metrics on the images they were scored on; `None` without any.
pub(crate) fn surface_table(rows: &[ResultRow]) -> Option<Table> {
    let mut metrics: Vec<Metric> = rows.iter().filter(|r| is_surface(&r.metric)).map(|r| r.metric.clone()).collect();
    metrics.sort();
    metrics.dedup();
    if metrics.is_empty() {
        return None;
    }
    let mut subjects: Vec<(bool, String, i64, Treatment)> = Vec::new();
    for r in rows.iter().filter(|r| is_surface(&r.metric) && (r.is_source() || r.is_model())) {
        let key = (r.is_source(), r.model.clone(), r.generation, r.treatment.clone());
        if !subjects.contains(&key) {
            subjects.push(key);
        }
    }
    // Sources first, then models by generation and treatment.
    subjects.sort_by_cached_key(|(source, model, generation, treatment)| (!source, *generation, treatment.to_string(), model.clone()));
    let mut header = vec!["labels or model".to_string()];
    header.extend(metrics.iter().map(column_title));
    let table_rows = subjects
        .iter()
        .map(|(source, model, generation, treatment)| {
            let mine =
                |r: &ResultRow| r.is_source() == *source && &r.model == model && r.generation == *generation && &r.treatment == treatment;
            let label = if *source { format!("source {model}") } else { format!("{model}, gen {generation} {treatment}") };
            let mut cells = vec![cell(&label)];
            cells.extend(metrics.iter().map(|m| {
                let decimals = match m {
                    Metric::Hd95(_) | Metric::Assd(_) => 2,
                    // A count per run, averaged over seeds for models.
                    Metric::SurfaceEmpty(_) => 1,
                    _ => 3,
                };
                number(metric_of(rows, mine, m), decimals, false)
            }));
            cells
        })
        .collect();
    Some(Table { header, rows: table_rows })
}

pub(crate) fn column_title(metric: &Metric) -> String {
    match metric {
        Metric::Iou(class) => format!("IoU {class}"),
        Metric::Hd95(class) => format!("HD95 {class} (px)"),
        Metric::Assd(class) => format!("ASSD {class} (px)"),
        Metric::SurfaceDice(class) => format!("surface Dice {class}"),
        Metric::ClDice(class) => format!("clDice {class}"),
        Metric::SurfaceEmpty(class) => format!("images with {class} in one mask only"),
        Metric::Ece => "ECE".into(),
        Metric::Bias(Bias::BoundaryF1) => Bias::BoundaryF1.display_name(),
        other => other.name().replace('_', " ").replace("fp rate", "FP rate"),
    }
}
