//! Bilinear resizing with corners aligned (burn's default, what the architectures' up-sampling
//! uses) on slices in NCHW order, plane by plane, with its gradient.
//!
//! burn-flex recomputes each output pixel's source coordinates (two `floor` calls in f64) inside
//! its innermost loop and reads four values per pixel; here coordinates are computed once per row
//! and per column, and the interpolation runs along rows and then along columns (the same
//! function, rounded differently; tests hold it within 1e-4 of burn-flex's, not to the bit).

use std::cell::RefCell;

thread_local! {
    /// Each thread's rows widened to the output's width, reused from plane to plane.
    static WIDENED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

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

/// Resizes every plane of `x`: each input row is first widened to the output's width (two values
/// of the row blended per output column), then each output row blends two widened rows
/// (contiguous, so vectorised). Widening the input's rows rather than the output's gathers half
/// as often when up-sampling by two.
pub fn forward(r: &Resize, x: &[f32]) -> Vec<f32> {
    let ([ih, iw], [oh, ow]) = (r.input, r.output);
    let (rows, cols) = (Taps::new(ih, oh), Taps::new(iw, ow));
    // SAFETY: each plane's `oh` rows of `ow` values are written, each from two widened rows of
    // `ow` values.
    #[allow(unsafe_code)]
    unsafe {
        crate::written_by_chunks(r.planes * oh * ow, oh * ow, |plane, y| {
            let x = &x[plane * ih * iw..][..ih * iw];
            WIDENED.with_borrow_mut(|widened| {
                let widened = crate::at_least(widened, ih * ow);
                for (wide, row) in widened.chunks_exact_mut(ow).zip(x.chunks_exact(iw)) {
                    for (v, ((&l, &h), &wx)) in wide.iter_mut().zip(cols.low.iter().zip(&cols.high).zip(&cols.weight)) {
                        let (a, b) = (row[l], row[h]);
                        *v = a + (b - a) * wx;
                    }
                }
                for (out, o) in y.chunks_exact_mut(ow).zip(0..oh) {
                    let (top, bottom, wy) = (&widened[rows.low[o] * ow..][..ow], &widened[rows.high[o] * ow..][..ow], rows.weight[o]);
                    for ((v, &t), &u) in out.iter_mut().zip(top).zip(bottom) {
                        v.write(t + (u - t) * wy);
                    }
                }
            })
        })
    }
}

/// The gradient of [`forward`] with respect to its input, its adjoint step by step: each output
/// row's gradient is shared between two widened rows (contiguous, so vectorised), then each
/// widened value between two values of its input row, added in a fixed order.
pub fn backward(r: &Resize, dy: &[f32]) -> Vec<f32> {
    let ([ih, iw], [oh, ow]) = (r.input, r.output);
    let (rows, cols) = (Taps::new(ih, oh), Taps::new(iw, ow));
    crate::zeroed_by_chunks(r.planes * ih * iw, ih * iw, |plane, dx| {
        let dy = &dy[plane * oh * ow..][..oh * ow];
        WIDENED.with_borrow_mut(|widened| {
            let widened = crate::at_least(widened, ih * ow);
            widened.fill(0.0);
            for (grad, o) in dy.chunks_exact(ow).zip(0..oh) {
                let wy = rows.weight[o];
                for (w, &g) in widened[rows.low[o] * ow..][..ow].iter_mut().zip(grad) {
                    *w += g - g * wy;
                }
                for (w, &g) in widened[rows.high[o] * ow..][..ow].iter_mut().zip(grad) {
                    *w += g * wy;
                }
            }
            for (row, wide) in dx.chunks_exact_mut(iw).zip(widened.chunks_exact(ow)) {
                for (&g, ((&l, &h), &wx)) in wide.iter().zip(cols.low.iter().zip(&cols.high).zip(&cols.weight)) {
                    row[l] += g - g * wx;
                    row[h] += g * wx;
                }
            }
        })
    })
}
