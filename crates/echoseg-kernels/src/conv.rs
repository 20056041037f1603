//! The "same" convolution and its two gradients on slices in NCHW order, image by image.
//!
//! Each image is computed on one thread from start to end (its im2col in bands of rows, one
//! matrix product per band, written straight into its part of the output), so no result
//! depends on how many threads share the batch.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use crate::im2col::{Same, col2im, im2col};
use crate::matmul::{View, ViewMut, product};

/// The largest im2col band, in values (4 MiB of f32): it stays in cache and bounds memory for
/// large images, which are cut into bands of whole rows.
const BAND_VALUES: usize = 1 << 20;

thread_local! {
    /// Each thread's im2col band, reused from call to call.
    static BAND: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's band buffer of at least `len` values (contents arbitrary).
fn with_band<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    BAND.with(|band| {
        let mut band = band.borrow_mut();
        if band.len() < len {
            band.resize(len, 0.0);
        }
        f(&mut band[..len])
    })
}

/// The bands of output rows an image is cut into.
fn bands(g: &Same) -> impl Iterator<Item = Range<usize>> {
    let rows = (BAND_VALUES / (g.taps() * g.width).max(1)).clamp(1, g.height.max(1));
    (0..g.height).step_by(rows).map(move |y| y..(y + rows).min(g.height))
}

/// `y = w ⊛ x`: x [batch, cin, h, w], weight [cout, cin, k, k] → [batch, cout, h, w].
pub fn forward(g: &Same, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let (n, w) = (g.pixels(), View::rows(weight, g.cout, g.taps()));
    let mut y = vec![0.0f32; g.batch * g.cout * n];
    y.par_chunks_mut(g.cout * n).zip(x.par_chunks(g.cin * n)).for_each(|(y, x)| {
        if g.pointwise() {
            return product(ViewMut { data: y, rows: g.cout, cols: n, row_stride: n }, w, View::rows(x, g.cin, n), false);
        }
        for rows in bands(g) {
            let (from, len) = (rows.start * g.width, rows.len() * g.width);
            with_band(g.taps() * len, |col| {
                im2col(g, x, rows, col);
                let dst = ViewMut { data: &mut y[from..], rows: g.cout, cols: len, row_stride: n };
                product(dst, w, View::rows(col, g.taps(), len), false);
            });
        }
    });
    y
}

/// The input gradient: `dx = wᵀ · dy`, each tap added back where it was read from.
pub fn input_grad(g: &Same, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (n, wt) = (g.pixels(), View::rows(weight, g.cout, g.taps()).t());
    let mut dx = vec![0.0f32; g.batch * g.cin * n];
    dx.par_chunks_mut(g.cin * n).zip(dy.par_chunks(g.cout * n)).for_each(|(dx, dy)| {
        let dy = View::rows(dy, g.cout, n);
        if g.pointwise() {
            return product(ViewMut { data: dx, rows: g.cin, cols: n, row_stride: n }, wt, dy, false);
        }
        for rows in bands(g) {
            let (from, len) = (rows.start * g.width, rows.len() * g.width);
            with_band(g.taps() * len, |dcol| {
                let dst = ViewMut { data: &mut *dcol, rows: g.taps(), cols: len, row_stride: len };
                product(dst, wt, dy.columns(from, len), false);
                col2im(g, dcol, rows, dx);
            });
        }
    });
    dx
}

/// The weight gradient: `dw = Σ_images dy · colᵀ`, summed in image order.
pub fn weight_grad(g: &Same, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (n, len) = (g.pixels(), g.cout * g.taps());
    let mut per_image = vec![0.0f32; g.batch * len];
    per_image.par_chunks_mut(len).zip(x.par_chunks(g.cin * n)).zip(dy.par_chunks(g.cout * n)).for_each(|((dw, x), dy)| {
        let dy = View::rows(dy, g.cout, n);
        if g.pointwise() {
            let dst = ViewMut { data: dw, rows: g.cout, cols: g.taps(), row_stride: g.taps() };
            return product(dst, dy, View::rows(x, g.cin, n).t(), false);
        }
        for (band, rows) in bands(g).enumerate() {
            let (from, pixels) = (rows.start * g.width, rows.len() * g.width);
            with_band(g.taps() * pixels, |col| {
                im2col(g, x, rows, col);
                let dst = ViewMut { data: &mut *dw, rows: g.cout, cols: g.taps(), row_stride: g.taps() };
                product(dst, dy.columns(from, pixels), View::rows(col, g.taps(), pixels).t(), band > 0);
            });
        }
    });
    let mut sum = per_image[..len].to_vec();
    for image in per_image.chunks_exact(len).skip(1) {
        for (s, v) in sum.iter_mut().zip(image) {
            *s += *v;
        }
    }
    sum
}
