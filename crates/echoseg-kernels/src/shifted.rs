//! A "same" convolution of one image without im2col: the input is copied once into a zero-padded
//! band, and each kernel tap is one matrix product that reads that band shifted by the tap's
//! offset, accumulated into the output.
//!
//! im2col copies the input once per tap (nine times for 3×3) into a matrix larger than L2 before
//! the product reads it again; here the copy is made once and the products read the padded band
//! in place. The price: the output is computed on padded rows (the pad columns are computed and
//! dropped) and accumulated once per tap, so it only pays where the channels are many enough
//! for each product to be long (`worth_it`).
//!
//! Where `direct.rs` runs (AVX2 or AVX-512) the forward is its; the shifted products then serve
//! the weight gradient, and the forward only on other machines.
//!
//! The weight gradient reads the same band laid out pixel by pixel (a pixel's channels side by
//! side) against the output gradient on padded rows with zero pad columns: one product per tap
//! over all the band's pixels, and neither operand needs `gemm` to pack it.

use std::cell::RefCell;
use std::ops::Range;

use crate::at_least;
use crate::im2col::Same;
use crate::matmul::{View, ViewMut, product};

/// The padded input band's size, in values (1 MiB of f32): with the output band it stays in L2.
const BAND_VALUES: usize = 1 << 18;

thread_local! {
    /// Each thread's padded input band and output band, reused from call to call.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Whether the shifted products beat im2col for this geometry: where the im2col matrix would be
/// larger than L2 (2 MiB and more; a smaller one stays in cache, where one long product beats a
/// product per tap), a product per tap is long enough (8 input channels or more) and the padded
/// rows are not much longer than the image's.
pub fn worth_it(g: &Same) -> bool {
    let pad = g.pad();
    g.kernel > 1 && g.taps() * g.pixels() >= IM2COL_IN_CACHE && g.cin >= 8 && 16 * pad <= g.width
}

/// The largest im2col matrix, in values, that is still built (2 MiB of f32).
const IM2COL_IN_CACHE: usize = 1 << 19;

/// The padded band's geometry for output rows `rows`.
struct Padded {
    pad: usize,
    /// Padded row length.
    width: usize,
    /// Distance between channels in the band: the band's rows plus slack, so the last tap's
    /// shifted read of the pad columns stays inside the band.
    plane: usize,
}

impl Padded {
    fn new(g: &Same, rows: usize) -> Self {
        let pad = g.pad();
        let width = g.width + 2 * pad;
        Self { pad, width, plane: (rows + 2 * pad) * width + 2 * pad }
    }

    /// The image row band row `r` of the output rows `rows` holds, or `None` in the padding
    /// above or below the image.
    fn source_row(&self, g: &Same, rows: &Range<usize>, r: usize) -> Option<usize> {
        (rows.start + r).checked_sub(self.pad).filter(|&y| y < g.height)
    }

    /// Where tap `t` (row-major in the kernel) starts reading the band, in padded pixels.
    fn offset(&self, g: &Same, t: usize) -> usize {
        (t / g.kernel) * g.dilation * self.width + (t % g.kernel) * g.dilation
    }
}

/// The bands of output rows the image is cut into, each with its padded input band in budget.
fn bands(g: &Same) -> impl Iterator<Item = Range<usize>> {
    let full = Padded::new(g, 0);
    let per_row = g.cin * full.width;
    let rows = (BAND_VALUES / per_row.max(1)).saturating_sub(2 * full.pad).clamp(1, g.height.max(1));
    (0..g.height).step_by(rows).map(move |y| y..(y + rows).min(g.height))
}

/// Copies the input rows band `rows` reads (`pad` above and below, zero outside the image) into
/// `band`, each row between zeroed pad columns.
fn fill(g: &Same, x: &[f32], rows: &Range<usize>, p: &Padded, band: &mut [f32]) {
    let pixels = g.pixels();
    for (c, plane) in band.chunks_exact_mut(p.plane).enumerate() {
        let channel = &x[c * pixels..(c + 1) * pixels];
        for (r, row) in plane.chunks_exact_mut(p.width).enumerate() {
            let Some(y) = p.source_row(g, rows, r) else {
                row.fill(0.0);
                continue;
            };
            row[..p.pad].fill(0.0);
            row[p.pad..p.pad + g.width].copy_from_slice(&channel[y * g.width..(y + 1) * g.width]);
            row[p.pad + g.width..].fill(0.0);
        }
        let rows_end = plane.len() / p.width * p.width;
        plane[rows_end..].fill(0.0);
    }
}

/// `y = w ⊛ x` for one image: x [cin, h, w], weight [cout, cin, k, k] → y [cout, h, w], every value
/// of `y` written.
pub fn forward(g: &Same, x: &[f32], weight: &[f32], y: &mut [f32]) {
    let (k, pixels) = (g.kernel, g.pixels());
    BUFFERS.with(|buffers| {
        let (band, out) = &mut *buffers.borrow_mut();
        for rows in bands(g) {
            let p = Padded::new(g, rows.len());
            let n = rows.len() * p.width;
            let (band, out) = (at_least(band, g.cin * p.plane), at_least(out, g.cout * n));
            fill(g, x, &rows, &p, band);
            for t in 0..k * k {
                let offset = p.offset(g, t);
                // tap t of every (output, input) pair: the weight's values t, k² apart
                let tap = View { data: &weight[t..], rows: g.cout, cols: g.cin, row_stride: g.taps(), col_stride: k * k };
                let shifted = View { data: &band[offset..], rows: g.cin, cols: n, row_stride: p.plane, col_stride: 1 };
                product(ViewMut { data: out, rows: g.cout, cols: n, row_stride: n }, tap, shifted, t > 0);
            }
            // the padded rows' image columns into the output
            for (o, computed) in out.chunks_exact(n).enumerate() {
                let target = &mut y[o * pixels + rows.start * g.width..o * pixels + rows.end * g.width];
                for (to, from) in target.chunks_exact_mut(g.width).zip(computed.chunks_exact(p.width)) {
                    to.copy_from_slice(&from[..g.width]);
                }
            }
        }
    });
}

/// Copies the input rows band `rows` reads into `band` pixel by pixel ([padded pixel, cin]: a
/// pixel's channels side by side), zero outside the image, so a tap's product reads the channels
/// of consecutive pixels as one column-major matrix and `gemm` packs nothing.
fn fill_pixel_major(g: &Same, x: &[f32], rows: &Range<usize>, p: &Padded, band: &mut [f32]) {
    let (pixels, cin) = (g.pixels(), g.cin);
    band.fill(0.0);
    for r in 0..rows.len() + 2 * p.pad {
        let Some(y) = p.source_row(g, rows, r) else { continue };
        let row = &mut band[(r * p.width + p.pad) * cin..][..g.width * cin];
        for (c, channel) in x.chunks_exact(pixels).enumerate() {
            let source = &channel[y * g.width..][..g.width];
            for (to, &v) in row.chunks_exact_mut(cin).zip(source) {
                to[c] = v;
            }
        }
    }
}

/// Copies the output gradient's rows `rows` into `band` ([cout, rows · padded width]) with the
/// pad columns zero, so the pixels a tap reads past the image's side contribute nothing.
fn fill_gradient(g: &Same, dy: &[f32], rows: &Range<usize>, p: &Padded, band: &mut [f32]) {
    let pixels = g.pixels();
    let n = rows.len() * p.width;
    for (o, plane) in band.chunks_exact_mut(n).enumerate() {
        let channel = &dy[o * pixels + rows.start * g.width..o * pixels + rows.end * g.width];
        for (row, source) in plane.chunks_exact_mut(p.width).zip(channel.chunks_exact(g.width)) {
            row[..g.width].copy_from_slice(source);
            row[g.width..].fill(0.0);
        }
    }
}

/// One image's weight gradient, tap by tap: `dw` [k², cout, cin] (overwritten) gets
/// `dy · xᵀ` of each tap, the input read shifted by the tap's offset.
pub fn weight_grad(g: &Same, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    BUFFERS.with(|buffers| {
        let (band, gradient) = &mut *buffers.borrow_mut();
        for (b, rows) in bands(g).enumerate() {
            let p = Padded::new(g, rows.len());
            let n = rows.len() * p.width;
            // the pixel-major band holds the same values as the forward's: `plane` pixels of cin
            let (band, gradient) = (at_least(band, p.plane * g.cin), at_least(gradient, g.cout * n));
            fill_pixel_major(g, x, &rows, &p, band);
            fill_gradient(g, dy, &rows, &p, gradient);
            let lhs = View::rows(gradient, g.cout, n);
            for (t, per_tap) in dw.chunks_exact_mut(g.cout * g.cin).enumerate() {
                let shifted = View::rows(&band[p.offset(g, t) * g.cin..], n, g.cin);
                product(ViewMut { data: per_tap, rows: g.cout, cols: g.cin, row_stride: g.cin }, lhs, shifted, b > 0);
            }
        }
    });
}
