//! Bootstrap intervals over images and seeds.
//!
//! Units (images) are nested in groups (seeds, i.e. repeats of a run). One resample draws the
//! groups with replacement, then within each drawn group its units with replacement, computes
//! the statistic per drawn group and averages it over groups. The interval is the percentile
//! interval of `resamples` such resamples; the estimate is the mean over groups of the statistic
//! on all their units. Every resample has its own seeded generator, so intervals are identical
//! run to run and independent of the thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How many resamples, at what confidence, from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Resamples drawn.
    pub resamples: usize,
    /// Coverage of the interval, e.g. 0.95.
    pub confidence: f64,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { resamples: 1000, confidence: 0.95, seed: 1 }
    }
}

/// An estimate with its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The point estimate (mean over groups of the statistic on all units).
    pub estimate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

impl Interval {
    /// Whether the interval lies wholly above or wholly below `value`.
    pub fn excludes(&self, value: f64) -> bool {
        self.low > value || self.high < value
    }
}

/// SplitMix64: small, fast and good enough for drawing indices.
struct Draw(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Draw {
    /// Streams start from hashed states: consecutive raw states would give shifted copies of one
    /// sequence, and correlated resamples would make intervals too narrow.
    fn new(seed: u64, stream: u64) -> Self {
        Self(mix(seed ^ mix(stream.wrapping_add(0x9e37_79b9_7f4a_7c15))))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        ((u128::from(mix(self.0)) * n as u128) >> 64) as usize
    }
}

fn mean_over_groups<T>(groups: &[&[T]], stat: &impl Fn(&[&T]) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = groups.iter().filter_map(|g| stat(&g.iter().collect::<Vec<_>>())).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The bootstrap interval of `stat` over `groups[g][unit]`; `None` when the statistic is
/// undefined on all the data. `stat` gets a group's drawn units and returns its value.
pub fn bootstrap<T: Sync>(groups: &[Vec<T>], config: &BootstrapConfig, stat: impl Fn(&[&T]) -> Option<f64> + Sync) -> Option<Interval> {
    let groups: Vec<&[T]> = groups.iter().map(Vec::as_slice).filter(|g| !g.is_empty()).collect();
    let estimate = mean_over_groups(&groups, &stat)?;
    let mut values: Vec<f64> = (0..config.resamples)
        .into_par_iter()
        .filter_map(|b| {
            let mut draw = Draw::new(config.seed, b as u64 + 1);
            let mut per_group = Vec::with_capacity(groups.len());
            for _ in 0..groups.len() {
                let group = groups[draw.below(groups.len())];
                let units: Vec<&T> = (0..group.len()).map(|_| &group[draw.below(group.len())]).collect();
                if let Some(v) = stat(&units) {
                    per_group.push(v);
                }
            }
            (!per_group.is_empty()).then(|| per_group.iter().sum::<f64>() / per_group.len() as f64)
        })
        .collect();
    if values.is_empty() {
        return Some(Interval { estimate, low: estimate, high: estimate });
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - config.confidence) / 2.0;
    let at = |q: f64| values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    Some(Interval { estimate, low: at(tail), high: at(1.0 - tail) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_of_a_mean_brackets_it_with_the_expected_width() {
        // 400 values uniform on [0, 1): standard error √(1/12/400) ≈ 0.0144, so a 95 % interval
        // is about ±0.028 around the mean.
        let mut draw = Draw::new(7, 0);
        let values: Vec<f64> = (0..400).map(|_| draw.below(1_000_000) as f64 / 1e6).collect();
        let mean = values.iter().sum::<f64>() / 400.0;
        let i = bootstrap(&[values], &BootstrapConfig::default(), |u| Some(u.iter().copied().sum::<f64>() / u.len() as f64)).unwrap();
        assert_eq!(i.estimate, mean);
        assert!(i.low < mean && mean < i.high);
        let half = (i.high - i.low) / 2.0;
        assert!((half - 0.028).abs() < 0.006, "half-width {half}");
    }

    #[test]
    fn identical_data_gives_a_point_and_reruns_are_identical() {
        let groups = vec![vec![2.0; 10], vec![2.0; 10]];
        let stat = |u: &[&f64]| Some(u.iter().copied().sum::<f64>() / u.len() as f64);
        let i = bootstrap(&groups, &BootstrapConfig::default(), stat).unwrap();
        assert_eq!((i.estimate, i.low, i.high), (2.0, 2.0, 2.0));
        let noisy = vec![(0..30).map(f64::from).collect::<Vec<_>>(), (5..35).map(f64::from).collect()];
        let a = bootstrap(&noisy, &BootstrapConfig::default(), stat);
        assert_eq!(a, bootstrap(&noisy, &BootstrapConfig::default(), stat));
    }

    #[test]
    fn seeds_that_disagree_widen_the_interval() {
        // The same images, but two seeds whose means differ by 1: the interval must cover both.
        let one = vec![(0..50).map(|i| f64::from(i % 5) / 10.0).collect::<Vec<_>>()];
        let two = vec![one[0].clone(), one[0].iter().map(|v| v + 1.0).collect()];
        let stat = |u: &[&f64]| Some(u.iter().copied().sum::<f64>() / u.len() as f64);
        let narrow = bootstrap(&one, &BootstrapConfig::default(), stat).unwrap();
        let wide = bootstrap(&two, &BootstrapConfig::default(), stat).unwrap();
        assert!(wide.high - wide.low > 0.9, "{wide:?}");
        assert!(narrow.high - narrow.low < 0.2, "{narrow:?}");
    }

    #[test]
    fn a_group_without_units_has_no_interval() {
        assert_eq!(bootstrap::<f64>(&[vec![]], &BootstrapConfig::default(), |_| Some(1.0)), None);
    }
}
