//! Trends over many generations (`trends.*`): for every strategy, selection, pseudo-label mode,
//! architecture and bias, the slope of the bias's size per generation over one architecture's
//! chain runs from generation 0 to the last, with its interval over seeds and test images, and
//! the drift it adds up to over the generations studied, judged against the verdicts' practical
//! minimum ([`Trend::judge`]).

use std::collections::{BTreeMap, HashMap};

use echoseg_agree::{Bias, Interval, Metric, Spread, Trend, bootstrap, bootstrap_spread, seeds_to_decide};

use super::{Columns, Evidence, ImageCounts, learns_task, metric, minimum, without_collapsed};
use crate::plan::strategy::Treatment;

/// Treatment, architecture, repeat and generation of a chain run.
type ChainRun<'a> = (&'a Treatment, &'a str, u32, u32);

/// Least-squares slope of `ys` against 0, 1, 2, …
pub(super) fn slope(ys: &[f64]) -> Option<f64> {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return None;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in ys.iter().enumerate() {
        let dx = x as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    Some(sxy / sxx)
}

/// The trends of a study with two or more generations; empty otherwise.
pub(super) fn trend_columns(study: &Evidence<'_>) -> Columns {
    let runs = &study.plan.runs;
    let mut out = Columns::default();
    let last = runs.iter().map(|r| r.generation).max().unwrap_or(0);
    if last < 2 {
        return out;
    }
    let mut chain_runs: HashMap<ChainRun<'_>, usize> = HashMap::new();
    // Every chain that reaches the last generation, with its repeats.
    let mut series: BTreeMap<(&Treatment, &str), Vec<u32>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate().filter(|(_, r)| r.chain) {
        chain_runs.insert((&study.treatments[i], r.model.as_str(), r.repeat, r.generation), i);
        if r.generation == last {
            series.entry((&study.treatments[i], r.model.as_str())).or_default().push(r.repeat);
        }
    }
    let config = &study.verdict_config;
    for ((treatment, model), repeats) in &series {
        let by_generation: Vec<Treatment> = (0..=last).map(|g| treatment.at_generation(g)).collect();
        let lineages: Vec<Vec<usize>> = repeats
            .iter()
            .filter_map(|&repeat| {
                (0..=last).map(|g| chain_runs.get(&(&by_generation[g as usize], *model, repeat, g)).copied()).collect::<Option<Vec<_>>>()
            })
            .collect();
        let (sound, collapsed) = without_collapsed(&lineages, |l| l.iter().any(|&i| study.collapsed[i]));
        // A chain through an architecture that cannot learn the task says nothing about labels.
        let learned = lineages
            .first()
            .and_then(|l| l.iter().map(|&i| learns_task(study, &runs[i])).try_fold(true, |all, one| one.map(|one| all && one)));
        // Per seed, per test image: its counts at every generation, so that a resampled image is
        // the same image at every generation.
        let groups: Vec<Vec<Vec<ImageCounts>>> = sound
            .iter()
            .map(|l| {
                let images = l.iter().map(|&i| study.counts[i].len()).min().unwrap_or(0);
                (0..images).map(|image| l.iter().map(|&i| study.counts[i][image].clone()).collect()).collect()
            })
            .collect();
        for bias in Bias::COUNTED {
            let measured = Metric::Bias(bias);
            let at = |units: &[&Vec<ImageCounts>], g: usize| metric(&measured, &units.iter().map(|u| &u[g]).collect::<Vec<_>>());
            let sizes = |units: &[&Vec<ImageCounts>]| {
                (0..=last as usize).map(|g| at(units, g).map(|v| measured.size(v))).collect::<Option<Vec<f64>>>()
            };
            let Some(per_generation) = bootstrap_spread(&groups, config, |u| slope(&sizes(u)?)) else { continue };
            let span = f64::from(last);
            let drift = Interval {
                estimate: per_generation.interval.estimate * span,
                low: per_generation.interval.low * span,
                high: per_generation.interval.high * span,
            };
            let practical = minimum(&measured, study.rules);
            let trend = if learned == Some(false) {
                Trend::Unlearned
            } else if collapsed * 2 > lineages.len() {
                Trend::Collapsed
            } else {
                Trend::judge(&drift, practical)
            };
            let spread = per_generation.spread.map(|s| Spread { seeds: s.seeds * span * span, images: s.images * span * span });
            let needed = spread
                .filter(|_| trend == Trend::Undecided)
                .and_then(|s| seeds_to_decide(&drift, &s, practical, config.confidence).map(|n| n as i64));
            let first = bootstrap(&groups, config, |u| at(u, 0)).map(|i| i.within(measured.range()));
            let final_value = bootstrap(&groups, config, |u| at(u, last as usize)).map(|i| i.within(measured.range()));
            out.text("strategy", treatment.strategy_column());
            out.text("selection", treatment.selection_column());
            out.text("pseudo_labels", treatment.pseudo_labels().name());
            out.text("model", model);
            out.text("metric", bias.name());
            out.int("generations", i64::from(last));
            out.interval(["first", "first_low", "first_high"], first);
            out.interval(["last", "last_low", "last_high"], final_value);
            out.interval(["slope", "slope_low", "slope_high"], Some(per_generation.interval));
            out.interval(["drift", "drift_low", "drift_high"], Some(drift));
            out.float("minimum", Some(practical));
            out.text("trend", trend.name());
            out.maybe_int("seeds_needed", needed);
            out.int("repeats", groups.len() as i64);
            out.float("confidence", Some(config.confidence));
            out.int("collapsed", collapsed as i64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn the_slope_is_the_least_squares_one_per_generation() {
        assert_eq!(slope(&[0.0, 1.0, 2.0, 3.0]), Some(1.0));
        // A rise and a fall that cancel: no trend, whatever the level.
        assert_eq!(slope(&[5.0, 6.0, 5.0]), Some(0.0));
        assert!((slope(&[0.0, 0.0, 0.0, 1.0]).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(slope(&[1.0]), None);
    }
}
