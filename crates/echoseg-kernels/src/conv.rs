//! The "same" convolution and its two gradients on slices in NCHW order, image by image.
//!
//! Each image is computed on one thread from start to end (its im2col in bands of rows, one
//! matrix product per band, written straight into its part of the output), so no result
//! depends on how many threads share the batch.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use crate::im2col::{Same, im2col};
use crate::matmul::{View, ViewMut, product};
use crate::norm::positive;
use crate::shifted;

/// The largest im2col band, in values (4 MiB of f32): it stays in cache and bounds memory for
/// large images, which are cut into bands of whole rows.
const BAND_VALUES: usize = 1 << 20;

thread_local! {
    /// Each thread's im2col band, reused from call to call.
    static BAND: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's band buffer of at least `len` values (contents arbitrary).
fn with_band<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    BAND.with(|band| f(crate::at_least(&mut band.borrow_mut(), len)))
}

/// The bands of output rows an image is cut into.
fn bands(g: &Same) -> impl Iterator<Item = Range<usize>> {
    let rows = (BAND_VALUES / (g.taps() * g.width).max(1)).clamp(1, g.height.max(1));
    (0..g.height).step_by(rows).map(move |y| y..(y + rows).min(g.height))
}

/// What is applied to each image's output right after its product, while it is in cache.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// A value per output channel added to all its pixels.
    pub bias: Option<&'a [f32]>,
    /// Whether negative values become 0.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Nothing: the plain convolution.
    pub const NONE: Epilogue<'static> = Epilogue { bias: None, relu: false };

    fn apply(&self, y: &mut [f32], pixels: usize) {
        for (c, plane) in y.chunks_exact_mut(pixels).enumerate() {
            let bias = self.bias.map_or(0.0, |b| b[c]);
            match self.relu {
                true => plane.iter_mut().for_each(|v| *v = positive(*v + bias)),
                false if self.bias.is_some() => plane.iter_mut().for_each(|v| *v += bias),
                false => {}
            }
        }
    }
}

/// `y = w ⊛ x`, then `epilogue`: x [batch, cin, h, w], weight [cout, cin, k, k] → [batch, cout, h, w].
pub fn forward(g: &Same, x: &[f32], weight: &[f32], epilogue: Epilogue<'_>) -> Vec<f32> {
    let (n, w) = (g.pixels(), View::rows(weight, g.cout, g.taps()));
    let mut y = crate::zeroed(g.batch * g.cout * n);
    y.par_chunks_mut(g.cout * n).zip(x.par_chunks(g.cin * n)).for_each(|(y, x)| {
        if g.pointwise() {
            product(ViewMut { data: y, rows: g.cout, cols: n, row_stride: n }, w, View::rows(x, g.cin, n), false);
        } else if shifted::worth_it(g) {
            shifted::forward(g, x, weight, y);
        } else {
            for rows in bands(g) {
                let (from, len) = (rows.start * g.width, rows.len() * g.width);
                with_band(g.taps() * len, |col| {
                    im2col(g, x, rows, col);
                    let dst = ViewMut { data: &mut y[from..], rows: g.cout, cols: len, row_stride: n };
                    product(dst, w, View::rows(col, g.taps(), len), false);
                });
            }
        }
        epilogue.apply(y, n);
    });
    y
}

/// The input gradient. For a "same" convolution it is itself a "same" convolution: of `dy` with
/// the kernel turned half a turn and its channels swapped (tap offsets are symmetric about the
/// centre), so it runs through [`forward`]: no scatter of a tap matrix back onto `dx`, and a
/// product whose inner dimension is `cout · k²` rather than `cout`.
pub fn input_grad(g: &Same, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let transposed = Same { cin: g.cout, cout: g.cin, ..*g };
    let taps = g.kernel * g.kernel;
    let mut turned = vec![0.0f32; weight.len()];
    for (o, per_output) in weight.chunks_exact(g.taps()).enumerate() {
        for (c, kernel) in per_output.chunks_exact(taps).enumerate() {
            let target = &mut turned[(c * g.cout + o) * taps..][..taps];
            for (t, &v) in kernel.iter().enumerate() {
                target[taps - 1 - t] = v;
            }
        }
    }
    forward(&transposed, dy, &turned, Epilogue::NONE)
}

/// The weight gradient: `dw = Σ_images dy · colᵀ`, summed in image order.
///
/// Each image's gradient is formed transposed, by [`shifted::weight_grad`] where it applies
/// ([k², cout · cin]) and by [`im2col_weight_grad`] otherwise ([taps, cout]); the sum over images
/// turns it back to [cout, cin, k, k].
pub fn weight_grad(g: &Same, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (n, len) = (g.pixels(), g.cout * g.taps());
    let shifted = shifted::worth_it(g);
    let mut per_image = vec![0.0f32; g.batch * len];
    per_image.par_chunks_mut(len).zip(x.par_chunks(g.cin * n)).zip(dy.par_chunks(g.cout * n)).for_each(|((dwt, x), dy)| match shifted {
        true => shifted::weight_grad(g, x, dy, dwt),
        false => im2col_weight_grad(g, x, dy, dwt),
    });
    // rows of each image's transposed gradient: one per tap (k²) or one per input channel and tap
    let rows = if shifted { g.kernel * g.kernel } else { g.taps() };
    let mut sum = vec![0.0f32; len];
    for image in per_image.chunks_exact(len) {
        for (r, row) in image.chunks_exact(len / rows).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                sum[c * rows + r] += v;
            }
        }
    }
    sum
}

/// One image's weight gradient through im2col, `dwt` [taps, cout] = `col · dyᵀ`: the matrix
/// product then runs along output channels (few), reads the im2col rows as they lie and packs
/// only `dy`, where `dy · colᵀ` made it gather the whole im2col matrix column by column.
fn im2col_weight_grad(g: &Same, x: &[f32], dy: &[f32], dwt: &mut [f32]) {
    let n = g.pixels();
    let dyt = View::rows(dy, g.cout, n).t();
    fn dst<'a>(g: &Same, dwt: &'a mut [f32]) -> ViewMut<'a> {
        ViewMut { data: dwt, rows: g.taps(), cols: g.cout, row_stride: g.cout }
    }
    if g.pointwise() {
        return product(dst(g, dwt), View::rows(x, g.cin, n), dyt, false);
    }
    for (band, rows) in bands(g).enumerate() {
        let (from, pixels) = (rows.start * g.width, rows.len() * g.width);
        with_band(g.taps() * pixels, |col| {
            im2col(g, x, rows, col);
            let dyt = dyt.t().columns(from, pixels).t();
            product(dst(g, &mut *dwt), View::rows(col, g.taps(), pixels), dyt, band > 0);
        });
    }
}
