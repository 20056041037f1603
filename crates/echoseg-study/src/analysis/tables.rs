//! The results tables: one row per model × generation × strategy × seed × metric
//! (`results.parquet`, `results.csv`) and one per run × epoch (`history.*`).

use std::path::Path;

use echoseg_agree::{
    ClassSurface, Confusion, Fingerprint, Metric, SURFACE_TOLERANCE, StapleConfig, TruthScores, analyse_raters, class_surfaces, staple,
    truth_scores,
};
use polars::prelude::*;

use crate::StudyError;
use crate::analysis::fingerprints::{as_slices, fingerprint_of};
use crate::analysis::intervals::IntervalInputs;
use crate::analysis::outcome::RunOutcome;
use crate::plan::data::StudyData;
use crate::plan::manifest::Manifest;
use crate::plan::strategy::{PseudoLabels, Treatment};
use crate::plan::{Plan, PlannedRun};
use crate::store::{RunDir, StudyDir, read_labels, table_error, write_frame};
use echoseg_scene::Scene;

/// Column names of the results table, shared with the report.
pub mod columns {
    /// `model`, `source` or `pair`.
    pub const SUBJECT: &str = "subject";
    /// Generation (0 = trained on source labels).
    pub const GENERATION: &str = "generation";
    /// `labels` (generation 0), `self`, `cross`.
    pub const STRATEGY: &str = "strategy";
    /// Which pseudo-labelled pixels the student learned from (`all` for generation 0).
    pub const SELECTION: &str = "selection";
    /// Whether a student kept earlier generations' pseudo-labels (`replace` or `accumulate`);
    /// only in the tables of studies where some row accumulates.
    pub const PSEUDO_LABELS: &str = "pseudo_labels";
    /// Architecture of the model, or the source name.
    pub const MODEL: &str = "model";
    /// Architecture of the teacher (empty for generation 0 and sources).
    pub const TEACHER: &str = "teacher";
    /// The other model of a pair (empty otherwise).
    pub const PEER: &str = "peer";
    /// Repeat index.
    pub const REPEAT: &str = "repeat";
    /// Metric name: `miou`, `accuracy`, `iou_CLASS`, `dice_CLASS`, the surface metrics `hd95_CLASS`,
    /// `assd_CLASS`, `surface_dice_CLASS` and `cldice_CLASS`, the fingerprints, `ece`, `agreement`, `kappa`,
    /// `mean_error`, `error_phi`, `fleiss_kappa`, `vote_entropy`, `sensitivity_CLASS`,
    /// `staple_sensitivity_CLASS`, and for pseudo-label runs `offered_fraction`, `kept_fraction`,
    /// `pseudo_accuracy_before`, `pseudo_accuracy_after` (of the pool's pseudo-labels) and
    /// `pseudo_share` (their share of the student's loss weight).
    pub const METRIC: &str = "metric";
    /// The value.
    pub const VALUE: &str = "value";
    /// The run id (empty for sources).
    pub const RUN: &str = "run_id";
    /// True for the one run per architecture that continues its strategy's chain (the run the
    /// trajectories follow); false for the extra teacher→student pairs of the cross matrix.
    pub const CHAIN: &str = "chain";
    /// History: epoch (1-based).
    pub const EPOCH: &str = "epoch";
    /// History: mean training loss.
    pub const TRAIN_LOSS: &str = "train_loss";
    /// History: mean validation loss (null without validation).
    pub const VAL_LOSS: &str = "val_loss";
}

/// What a row of the results table scores (its `subject` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A trained model scored against truth.
    Model,
    /// A label source scored against truth on the images it labelled.
    Source,
    /// Two models of one generation and strategy compared with each other.
    Pair,
    /// All the models of one generation, strategy and repeat together (Fleiss' kappa, vote entropy).
    Committee,
}

impl Subject {
    /// Every subject.
    pub const ALL: [Subject; 4] = [Subject::Model, Subject::Source, Subject::Pair, Subject::Committee];

    /// The name in the `subject` column.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Model => "model",
            Subject::Source => "source",
            Subject::Pair => "pair",
            Subject::Committee => "committee",
        }
    }

    /// The subject a column value names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

#[derive(Default)]
struct Rows {
    subject: Vec<&'static str>,
    generation: Vec<i64>,
    strategy: Vec<String>,
    selection: Vec<String>,
    pseudo_labels: Vec<&'static str>,
    model: Vec<String>,
    teacher: Vec<String>,
    peer: Vec<String>,
    repeat: Vec<i64>,
    metric: Vec<String>,
    value: Vec<f64>,
    run: Vec<String>,
    chain: Vec<bool>,
}

struct RowKey<'a> {
    subject: Subject,
    generation: i64,
    treatment: Treatment,
    model: &'a str,
    teacher: &'a str,
    peer: &'a str,
    repeat: i64,
    run: &'a str,
    chain: bool,
}

impl Rows {
    fn push(&mut self, key: &RowKey<'_>, metric: &Metric, value: f64) {
        self.subject.push(key.subject.name());
        self.generation.push(key.generation);
        self.strategy.push(key.treatment.strategy_column().to_string());
        self.selection.push(key.treatment.selection_column().to_string());
        self.pseudo_labels.push(key.treatment.pseudo_labels().name());
        self.model.push(key.model.to_string());
        self.teacher.push(key.teacher.to_string());
        self.peer.push(key.peer.to_string());
        self.repeat.push(key.repeat);
        self.metric.push(metric.name());
        self.value.push(value);
        self.run.push(key.run.to_string());
        self.chain.push(key.chain);
    }

    /// Each foreground class's surface metrics (means over the images, empty masks by the rule of
    /// `echoseg_agree::surface`) and the count of images with one mask empty.
    fn push_surfaces(&mut self, key: &RowKey<'_>, surfaces: &[ClassSurface], class_names: &[String]) {
        for s in surfaces {
            let Some(name) = class_names.get(s.class) else { continue };
            for (metric, value) in s.metrics(name) {
                self.push(key, &metric, value);
            }
        }
    }

    fn push_scores(&mut self, key: &RowKey<'_>, scores: &TruthScores, fingerprint: &Fingerprint, class_names: &[String]) {
        self.push(key, &Metric::Miou, scores.miou);
        self.push(key, &Metric::Accuracy, scores.accuracy);
        for (name, iou) in class_names.iter().zip(&scores.iou) {
            if let Some(iou) = iou {
                self.push(key, &Metric::Iou(name.clone()), *iou);
            }
        }
        for (name, dice) in class_names.iter().zip(&scores.dice) {
            if let Some(dice) = dice {
                self.push(key, &Metric::Dice(name.clone()), *dice);
            }
        }
        for (bias, value) in fingerprint.named() {
            if let Some(v) = value {
                self.push(key, &Metric::Bias(bias), v);
            }
        }
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        use columns::*;
        DataFrame::new_infer_height(vec![
            Column::new(SUBJECT.into(), self.subject),
            Column::new(GENERATION.into(), self.generation),
            Column::new(STRATEGY.into(), self.strategy),
            Column::new(SELECTION.into(), self.selection),
            Column::new(PSEUDO_LABELS.into(), self.pseudo_labels),
            Column::new(MODEL.into(), self.model),
            Column::new(TEACHER.into(), self.teacher),
            Column::new(PEER.into(), self.peer),
            Column::new(REPEAT.into(), self.repeat),
            Column::new(METRIC.into(), self.metric),
            Column::new(VALUE.into(), self.value),
            Column::new(RUN.into(), self.run),
            Column::new(CHAIN.into(), self.chain),
        ])
    }
}

fn model_key<'a>(run: &'a PlannedRun, teacher: &'a str, subject: Subject, peer: &'a str) -> RowKey<'a> {
    RowKey {
        subject,
        generation: i64::from(run.generation),
        treatment: run.treatment(),
        model: run.model.as_str(),
        teacher,
        peer,
        repeat: i64::from(run.repeat),
        run: &run.id,
        chain: run.chain,
    }
}

/// Builds the results and history tables from finished runs and writes them (Parquet and CSV).
pub fn write_tables(manifest: &Manifest, plan: &Plan, outcomes: &[RunOutcome], data: &StudyData, dir: &StudyDir) -> Result<(), StudyError> {
    crate::analysis::label_issues::write_label_issues(manifest, plan, data, dir)?;
    let (tabled, outcomes) = results_part(plan, outcomes);
    let plan = &tabled;
    let class_names = data.classes.names().to_vec();
    crate::analysis::samples::write_samples(manifest, data, dir)?;
    let mut rows = Rows::default();

    // Each source's labels against truth: on the test images where it has masks there (a
    // folder dataset's sources), else on the training images it labelled.
    for (s, spec) in manifest.sources.iter().enumerate() {
        let on_test: Vec<(&Scene, &[u8])> = data
            .source_test
            .iter()
            .filter(|o| o.source == s && data.test[o.test].truth.is_some())
            .map(|o| (&data.test[o.test], o.labels.labels.as_slice()))
            .collect();
        let scored = if on_test.is_empty() {
            data.train.iter().filter(|l| l.source == s && l.scene.truth.is_some()).map(|l| (&l.scene, l.labels.labels.as_slice())).collect()
        } else {
            on_test
        };
        if scored.is_empty() {
            continue;
        }
        let predicted: Vec<&[u8]> = scored.iter().map(|(_, labels)| *labels).collect();
        let truth: Vec<&[u8]> = scored.iter().filter_map(|(scene, _)| scene.truth_labels().map(|t| t.labels.as_slice())).collect();
        let scores = truth_scores(&predicted, &truth, data.classes.len());
        let fingerprint = fingerprint_of(&predicted, &scored.iter().map(|(scene, _)| *scene).collect::<Vec<_>>(), &data.classes);
        let key = RowKey {
            subject: Subject::Source,
            generation: 0,
            treatment: Treatment::Labels,
            model: &spec.name,
            teacher: "",
            peer: "",
            repeat: 0,
            run: "",
            chain: true,
        };
        rows.push_scores(&key, &scores, &fingerprint, &class_names);
        let sizes: Vec<(usize, usize)> = scored.iter().map(|(scene, _)| (scene.image.width, scene.image.height)).collect();
        rows.push_surfaces(&key, &class_surfaces(&predicted, &truth, &sizes, data.classes.len(), SURFACE_TOLERANCE), &class_names);
    }

    // All of generation 0's training labels together against truth, beside each generation-0 model.
    let labels_miou = labels_miou(data);
    for (run, outcome) in plan.runs.iter().zip(outcomes) {
        let teacher = plan.teacher_name(run);
        let key = model_key(run, &teacher, Subject::Model, "");
        // Without truth there is nothing to score: no row rather than a vacuous mIoU of 1.
        if outcome.scored {
            rows.push_scores(&key, &outcome.test, &outcome.fingerprint, &class_names);
        }
        if let Some(ece) = outcome.calibration_error {
            rows.push(&key, &Metric::Ece, ece);
        }
        if let (Some(miou), crate::plan::Teaching::Labels) = (labels_miou, &run.teaching) {
            rows.push(&key, &Metric::LabelsMiou, miou);
        }
        rows.push(&key, &Metric::Steps, outcome.training.steps as f64);
        rows.push(&key, &Metric::Converged, f64::from(u8::from(outcome.training.converged)));
        if let Some(fit) = outcome.fit_miou {
            rows.push(&key, &Metric::FitMiou, fit);
        }
        if outcome.scored {
            rows.push(&key, &Metric::Collapsed, f64::from(u8::from(outcome.collapsed)));
        }
        if let Some(p) = &outcome.pretraining {
            rows.push(&key, &Metric::ByolEmbeddingStdInitial, f64::from(p.initial_embedding_std));
            if let (Some(first), Some(last)) = (p.history.first(), p.history.last()) {
                rows.push(&key, &Metric::ByolLossFirst, f64::from(first.loss));
                rows.push(&key, &Metric::ByolLossLast, f64::from(last.loss));
                rows.push(&key, &Metric::ByolEmbeddingStdLast, f64::from(last.embedding_std));
            }
        }
        if let Some(s) = &outcome.selection {
            rows.push(&key, &Metric::OfferedFraction, s.offered);
            rows.push(&key, &Metric::KeptFraction, s.kept);
            rows.push(&key, &Metric::PseudoShare, s.pseudo_share);
            for (metric, value) in [(Metric::PseudoAccuracyBefore, s.accuracy_before), (Metric::PseudoAccuracyAfter, s.accuracy_after)] {
                if let Some(v) = value {
                    rows.push(&key, &metric, v);
                }
            }
        }
    }

    // Every run's test predictions, read once for the surface and agreement rows and the intervals.
    let predictions = Predictions::read(plan, data, dir)?;
    let test_labels = &predictions.test;
    surface_rows(&mut rows, plan, outcomes, test_labels, data);
    committee_rows(&mut rows, plan, test_labels, data);

    let mut results = rows.frame().map_err(table_error(&dir.results_parquet()))?;
    write_table(&mut results, &dir.results_parquet(), &dir.results_csv())?;
    let mut history = history_frame(plan, outcomes).map_err(table_error(&dir.history_parquet()))?;
    write_table(&mut history, &dir.history_parquet(), &dir.history_csv())?;
    let mut frames = crate::analysis::intervals::interval_frames(plan, predictions.inputs(manifest, data, outcomes, labels_miou), dir)?;
    write_table(&mut frames.summary, &dir.summary_parquet(), &dir.summary_csv())?;
    write_table(&mut frames.verdicts, &dir.verdicts_parquet(), &dir.verdicts_csv())?;
    write_table(&mut frames.targets, &dir.targets_parquet(), &dir.targets_csv())?;
    // Only studies with pre-trained models have the pre-training table, and only those with a ceiling the gap table.
    write_if_any(&mut frames.pretraining, &dir.pretraining_parquet(), &dir.pretraining_csv())?;
    write_if_any(&mut frames.gap, &dir.gap_parquet(), &dir.gap_csv())?;
    // And only those of two or more generations the trends.
    write_if_any(&mut frames.trends, &dir.trends_parquet(), &dir.trends_csv())?;
    let mut masks =
        crate::analysis::committee::masks_frame(manifest, plan, data, test_labels).map_err(table_error(&dir.masks_parquet()))?;
    write_if_any(&mut masks, &dir.masks_parquet(), &dir.masks_csv())
}

/// The chain runs of the study's results (the plan without its cross-fitting runs) with an
/// undecided verdict: where added seeds would go (`study.max_repeats`).
pub fn undecided_runs(
    manifest: &Manifest,
    plan: &Plan,
    outcomes: &[RunOutcome],
    data: &StudyData,
    dir: &StudyDir,
) -> Result<Vec<usize>, StudyError> {
    let (tabled, outcomes) = results_part(plan, outcomes);
    let plan = &tabled;
    let predictions = Predictions::read(plan, data, dir)?;
    Ok(crate::analysis::intervals::undecided_runs(plan, predictions.inputs(manifest, data, outcomes, labels_miou(data))))
}

/// The runs the results tables hold and their outcomes: the plan without its cross-fitting runs,
/// which come last and belong to the label issues only.
fn results_part<'a>(plan: &Plan, outcomes: &'a [RunOutcome]) -> (Plan, &'a [RunOutcome]) {
    let tabled = plan.tabled();
    (Plan { runs: plan.runs[..tabled].to_vec() }, &outcomes[..tabled.min(outcomes.len())])
}

/// All of generation 0's training labels together against truth, where the data has it.
fn labels_miou(data: &StudyData) -> Option<f64> {
    let labelled: Vec<_> = data.train.iter().filter(|l| l.scene.truth.is_some()).collect();
    (!labelled.is_empty()).then(|| {
        let mut confusion = Confusion::new(data.classes.len());
        for l in &labelled {
            if let Some(t) = l.scene.truth_labels() {
                confusion.add_maps(&t.labels, &l.labels.labels);
            }
        }
        confusion.miou()
    })
}

/// Every run's predictions the interval tables compare, in plan order, read from the run store.
struct Predictions {
    test: Vec<Vec<Vec<u8>>>,
    /// On the test images' cue twins (studies with a cue), for cue reliance image by image.
    twins: Option<Vec<Vec<Vec<u8>>>>,
    /// On the synthetic-style test images (studies with them), for the domain gap.
    synthetic: Option<Vec<Vec<Vec<u8>>>>,
}

impl Predictions {
    fn read(plan: &Plan, data: &StudyData, dir: &StudyDir) -> Result<Self, StudyError> {
        Ok(Self {
            test: every_run_labels(plan, dir, RunDir::test_labels)?,
            twins: (!data.test_twins.is_empty()).then(|| every_run_labels(plan, dir, RunDir::twin_labels)).transpose()?,
            synthetic: (!data.synthetic_test.is_empty()).then(|| every_run_labels(plan, dir, RunDir::synthetic_labels)).transpose()?,
        })
    }

    fn inputs<'a>(
        &'a self,
        manifest: &'a Manifest,
        data: &'a StudyData,
        outcomes: &[RunOutcome],
        labels_miou: Option<f64>,
    ) -> IntervalInputs<'a> {
        IntervalInputs {
            data,
            test_labels: &self.test,
            twin_labels: self.twins.as_deref(),
            synthetic_labels: self.synthetic.as_deref(),
            collapsed: outcomes.iter().map(|o| o.collapsed).collect(),
            seed: manifest.seed,
            targets: &manifest.targets,
            rules: &manifest.verdict,
            labels_miou,
            verdict_confidence: manifest.study.verdict_confidence(),
        }
    }
}

/// Each scored run's surface metrics on the test images with truth.
fn surface_rows(rows: &mut Rows, plan: &Plan, outcomes: &[RunOutcome], test_labels: &[Vec<Vec<u8>>], data: &StudyData) {
    use rayon::prelude::*;
    let with_truth: Vec<usize> = (0..data.test.len()).filter(|&i| data.test[i].truth.is_some()).collect();
    let truth: Vec<&[u8]> = with_truth.iter().filter_map(|&i| data.test[i].truth_labels().map(|t| t.labels.as_slice())).collect();
    let sizes: Vec<(usize, usize)> = with_truth.iter().map(|&i| (data.test[i].image.width, data.test[i].image.height)).collect();
    if truth.is_empty() {
        return;
    }
    let surfaces: Vec<Vec<ClassSurface>> = test_labels
        .par_iter()
        .map(|labels| {
            let predicted: Vec<&[u8]> = with_truth.iter().map(|&i| labels[i].as_slice()).collect();
            class_surfaces(&predicted, &truth, &sizes, data.classes.len(), SURFACE_TOLERANCE)
        })
        .collect();
    let class_names = data.classes.names().to_vec();
    for ((run, outcome), surfaces) in plan.runs.iter().zip(outcomes).zip(&surfaces) {
        if outcome.scored {
            let teacher = plan.teacher_name(run);
            rows.push_surfaces(&model_key(run, &teacher, Subject::Model, ""), surfaces, &class_names);
        }
    }
}

/// Every run's predicted label maps from the file `file` names in its run directory, in plan order.
fn every_run_labels(plan: &Plan, dir: &StudyDir, file: fn(&RunDir) -> std::path::PathBuf) -> Result<Vec<Vec<Vec<u8>>>, StudyError> {
    plan.runs.iter().map(|r| read_labels(&file(&dir.run(&r.id))).map(|f| f.maps)).collect()
}

/// Writes a table that only some studies have, and removes an earlier study's when this one has none.
fn write_if_any(frame: &mut DataFrame, parquet: &Path, csv: &Path) -> Result<(), StudyError> {
    let _ = std::fs::remove_file(parquet);
    let _ = std::fs::remove_file(csv);
    if frame.height() > 0 { write_table(frame, parquet, csv) } else { Ok(()) }
}

/// Writes a table without its `pseudo_labels` column where no row accumulates, so the tables of
/// studies that only replace (every study before the option) stay what they were.
fn write_table(frame: &mut DataFrame, parquet: &Path, csv: &Path) -> Result<(), StudyError> {
    let replace_only = frame
        .column(columns::PSEUDO_LABELS)
        .ok()
        .and_then(|c| c.str().ok().map(|c| c.iter().all(|v| v.is_none_or(|v| v == PseudoLabels::Replace.name()))));
    if replace_only == Some(true) {
        let _ = frame.drop_in_place(columns::PSEUDO_LABELS);
    }
    write_frame(frame, parquet, csv)
}

/// Per chain group (repeat, generation, strategy, selection) of two or more models: Fleiss' kappa and vote
/// entropy; per pair their pixel agreement, Cohen's kappa and, with truth, the phi correlation of
/// their errors and their mean error; per model and class STAPLE's estimated sensitivity beside
/// the true one, so the report can show how well agreement alone judges the models.
/// `test_labels[i]` are the test predictions of `plan.runs[i]`.
fn committee_rows(rows: &mut Rows, plan: &Plan, test_labels: &[Vec<Vec<u8>>], data: &StudyData) {
    let classes = data.classes.len();
    let truth: Option<Vec<&[u8]>> = data.test.iter().map(|s| s.truth_labels().map(|t| t.labels.as_slice())).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in plan.runs.iter().enumerate().filter(|(_, r)| r.chain) {
        match groups.iter_mut().find(|g| {
            let f = &plan.runs[g[0]];
            (f.repeat, f.generation, f.treatment()) == (r.repeat, r.generation, r.treatment())
        }) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    for members in groups.iter().filter(|g| g.len() >= 2) {
        let raters: Vec<Vec<&[u8]>> = members.iter().map(|&i| as_slices(&test_labels[i])).collect();
        let Ok(analysis) = analyse_raters(&raters, truth.as_deref(), classes) else { continue };
        let first = &plan.runs[members[0]];
        let key = RowKey {
            subject: Subject::Committee,
            model: "",
            teacher: "",
            peer: "",
            run: "",
            ..model_key(first, "", Subject::Committee, "")
        };
        rows.push(&key, &Metric::FleissKappa, analysis.fleiss_kappa);
        rows.push(&key, &Metric::VoteEntropy, analysis.mean_vote_entropy);
        let mut pair = 0;
        for x in 0..members.len() {
            for y in x + 1..members.len() {
                let (a, b) = (&plan.runs[members[x]], &plan.runs[members[y]]);
                let teacher = plan.teacher_name(a);
                let key = model_key(a, &teacher, Subject::Pair, b.model.as_str());
                rows.push(&key, &Metric::Agreement, analysis.agreement[x][y]);
                rows.push(&key, &Metric::Kappa, analysis.kappa[x][y]);
                if let Some(t) = &analysis.truth {
                    rows.push(&key, &Metric::MeanError, t.disagreement_vs_error[pair].mean_error);
                    if let Some(phi) = t.error_phi[x][y] {
                        rows.push(&key, &Metric::ErrorPhi, phi);
                    }
                }
                pair += 1;
            }
        }
        let Ok(estimate) = staple(&raters, classes, &StapleConfig::default()) else { continue };
        for (j, &i) in members.iter().enumerate() {
            let run = &plan.runs[i];
            let teacher = plan.teacher_name(run);
            let key = model_key(run, &teacher, Subject::Model, "");
            for c in 1..classes {
                let name = &data.classes.names()[c];
                rows.push(&key, &Metric::StapleSensitivity(name.clone()), estimate.sensitivity[j][c]);
                if let Some(truth) = &truth {
                    let confusion = raters[j].iter().zip(truth).fold(Confusion::new(classes), |mut m, (p, t)| {
                        m.add_maps(t, p);
                        m
                    });
                    if let Some(recall) = confusion.recall(c) {
                        rows.push(&key, &Metric::Sensitivity(name.clone()), recall);
                    }
                }
            }
        }
    }
}

fn history_frame(plan: &Plan, outcomes: &[RunOutcome]) -> PolarsResult<DataFrame> {
    use columns::*;
    let (mut run, mut model, mut generation, mut strategy, mut teacher, mut repeat) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut selection, mut pseudo_labels) = (vec![], vec![]);
    let (mut epoch, mut train_loss, mut val_loss) = (vec![], vec![], vec![]);
    for (r, o) in plan.runs.iter().zip(outcomes) {
        for e in &o.training.history {
            run.push(r.id.clone());
            model.push(r.model.as_str());
            generation.push(i64::from(r.generation));
            let treatment = r.treatment();
            strategy.push(treatment.strategy_column());
            selection.push(treatment.selection_column().to_string());
            pseudo_labels.push(treatment.pseudo_labels().name());
            teacher.push(plan.teacher_name(r));
            repeat.push(i64::from(r.repeat));
            epoch.push(e.epoch as i64);
            train_loss.push(f64::from(e.train_loss));
            val_loss.push(e.val_loss.map(f64::from));
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new(RUN.into(), run),
        Column::new(MODEL.into(), model),
        Column::new(GENERATION.into(), generation),
        Column::new(STRATEGY.into(), strategy),
        Column::new(SELECTION.into(), selection),
        Column::new(PSEUDO_LABELS.into(), pseudo_labels),
        Column::new(TEACHER.into(), teacher),
        Column::new(REPEAT.into(), repeat),
        Column::new(EPOCH.into(), epoch),
        Column::new(TRAIN_LOSS.into(), train_loss),
        Column::new(VAL_LOSS.into(), val_loss),
    ])
}
