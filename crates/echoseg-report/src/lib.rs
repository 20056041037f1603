//! Figures and the HTML report, rendered from a finished study's results tables only.
//!
//! Architecture invariant: the report never trains and never computes a metric from pixels;
//! it reads `results.parquet`, `history.parquet`, `provenance.json` and the manifest copy, so
//! `echoseg report NAME` re-renders a finished study in seconds.

pub mod chart;
pub mod figures;
pub mod html;
pub mod reliability;
pub mod results;
pub mod samples;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use echoseg_study::StudyDir;
use echoseg_study::provenance::Provenance;
use echoseg_study::store::{read_json, write_atomic};

use crate::chart::Chart;
use crate::figures::{
    LineGrid, SELECTION_BIASES, agreement_heatmaps, agreement_without_truth, groups, loss_curves, model_names, selection_effect,
    trajectory, transfer_matrices,
};
use crate::html::{Page, Table, cell, escape, interval_cell, number, with_interval};
use crate::results::{
    PretrainingRow, ResultRow, SummaryRow, TargetRow, VerdictRow, read_history, read_pretraining, read_results, read_summary, read_targets,
    read_verdicts,
};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The study's files are missing or unreadable.
    #[error(transparent)]
    Study(#[from] echoseg_study::StudyError),
    /// A results table lacks a column or has the wrong types.
    #[error("results table {}: {message}", path.display())]
    Table {
        /// The table file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A figure could not be drawn.
    #[error("drawing a figure failed: {0}")]
    Figure(String),
    /// There is nothing to report.
    #[error("{} holds no finished study (no results.parquet); run `echoseg run MANIFEST` first", .0.display())]
    NoResults(PathBuf),
}

struct Written {
    files: BTreeSet<String>,
}

impl Written {
    /// Writes a figure as PNG (and SVG when line art) under a content-derived name, so the
    /// previous page's figures stay intact until the new page replaces it.
    fn figure<C: Chart>(&mut self, dir: &StudyDir, stem: &str, chart: &C, with_svg: bool) -> Result<String, ReportError> {
        let png = chart::png(chart)?;
        let name = format!("{stem}-{}.png", &echoseg_study::plan::settings_hash(&png)[..10]);
        write_atomic(&dir.figures().join(&name), &png)?;
        self.files.insert(name.clone());
        if with_svg {
            let svg = chart::svg(chart)?;
            let svg_name = name.replace(".png", ".svg");
            write_atomic(&dir.figures().join(&svg_name), svg.as_bytes())?;
            self.files.insert(svg_name);
        }
        Ok(format!("figures/{name}"))
    }

    /// Writes `chart` when there is one (see [`Written::figure`]).
    fn figure_if<C: Chart>(&mut self, dir: &StudyDir, stem: &str, chart: Option<C>, with_svg: bool) -> Result<Option<String>, ReportError> {
        chart.map(|c| self.figure(dir, stem, &c, with_svg)).transpose()
    }
}

fn metric_of(rows: &[ResultRow], subject: impl Fn(&ResultRow) -> bool, metric: &str) -> Option<f64> {
    let values: Vec<f64> = rows.iter().filter(|r| subject(r) && r.metric == metric).map(|r| r.value).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn lead(rows: &[ResultRow], models: &[String]) -> String {
    let sources: Vec<String> = rows
        .iter()
        .filter(|r| r.is_source() && r.metric == "boundary_offset")
        .map(|r| format!("{} ({:+.2} px boundary offset)", r.model, r.value))
        .collect();
    let max_gen = rows.iter().filter(|r| r.is_model()).map(|r| r.generation).max().unwrap_or(0);
    let mut parts = vec![format!("Trained on mixed labels from {}:", sources.join(" and "))];
    for m in models {
        let at = |g: i64, s: &str, metric: &str| {
            metric_of(rows, |r| r.is_model() && r.chain && &r.model == m && r.generation == g && r.strategy == s, metric)
        };
        let (Some(miou), Some(offset)) = (at(0, "labels", "miou"), at(0, "labels", "boundary_offset")) else { continue };
        let mut sentence = format!("{m} reached mIoU {miou:.3} with a boundary offset of {offset:+.2} px");
        let later: Vec<String> = groups(rows)
            .into_iter()
            .filter(|(g, _)| *g == max_gen && max_gen > 0)
            .filter_map(|(g, s)| {
                at(g, &s, "boundary_offset").zip(at(g, &s, "miou")).map(|(o, q)| format!("{o:+.2} px (mIoU {q:.3}) with {s}"))
            })
            .collect();
        if !later.is_empty() {
            sentence.push_str(&format!(
                "; after {max_gen} generation{} of pseudo-labels: {}",
                if max_gen == 1 { "" } else { "s" },
                later.join(", ")
            ));
        }
        parts.push(sentence + ".");
    }
    parts.join(" ")
}

fn summary_of(summary: &[SummaryRow], g: i64, s: &str, model: &str, teacher: &str, metric: &str) -> Option<[f64; 3]> {
    summary
        .iter()
        .find(|r| r.generation == g && r.strategy == s && r.model == model && r.teacher == teacher && r.metric == metric)
        .map(|r| [r.estimate, r.low, r.high])
}

/// How a bias is named in sentences and tables.
fn bias_name(metric: &str) -> &'static str {
    match metric {
        "boundary_offset" => "boundary offset (px)",
        "boundary_f1" => "boundary F1 (2 px)",
        "thin_recall" => "thin-structure recall",
        "small_object_recall" => "small-object recall",
        "low_contrast_recall" => "low-contrast recall",
        "shadow_fp_rate" => "shadow false-positive rate",
        _ => "bias",
    }
}

/// The biases in the order the verdict table lists them.
const BIAS_ORDER: [&str; 6] =
    ["boundary_offset", "boundary_f1", "thin_recall", "small_object_recall", "low_contrast_recall", "shadow_fp_rate"];

/// One row per bias and strategy, one column per architecture, at the last generation: each cell
/// the value at generation 0 → after, the factor and the verdict (earlier generations are in
/// verdicts.csv).
fn verdict_table(verdicts: &[VerdictRow], models: &[String]) -> Table {
    let last = verdicts.iter().map(|v| v.generation).max().unwrap_or(0);
    let at_last: Vec<&VerdictRow> = verdicts.iter().filter(|v| v.generation == last).collect();
    let mut keys: Vec<(usize, &str)> =
        at_last.iter().map(|v| (BIAS_ORDER.iter().position(|b| *b == v.metric).unwrap_or(BIAS_ORDER.len()), v.strategy.as_str())).collect();
    keys.sort();
    keys.dedup();
    let columns: Vec<&String> = models.iter().filter(|m| at_last.iter().any(|v| &v.model == *m)).collect();
    let mut header: Vec<String> = vec!["bias".into(), "strategy".into()];
    header.extend(columns.iter().map(|m| format!("{m}: generation 0 → {last}")));
    let rows = keys
        .iter()
        .filter_map(|&(b, strategy)| {
            let metric = *BIAS_ORDER.get(b)?;
            let signed = metric == "boundary_offset";
            let mut cells = vec![cell(bias_name(metric)), cell(strategy)];
            for m in &columns {
                cells.push(match at_last.iter().find(|v| v.metric == metric && v.strategy == strategy && &v.model == *m) {
                    Some(v) => {
                        let before = if signed { format!("{:+.2}", v.before[0]) } else { format!("{:.2}", v.before[0]) };
                        let factor = v.factor.map(|f| format!(", ×{}", with_interval(f, 2, false))).unwrap_or_default();
                        format!(
                            "<td class=\"verdict {}\">{before} → {}<br><small>{}{}</small></td>",
                            escape(&v.verdict),
                            escape(&with_interval(v.after, 2, signed)),
                            escape(&v.verdict),
                            escape(&factor)
                        )
                    }
                    None => cell("–"),
                });
            }
            Some(cells)
        })
        .collect();
    Table { header, rows }
}

/// One plain sentence per architecture and bias that changed (and always for the boundary offset),
/// at the last generation.
fn verdict_sentences(verdicts: &[VerdictRow]) -> Vec<String> {
    let Some(last) = verdicts.iter().map(|v| v.generation).max() else { return Vec::new() };
    let mut keys: Vec<(&str, &str)> = verdicts.iter().map(|v| (v.metric.as_str(), v.model.as_str())).collect();
    keys.sort();
    keys.dedup();
    let mut sentences = Vec::new();
    for (metric, model) in keys {
        let at_last: Vec<&VerdictRow> =
            verdicts.iter().filter(|v| v.metric == metric && v.model == model && v.generation == last).collect();
        if at_last.is_empty() || (metric != "boundary_offset" && at_last.iter().all(|v| v.verdict == "holds")) {
            continue;
        }
        let signed = metric == "boundary_offset";
        let parts: Vec<String> = at_last
            .iter()
            .map(|v| {
                let factor = v.factor.map(|f| format!(", ×{}", with_interval(f, 2, false))).unwrap_or_default();
                format!("{} with {} ({}{factor})", with_interval(v.after, 2, signed), v.strategy, v.verdict)
            })
            .collect();
        sentences.push(format!(
            "The {} of {model} was {} at generation 0; after {last} generation{} of pseudo-labels it is {}.",
            bias_name(metric),
            with_interval(at_last[0].before, 2, signed),
            if last == 1 { "" } else { "s" },
            parts.join(", and ")
        ));
    }
    sentences
}

fn scores_table(rows: &[ResultRow], summary: &[SummaryRow], models: &[String], class_metrics: &[String]) -> Table {
    let mut header: Vec<String> =
        ["model", "generation", "strategy", "teacher", "mIoU", "boundary offset (px)"].iter().map(|s| s.to_string()).collect();
    header.extend(class_metrics.iter().map(|m| column_title(m)));
    let mut keys: Vec<(i64, String, usize, String)> = rows
        .iter()
        .filter(|r| r.is_model())
        .map(|r| (r.generation, r.strategy.clone(), models.iter().position(|m| *m == r.model).unwrap_or(0), r.teacher.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let table_rows = keys
        .iter()
        .map(|(g, s, mi, t)| {
            let of = |metric: &str| {
                metric_of(
                    rows,
                    |r| r.is_model() && r.generation == *g && &r.strategy == s && r.model == models[*mi] && &r.teacher == t,
                    metric,
                )
            };
            let mut cells = vec![
                cell(&models[*mi]),
                cell(&g.to_string()),
                cell(s),
                cell(t),
                match summary_of(summary, *g, s, &models[*mi], t, "miou") {
                    Some(v) => interval_cell(Some(v), 3, false),
                    None => number(of("miou"), 3, false),
                },
                match summary_of(summary, *g, s, &models[*mi], t, "boundary_offset") {
                    Some(v) => interval_cell(Some(v), 2, true),
                    None => number(of("boundary_offset"), 2, true),
                },
            ];
            cells.extend(class_metrics.iter().map(|m| number(of(m), 3, false)));
            cells
        })
        .collect();
    Table { header, rows: table_rows }
}

/// Per target, one sentence: how many configurations met it and the best one.
fn target_sentences(targets: &[TargetRow]) -> Vec<String> {
    let mut names: Vec<&str> = Vec::new();
    for t in targets {
        if !names.contains(&t.target.as_str()) {
            names.push(&t.target);
        }
    }
    names
        .iter()
        .map(|name| {
            let mine: Vec<&TargetRow> = targets.iter().filter(|t| t.target == *name).collect();
            let count = |j: &str| mine.iter().filter(|t| t.judgement == j).count();
            // The best configuration is the one furthest on the target's good side.
            let lower_is_better = name.contains('<');
            let best = mine.iter().max_by(|a, b| {
                let (x, y) = if lower_is_better { (-a.value[0], -b.value[0]) } else { (a.value[0], b.value[0]) };
                x.total_cmp(&y)
            });
            let best = best
                .map(|t| {
                    let from = if t.teacher.is_empty() { String::new() } else { format!(" from {}", t.teacher) };
                    format!(
                        "; best: {} at generation {} ({}{from}) with {}",
                        t.model,
                        t.generation,
                        t.strategy,
                        with_interval(t.value, 3, false)
                    )
                })
                .unwrap_or_default();
            format!(
                "{name}: met by {} of {} configurations, missed by {}, undecided for {} (the interval straddles the target){best}.",
                count("met"),
                mine.len(),
                count("missed"),
                count("undecided")
            )
        })
        .collect()
}

fn targets_table(targets: &[TargetRow]) -> Table {
    let last = targets.iter().map(|t| t.generation).max().unwrap_or(0);
    let header = ["target", "model", "generation", "strategy", "teacher", "value", "judgement"].iter().map(|s| s.to_string()).collect();
    let rows = targets
        .iter()
        .filter(|t| t.generation == 0 || t.generation == last)
        .map(|t| {
            vec![
                cell(&t.target),
                cell(&t.model),
                cell(&t.generation.to_string()),
                cell(&t.strategy),
                cell(&t.teacher),
                interval_cell(Some(t.value), 3, false),
                format!("<td class=\"judgement {}\">{}</td>", escape(&t.judgement), escape(&t.judgement)),
            ]
        })
        .collect();
    Table { header, rows }
}

/// One sentence per pre-trained model: what pre-training did at generation 0 to mIoU and to the
/// biases it changed, then what BYOL itself did (its loss and the spread of the embeddings).
fn pretraining_sentences(pretraining: &[PretrainingRow], rows: &[ResultRow]) -> Vec<String> {
    let mut models: Vec<(&str, &str)> = pretraining.iter().map(|p| (p.model.as_str(), p.pretrained.as_str())).collect();
    models.sort();
    models.dedup();
    models
        .into_iter()
        .map(|(model, pretrained)| {
            let at0: Vec<&PretrainingRow> =
                pretraining.iter().filter(|p| p.pretrained == pretrained && p.generation == 0 && p.strategy == "labels").collect();
            let mut parts = Vec::new();
            if let Some(m) = at0.iter().find(|p| p.metric == "miou") {
                parts.push(format!(
                    "mIoU {:.3} → {:.3} ({}, {})",
                    m.without[0],
                    m.with[0],
                    with_interval(m.change, 3, true),
                    m.verdict
                ));
            }
            let changed: Vec<String> = at0
                .iter()
                .filter(|p| p.metric != "miou" && p.verdict != "holds")
                .map(|p| format!("{} {} ({:.2} → {:.2})", p.metric.replace('_', " "), p.verdict, p.without[0], p.with[0]))
                .collect();
            parts.push(if changed.is_empty() { "no bias changed beyond its interval".into() } else { changed.join(", ") });
            let mean = |metric: &str| metric_of(rows, |r| r.is_model() && r.model == pretrained && r.generation == 0, metric);
            let byol = match (mean("byol_loss_first"), mean("byol_loss_last"), mean("byol_embedding_std_initial"), mean("byol_embedding_std_last")) {
                (Some(a), Some(b), Some(c), Some(d)) => format!(
                    " BYOL's loss fell from {a:.2} to {b:.2} (first to last epoch, mean over seeds; 2 = unrelated, 0 = aligned) \
                     while the per-channel spread of the unit embeddings went from {c:.3} to {d:.3} (0 would be a collapsed representation)."
                ),
                _ => String::new(),
            };
            format!("{pretrained} against {model} at generation 0: {}.{byol}", parts.join("; "))
        })
        .collect()
}

/// The pre-training comparisons at generation 0 and the last generation.
fn pretraining_table(pretraining: &[PretrainingRow]) -> Table {
    let last = pretraining.iter().map(|p| p.generation).max().unwrap_or(0);
    let header =
        ["model", "generation", "strategy", "metric", "without", "with", "change", "verdict"].iter().map(|s| s.to_string()).collect();
    let rows = pretraining
        .iter()
        .filter(|p| p.generation == 0 || p.generation == last)
        .map(|p| {
            let signed = p.metric == "boundary_offset";
            vec![
                cell(&format!("{} vs {}", p.pretrained, p.model)),
                cell(&p.generation.to_string()),
                cell(&p.strategy),
                cell(&p.metric),
                interval_cell(Some(p.without), 3, signed),
                interval_cell(Some(p.with), 3, signed),
                interval_cell(Some(p.change), 3, true),
                format!("<td class=\"verdict {}\">{}</td>", escape(&p.verdict), escape(&p.verdict)),
            ]
        })
        .collect();
    Table { header, rows }
}

/// Per strategy (with its selection) and generation: what the selection kept, how right the kept
/// pseudo-labels were, and the chain models' scores and biases (means over architectures and seeds).
fn selection_table(rows: &[ResultRow]) -> Option<Table> {
    let mut keys: Vec<(i64, String)> =
        rows.iter().filter(|r| r.is_model() && r.metric == "kept_fraction").map(|r| (r.generation, r.strategy.clone())).collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return None;
    }
    let mut header: Vec<String> = ["strategy", "generation", "kept share", "pseudo-label accuracy before → after selection", "mIoU"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(SELECTION_BIASES.iter().map(|(_, name)| name.to_string()));
    let table_rows = keys
        .iter()
        .map(|(g, s)| {
            let of = |metric: &str| metric_of(rows, |r| r.is_model() && r.chain && r.generation == *g && &r.strategy == s, metric);
            let accuracy = match (of("pseudo_accuracy_before"), of("pseudo_accuracy_after")) {
                (Some(a), Some(b)) => cell(&format!("{a:.3} → {b:.3}")),
                _ => cell("no truth for the pool"),
            };
            let mut cells =
                vec![cell(s), cell(&g.to_string()), number(of("kept_fraction"), 3, false), accuracy, number(of("miou"), 3, false)];
            cells.extend(
                SELECTION_BIASES.iter().map(|(m, _)| number(of(m), if *m == "boundary_offset" { 2 } else { 3 }, *m == "boundary_offset")),
            );
            cells
        })
        .collect();
    Some(Table { header, rows: table_rows })
}

/// Per model of each generation and strategy: mean disagreement with the other models and STAPLE's
/// estimated sensitivity per class (repeat means), the numbers a study without truth can give.
fn estimates_table(rows: &[ResultRow], models: &[String]) -> Table {
    let mut classes: Vec<&str> =
        rows.iter().filter_map(|r| r.metric.strip_prefix("staple_sensitivity_")).collect::<BTreeSet<_>>().into_iter().collect();
    classes.sort();
    let mut header: Vec<String> =
        ["model", "generation", "strategy", "mean disagreement with the others"].iter().map(|s| s.to_string()).collect();
    header.extend(classes.iter().map(|c| format!("STAPLE sensitivity {c}")));
    let table_rows = groups(rows)
        .iter()
        .flat_map(|(g, s)| models.iter().map(move |m| (*g, s.clone(), m)))
        .filter_map(|(g, s, m)| {
            let disagreement =
                metric_of(rows, |r| r.is_pair() && r.generation == g && r.strategy == s && (&r.model == m || &r.peer == m), "agreement")
                    .map(|a| 1.0 - a);
            let of = |metric: &str| {
                metric_of(rows, |r| r.is_model() && r.chain && r.generation == g && r.strategy == s && &r.model == m, metric)
            };
            let sensitivities: Vec<Option<f64>> = classes.iter().map(|c| of(&format!("staple_sensitivity_{c}"))).collect();
            if disagreement.is_none() && sensitivities.iter().all(Option::is_none) {
                return None;
            }
            let mut cells = vec![cell(m), cell(&g.to_string()), cell(&s), number(disagreement, 3, false)];
            cells.extend(sensitivities.into_iter().map(|v| number(v, 3, false)));
            Some(cells)
        })
        .collect();
    Table { header, rows: table_rows }
}

fn sources_table(rows: &[ResultRow], class_metrics: &[String]) -> Table {
    let mut names: Vec<String> = rows.iter().filter(|r| r.is_source()).map(|r| r.model.clone()).collect();
    names.dedup();
    let mut header: Vec<String> = ["source", "mIoU vs truth", "boundary offset (px)"].iter().map(|s| s.to_string()).collect();
    header.extend(class_metrics.iter().map(|m| column_title(m)));
    let table_rows = names
        .iter()
        .map(|n| {
            let of = |metric: &str| metric_of(rows, |r| r.is_source() && &r.model == n, metric);
            let mut cells = vec![cell(n), number(of("miou"), 3, false), number(of("boundary_offset"), 2, true)];
            cells.extend(class_metrics.iter().map(|m| number(of(m), 3, false)));
            cells
        })
        .collect();
    Table { header, rows: table_rows }
}

fn column_title(metric: &str) -> String {
    match metric.strip_prefix("iou_") {
        Some(class) => format!("IoU {class}"),
        None if metric == "ece" => "ECE".into(),
        None if metric == "boundary_f1" => "boundary F1 (2 px)".into(),
        None => metric.replace('_', " ").replace("fp rate", "FP rate"),
    }
}

/// Power drawn by one busy CPU core, package share included: a round figure for current server
/// and laptop cores (about 5 to 15 W), not a measurement of this machine.
const WATTS_PER_BUSY_CORE: f64 = 10.0;
/// Carbon intensity of electricity: about the world average of recent years.
const GRAMS_CO2E_PER_KWH: f64 = 400.0;

/// Energy in Wh and emissions in g CO2e of `cpu_seconds` of busy CPU time.
fn energy_estimate(cpu_seconds: f64) -> (f64, f64) {
    let watt_hours = cpu_seconds * WATTS_PER_BUSY_CORE / 3600.0;
    (watt_hours, watt_hours / 1000.0 * GRAMS_CO2E_PER_KWH)
}

fn provenance_table(p: &Provenance) -> Table {
    let row = |k: &str, v: String| vec![cell(k), cell(&v)];
    let mut rows = vec![
        row("echoseg", p.echoseg_version.clone()),
        row("git revision", p.git_revision.clone().unwrap_or_else(|| "not a git checkout".into())),
        row("burn", p.burn_version.clone()),
        row("device", p.device.clone()),
        row("threads", p.threads.to_string()),
        row("command", p.command.clone()),
        row("architectures", p.architectures.join(", ")),
        row(
            "generations and seeds",
            format!("{} generation(s) after generation 0, {} seed(s), manifest seed {}", p.generations, p.repeats, p.seed),
        ),
        row("wall time", format!("{:.1} s", p.wall_seconds)),
        row("runs trained / reused", format!("{} / {}", p.runs_trained, p.runs_reused)),
    ];
    if let Some(cpu) = p.cpu_seconds {
        rows.push(row("CPU time", format!("{cpu:.1} s")));
        let (watt_hours, grams) = energy_estimate(cpu);
        rows.push(row(
            "energy and CO2 (estimate)",
            format!(
                "{watt_hours:.2} Wh, {grams:.1} g CO2e: CPU time × {WATTS_PER_BUSY_CORE} W per busy core, \
                 {GRAMS_CO2E_PER_KWH} g CO2e per kWh; not measured"
            ),
        ));
    }
    Table { header: vec!["what".into(), "value".into()], rows }
}

/// Renders `reports/NAME/index.html` and its figures from the study's tables; returns the page path.
///
/// Figures get content-derived names and the page is replaced atomically last, so an
/// interrupted render leaves the previous report whole; figures no longer referenced are removed.
pub fn render(dir: &StudyDir) -> Result<PathBuf, ReportError> {
    if !dir.results_parquet().exists() {
        return Err(ReportError::NoResults(dir.root().to_path_buf()));
    }
    let rows = read_results(&dir.results_parquet())?;
    let history = read_history(&dir.history_parquet())?;
    let summary = read_summary(&dir.summary_parquet())?;
    let verdicts = read_verdicts(&dir.verdicts_parquet())?;
    let targets = read_targets(&dir.targets_parquet())?;
    let pretraining = read_pretraining(&dir.pretraining_parquet())?;
    let provenance: Option<Provenance> = read_json(&dir.provenance()).ok();
    let name = dir.root().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let models = model_names(&rows);
    // Per-class IoU, then every subgroup fingerprint the data could measure.
    let mut class_metrics: Vec<String> = rows.iter().filter(|r| r.metric.starts_with("iou_")).map(|r| r.metric.clone()).collect();
    class_metrics.sort();
    class_metrics.dedup();
    for m in
        ["boundary_f1", "ece", "thin_recall", "small_object_recall", "low_contrast_recall", "shadow_fp_rate", "cue_reliance", "domain_gap"]
    {
        if rows.iter().any(|r| r.metric == m) {
            class_metrics.push(m.to_string());
        }
    }

    // Without truth (real folder data) nothing can be scored against it: the page says so and
    // leads with what agreement alone can estimate; figures of scores are not drawn.
    let has_truth = rows.iter().any(|r| r.is_model() && r.metric == "miou");
    let mut written = Written { files: BTreeSet::new() };
    let fingerprint = has_truth.then(|| LineGrid {
        panels: vec![
            trajectory(
                &rows,
                &summary,
                "boundary_offset",
                "boundary offset by generation",
                "boundary offset (px, + = over-segmented)",
                &models,
            ),
            trajectory(&rows, &summary, "miou", "mIoU by generation", "mIoU against truth", &models),
        ],
        columns: 2,
    });
    let fingerprint_src = written.figure_if(dir, "fingerprint", fingerprint, true)?;
    // Subgroup scores: every subgroup recall and false-positive rate the data could measure.
    let subgroup_panels: Vec<_> = [
        ("thin_recall", "thin-structure recall"),
        ("small_object_recall", "small-object recall"),
        ("low_contrast_recall", "low-contrast recall"),
        ("shadow_fp_rate", "shadow false-positive rate"),
    ]
    .iter()
    .filter(|(m, _)| rows.iter().any(|r| r.is_model() && r.metric == *m))
    .map(|&(m, title)| trajectory(&rows, &summary, m, title, title, &models))
    .collect();
    let subgroups = (!subgroup_panels.is_empty()).then_some(LineGrid { panels: subgroup_panels, columns: 2 });
    let subgroups_src = written.figure_if(dir, "subgroups", subgroups, true)?;
    let kappa_src = written.figure(dir, "kappa", &agreement_heatmaps(&rows, &models, "kappa"), true)?;
    let error_phi = rows.iter().any(|r| r.is_pair() && r.metric == "error_phi").then(|| agreement_heatmaps(&rows, &models, "error_phi"));
    let error_phi_src = written.figure_if(dir, "error-correlation", error_phi, true)?;
    let transfer_src = written.figure_if(dir, "transfer", transfer_matrices(&rows, &models), true)?;
    let loss_src = written.figure(dir, "loss", &loss_curves(&history, &models), true)?;
    let scatter_src = written.figure_if(dir, "without-truth", agreement_without_truth(&rows), true)?;
    // Panels are pixel art: PNG only.
    let samples_src = written.figure_if(dir, "samples", samples::sample_panels(dir, &rows, &models), false)?;
    let reliability_src = written.figure_if(dir, "calibration", reliability::reliability_diagrams(dir, &rows, &models), true)?;
    let selection_src = written.figure_if(dir, "selection", selection_effect(&rows), true)?;

    let mut page = Page::new(&format!("echoseg report: {name}"));
    // The fingerprint figure exists exactly when the study has truth.
    if let Some(fingerprint_src) = &fingerprint_src {
        page.raw(&format!("<p class=\"lead\">{}</p>", escape(&lead(&rows, &models))));
        page.heading("verdict", "Verdict: which biases amplify, which cancel");
        if verdicts.is_empty() {
            page.paragraph("The study has no pseudo-label generation (or no truth), so there is no change of bias to judge.");
        } else {
            for sentence in verdict_sentences(&verdicts) {
                page.paragraph(&sentence);
            }
            page.paragraph(
                "Each bias of each architecture after pseudo-labelling, against the same architecture and seed at generation 0, \
                 on the same test images. Intervals are 95 % bootstrap intervals over test images and seeds (1000 resamples). \
                 A bias amplifies or cancels only when the interval of the change in its size excludes zero; otherwise it holds. \
                 Bias size: |offset| for the boundary offset, 1 − F1 for the boundary F1, 1 − recall for recalls, the rate for false positives.",
            );
            page.raw(&verdict_table(&verdicts, &models).html());
        }
        if !targets.is_empty() {
            page.heading("targets", "Targets");
            for sentence in target_sentences(&targets) {
                page.paragraph(&sentence);
            }
            page.paragraph(
                "A target is met when the whole 95 % interval of the configuration's value meets it, missed when none of it \
                 does, and undecided otherwise. The table shows generation 0 and the last generation; targets.csv has every \
                 configuration.",
            );
            page.raw(&targets_table(&targets).html());
        }
        if !pretraining.is_empty() {
            page.heading("pretraining", "Pre-training");
            for sentence in pretraining_sentences(&pretraining, &rows) {
                page.paragraph(&sentence);
            }
            page.paragraph(
                "Each pre-trained model against the same architecture trained from random weights, with the same data, \
                 seeds and place in the study (generation, strategy), paired image by image on the test images. Intervals \
                 are 95 % bootstrap intervals over test images and seeds. For mIoU the change is with − without; for a \
                 bias it is the change in its size (as in the verdict), so amplifies means pre-training made the bias \
                 larger. The table shows generation 0 and the last generation; pretraining.csv has every generation.",
            );
            page.raw(&pretraining_table(&pretraining).html());
        }
        if let Some(src) = &samples_src {
            page.heading("samples", "Sample test images");
            page.figure(
                src,
                "test images with their truth, each source's labels, each model's prediction and the models' disagreement",
                "Each row is a test image. After the image: the exact truth, then what each label source draws on it (its \
                 bias is visible at the object edges and on faint objects), then each architecture's prediction at \
                 generation 0 and at the last generation (first seed), and in red where those models disagree (darker = \
                 more models outvoted). Disagreement marks only where models differ; where they share a bias it stays white.",
            );
        }
        page.heading("fingerprints", "Bias fingerprints across generations");
        page.figure(
            fingerprint_src,
            "boundary offset and mIoU per model and strategy across generations",
            "Left: the signed boundary offset of each model's test predictions against truth (+ = objects drawn too large), \
             generation 0 trained on the mixed source labels, later generations on pseudo-labels; dashed grey lines are the \
             sources' own offsets. Shaded bands: 95 % intervals over test images and seeds. A line moving away from zero \
             means the bias amplifies; towards zero, it cancels. Right: mIoU against truth.",
        );
        if let Some(src) = &subgroups_src {
            page.figure(
                src,
                "subgroup scores per model and strategy across generations",
                "Recall on thin structures, small objects and low-contrast objects, and the false-positive rate on cast \
                 shadows, of each model's test predictions against truth, with 95 % interval bands; dashed grey lines are \
                 the sources' own values. These are where label biases hide: a source that skips faint objects teaches \
                 models to skip them, and pseudo-labelling can make it worse.",
            );
        }
        if let Some(src) = &transfer_src {
            page.figure(
                src,
                "teacher to student bias transfer at generation 1",
                "Rows: teacher; columns: student. Each cell: the student's bias on the test images after one generation of \
                 learning from the teacher's pseudo-labels, every pool pixel kept; the diagonal is self-training, the rest cross-training. \
                 A column that changes along its rows says the student inherits the teacher's bias; a row that looks alike \
                 across columns says the teacher imposes it whatever the student's architecture.",
            );
        }
        page.raw(&scores_table(&rows, &summary, &models, &class_metrics).html());
    } else {
        page.raw(
            "<p class=\"lead\">The test images of this study have no ground truth, so everything measured against \
             truth is left out: the verdict on biases, targets, fingerprints, scores and calibration. What follows \
             judges the models from their outputs alone.</p>",
        );
        page.heading("estimates", "Estimates without truth");
        page.paragraph(
            "Per model: its mean disagreement with the other architectures of its generation and strategy (the share of \
             pixels labelled differently; it estimates the error rate only where models err independently, and \
             underestimates errors they share), and STAPLE's estimate of its sensitivity per class from all the models' \
             outputs. Means over seeds.",
        );
        page.raw(&estimates_table(&rows, &models).html());
        if let Some(src) = &samples_src {
            page.figure(
                src,
                "test images with each model's prediction and the models' disagreement",
                "Each row is a test image, then each architecture's prediction at generation 0 and at the last \
                 generation (first seed), and in red where those models disagree. Without truth, the truth column is empty.",
            );
        }
    }
    page.heading("agreement", "Agreement between architectures");
    page.figure(
        &kappa_src,
        "Cohen's kappa between each pair of models per generation and strategy",
        "Cohen's kappa between the test predictions of each pair of architectures, per generation and strategy \
         (1 = identical, 0 = chance-level agreement). Rising kappa across generations means the models converge; \
         whether they converge on the truth or on a shared bias, the fingerprints above tell.",
    );
    if let Some(src) = &error_phi_src {
        page.figure(
            src,
            "correlation of the models' per-pixel errors per generation and strategy",
            "Phi correlation between two models' per-pixel error indicators on the test images (1 = they err on exactly \
             the same pixels, 0 = independent errors). High values mean a committee of these models cannot outvote \
             their mistakes, and disagreement underestimates their error.",
        );
    }
    if let Some(src) = &scatter_src {
        page.heading("without-truth", "What agreement tells without truth");
        page.figure(
            src,
            "disagreement vs true error per pair, and STAPLE-estimated vs true sensitivity per model and class",
            "Left: for every pair of models of a generation and strategy, how often they disagree against their mean \
             error rate measured with truth. On the dashed y = x line, disagreement alone would estimate the error \
             (the generalisation-disagreement equality); points below it are pairs that share their errors, which \
             agreement cannot see. Right: STAPLE's estimate of each model's per-class sensitivity from the models' \
             outputs alone, against the sensitivity measured with truth: how far a study without truth can trust it.",
        );
        if let Some(fleiss) = metric_of(&rows, |r| r.subject == "committee", "fleiss_kappa") {
            page.paragraph(&format!(
                "Fleiss' kappa among all architectures, averaged over generations, strategies and seeds: {fleiss:.3}; \
                 pairwise error correlations (phi) are in results.csv (metric error_phi)."
            ));
        }
    }
    if let Some(table) = selection_table(&rows) {
        page.heading("selection", "Selection of pseudo-labels");
        page.paragraph(
            "Which of the teachers' pool labels each student learned from. Strategies are named with their selection \
             (self + confidence0.9: self-training on the pixels whose teacher probability is at least 0.9); rejected \
             pixels carry no loss. Kept share: pool pixels with a label after selection (an ensemble's split votes are \
             already missing before it). Accuracy: share of those labels that match the truth. Scores and biases are \
             means over architectures and seeds of the chain models on the test images.",
        );
        page.raw(&table.html());
        if let Some(src) = &selection_src {
            page.figure(
                src,
                "each bias against the share of pseudo-labels kept, per run, coloured by selection",
                "Each point is one pseudo-label run: the share of pool pixels its selection kept (x) and its bias on the \
                 test images (y). A selection that keeps fewer pixels but moves a bias towards its ideal (offset 0, \
                 recall 1) is filtering out the pixels that carried the bias; one that moves it away is keeping exactly \
                 those (a confident teacher is often confidently biased).",
            );
        }
    }
    if let Some(src) = reliability_src.as_ref().filter(|_| has_truth) {
        page.heading("calibration", "Calibration");
        page.figure(
            src,
            "reliability diagrams: accuracy against confidence per model",
            "Test pixels binned by the model's top-class probability (15 bins); each point is a bin's mean probability \
             against how often the top class is right there, pooled over seeds. On the dashed diagonal a model is \
             calibrated; below it, over-confident. Pseudo-labelling on a model's own confident outputs tends to push \
             points below the diagonal. The ECE column of the scores table summarises each curve.",
        );
    }
    page.heading("training", "Training");
    page.figure(
        &loss_src,
        "training and validation loss per epoch",
        "Mean training loss (solid) and validation loss (dashed) per epoch. Validation uses held-out images labelled \
         by the same sources, never the test set.",
    );
    page.heading("sources", "Label sources");
    page.paragraph(
        "Each source's labels scored against the exact truth on the training images it labelled: the biases the models inherit.",
    );
    page.raw(&sources_table(&rows, &class_metrics).html());
    page.heading("setup", "Setup and provenance");
    if let Some(p) = &provenance {
        page.raw(&provenance_table(p).html());
    }
    let pretraining_file = if pretraining.is_empty() {
        ""
    } else {
        "<a href=\"pretraining.csv\">pretraining.csv</a> (pre-trained models against their architecture), "
    };
    page.raw(&format!(
        "<p>Files: <a href=\"results.csv\">results.csv</a> and <a href=\"results.parquet\">results.parquet</a> \
         (one row per model × generation × strategy × repeat × metric), <a href=\"summary.csv\">summary.csv</a> \
         (each configuration's metrics with intervals), <a href=\"verdicts.csv\">verdicts.csv</a> (bias changes and verdicts), \
         <a href=\"targets.csv\">targets.csv</a> (targets judged per configuration), {pretraining_file}\
         <a href=\"history.csv\">history.csv</a> \
         (loss per epoch), <a href=\"manifest.toml\">manifest.toml</a> (the manifest that produced them), \
         <a href=\"splits.json\">splits.json</a> (image ids per split).</p>"
    ));
    page.heading("definitions", "Definitions");
    page.raw(
        "<ul><li>IoU<sub>c</sub> = TP<sub>c</sub> / (TP<sub>c</sub> + FP<sub>c</sub> + FN<sub>c</sub>), pooled over the test images; \
         mIoU is the mean over classes present.</li>\
         <li>Boundary offset: for every pixel on a predicted region's inner boundary, the distance to the nearest \
         true boundary pixel of the same class, + outside the true region and − inside; pixels more than 6 px away \
         (missed or invented objects) are left out. A mask dilated by k px scores about +k.</li>\
         <li>Boundary F1 (2 px): 2PR / (P + R), P the share of predicted boundary pixels within 2 px of a true boundary \
         of the same class, R the share of true boundary pixels within 2 px of a predicted one.</li>\
         <li>ECE: expected calibration error, Σ<sub>b</sub> (n<sub>b</sub> / N) |accuracy<sub>b</sub> − confidence<sub>b</sub>| \
         over 15 equal-width bins of each pixel's top-class probability.</li>\
         <li>Intervals: 95 % percentile bootstrap, 1000 resamples; each draws the seeds with replacement, then within each \
         seed the test images with replacement (pairing the two generations image by image for verdicts).</li>\
         <li>Pixel agreement: share of pixels two models label alike. Cohen's kappa: (p<sub>o</sub> − p<sub>e</sub>) / (1 − p<sub>e</sub>), \
         p<sub>e</sub> from the two models' label frequencies.</li>\
         <li>Angular hardness of a pool pixel: the angle between its embedding (the network's last features) and the mean \
         unit embedding of all pool pixels predicted as its class; a hardness selection keeps, per class, the share of \
         pixels with the smallest angle. Confidence: the teachers' mean top-class probability.</li>\
         <li>Mean teacher (strategy ema): a student trained on the labels plus the pool, the pool's targets being the \
         confident predictions of a teacher whose weights are the moving average of the student's.</li>\
         <li>BYOL pre-training (models named ARCHITECTURE+byol): before supervised training, the network learns on the \
         unlabelled pool alone that every pixel's embedding, through a projector and a predictor, predicts the moving-average \
         target network's projection of the same scene point in another random view; loss 2 − 2·cos. Embedding spread: \
         the mean over channels of the standard deviation, over pool pixels, of the unit-length embedding (0 = collapsed).</li></ul>",
    );

    write_atomic(&dir.index_html(), page.finish().as_bytes())?;
    remove_stale_figures(&dir.figures(), &written.files);
    Ok(dir.index_html())
}

fn remove_stale_figures(figures: &Path, keep: &BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(figures) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            // Best effort: a stale figure left behind is harmless.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
