//! Intervals and verdicts: every headline number with its bootstrap interval over test images
//! and seeds (`summary.*`), and for every strategy, architecture, later generation and bias the
//! change against generation 0 with a verdict (`verdicts.*`).

use std::collections::BTreeMap;

use echoseg_agree::{Bias, BootstrapConfig, Confusion, FingerprintCounts, Interval, Metric, Verdict, bootstrap};
use polars::prelude::*;
use rayon::prelude::*;

use crate::StudyError;
use crate::data::StudyData;
use crate::fingerprints::image_counts;
use crate::plan::{Plan, PlannedRun};
use crate::store::StudyDir;
use crate::strategy::Treatment;
use crate::targets::Target;

/// Metrics that have per-image counts, so intervals over images: mIoU and the biases a verdict
/// is given on ([`Bias::COUNTED`]).
pub fn interval_metrics() -> impl Iterator<Item = Metric> {
    std::iter::once(Metric::Miou).chain(Bias::COUNTED.map(Metric::Bias))
}

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
    /// The interval of the change includes no change.
    Holds,
}

impl PretrainingVerdict {
    /// Every pre-training verdict.
    pub const ALL: [PretrainingVerdict; 5] = [
        PretrainingVerdict::Raises,
        PretrainingVerdict::Lowers,
        PretrainingVerdict::Amplifies,
        PretrainingVerdict::Cancels,
        PretrainingVerdict::Holds,
    ];

    /// The verdict on `metric` from the verdict on the change of its size.
    pub fn of(metric: &Metric, verdict: Verdict) -> Self {
        match (metric, verdict) {
            (Metric::Miou, Verdict::Amplifies) => PretrainingVerdict::Raises,
            (Metric::Miou, Verdict::Cancels) => PretrainingVerdict::Lowers,
            (_, Verdict::Amplifies) => PretrainingVerdict::Amplifies,
            (_, Verdict::Cancels) => PretrainingVerdict::Cancels,
            (_, Verdict::Holds) => PretrainingVerdict::Holds,
        }
    }

    /// The word used in tables and the report.
    pub fn name(self) -> &'static str {
        match self {
            PretrainingVerdict::Raises => "raises",
            PretrainingVerdict::Lowers => "lowers",
            PretrainingVerdict::Amplifies => Verdict::Amplifies.name(),
            PretrainingVerdict::Cancels => Verdict::Cancels.name(),
            PretrainingVerdict::Holds => Verdict::Holds.name(),
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
}

/// A metric's value over a set of image counts (`None` for a metric without per-image counts).
fn metric(measured: &Metric, units: &[&ImageCounts]) -> Option<f64> {
    match measured {
        Metric::Miou => {
            let mut c = Confusion::new(units.first()?.confusion.classes());
            units.iter().for_each(|u| c.merge(&u.confusion));
            Some(c.miou())
        }
        Metric::Bias(bias) => {
            let mut f = FingerprintCounts::default();
            units.iter().for_each(|u| f.merge(&u.fingerprint));
            f.fingerprint().get(*bias)
        }
        _ => None,
    }
}

fn run_counts(labels: &[Vec<u8>], data: &StudyData) -> Vec<ImageCounts> {
    labels
        .par_iter()
        .zip(data.test.par_iter())
        .filter_map(|(l, scene)| {
            let truth = scene.truth_labels()?;
            Some(ImageCounts {
                confusion: Confusion::from_maps(&truth.labels, l, data.classes.len()),
                fingerprint: image_counts(l, scene, &data.classes)?,
            })
        })
        .collect()
}

#[derive(Default)]
struct Columns {
    text: BTreeMap<&'static str, Vec<String>>,
    int: BTreeMap<&'static str, Vec<i64>>,
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
    /// Ratio of bias sizes (after / before); `None` when the bias was zero before.
    factor: Option<Interval>,
    verdict: Verdict,
}

/// `measured` before and after, and the change of its size ([`Metric::size`]).
fn compare(groups: &[Vec<(ImageCounts, ImageCounts)>], measured: &Metric, config: &BootstrapConfig) -> Option<Comparison> {
    let side = |after: bool| {
        move |u: &[&(ImageCounts, ImageCounts)]| {
            let units: Vec<&ImageCounts> = u.iter().map(|(b, a)| if after { a } else { b }).collect();
            metric(measured, &units)
        }
    };
    let before = bootstrap(groups, config, side(false))?;
    let after = bootstrap(groups, config, side(true))?;
    let change = bootstrap(groups, config, |u| Some(measured.size(side(true)(u)?) - measured.size(side(false)(u)?)))?;
    let factor = bootstrap(groups, config, |u| {
        let b = measured.size(side(false)(u)?);
        (b > 1e-9).then_some(measured.size(side(true)(u)?) / b)
    });
    Some(Comparison { before, after, change, factor, verdict: Verdict::of_change(&change) })
}

/// Treatment, architecture and generation of a chain run.
type ChainKey<'a> = (&'a Treatment, &'a str, u32);

/// Generation, treatment, architecture and teachers of a configuration.
type ConfigurationKey<'a> = (u32, &'a Treatment, &'a str, &'a str);

/// The summary, verdict, target and pre-training tables of a finished study; `test_labels[i]`
/// are the test predictions of `plan.runs[i]`.
pub fn interval_frames(
    plan: &Plan,
    data: &StudyData,
    test_labels: &[Vec<Vec<u8>>],
    dir: &StudyDir,
    seed: u64,
    targets: &[Target],
) -> Result<(DataFrame, DataFrame, DataFrame, DataFrame), StudyError> {
    let study = Evidence {
        plan,
        counts: test_labels.iter().map(|l| run_counts(l, data)).collect(),
        teacher_names: plan.runs.iter().map(|r| plan.teacher_name(r)).collect(),
        treatments: plan.runs.iter().map(PlannedRun::treatment).collect(),
        config: BootstrapConfig { seed, ..BootstrapConfig::default() },
    };
    let (summary, judged) = summary_columns(&study, targets);
    let verdicts = verdict_columns(&study);
    let pretraining = pretraining_columns(&study);
    let error = |path: std::path::PathBuf| move |e: PolarsError| StudyError::Table { path: path.clone(), message: e.to_string() };
    Ok((
        summary.frame().map_err(error(dir.summary_parquet()))?,
        verdicts.frame().map_err(error(dir.verdicts_parquet()))?,
        judged.frame().map_err(error(dir.targets_parquet()))?,
        pretraining.frame().map_err(error(dir.pretraining_parquet()))?,
    ))
}

/// What every interval table is computed from: each run's per-image counts and how it is named.
struct Evidence<'a> {
    plan: &'a Plan,
    /// `counts[i]`: the test images' counts of `plan.runs[i]`.
    counts: Vec<Vec<ImageCounts>>,
    teacher_names: Vec<String>,
    /// Table rows follow the order of keys holding these; `Treatment` orders by its column names.
    treatments: Vec<Treatment>,
    config: BootstrapConfig,
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
        let groups: Vec<Vec<ImageCounts>> = runs.iter().map(|&i| study.counts[i].clone()).collect();
        for measured in interval_metrics() {
            let Some(interval) = bootstrap(&groups, &study.config, |u| metric(&measured, u)) else { continue };
            for target in targets.iter().filter(|t| t.metric == measured) {
                judged.text("target", &target.text);
                judged.int("generation", i64::from(*generation));
                judged.text("strategy", strategy);
                judged.text("selection", selection);
                judged.text("model", model);
                judged.text("teacher", teacher);
                judged.interval(["estimate", "low", "high"], Some(interval));
                judged.text("judgement", target.judge(interval.low, interval.high).name());
            }
            summary.int("generation", i64::from(*generation));
            summary.text("strategy", strategy);
            summary.text("selection", selection);
            summary.text("model", model);
            summary.text("teacher", teacher);
            summary.text("metric", &measured.name());
            summary.interval(["estimate", "low", "high"], Some(interval));
            summary.int("repeats", groups.len() as i64);
            summary.int("images", groups.first().map_or(0, Vec::len) as i64);
        }
    }
    (summary, judged)
}

/// The verdicts: each chain run against the generation-0 run of its architecture and repeat,
/// paired image by image.
fn verdict_columns(study: &Evidence<'_>) -> Columns {
    let runs = &study.plan.runs;
    let mut chains: BTreeMap<ChainKey<'_>, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        if r.generation == 0 || !r.chain {
            continue;
        }
        let base = runs.iter().position(|b| b.generation == 0 && b.repeat == r.repeat && b.network == r.network);
        if let Some(b) = base {
            chains.entry((&study.treatments[i], r.model.as_str(), r.generation)).or_default().push((b, i));
        }
    }
    let mut verdicts = Columns::default();
    for ((treatment, model, generation), pairs) in &chains {
        let (strategy, selection) = (treatment.strategy_column(), treatment.selection_column());
        let groups = paired(&study.counts, pairs);
        for bias in Bias::COUNTED {
            let Some(c) = compare(&groups, &Metric::Bias(bias), &study.config) else { continue };
            verdicts.text("strategy", strategy);
            verdicts.text("selection", selection);
            verdicts.text("model", model);
            verdicts.int("generation", i64::from(*generation));
            verdicts.text("metric", bias.name());
            verdicts.interval(["before", "before_low", "before_high"], Some(c.before));
            verdicts.interval(["after", "after_low", "after_high"], Some(c.after));
            verdicts.interval(["change", "change_low", "change_high"], Some(c.change));
            verdicts.interval(["factor", "factor_low", "factor_high"], c.factor);
            verdicts.text("verdict", c.verdict.name());
            verdicts.int("repeats", groups.len() as i64);
        }
    }
    verdicts
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
        let groups = paired(&study.counts, pairs);
        for measured in interval_metrics() {
            let Some(c) = compare(&groups, &measured, config) else { continue };
            out.text("model", model);
            out.text("pretrained", pretrained);
            out.int("generation", i64::from(*generation));
            out.text("strategy", strategy);
            out.text("selection", selection);
            out.text("metric", &measured.name());
            out.interval(["without", "without_low", "without_high"], Some(c.before));
            out.interval(["with", "with_low", "with_high"], Some(c.after));
            out.interval(["change", "change_low", "change_high"], Some(c.change));
            out.text("verdict", PretrainingVerdict::of(&measured, c.verdict).name());
            out.int("repeats", groups.len() as i64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use echoseg_agree::Subgroups;

    /// A 32 × 32 image with a disc of class 1 of radius `r` centred at (`cx`, 16).
    fn disc(r: f32, cx: f32) -> Vec<u8> {
        (0..32 * 32)
            .map(|i| {
                let (x, y) = ((i % 32) as f32 + 0.5 - cx, (i / 32) as f32 + 0.5 - 16.0);
                u8::from((x * x + y * y).sqrt() <= r)
            })
            .collect()
    }

    fn counts(predicted: &[u8], truth: &[u8]) -> ImageCounts {
        let none = vec![false; truth.len()];
        let groups = Subgroups { thin: None, small: &none, low_contrast: &none, shadow: &none };
        ImageCounts {
            confusion: Confusion::from_maps(truth, predicted, 2),
            fingerprint: FingerprintCounts::of_image(predicted, truth, 32, 32, 2, &groups),
        }
    }

    /// Two seeds of 12 images each; `after` predicts every disc dilated by `grow` px.
    fn study(before_grow: f32, after_grow: f32) -> Vec<Vec<(ImageCounts, ImageCounts)>> {
        (0..2)
            .map(|seed| {
                (0..12)
                    .map(|i| {
                        let (r, cx) = (5.0 + (i % 4) as f32, 12.0 + (i + seed) as f32 % 8.0);
                        let truth = disc(r, cx);
                        (counts(&disc(r + before_grow, cx), &truth), counts(&disc(r + after_grow, cx), &truth))
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_dilation_that_grows_from_one_to_two_px_amplifies_with_an_interval_around_one() {
        let c = compare(&study(1.0, 2.0), &Metric::Bias(Bias::BoundaryOffset), &BootstrapConfig::default()).unwrap();
        assert!((c.before.estimate - 1.0).abs() < 0.25, "{c:?}");
        assert!((c.after.estimate - 2.0).abs() < 0.25, "{c:?}");
        assert!(c.change.low > 0.5 && c.change.high < 1.5, "{c:?}");
        assert_eq!(c.verdict, Verdict::Amplifies);
        let factor = c.factor.unwrap();
        assert!(factor.low > 1.5 && factor.high < 2.5, "{factor:?}");
    }

    #[test]
    fn a_shrinking_offset_cancels_and_an_unchanged_one_holds() {
        assert_eq!(
            compare(&study(2.0, 0.0), &Metric::Bias(Bias::BoundaryOffset), &BootstrapConfig::default()).unwrap().verdict,
            Verdict::Cancels
        );
        let same = compare(&study(1.0, 1.0), &Metric::Bias(Bias::BoundaryOffset), &BootstrapConfig::default()).unwrap();
        assert_eq!(same.verdict, Verdict::Holds);
        assert_eq!((same.change.low, same.change.high), (0.0, 0.0));
    }

    #[test]
    fn pretraining_verdicts_name_directions_of_miou_apart_from_biases() {
        for v in PretrainingVerdict::ALL {
            assert_eq!(PretrainingVerdict::from_name(v.name()), Some(v));
        }
        assert_eq!(PretrainingVerdict::of(&Metric::Miou, Verdict::Amplifies), PretrainingVerdict::Raises);
        assert_eq!(PretrainingVerdict::of(&Metric::Miou, Verdict::Holds), PretrainingVerdict::Holds);
        assert_eq!(PretrainingVerdict::of(&Metric::Bias(Bias::ThinRecall), Verdict::Cancels), PretrainingVerdict::Cancels);
    }
}
