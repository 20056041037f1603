//! 2×2 max-pooling with stride 2 (the architectures' down-sampling) on slices in NCHW order,
//! plane by plane, with its gradient.
//!
//! burn-flex pools through its general 3-D path; here each output reads its four inputs
//! directly. Ties go to the first of the four in reading order and NaN wins, as in burn-flex, so
//! outputs and gradients equal its own to the bit.

use rayon::prelude::*;

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

/// Where in `plane` the maximum of output pixel (y, x) is.
fn argmax(plane: &[f32], width: usize, y: usize, x: usize) -> usize {
    let top = 2 * y * width + 2 * x;
    let mut best = top;
    for at in [top + 1, top + width, top + width + 1] {
        if plane[at] > plane[best] || plane[at].is_nan() {
            best = at;
        }
    }
    best
}

/// Pools every plane of `x`.
pub fn forward(p: &Pool, x: &[f32]) -> Vec<f32> {
    let [oh, ow] = p.output();
    let mut y = vec![0.0f32; p.planes * oh * ow];
    y.par_chunks_mut((oh * ow).max(1)).zip(x.par_chunks((p.height * p.width).max(1))).for_each(|(y, x)| {
        for (row, o) in y.chunks_exact_mut(ow.max(1)).zip(0..oh) {
            for (v, c) in row.iter_mut().zip(0..ow) {
                *v = x[argmax(x, p.width, o, c)];
            }
        }
    });
    y
}

/// The gradient of [`forward`] with respect to `x`: each output's gradient goes to its maximum.
pub fn backward(p: &Pool, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let [oh, ow] = p.output();
    let mut dx = vec![0.0f32; p.planes * p.height * p.width];
    let plane = (p.height * p.width).max(1);
    dx.par_chunks_mut(plane).zip(x.par_chunks(plane)).zip(dy.par_chunks((oh * ow).max(1))).for_each(|((dx, x), dy)| {
        for (row, o) in dy.chunks_exact(ow.max(1)).zip(0..oh) {
            for (&g, c) in row.iter().zip(0..ow) {
                dx[argmax(x, p.width, o, c)] += g;
            }
        }
    });
    dx
}
