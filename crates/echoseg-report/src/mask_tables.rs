//! Which masks are wrong and whether the outputs beat each input: the label-issue tables and the
//! committee masks against every source.

use echoseg_agree::{Bias, Metric};
use echoseg_study::read::MaskKind;
use echoseg_study::read::WorstIndex;
use echoseg_study::read::{LabelConfusionRow, LabelIssueQualityRow, MaskRow};

use crate::html::{Table, cell, number};
use crate::score_tables::column_title;

/// Per source and scorer: how well label-issue scores rank images by their true error share and
/// how right the flagged pixels are (truth columns empty without truth).
pub(crate) fn label_quality_table(quality: &[LabelIssueQualityRow]) -> Table {
    let header = ["source", "scorer", "images", "true error share", "AUROC", "flagged share", "flagged precision", "flagged recall"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = quality
        .iter()
        .map(|q| {
            vec![
                cell(&q.source),
                cell(&q.scorer),
                number(Some(q.images as f64), 0, false),
                number(q.error_share, 3, false),
                number(q.auroc, 3, false),
                number(Some(q.flagged_share), 4, false),
                number(q.flagged_precision, 3, false),
                number(q.flagged_recall, 3, false),
            ]
        })
        .collect();
    Table { header, rows }
}

/// The worst images of the label-issue figure, in its order.
pub(crate) fn worst_table(worst: &WorstIndex) -> Table {
    let header = ["row", "source", "image", "score", "true error share"].iter().map(|s| s.to_string()).collect();
    let rows = worst
        .images
        .iter()
        .enumerate()
        .map(|(k, w)| {
            vec![
                cell(&(k + 1).to_string()),
                cell(&w.source),
                cell(&w.image),
                number(Some(w.score), 3, false),
                number(w.error_share, 3, false),
            ]
        })
        .collect();
    Table { header, rows }
}

/// The largest off-diagonal given → predicted counts of each source (at most five per source), as
/// pixels and as a share of the pixels given that class; `None` when there are none.
pub(crate) fn confusions_table(confusions: &[LabelConfusionRow]) -> Option<Table> {
    let given_total =
        |c: &LabelConfusionRow| -> i64 { confusions.iter().filter(|o| o.source == c.source && o.given == c.given).map(|o| o.pixels).sum() };
    let mut sources: Vec<&str> = confusions.iter().map(|c| c.source.as_str()).collect();
    sources.dedup();
    let mut rows = Vec::new();
    for source in sources {
        let mut off: Vec<&LabelConfusionRow> =
            confusions.iter().filter(|c| c.source == source && c.given != c.predicted && c.pixels > 0).collect();
        off.sort_by_key(|c| std::cmp::Reverse(c.pixels));
        for c in off.into_iter().take(5) {
            let share = c.pixels as f64 / given_total(c).max(1) as f64;
            rows.push(vec![
                cell(&c.source),
                cell(&format!("{} → {}", c.given, c.predicted)),
                number(Some(c.pixels as f64), 0, false),
                number(Some(share), 3, false),
            ]);
        }
    }
    let header = ["source", "given → predicted", "pixels", "share of given"].iter().map(|s| s.to_string()).collect();
    (!rows.is_empty()).then_some(Table { header, rows })
}

/// Sources and committee masks (rows) by mIoU, every bias measured and per class ASSD and clDice
/// (columns; `masks.csv` has HD95 and surface Dice too); `None` without any.
pub(crate) fn masks_table(masks: &[MaskRow]) -> Option<Table> {
    let mut metrics: Vec<&Metric> = Vec::new();
    let mut names: Vec<(&str, MaskKind)> = Vec::new();
    let shown = |m: &Metric| matches!(m, Metric::Miou | Metric::Bias(_) | Metric::Assd(_) | Metric::ClDice(_));
    for m in masks {
        if shown(&m.metric) && !metrics.contains(&&m.metric) {
            metrics.push(&m.metric);
        }
        if !names.iter().any(|(n, _)| *n == m.mask) {
            names.push((m.mask.as_str(), m.kind));
        }
    }
    let mut header = vec!["mask".to_string(), "test images".to_string()];
    header.extend(metrics.iter().map(|m| match m {
        Metric::Miou => "mIoU".to_string(),
        Metric::Bias(b) => b.display_name(),
        other => column_title(other),
    }));
    let rows = names
        .iter()
        .map(|&(name, kind)| {
            let mine: Vec<&MaskRow> = masks.iter().filter(|m| m.mask == name).collect();
            let label = if kind == MaskKind::Source { format!("source {name}") } else { name.to_string() };
            let mut row = vec![cell(&label), number(mine.first().map(|m| m.images as f64), 0, false)];
            row.extend(metrics.iter().map(|metric| {
                let value = mine.iter().find(|m| &m.metric == *metric).map(|m| m.value);
                let decimals = match metric {
                    Metric::Bias(b) => b.decimals(),
                    Metric::Assd(_) => 2,
                    _ => 3,
                };
                number(value, decimals, metric.signed())
            }));
            row
        })
        .collect();
    (!names.is_empty()).then_some(Table { header, rows })
}

/// The answer in words: the best committee mask against the best source in mIoU, and the biases
/// in which it is nearer the truth than every source; `None` without both.
pub(crate) fn masks_sentence(masks: &[MaskRow]) -> Option<String> {
    let best =
        |kind: MaskKind| masks.iter().filter(|m| m.kind == kind && m.metric == Metric::Miou).max_by(|a, b| a.value.total_cmp(&b.value));
    let (committee, source) = (best(MaskKind::Committee)?, best(MaskKind::Source)?);
    let relation = if (committee.value - source.value).abs() < 0.005 {
        "level with"
    } else if committee.value > source.value {
        "above"
    } else {
        "below"
    };
    let (mut nearer, mut not) = (Vec::new(), Vec::new());
    for bias in Bias::ALL {
        let size = |m: &MaskRow| (m.metric == Metric::Bias(bias)).then(|| bias.size(m.value));
        let Some(mine) = masks.iter().filter(|m| m.mask == committee.mask).find_map(size) else { continue };
        let sources: Vec<f64> = masks.iter().filter(|m| m.kind == MaskKind::Source).filter_map(size).collect();
        if sources.is_empty() {
            continue;
        }
        if sources.iter().all(|&s| mine < s) { nearer.push(bias.display_name()) } else { not.push(bias.display_name()) }
    }
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    Some(format!(
        "The best committee mask ({}, mIoU {:.3}) is {relation} the best source ({}, {:.3}). It is nearer the truth than every source in: {}; \
         not in: {}.",
        committee.mask,
        committee.value,
        source.mask,
        source.value,
        list(&nearer),
        list(&not)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masks_answer_names_the_biases_a_committee_improves_on_every_source() {
        let m = |mask: &str, kind: MaskKind, metric: Metric, value: f64| MaskRow { mask: mask.into(), kind, metric, value, images: 40 };
        let offset = Metric::Bias(Bias::BoundaryOffset);
        let thin = Metric::Bias(Bias::ThinRecall);
        let masks = vec![
            m("manual", MaskKind::Source, Metric::Miou, 0.70),
            m("manual", MaskKind::Source, offset.clone(), 0.96),
            m("manual", MaskKind::Source, thin.clone(), 1.0),
            m("heuristic", MaskKind::Source, Metric::Miou, 0.62),
            m("heuristic", MaskKind::Source, offset.clone(), -0.14),
            m("heuristic", MaskKind::Source, thin.clone(), 0.52),
            m("committee of generation 1 cross", MaskKind::Committee, Metric::Miou, 0.72),
            m("committee of generation 1 cross", MaskKind::Committee, offset, 0.05),
            m("committee of generation 1 cross", MaskKind::Committee, thin, 0.79),
        ];
        let sentence = masks_sentence(&masks).unwrap();
        assert!(sentence.contains("(committee of generation 1 cross, mIoU 0.720) is above the best source (manual, 0.700)"), "{sentence}");
        // |+0.05| is below both |+0.96| and |−0.14|; thin recall 0.79 is below manual's 1.0.
        assert!(sentence.contains("in: boundary offset (px); not in: thin-structure recall."), "{sentence}");
    }
}
