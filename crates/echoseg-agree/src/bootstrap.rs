//! Intervals over images and seeds.
//!
//! Units (test images) are nested in groups (seeds, i.e. repeats of a run). The estimate is the
//! mean over groups of the statistic on all their units. Two sources of chance are in it:
//!
//! - which test images were drawn: `resamples` bootstrap resamples redraw the units with
//!   replacement, seeds fixed (the same draw in every group when the groups hold the same images
//!   in the same order, as every study's test images are), each with its own seeded generator,
//!   so intervals are identical run to run and independent of the thread count;
//! - which seeds were drawn: the spread of the per-group statistics.
//!
//! With one group the interval is the bootstrap's percentile interval. With k ≥ 2 groups it is
//! estimate ± t(k − 1) · √(s²/k + v), s² the sample variance of the per-group statistics and v
//! the bootstrap variance: a percentile bootstrap that also redraws the seeds would treat k
//! seeds as the whole population of seeds, and with 2 to 4 of them its intervals miss far more
//! often than they claim (a direction two seeds merely share would already exclude zero).

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

    /// The interval cut to the values a statistic can take (`range`, e.g. [0, 1] for a share):
    /// a symmetric interval over few seeds can reach past them.
    pub fn within(self, range: Option<(f64, f64)>) -> Self {
        match range {
            Some((low, high)) => Self { low: self.low.max(low), high: self.high.min(high), ..self },
            None => self,
        }
    }
}

/// SplitMix64: small, fast and good enough for drawing indices.
pub(crate) struct Draw(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Draw {
    /// Streams start from hashed states: consecutive raw states would give shifted copies of one
    /// sequence, and correlated resamples would make intervals too narrow.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        Self(mix(seed ^ mix(stream.wrapping_add(0x9e37_79b9_7f4a_7c15))))
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        ((u128::from(mix(self.0)) * n as u128) >> 64) as usize
    }
}

/// The mean of `values`, `None` when there are none.
pub(crate) fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The two variances behind an interval over k ≥ 2 seeds, kept so that a study can say what
/// more seeds would do to it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Sample variance of the per-seed statistics.
    pub seeds: f64,
    /// Bootstrap variance over test images of the mean over seeds: more seeds do not shrink it,
    /// since every seed is scored on the same images.
    pub images: f64,
}

impl Spread {
    /// The standard error of the mean over `repeats` seeds (at least 2) at this spread.
    pub fn standard_error(&self, repeats: usize) -> f64 {
        (self.seeds / repeats.max(2) as f64 + self.images).sqrt()
    }

    /// The half-width of the interval with `repeats` seeds at this spread and `confidence`.
    pub fn half_width(&self, repeats: usize, confidence: f64) -> f64 {
        student_t_quantile((1.0 + confidence) / 2.0, (repeats.max(2) - 1) as f64) * self.standard_error(repeats)
    }

    /// The fewest seeds (at most `cap`) whose interval at this spread is narrower than `half`
    /// on each side; `None` when not even `cap` seeds get there (the test images' spread alone,
    /// or a target of zero, can make that so).
    pub fn repeats_for(&self, half: f64, confidence: f64, cap: usize) -> Option<usize> {
        (2..=cap).find(|&k| self.half_width(k, confidence) < half)
    }
}

/// An interval and, over two or more seeds, the spread it was made from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimated {
    /// The interval.
    pub interval: Interval,
    /// Its seed and image variances (`None` with one seed: a percentile interval).
    pub spread: Option<Spread>,
}

/// The interval of `stat` over `groups[g][unit]` (see the module's documentation); `None` when
/// the statistic is undefined on all the data. `stat` gets a group's drawn units and returns its value.
pub fn bootstrap<T: Sync>(groups: &[Vec<T>], config: &BootstrapConfig, stat: impl Fn(&[&T]) -> Option<f64> + Sync) -> Option<Interval> {
    bootstrap_spread(groups, config, stat).map(|e| e.interval)
}

/// As [`bootstrap`], with the seed and image variances behind the interval.
pub fn bootstrap_spread<T: Sync>(
    groups: &[Vec<T>],
    config: &BootstrapConfig,
    stat: impl Fn(&[&T]) -> Option<f64> + Sync,
) -> Option<Estimated> {
    let groups: Vec<&[T]> = groups.iter().map(Vec::as_slice).filter(|g| !g.is_empty()).collect();
    let per_group: Vec<f64> = groups.iter().filter_map(|g| stat(&g.iter().collect::<Vec<_>>())).collect();
    let estimate = mean(&per_group)?;
    let same_images = groups.windows(2).all(|w| w[0].len() == w[1].len());
    let mut values: Vec<f64> = (0..config.resamples)
        .into_par_iter()
        .filter_map(|b| {
            let mut draw = Draw::new(config.seed, b as u64 + 1);
            let shared: Vec<usize> =
                if same_images { (0..groups[0].len()).map(|_| draw.below(groups[0].len())).collect() } else { Vec::new() };
            let drawn: Vec<f64> = groups
                .iter()
                .filter_map(|group| {
                    let units: Vec<&T> = if same_images {
                        shared.iter().map(|&i| &group[i]).collect()
                    } else {
                        (0..group.len()).map(|_| &group[draw.below(group.len())]).collect()
                    };
                    stat(&units)
                })
                .collect();
            mean(&drawn)
        })
        .collect();
    let k = per_group.len();
    if k >= 2 {
        let seeds = per_group.iter().map(|v| (v - estimate).powi(2)).sum::<f64>() / (k - 1) as f64;
        // No resample with a value (none drawn, or the statistic undefined on every one): the seeds' spread alone.
        let centre = mean(&values).unwrap_or(estimate);
        let images = values.iter().map(|v| (v - centre).powi(2)).sum::<f64>() / values.len().max(1) as f64;
        let spread = Spread { seeds, images };
        let half = spread.half_width(k, config.confidence);
        return Some(Estimated { interval: Interval { estimate, low: estimate - half, high: estimate + half }, spread: Some(spread) });
    }
    let point = |low, high| Some(Estimated { interval: Interval { estimate, low, high }, spread: None });
    if values.is_empty() {
        return point(estimate, estimate);
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - config.confidence) / 2.0;
    let at = |q: f64| values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    point(at(tail), at(1.0 - tail))
}

/// P(Z ≤ z) for a standard normal Z (Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom, by bisection on
/// its distribution function (to 1e-10, plenty for an interval's half-width).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let (mut low, mut high) = (0.0, 1.0);
    while student_t_cdf(high, df) < p && high < 1e12 {
        high *= 2.0;
    }
    while high - low > 1e-10 * high.max(1.0) {
        let mid = (low + high) / 2.0;
        if student_t_cdf(mid, df) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low + high) / 2.0
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom: 1 − I_x(df/2, 1/2)/2 with x = df/(df + t²).
fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5) / 2.0;
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// I_x(a, b), by the continued fraction of Numerical Recipes (modified Lentz), on the side where it converges fast.
fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) { front * beta_fraction(x, a, b) / a } else { 1.0 - front * beta_fraction(1.0 - x, b, a) / b }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
            d = 1.0 + aa * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let sum = G[1..].iter().enumerate().fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
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
    fn t_quantiles_match_the_tables() {
        // 97.5 % points of Student's t (any statistics table) and the normal limit.
        for (df, t) in [(1.0, 12.706_2), (2.0, 4.302_7), (3.0, 3.182_4), (4.0, 2.776_4), (10.0, 2.228_1), (1e7, 1.960_0)] {
            let q = student_t_quantile(0.975, df);
            assert!((q - t).abs() < 1e-3, "df {df}: {q} against {t}");
        }
        assert!((student_t_quantile(0.95, 5.0) - 2.015_0).abs() < 1e-3);
        assert_eq!(student_t_quantile(0.025, 3.0), -student_t_quantile(0.975, 3.0));
    }

    #[test]
    fn a_direction_two_seeds_merely_share_is_not_certain_but_four_that_agree_are() {
        // Per-image changes of one seed: noise of ±0.01 around its seed's mean.
        let seed = |m: f64| (0..40).map(|i| m + f64::from(i % 5 - 2) / 200.0).collect::<Vec<_>>();
        let stat = |u: &[&f64]| Some(u.iter().copied().sum::<f64>() / u.len() as f64);
        // Two seeds of +0.02 and +0.12: both positive, but a third could as well be negative.
        let two = bootstrap(&[seed(0.02), seed(0.12)], &BootstrapConfig::default(), stat).unwrap();
        assert!(two.low < 0.0, "{two:?}");
        // t(1) = 12.71: half-width 12.71 · 0.05 = 0.64 (the seeds' standard error is 0.05).
        assert!((two.high - two.low - 2.0 * 12.706 * 0.05).abs() < 0.01, "{two:?}");
        // Four seeds of 0.06 ± 0.01: t(3) · 0.0065 ≈ 0.02 around 0.065.
        let four = bootstrap(&[seed(0.05), seed(0.07), seed(0.06), seed(0.08)], &BootstrapConfig::default(), stat).unwrap();
        assert!(four.low > 0.03 && four.high < 0.1, "{four:?}");
    }

    #[test]
    fn a_group_without_units_has_no_interval() {
        assert_eq!(bootstrap::<f64>(&[vec![]], &BootstrapConfig::default(), |_| Some(1.0)), None);
    }
}
