//! 2×2 max-pooling with stride 2 (the architectures' down-sampling) on slices in NCHW order,
//! plane by plane, with its gradient.
//!
//! burn-flex pools through its general 3-D path; here each output reads its four inputs
//! directly. Ties go to the first of the four in reading order and NaN wins, as in burn-flex, so
//! outputs and gradients equal its own to the bit.

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
/// (windows do not overlap, so each input receives at most one).
pub fn backward(p: &Pool, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let [oh, ow] = p.output();
    let (plane, w) = (p.height * p.width, p.width);
    crate::zeroed_by_chunks(p.planes * plane, plane, |i, dx| {
        let (x, dy) = (&x[i * plane..][..plane], &dy[i * oh * ow..][..oh * ow]);
        for (row, o) in dy.chunks_exact(ow.max(1)).zip(0..oh) {
            let (top, bottom) = rows(x, p, o);
            for (c, (&g, (t, b))) in row.iter().zip(top.chunks_exact(2).zip(bottom.chunks_exact(2))).enumerate() {
                let (at, _) = max4(t, b);
                dx[(2 * o + at / 2) * w + 2 * c + at % 2] = g;
            }
        }
    })
}
