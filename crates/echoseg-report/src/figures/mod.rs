//! The report's figures, each built from the results tables only.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use echoseg_agree::{Bias, Metric};
use echoseg_study::read::{Strategy, Treatment};

use crate::chart::{Chart, sequential, series_colour, text};
use crate::html::number_text;
use echoseg_study::read::{HistoryRow, ResultRow, SummaryRow};

/// One line of a line panel.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Colour index (see [`series_colour`]).
    pub colour: usize,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// Points in data coordinates.
    pub points: Vec<(f64, f64)>,
    /// An interval band drawn under the line: (x, low, high) per point that has one.
    pub band: Vec<(f64, f64, f64)>,
}

/// A horizontal reference line.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Legend text.
    pub label: String,
    /// Height in data coordinates.
    pub value: f64,
}

/// One panel of line charts.
#[derive(Clone, Debug)]
pub struct LinePanel {
    /// Panel title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Horizontal reference lines.
    pub references: Vec<Reference>,
    /// Draw x ticks at integers only.
    pub integer_x: bool,
}

/// Small multiples of line panels, laid out in a grid.
#[derive(Clone, Debug)]
pub struct LineGrid {
    /// The panels, row by row.
    pub panels: Vec<LinePanel>,
    /// Panels per row.
    pub columns: usize,
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

/// A chart with linear axes over `x` and `y` under `title`, laid out like every panel of the report.
fn cartesian<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    ChartBuilder::on(area)
        .caption(title, text(16))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())
}

/// Points up to which a line gets a marker at each.
const MOST_MARKERS: usize = 20;

fn draw_panel<DB: DrawingBackend>(panel: &LinePanel, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (x0, x1) = bounds(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (x0, x1) = if panel.integer_x {
        let (lo, hi) = (x0.ceil(), x1.floor());
        // Room for the end markers, at most one step: 60 epochs need no ten empty ones each side.
        let pad = (0.15 * (hi - lo).max(1.0)).min(1.0);
        (lo - pad, hi + pad)
    } else {
        (x0, x1)
    };
    let (y0, y1) = bounds(
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.band.iter().flat_map(|b| [b.1, b.2])))
            .chain(panel.references.iter().map(|r| r.value)),
    );
    let mut chart = cartesian(area, &panel.title, (x0, x1), (y0, y1))?;
    let integer_x = panel.integer_x;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style(text(12))
        .axis_desc_style(text(13))
        .x_labels(if integer_x { ((x1 - x0).round() as usize + 2).min(12) } else { 8 })
        .x_label_formatter(&|v| match integer_x {
            // only whole numbers are labelled on an integer axis
            true if (v - v.round()).abs() < 1e-6 => format!("{}", v.round() as i64),
            true => String::new(),
            false => format!("{v:.*}", tick_decimals(x0, x1)),
        })
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for r in &panel.references {
        let style = RGBColor(120, 120, 120).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(vec![(x0, r.value), (x1, r.value)], 4, 4, style))
            .map_err(err)?
            .label(r.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    for s in panel.series.iter().filter(|s| s.band.len() >= 2) {
        let outline: Vec<(f64, f64)> =
            s.band.iter().map(|&(x, lo, _)| (x, lo)).chain(s.band.iter().rev().map(|&(x, _, hi)| (x, hi))).collect();
        chart.draw_series(std::iter::once(Polygon::new(outline, series_colour(s.colour).mix(0.12).filled()))).map_err(err)?;
    }
    for s in &panel.series {
        let style = series_colour(s.colour).stroke_width(2);
        let anno = if s.dashed {
            chart.draw_series(DashedLineSeries::new(s.points.clone(), 6, 4, style)).map_err(err)?
        } else {
            chart.draw_series(LineSeries::new(s.points.clone(), style)).map_err(err)?
        };
        // A dashed legend sample is two strokes with a gap; a solid one, two touching strokes.
        let gap = if s.dashed { 4 } else { 0 };
        anno.label(s.label.as_str()).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (9 - gap / 2, 0)], style)
                + PathElement::new(vec![(9 + gap / 2, 0), (18, 0)], style)
        });
        // Markers show where values were measured; on a long curve they would only thicken it.
        if s.points.len() <= MOST_MARKERS {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, series_colour(s.colour).filled()))).map_err(err)?;
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(err)
}

/// The legend box every figure uses.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .label_font(text(11))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(position)
        .draw()
}

const PANEL_W: u32 = 460;
const PANEL_H: u32 = 320;

/// Rows and columns of `count` panels laid out `columns` to a row (fewer when there are fewer).
fn grid(count: usize, columns: usize) -> (usize, usize) {
    let cols = columns.clamp(1, count.max(1));
    (count.div_ceil(cols).max(1), cols)
}

impl Chart for LineGrid {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = grid(self.panels.len(), self.columns);
        (PANEL_W * cols as u32, PANEL_H * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        for (panel, cell) in self.panels.iter().zip(area.split_evenly(grid(self.panels.len(), self.columns))) {
            draw_panel(panel, &cell)?;
        }
        Ok(())
    }
}

/// One matrix of a heatmap figure.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// Panel title.
    pub title: String,
    /// Row and column names.
    pub names: Vec<String>,
    /// Values (`NaN` = not measured), row-major.
    pub values: Vec<f64>,
    /// The values mapped to the lightest and the darkest colour.
    pub range: (f64, f64),
    /// Values are written with their sign.
    pub signed: bool,
}

/// Small multiples of annotated heatmaps.
#[derive(Clone, Debug)]
pub struct Heatmaps {
    /// The matrices.
    pub matrices: Vec<Matrix>,
    /// Panels per row.
    pub columns: usize,
}

impl Chart for Heatmaps {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = grid(self.matrices.len(), self.columns);
        (340 * cols as u32, 320 * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        for (m, cell) in self.matrices.iter().zip(area.split_evenly(grid(self.matrices.len(), self.columns))) {
            draw_matrix(m, &cell)?;
        }
        Ok(())
    }
}

fn draw_matrix<DB: DrawingBackend>(m: &Matrix, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let n = m.names.len();
    // Segmented axes put each name at the centre of its cell; rows run top to bottom.
    let mut chart = ChartBuilder::on(area)
        .caption(&m.title, text(16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), (0..n.saturating_sub(1)).into_segmented())
        .map_err(err)?;
    let row_name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => m.names.get(n - 1 - i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let col_name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => m.names.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .label_style(text(13))
        .x_label_formatter(&col_name)
        .y_label_formatter(&row_name)
        .draw()
        .map_err(err)?;
    let centred = text(14).pos(Pos::new(HPos::Center, VPos::Center));
    for r in 0..n {
        for c in 0..n {
            let v = m.values[r * n + c];
            let y = n - 1 - r;
            let t = (v - m.range.0) / (m.range.1 - m.range.0).max(1e-12);
            let fill = if v.is_finite() { sequential(t) } else { RGBColor(240, 240, 240) };
            let cell = [(SegmentValue::Exact(c), SegmentValue::Exact(y)), (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1))];
            chart.draw_series(std::iter::once(Rectangle::new(cell, fill.filled()))).map_err(err)?;
            let label = match (v.is_finite(), m.signed) {
                (false, _) => "–".into(),
                (true, true) => format!("{v:+.2}"),
                (true, false) => format!("{v:.2}"),
            };
            let colour = if v.is_finite() && t > 0.55 { WHITE } else { BLACK };
            let at = (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y));
            chart.draw_series(std::iter::once(Text::new(label, at, centred.color(&colour)))).map_err(err)?;
        }
    }
    Ok(())
}

/// Sorts keys of (generation, treatment) the way readers look them up: by generation, then by
/// the treatment's name.
pub fn sort_by_name(keys: &mut Vec<(i64, Treatment)>) {
    keys.sort_by_cached_key(|(g, t)| (*g, t.to_string()));
    keys.dedup();
}

/// Names of the models (architectures) in the order they first appear.
pub fn model_names(rows: &[ResultRow]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.is_model()) {
        if !names.contains(&r.model) {
            names.push(r.model.clone());
        }
    }
    names
}

/// Whether the per-generation figures show `treatment` among `all` the study ran: treatments
/// that keep every pseudo-label when there are any (selections have their own section), else all.
pub fn shown(treatment: &Treatment, all: &[&Treatment]) -> bool {
    treatment.keeps_every_label() || all.iter().all(|t| !t.keeps_every_label() || **t == Treatment::Labels)
}

/// (generation, treatment) groups in order: generation 0 first, then by generation and
/// treatment name; see [`shown`].
pub fn groups(rows: &[ResultRow]) -> Vec<(i64, Treatment)> {
    let all: Vec<&Treatment> = rows.iter().filter(|r| r.is_model()).map(|r| &r.treatment).collect();
    let mut g: Vec<(i64, Treatment)> =
        rows.iter().filter(|r| r.is_model() && shown(&r.treatment, &all)).map(|r| (r.generation, r.treatment.clone())).collect();
    sort_by_name(&mut g);
    g
}

fn group_title(generation: i64, treatment: &Treatment) -> String {
    match treatment {
        Treatment::Labels => "generation 0 (source labels)".into(),
        Treatment::Ceiling => "ceiling (exact labels)".into(),
        _ => format!("generation {generation}, {treatment}"),
    }
}

/// Training (solid) and validation (dashed) loss per epoch, one panel per generation and strategy:
/// per model, the median over seeds, and the middle half of the seeds' validation losses as a
/// band, so one seed's spike reads as one seed's.
pub fn loss_curves(history: &[HistoryRow], models: &[String]) -> LineGrid {
    let all: Vec<&Treatment> = history.iter().map(|h| &h.treatment).collect();
    let mut keys: Vec<(i64, Treatment)> =
        history.iter().filter(|h| shown(&h.treatment, &all)).map(|h| (h.generation, h.treatment.clone())).collect();
    sort_by_name(&mut keys);
    let panels = keys
        .iter()
        .map(|(g, s)| {
            let mut runs: Vec<(String, String)> =
                history.iter().filter(|h| h.generation == *g && &h.treatment == s).map(|h| (h.model.clone(), h.teacher.clone())).collect();
            runs.sort();
            runs.dedup();
            let mut series = Vec::new();
            for (model, teacher) in runs {
                let colour = models.iter().position(|m| *m == model).unwrap_or(0);
                let mine: Vec<&HistoryRow> = history
                    .iter()
                    .filter(|h| h.generation == *g && &h.treatment == s && h.model == model && h.teacher == teacher)
                    .collect();
                let name = if teacher.is_empty() || teacher == model { model.clone() } else { format!("{model} ← {teacher}") };
                let train = over_seeds(&mine, |h| Some(h.train_loss));
                series.push(Series {
                    label: format!("{name} train"),
                    colour,
                    dashed: false,
                    points: train.iter().map(|e| (e.epoch, e.median)).collect(),
                    band: Vec::new(),
                });
                let val = over_seeds(&mine, |h| h.val_loss);
                if !val.is_empty() {
                    series.push(Series {
                        label: format!("{name} validation"),
                        colour,
                        dashed: true,
                        points: val.iter().map(|e| (e.epoch, e.median)).collect(),
                        band: val.iter().map(|e| (e.epoch, e.low, e.high)).collect(),
                    });
                }
            }
            LinePanel {
                title: group_title(*g, s),
                x_label: "epoch".into(),
                y_label: "cross-entropy".into(),
                series,
                references: Vec::new(),
                integer_x: true,
            }
        })
        .collect();
    LineGrid { panels, columns: 3 }
}

/// One epoch of a loss over seeds: the median and the middle half (25th to 75th percentile).
#[derive(Clone, Copy, Debug, PartialEq)]
struct EpochOverSeeds {
    epoch: f64,
    median: f64,
    low: f64,
    high: f64,
}

/// `value` of `rows` per epoch over the seeds that have it, in epoch order.
fn over_seeds(rows: &[&HistoryRow], value: impl Fn(&HistoryRow) -> Option<f64>) -> Vec<EpochOverSeeds> {
    let mut by_epoch: std::collections::BTreeMap<i64, Vec<f64>> = std::collections::BTreeMap::new();
    for h in rows {
        if let Some(v) = value(h).filter(|v| v.is_finite()) {
            by_epoch.entry(h.epoch).or_default().push(v);
        }
    }
    by_epoch
        .into_iter()
        .map(|(epoch, mut values)| {
            values.sort_by(f64::total_cmp);
            let at = |q: f64| percentile(&values, q);
            EpochOverSeeds { epoch: epoch as f64, median: at(0.5), low: at(0.25), high: at(0.75) }
        })
        .collect()
}

/// The `q` quantile of sorted, non-empty `values`, linear between neighbours.
fn percentile(values: &[f64], q: f64) -> f64 {
    let at = q * (values.len() - 1) as f64;
    let (below, above) = (at.floor() as usize, at.ceil() as usize);
    values[below] + (values[above] - values[below]) * (at - below as f64)
}

/// Decimals that keep an axis's tick labels distinct over `lo..hi`: plotters places about ten
/// ticks at steps of 1, 2 or 5 × 10^k, so a step is at least a tenth of the range.
fn tick_decimals(lo: f64, hi: f64) -> usize {
    let range = (hi - lo).abs();
    if !range.is_finite() || range <= 0.0 {
        return 2;
    }
    (1.0 - range.log10()).ceil().clamp(0.0, 6.0) as usize
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// A metric of the chain runs across generations, one line per model and strategy, with the
/// sources' own values as reference lines and, where `summary` has them, its estimates (collapsed
/// runs left out) and 95 % interval bands.
pub fn trajectory(rows: &[ResultRow], summary: &[SummaryRow], metric: &Metric, title: &str, y_label: &str, models: &[String]) -> LinePanel {
    let strategies: Vec<Treatment> = {
        let all: Vec<&Treatment> = rows.iter().filter(|r| r.is_model()).map(|r| &r.treatment).collect();
        let mut s: Vec<Treatment> =
            rows.iter().filter(|r| r.is_model() && r.generation > 0 && shown(&r.treatment, &all)).map(|r| r.treatment.clone()).collect();
        s.sort_by_cached_key(Treatment::to_string);
        s.dedup();
        s
    };
    let chain = |model: &str, generation: i64, treatment: &Treatment| -> Vec<&ResultRow> {
        rows.iter()
            .filter(|r| {
                r.is_model()
                    && r.chain
                    && &r.metric == metric
                    && r.model == model
                    && r.generation == generation
                    && &r.treatment == treatment
            })
            .collect()
    };
    // The chain's configuration in the summary: same generation, treatment, model and teacher.
    let summarised = |model: &str, generation: i64, treatment: &Treatment| {
        let teacher = chain(model, generation, treatment).first()?.teacher.clone();
        summary.iter().find(|s| {
            s.generation == generation && &s.treatment == treatment && s.model == model && s.teacher == teacher && &s.metric == metric
        })
    };
    // The summary's estimate leaves collapsed runs out, as the tables do; the runs' mean is the
    // fallback for metrics the summary does not carry.
    let value = |model: &str, generation: i64, treatment: &Treatment| {
        summarised(model, generation, treatment)
            .map(|s| s.estimate)
            .or_else(|| mean(chain(model, generation, treatment).iter().map(|r| r.value)))
    };
    let interval = |model: &str, generation: i64, treatment: &Treatment| {
        summarised(model, generation, treatment).map(|s| (generation as f64, s.low, s.high))
    };
    let max_gen = rows.iter().filter(|r| r.is_model()).map(|r| r.generation).max().unwrap_or(0);
    let mut series = Vec::new();
    for (si, strategy) in strategies.iter().enumerate() {
        for (mi, model) in models.iter().enumerate() {
            let mut points: Vec<(f64, f64)> = value(model, 0, &Treatment::Labels).map(|v| vec![(0.0, v)]).unwrap_or_default();
            // An accumulating chain's generation 1 is the shared one, tabled as `replace`.
            let at = |g: i64| strategy.at_generation(u32::try_from(g).unwrap_or(u32::MAX));
            points.extend((1..=max_gen).filter_map(|g| value(model, g, &at(g)).map(|v| (g as f64, v))));
            let band: Vec<(f64, f64, f64)> = interval(model, 0, &Treatment::Labels)
                .into_iter()
                .chain((1..=max_gen).filter_map(|g| interval(model, g, &at(g))))
                .collect();
            series.push(Series { label: format!("{model}, {strategy}"), colour: mi, dashed: si % 2 == 1, points, band });
        }
    }
    if strategies.is_empty() {
        for (mi, model) in models.iter().enumerate() {
            let points = value(model, 0, &Treatment::Labels).map(|v| vec![(0.0, v)]).unwrap_or_default();
            series.push(Series { label: model.clone(), colour: mi, dashed: false, points, band: Vec::new() });
        }
    }
    let references = rows
        .iter()
        .filter(|r| r.is_source() && &r.metric == metric)
        .map(|r| {
            let value = number_text(r.value, 2, metric.signed());
            Reference { label: format!("{} labels ({value})", r.model), value: r.value }
        })
        .collect();
    LinePanel { title: title.into(), x_label: "generation".into(), y_label: y_label.into(), series, references, integer_x: true }
}

/// A pair metric (Cohen's kappa, error correlation) between the models of each generation and
/// strategy (repeat means); 1 on the diagonal.
pub fn agreement_heatmaps(rows: &[ResultRow], models: &[String], metric: &Metric) -> Heatmaps {
    let n = models.len();
    let matrices = groups(rows)
        .into_iter()
        .map(|(g, s)| {
            let mut values = vec![f64::NAN; n * n];
            for i in 0..n {
                values[i * n + i] = 1.0;
            }
            for (i, a) in models.iter().enumerate() {
                for (j, b) in models.iter().enumerate() {
                    let v = mean(
                        rows.iter()
                            .filter(|r| r.is_pair() && r.generation == g && r.treatment == s && &r.metric == metric)
                            .filter(|r| (&r.model == a && &r.peer == b) || (&r.model == b && &r.peer == a))
                            .map(|r| r.value),
                    );
                    if let Some(v) = v {
                        values[i * n + j] = v;
                    }
                }
            }
            Matrix { title: group_title(g, &s), names: models.to_vec(), values, range: (0.0, 1.0), signed: false }
        })
        .collect();
    Heatmaps { matrices, columns: 3 }
}

/// One scatter panel with the y = x line: points coloured by group.
#[derive(Clone, Debug)]
pub struct ScatterPanel {
    /// Panel title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// (x, y, colour index) per point.
    pub points: Vec<(f64, f64, usize)>,
    /// Legend: label per colour index.
    pub legend: Vec<(String, usize)>,
    /// Both axes share one range and the y = x line is drawn.
    pub diagonal: bool,
}

/// Scatter panels side by side.
#[derive(Clone, Debug)]
pub struct Scatters {
    /// The panels.
    pub panels: Vec<ScatterPanel>,
}

impl Chart for Scatters {
    fn size(&self) -> (u32, u32) {
        let (rows, columns) = self.grid();
        (PANEL_W * columns as u32, 380 * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        for (panel, cell) in self.panels.iter().zip(area.split_evenly(self.grid())) {
            draw_scatter(panel, &cell)?;
        }
        Ok(())
    }
}

impl Scatters {
    /// Rows and columns: side by side up to two panels, then two per row.
    fn grid(&self) -> (usize, usize) {
        let n = self.panels.len().max(1);
        if n <= 2 { (1, n) } else { (n.div_ceil(2), 2) }
    }
}

fn draw_scatter<DB: DrawingBackend>(panel: &ScatterPanel, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    // With the diagonal, one range for both axes, so the y = x line is the diagonal.
    let (lo, hi) = bounds(panel.points.iter().flat_map(|p| [p.0, p.1]));
    let ((x0, x1), (y0, y1)) = if panel.diagonal {
        ((lo, hi), (lo, hi))
    } else {
        // Headroom above the points keeps the legend (upper left) off them.
        let (y0, y1) = bounds(panel.points.iter().map(|p| p.1));
        (bounds(panel.points.iter().map(|p| p.0)), (y0, y1 + 0.45 * (y1 - y0)))
    };
    let mut chart = cartesian(area, &panel.title, (x0, x1), (y0, y1))?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style(text(12))
        .axis_desc_style(text(13))
        .x_label_formatter(&|v| format!("{v:.*}", tick_decimals(x0, x1)))
        .y_label_formatter(&|v| format!("{v:.*}", tick_decimals(y0, y1)))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    if panel.diagonal {
        let grey = RGBColor(120, 120, 120).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(vec![(lo, lo), (hi, hi)], 4, 4, grey))
            .map_err(err)?
            .label("y = x")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
    }
    for (label, colour) in &panel.legend {
        let c = *colour;
        let style = series_colour(c).filled();
        chart
            .draw_series(panel.points.iter().filter(|p| p.2 == c).map(|&(x, y, _)| Circle::new((x, y), 4, style)))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, style));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(err)
}

/// Disagreement against mean true error for every pair, and STAPLE's estimated sensitivity
/// against the true one for every model and class; points coloured by generation.
pub fn agreement_without_truth(rows: &[ResultRow]) -> Option<Scatters> {
    let generations: Vec<i64> = {
        let mut g: Vec<i64> = rows.iter().filter(|r| r.is_model()).map(|r| r.generation).collect();
        g.sort();
        g.dedup();
        g
    };
    let colour = |g: i64| generations.iter().position(|&x| x == g).unwrap_or(0);
    let legend: Vec<(String, usize)> = generations.iter().map(|&g| (format!("generation {g}"), colour(g))).collect();
    let find = |r: &ResultRow, metric: &Metric| value_of(rows, r, metric);
    let pairs: Vec<(f64, f64, usize)> = rows
        .iter()
        .filter(|r| r.is_pair() && r.metric == Metric::MeanError)
        .filter_map(|r| Some((r.value, 1.0 - find(r, &Metric::Agreement)?, colour(r.generation))))
        .collect();
    let sensitivity: Vec<(f64, f64, usize)> = rows
        .iter()
        .filter(|r| r.is_model())
        .filter_map(|r| {
            let Metric::StapleSensitivity(class) = &r.metric else { return None };
            Some((find(r, &Metric::Sensitivity(class.clone()))?, r.value, colour(r.generation)))
        })
        .collect();
    if pairs.is_empty() && sensitivity.is_empty() {
        return None;
    }
    Some(Scatters {
        panels: vec![
            ScatterPanel {
                title: "disagreement vs true error, per pair".into(),
                x_label: "mean error of the pair (against truth)".into(),
                y_label: "disagreement rate".into(),
                points: pairs,
                legend: legend.clone(),
                diagonal: true,
            },
            ScatterPanel {
                title: "STAPLE vs true sensitivity, per model and class".into(),
                x_label: "true sensitivity (recall)".into(),
                y_label: "STAPLE-estimated sensitivity".into(),
                points: sensitivity,
                legend,
                diagonal: true,
            },
        ],
    })
}

/// The value of `metric` for the run or pair of `row`.
fn value_of(rows: &[ResultRow], row: &ResultRow, metric: &Metric) -> Option<f64> {
    rows.iter().find(|o| &o.metric == metric && o.same_subject(row)).map(|o| o.value)
}

/// The biases a selection is judged on, in the order they are drawn.
pub const SELECTION_BIASES: [Bias; 4] = [Bias::BoundaryOffset, Bias::ThinRecall, Bias::SmallObjectRecall, Bias::LowContrastRecall];

/// Per bias, every pseudo-label run's kept share of the pool against its bias on the test images,
/// coloured by selection: what keeping fewer, surer pixels did to each bias.
pub fn selection_effect(rows: &[ResultRow]) -> Option<Scatters> {
    let kept: Vec<&ResultRow> = rows.iter().filter(|r| r.is_model() && r.metric == Metric::KeptFraction).collect();
    let mut selections: Vec<&str> = kept.iter().map(|r| r.treatment.selection_column()).collect();
    selections.sort();
    selections.dedup();
    if selections.len() < 2 {
        return None;
    }
    let legend: Vec<(String, usize)> = selections.iter().enumerate().map(|(i, s)| (s.to_string(), i)).collect();
    let colour = |s: &str| selections.iter().position(|&x| x == s).unwrap_or(0);
    let panels: Vec<ScatterPanel> = SELECTION_BIASES
        .iter()
        .map(|&bias| ScatterPanel {
            title: format!("{} vs kept share", bias.display_name()),
            x_label: "share of pool pixels kept".into(),
            y_label: bias.display_name(),
            points: kept
                .iter()
                .filter_map(|r| Some((r.value, value_of(rows, r, &Metric::Bias(bias))?, colour(r.treatment.selection_column()))))
                .collect(),
            legend: legend.clone(),
            diagonal: false,
        })
        .filter(|p| !p.points.is_empty())
        .collect();
    (!panels.is_empty()).then_some(Scatters { panels })
}

/// Teacher → student at generation 1: each student's bias after learning from each teacher's
/// pseudo-labels (`cross` off the diagonal, `self` on it; every pixel kept), repeat means, one
/// panel per bias; `None` without a `cross` generation.
pub fn transfer_matrices(rows: &[ResultRow], models: &[String]) -> Option<Heatmaps> {
    let (self_training, cross) = (Treatment::every_label(Strategy::SelfTraining), Treatment::every_label(Strategy::Cross));
    if !rows.iter().any(|r| r.is_model() && r.generation == 1 && r.treatment == cross) {
        return None;
    }
    let n = models.len();
    let matrices: Vec<Matrix> = SELECTION_BIASES
        .iter()
        .filter_map(|&bias| {
            let metric = Metric::Bias(bias);
            let mut values = vec![f64::NAN; n * n];
            for (t, teacher) in models.iter().enumerate() {
                for (s, student) in models.iter().enumerate() {
                    let treatment = if t == s { &self_training } else { &cross };
                    let v = mean(
                        rows.iter()
                            .filter(|r| r.is_model() && r.generation == 1 && &r.treatment == treatment && r.metric == metric)
                            .filter(|r| &r.teacher == teacher && &r.model == student)
                            .map(|r| r.value),
                    );
                    values[t * n + s] = v.unwrap_or(f64::NAN);
                }
            }
            let signed = bias.signed();
            let range = if signed { bounds(values.iter().copied()) } else { (0.0, 1.0) };
            values.iter().any(|v| v.is_finite()).then(|| Matrix {
                title: bias.display_name(),
                names: models.to_vec(),
                values,
                range,
                signed,
            })
        })
        .collect();
    (!matrices.is_empty()).then_some(Heatmaps { matrices, columns: 2 })
}

#[cfg(test)]
mod tests;
