//! Known answers: studies whose outcome is known by construction (a dilation every source
//! shares, two opposite dilations, random-only errors, a threshold heuristic, a spurious cue),
//! each with the answer written beside its manifest as `NAME.answer.toml`. Checking a finished
//! study against its answer says whether echoseg's verdicts come out right.

use std::path::{Path, PathBuf};

use echoseg_agree::{Metric, Verdict};
use serde::Deserialize;

use crate::StudyError;
use crate::analysis::rows::{SummaryRow, VerdictRow, read_results, read_summary, read_verdicts};
use crate::plan::strategy::{EVERY_LABEL, LABELS, PseudoLabels, Treatment};
use crate::store::StudyDir;

/// The answer file of a manifest: `experiments/validation/NAME.toml` → `NAME.answer.toml`.
pub fn answer_path(manifest: &Path) -> PathBuf {
    manifest.with_extension("answer.toml")
}

/// What a study should find, as written in its answer file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownAnswer {
    /// The answer in words.
    pub answer: String,
    /// The checks that make it precise.
    #[serde(rename = "check")]
    pub checks: Vec<Check>,
}

/// One check on the summary (a metric of some configurations) or on the verdicts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// What is checked, in words.
    pub what: String,
    /// The metric or bias (`miou`, `boundary_offset`, …).
    pub metric: String,
    /// Generation of the configurations checked.
    #[serde(default)]
    pub generation: u32,
    /// Their strategy column: `labels` (generation 0), `ceiling`, `self`, `cross`, …
    #[serde(default = "labels")]
    pub strategy: String,
    /// Their selection column.
    #[serde(default = "every_label")]
    pub selection: String,
    /// Their pseudo-label mode: `replace` (the default) or `accumulate`.
    pub pseudo_labels: Option<String>,
    /// Only this model (default: every model the study has).
    pub model: Option<String>,
    /// The estimate is at least this.
    pub min: Option<f64>,
    /// The estimate is at most this.
    pub max: Option<f64>,
    /// The interval's lower end lies above this (the interval excludes it).
    pub low_above: Option<f64>,
    /// The estimate lies at least this far below the same model's ceiling.
    pub below_ceiling: Option<f64>,
    /// The estimate (an mIoU) lies at least this far above the mIoU of the labels the model learned from.
    pub above_labels: Option<f64>,
    /// The verdict (from verdicts.csv) is one of these.
    pub verdict_in: Option<Vec<String>>,
}

fn labels() -> String {
    LABELS.into()
}

fn every_label() -> String {
    EVERY_LABEL.into()
}

/// The outcome of one check for one model (or configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// What was checked.
    pub what: String,
    /// The model (and teacher, for a pair) it was checked on.
    pub subject: String,
    /// True when the study's numbers meet the answer.
    pub right: bool,
    /// The numbers behind it.
    pub detail: String,
}

/// Reads an answer file.
pub fn read_answer(path: &Path) -> Result<KnownAnswer, StudyError> {
    let text = std::fs::read_to_string(path).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    let answer: KnownAnswer = toml::from_str(&text).map_err(|e| StudyError::Format { path: path.to_path_buf(), message: e.to_string() })?;
    // A misspelt verdict would never match and make a right study look wrong.
    for name in answer.checks.iter().filter_map(|c| c.verdict_in.as_ref()).flatten() {
        if Verdict::from_name(name).is_none() {
            let allowed: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
            return Err(StudyError::Format {
                path: path.to_path_buf(),
                message: format!("verdict_in names `{name}`, which is no verdict; allowed: {}", allowed.join(", ")),
            });
        }
    }
    Ok(answer)
}

/// The tables of a finished study that answers are checked on.
struct Tables {
    summary: Vec<SummaryRow>,
    verdicts: Vec<VerdictRow>,
    /// Per model, the mIoU of the labels its generation 0 learned from.
    labels_miou: Vec<(String, f64)>,
}

impl Tables {
    fn read(dir: &StudyDir) -> Result<Self, StudyError> {
        // results.parquet first: a study that never finished has none, and that is an error.
        let labels_miou = read_results(&dir.results_parquet())?
            .into_iter()
            .filter(|r| r.is_model() && r.metric == Metric::LabelsMiou)
            .map(|r| (r.model, r.value))
            .collect();
        Ok(Self { summary: read_summary(&dir.summary_parquet())?, verdicts: read_verdicts(&dir.verdicts_parquet())?, labels_miou })
    }
}

fn unknown(path: &Path, what: &'static str, name: &str) -> StudyError {
    StudyError::UnknownName { path: path.to_path_buf(), what, name: name.to_string() }
}

/// Checks the finished study in `dir` against `answer`: one outcome per check and model (or
/// teacher→student pair); a check that matches no row of the tables is one wrong outcome.
pub fn check_answer(answer: &KnownAnswer, dir: &StudyDir) -> Result<Vec<Outcome>, StudyError> {
    let tables = Tables::read(dir)?;
    let mut out = Vec::new();
    for check in &answer.checks {
        let mode = match &check.pseudo_labels {
            None => PseudoLabels::Replace,
            Some(name) => PseudoLabels::from_name(name).ok_or_else(|| unknown(&dir.summary_parquet(), "pseudo-label mode", name))?,
        };
        // Generation 1 is shared by both modes and tabled as `replace`.
        let treatment = Treatment::from_columns(&check.strategy, &check.selection, mode.at(check.generation))
            .ok_or_else(|| unknown(&dir.summary_parquet(), "strategy", &check.strategy))?;
        let metric = Metric::from_name(&check.metric).ok_or_else(|| unknown(&dir.summary_parquet(), "metric", &check.metric))?;
        let wanted = |model: &str| check.model.as_deref().is_none_or(|m| m == model);
        let before = out.len();
        if let Some(allowed) = &check.verdict_in {
            for v in tables.verdicts.iter().filter(|v| {
                v.generation == i64::from(check.generation)
                    && v.treatment == treatment
                    && Metric::Bias(v.bias) == metric
                    && wanted(&v.model)
            }) {
                let right = allowed.iter().any(|a| a == v.verdict.name());
                let detail = format!("{} (change {:+.3}; allowed: {})", v.verdict.name(), v.change[0], allowed.join(", "));
                out.push(Outcome { what: check.what.clone(), subject: v.model.clone(), right, detail });
            }
        } else {
            for s in tables.summary.iter().filter(|s| {
                s.generation == i64::from(check.generation) && s.treatment == treatment && s.metric == metric && wanted(&s.model)
            }) {
                out.push(judge_summary(check, s, &tables));
            }
        }
        if out.len() == before {
            out.push(Outcome {
                what: check.what.clone(),
                subject: check.model.clone().unwrap_or_else(|| "every model".into()),
                right: false,
                detail: format!("no row of {} {} at generation {} in the study's tables", treatment, check.metric, check.generation),
            });
        }
    }
    Ok(out)
}

/// One summary row against every bound the check gives.
fn judge_summary(check: &Check, s: &SummaryRow, tables: &Tables) -> Outcome {
    let mut right = true;
    let mut detail = vec![format!("{:.3}", s.estimate)];
    if let Some(min) = check.min {
        right &= s.estimate >= min;
        detail.push(format!("≥ {min}"));
    }
    if let Some(max) = check.max {
        right &= s.estimate <= max;
        detail.push(format!("≤ {max}"));
    }
    if let Some(floor) = check.low_above {
        right &= s.low > floor;
        detail.push(format!("interval low {:.3} > {floor}", s.low));
    }
    if let Some(gap) = check.below_ceiling {
        let ceiling = tables
            .summary
            .iter()
            .find(|c| c.treatment == Treatment::Ceiling && c.model == s.model && c.metric == s.metric)
            .map(|c| c.estimate);
        right &= ceiling.is_some_and(|c| c - s.estimate >= gap);
        detail.push(format!("ceiling {} (at least {gap} above)", ceiling.map_or("missing".into(), |c| format!("{c:.3}"))));
    }
    if let Some(margin) = check.above_labels {
        let labels: Vec<f64> = tables.labels_miou.iter().filter(|(m, _)| *m == s.model).map(|(_, v)| *v).collect();
        let labels = (!labels.is_empty()).then(|| labels.iter().sum::<f64>() / labels.len() as f64);
        right &= labels.is_some_and(|l| s.estimate - l >= margin);
        detail.push(format!("labels {} (at least {margin} below)", labels.map_or("missing".into(), |l| format!("{l:.3}"))));
    }
    let subject = if s.teacher.is_empty() { s.model.clone() } else { format!("{} → {}", s.teacher, s.model) };
    Outcome { what: check.what.clone(), subject, right, detail: detail.join(", ") }
}
