//! Intervals and verdicts: every headline number with its bootstrap interval over test images
//! and seeds (`summary.*`), and for every strategy, architecture, later generation and bias the
//! change against generation 0 with a verdict (`verdicts.*`).

use std::collections::BTreeMap;

use echoseg_agree::{
    Bias, BootstrapConfig, Confusion, FingerprintCounts, Interval, Metric, Ratio, Spread, Verdict, VerdictRules, bootstrap,
    bootstrap_spread, seeds_to_decide,
};
use polars::prelude::*;
use rayon::prelude::*;

use crate::StudyError;
use crate::analysis::fingerprints::{cue_changes, image_counts};
use crate::plan::data::StudyData;
use crate::plan::strategy::Treatment;
use crate::plan::targets::Target;
use crate::plan::{Plan, PlannedRun, Teaching};
use crate::store::StudyDir;

/// What pre-training did to a metric: for mIoU a larger value is better, not a larger bias, so
/// its directions have their own words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PretrainingVerdict {
    /// mIoU rose, and the interval of the change excludes no change.
    Raises,
    /// mIoU fell, and the interval of the change excludes no change.
    Lowers,
    /// A bias grew, and the interval of the change excludes no change.
    Amplifies,
    /// A bias shrank, and the interval of the change excludes no change.
    Cancels,
    /// A signed bias changed sign (see [`Verdict::Reverses`]).
    Reverses,
    /// No practical change: the interval of the change lies inside ± the practical minimum.
    Holds,
    /// Neither a direction nor an equivalence (see [`Verdict::Undecided`]).
    Undecided,
    /// Most of the runs compared collapsed.
    Collapsed,
}

impl PretrainingVerdict {
    /// Every pre-training verdict.
    pub const ALL: [PretrainingVerdict; 8] = [
        PretrainingVerdict::Raises,
        PretrainingVerdict::Lowers,
        PretrainingVerdict::Amplifies,
        PretrainingVerdict::Cancels,
        PretrainingVerdict::Reverses,
        PretrainingVerdict::Holds,
        PretrainingVerdict::Undecided,
        PretrainingVerdict::Collapsed,
    ];

    /// The verdict on `metric` from the verdict on the change of its size.
    pub fn of(metric: &Metric, verdict: Verdict) -> Self {
        match (metric, verdict.direction(), verdict) {
            (_, _, Verdict::Collapsed | Verdict::Unlearned) => PretrainingVerdict::Collapsed,
            (_, _, Verdict::Reverses) => PretrainingVerdict::Reverses,
            (_, _, Verdict::Undecided) => PretrainingVerdict::Undecided,
            (Metric::Miou, 1, _) => PretrainingVerdict::Raises,
            (Metric::Miou, -1, _) => PretrainingVerdict::Lowers,
            (_, 1, _) => PretrainingVerdict::Amplifies,
            (_, -1, _) => PretrainingVerdict::Cancels,
            _ => PretrainingVerdict::Holds,
        }
    }

    /// The word used in tables and the report.
    pub fn name(self) -> &'static str {
        match self {
            PretrainingVerdict::Raises => "raises",
            PretrainingVerdict::Lowers => "lowers",
            PretrainingVerdict::Amplifies => Verdict::Amplifies.name(),
            PretrainingVerdict::Cancels => Verdict::Cancels.name(),
            PretrainingVerdict::Reverses => Verdict::Reverses.name(),
            PretrainingVerdict::Holds => Verdict::Holds.name(),
            PretrainingVerdict::Undecided => Verdict::Undecided.name(),
            PretrainingVerdict::Collapsed => Verdict::Collapsed.name(),
        }
    }

    /// The verdict a table word stands for.
    pub fn from_name(name: &str) -> Option<PretrainingVerdict> {
        PretrainingVerdict::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// One test image's counts for one run.
#[derive(Clone, Debug)]
struct ImageCounts {
    confusion: Confusion,
    fingerprint: FingerprintCounts,
    /// Its cue pixels and how many of them change label with the cue flipped (studies with a cue).
    cue: Option<Ratio>,
    /// The confusion of the synthetic-style test image of the same index, for the domain gap:
    /// the two sets are drawn alike, so resampling pairs resamples both.
    synthetic: Option<Confusion>,
}

impl ImageCounts {
    /// The counts of several runs on one image pooled, as one committee of networks: every metric
    /// computed from them is the members' pooled value (their pixels counted together).
    fn pooled<'a>(members: impl IntoIterator<Item = &'a ImageCounts>) -> Option<ImageCounts> {
        let mut members = members.into_iter();
        let mut out = members.next()?.clone();
        for m in members {
            out.confusion.merge(&m.confusion);
            out.fingerprint.merge(&m.fingerprint);
            out.cue = out.cue.zip(m.cue).map(|(mut a, b)| {
                a.merge(b);
                a
            });
            out.synthetic = out.synthetic.zip(m.synthetic.as_ref()).map(|(mut a, b)| {
                a.merge(b);
                a
            });
        }
        Some(out)
    }
}

/// A run's predictions on the images that pair with its test images, where the study has them.
#[derive(Clone, Copy)]
struct Extra<'a> {
    /// On the cue twins.
    twins: Option<&'a [Vec<u8>]>,
    /// On the synthetic-style test images.
    synthetic: Option<&'a [Vec<u8>]>,
}

/// A metric's value over a set of image counts (`None` for a metric without per-image counts).
fn metric(measured: &Metric, units: &[&ImageCounts]) -> Option<f64> {
    match measured {
        Metric::Miou => {
            let mut c = Confusion::new(units.first()?.confusion.classes());
            units.iter().for_each(|u| c.merge(&u.confusion));
            Some(c.miou())
        }
        Metric::Bias(Bias::DomainGap) => {
            let (mut real, mut synthetic) = (Confusion::new(units.first()?.confusion.classes()), None::<Confusion>);
            for u in units {
                let Some(s) = &u.synthetic else { continue };
                real.merge(&u.confusion);
                synthetic.get_or_insert_with(|| Confusion::new(s.classes())).merge(s);
            }
            Some(real.miou() - synthetic?.miou())
        }
        Metric::Bias(Bias::CueReliance) => {
            let mut pooled = Ratio::default();
            for u in units {
                pooled.merge(u.cue?);
            }
            pooled.value()
        }
        Metric::Bias(bias) => {
            let mut f = FingerprintCounts::default();
            units.iter().for_each(|u| f.merge(&u.fingerprint));
            f.fingerprint().get(*bias)
        }
        _ => None,
    }
}

fn run_counts(labels: &[Vec<u8>], extra: Extra<'_>, data: &StudyData) -> Vec<ImageCounts> {
    labels
        .par_iter()
        .enumerate()
        .zip(data.test.par_iter())
        .filter_map(|((i, l), scene)| {
            let truth = scene.truth_labels()?;
            let cue = extra
                .twins
                .zip(data.test_twins.get(i))
                .zip(data.cue_class)
                .map(|((t, twin), class)| cue_changes(l, &t[i], scene, twin, class));
            let synthetic = extra
                .synthetic
                .zip(data.synthetic_test.get(i))
                .and_then(|(s, scene)| Some(Confusion::from_maps(&scene.truth_labels()?.labels, s.get(i)?, data.classes.len())));
            Some(ImageCounts {
                confusion: Confusion::from_maps(&truth.labels, l, data.classes.len()),
                fingerprint: image_counts(l, scene, &data.classes)?,
                cue,
                synthetic,
            })
        })
        .collect()
}

#[derive(Default)]
struct Columns {
    text: BTreeMap<&'static str, Vec<String>>,
    int: BTreeMap<&'static str, Vec<i64>>,
    maybe_int: BTreeMap<&'static str, Vec<Option<i64>>>,
    maybe_bool: BTreeMap<&'static str, Vec<Option<bool>>>,
    float: BTreeMap<&'static str, Vec<Option<f64>>>,
    order: Vec<&'static str>,
}

impl Columns {
    fn text(&mut self, name: &'static str, value: &str) {
        self.note(name);
        self.text.entry(name).or_default().push(value.to_string());
    }
    fn int(&mut self, name: &'static str, value: i64) {
        self.note(name);
        self.int.entry(name).or_default().push(value);
    }
    fn maybe_int(&mut self, name: &'static str, value: Option<i64>) {
        self.note(name);
        self.maybe_int.entry(name).or_default().push(value);
    }
    fn maybe_bool(&mut self, name: &'static str, value: Option<bool>) {
        self.note(name);
        self.maybe_bool.entry(name).or_default().push(value);
    }
    fn float(&mut self, name: &'static str, value: Option<f64>) {
        self.note(name);
        self.float.entry(name).or_default().push(value);
    }
    fn interval(&mut self, prefix: [&'static str; 3], value: Option<Interval>) {
        self.float(prefix[0], value.map(|i| i.estimate));
        self.float(prefix[1], value.map(|i| i.low));
        self.float(prefix[2], value.map(|i| i.high));
    }
    fn note(&mut self, name: &'static str) {
        if !self.order.contains(&name) {
            self.order.push(name);
        }
    }
    fn frame(mut self) -> PolarsResult<DataFrame> {
        if self.order.is_empty() {
            return Ok(DataFrame::empty());
        }
        let columns = self
            .order
            .iter()
            .map(|&n| {
                if let Some(v) = self.text.remove(n) {
                    Column::new(n.into(), v)
                } else if let Some(v) = self.int.remove(n) {
                    Column::new(n.into(), v)
                } else if let Some(v) = self.maybe_int.remove(n) {
                    Column::new(n.into(), v)
                } else if let Some(v) = self.maybe_bool.remove(n) {
                    Column::new(n.into(), v)
                } else {
                    Column::new(n.into(), self.float.remove(n).unwrap_or_default())
                }
            })
            .collect();
        DataFrame::new_infer_height(columns)
    }
}

/// A bias before and after pseudo-labelling, paired image by image within each seed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Comparison {
    before: Interval,
    after: Interval,
    /// Change of the bias size (after − before).
    change: Interval,
    /// The seed and image variances of the change (two or more seeds).
    spread: Option<Spread>,
    /// Ratio of bias sizes (after / before); `None` when the bias was zero before.
    factor: Option<Interval>,
    verdict: Verdict,
}

/// The smallest change of mIoU a pre-training verdict calls a direction: two points.
pub const MIOU_MINIMUM: f64 = 0.02;

/// The practical minimum change of `measured` under `rules`.
fn minimum(measured: &Metric, rules: &VerdictRules) -> f64 {
    measured.bias().map_or(MIOU_MINIMUM, |b| rules.minimum(b))
}

/// `measured` before and after, and the change of its size ([`Metric::size`]), judged with a
/// practical `minimum` change.
fn compare(groups: &[Vec<(ImageCounts, ImageCounts)>], measured: &Metric, minimum: f64, config: &BootstrapConfig) -> Option<Comparison> {
    let side = |after: bool| {
        move |u: &[&(ImageCounts, ImageCounts)]| {
            let units: Vec<&ImageCounts> = u.iter().map(|(b, a)| if after { a } else { b }).collect();
            metric(measured, &units)
        }
    };
    let before = bootstrap(groups, config, side(false))?.within(measured.range());
    let after = bootstrap(groups, config, side(true))?.within(measured.range());
    let span = measured.range().map(|(low, high)| (low - high, high - low));
    let changed = bootstrap_spread(groups, config, |u| Some(measured.size(side(true)(u)?) - measured.size(side(false)(u)?)))?;
    let (change, spread) = (changed.interval.within(span), changed.spread);
    let factor = bootstrap(groups, config, |u| {
        let b = measured.size(side(false)(u)?);
        (b > 1e-9).then_some(measured.size(side(true)(u)?) / b)
    });
    let verdict = Verdict::judge(measured.signed(), &before, &after, &change, minimum);
    Some(Comparison { before, after, change, spread, factor, verdict })
}

/// Treatment, architecture and generation of a chain run.
type ChainKey<'a> = (&'a Treatment, &'a str, u32);

/// A chain run and the generation-0 runs its pseudo-labels come from, by plan index.
#[derive(Clone, Debug)]
struct Lineage {
    roots: Vec<usize>,
    student: usize,
}

/// Generation, treatment, architecture and teachers of a configuration.
type ConfigurationKey<'a> = (u32, &'a Treatment, &'a str, &'a str);

/// The interval tables of a finished study.
pub struct IntervalFrames {
    /// Every configuration's metrics with intervals (`summary.*`).
    pub summary: DataFrame,
    /// Every bias before and after pseudo-labelling, with its verdict (`verdicts.*`).
    pub verdicts: DataFrame,
    /// The manifest's targets judged (`targets.*`).
    pub targets: DataFrame,
    /// What pre-training changed (`pretraining.*`, empty without pre-trained models).
    pub pretraining: DataFrame,
    /// The gap recovered by every teacher→student pair (`gap.*`, empty without a ceiling).
    pub gap: DataFrame,
    /// Every bias's trend over generations (`trends.*`, empty below two generations).
    pub trends: DataFrame,
}

/// What the interval tables are computed from besides the plan: the data, every run's test
/// predictions (`test_labels[i]` of `plan.runs[i]`) and whether it collapsed, and the rules.
pub struct IntervalInputs<'a> {
    /// The study's images.
    pub data: &'a StudyData,
    /// Test predictions per run, in plan order.
    pub test_labels: &'a [Vec<Vec<u8>>],
    /// Predictions on the test images' cue twins per run, in plan order (studies with a cue).
    pub twin_labels: Option<&'a [Vec<Vec<u8>>]>,
    /// Predictions on the synthetic-style test images per run, in plan order (studies with them).
    pub synthetic_labels: Option<&'a [Vec<Vec<u8>>]>,
    /// Per run, in plan order: its test predictions collapsed.
    pub collapsed: Vec<bool>,
    /// The study seed (the bootstrap's).
    pub seed: u64,
    /// The manifest's targets.
    pub targets: &'a [Target],
    /// The verdicts' practical minimums.
    pub rules: &'a VerdictRules,
    /// The mIoU of generation 0's training labels against truth, where the data has it.
    pub labels_miou: Option<f64>,
    /// The confidence of the verdicts' intervals ([`crate::plan::manifest::StudySettings::verdict_confidence`]).
    pub verdict_confidence: f64,
}

/// The summary, verdict, target, pre-training and gap tables of a finished study.
pub fn interval_frames(plan: &Plan, inputs: IntervalInputs<'_>, dir: &StudyDir) -> Result<IntervalFrames, StudyError> {
    let targets = inputs.targets;
    let study = evidence(plan, inputs);
    let (summary, judged) = summary_columns(&study, targets);
    let (verdicts, _) = verdict_columns(&study);
    let pretraining = pretraining_columns(&study);
    let gap = gap_columns(&study);
    let trends = trends::trend_columns(&study);
    let error = |path: std::path::PathBuf| move |e: PolarsError| StudyError::Table { path: path.clone(), message: e.to_string() };
    Ok(IntervalFrames {
        summary: summary.frame().map_err(error(dir.summary_parquet()))?,
        verdicts: verdicts.frame().map_err(error(dir.verdicts_parquet()))?,
        targets: judged.frame().map_err(error(dir.targets_parquet()))?,
        pretraining: pretraining.frame().map_err(error(dir.pretraining_parquet()))?,
        gap: gap.frame().map_err(error(dir.gap_parquet()))?,
        trends: trends.frame().map_err(error(dir.trends_parquet()))?,
    })
}

/// The chain runs (plan indices) with at least one undecided verdict: the verdicts alone,
/// without the other tables, for deciding where seeds are added.
pub fn undecided_runs(plan: &Plan, inputs: IntervalInputs<'_>) -> Vec<usize> {
    verdict_columns(&evidence(plan, inputs)).1
}

/// Every run's per-image counts and names, from the plan and the inputs.
fn evidence<'a>(plan: &'a Plan, inputs: IntervalInputs<'a>) -> Evidence<'a> {
    Evidence {
        plan,
        counts: (0..inputs.test_labels.len())
            .map(|i| {
                let extra = Extra {
                    twins: inputs.twin_labels.map(|t| t[i].as_slice()),
                    synthetic: inputs.synthetic_labels.map(|s| s[i].as_slice()),
                };
                run_counts(&inputs.test_labels[i], extra, inputs.data)
            })
            .collect(),
        collapsed: inputs.collapsed,
        teacher_names: plan.runs.iter().map(|r| plan.teacher_name(r)).collect(),
        treatments: plan.runs.iter().map(PlannedRun::treatment).collect(),
        config: BootstrapConfig { seed: inputs.seed, ..BootstrapConfig::default() },
        verdict_config: BootstrapConfig { seed: inputs.seed, confidence: inputs.verdict_confidence, ..BootstrapConfig::default() },
        rules: inputs.rules,
        labels_miou: inputs.labels_miou,
    }
}

/// What every interval table is computed from: each run's per-image counts and how it is named.
struct Evidence<'a> {
    plan: &'a Plan,
    /// `counts[i]`: the test images' counts of `plan.runs[i]`.
    counts: Vec<Vec<ImageCounts>>,
    /// `collapsed[i]`: `plan.runs[i]` collapsed on the test images.
    collapsed: Vec<bool>,
    teacher_names: Vec<String>,
    /// Table rows follow the order of keys holding these; `Treatment` orders by its column names.
    treatments: Vec<Treatment>,
    config: BootstrapConfig,
    /// The verdicts' bootstrap: its confidence is split over the looks when seeds are added.
    verdict_config: BootstrapConfig,
    rules: &'a VerdictRules,
    labels_miou: Option<f64>,
}

/// The summary (every configuration's metrics with intervals; runs that differ only in their
/// repeat are one configuration) and the targets judged on those intervals.
fn summary_columns(study: &Evidence<'_>, targets: &[Target]) -> (Columns, Columns) {
    let mut configurations: BTreeMap<ConfigurationKey<'_>, Vec<usize>> = BTreeMap::new();
    for (i, r) in study.plan.runs.iter().enumerate() {
        configurations.entry((r.generation, &study.treatments[i], r.model.as_str(), study.teacher_names[i].as_str())).or_default().push(i);
    }
    let mut summary = Columns::default();
    let mut judged = Columns::default();
    for ((generation, treatment, model, teacher), runs) in &configurations {
        let (strategy, selection) = (treatment.strategy_column(), treatment.selection_column());
        // Computed on the runs that did not collapse, or on all when every one did (the
        // `collapsed` column says so).
        let (sound, collapsed) = without_collapsed(runs, |&i| study.collapsed[i]);
        let groups: Vec<Vec<ImageCounts>> = sound.iter().map(|&i| study.counts[i].clone()).collect();
        for measured in Metric::counted() {
            let Some(interval) = bootstrap(&groups, &study.config, |u| metric(&measured, u)).map(|i| i.within(measured.range())) else {
                continue;
            };
            for target in targets.iter().filter(|t| t.metric == measured) {
                judged.text("target", &target.text);
                judged.int("generation", i64::from(*generation));
                judged.text("strategy", strategy);
                judged.text("selection", selection);
                judged.text("pseudo_labels", treatment.pseudo_labels().name());
                judged.text("model", model);
                judged.text("teacher", teacher);
                judged.interval(["estimate", "low", "high"], Some(interval));
                judged.text("judgement", target.judge(interval.low, interval.high).name());
            }
            summary.int("generation", i64::from(*generation));
            summary.text("strategy", strategy);
            summary.text("selection", selection);
            summary.text("pseudo_labels", treatment.pseudo_labels().name());
            summary.text("model", model);
            summary.text("teacher", teacher);
            summary.text("metric", &measured.name());
            summary.interval(["estimate", "low", "high"], Some(interval));
            summary.int("repeats", groups.len() as i64);
            summary.int("images", groups.first().map_or(0, Vec::len) as i64);
            summary.int("collapsed", collapsed as i64);
        }
    }
    (summary, judged)
}

/// The generation-0 runs (learning from the labels) a student's pseudo-labels come from,
/// followed back through its teachers: under `self` its own generation 0, under `cross` at
/// generation 1 its teacher, under `ensemble` and `consensus` the committee's members. Same
/// repeat throughout, since a student learns from teachers of its own seed.
fn lineage_roots(plan: &Plan, run: usize) -> Vec<usize> {
    let mut roots = Vec::new();
    let mut stack = vec![run];
    while let Some(i) = stack.pop() {
        match &plan.runs[i].teaching {
            Teaching::Labels => roots.push(i),
            Teaching::PseudoLabels { teachers, .. } => stack.extend(teachers.iter().copied()),
            Teaching::Truth | Teaching::CrossFit { .. } => {}
        }
    }
    roots.sort_unstable();
    roots.dedup();
    roots
}

/// The verdict of a comparison whose pairs `collapsed` of `total` had a collapsed run in:
/// "collapsed" when most did.
fn unless_collapsed(verdict: Verdict, collapsed: usize, total: usize) -> Verdict {
    if 2 * collapsed > total { Verdict::Collapsed } else { verdict }
}

/// The pairs neither of whose runs collapsed, or all when none is left, and how many had a collapsed run.
fn sound_pairs(study: &Evidence<'_>, pairs: &[(usize, usize)]) -> (Vec<(usize, usize)>, usize) {
    without_collapsed(pairs, |&(b, a)| study.collapsed[b] || study.collapsed[a])
}

/// The items (runs, pairs or triples of runs) none of whose runs collapsed (`bad`), or all of
/// them when none is left, and how many had a collapsed run.
fn without_collapsed<T: Clone>(items: &[T], bad: impl Fn(&T) -> bool) -> (Vec<T>, usize) {
    let collapsed = items.iter().filter(|i| bad(i)).count();
    let sound: Vec<T> = items.iter().filter(|i| !bad(i)).cloned().collect();
    (if sound.is_empty() { items.to_vec() } else { sound }, collapsed)
}

/// Where the labels are (nearly) exact nothing can beat them: a ceiling of at least this mIoU
/// then counts as having learned the task.
pub const LEARNED_MIOU: f64 = 0.8;

/// A class of the truth whose ceiling IoU (pooled over test images and seeds) stays below this
/// was not learned.
pub const LEARNED_CLASS_IOU: f64 = 0.1;

/// Whether the architecture of `run` learns the task from these images, judged on its
/// exact-label ceilings (every repeat, collapsed ones too: a ceiling that collapses has not
/// learned): their mean mIoU beats the labels' (or reaches [`LEARNED_MIOU`]), and every class of
/// the truth gets an IoU of at least [`LEARNED_CLASS_IOU`]. `None` without ceilings.
fn learns_task(study: &Evidence<'_>, run: &PlannedRun) -> Option<bool> {
    let plain = echoseg_nets::NetworkSpec { pretrain: None, ..run.network };
    let ceilings: Vec<usize> =
        study.plan.runs.iter().enumerate().filter(|(_, c)| c.teaching == Teaching::Truth && c.network == plain).map(|(i, _)| i).collect();
    let pooled: Vec<Confusion> = ceilings
        .iter()
        .filter_map(|&i| {
            let units: Vec<&ImageCounts> = study.counts[i].iter().collect();
            let mut c = Confusion::new(units.first()?.confusion.classes());
            units.iter().for_each(|u| c.merge(&u.confusion));
            Some(c)
        })
        .collect();
    let mut all = Confusion::new(pooled.first()?.classes());
    pooled.iter().for_each(|c| all.merge(c));
    let miou = pooled.iter().map(Confusion::miou).sum::<f64>() / pooled.len() as f64;
    let beats_labels = study.labels_miou.is_none_or(|labels| miou > labels || miou >= LEARNED_MIOU);
    let every_class = (0..all.classes()).all(|c| all.recall(c).is_none() || all.iou(c).is_some_and(|iou| iou >= LEARNED_CLASS_IOU));
    Some(beats_labels && every_class)
}

/// The verdicts: each chain run against the generation-0 network(s) its pseudo-labels come from
/// ([`lineage_roots`]), same repeat, paired image by image, so that a seed's quirks, which a
/// student inherits from its teacher, are on both sides of the change; runs that collapsed are
/// left out and counted; an architecture that does not learn the task gets no verdict
/// ([`Verdict::Unlearned`]); an undecided verdict says how many seeds would decide it. Also
/// returns the chain runs with an undecided verdict, every repeat of them.
fn verdict_columns(study: &Evidence<'_>) -> (Columns, Vec<usize>) {
    let runs = &study.plan.runs;
    let mut chains: BTreeMap<ChainKey<'_>, Vec<Lineage>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        if r.generation == 0 || !r.chain {
            continue;
        }
        let roots = lineage_roots(study.plan, i);
        if !roots.is_empty() {
            chains.entry((&study.treatments[i], r.model.as_str(), r.generation)).or_default().push(Lineage { roots, student: i });
        }
    }
    let mut verdicts = Columns::default();
    let mut undecided = Vec::new();
    let config = &study.verdict_config;
    for ((treatment, model, generation), lineages) in &chains {
        let (strategy, selection) = (treatment.strategy_column(), treatment.selection_column());
        let bad = |l: &Lineage| study.collapsed[l.student] || l.roots.iter().any(|&r| study.collapsed[r]);
        let (sound, collapsed) = without_collapsed(lineages, bad);
        let groups: Vec<Vec<(ImageCounts, ImageCounts)>> = sound
            .iter()
            .map(|l| {
                let before = |image: usize| ImageCounts::pooled(l.roots.iter().map(|&r| &study.counts[r][image]));
                (0..study.counts[l.student].len()).filter_map(|i| Some((before(i)?, study.counts[l.student][i].clone()))).collect()
            })
            .collect();
        let mut against: Vec<&str> = lineages[0].roots.iter().map(|&r| runs[r].model.as_str()).collect();
        against.dedup();
        let against = crate::plan::committee_name(&against);
        // A lineage through an architecture that cannot learn the task says nothing about labels.
        let own = learns_task(study, &runs[lineages[0].student]);
        let learned =
            lineages[0].roots.iter().map(|&i| learns_task(study, &runs[i])).chain([own]).try_fold(true, |all, l| l.map(|l| all && l));
        for bias in Bias::COUNTED {
            let measured = Metric::Bias(bias);
            let practical = minimum(&measured, study.rules);
            let Some(c) = compare(&groups, &measured, practical, config) else { continue };
            let verdict = if learned == Some(false) { Verdict::Unlearned } else { unless_collapsed(c.verdict, collapsed, lineages.len()) };
            let needed = c
                .spread
                .filter(|_| verdict == Verdict::Undecided)
                .and_then(|spread| seeds_to_decide(&c.change, &spread, practical, config.confidence).map(|n| n as i64));
            if verdict == Verdict::Undecided {
                undecided.extend(lineages.iter().map(|l| l.student));
            }
            verdicts.text("strategy", strategy);
            verdicts.text("selection", selection);
            verdicts.text("pseudo_labels", treatment.pseudo_labels().name());
            verdicts.text("model", model);
            verdicts.text("against", &against);
            verdicts.int("generation", i64::from(*generation));
            verdicts.text("metric", bias.name());
            verdicts.interval(["before", "before_low", "before_high"], Some(c.before));
            verdicts.interval(["after", "after_low", "after_high"], Some(c.after));
            verdicts.interval(["change", "change_low", "change_high"], Some(c.change));
            verdicts.interval(["factor", "factor_low", "factor_high"], c.factor);
            verdicts.float("minimum", Some(practical));
            verdicts.text("verdict", verdict.name());
            verdicts.maybe_bool("learned", own);
            verdicts.maybe_int("seeds_needed", needed);
            verdicts.float("change_seed_sd", c.spread.map(|s| s.seeds.sqrt()));
            verdicts.float("change_image_sd", c.spread.map(|s| s.images.sqrt()));
            verdicts.int("repeats", groups.len() as i64);
            verdicts.float("confidence", Some(config.confidence));
            verdicts.int("collapsed", collapsed as i64);
        }
    }
    undecided.sort_unstable();
    undecided.dedup();
    (verdicts, undecided)
}

/// The counts of (before, after) run pairs, image by image.
fn paired(counts: &[Vec<ImageCounts>], pairs: &[(usize, usize)]) -> Vec<Vec<(ImageCounts, ImageCounts)>> {
    pairs.iter().map(|&(b, a)| counts[b].iter().cloned().zip(counts[a].iter().cloned()).collect()).collect()
}

/// Generation, treatment, model and pre-trained model of a pre-training comparison.
type PretrainKey<'a> = (u32, &'a Treatment, String, &'a str);

/// Every pre-trained chain run against the run of the same architecture without pre-training at
/// the same place (generation, strategy, selection, repeat), paired image by image: what the
/// pre-training did to mIoU and to each bias.
fn pretraining_columns(study: &Evidence<'_>) -> Columns {
    let (plan, treatments, config) = (study.plan, &study.treatments, &study.config);
    let mut pairs: BTreeMap<PretrainKey<'_>, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, r) in plan.runs.iter().enumerate().filter(|(_, r)| r.chain && r.network.pretrain.is_some()) {
        let plain = echoseg_nets::NetworkSpec { pretrain: None, ..r.network };
        let base = plan.runs.iter().enumerate().position(|(j, b)| {
            b.chain && b.network == plain && (b.generation, b.repeat, &treatments[j]) == (r.generation, r.repeat, &treatments[i])
        });
        if let Some(b) = base {
            pairs.entry((r.generation, &treatments[i], plain.name(), r.model.as_str())).or_default().push((b, i));
        }
    }
    let mut out = Columns::default();
    for ((generation, treatment, model, pretrained), pairs) in &pairs {
        let (strategy, selection) = (treatment.strategy_column(), treatment.selection_column());
        let (sound, collapsed) = sound_pairs(study, pairs);
        let groups = paired(&study.counts, &sound);
        for measured in Metric::counted() {
            let Some(c) = compare(&groups, &measured, minimum(&measured, study.rules), config) else { continue };
            out.text("model", model);
            out.text("pretrained", pretrained);
            out.int("generation", i64::from(*generation));
            out.text("strategy", strategy);
            out.text("selection", selection);
            out.text("pseudo_labels", treatment.pseudo_labels().name());
            out.text("metric", &measured.name());
            out.interval(["without", "without_low", "without_high"], Some(c.before));
            out.interval(["with", "with_low", "with_high"], Some(c.after));
            out.interval(["change", "change_low", "change_high"], Some(c.change));
            out.text("verdict", PretrainingVerdict::of(&measured, unless_collapsed(c.verdict, collapsed, pairs.len())).name());
            out.int("repeats", groups.len() as i64);
            out.int("collapsed", collapsed as i64);
        }
    }
    out
}

/// Below this gap between ceiling and teacher (in mIoU) there is nothing to recover and the gap
/// recovered is left out: a ratio of two near-zero differences is noise.
pub const GAP_MINIMUM: f64 = 0.02;

/// One test image's counts for a student's teachers (one, or a committee's members), the student
/// and the student's ceiling.
#[derive(Clone)]
struct GapUnit {
    teachers: Vec<ImageCounts>,
    student: ImageCounts,
    ceiling: ImageCounts,
}

/// The plan indices of a student of pseudo-labels, its teachers and its ceiling.
#[derive(Clone, Copy)]
struct GapRuns<'a> {
    teachers: &'a [usize],
    student: usize,
    ceiling: usize,
}

/// The teacher's mIoU on `units` (one seed's test images): the teacher's own, or the best of that
/// seed's committee members, so that a committee's student recovers gap only by beating every
/// one of its teachers.
fn teacher_miou(units: &[&GapUnit]) -> Option<f64> {
    let members = units.first().map_or(0, |u| u.teachers.len());
    (0..members).filter_map(|m| metric(&Metric::Miou, &units.iter().map(|u| &u.teachers[m]).collect::<Vec<_>>())).reduce(f64::max)
}

/// The gap recovered, PGR = (student − teacher) / (ceiling − teacher) in mIoU, for every student
/// of pseudo-labels (a committee's teacher is its best member, see [`teacher_miou`]), paired image
/// by image within each repeat; the ceiling is the student's architecture on exact labels.
fn gap_columns(study: &Evidence<'_>) -> Columns {
    let plan = study.plan;
    let mut students: BTreeMap<ConfigurationKey<'_>, Vec<GapRuns<'_>>> = BTreeMap::new();
    for (i, r) in plan.runs.iter().enumerate() {
        let (Teaching::PseudoLabels { teachers, .. }, Some(ceiling)) = (&r.teaching, plan.ceiling_of(r)) else { continue };
        let key = (r.generation, &study.treatments[i], r.model.as_str(), study.teacher_names[i].as_str());
        students.entry(key).or_default().push(GapRuns { teachers, student: i, ceiling });
    }
    let mut out = Columns::default();
    for ((generation, treatment, model, teacher), runs) in &students {
        let bad =
            |g: &GapRuns<'_>| study.collapsed[g.student] || study.collapsed[g.ceiling] || g.teachers.iter().any(|&t| study.collapsed[t]);
        let (used, collapsed) = without_collapsed(runs, bad);
        let groups: Vec<Vec<GapUnit>> = used
            .iter()
            .map(|g| {
                (0..study.counts[g.student].len())
                    .map(|image| GapUnit {
                        teachers: g.teachers.iter().map(|&t| study.counts[t][image].clone()).collect(),
                        student: study.counts[g.student][image].clone(),
                        ceiling: study.counts[g.ceiling][image].clone(),
                    })
                    .collect()
            })
            .collect();
        let side = |pick: fn(&GapUnit) -> &ImageCounts| {
            move |u: &[&GapUnit]| metric(&Metric::Miou, &u.iter().map(|g| pick(g)).collect::<Vec<_>>())
        };
        let (student_miou, ceiling_miou) = (side(|g| &g.student), side(|g| &g.ceiling));
        let pgr = |u: &[&GapUnit]| {
            let (t, s, c) = (teacher_miou(u)?, student_miou(u)?, ceiling_miou(u)?);
            (c - t >= GAP_MINIMUM).then(|| (s - t) / (c - t))
        };
        let config = &study.config;
        out.int("generation", i64::from(*generation));
        out.text("strategy", treatment.strategy_column());
        out.text("selection", treatment.selection_column());
        out.text("pseudo_labels", treatment.pseudo_labels().name());
        out.text("model", model);
        out.text("teacher", teacher);
        let miou =
            |stat: &(dyn Fn(&[&GapUnit]) -> Option<f64> + Sync)| bootstrap(&groups, config, stat).map(|i| i.within(Metric::Miou.range()));
        out.interval(["teacher_miou", "teacher_low", "teacher_high"], miou(&teacher_miou));
        out.interval(["student_miou", "student_low", "student_high"], miou(&student_miou));
        out.interval(["ceiling_miou", "ceiling_low", "ceiling_high"], miou(&ceiling_miou));
        // The whole-sample estimate needs a gap too; resamples without one are left out of the interval.
        let whole: Vec<Vec<&GapUnit>> = groups.iter().map(|g| g.iter().collect()).collect();
        let has_gap = whole.iter().all(|g| pgr(g).is_some());
        out.interval(["pgr", "pgr_low", "pgr_high"], if has_gap { bootstrap(&groups, config, pgr) } else { None });
        out.int("repeats", groups.len() as i64);
        out.int("collapsed", collapsed as i64);
    }
    out
}

mod trends;

#[cfg(test)]
mod tests;
