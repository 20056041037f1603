//! A 3×3 convolution's weight gradient with vectors along the output channels, for machines with
//! 16 vector registers (AVX2).
//!
//! `dw[o, c, ky, kx]` is a sum over pixels of `dy[o, p] · x[c, p + offset(ky, kx)]`. With the
//! output gradient laid out pixel by pixel (a pixel's output channels side by side), one vector
//! holds a pixel's gradient for a run of output channels, and one input value, broadcast, is
//! multiplied into it: 2 vectors of output channels × 2 input channels × 3 kernel columns are
//! 12 sums in registers while the sweep runs over every pixel of the band (2 vector loads and 6
//! broadcasts per 12 multiply-adds), each lane one output channel's plain sum in pixel order, so
//! nothing is added across lanes at the end. `gemm` reached 55–63 GFLOP/s per core on these
//! products (AMD EPYC Zen 3), with im2col or the shifted products' copies around it.

use pulp::{Simd, WithSimd, bytemuck};

use crate::at_least;
use crate::direct::{Band, GradientJob, ImageInput, bands, fill, run_weight_grad};
use crate::im2col::Same;

/// Input channels per register block.
const INPUTS: usize = 2;
/// Vectors of output channels per register block.
const OUTPUTS: usize = 2;

/// Whether this path computes the geometry's weight gradient: a 3×3 kernel on a machine with
/// AVX2 and 16 vector registers (AVX-512's 32 keep `direct.rs`'s and `gemm`'s paths, measured
/// there), output channels a whole number of register blocks (16, 32, 48, 64, …), and 32 or more
/// channels on one side. `conv.rs` gives 16 output channels on rows of 32 pixels or more to the
/// direct path instead (48 → 16 at 64 px: 83 against 73 GFLOP/s).
pub fn worth_it(g: &Same) -> bool {
    let fits = g.kernel == 3 && g.cout.is_multiple_of(16) && g.cin.max(g.cout) >= 32;
    fits && crate::direct::worth_it(g) && !crate::direct::wide_registers()
}

/// One image's weight gradient, added into `dw` [cout, cin, 3, 3].
pub(crate) fn weight_grad(g: &Same, x: ImageInput<'_>, dy: &[f32], dw: &mut [f32]) {
    run_weight_grad(g, x, dy, dw, |job| pulp::Arch::new().dispatch(ChannelGrad(job)));
}

/// [`weight_grad`] for one vector width (a closure would not be compiled for it).
struct ChannelGrad<'a>(GradientJob<'a>);

impl WithSimd for ChannelGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let GradientJob { g, x, dy, dw, band, gradient } = self.0;
        let (lanes, pixels) = (S::F32_LANES, g.pixels());
        let block = OUTPUTS * lanes;
        assert!(g.cout.is_multiple_of(block), "{} output channels are not whole blocks of {block}", g.cout);
        for rows in bands(g) {
            let b = Band::new(g, rows.len());
            let band = at_least(band, b.len(g, lanes));
            fill(g, x, &rows, &b, band);
            // the band's output gradient, block of output channels by block and pixel by pixel:
            // [block, row, column, output channel of the block]
            let band_pixels = rows.len() * g.width;
            let gradient = at_least(gradient, band_pixels * g.cout);
            for o in 0..g.cout {
                let plane = &dy[o * pixels + rows.start * g.width..][..band_pixels];
                let to = &mut gradient[(o / block) * band_pixels * block + o % block..];
                for (p, &v) in plane.iter().enumerate() {
                    to[p * block] = v;
                }
            }
            let sweep = Sweep { g, b, band, gradient };
            for o in (0..g.cout).step_by(block) {
                let mut c = 0;
                while c < g.cin {
                    let inputs = if c + INPUTS <= g.cin { INPUTS } else { 1 };
                    for ky in 0..3 {
                        let sums: [[S::f32s; OUTPUTS]; 3 * INPUTS] = match inputs {
                            INPUTS => sweep.sums::<S, INPUTS>(simd, (o, c, ky)),
                            _ => sweep.sums::<S, 1>(simd, (o, c, ky)),
                        };
                        for (j, kx) in (0..inputs).flat_map(|j| (0..3).map(move |kx| (j, kx))) {
                            let values: &[f32] = bytemuck::cast_slice(sums[j * 3 + kx].as_slice());
                            for (q, &v) in values.iter().enumerate() {
                                dw[(((o + q) * g.cin + c + j) * 3 + ky) * 3 + kx] += v;
                            }
                        }
                    }
                    c += inputs;
                }
            }
        }
    }
}

/// What a sweep reads: the geometry, the padded input band and the output gradient laid out
/// block by block, pixel by pixel.
struct Sweep<'a> {
    g: &'a Same,
    b: Band,
    band: &'a [f32],
    gradient: &'a [f32],
}

impl Sweep<'_> {
    /// For the output channels of the register block from `o`, input channels `c..c + J` and
    /// kernel row `ky`: each kernel column's sums over the band's pixels, at `[j * 3 + kx]` (the rest
    /// zero).
    #[inline(always)]
    fn sums<S: Simd, const J: usize>(&self, simd: S, (o, c, ky): (usize, usize, usize)) -> [[S::f32s; OUTPUTS]; 3 * INPUTS] {
        let Self { g, b, band, gradient } = *self;
        let (lanes, d, width) = (S::F32_LANES, g.dilation, g.width);
        let block = OUTPUTS * lanes;
        let gradient = &gradient[(o / block) * b.rows * width * block..][..b.rows * width * block];
        let mut acc = [[simd.splat_f32s(0.0); OUTPUTS]; 3 * INPUTS];
        for (r, dy_row) in gradient.chunks_exact(width * block).enumerate() {
            // each kernel column's input row, exactly `width` long, so the pixel loop reads
            // them without bounds checks
            let x_rows: [[&[f32]; 3]; J] =
                std::array::from_fn(|j| std::array::from_fn(|kx| &band[b.row(g, r + ky * d, c + j) + kx * d..][..width]));
            for (px, dy_pixel) in dy_row.chunks_exact(block).enumerate() {
                let dyv: [S::f32s; OUTPUTS] =
                    std::array::from_fn(|v| bytemuck::pod_read_unaligned(bytemuck::cast_slice(&dy_pixel[v * lanes..][..lanes])));
                for (j, x_rows) in x_rows.iter().enumerate() {
                    for (kx, x_row) in x_rows.iter().enumerate() {
                        let xv = simd.splat_f32s(x_row[px]);
                        for (acc, &dyv) in acc[j * 3 + kx].iter_mut().zip(&dyv) {
                            *acc = simd.mul_add_f32s(xv, dyv, *acc);
                        }
                    }
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::tests::{close, naive, values};

    #[test]
    fn every_vector_width_computes_the_weight_gradient_as_defined() {
        // an odd input channel count (a block of one at the end), a dilated kernel, and an image
        // the padded band's budget cuts into three bands of rows
        let geometries = [
            Same { batch: 1, cin: 5, cout: 32, height: 7, width: 13, kernel: 3, dilation: 1 },
            Same { batch: 1, cin: 2, cout: 16, height: 9, width: 11, kernel: 3, dilation: 2 },
            Same { batch: 1, cin: 64, cout: 16, height: 30, width: 256, kernel: 3, dilation: 1 },
        ];
        assert_eq!(bands(&geometries[2]).count(), 3, "the last geometry is meant to span several bands");
        for g in geometries {
            let (x, w, dy) = (values(g.cin * g.pixels(), 1), values(g.cout * g.taps(), 2), values(g.cout * g.pixels(), 3));
            let (_, defined) = naive(&g, &x, &w, &dy);
            let run = |simd_name: &str| -> Option<Vec<f32>> {
                let mut dw = vec![0.0f32; g.cout * g.taps()];
                let (mut band, mut gradient) = (Vec::new(), Vec::new());
                let job =
                    ChannelGrad(GradientJob { g: &g, x: x[..].into(), dy: &dy, dw: &mut dw, band: &mut band, gradient: &mut gradient });
                match simd_name {
                    #[cfg(target_arch = "x86_64")]
                    "avx2" => Simd::vectorize(pulp::x86::V3::try_new()?, job),
                    _ => Simd::vectorize(pulp::Scalar::new(), job),
                }
                Some(dw)
            };
            for name in ["avx2", "scalar"] {
                let Some(dw) = run(name) else { continue };
                close(&dw, &defined, &format!("{g:?} {name} weight gradient"));
            }
        }
    }
}
