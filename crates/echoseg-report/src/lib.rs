//! Figures and the HTML report, rendered from a finished study's results tables only.
//!
//! Architecture invariant: the report never trains and never computes a metric from pixels;
//! it reads `results.parquet`, `history.parquet`, `provenance.json` and the manifest copy, so
//! `echoseg report NAME` re-renders a finished study in seconds.

pub mod chart;
pub mod figures;
pub mod html;
mod mask_tables;
pub mod reliability;
pub mod samples;
mod score_tables;
mod sections;
mod summaries;
pub mod trends;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use echoseg_agree::{Bias, Metric};
use echoseg_study::read::Provenance;
use echoseg_study::read::Splits;
use echoseg_study::read::StudyDir;
use echoseg_study::read::{read_json, write_atomic};

use crate::chart::Chart;
use crate::figures::{
    LineGrid, agreement_heatmaps, agreement_without_truth, loss_curves, model_names, selection_effect, trajectory, transfer_matrices,
};
use echoseg_study::read::WorstIndex;
use echoseg_study::read::{
    GapRow, HistoryRow, LabelConfusionRow, LabelIssueQualityRow, MaskRow, PretrainingRow, ResultRow, SummaryRow, TargetRow, TrendRow,
    VerdictRow, read_gap, read_history, read_label_confusions, read_label_issue_quality, read_masks, read_pretraining, read_results,
    read_summary, read_targets, read_trends, read_verdicts,
};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The study's files are missing or unreadable.
    #[error(transparent)]
    Study(#[from] echoseg_study::read::StudyError),
    /// A figure could not be drawn.
    #[error("drawing a figure failed: {0}")]
    Figure(String),
    /// There is nothing to report.
    #[error("{} holds no finished study (no results.parquet); run `echoseg run MANIFEST` first", .0.display())]
    NoResults(PathBuf),
}

/// The figure files this render wrote; every other file in the figures folder is stale.
#[derive(Default)]
struct Written {
    files: BTreeSet<String>,
}

impl Written {
    /// Writes a figure as PNG (and SVG when line art) under a content-derived name, so the
    /// previous page's figures stay intact until the new page replaces it.
    fn figure<C: Chart>(&mut self, dir: &StudyDir, stem: &str, chart: &C, with_svg: bool) -> Result<String, ReportError> {
        let png = chart::png(chart)?;
        let name = format!("{stem}-{}.png", &echoseg_study::read::settings_hash(&png)[..10]);
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

/// A finished study's tables, as the report reads them.
struct Study {
    /// The study's name (its folder).
    name: String,
    rows: Vec<ResultRow>,
    history: Vec<HistoryRow>,
    summary: Vec<SummaryRow>,
    verdicts: Vec<VerdictRow>,
    targets: Vec<TargetRow>,
    pretraining: Vec<PretrainingRow>,
    gap: Vec<GapRow>,
    trends: Vec<TrendRow>,
    masks: Vec<MaskRow>,
    label_quality: Vec<LabelIssueQualityRow>,
    label_confusions: Vec<LabelConfusionRow>,
    worst_labels: Option<WorstIndex>,
    provenance: Option<Provenance>,
    /// How the images were split (absent in studies written before splits.json said it).
    splits: Option<Splits>,
    /// The architectures in the order they first appear.
    models: Vec<String>,
    /// The columns the score tables add after mIoU and the boundary offset.
    class_metrics: Vec<Metric>,
    /// Whether the test images have truth: without it (real folder data) nothing can be scored
    /// against it, and the page leads with what agreement alone can estimate.
    has_truth: bool,
}

impl Study {
    fn read(dir: &StudyDir) -> Result<Self, ReportError> {
        let rows = read_results(&dir.results_parquet())?;
        let models = model_names(&rows);
        let class_metrics = class_metrics(&rows);
        let has_truth = rows.iter().any(|r| r.is_model() && r.metric == Metric::Miou);
        Ok(Self {
            name: dir.root().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            history: read_history(&dir.history_parquet())?,
            summary: read_summary(&dir.summary_parquet())?,
            verdicts: read_verdicts(&dir.verdicts_parquet())?,
            targets: read_targets(&dir.targets_parquet())?,
            pretraining: read_pretraining(&dir.pretraining_parquet())?,
            gap: read_gap(&dir.gap_parquet())?,
            trends: read_trends(&dir.trends_parquet())?,
            masks: read_masks(&dir.masks_parquet())?,
            label_quality: read_label_issue_quality(&dir.label_issue_quality_parquet())?,
            label_confusions: read_label_confusions(&dir.label_issue_confusions_parquet())?,
            worst_labels: read_json(&dir.worst_index()).ok(),
            provenance: read_json(&dir.provenance()).ok(),
            splits: read_json(&dir.splits()).ok(),
            rows,
            models,
            class_metrics,
            has_truth,
        })
    }
}

/// Per-class IoU, boundary F1 and calibration, then every other bias the data could measure
/// (the boundary offset has its own column).
fn class_metrics(rows: &[ResultRow]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = rows.iter().filter(|r| matches!(r.metric, Metric::Iou(_))).map(|r| r.metric.clone()).collect();
    metrics.sort();
    metrics.dedup();
    let others = Bias::ALL.into_iter().filter(|b| !matches!(b, Bias::BoundaryOffset | Bias::BoundaryF1)).map(Metric::Bias);
    for m in [Metric::Bias(Bias::BoundaryF1), Metric::Ece].into_iter().chain(others) {
        if rows.iter().any(|r| r.metric == m) {
            metrics.push(m);
        }
    }
    metrics
}

/// The figures of the page, by the path the page links them under; `None` where the study has
/// nothing to draw.
struct Figures {
    /// Boundary offset and mIoU across generations; drawn exactly when the study has truth.
    fingerprint: Option<String>,
    subgroups: Option<String>,
    kappa: String,
    error_phi: Option<String>,
    transfer: Option<String>,
    loss: String,
    without_truth: Option<String>,
    samples: Option<String>,
    label_issues: Option<String>,
    reliability: Option<String>,
    selection: Option<String>,
    /// One per bias with a trend (studies of two or more generations).
    trends: Vec<(Bias, String)>,
}

impl Figures {
    /// Draws every figure before the page is built, so the page can be written in one go.
    fn draw(dir: &StudyDir, study: &Study, written: &mut Written) -> Result<Self, ReportError> {
        let (rows, summary, models) = (&study.rows, &study.summary, &study.models);
        let fingerprint = study.has_truth.then(|| LineGrid {
            panels: vec![
                trajectory(
                    rows,
                    summary,
                    &Bias::BoundaryOffset.into(),
                    "boundary offset by generation",
                    "boundary offset (px, + = over-segmented)",
                    models,
                ),
                trajectory(rows, summary, &Metric::Miou, "mIoU by generation", "mIoU against truth", models),
            ],
            columns: 2,
        });
        // Subgroup scores: every subgroup recall and false-positive rate the data could measure.
        let subgroup_panels: Vec<_> = Bias::SUBGROUPS
            .into_iter()
            .filter(|&b| rows.iter().any(|r| r.is_model() && r.metric == Metric::Bias(b)))
            .map(|b| {
                let title = b.display_name();
                trajectory(rows, summary, &b.into(), &title, &title, models)
            })
            .collect();
        let subgroups = (!subgroup_panels.is_empty()).then_some(LineGrid { panels: subgroup_panels, columns: 2 });
        let error_phi =
            rows.iter().any(|r| r.is_pair() && r.metric == Metric::ErrorPhi).then(|| agreement_heatmaps(rows, models, &Metric::ErrorPhi));
        Ok(Self {
            fingerprint: written.figure_if(dir, "fingerprint", fingerprint, true)?,
            subgroups: written.figure_if(dir, "subgroups", subgroups, true)?,
            kappa: written.figure(dir, "kappa", &agreement_heatmaps(rows, models, &Metric::Kappa), true)?,
            error_phi: written.figure_if(dir, "error-correlation", error_phi, true)?,
            transfer: written.figure_if(dir, "transfer", transfer_matrices(rows, models), true)?,
            loss: written.figure(dir, "loss", &loss_curves(&study.history, models), true)?,
            without_truth: written.figure_if(dir, "without-truth", agreement_without_truth(rows), true)?,
            // Panels are pixel art: PNG only.
            samples: written.figure_if(dir, "samples", samples::sample_panels(dir, rows, models), false)?,
            label_issues: written.figure_if(dir, "label-issues", samples::label_issue_panels(dir), false)?,
            reliability: written.figure_if(dir, "calibration", reliability::reliability_diagrams(dir, rows, models), true)?,
            selection: written.figure_if(dir, "selection", selection_effect(rows), true)?,
            trends: trends::trend_grids(&study.trends, summary, rows)
                .into_iter()
                .map(|(bias, grid)| Ok((bias, written.figure(dir, &format!("trend-{}", bias.name()), &grid, true)?)))
                .collect::<Result<_, ReportError>>()?,
        })
    }
}

/// Renders `reports/NAME/index.html` and its figures from the study's tables; returns the page path.
///
/// Figures get content-derived names and the page is replaced atomically last, so an
/// interrupted render leaves the previous report whole; figures no longer referenced are removed.
pub fn render(dir: &StudyDir) -> Result<PathBuf, ReportError> {
    if !dir.results_parquet().exists() {
        return Err(ReportError::NoResults(dir.root().to_path_buf()));
    }
    let study = Study::read(dir)?;
    let mut written = Written::default();
    let figures = Figures::draw(dir, &study, &mut written)?;
    let page = sections::page(&study, &figures);
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
