//! Bilinear resizing with corners aligned (burn's default, what the architectures' up-sampling
//! uses) on slices in NCHW order, plane by plane, with its gradient.
//!
//! burn-flex recomputes each output pixel's source coordinates (two `floor` calls in f64) inside
//! its innermost loop and reads four values per pixel; here coordinates are computed once per row
//! and per column, and the interpolation runs along rows and then along columns (the same
//! function, rounded differently; tests hold it within 1e-4 of burn-flex's, not to the bit).

use rayon::prelude::*;

/// For each output coordinate along one axis: the two source coordinates and the weight of the
/// second.
struct Taps {
    low: Vec<usize>,
    high: Vec<usize>,
    weight: Vec<f32>,
}

impl Taps {
    fn new(input: usize, output: usize) -> Self {
        let ratio = (input as f64 - 1.0) / (output.max(1) - 1).max(1) as f64;
        let (mut low, mut high, mut weight) = (Vec::with_capacity(output), Vec::with_capacity(output), Vec::with_capacity(output));
        for o in 0..output {
            let at = o as f64 * ratio;
            let l = at.floor().max(0.0) as usize;
            low.push(l);
            high.push((l + 1).min(input - 1));
            weight.push((at - l as f64).max(0.0) as f32);
        }
        Self { low, high, weight }
    }
}

/// The size of one resizing: planes (batch × channels) of `input` pixels to `output` pixels.
#[derive(Clone, Copy, Debug)]
pub struct Resize {
    /// Batch × channels.
    pub planes: usize,
    /// Input (height, width).
    pub input: [usize; 2],
    /// Output (height, width).
    pub output: [usize; 2],
}

/// Resizes every plane of `x`: each output row blends its two input rows (contiguous, so
/// vectorised), then each output pixel blends two values of that row.
pub fn forward(r: &Resize, x: &[f32]) -> Vec<f32> {
    let ([ih, iw], [oh, ow]) = (r.input, r.output);
    let (rows, cols) = (Taps::new(ih, oh), Taps::new(iw, ow));
    let mut y = crate::zeroed(r.planes * oh * ow);
    y.par_chunks_mut(oh * ow).zip(x.par_chunks(ih * iw)).for_each(|(y, x)| {
        let mut blended = vec![0.0f32; iw];
        for (out, o) in y.chunks_exact_mut(ow).zip(0..oh) {
            let (top, bottom, wy) = (&x[rows.low[o] * iw..][..iw], &x[rows.high[o] * iw..][..iw], rows.weight[o]);
            for ((b, &t), &u) in blended.iter_mut().zip(top).zip(bottom) {
                *b = t + (u - t) * wy;
            }
            for (v, ((&l, &h), &wx)) in out.iter_mut().zip(cols.low.iter().zip(&cols.high).zip(&cols.weight)) {
                let (a, b) = (blended[l], blended[h]);
                *v = a + (b - a) * wx;
            }
        }
    });
    y
}

/// The gradient of [`forward`] with respect to its input, its adjoint step by step: each output
/// row's gradient is shared between two values of a row, and that row between two input rows,
/// added in a fixed order.
pub fn backward(r: &Resize, dy: &[f32]) -> Vec<f32> {
    let ([ih, iw], [oh, ow]) = (r.input, r.output);
    let (rows, cols) = (Taps::new(ih, oh), Taps::new(iw, ow));
    let mut dx = crate::zeroed(r.planes * ih * iw);
    dx.par_chunks_mut(ih * iw).zip(dy.par_chunks(oh * ow)).for_each(|(dx, dy)| {
        let mut row_grad = vec![0.0f32; iw];
        for (grad, o) in dy.chunks_exact(ow).zip(0..oh) {
            row_grad.fill(0.0);
            for (&g, ((&l, &h), &wx)) in grad.iter().zip(cols.low.iter().zip(&cols.high).zip(&cols.weight)) {
                row_grad[l] += g - g * wx;
                row_grad[h] += g * wx;
            }
            let wy = rows.weight[o];
            for (d, &g) in dx[rows.low[o] * iw..][..iw].iter_mut().zip(&row_grad) {
                *d += g - g * wy;
            }
            for (d, &g) in dx[rows.high[o] * iw..][..iw].iter_mut().zip(&row_grad) {
                *d += g * wy;
            }
        }
    });
    dx
}
