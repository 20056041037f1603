//! The "same" convolution and its two gradients on slices in NCHW order, image by image.
//!
//! Each image is computed on one thread from start to end, so no result depends on how many
//! threads share the batch: by the direct convolution of `direct.rs` where the machine has AVX2
//! or AVX-512, otherwise by im2col in bands of rows (one matrix product per band, written
//! straight into its part of the output) or the shifted products of `shifted.rs`; a 1×1
//! convolution is one matrix product. The weight gradient takes whichever of those paths, or
//! `channel_grad.rs`'s, was measured fastest for the geometry ([`WeightGradPath`]). The input
//! may be two tensors side by side ([`Input::Pair`], a decoder's inputs), which the direct paths
//! read where they lie and the matrix products concatenate first.

use std::borrow::Cow;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use crate::direct::{ImageInput, ImageOutput};
use crate::im2col::{Same, im2col};
use crate::matmul::{View, ViewMut, product};
use crate::norm::positive;
use crate::shifted;
use crate::{channel_grad, concat, direct};

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

    /// Writes output channel `c`'s `values` into `to` (of the same length: every value of `to`
    /// is written) with the epilogue applied.
    pub(crate) fn write(&self, c: usize, values: &[f32], to: &mut [MaybeUninit<f32>]) {
        assert_eq!(values.len(), to.len(), "an epilogue writes every value it is given");
        let bias = self.bias.map_or(0.0, |b| b[c]);
        match self.relu {
            true => to.iter_mut().zip(values).for_each(|(t, &v)| _ = t.write(positive(v + bias))),
            false if self.bias.is_some() => to.iter_mut().zip(values).for_each(|(t, &v)| _ = t.write(v + bias)),
            false => _ = to.write_copy_of_slice(values),
        }
    }
}

/// A batch's input channels, [batch, cin, h, w]: one buffer, or two whose channels follow each
/// other (a decoder's up-sampled input and its skip), read where they lie instead of concatenated
/// wherever the direct convolution reads them.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// One buffer.
    Whole(&'a [f32]),
    /// The first buffer's `split` channels, then the second's.
    Pair {
        /// [batch, split, h, w].
        first: &'a [f32],
        /// [batch, cin − split, h, w].
        second: &'a [f32],
        /// Channels of `first`.
        split: usize,
    },
}

impl<'a> Input<'a> {
    /// Image `i`'s channels.
    fn image(self, g: &Same, i: usize) -> ImageInput<'a> {
        let n = g.pixels();
        match self {
            Self::Whole(x) => ImageInput::from(&x[i * g.cin * n..][..g.cin * n]),
            Self::Pair { first, second, split } => {
                let rest = g.cin - split;
                ImageInput::pair(&first[i * split * n..][..split * n], &second[i * rest * n..][..rest * n], split)
            }
        }
    }

    /// The channels in one buffer, a pair concatenated: for the paths that read an image as one
    /// matrix.
    fn joined(self, g: &Same) -> Cow<'a, [f32]> {
        match self {
            Self::Whole(x) => Cow::Borrowed(x),
            Self::Pair { first, second, split } => {
                Cow::Owned(concat::join(first, second, g.batch, [split * g.pixels(), (g.cin - split) * g.pixels()]))
            }
        }
    }
}

/// `y = w ⊛ x`, then `epilogue`: x [batch, cin, h, w], weight [cout, cin, k, k] → [batch, cout, h, w].
pub fn forward(g: &Same, x: Input<'_>, weight: &[f32], epilogue: Epilogue<'_>) -> Vec<f32> {
    let n = g.pixels();
    if !direct::worth_it(g) {
        let x = x.joined(g);
        let image = |i: usize, y: &mut [f32]| products_forward(g, &x[i * g.cin * n..][..g.cin * n], weight, epilogue, y);
        return crate::zeroed_by_chunks(g.batch * g.cout * n, g.cout * n, image);
    }
    let taps = direct::Taps::new(g, weight);
    let image = |i: usize, y: &mut [MaybeUninit<f32>]| direct::forward(g, x.image(g, i), &taps, epilogue, y.into());
    // SAFETY: the direct convolution writes every value of its image's output (its test starts
    // from NaN everywhere).
    #[allow(unsafe_code)]
    unsafe {
        crate::written_by_chunks(g.batch * g.cout * n, g.cout * n, image)
    }
}

/// [`forward`] for one image through the matrix products, into `y` (zeros).
fn products_forward(g: &Same, x: &[f32], weight: &[f32], epilogue: Epilogue<'_>, y: &mut [f32]) {
    let (n, w) = (g.pixels(), View::rows(weight, g.cout, g.taps()));
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
}

/// The input gradient. For a "same" convolution it is itself a "same" convolution: of `dy` with
/// the kernel turned half a turn and its channels swapped (tap offsets are symmetric about the
/// centre), so it runs through [`forward`]: no scatter of a tap matrix back onto `dx`, and a
/// product whose inner dimension is `cout · k²` rather than `cout`.
pub fn input_grad(g: &Same, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (transposed, turned) = turned(g, weight);
    forward(&transposed, Input::Whole(dy), &turned, Epilogue::NONE)
}

/// [`input_grad`] cut into the gradients of a pair's two inputs ([`Input::Pair`], `split` channels
/// in the first): the direct convolution writes each channel straight into its part.
pub fn input_grad_pair(g: &Same, weight: &[f32], dy: &[f32], split: usize) -> (Vec<f32>, Vec<f32>) {
    let (transposed, turned) = turned(g, weight);
    let sizes = [split * g.pixels(), (g.cin - split) * g.pixels()];
    if !direct::worth_it(&transposed) {
        return concat::split(&forward(&transposed, Input::Whole(dy), &turned, Epilogue::NONE), g.batch, sizes);
    }
    let taps = direct::Taps::new(&transposed, &turned);
    let dy = Input::Whole(dy);
    let image = |i: usize, first: &mut [MaybeUninit<f32>], second: &mut [MaybeUninit<f32>]| {
        direct::forward(&transposed, dy.image(&transposed, i), &taps, Epilogue::NONE, ImageOutput::pair(first, second, split));
    };
    // SAFETY: the direct convolution writes every value of its image's output, here cut in two.
    #[allow(unsafe_code)]
    unsafe {
        crate::written_by_chunk_pairs(g.batch, sizes, image)
    }
}

/// The input gradient's convolution: the geometry with its channels swapped, and the kernel
/// turned half a turn, [cin, cout, k, k].
fn turned(g: &Same, weight: &[f32]) -> (Same, Vec<f32>) {
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
    (transposed, turned)
}

/// How one image's weight gradient is computed, each the fastest where it is chosen (measured
/// at the reference unet's and the default study's shapes).
#[derive(Clone, Copy, PartialEq, Eq)]
enum WeightGradPath {
    /// [`channel_grad::weight_grad`], [cout, cin, k, k]: on AVX2 where the output channels are
    /// whole blocks of 16, the kernel 3×3 and either side 32 channels or more, unless the direct
    /// path takes it.
    Channels,
    /// [`direct::weight_grad`], [cout, cin, k, k]: where the output channels are 16 or fewer (on
    /// AVX-512, 16 only where the shifted products do not apply) and the rows long (32 pixels or
    /// more) for whole vectors.
    Direct,
    /// [`shifted::weight_grad`], [k², cout · cin]: where the forward's shifted products apply.
    Shifted,
    /// [`im2col_weight_grad`], [taps, cout]: everywhere else.
    Im2col,
}

impl WeightGradPath {
    fn choose(g: &Same) -> Self {
        let shifted = shifted::worth_it(g);
        // 16 output channels: on AVX2 the direct path is the fastest since its copies are laid
        // out channel by channel (48 → 16 and 16 → 16 at 64 px, one thread: 83 GFLOP/s against
        // the channel path's 73 and the shifted products' 73); AVX-512 keeps the shifted products
        // where they apply, as measured there before that layout.
        let few_outputs = g.cout < 16 || (g.cout == 16 && (!shifted || !direct::wide_registers()));
        if direct::worth_it(g) && few_outputs && g.width >= 32 {
            Self::Direct
        } else if channel_grad::worth_it(g) {
            Self::Channels
        } else if shifted {
            Self::Shifted
        } else {
            Self::Im2col
        }
    }

    /// Rows of one image's gradient as this path lays it out, the transpose of [cout, cin, k, k]
    /// (the direct path's is that layout itself: one row).
    fn rows(self, g: &Same) -> usize {
        match self {
            Self::Direct | Self::Channels => 1,
            Self::Shifted => g.kernel * g.kernel,
            Self::Im2col => g.taps(),
        }
    }
}

/// The weight gradient: `dw = Σ_images dy · colᵀ`, summed in image order.
///
/// Each image's gradient is formed by the [`WeightGradPath`] chosen for the geometry; the sum
/// over images turns it back to [cout, cin, k, k] where the path formed it transposed.
pub fn weight_grad(g: &Same, x: Input<'_>, dy: &[f32]) -> Vec<f32> {
    let (n, len) = (g.pixels(), g.cout * g.taps());
    let path = WeightGradPath::choose(g);
    let joined = match path {
        WeightGradPath::Shifted | WeightGradPath::Im2col => x.joined(g),
        WeightGradPath::Direct | WeightGradPath::Channels => Cow::Borrowed(&[][..]),
    };
    let per_image = crate::zeroed_by_chunks(g.batch * len, len, |image, dw| {
        let dy = &dy[image * g.cout * n..][..g.cout * n];
        let whole = || &joined[image * g.cin * n..][..g.cin * n];
        match path {
            WeightGradPath::Direct => direct::weight_grad(g, x.image(g, image), dy, dw),
            WeightGradPath::Channels => channel_grad::weight_grad(g, x.image(g, image), dy, dw),
            WeightGradPath::Shifted => shifted::weight_grad(g, whole(), dy, dw),
            WeightGradPath::Im2col => im2col_weight_grad(g, whole(), dy, dw),
        }
    });
    sum_over_images(&per_image, len, path.rows(g))
}

/// The sum over images of `per_image` (images of `len` values, each laid out [rows, columns]),
/// laid out [columns, rows], every value summed in image order.
///
/// Each worker sums its own runs of about 4096 values of the result (whole columns): summing
/// value by value, each through its own strided iterator, cost as much as a 16 px layer's
/// weight gradient itself.
fn sum_over_images(per_image: &[f32], len: usize, rows: usize) -> Vec<f32> {
    let columns = len / rows.max(1);
    let block = (4096 / rows.max(1)).clamp(1, columns.max(1));
    crate::zeroed_by_chunks(len, block * rows, |b, sum| {
        let (first, count) = (b * block, sum.len() / rows);
        for image in per_image.chunks_exact(len) {
            for r in 0..rows {
                let from = &image[r * columns + first..][..count];
                match rows {
                    1 => sum.iter_mut().zip(from).for_each(|(s, &v)| *s += v),
                    _ => from.iter().enumerate().for_each(|(c, &v)| sum[c * rows + r] += v),
                }
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use super::sum_over_images;

    #[test]
    fn the_sum_over_images_transposes_and_adds_in_image_order_across_runs() {
        // one row (the direct and channel paths), 9 (shifted) and 432 (im2col); lengths that cut
        // into several runs of columns with a shorter last one
        for (rows, columns, images) in [(1, 9000, 3), (9, 1000, 2), (432, 13, 4), (1, 7, 1)] {
            let len = rows * columns;
            let per_image: Vec<f32> = (0..images * len).map(|i| ((i * 7919 % 1013) as f32) * 0.37 - 150.0).collect();
            let sum = sum_over_images(&per_image, len, rows);
            for c in 0..columns {
                for r in 0..rows {
                    let expected = (0..images).fold(0.0f32, |s, i| s + per_image[i * len + r * columns + c]);
                    assert_eq!(sum[c * rows + r].to_bits(), expected.to_bits(), "rows {rows}, column {c}, row {r}");
                }
            }
        }
    }
}
