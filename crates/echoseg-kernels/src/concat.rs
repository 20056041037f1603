//! Concatenation along channels of tensors in NCHW order and its gradient, the split: image by
//! image on every worker thread (burn-flex copies on the calling thread alone).

use rayon::prelude::*;

/// `images` images of `a` then `b`, each image's `sizes[0]` values of `a` followed by its
/// `sizes[1]` values of `b`.
pub fn join(a: &[f32], b: &[f32], images: usize, sizes: [usize; 2]) -> Vec<f32> {
    let per_image = sizes[0] + sizes[1];
    let mut y = crate::zeroed(images * per_image);
    if per_image == 0 {
        return y;
    }
    y.par_chunks_mut(per_image).enumerate().for_each(|(i, y)| {
        let (first, second) = y.split_at_mut(sizes[0]);
        first.copy_from_slice(&a[i * sizes[0]..][..sizes[0]]);
        second.copy_from_slice(&b[i * sizes[1]..][..sizes[1]]);
    });
    y
}

/// The inverse of [`join`]: each image's first `sizes[0]` values into one tensor and its next
/// `sizes[1]` values into the other.
pub fn split(x: &[f32], images: usize, sizes: [usize; 2]) -> (Vec<f32>, Vec<f32>) {
    let (mut a, mut b) = (crate::zeroed(images * sizes[0]), crate::zeroed(images * sizes[1]));
    let per_image = sizes[0] + sizes[1];
    if per_image == 0 {
        return (a, b);
    }
    x.par_chunks(per_image).enumerate().zip(a.par_chunks_mut(sizes[0].max(1)).zip(b.par_chunks_mut(sizes[1].max(1)))).for_each(
        |((_, x), (a, b))| {
            let (first, second) = x.split_at(sizes[0]);
            a.copy_from_slice(&first[..a.len()]);
            b.copy_from_slice(&second[..b.len()]);
        },
    );
    (a, b)
}
