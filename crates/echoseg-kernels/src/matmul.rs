//! A checked, single-threaded matrix product on slices: one of the few places this workspace
//! calls unsafe code (the `gemm` crate that burn-flex also uses takes raw pointers; the others
//! are `allocator.rs` and the uninitialised outputs of `lib.rs`'s `written_by_chunks`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

/// Floating-point operations of every product since the process started, 2·m·n·k each (and a
/// direct convolution's 2 · cout · cin · k² per pixel): the convolutions' useful work, which
/// `echoseg bench` divides by time for its GFLOP/s.
static FLOPS: AtomicU64 = AtomicU64::new(0);

/// Floating-point operations of every matrix product so far (see [`FLOPS`]).
pub fn flops() -> u64 {
    FLOPS.load(Ordering::Relaxed)
}

/// Counts `operations` of a convolution computed without a matrix product (`direct.rs`).
pub(crate) fn count(operations: usize) {
    FLOPS.fetch_add(operations as u64, Ordering::Relaxed);
}

/// The machine's own rate of this product in GFLOP/s on the current thread pool: one
/// `side`³ product per thread at once, the best of five windows of about `seconds` / 5 each (the
/// best, since the rate is a ceiling and a window can lose time to the machine's other work).
/// What a convolution could reach if it were nothing but this product.
pub fn gemm_gflops(side: usize, seconds: f64) -> f64 {
    let threads = rayon::current_num_threads().max(1);
    let a: Vec<f32> = (0..side * side).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..side * side).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut outputs = vec![vec![0.0f32; side * side]; threads];
    let run = |outputs: &mut Vec<Vec<f32>>| {
        outputs.par_iter_mut().for_each(|c| {
            product(
                ViewMut { data: c, rows: side, cols: side, row_stride: side },
                View::rows(&a, side, side),
                View::rows(&b, side, side),
                false,
            )
        });
    };
    run(&mut outputs);
    let per_product = 2.0 * (side * side * side * threads) as f64 / 1e9;
    (0..5)
        .map(|_| {
            let (started, mut rounds) = (Instant::now(), 0usize);
            while rounds == 0 || started.elapsed().as_secs_f64() < seconds / 5.0 {
                run(&mut outputs);
                rounds += 1;
            }
            per_product * rounds as f64 / started.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// A strided matrix view into a slice: element (r, c) is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Columns `from..from + cols` of every row.
    pub fn columns(self, from: usize, cols: usize) -> Self {
        let start = (from * self.col_stride).min(self.data.len());
        Self { data: &self.data[start..], cols, ..self }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// A strided mutable matrix view (see [`View`]).
#[derive(Debug)]
pub struct ViewMut<'a> {
    /// The values.
    pub data: &'a mut [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
}

impl ViewMut<'_> {
    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.row_stride + self.cols - 1 < self.data.len()
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, on the calling thread only (so a
/// result never depends on how many threads there are).
///
/// # Panics
/// When the shapes do not agree or a view reaches past its slice.
pub fn product(dst: ViewMut<'_>, lhs: View<'_>, rhs: View<'_>, accumulate: bool) {
    assert!(lhs.rows == dst.rows && rhs.cols == dst.cols && lhs.cols == rhs.rows, "matrix product: shapes do not agree");
    assert!(dst.fits() && lhs.fits() && rhs.fits(), "matrix product: a view reaches past its slice");
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    count(2 * dst.rows * dst.cols * lhs.cols);
    let stride = |s: usize| s as isize;
    #[allow(unsafe_code)]
    // SAFETY: every index the product touches, (rows - 1) · row stride + (cols - 1) · col stride
    // at most, was checked above to lie inside its slice; `dst` is borrowed mutably, so it does
    // not alias `lhs` or `rhs`; `Parallelism::None` keeps the work on this thread.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            1,
            stride(dst.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_counts_its_two_m_n_k_operations() {
        let (a, b) = (vec![1.0f32; 6], vec![1.0f32; 8]);
        let mut c = vec![0.0f32; 12];
        let before = flops();
        product(ViewMut { data: &mut c, rows: 3, cols: 4, row_stride: 4 }, View::rows(&a, 3, 2), View::rows(&b, 2, 4), false);
        // Other tests run products at the same time: at least this one's 2 · 3 · 4 · 2.
        assert!(flops() - before >= 48);
        assert!(c.iter().all(|&v| v == 2.0));
    }

    #[test]
    fn product_of_strided_views_is_the_definition() {
        let a: Vec<f32> = (0..12).map(|v| v as f32 - 4.0).collect(); // 3×4
        let b: Vec<f32> = (0..10).map(|v| (v * 3 % 7) as f32).collect(); // 5×2, used transposed
        let mut dst = vec![1.0; 6]; // 3×2, accumulated onto
        let lhs = View::rows(&a, 3, 4).columns(1, 2); // columns 1..3 of a: 3×2
        let rhs = View::rows(&b, 5, 2).t().columns(0, 2).t(); // rows 0..2 of b: 2×2
        product(ViewMut { data: &mut dst, rows: 3, cols: 2, row_stride: 2 }, lhs, rhs, true);
        for r in 0..3 {
            for c in 0..2 {
                let expected = 1.0 + (0..2).map(|k| a[r * 4 + 1 + k] * b[k * 2 + c]).sum::<f32>();
                assert_eq!(dst[r * 2 + c], expected, "({r}, {c})");
            }
        }
    }

    #[test]
    #[should_panic(expected = "reaches past")]
    fn a_view_past_its_slice_is_refused() {
        let a = vec![0.0; 5];
        let mut dst = vec![0.0; 4];
        product(ViewMut { data: &mut dst, rows: 2, cols: 2, row_stride: 2 }, View::rows(&a, 2, 3), View::rows(&a, 3, 2), false);
    }
}
