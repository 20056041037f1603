//! A "same" convolution of one image computed directly, without a matrix product, and its
//! weight gradient where that pays.
//!
//! The products of `conv.rs` and `shifted.rs` hand `gemm` a matrix whose one small dimension is the
//! output channels (16 to 64): `gemm` then packs its operands, reads and writes its output tiles
//! once per product, and im2col or the shifted products' accumulation pass over memory between
//! them. Here the input band is copied once ([padded row, channel, padded column], so the pixels a
//! tap reads for one channel lie side by side), the kernel is laid out block of output channels
//! by block, each block's taps in one run with its channels side by side ([`Taps`]), and a block
//! of output channels × vectors of pixels stays in registers while every tap and input channel is
//! added into it (8 × 3 of AVX-512's 32 registers, 6 × 2 of AVX2's 16); each value is written
//! once, into the output.
//!
//! The weight gradient keeps, for 8 output channels × 3 kernel columns of one input channel and
//! kernel row, one vector of per-lane sums over the pixels (the output gradient and the input read
//! whole vectors at a time, no value broadcast), and adds the lanes at the end. Its copies of the
//! input and the output gradient are laid out channel by channel, so each sum reads a channel's
//! rows as one stream.
//!
//! Vectors are compiled for AVX-512 and AVX2 and chosen at run time (`pulp`). Each output value's
//! sum runs in the same order whatever the vector width or the number of threads; the weight
//! gradient's lanes, and so its rounding, follow the vector width. The tests also run AVX-512's
//! vectors and register blocks in software (`pulp::Scalar512b`, the same bits), so machines
//! without AVX-512 check its path.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use pulp::{Simd, WithSimd, bytemuck};

use crate::conv::Epilogue;
use crate::im2col::Same;
use crate::{at_least, whole};

/// The padded input band's size, in values (1 MiB of f32): it stays in L2.
const BAND_VALUES: usize = 1 << 18;

/// The most vectors of pixels per register block.
const VECTORS: usize = 3;

thread_local! {
    /// Each thread's padded input band, reused from call to call.
    static BAND: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Whether the direct convolution runs for this geometry: a kernel wider than one pixel (a 1×1
/// convolution is one matrix product already) on a machine with AVX2 or AVX-512 (without them
/// `gemm`'s products are faster than these loops).
pub fn worth_it(g: &Same) -> bool {
    !g.pointwise() && vectors_available()
}

/// Whether this machine has the vector instructions the direct convolution is written for (AVX2
/// and FMA, or AVX-512).
#[cfg(target_arch = "x86_64")]
fn vectors_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| pulp::x86::V3::try_new().is_some())
}

/// Elsewhere the products of `conv.rs` and `shifted.rs` run (not measured here).
#[cfg(not(target_arch = "x86_64"))]
fn vectors_available() -> bool {
    false
}

/// The kernel laid out for the direct convolution, block of output channels by block (see
/// [`channel_blocks`]): each block's values lie together, [kernel row, input channel, kernel
/// column, output channel of the block], so a block reads one run of memory that stays in L1
/// while it sweeps every tap and input channel.
pub struct Taps {
    /// The values, block after block.
    values: Vec<f32>,
    /// Each block's first output channel and its number of channels, in order.
    blocks: Vec<(usize, usize)>,
}

impl Taps {
    /// `weight` [cout, cin, k, k] laid out in the blocks this machine's registers hold.
    pub fn new(g: &Same, weight: &[f32]) -> Self {
        Self::in_blocks(g, weight, wide_registers())
    }

    /// `weight` laid out in AVX-512's blocks (`wide`) or AVX2's, whatever this machine has (the
    /// tests run AVX-512's in software).
    fn in_blocks(g: &Same, weight: &[f32], wide: bool) -> Self {
        let blocks = channel_blocks(g.cout, wide);
        let k = g.kernel;
        let mut values = vec![0.0f32; weight.len()];
        for &(first, size) in &blocks {
            let block = &mut values[first * g.taps()..][..size * g.taps()];
            for j in 0..size {
                for (c, kernel) in weight[(first + j) * g.taps()..][..g.taps()].chunks_exact(k * k).enumerate() {
                    for (t, &v) in kernel.iter().enumerate() {
                        let (ky, kx) = (t / k, t % k);
                        block[((ky * g.cin + c) * k + kx) * size + j] = v;
                    }
                }
            }
        }
        Self { values, blocks }
    }

    /// The values of the block whose first output channel is `first`, `size` channels.
    fn block(&self, g: &Same, first: usize, size: usize) -> &[f32] {
        &self.values[first * g.taps()..][..size * g.taps()]
    }
}

/// How the output channels are cut into register blocks: 8 at a time where 32 vector registers
/// hold the sums (AVX-512), otherwise 6 and 4 (12 or 8 of AVX2's 16: 12 sums in flight keep
/// both multiply-add units busy where 8 leave them waiting on each other's latency), then single
/// channels for what is left.
fn channel_blocks(cout: usize, wide: bool) -> Vec<(usize, usize)> {
    let (size, large) = match wide {
        true => (8, cout / 8),
        // the fewest single channels, then the most sixes: 16 = 6 + 6 + 4, 32 = 6 · 4 + 4 + 4,
        // 13 = 6 + 6 + 1
        false => (6, (0..=cout / 6).min_by_key(|&n| ((cout - 6 * n) % 4, usize::MAX - n)).unwrap_or(0)),
    };
    let rest = cout - size * large;
    let sizes = std::iter::repeat_n(size, large).chain(std::iter::repeat_n(4, rest / 4)).chain(std::iter::repeat_n(1, rest % 4));
    let mut first = 0;
    sizes
        .map(|size| {
            first += size;
            (first - size, size)
        })
        .collect()
}

/// Whether vectors `S` take AVX-512's register blocks (8 output channels × 3 vectors in the
/// forward, 8 in the weight gradient): vectors of 16 lanes. Of the widths `pulp` dispatches to
/// only AVX-512's have them (with the 32 registers these blocks need), and so does its stand-in in
/// software, `pulp::Scalar512b`, with which the tests check these blocks on any machine.
const fn wide<S: Simd>() -> bool {
    S::F32_LANES >= 16
}

/// Whether this machine has 32 vector registers (AVX-512), as `pulp` will dispatch to.
pub(crate) fn wide_registers() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *WIDE.get_or_init(|| pulp::x86::V4::try_new().is_some())
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The padded band's geometry.
#[derive(Clone, Copy)]
pub(crate) struct Band {
    pad: usize,
    /// Padded row length.
    width: usize,
    /// Output rows in this band.
    pub(crate) rows: usize,
}

impl Band {
    /// The band for `rows` output rows.
    pub(crate) fn new(g: &Same, rows: usize) -> Self {
        let pad = g.pad();
        Self { pad, width: g.width + 2 * pad, rows }
    }

    /// Values of the band for `rows` output rows, with slack past the end for the last vector's
    /// read beyond the image's right side.
    pub(crate) fn len(&self, g: &Same, lanes: usize) -> usize {
        (self.rows + 2 * self.pad) * g.cin * self.width + VECTORS * lanes
    }

    /// Where channel `c` of padded row `r` starts.
    pub(crate) fn row(&self, g: &Same, r: usize, c: usize) -> usize {
        (r * g.cin + c) * self.width
    }

    /// Where padded row `r` of channel `c` starts in [`fill_by_channel`]'s layout.
    fn channel_row(&self, r: usize, c: usize) -> usize {
        (c * (self.rows + 2 * self.pad) + r) * self.width
    }
}

/// The bands of output rows the image is cut into, each with its padded input band in budget.
pub(crate) fn bands(g: &Same) -> impl Iterator<Item = Range<usize>> {
    let whole = Band::new(g, 0);
    let per_row = g.cin * whole.width;
    let rows = (BAND_VALUES / per_row.max(1)).saturating_sub(2 * whole.pad).clamp(1, g.height.max(1));
    (0..g.height).step_by(rows).map(move |y| y..(y + rows).min(g.height))
}

/// One image's input channels, [cin, h, w]: one slice, or two whose channels follow each other (a
/// decoder's up-sampled input and its skip, read where they lie instead of concatenated).
#[derive(Clone, Copy)]
pub(crate) struct ImageInput<'a> {
    /// The channels before `split`.
    first: &'a [f32],
    /// The channels from `split` on (none for one slice).
    second: &'a [f32],
    split: usize,
}

impl<'a> From<&'a [f32]> for ImageInput<'a> {
    fn from(x: &'a [f32]) -> Self {
        Self { first: x, second: &[], split: usize::MAX }
    }
}

impl<'a> ImageInput<'a> {
    /// Channels `..split` from `first`, the rest from `second`.
    pub(crate) fn pair(first: &'a [f32], second: &'a [f32], split: usize) -> Self {
        Self { first, second, split }
    }

    /// Row `y` of channel `c`.
    fn row(&self, g: &Same, c: usize, y: usize) -> &'a [f32] {
        let (plane, c) = if c < self.split { (self.first, c) } else { (self.second, c - self.split) };
        &plane[c * g.pixels() + y * g.width..][..g.width]
    }
}

/// One image's output channels, [cout, h, w]: one slice, or two whose channels follow each other
/// (an input gradient written straight into a decoder's two inputs' gradients).
pub(crate) struct ImageOutput<'a> {
    /// The channels before `split`.
    first: &'a mut [MaybeUninit<f32>],
    /// The channels from `split` on (none for one slice).
    second: &'a mut [MaybeUninit<f32>],
    split: usize,
}

impl<'a> From<&'a mut [MaybeUninit<f32>]> for ImageOutput<'a> {
    fn from(y: &'a mut [MaybeUninit<f32>]) -> Self {
        Self { first: y, second: &mut [], split: usize::MAX }
    }
}

impl<'a> ImageOutput<'a> {
    /// Channels `..split` into `first`, the rest into `second`.
    pub(crate) fn pair(first: &'a mut [MaybeUninit<f32>], second: &'a mut [MaybeUninit<f32>], split: usize) -> Self {
        Self { first, second, split }
    }

    /// Row `y` of channel `c`.
    fn row(&mut self, g: &Same, c: usize, y: usize) -> &mut [MaybeUninit<f32>] {
        let (plane, c) = if c < self.split { (&mut *self.first, c) } else { (&mut *self.second, c - self.split) };
        &mut plane[c * g.pixels() + y * g.width..][..g.width]
    }
}

/// Copies the input rows that output rows `rows` read into `band` ([padded row, channel, padded
/// column]), zero outside the image.
pub(crate) fn fill(g: &Same, x: ImageInput<'_>, rows: &Range<usize>, b: &Band, band: &mut [f32]) {
    fill_at(g, x, rows, b, band, |r, c| b.row(g, r, c));
}

/// [`fill`] laid out [channel, padded row, padded column]: each channel's rows follow each other,
/// so the weight gradient's sweep over a channel reads one stream the hardware prefetches, not a
/// new one every row (a 48-pixel row is three cache lines).
fn fill_by_channel(g: &Same, x: ImageInput<'_>, rows: &Range<usize>, b: &Band, band: &mut [f32]) {
    fill_at(g, x, rows, b, band, |r, c| b.channel_row(r, c));
}

/// The copy of [`fill`] and [`fill_by_channel`]: padded row `r` of channel `c` starts at
/// `start(r, c)`; everything else, the padding included, is zero.
#[inline(always)]
fn fill_at(g: &Same, x: ImageInput<'_>, rows: &Range<usize>, b: &Band, band: &mut [f32], start: impl Fn(usize, usize) -> usize) {
    band.fill(0.0);
    for c in 0..g.cin {
        for r in 0..rows.len() + 2 * b.pad {
            let Some(y) = (rows.start + r).checked_sub(b.pad).filter(|&y| y < g.height) else { continue };
            let to = start(r, c) + b.pad;
            band[to..to + g.width].copy_from_slice(x.row(g, c, y));
        }
    }
}

/// `y = w ⊛ x`, then `epilogue`, for one image: x [cin, h, w], weights laid out as [`Taps`] → y
/// [cout, h, w], every value of `y` written.
pub(crate) fn forward(g: &Same, x: ImageInput<'_>, taps: &Taps, epilogue: Epilogue<'_>, y: ImageOutput<'_>) {
    crate::matmul::count(2 * g.cout * g.taps() * g.pixels());
    BAND.with(|band| pulp::Arch::new().dispatch(Forward { g, x, taps, epilogue, y, band: &mut band.borrow_mut() }));
}

/// [`forward`] for one vector width. A closure would not be compiled for that width: the loops
/// run in `with_simd` itself, and the band buffer is borrowed before.
struct Forward<'a> {
    g: &'a Same,
    x: ImageInput<'a>,
    taps: &'a Taps,
    epilogue: Epilogue<'a>,
    y: ImageOutput<'a>,
    band: &'a mut Vec<f32>,
}

impl WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { g, x, taps, epilogue, mut y, band } = self;
        let lanes = S::F32_LANES;
        for rows in bands(g) {
            let b = Band::new(g, rows.len());
            let band = at_least(band, b.len(g, lanes));
            fill(g, x, &rows, &b, band);
            let source = Source { g, b, band, taps };
            let mut target = Target { y: &mut y, epilogue };
            for r in 0..rows.len() {
                let mut x0 = 0;
                while x0 < g.width {
                    let (left, at) = (g.width - x0, Block { r, x0, image_row: rows.start + r });
                    // As many vectors of pixels per block as the registers hold: the row's last
                    // block covers what is left in one go (a part of its last vector unused),
                    // and four vectors are two blocks of two rather than three and one.
                    let wide = wide::<S>();
                    let done = match left.div_ceil(lanes) {
                        1 => every_channel::<S, 1>(simd, &source, at, left, &mut target),
                        2 => every_channel::<S, 2>(simd, &source, at, left, &mut target),
                        3 if wide => every_channel::<S, 3>(simd, &source, at, left, &mut target),
                        5.. if wide => every_channel::<S, 3>(simd, &source, at, 3 * lanes, &mut target),
                        _ => every_channel::<S, 2>(simd, &source, at, 2 * lanes, &mut target),
                    };
                    x0 += done;
                }
            }
        }
    }
}

/// What a register block reads: the geometry, the padded input band and the laid-out kernel.
struct Source<'a> {
    g: &'a Same,
    b: Band,
    band: &'a [f32],
    taps: &'a Taps,
}

/// Where a register block's sums go: the image's output, through the epilogue.
struct Target<'a, 'y> {
    y: &'a mut ImageOutput<'y>,
    epilogue: Epilogue<'a>,
}

/// Where a register block's pixels are: band row `r` (image row `image_row`), columns from `x0`.
#[derive(Clone, Copy)]
struct Block {
    r: usize,
    x0: usize,
    image_row: usize,
}

/// Every output channel of the pixels `at`, `valid` of them (at most `V` vectors), block by
/// block as [`Taps`] lays them out. Returns `valid`.
#[inline(always)]
fn every_channel<S: Simd, const V: usize>(simd: S, source: &Source<'_>, at: Block, valid: usize, target: &mut Target<'_, '_>) -> usize {
    let g = source.g;
    for &(o, size) in &source.taps.blocks {
        let taps = source.taps.block(g, o, size);
        match size {
            8 => store(g, &sums::<S, V, 8>(simd, source, taps, at), at, o, valid, target),
            6 => store(g, &sums::<S, V, 6>(simd, source, taps, at), at, o, valid, target),
            4 => store(g, &sums::<S, V, 4>(simd, source, taps, at), at, o, valid, target),
            _ => store(g, &sums::<S, V, 1>(simd, source, taps, at), at, o, valid, target),
        }
    }
    valid
}

/// The sums of the `C` output channels whose laid-out kernel is `taps` over `V` vectors of pixels
/// at `at`.
#[inline(always)]
fn sums<S: Simd, const V: usize, const C: usize>(simd: S, source: &Source<'_>, taps: &[f32], at: Block) -> [[S::f32s; V]; C] {
    match source.g.kernel {
        3 => sums_k::<S, V, C, 3>(simd, source, taps, at),
        _ => sums_k::<S, V, C, 0>(simd, source, taps, at),
    }
}

/// [`sums`] for a kernel side known when compiling (`K`), or read from the geometry (`K` = 0).
#[inline(always)]
fn sums_k<S: Simd, const V: usize, const C: usize, const K: usize>(
    simd: S,
    source: &Source<'_>,
    taps: &[f32],
    at: Block,
) -> [[S::f32s; V]; C] {
    let Source { g, b, band, .. } = *source;
    let lanes = S::F32_LANES;
    let (k, d) = (if K > 0 { K } else { g.kernel }, g.dilation);
    let mut acc = [[simd.splat_f32s(0.0); V]; C];
    for ky in 0..k {
        for c in 0..g.cin {
            let row = &band[b.row(g, at.r + ky * d, c) + at.x0..];
            let weights = &taps[(ky * g.cin + c) * k * C..][..k * C];
            for kx in 0..k {
                let pixels = &row[kx * d..][..V * lanes];
                let mut v = [simd.splat_f32s(0.0); V];
                for (p, v) in v.iter_mut().enumerate() {
                    *v = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&pixels[p * lanes..(p + 1) * lanes]));
                }
                for (acc, &w) in acc.iter_mut().zip(&weights[kx * C..][..C]) {
                    let w = simd.splat_f32s(w);
                    for (acc, &v) in acc.iter_mut().zip(&v) {
                        *acc = simd.mul_add_f32s(w, v, *acc);
                    }
                }
            }
        }
    }
    acc
}

/// Writes the first `valid` pixels of each channel's vectors into the output, through the
/// epilogue.
#[inline(always)]
fn store<T: bytemuck::Pod, const V: usize, const C: usize>(
    g: &Same,
    acc: &[[T; V]; C],
    at: Block,
    o: usize,
    valid: usize,
    target: &mut Target<'_, '_>,
) {
    for (c, vectors) in acc.iter().enumerate() {
        let values = &bytemuck::cast_slice::<T, f32>(vectors.as_slice())[..valid];
        let row = target.y.row(g, o + c, at.image_row);
        target.epilogue.write(o + c, values, &mut row[at.x0..at.x0 + valid]);
    }
}

/// Copies the output gradient's rows `rows` into `band` ([output channel, row, columns rounded
/// up to whole vectors]), zero past the image's right side, so every vector read is whole.
fn fill_gradient(g: &Same, dy: &[f32], rows: &Range<usize>, padded: usize, band: &mut [f32]) {
    let pixels = g.pixels();
    for o in 0..g.cout {
        for (r, y) in rows.clone().enumerate() {
            let to = &mut band[(o * rows.len() + r) * padded..][..padded];
            to[..g.width].copy_from_slice(&dy[o * pixels + y * g.width..][..g.width]);
            to[g.width..].fill(0.0);
        }
    }
}

thread_local! {
    /// Each thread's band of the output gradient, reused from call to call.
    static GRADIENT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One image's weight gradient, added into `dw` [cout, cin, k, k]: for each output channel, input
/// channel and tap, the sum over pixels of the output gradient times the input the tap reads.
/// Vectors hold consecutive pixels: each lane sums its pixels, and the lanes are added at the end.
pub(crate) fn weight_grad(g: &Same, x: ImageInput<'_>, dy: &[f32], dw: &mut [f32]) {
    run_weight_grad(g, x, dy, dw, |job| pulp::Arch::new().dispatch(WeightGrad(job)));
}

/// What a weight-gradient kernel of one vector width reads and writes for one image, with this
/// thread's two scratch buffers (the padded input band, the output gradient's band).
pub(crate) struct GradientJob<'a> {
    pub(crate) g: &'a Same,
    pub(crate) x: ImageInput<'a>,
    pub(crate) dy: &'a [f32],
    pub(crate) dw: &'a mut [f32],
    pub(crate) band: &'a mut Vec<f32>,
    pub(crate) gradient: &'a mut Vec<f32>,
}

/// Runs `kernel` (a weight-gradient kernel dispatched to this machine's vector width) on one
/// image's job with this thread's scratch buffers, and counts its products.
pub(crate) fn run_weight_grad(g: &Same, x: ImageInput<'_>, dy: &[f32], dw: &mut [f32], kernel: impl FnOnce(GradientJob<'_>)) {
    crate::matmul::count(2 * g.cout * g.taps() * g.pixels());
    BAND.with(|band| {
        GRADIENT.with(|gradient| {
            let (band, gradient) = (&mut *band.borrow_mut(), &mut *gradient.borrow_mut());
            kernel(GradientJob { g, x, dy, dw, band, gradient });
        })
    });
}

/// [`weight_grad`] for one vector width (see [`Forward`]).
struct WeightGrad<'a>(GradientJob<'a>);

/// What the weight gradient's sums read: the geometry, the padded input band, the output
/// gradient's band and its padded row length.
struct Pair<'a> {
    g: &'a Same,
    b: Band,
    band: &'a [f32],
    gradient: &'a [f32],
    padded: usize,
}

impl WithSimd for WeightGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let GradientJob { g, x, dy, dw, band, gradient } = self.0;
        let lanes = S::F32_LANES;
        let padded = g.width.div_ceil(lanes) * lanes;
        let k = g.kernel;
        for rows in bands(g) {
            let b = Band::new(g, rows.len());
            let band = at_least(band, b.len(g, lanes) + padded);
            fill_by_channel(g, x, &rows, &b, band);
            let gradient = at_least(gradient, rows.len() * g.cout * padded);
            fill_gradient(g, dy, &rows, padded, gradient);
            let pair = Pair { g, b, band, gradient, padded };
            let mut o = 0;
            while o < g.cout {
                let outputs = if wide::<S>() && o + 8 <= g.cout {
                    8
                } else if o + 4 <= g.cout {
                    4
                } else {
                    1
                };
                for c in 0..g.cin {
                    for ky in 0..k {
                        // three kernel columns at once, then one at a time
                        let mut kx = 0;
                        while kx < k {
                            let three = k - kx >= 3;
                            let at = (o, c, ky, kx);
                            let sums: [f32; 24] = match (outputs, three) {
                                (8, true) => reduced::<S, 8, 3>(simd, &pair, at),
                                (4, true) => reduced::<S, 4, 3>(simd, &pair, at),
                                (_, true) => reduced::<S, 1, 3>(simd, &pair, at),
                                (8, false) => reduced::<S, 8, 1>(simd, &pair, at),
                                (4, false) => reduced::<S, 4, 1>(simd, &pair, at),
                                _ => reduced::<S, 1, 1>(simd, &pair, at),
                            };
                            let columns = if three { 3 } else { 1 };
                            for q in 0..outputs {
                                for j in 0..columns {
                                    dw[(((o + q) * g.cin + c) * k + ky) * k + kx + j] += sums[q * 3 + j];
                                }
                            }
                            kx += columns;
                        }
                    }
                }
                o += outputs;
            }
        }
    }
}

/// [`lane_sums`] with each vector's lanes added: at `[q * 3 + j]`.
#[inline(always)]
fn reduced<S: Simd, const O: usize, const N: usize>(simd: S, pair: &Pair<'_>, at: (usize, usize, usize, usize)) -> [f32; 24] {
    let acc = lane_sums::<S, O, N>(simd, pair, at);
    let mut sums = [0.0f32; 24];
    for (q, acc) in acc.iter().enumerate() {
        for (j, &a) in acc.iter().enumerate() {
            sums[q * 3 + j] = simd.reduce_sum_f32s(a);
        }
    }
    sums
}

/// For output channels `o..o + O`, input channel `c`, kernel row `ky` and the `N` kernel columns
/// from `kx`: per lane, the sum over the band's pixels of the output gradient times the input the
/// tap reads. Returned by value, so the sums stay in registers to the end.
#[inline(always)]
fn lane_sums<S: Simd, const O: usize, const N: usize>(
    simd: S,
    pair: &Pair<'_>,
    (o, c, ky, kx): (usize, usize, usize, usize),
) -> [[S::f32s; N]; O] {
    let Pair { g, b, band, gradient, padded } = *pair;
    let (d, vectors) = (g.dilation, padded / S::F32_LANES);
    // Every row cut to whole vectors of the same count first, so the pixel loop indexes them
    // without bounds checks (with them, 47 scalar instructions ran beside 12 multiply-adds).
    let mut acc = [[simd.splat_f32s(0.0); N]; O];
    for r in 0..b.rows {
        let start = b.channel_row(r + ky * d, c) + kx * d;
        let inputs: [&[S::f32s]; N] = std::array::from_fn(|j| whole::<S>(&band[start + j * d..], vectors));
        let outputs: [&[S::f32s]; O] = std::array::from_fn(|q| whole::<S>(&gradient[((o + q) * b.rows + r) * padded..], vectors));
        for x in 0..vectors {
            let v: [S::f32s; N] = std::array::from_fn(|j| inputs[j][x]);
            for (acc, outputs) in acc.iter_mut().zip(&outputs) {
                let dyv = outputs[x];
                for (acc, &v) in acc.iter_mut().zip(&v) {
                    *acc = simd.mul_add_f32s(dyv, v, *acc);
                }
            }
        }
    }
    acc
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Odd sizes: 13 output channels (8 + 4 + 1 blocks with AVX-512, 6 + 6 + 1 with AVX2), a
    /// row of two whole vectors and a part, a 5×5 kernel, a row of five vectors of 16 (AVX-512's
    /// blocks of three vectors, then two).
    const GEOMETRIES: [Same; 4] = [
        Same { batch: 1, cin: 5, cout: 13, height: 7, width: 37, kernel: 3, dilation: 2 },
        Same { batch: 1, cin: 3, cout: 6, height: 5, width: 33, kernel: 5, dilation: 1 },
        Same { batch: 1, cin: 2, cout: 4, height: 3, width: 9, kernel: 3, dilation: 1 },
        Same { batch: 1, cin: 2, cout: 9, height: 4, width: 80, kernel: 3, dilation: 1 },
    ];

    /// `len` values in [-1, 1) that differ with `seed`.
    pub(crate) fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104729) % 997) as f32 / 498.5 - 1.0).collect()
    }

    /// The input value tap (ky, kx) of output pixel (y, x) reads, 0 outside the image.
    fn input(g: &Same, x: &[f32], c: usize, (y, px): (usize, usize), (ky, kx): (usize, usize)) -> f64 {
        let pad = g.pad() as isize;
        let (sy, sx) = (y as isize + (ky * g.dilation) as isize - pad, px as isize + (kx * g.dilation) as isize - pad);
        let inside = sy >= 0 && sx >= 0 && (sy as usize) < g.height && (sx as usize) < g.width;
        if inside { f64::from(x[c * g.pixels() + sy as usize * g.width + sx as usize]) } else { 0.0 }
    }

    /// The convolution and its weight gradient summed in f64, as defined.
    pub(crate) fn naive(g: &Same, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let k = g.kernel;
        let (mut y, mut dw) = (vec![0.0; g.cout * g.pixels()], vec![0.0; w.len()]);
        for o in 0..g.cout {
            for c in 0..g.cin {
                for t in 0..k * k {
                    let wi = (o * g.cin + c) * k * k + t;
                    for p in 0..g.pixels() {
                        let v = input(g, x, c, (p / g.width, p % g.width), (t / k, t % k));
                        y[o * g.pixels() + p] += f64::from(w[wi]) * v;
                        dw[wi] += f64::from(dy[o * g.pixels() + p]) * v;
                    }
                }
            }
        }
        (y, dw)
    }

    /// Each value within 1e-5 of the largest defined one.
    pub(crate) fn close(got: &[f32], expected: &[f64], what: &str) {
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (&a, &b)) in got.iter().zip(expected).enumerate() {
            assert!((f64::from(a) - b).abs() <= 1e-5 * scale, "{what}: value {i} is {a}, defined as {b}");
        }
    }

    /// The output and the weight gradient of one image, computed with vectors `S`.
    fn on<S: Simd>(simd: S, (g, x, taps, dy): (&Same, &[f32], &Taps, &[f32])) -> (Vec<f32>, Vec<f32>) {
        // NaN everywhere first: a value the forward does not write fails the comparisons
        let (mut y, mut dw) = (vec![MaybeUninit::new(f32::NAN); g.cout * g.pixels()], vec![0.0; g.cout * g.taps()]);
        let (mut band, mut gradient) = (Vec::new(), Vec::new());
        let (x, output) = (ImageInput::from(x), ImageOutput::from(&mut y[..]));
        simd.vectorize(Forward { g, x, taps, epilogue: Epilogue::NONE, y: output, band: &mut band });
        simd.vectorize(WeightGrad(GradientJob { g, x, dy, dw: &mut dw, band: &mut band, gradient: &mut gradient }));
        // SAFETY: every value was initialised (to NaN) before the forward ran.
        #[allow(unsafe_code)]
        let y = y.into_iter().map(|v| unsafe { v.assume_init() }).collect();
        (y, dw)
    }

    /// The weight gradient in the order the kernel sums it, written out: per band of rows, each
    /// lane (pixels `x ≡ lane` modulo the width) sums its products row by row, one fused
    /// multiply-add each, over rows cut to whole vectors (zero gradient past the image); the lanes
    /// are added as the vector type adds them; the bands' sums are added in band order.
    fn in_lane_order<S: Simd>(simd: S, g: &Same, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (lanes, k) = (S::F32_LANES, g.kernel);
        let padded = g.width.div_ceil(lanes) * lanes;
        let mut dw = vec![0.0f32; g.cout * g.taps()];
        for rows in bands(g) {
            for (i, dw) in dw.iter_mut().enumerate() {
                let (o, c, ky, kx) = (i / g.taps(), i / (k * k) % g.cin, i / k % k, i % k);
                let mut acc = vec![0.0f32; lanes];
                for y in rows.clone() {
                    for px in 0..padded {
                        let dyv = if px < g.width { dy[o * g.pixels() + y * g.width + px] } else { 0.0 };
                        let xv = if px < g.width { input(g, x, c, (y, px), (ky, kx)) as f32 } else { 0.0 };
                        acc[px % lanes] = dyv.mul_add(xv, acc[px % lanes]);
                    }
                }
                *dw += simd.reduce_sum_f32s(simd.partial_load_f32s(&acc));
            }
        }
        dw
    }

    #[test]
    fn the_weight_gradient_sums_in_its_written_out_order_to_the_bit() {
        // The studies' results depend on this order: a new layout of the kernel's copies (they
        // are laid out channel by channel since 2026-12-04) must leave every bit as it was. A
        // 48-pixel row of whole vectors, 37 with a part, a dilated kernel, several bands; 13
        // output channels (AVX-512's blocks of 8, then 4 and 1).
        let geometries = [
            Same { batch: 1, cin: 3, cout: 5, height: 6, width: 48, kernel: 3, dilation: 1 },
            Same { batch: 1, cin: 3, cout: 13, height: 5, width: 40, kernel: 3, dilation: 1 },
            Same { batch: 1, cin: 2, cout: 4, height: 5, width: 37, kernel: 3, dilation: 2 },
            Same { batch: 1, cin: 400, cout: 2, height: 9, width: 64, kernel: 3, dilation: 1 },
        ];
        assert!(bands(&geometries[3]).count() > 1, "the last geometry is meant to span several bands");
        for g in geometries {
            let (x, dy) = (values(g.cin * g.pixels(), 4), values(g.cout * g.pixels(), 5));
            let run = |width: &str| -> Option<(Vec<f32>, Vec<f32>)> {
                fn both<S: Simd>(simd: S, g: &Same, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
                    let mut dw = vec![0.0; g.cout * g.taps()];
                    let (mut band, mut gradient) = (Vec::new(), Vec::new());
                    let job = GradientJob { g, x: x.into(), dy, dw: &mut dw, band: &mut band, gradient: &mut gradient };
                    simd.vectorize(WeightGrad(job));
                    (dw, in_lane_order(simd, g, x, dy))
                }
                match width {
                    #[cfg(target_arch = "x86_64")]
                    "avx512" => pulp::x86::V4::try_new().map(|s| both(s, &g, &x, &dy)),
                    AVX512_IN_SOFTWARE => Some(both(pulp::Scalar512b, &g, &x, &dy)),
                    #[cfg(target_arch = "x86_64")]
                    "avx2" => pulp::x86::V3::try_new().map(|s| both(s, &g, &x, &dy)),
                    "scalar" => Some(both(pulp::Scalar::new(), &g, &x, &dy)),
                    _ => None,
                }
            };
            for width in WIDTHS {
                let Some((kernel, written_out)) = run(width) else { continue };
                let differ = kernel.iter().zip(&written_out).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(differ, 0, "{g:?} {width}: {differ} of {} values differ from the written-out order", kernel.len());
            }
            // with AVX-512 at hand, the stand-in gives the hardware's bits: where it is not, the
            // stand-in's checks speak for it
            if let (Some(hardware), Some(software)) = (run("avx512"), run(AVX512_IN_SOFTWARE)) {
                assert!(same_bits(&hardware.0, &software.0), "{g:?}: AVX-512's weight gradient differs from its stand-in's");
            }
        }
    }

    /// AVX-512's vectors and register blocks run in software (`pulp::Scalar512b`: 16 lanes, fused
    /// multiply-adds, lanes added in AVX-512's order), so machines without it check its path too.
    const AVX512_IN_SOFTWARE: &str = "avx512 in software";

    /// The vector widths the tests run, each where this machine has it.
    const WIDTHS: [&str; 4] = ["avx512", AVX512_IN_SOFTWARE, "avx2", "scalar"];

    /// Whether the two have the same bits, NaNs included.
    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
    }

    #[test]
    fn channel_blocks_cover_every_output_channel_once_in_sizes_the_registers_hold() {
        for wide in [false, true] {
            for cout in 1..=70 {
                let blocks = channel_blocks(cout, wide);
                let mut next = 0;
                for &(first, size) in &blocks {
                    assert_eq!(first, next, "{cout} channels, wide {wide}: {blocks:?}");
                    assert!([1, 4, if wide { 8 } else { 6 }].contains(&size), "{cout} channels, wide {wide}: {blocks:?}");
                    next += size;
                }
                assert_eq!(next, cout, "{cout} channels, wide {wide}: {blocks:?}");
                // AVX2: an even count of 4 or more needs no single channels, an odd one of 9 or more one
                let singles = blocks.iter().filter(|&&(_, size)| size == 1).count();
                if !wide && cout >= 4 && cout.is_multiple_of(2) {
                    assert_eq!(singles, 0, "{cout}: {blocks:?}");
                }
                if !wide && cout >= 9 && !cout.is_multiple_of(2) {
                    assert_eq!(singles, 1, "{cout}: {blocks:?}");
                }
            }
        }
    }

    #[test]
    fn every_vector_width_computes_the_convolution_as_defined_and_the_forward_to_the_same_bits() {
        for g in GEOMETRIES {
            let (x, w, dy) = (values(g.cin * g.pixels(), 1), values(g.cout * g.taps(), 2), values(g.cout * g.pixels(), 3));
            let (y_defined, dw_defined) = naive(&g, &x, &w, &dy);
            // each width with the register blocks its machines lay the kernel out in
            let (narrow, wide) = (Taps::in_blocks(&g, &w, false), Taps::in_blocks(&g, &w, true));
            let run = |width: &str| match width {
                #[cfg(target_arch = "x86_64")]
                "avx512" => pulp::x86::V4::try_new().map(|s| on(s, (&g, &x, &wide, &dy))),
                AVX512_IN_SOFTWARE => Some(on(pulp::Scalar512b, (&g, &x, &wide, &dy))),
                #[cfg(target_arch = "x86_64")]
                "avx2" => pulp::x86::V3::try_new().map(|s| on(s, (&g, &x, &narrow, &dy))),
                "scalar" => Some(on(pulp::Scalar::new(), (&g, &x, &narrow, &dy))),
                _ => None,
            };
            let scalar = run("scalar").unwrap_or_else(|| panic!("scalar"));
            for width in WIDTHS {
                // a machine without these instructions checks the others
                let Some((y, dw)) = run(width) else { continue };
                close(&y, &y_defined, &format!("{g:?} {width} output"));
                close(&dw, &dw_defined, &format!("{g:?} {width} weight gradient"));
                assert!(same_bits(&y, &scalar.0), "{g:?} {width}: the output differs from one lane's");
            }
            if let (Some(hardware), Some(software)) = (run("avx512"), run(AVX512_IN_SOFTWARE)) {
                assert!(same_bits(&hardware.1, &software.1), "{g:?}: AVX-512's weight gradient differs from its stand-in's");
            }
        }
    }
}
