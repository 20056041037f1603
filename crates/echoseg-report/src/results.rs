//! The results tables, read back from the files the study wrote.

use std::path::Path;

use echoseg_study::plan::treatment;
use echoseg_study::tables::{columns, read_table, subjects};
use polars::prelude::*;

use crate::ReportError;

/// One row of `results.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    /// `model`, `source` or `pair`.
    pub subject: String,
    /// Generation.
    pub generation: i64,
    /// `labels`, `self`, `cross`, …, followed by the selection when it is not `all` ([`treatment`]).
    pub strategy: String,
    /// The selection alone (`all` when every pseudo-label was kept, and for generation 0).
    pub selection: String,
    /// Architecture or source name.
    pub model: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// The pair's other model (empty when not a pair).
    pub peer: String,
    /// Repeat index.
    pub repeat: i64,
    /// Metric name.
    pub metric: String,
    /// Value.
    pub value: f64,
    /// Part of its strategy's chain (see the study's `chain` column).
    pub chain: bool,
    /// The run id (empty for sources and committees).
    pub run: String,
}

impl ResultRow {
    /// True for a model scored against truth.
    pub fn is_model(&self) -> bool {
        self.subject == subjects::MODEL
    }

    /// True for a label source scored against truth.
    pub fn is_source(&self) -> bool {
        self.subject == subjects::SOURCE
    }

    /// True for a pairwise comparison.
    pub fn is_pair(&self) -> bool {
        self.subject == subjects::PAIR
    }

    /// True when `other` describes the same run or pair (any metric).
    pub fn same_subject(&self, other: &ResultRow) -> bool {
        (&self.subject, self.generation, &self.strategy, &self.model, &self.peer, &self.teacher, self.repeat)
            == (&other.subject, other.generation, &other.strategy, &other.model, &other.peer, &other.teacher, other.repeat)
    }
}

/// One row of `history.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// Run id.
    pub run: String,
    /// Architecture.
    pub model: String,
    /// Generation.
    pub generation: i64,
    /// Strategy, with its selection ([`treatment`]).
    pub strategy: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// Repeat index.
    pub repeat: i64,
    /// Epoch (1-based).
    pub epoch: i64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Mean validation loss.
    pub val_loss: Option<f64>,
}

fn table_error(path: &Path) -> impl Fn(PolarsError) -> ReportError + '_ {
    move |e| ReportError::Table { path: path.to_path_buf(), message: e.to_string() }
}

fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df.column(name)?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
}

/// A text column that older studies did not write: `default` for every row then.
fn strings_or(df: &DataFrame, name: &str, default: &str) -> PolarsResult<Vec<String>> {
    if df.get_column_names().iter().any(|c| c.as_str() == name) { strings(df, name) } else { Ok(vec![default.to_string(); df.height()]) }
}

/// The strategy column of a table, each value followed by its row's selection (see [`treatment`]).
fn treatments(df: &DataFrame) -> PolarsResult<Vec<String>> {
    let (strategy, selection) = (strings(df, "strategy")?, strings_or(df, "selection", "all")?);
    Ok(strategy.iter().zip(&selection).map(|(s, sel)| treatment(s, sel)).collect())
}

fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(df.column(name)?.i64()?.iter().map(Option::unwrap_or_default).collect())
}

fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df.column(name)?.f64()?.iter().collect())
}

/// Reads `results.parquet`.
pub fn read_results(path: &Path) -> Result<Vec<ResultRow>, ReportError> {
    let df = read_table(path)?;
    let read = || -> PolarsResult<Vec<ResultRow>> {
        use columns::*;
        let (subject, generation, strategy, model) =
            (strings(&df, SUBJECT)?, ints(&df, GENERATION)?, treatments(&df)?, strings(&df, MODEL)?);
        let (teacher, peer, repeat, metric, value) =
            (strings(&df, TEACHER)?, strings(&df, PEER)?, ints(&df, REPEAT)?, strings(&df, METRIC)?, floats(&df, VALUE)?);
        let chain: Vec<bool> = df.column(CHAIN)?.bool()?.iter().map(|b| b.unwrap_or(true)).collect();
        let selection = strings_or(&df, SELECTION, "all")?;
        let run = strings(&df, RUN)?;
        Ok((0..df.height())
            .map(|i| ResultRow {
                subject: subject[i].clone(),
                generation: generation[i],
                strategy: strategy[i].clone(),
                selection: selection[i].clone(),
                model: model[i].clone(),
                teacher: teacher[i].clone(),
                peer: peer[i].clone(),
                repeat: repeat[i],
                metric: metric[i].clone(),
                value: value[i].unwrap_or(f64::NAN),
                chain: chain[i],
                run: run[i].clone(),
            })
            .collect())
    };
    read().map_err(table_error(path))
}

/// Reads `history.parquet`.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>, ReportError> {
    let df = read_table(path)?;
    let read = || -> PolarsResult<Vec<HistoryRow>> {
        use columns::*;
        let (run, model, generation, strategy, teacher) =
            (strings(&df, RUN)?, strings(&df, MODEL)?, ints(&df, GENERATION)?, treatments(&df)?, strings(&df, TEACHER)?);
        let (repeat, epoch, train, val) = (ints(&df, REPEAT)?, ints(&df, EPOCH)?, floats(&df, TRAIN_LOSS)?, floats(&df, VAL_LOSS)?);
        Ok((0..df.height())
            .map(|i| HistoryRow {
                run: run[i].clone(),
                model: model[i].clone(),
                generation: generation[i],
                strategy: strategy[i].clone(),
                teacher: teacher[i].clone(),
                repeat: repeat[i],
                epoch: epoch[i],
                train_loss: train[i].unwrap_or(f64::NAN),
                val_loss: val[i],
            })
            .collect())
    };
    read().map_err(table_error(path))
}

/// One row of `summary.parquet`: a metric of one configuration with its interval over images and seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Generation.
    pub generation: i64,
    /// Strategy, with its selection ([`treatment`]).
    pub strategy: String,
    /// Architecture.
    pub model: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// Metric name.
    pub metric: String,
    /// Point estimate.
    pub estimate: f64,
    /// Lower end of the 95 % interval.
    pub low: f64,
    /// Upper end of the 95 % interval.
    pub high: f64,
}

/// One row of `verdicts.parquet`: a bias of one architecture and strategy at one generation
/// against generation 0.
#[derive(Clone, Debug, PartialEq)]
pub struct VerdictRow {
    /// Strategy, with its selection ([`treatment`]).
    pub strategy: String,
    /// Architecture.
    pub model: String,
    /// Generation compared with generation 0.
    pub generation: i64,
    /// The bias (a fingerprint metric).
    pub metric: String,
    /// Value at generation 0 with its interval.
    pub before: [f64; 3],
    /// Value at `generation` with its interval.
    pub after: [f64; 3],
    /// Change of the bias size with its interval.
    pub change: [f64; 3],
    /// Ratio of bias sizes with its interval (None when the bias was zero at generation 0).
    pub factor: Option<[f64; 3]>,
    /// `amplifies`, `cancels` or `holds`.
    pub verdict: String,
}

fn triple(df: &DataFrame, names: [&str; 3]) -> PolarsResult<Vec<Option<[f64; 3]>>> {
    let (a, b, c) = (floats(df, names[0])?, floats(df, names[1])?, floats(df, names[2])?);
    Ok((0..df.height()).map(|i| Some([a[i]?, b[i]?, c[i]?])).collect())
}

/// A table the study may not have written (older studies) or written without columns (nothing to
/// say, e.g. no later generation): `None` in both cases.
fn read_optional(path: &Path) -> Result<Option<DataFrame>, ReportError> {
    if !path.exists() {
        return Ok(None);
    }
    let df = read_table(path)?;
    Ok((df.width() > 0).then_some(df))
}

/// Reads `summary.parquet`; empty when the study predates it or has no truth.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>, ReportError> {
    let Some(df) = read_optional(path)? else { return Ok(Vec::new()) };
    let read = || -> PolarsResult<Vec<SummaryRow>> {
        let (generation, strategy, model, teacher, metric) =
            (ints(&df, "generation")?, treatments(&df)?, strings(&df, "model")?, strings(&df, "teacher")?, strings(&df, "metric")?);
        let values = triple(&df, ["estimate", "low", "high"])?;
        Ok((0..df.height())
            .filter_map(|i| {
                let [estimate, low, high] = values[i]?;
                Some(SummaryRow {
                    generation: generation[i],
                    strategy: strategy[i].clone(),
                    model: model[i].clone(),
                    teacher: teacher[i].clone(),
                    metric: metric[i].clone(),
                    estimate,
                    low,
                    high,
                })
            })
            .collect())
    };
    read().map_err(table_error(path))
}

/// Reads `verdicts.parquet`; empty when the study predates it or has a single generation.
pub fn read_verdicts(path: &Path) -> Result<Vec<VerdictRow>, ReportError> {
    let Some(df) = read_optional(path)? else { return Ok(Vec::new()) };
    let read = || -> PolarsResult<Vec<VerdictRow>> {
        let (strategy, model, generation, metric, verdict) =
            (treatments(&df)?, strings(&df, "model")?, ints(&df, "generation")?, strings(&df, "metric")?, strings(&df, "verdict")?);
        let before = triple(&df, ["before", "before_low", "before_high"])?;
        let after = triple(&df, ["after", "after_low", "after_high"])?;
        let change = triple(&df, ["change", "change_low", "change_high"])?;
        let factor = triple(&df, ["factor", "factor_low", "factor_high"])?;
        Ok((0..df.height())
            .filter_map(|i| {
                Some(VerdictRow {
                    strategy: strategy[i].clone(),
                    model: model[i].clone(),
                    generation: generation[i],
                    metric: metric[i].clone(),
                    before: before[i]?,
                    after: after[i]?,
                    change: change[i]?,
                    factor: factor[i],
                    verdict: verdict[i].clone(),
                })
            })
            .collect())
    };
    read().map_err(table_error(path))
}

/// One row of `pretraining.parquet`: a metric of a pre-trained model against the same
/// architecture without pre-training, at the same place in the study.
#[derive(Clone, Debug, PartialEq)]
pub struct PretrainingRow {
    /// The architecture without pre-training (`unet`).
    pub model: String,
    /// The pre-trained model (`unet+byol`).
    pub pretrained: String,
    /// Generation.
    pub generation: i64,
    /// Strategy, with its selection ([`treatment`]).
    pub strategy: String,
    /// Metric name (`miou` or a bias).
    pub metric: String,
    /// Value without pre-training, with its interval.
    pub without: [f64; 3],
    /// Value with pre-training, with its interval.
    pub with: [f64; 3],
    /// Change (of mIoU, or of the bias size) with its interval.
    pub change: [f64; 3],
    /// `raises` / `lowers` for mIoU, `amplifies` / `cancels` for a bias, or `holds`.
    pub verdict: String,
}

/// Reads `pretraining.parquet`; empty when the study has no pre-trained model.
pub fn read_pretraining(path: &Path) -> Result<Vec<PretrainingRow>, ReportError> {
    let Some(df) = read_optional(path)? else { return Ok(Vec::new()) };
    let read = || -> PolarsResult<Vec<PretrainingRow>> {
        let (model, pretrained, generation, strategy) =
            (strings(&df, "model")?, strings(&df, "pretrained")?, ints(&df, "generation")?, treatments(&df)?);
        let (metric, verdict) = (strings(&df, "metric")?, strings(&df, "verdict")?);
        let without = triple(&df, ["without", "without_low", "without_high"])?;
        let with = triple(&df, ["with", "with_low", "with_high"])?;
        let change = triple(&df, ["change", "change_low", "change_high"])?;
        Ok((0..df.height())
            .filter_map(|i| {
                Some(PretrainingRow {
                    model: model[i].clone(),
                    pretrained: pretrained[i].clone(),
                    generation: generation[i],
                    strategy: strategy[i].clone(),
                    metric: metric[i].clone(),
                    without: without[i]?,
                    with: with[i]?,
                    change: change[i]?,
                    verdict: verdict[i].clone(),
                })
            })
            .collect())
    };
    read().map_err(table_error(path))
}

/// One row of `targets.parquet`: a target judged for one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRow {
    /// The target (`miou >= 0.8`).
    pub target: String,
    /// Generation.
    pub generation: i64,
    /// Strategy, with its selection ([`treatment`]).
    pub strategy: String,
    /// Architecture.
    pub model: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// The metric with its interval.
    pub value: [f64; 3],
    /// `met`, `missed` or `undecided`.
    pub judgement: String,
}

/// Reads `targets.parquet`; empty when the manifest sets no targets.
pub fn read_targets(path: &Path) -> Result<Vec<TargetRow>, ReportError> {
    let Some(df) = read_optional(path)? else { return Ok(Vec::new()) };
    let read = || -> PolarsResult<Vec<TargetRow>> {
        let (target, generation, strategy, model, teacher, judgement) = (
            strings(&df, "target")?,
            ints(&df, "generation")?,
            treatments(&df)?,
            strings(&df, "model")?,
            strings(&df, "teacher")?,
            strings(&df, "judgement")?,
        );
        let values = triple(&df, ["estimate", "low", "high"])?;
        Ok((0..df.height())
            .filter_map(|i| {
                Some(TargetRow {
                    target: target[i].clone(),
                    generation: generation[i],
                    strategy: strategy[i].clone(),
                    model: model[i].clone(),
                    teacher: teacher[i].clone(),
                    value: values[i]?,
                    judgement: judgement[i].clone(),
                })
            })
            .collect())
    };
    read().map_err(table_error(path))
}
