//! 2×2 max-pooling with stride 2 (the architectures' down-sampling) on slices in NCHW order,
//! plane by plane, with its gradient.
//!
//! burn-flex pools through its general 3-D path; here each output reads its four inputs
//! directly. Ties go to the first of the four in reading order and NaN wins, as in burn-flex, so
//! outputs and gradients equal its own to the bit.

use pulp::{Simd, WithSimd};

/// The size of one pooling: planes (batch × channels) of `height` × `width` pixels.
#[derive(Clone, Copy, Debug)]
pub struct Pool {
    /// Batch × channels.
    pub planes: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
}

impl Pool {
    /// Output (height, width): odd last rows and columns are dropped, as burn does.
    pub fn output(&self) -> [usize; 2] {
        [self.height / 2, self.width / 2]
    }
}

/// Which of a window's four values (top-left, top-right, bottom-left, bottom-right) is its
/// maximum, and the value.
#[inline(always)]
fn max4(top: &[f32], bottom: &[f32]) -> (usize, f32) {
    let mut best = (0, top[0]);
    for (at, v) in [(1, top[1]), (2, bottom[0]), (3, bottom[1])] {
        if v > best.1 || v.is_nan() {
            best = (at, v);
        }
    }
    best
}

/// The two input rows under output row `o`, cut to the columns the windows cover.
fn rows<'a>(plane: &'a [f32], p: &Pool, o: usize) -> (&'a [f32], &'a [f32]) {
    let (w, cover) = (p.width, 2 * (p.width / 2));
    (&plane[2 * o * w..][..cover], &plane[(2 * o + 1) * w..][..cover])
}

/// Pools every plane of `x`.
pub fn forward(p: &Pool, x: &[f32]) -> Vec<f32> {
    let [oh, ow] = p.output();
    let plane = p.height * p.width;
    // SAFETY: each plane's `oh` rows of `ow` outputs are written, one per window (a row covers
    // `ow` windows: `2 · ow` columns).
    #[allow(unsafe_code)]
    unsafe {
        crate::written_by_chunks(p.planes * oh * ow, oh * ow, |i, y| {
            let x = &x[i * plane..][..plane];
            for (row, o) in y.chunks_exact_mut(ow.max(1)).zip(0..oh) {
                let (top, bottom) = rows(x, p, o);
                for (v, (t, b)) in row.iter_mut().zip(top.chunks_exact(2).zip(bottom.chunks_exact(2))) {
                    v.write(max4(t, b).1);
                }
            }
        })
    }
}

/// The gradient of [`forward`] with respect to `x`: each output's gradient goes to its maximum
/// (windows do not overlap, so each input receives at most one), every window's four values
/// written, the gradient or 0.
pub fn backward(p: &Pool, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let [oh, ow] = p.output();
    let plane = p.height * p.width;
    crate::zeroed_by_chunks(p.planes * plane, plane, |i, dx| {
        let (x, dy) = (&x[i * plane..][..plane], &dy[i * oh * ow..][..oh * ow]);
        pulp::Arch::new().dispatch(Backward { p, x, dy, dx });
    })
}

/// One plane of [`backward`] for one vector width (a closure would not be compiled for it).
struct Backward<'a> {
    p: &'a Pool,
    x: &'a [f32],
    dy: &'a [f32],
    dx: &'a mut [f32],
}

impl WithSimd for Backward<'_> {
    type Output = ();

    /// A vector of windows at a time, with masks rather than a branch per window: which of the
    /// four wins depends on the data, and on ReLU outputs a window took 11 ns one at a time with
    /// a branch, 1.1 ns in vectors (one thread, Zen 3). The windows past the last whole vector
    /// one by one.
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { p, x, dy, dx } = self;
        let [oh, ow] = p.output();
        let (w, lanes) = (p.width, S::F32_LANES);
        let vectored = ow / lanes * lanes;
        for ((row, o), pair) in dy.chunks_exact(ow.max(1)).zip(0..oh).zip(dx.chunks_exact_mut(2 * w)) {
            let (top, bottom) = rows(x, p, o);
            let (dtop, dbottom) = pair.split_at_mut(w);
            for first in (0..vectored).step_by(lanes) {
                let columns = 2 * first..2 * (first + lanes);
                let [top_mask, bottom_mask] = winners(simd, &top[columns.clone()], &bottom[columns.clone()]);
                let gradient = twice::<S>(&row[first..first + lanes]);
                for (to, mask) in [(&mut dtop[columns.clone()], top_mask), (&mut dbottom[columns.clone()], bottom_mask)] {
                    let (to, _) = S::as_mut_simd_f32s(to);
                    for ((to, mask), g) in to.iter_mut().zip(mask).zip(gradient) {
                        *to = simd.and_f32s(mask, g);
                    }
                }
            }
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2)).zip(&row[..ow]).enumerate().skip(vectored);
            for (c, ((t, b), &g)) in windows {
                let (at, _) = max4(t, b);
                let to = if at < 2 { &mut dtop[..] } else { &mut dbottom[..] };
                to[2 * c + at % 2] = g;
            }
        }
    }
}

/// For `S::F32_LANES` windows whose two rows are `top` and `bottom` (two vectors each): all ones
/// in the lanes of the value [`max4`] picks, zeros elsewhere, as two vectors per row.
#[inline(always)]
fn winners<S: Simd>(simd: S, top: &[f32], bottom: &[f32]) -> [[S::f32s; 2]; 2] {
    // left and right columns of each window, lanes in the order the shuffles leave them
    let [t0, t1] = simd.deinterleave_shfl_f32s(two::<S>(top));
    let [b0, b1] = simd.deinterleave_shfl_f32s(two::<S>(bottom));
    // a later value wins where it is greater or NaN, as in `max4`
    let later = |v, best| simd.or_m32s(simd.greater_than_f32s(v, best), simd.not_m32s(simd.equal_f32s(v, v)));
    let m1 = later(t1, t0);
    let best = simd.select_f32s(m1, t1, t0);
    let m2 = later(b0, best);
    let best = simd.select_f32s(m2, b0, best);
    let m3 = later(b1, best);
    let not = |m| simd.not_m32s(m);
    // a bottom value won: the top ones lost
    let bottom_won = simd.or_m32s(m2, m3);
    // as values whose bits are all ones or all zeros (a mask's own layout differs between widths)
    let (ones, zeros) = (simd.splat_f32s(f32::from_bits(u32::MAX)), simd.splat_f32s(0.0));
    let won = [not(simd.or_m32s(m1, bottom_won)), simd.and_m32s(m1, not(bottom_won)), simd.and_m32s(m2, not(m3)), m3]
        .map(|m| simd.select_f32s(m, ones, zeros));
    // back in the rows' column order: the interleave undoes the deinterleave's lane order
    [simd.interleave_shfl_f32s([won[0], won[1]]), simd.interleave_shfl_f32s([won[2], won[3]])]
}

/// `values` with each value twice in a row, as two vectors.
#[inline(always)]
fn twice<S: Simd>(values: &[f32]) -> [S::f32s; 2] {
    let mut doubled = [0.0f32; 32];
    for (pair, &v) in doubled.chunks_exact_mut(2).zip(values) {
        pair.fill(v);
    }
    two::<S>(&doubled)
}

/// The first two whole vectors of `values`.
#[inline(always)]
fn two<S: Simd>(values: &[f32]) -> [S::f32s; 2] {
    let vectors = crate::whole::<S>(values, 2);
    [vectors[0], vectors[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each window's gradient at the value [`max4`] picks, one window at a time: the definition.
    fn routed_one_by_one(p: &Pool, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let ([oh, ow], plane) = (p.output(), p.height * p.width);
        let mut dx = vec![0.0f32; x.len()];
        for (i, dx) in dx.chunks_exact_mut(plane).enumerate() {
            for o in 0..oh {
                let (top, bottom) = rows(&x[i * plane..][..plane], p, o);
                for c in 0..ow {
                    let (at, _) = max4(&top[2 * c..], &bottom[2 * c..]);
                    dx[(2 * o + at / 2) * p.width + 2 * c + at % 2] = dy[(i * oh + o) * ow + c];
                }
            }
        }
        dx
    }

    #[test]
    fn the_backward_routes_every_gradient_as_one_window_at_a_time_does_to_the_bit() {
        // windows in whole vectors and a rest (19 per row), fewer than a vector, an odd last row
        // and column; ties (zeros, ±0), NaNs (they win) and negative values
        for (planes, height, width) in [(3, 6, 38), (2, 5, 7), (1, 4, 64)] {
            let p = Pool { planes, height, width };
            let pick = [0.0, -0.0, f32::NAN, -1.5, 0.25, 0.75, 0.75, 2.0];
            let x: Vec<f32> = (0..planes * height * width).map(|i| pick[((i * 2654435761usize) >> 7) % pick.len()]).collect();
            let [oh, ow] = p.output();
            let dy: Vec<f32> = (0..planes * oh * ow).map(|i| i as f32 * 0.5 - 7.0).collect();
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            let defined = bits(routed_one_by_one(&p, &x, &dy));
            assert_eq!(bits(backward(&p, &x, &dy)), defined, "{p:?} at this machine's vector width");
            // one lane, as on a machine without the vector instructions, and AVX-512's 16 lanes
            // in software (`pulp::Scalar512b`), as on a machine with them
            let plane = p.height * p.width;
            let mut one_lane = vec![0.0f32; x.len()];
            let mut sixteen_lanes = vec![0.0f32; x.len()];
            for (i, (dx, dx16)) in one_lane.chunks_exact_mut(plane).zip(sixteen_lanes.chunks_exact_mut(plane)).enumerate() {
                let (x, dy) = (&x[i * plane..][..plane], &dy[i * oh * ow..][..oh * ow]);
                Simd::vectorize(pulp::Scalar::new(), Backward { p: &p, x, dy, dx });
                Simd::vectorize(pulp::Scalar512b, Backward { p: &p, x, dy, dx: dx16 });
            }
            assert_eq!(bits(one_lane), defined, "{p:?} one lane");
            assert_eq!(bits(sixteen_lanes), defined, "{p:?} sixteen lanes");
        }
    }
}
