//! Figures and the HTML report, rendered from a finished study's results tables only.
//!
//! Architecture invariant: the report never trains and never computes a metric from pixels;
//! it reads `results.parquet`, `history.parquet`, `provenance.json` and the manifest copy, so
//! `echoseg report NAME` re-renders a finished study in seconds.

pub mod chart;
pub mod figures;
pub mod html;
pub mod results;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use echoseg_study::StudyDir;
use echoseg_study::provenance::Provenance;
use echoseg_study::store::{read_json, write_atomic};

use crate::chart::Chart;
use crate::figures::{LineGrid, agreement_heatmaps, agreement_without_truth, groups, loss_curves, model_names, trajectory};
use crate::html::{Page, Table, cell, escape, interval_cell, number, with_interval};
use crate::results::{ResultRow, SummaryRow, VerdictRow, read_history, read_results, read_summary, read_verdicts};

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

fn verdict_table(verdicts: &[VerdictRow]) -> Table {
    let header = ["bias", "model", "strategy", "generation", "at generation 0", "after", "change in bias size", "factor", "verdict"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut sorted: Vec<&VerdictRow> = verdicts.iter().collect();
    sorted.sort_by(|a, b| (&a.metric, &a.model, &a.strategy, a.generation).cmp(&(&b.metric, &b.model, &b.strategy, b.generation)));
    let rows = sorted
        .iter()
        .map(|v| {
            let signed = v.metric == "boundary_offset";
            vec![
                cell(bias_name(&v.metric)),
                cell(&v.model),
                cell(&v.strategy),
                cell(&v.generation.to_string()),
                interval_cell(Some(v.before), 2, signed),
                interval_cell(Some(v.after), 2, signed),
                interval_cell(Some(v.change), 2, true),
                interval_cell(v.factor, 2, false),
                format!("<td class=\"verdict {}\">{}</td>", escape(&v.verdict), escape(&v.verdict)),
            ]
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

fn provenance_table(p: &Provenance) -> Table {
    let row = |k: &str, v: String| vec![cell(k), cell(&v)];
    let mut rows = vec![
        row("echoseg", p.echoseg_version.clone()),
        row("git revision", p.git_revision.clone().unwrap_or_else(|| "not a git checkout".into())),
        row("burn", p.burn_version.clone()),
        row("device", p.device.clone()),
        row("threads", p.threads.to_string()),
        row("command", p.command.clone()),
        row("wall time", format!("{:.1} s", p.wall_seconds)),
        row("runs trained / reused", format!("{} / {}", p.runs_trained, p.runs_reused)),
    ];
    if let Some(cpu) = p.cpu_seconds {
        rows.push(row("CPU time", format!("{cpu:.1} s")));
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

    let mut written = Written { files: BTreeSet::new() };
    let fingerprint = LineGrid {
        panels: vec![
            trajectory(&rows, "boundary_offset", "boundary offset by generation", "boundary offset (px, + = over-segmented)", &models),
            trajectory(&rows, "miou", "mIoU by generation", "mIoU against truth", &models),
        ],
        columns: 2,
    };
    let fingerprint_src = written.figure(dir, "fingerprint", &fingerprint, true)?;
    let kappa_src = written.figure(dir, "kappa", &agreement_heatmaps(&rows, &models, "kappa"), false)?;
    let loss_src = written.figure(dir, "loss", &loss_curves(&history, &models), true)?;
    let scatter_src = match agreement_without_truth(&rows) {
        Some(chart) => Some(written.figure(dir, "without-truth", &chart, true)?),
        None => None,
    };

    let mut page = Page::new(&format!("echoseg report: {name}"));
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
        page.raw(&verdict_table(&verdicts).html());
    }
    page.heading("fingerprints", "Bias fingerprints across generations");
    page.figure(
        &fingerprint_src,
        "boundary offset and mIoU per model and strategy across generations",
        "Left: the signed boundary offset of each model's test predictions against truth (+ = objects drawn too large), \
         generation 0 trained on the mixed source labels, later generations on pseudo-labels; dashed grey lines are the \
         sources' own offsets. A line moving away from zero means the bias amplifies; towards zero, it cancels. \
         Right: mIoU against truth.",
    );
    page.raw(&scores_table(&rows, &summary, &models, &class_metrics).html());
    page.heading("agreement", "Agreement between architectures");
    page.figure(
        &kappa_src,
        "Cohen's kappa between each pair of models per generation and strategy",
        "Cohen's kappa between the test predictions of each pair of architectures, per generation and strategy \
         (1 = identical, 0 = chance-level agreement). Rising kappa across generations means the models converge; \
         whether they converge on the truth or on a shared bias, the fingerprints above tell.",
    );
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
    page.raw(
        "<p>Files: <a href=\"results.csv\">results.csv</a> and <a href=\"results.parquet\">results.parquet</a> \
         (one row per model × generation × strategy × repeat × metric), <a href=\"summary.csv\">summary.csv</a> \
         (each configuration's metrics with intervals), <a href=\"verdicts.csv\">verdicts.csv</a> (bias changes and verdicts), \
         <a href=\"history.csv\">history.csv</a> \
         (loss per epoch), <a href=\"manifest.toml\">manifest.toml</a> (the manifest that produced them), \
         <a href=\"splits.json\">splits.json</a> (image ids per split).</p>",
    );
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
         p<sub>e</sub> from the two models' label frequencies.</li></ul>",
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
