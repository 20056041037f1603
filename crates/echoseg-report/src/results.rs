//! The results tables, read back from the files the study wrote.

use std::path::Path;

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
    /// `labels`, `self`, `cross`.
    pub strategy: String,
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
    /// Strategy.
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
            (strings(&df, SUBJECT)?, ints(&df, GENERATION)?, strings(&df, STRATEGY)?, strings(&df, MODEL)?);
        let (teacher, peer, repeat, metric, value) =
            (strings(&df, TEACHER)?, strings(&df, PEER)?, ints(&df, REPEAT)?, strings(&df, METRIC)?, floats(&df, VALUE)?);
        let chain: Vec<bool> = df.column(CHAIN)?.bool()?.iter().map(|b| b.unwrap_or(true)).collect();
        Ok((0..df.height())
            .map(|i| ResultRow {
                subject: subject[i].clone(),
                generation: generation[i],
                strategy: strategy[i].clone(),
                model: model[i].clone(),
                teacher: teacher[i].clone(),
                peer: peer[i].clone(),
                repeat: repeat[i],
                metric: metric[i].clone(),
                value: value[i].unwrap_or(f64::NAN),
                chain: chain[i],
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
            (strings(&df, RUN)?, strings(&df, MODEL)?, ints(&df, GENERATION)?, strings(&df, STRATEGY)?, strings(&df, TEACHER)?);
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
