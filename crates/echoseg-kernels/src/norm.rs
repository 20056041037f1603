//! BatchNorm with the batch's own statistics followed by ReLU, forward and backward, on slices in
//! NCHW order: three passes over the activations forward (two for the statistics, one to write)
//! and two backward, where burn's composed operations make about ten and a separate ReLU two more.
//!
//! Each channel's sums run on one thread in image order with f64 accumulators, so no result
//! depends on how many threads share the work.

use rayon::prelude::*;

/// The shape of the activations: `batch` images of `channels` planes of `pixels` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    /// Images in the batch.
    pub batch: usize,
    /// Channels, each normalised with its own statistics.
    pub channels: usize,
    /// Values of one plane (height × width).
    pub pixels: usize,
}

impl Planes {
    /// Values one channel's statistics are taken over.
    fn count(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }

    /// The planes of channel `c`, image by image.
    fn channel<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (pixels, stride) = (self.pixels, self.channels * self.pixels);
        (0..self.batch).map(move |n| &values[n * stride + c * pixels..n * stride + (c + 1) * pixels])
    }
}

/// The per-channel affine map the forward applies before ReLU: `x · scale + shift`.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Affine {
    fn new(mean: &[f32], variance: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> Self {
        let inv_std: Vec<f32> = variance.iter().map(|&v| (1.0 / (f64::from(v) + epsilon).sqrt()) as f32).collect();
        let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
        let shift = beta.iter().zip(mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Self { scale, shift, inv_std }
    }

    /// Channel `c`'s map to the value before ReLU: the forward's output is its positive part, and
    /// the backward lets a gradient through exactly where it is positive. Taken out of the loops
    /// over pixels, so they vectorise.
    fn channel(&self, c: usize) -> impl Fn(f32) -> f32 + Copy {
        let (scale, shift) = (self.scale[c], self.shift[c]);
        move |x| x * scale + shift
    }
}

/// ReLU as a select, which vectorises (`f32::max` must also handle NaN, and does not).
#[inline(always)]
pub(crate) fn positive(v: f32) -> f32 {
    if v > 0.0 { v } else { 0.0 }
}

/// The batch's mean and biased variance of every channel (two passes, as burn computes them).
pub fn statistics(p: &Planes, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let per_channel: Vec<(f32, f32)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let [sum] = p.channel(x, c).map(|plane| lane_sums(plane, plane, |v, _| [v])).fold([0.0], add);
            let mean = (sum / p.count()) as f32;
            let [squares] = p.channel(x, c).map(|plane| lane_sums(plane, plane, |v, _| [(v - mean) * (v - mean)])).fold([0.0], add);
            (mean, (squares / p.count()) as f32)
        })
        .collect();
    per_channel.into_iter().unzip()
}

/// `K` sums of `f(a[i], b[i])` over two equal slices, kept in 16 lanes so the compiler
/// vectorises them; lanes are combined in a fixed order.
#[inline(always)]
fn lane_sums<const K: usize>(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; K]) -> [f64; K] {
    const LANES: usize = 16;
    let mut lanes = [[0.0f32; LANES]; K];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for l in 0..LANES {
            let v = f(a[l], b[l]);
            for k in 0..K {
                lanes[k][l] += v[k];
            }
        }
    }
    let mut sums = lanes.map(|lane| lane.iter().map(|&v| f64::from(v)).sum::<f64>());
    for (&a, &b) in ra.iter().zip(rb) {
        let v = f(a, b);
        for k in 0..K {
            sums[k] += f64::from(v[k]);
        }
    }
    sums
}

fn add<const K: usize>(a: [f64; K], b: [f64; K]) -> [f64; K] {
    std::array::from_fn(|k| a[k] + b[k])
}

/// `relu(gamma · (x − mean) / √(variance + ε) + beta)`, channel by channel.
pub fn forward(p: &Planes, x: &[f32], stats: (&[f32], &[f32]), gamma: &[f32], beta: &[f32], epsilon: f64) -> Vec<f32> {
    let affine = Affine::new(stats.0, stats.1, gamma, beta, epsilon);
    // SAFETY: each plane's values are written one for one from `x`'s plane of the same length.
    #[allow(unsafe_code)]
    unsafe {
        crate::written_by_chunks(x.len(), p.pixels, |plane, y| {
            let x = &x[plane * p.pixels..][..y.len()];
            let before = affine.channel(plane % p.channels);
            for (y, &x) in y.iter_mut().zip(x) {
                y.write(positive(before(x)));
            }
        })
    }
}

/// The gradients of [`forward`]'s loss with respect to `x`, `gamma` and `beta`, given the
/// gradient `dy` of its output and the statistics it used.
pub fn backward(
    p: &Planes,
    x: &[f32],
    dy: &[f32],
    stats: (&[f32], &[f32]),
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mean, variance) = stats;
    let affine = Affine::new(mean, variance, gamma, beta, epsilon);
    // dβ = Σ g and dγ = Σ g · x̂, with g the gradient ReLU lets through
    let sums: Vec<(f32, f32)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let (m, s, before) = (mean[c], affine.inv_std[c], affine.channel(c));
            let [dbeta, dgamma] = p
                .channel(x, c)
                .zip(p.channel(dy, c))
                .map(|(x, dy)| {
                    lane_sums(x, dy, |x, dy| {
                        let through = if before(x) > 0.0 { dy } else { 0.0 };
                        [through, through * (x - m) * s]
                    })
                })
                .fold([0.0, 0.0], add);
            (dgamma as f32, dbeta as f32)
        })
        .collect();
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let count = p.count() as f32;
    // SAFETY: each plane's values are written one for one from `x`'s and `dy`'s planes of the
    // same length.
    #[allow(unsafe_code)]
    let dx = unsafe {
        crate::written_by_chunks(x.len(), p.pixels, |plane, dx| {
            let (x, dy) = (&x[plane * p.pixels..][..dx.len()], &dy[plane * p.pixels..][..dx.len()]);
            let c = plane % p.channels;
            let (m, s, before) = (mean[c], affine.inv_std[c], affine.channel(c));
            let (mean_g, mean_gx) = (dbeta[c] / count, dgamma[c] / count);
            let factor = gamma[c] * s;
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                let through = if before(x) > 0.0 { dy } else { 0.0 };
                dx.write(factor * (through - mean_g - (x - m) * s * mean_gx));
            }
        })
    };
    (dx, dgamma, dbeta)
}
