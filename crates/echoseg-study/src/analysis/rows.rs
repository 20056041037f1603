//! The results tables, read back as typed rows from the files the study wrote (by the report,
//! and by the known-answer checks).
//!
//! This is the tables' file boundary: strategy, metric, bias and verdict names are parsed into
//! their enums here, and a name echoseg does not know is an error naming the file.

use std::path::Path;

use echoseg_agree::{Bias, Metric, Trend, Verdict};
use polars::prelude::*;

use crate::StudyError;
use crate::analysis::committee::MaskKind;
use crate::analysis::intervals::PretrainingVerdict;
use crate::analysis::tables::{Subject, columns};
use crate::plan::strategy::{EVERY_LABEL, PseudoLabels, Treatment};
use crate::plan::targets::{Judgement, Target};
use crate::store::read_table;

/// One row of `results.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    /// What the row scores.
    pub subject: Subject,
    /// Generation.
    pub generation: i64,
    /// What the model learned from (the strategy and selection columns).
    pub treatment: Treatment,
    /// Architecture or source name.
    pub model: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// The pair's other model (empty when not a pair).
    pub peer: String,
    /// Repeat index.
    pub repeat: i64,
    /// The metric.
    pub metric: Metric,
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
        self.subject == Subject::Model
    }

    /// True for a label source scored against truth.
    pub fn is_source(&self) -> bool {
        self.subject == Subject::Source
    }

    /// True for a pairwise comparison.
    pub fn is_pair(&self) -> bool {
        self.subject == Subject::Pair
    }

    /// True for all the models of one generation, strategy and repeat together.
    pub fn is_committee(&self) -> bool {
        self.subject == Subject::Committee
    }

    /// True when `other` describes the same run or pair (any metric).
    pub fn same_subject(&self, other: &ResultRow) -> bool {
        (self.subject, self.generation, &self.treatment, &self.model, &self.peer, &self.teacher, self.repeat)
            == (other.subject, other.generation, &other.treatment, &other.model, &other.peer, &other.teacher, other.repeat)
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
    /// What the run learned from.
    pub treatment: Treatment,
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

/// A table read from its file, with the file's path for errors.
struct Frame<'a> {
    df: DataFrame,
    path: &'a Path,
}

impl<'a> Frame<'a> {
    fn read(path: &'a Path) -> Result<Self, StudyError> {
        Ok(Self { df: read_table(path)?, path })
    }

    /// A table the study may not have written (older studies) or written without columns
    /// (nothing to say, e.g. no later generation): `None` in both cases.
    fn read_optional(path: &'a Path) -> Result<Option<Self>, StudyError> {
        if !path.exists() {
            return Ok(None);
        }
        let frame = Self::read(path)?;
        Ok((frame.df.width() > 0).then_some(frame))
    }

    fn height(&self) -> usize {
        self.df.height()
    }

    fn error(&self, e: PolarsError) -> StudyError {
        StudyError::Table { path: self.path.to_path_buf(), message: e.to_string() }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, StudyError> {
        let column = self.df.column(name).and_then(|c| c.str().cloned()).map_err(|e| self.error(e))?;
        Ok(column.iter().map(|s| s.unwrap_or_default().to_string()).collect())
    }

    /// A text column that older studies did not write: `default` for every row then.
    fn strings_or(&self, name: &str, default: &str) -> Result<Vec<String>, StudyError> {
        if self.has(name) { self.strings(name) } else { Ok(vec![default.to_string(); self.height()]) }
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>, StudyError> {
        let column = self.df.column(name).and_then(|c| c.i64().cloned()).map_err(|e| self.error(e))?;
        Ok(column.iter().map(Option::unwrap_or_default).collect())
    }

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, StudyError> {
        let column = self.df.column(name).and_then(|c| c.f64().cloned()).map_err(|e| self.error(e))?;
        Ok(column.iter().collect())
    }

    fn has(&self, name: &str) -> bool {
        self.df.get_column_names().iter().any(|c| c.as_str() == name)
    }

    /// A number column that older studies did not write: 0 for every row then.
    fn ints_or(&self, name: &str) -> Result<Vec<i64>, StudyError> {
        if self.has(name) { self.ints(name) } else { Ok(vec![0; self.height()]) }
    }

    /// A whole-number column with gaps, which older studies did not write: `None` for every row then.
    fn maybe_ints(&self, name: &str) -> Result<Vec<Option<i64>>, StudyError> {
        if !self.has(name) {
            return Ok(vec![None; self.height()]);
        }
        let column = self.df.column(name).and_then(|c| c.i64().cloned()).map_err(|e| self.error(e))?;
        Ok(column.iter().collect())
    }

    /// A yes/no column with gaps, which older studies did not write: `None` for every row then.
    fn maybe_bools(&self, name: &str) -> Result<Vec<Option<bool>>, StudyError> {
        if !self.has(name) {
            return Ok(vec![None; self.height()]);
        }
        let column = self.df.column(name).and_then(|c| c.bool().cloned()).map_err(|e| self.error(e))?;
        Ok(column.iter().collect())
    }

    /// A number column that older studies did not write: `None` for every row then.
    fn floats_or(&self, name: &str) -> Result<Vec<Option<f64>>, StudyError> {
        if self.has(name) { self.floats(name) } else { Ok(vec![None; self.height()]) }
    }

    fn bools(&self, name: &str, default: bool) -> Result<Vec<bool>, StudyError> {
        let column = self.df.column(name).and_then(|c| c.bool().cloned()).map_err(|e| self.error(e))?;
        Ok(column.iter().map(|b| b.unwrap_or(default)).collect())
    }

    fn triple(&self, names: [&str; 3]) -> Result<Vec<Option<[f64; 3]>>, StudyError> {
        let (a, b, c) = (self.floats(names[0])?, self.floats(names[1])?, self.floats(names[2])?);
        Ok((0..self.height()).map(|i| Some([a[i]?, b[i]?, c[i]?])).collect())
    }

    /// A column of names parsed by `parse`; `what` names the kind of name in the error.
    fn parsed<T>(&self, name: &str, what: &'static str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, StudyError> {
        self.strings(name)?
            .into_iter()
            .map(|n| parse(&n).ok_or_else(|| StudyError::UnknownName { path: self.path.to_path_buf(), what, name: n }))
            .collect()
    }

    /// The treatments the strategy, selection and pseudo-label columns describe (`replace` where
    /// a table has no `pseudo_labels` column).
    fn treatments(&self) -> Result<Vec<Treatment>, StudyError> {
        let (strategy, selection) = (self.strings(columns::STRATEGY)?, self.strings_or(columns::SELECTION, EVERY_LABEL)?);
        let modes = if self.has(columns::PSEUDO_LABELS) {
            self.parsed(columns::PSEUDO_LABELS, "pseudo-label mode", PseudoLabels::from_name)?
        } else {
            vec![PseudoLabels::Replace; self.height()]
        };
        strategy
            .iter()
            .zip(&selection)
            .zip(modes)
            .map(|((s, sel), mode)| {
                Treatment::from_columns(s, sel, mode).ok_or_else(|| StudyError::UnknownName {
                    path: self.path.to_path_buf(),
                    what: "strategy",
                    name: s.clone(),
                })
            })
            .collect()
    }
}

/// Reads `results.parquet`.
pub fn read_results(path: &Path) -> Result<Vec<ResultRow>, StudyError> {
    use columns::*;
    let f = Frame::read(path)?;
    let subject = f.parsed(SUBJECT, "subject", Subject::from_name)?;
    let (generation, treatment, model) = (f.ints(GENERATION)?, f.treatments()?, f.strings(MODEL)?);
    let (teacher, peer, repeat, value) = (f.strings(TEACHER)?, f.strings(PEER)?, f.ints(REPEAT)?, f.floats(VALUE)?);
    let metric = f.parsed(METRIC, "metric", Metric::from_name)?;
    let (chain, run) = (f.bools(CHAIN, true)?, f.strings(RUN)?);
    Ok((0..f.height())
        .map(|i| ResultRow {
            subject: subject[i],
            generation: generation[i],
            treatment: treatment[i].clone(),
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
}

/// Reads `history.parquet`.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>, StudyError> {
    use columns::*;
    let f = Frame::read(path)?;
    let (run, model, generation, treatment, teacher) =
        (f.strings(RUN)?, f.strings(MODEL)?, f.ints(GENERATION)?, f.treatments()?, f.strings(TEACHER)?);
    let (repeat, epoch, train, val) = (f.ints(REPEAT)?, f.ints(EPOCH)?, f.floats(TRAIN_LOSS)?, f.floats(VAL_LOSS)?);
    Ok((0..f.height())
        .map(|i| HistoryRow {
            run: run[i].clone(),
            model: model[i].clone(),
            generation: generation[i],
            treatment: treatment[i].clone(),
            teacher: teacher[i].clone(),
            repeat: repeat[i],
            epoch: epoch[i],
            train_loss: train[i].unwrap_or(f64::NAN),
            val_loss: val[i],
        })
        .collect())
}

/// One row of `summary.parquet`: a metric of one configuration with its interval over images and seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Generation.
    pub generation: i64,
    /// What the configuration learned from.
    pub treatment: Treatment,
    /// Architecture.
    pub model: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// The metric.
    pub metric: Metric,
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
    /// What the later generation learned from.
    pub treatment: Treatment,
    /// Architecture.
    pub model: String,
    /// The generation-0 model(s) its pseudo-labels come from, which it is compared with (its
    /// own under `self`, its teacher under `cross`, `fcn&dilated` for a committee; empty in
    /// studies that predate the column, which compared with the own generation 0).
    pub against: String,
    /// Generation compared with generation 0.
    pub generation: i64,
    /// The bias.
    pub bias: Bias,
    /// Value at generation 0 with its interval.
    pub before: [f64; 3],
    /// Value at `generation` with its interval.
    pub after: [f64; 3],
    /// Change of the bias size with its interval.
    pub change: [f64; 3],
    /// Ratio of bias sizes with its interval (None when the bias was zero at generation 0).
    pub factor: Option<[f64; 3]>,
    /// The practical minimum change the verdict required (None in studies that predate it).
    pub minimum: Option<f64>,
    /// What happened to the bias.
    pub verdict: Verdict,
    /// For an undecided verdict, the seeds that would decide it at the spread seen (`None` when
    /// decided, or when no practical number of seeds would).
    pub seeds_needed: Option<i64>,
    /// The change's spread: its standard deviation between seeds and over test images (`None`
    /// with one seed, or in studies that predate it).
    pub change_sd: Option<(f64, f64)>,
    /// Whether the student's architecture learns the task from these images, judged on its
    /// exact-label ceiling (`None` without a ceiling, or in studies that predate the column).
    pub learned: Option<bool>,
    /// Seeds compared.
    pub repeats: i64,
    /// The confidence of its intervals: 0.95, or more where seeds were added and every look at
    /// the verdicts is paid for (`None` in studies that predate the column).
    pub confidence: Option<f64>,
    /// Pairs of runs left out because one of them collapsed.
    pub collapsed: i64,
}

/// Reads `summary.parquet`; empty when the study predates it or has no truth.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (generation, treatment, model, teacher) = (f.ints("generation")?, f.treatments()?, f.strings("model")?, f.strings("teacher")?);
    let metric = f.parsed("metric", "metric", Metric::from_name)?;
    let values = f.triple(["estimate", "low", "high"])?;
    Ok((0..f.height())
        .filter_map(|i| {
            let [estimate, low, high] = values[i]?;
            Some(SummaryRow {
                generation: generation[i],
                treatment: treatment[i].clone(),
                model: model[i].clone(),
                teacher: teacher[i].clone(),
                metric: metric[i].clone(),
                estimate,
                low,
                high,
            })
        })
        .collect())
}

/// The verdicts a study answers with: its last generation, strategies that keep every
/// pseudo-label (selections are variations on them and fold away in the report).
pub fn answer_rows(verdicts: &[VerdictRow]) -> Vec<&VerdictRow> {
    let last = verdicts.iter().map(|v| v.generation).max().unwrap_or(0);
    verdicts.iter().filter(|v| v.generation == last && v.treatment.keeps_every_label()).collect()
}

/// Reads `verdicts.parquet`; empty when the study predates it or has a single generation.
pub fn read_verdicts(path: &Path) -> Result<Vec<VerdictRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (treatment, model, generation) = (f.treatments()?, f.strings("model")?, f.ints("generation")?);
    let against = f.strings_or("against", "")?;
    let learned = f.maybe_bools("learned")?;
    let bias = f.parsed("metric", "bias", Bias::from_name)?;
    let verdict = f.parsed("verdict", "verdict", Verdict::from_name)?;
    let before = f.triple(["before", "before_low", "before_high"])?;
    let after = f.triple(["after", "after_low", "after_high"])?;
    let change = f.triple(["change", "change_low", "change_high"])?;
    let factor = f.triple(["factor", "factor_low", "factor_high"])?;
    let (minimum, collapsed, repeats) = (f.floats_or("minimum")?, f.ints_or("collapsed")?, f.ints_or("repeats")?);
    let (seeds_needed, seed_sd, image_sd) =
        (f.maybe_ints("seeds_needed")?, f.floats_or("change_seed_sd")?, f.floats_or("change_image_sd")?);
    let confidence = f.floats_or("confidence")?;
    Ok((0..f.height())
        .filter_map(|i| {
            Some(VerdictRow {
                minimum: minimum[i],
                seeds_needed: seeds_needed[i],
                change_sd: seed_sd[i].zip(image_sd[i]),
                repeats: repeats[i],
                confidence: confidence[i],
                collapsed: collapsed[i],
                treatment: treatment[i].clone(),
                model: model[i].clone(),
                against: against[i].clone(),
                learned: learned[i],
                generation: generation[i],
                bias: bias[i],
                before: before[i]?,
                after: after[i]?,
                change: change[i]?,
                factor: factor[i],
                verdict: verdict[i],
            })
        })
        .collect())
}

/// One row of `gap.parquet`: how much of the gap between a teacher and the student's ceiling
/// the student recovered.
#[derive(Clone, Debug, PartialEq)]
pub struct GapRow {
    /// Generation of the student.
    pub generation: i64,
    /// What the student learned from.
    pub treatment: Treatment,
    /// The student's model.
    pub model: String,
    /// The teacher's model, or a committee's joined by `+`.
    pub teacher: String,
    /// The teacher's mIoU (a committee's best member's) with its interval.
    pub teacher_miou: [f64; 3],
    /// The student's mIoU with its interval.
    pub student_miou: [f64; 3],
    /// The ceiling's mIoU (the student's architecture on exact labels) with its interval.
    pub ceiling_miou: [f64; 3],
    /// PGR = (student − teacher) / (ceiling − teacher) with its interval; None when the teacher
    /// is within the minimum gap of the ceiling.
    pub pgr: Option<[f64; 3]>,
    /// Pairs left out because a run collapsed.
    pub collapsed: i64,
}

/// Reads `gap.parquet`; empty for studies without a ceiling or a later generation.
pub fn read_gap(path: &Path) -> Result<Vec<GapRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (generation, treatment, model, teacher) = (f.ints("generation")?, f.treatments()?, f.strings("model")?, f.strings("teacher")?);
    let teacher_miou = f.triple(["teacher_miou", "teacher_low", "teacher_high"])?;
    let student_miou = f.triple(["student_miou", "student_low", "student_high"])?;
    let ceiling_miou = f.triple(["ceiling_miou", "ceiling_low", "ceiling_high"])?;
    let (pgr, collapsed) = (f.triple(["pgr", "pgr_low", "pgr_high"])?, f.ints("collapsed")?);
    Ok((0..f.height())
        .filter_map(|i| {
            Some(GapRow {
                generation: generation[i],
                treatment: treatment[i].clone(),
                model: model[i].clone(),
                teacher: teacher[i].clone(),
                teacher_miou: teacher_miou[i]?,
                student_miou: student_miou[i]?,
                ceiling_miou: ceiling_miou[i]?,
                pgr: pgr[i],
                collapsed: collapsed[i],
            })
        })
        .collect())
}

/// One row of `trends.parquet`: where a bias went over the generations of one architecture's chains.
#[derive(Clone, Debug, PartialEq)]
pub struct TrendRow {
    /// What the chains learned from at their later generations (strategy, selection, mode).
    pub treatment: Treatment,
    /// The architecture.
    pub model: String,
    /// The bias.
    pub bias: Bias,
    /// Generations after generation 0.
    pub generations: i64,
    /// The bias at generation 0 with its interval.
    pub first: [f64; 3],
    /// The bias at the last generation with its interval.
    pub last: [f64; 3],
    /// Slope of the bias's size per generation with its interval.
    pub slope: [f64; 3],
    /// The slope times the generations: the drift the verdict-like judgement reads.
    pub drift: [f64; 3],
    /// The practical minimum the drift is judged against.
    pub minimum: f64,
    /// The judgement.
    pub trend: Trend,
    /// For an undecided trend, the seeds that would decide it at the spread seen.
    pub seeds_needed: Option<i64>,
    /// Seeds behind it.
    pub repeats: i64,
}

/// Reads `trends.parquet`; empty for studies of fewer than two generations.
pub fn read_trends(path: &Path) -> Result<Vec<TrendRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (treatment, model, generations) = (f.treatments()?, f.strings("model")?, f.ints("generations")?);
    let bias = f.parsed("metric", "bias", Bias::from_name)?;
    let trend = f.parsed("trend", "trend", Trend::from_name)?;
    let (first, last) = (f.triple(["first", "first_low", "first_high"])?, f.triple(["last", "last_low", "last_high"])?);
    let (slope, drift) = (f.triple(["slope", "slope_low", "slope_high"])?, f.triple(["drift", "drift_low", "drift_high"])?);
    let (minimum, seeds_needed, repeats) = (f.floats("minimum")?, f.maybe_ints("seeds_needed")?, f.ints("repeats")?);
    Ok((0..f.height())
        .filter_map(|i| {
            Some(TrendRow {
                treatment: treatment[i].clone(),
                model: model[i].clone(),
                bias: bias[i],
                generations: generations[i],
                first: first[i]?,
                last: last[i]?,
                slope: slope[i]?,
                drift: drift[i]?,
                minimum: minimum[i]?,
                trend: trend[i],
                seeds_needed: seeds_needed[i],
                repeats: repeats[i],
            })
        })
        .collect())
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
    /// What both models learned from.
    pub treatment: Treatment,
    /// The metric (mIoU or a bias).
    pub metric: Metric,
    /// Value without pre-training, with its interval.
    pub without: [f64; 3],
    /// Value with pre-training, with its interval.
    pub with: [f64; 3],
    /// Change (of mIoU, or of the bias size) with its interval.
    pub change: [f64; 3],
    /// What pre-training did to the metric.
    pub verdict: PretrainingVerdict,
}

/// Reads `pretraining.parquet`; empty when the study has no pre-trained model.
pub fn read_pretraining(path: &Path) -> Result<Vec<PretrainingRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (model, pretrained, generation, treatment) =
        (f.strings("model")?, f.strings("pretrained")?, f.ints("generation")?, f.treatments()?);
    let metric = f.parsed("metric", "metric", Metric::from_name)?;
    let verdict = f.parsed("verdict", "verdict", PretrainingVerdict::from_name)?;
    let without = f.triple(["without", "without_low", "without_high"])?;
    let with = f.triple(["with", "with_low", "with_high"])?;
    let change = f.triple(["change", "change_low", "change_high"])?;
    Ok((0..f.height())
        .filter_map(|i| {
            Some(PretrainingRow {
                model: model[i].clone(),
                pretrained: pretrained[i].clone(),
                generation: generation[i],
                treatment: treatment[i].clone(),
                metric: metric[i].clone(),
                without: without[i]?,
                with: with[i]?,
                change: change[i]?,
                verdict: verdict[i],
            })
        })
        .collect())
}

/// One row of `label_issue_quality.parquet`: how well one scorer found one source's errors.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelIssueQualityRow {
    /// The source.
    pub source: String,
    /// `committee` or an architecture.
    pub scorer: String,
    /// Labelled images of the source.
    pub images: i64,
    /// Concordance of image scores with true error shares (the AUROC for binary errors).
    pub auroc: Option<f64>,
    /// Share of flagged pixels that are truly wrong.
    pub flagged_precision: Option<f64>,
    /// Share of truly wrong pixels that were flagged.
    pub flagged_recall: Option<f64>,
    /// Share of pixels flagged.
    pub flagged_share: f64,
    /// Share of the source's pixels that are truly wrong.
    pub error_share: Option<f64>,
}

/// Reads `label_issue_quality.parquet`; empty when the study did not search for label issues.
pub fn read_label_issue_quality(path: &Path) -> Result<Vec<LabelIssueQualityRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (source, scorer, images) = (f.strings("source")?, f.strings("scorer")?, f.ints("images")?);
    let (auroc, precision, recall) = (f.floats("auroc")?, f.floats("flagged_precision")?, f.floats("flagged_recall")?);
    let (flagged, error) = (f.floats("flagged_share")?, f.floats("error_share")?);
    Ok((0..f.height())
        .map(|i| LabelIssueQualityRow {
            source: source[i].clone(),
            scorer: scorer[i].clone(),
            images: images[i],
            auroc: auroc[i],
            flagged_precision: precision[i],
            flagged_recall: recall[i],
            flagged_share: flagged[i].unwrap_or_default(),
            error_share: error[i],
        })
        .collect())
}

/// One row of `label_issue_confusions.parquet`: pixels one source gave one class that the
/// committee finds most probable as another (or the same).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelConfusionRow {
    /// The source.
    pub source: String,
    /// The class the source gave.
    pub given: String,
    /// The committee's most probable class.
    pub predicted: String,
    /// Pixels.
    pub pixels: i64,
}

/// Reads `label_issue_confusions.parquet`; empty when the study did not search for label issues.
pub fn read_label_confusions(path: &Path) -> Result<Vec<LabelConfusionRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (source, given, predicted, pixels) = (f.strings("source")?, f.strings("given")?, f.strings("predicted")?, f.ints("pixels")?);
    Ok((0..f.height())
        .map(|i| LabelConfusionRow {
            source: source[i].clone(),
            given: given[i].clone(),
            predicted: predicted[i].clone(),
            pixels: pixels[i],
        })
        .collect())
}

/// One row of `masks.parquet`: a source's masks or a configuration's committee mask on the test
/// images, one metric against truth.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskRow {
    /// The source's name, or `committee of generation G STRATEGY`.
    pub mask: String,
    /// A source's masks or a committee mask.
    pub kind: MaskKind,
    /// The metric.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
    /// Test images scored.
    pub images: i64,
}

/// Reads `masks.parquet`; empty when the test images have no truth.
pub fn read_masks(path: &Path) -> Result<Vec<MaskRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let (mask, images, value) = (f.strings("mask")?, f.ints("images")?, f.floats("value")?);
    let kind = f.parsed("kind", "mask kind", MaskKind::from_name)?;
    let metric = f.parsed("metric", "metric", Metric::from_name)?;
    Ok((0..f.height())
        .filter_map(|i| {
            Some(MaskRow { mask: mask[i].clone(), kind: kind[i], metric: metric[i].clone(), value: value[i]?, images: images[i] })
        })
        .collect())
}

/// One row of `targets.parquet`: a target judged for one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRow {
    /// The target (`miou >= 0.8`).
    pub target: Target,
    /// Generation.
    pub generation: i64,
    /// What the configuration learned from.
    pub treatment: Treatment,
    /// Architecture.
    pub model: String,
    /// Teacher architecture (empty when none).
    pub teacher: String,
    /// The metric with its interval.
    pub value: [f64; 3],
    /// Whether the configuration meets the target.
    pub judgement: Judgement,
}

/// Reads `targets.parquet`; empty when the manifest sets no targets.
pub fn read_targets(path: &Path) -> Result<Vec<TargetRow>, StudyError> {
    let Some(f) = Frame::read_optional(path)? else { return Ok(Vec::new()) };
    let target = f.parsed("target", "target", |t| Target::parse(t).ok())?;
    let (generation, treatment, model, teacher) = (f.ints("generation")?, f.treatments()?, f.strings("model")?, f.strings("teacher")?);
    let judgement = f.parsed("judgement", "judgement", Judgement::from_name)?;
    let values = f.triple(["estimate", "low", "high"])?;
    Ok((0..f.height())
        .filter_map(|i| {
            Some(TargetRow {
                target: target[i].clone(),
                generation: generation[i],
                treatment: treatment[i].clone(),
                model: model[i].clone(),
                teacher: teacher[i].clone(),
                value: values[i]?,
                judgement: judgement[i],
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    /// A one-row `summary.parquet` with the given strategy and metric, in a fresh folder.
    fn summary_file(name: &str, strategy: &str, metric: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("echoseg-rows-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("summary.parquet");
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("generation".into(), vec![1i64]),
            Column::new("strategy".into(), vec![strategy]),
            Column::new("selection".into(), vec!["confidence0.9"]),
            Column::new("model".into(), vec!["unet"]),
            Column::new("teacher".into(), vec!["unet"]),
            Column::new("metric".into(), vec![metric]),
            Column::new("estimate".into(), vec![0.5f64]),
            Column::new("low".into(), vec![0.4f64]),
            Column::new("high".into(), vec![0.6f64]),
        ])
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        path
    }

    #[test]
    fn names_are_parsed_at_read_time_and_an_unknown_one_names_its_file() {
        let path = summary_file("known", "self", "thin_recall");
        let rows = read_summary(&path).unwrap();
        let treatment =
            Treatment::Pseudo { strategy: Strategy::SelfTraining, selection: "confidence0.9".into(), pseudo_labels: PseudoLabels::Replace };
        assert_eq!((&rows[0].treatment, &rows[0].metric), (&treatment, &Metric::Bias(Bias::ThinRecall)));

        let path = summary_file("strategy", "teach", "miou");
        let error = read_summary(&path).unwrap_err().to_string();
        assert!(error.contains("unknown strategy `teach`") && error.contains(&path.display().to_string()), "{error}");
        let error = read_summary(&summary_file("metric", "self", "mioU")).unwrap_err().to_string();
        assert!(error.contains("unknown metric `mioU`"), "{error}");
    }

    #[test]
    fn subjects_mask_kinds_and_targets_are_typed_where_they_are_read() {
        for subject in Subject::ALL {
            assert_eq!(Subject::from_name(subject.name()), Some(subject));
        }
        assert_eq!(Subject::from_name("Model"), None, "names are exact");
        for kind in [MaskKind::Source, MaskKind::Committee] {
            assert_eq!(MaskKind::from_name(kind.name()), Some(kind));
        }
        let dir = std::env::temp_dir().join(format!("echoseg-rows-typed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("masks.parquet");
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("mask".into(), vec!["manual", "x"]),
            Column::new("kind".into(), vec!["source", "rater"]),
            Column::new("images".into(), vec![40i64, 40]),
            Column::new("metric".into(), vec!["miou", "miou"]),
            Column::new("value".into(), vec![0.7f64, 0.6]),
        ])
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        let error = read_masks(&path).unwrap_err().to_string();
        assert!(error.contains("unknown mask kind `rater`"), "{error}");

        let path = dir.join("targets.parquet");
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("target".into(), vec!["boundary_offset <= 0.5"]),
            Column::new("generation".into(), vec![1i64]),
            Column::new("strategy".into(), vec!["self"]),
            Column::new("model".into(), vec!["fcn"]),
            Column::new("teacher".into(), vec!["fcn"]),
            Column::new("judgement".into(), vec!["met"]),
            Column::new("estimate".into(), vec![0.3f64]),
            Column::new("low".into(), vec![0.2f64]),
            Column::new("high".into(), vec![0.4f64]),
        ])
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        let rows = read_targets(&path).unwrap();
        assert!(rows[0].target.comparison.lower_is_better(), "the direction comes from the parsed comparison");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
