//! Concatenation along channels of tensors in NCHW order and its gradient, the split: image by
//! image on every worker thread (burn-flex copies on the calling thread alone).

/// `images` images of `a` then `b`, each image's `sizes[0]` values of `a` followed by its
/// `sizes[1]` values of `b`.
pub fn join(a: &[f32], b: &[f32], images: usize, sizes: [usize; 2]) -> Vec<f32> {
    let per_image = sizes[0] + sizes[1];
    // SAFETY: each image's two parts are copied whole (`write_copy_of_slice` panics on a length
    // mismatch).
    #[allow(unsafe_code)]
    unsafe {
        crate::written_by_chunks(images * per_image, per_image, |i, y| {
            let (first, second) = y.split_at_mut(sizes[0]);
            first.write_copy_of_slice(&a[i * sizes[0]..][..sizes[0]]);
            second.write_copy_of_slice(&b[i * sizes[1]..][..sizes[1]]);
        })
    }
}

/// The inverse of [`join`]: each image's first `sizes[0]` values into one tensor and its next
/// `sizes[1]` values into the other.
pub fn split(x: &[f32], images: usize, sizes: [usize; 2]) -> (Vec<f32>, Vec<f32>) {
    let per_image = sizes[0] + sizes[1];
    let part = |from: usize, size: usize| {
        // SAFETY: each image's part is copied whole (`write_copy_of_slice` panics on a length
        // mismatch).
        #[allow(unsafe_code)]
        unsafe {
            crate::written_by_chunks(images * size, size, |i, to| {
                to.write_copy_of_slice(&x[i * per_image + from..][..size]);
            })
        }
    };
    (part(0, sizes[0]), part(sizes[0], sizes[1]))
}
