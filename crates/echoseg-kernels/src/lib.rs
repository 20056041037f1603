//! The CPU kernels of echoseg's architectures, forward and backward: their convolutions, their
//! BatchNorm + ReLU, their bilinear up-sampling, their 2×2 max-pooling and the concatenation of
//! a decoder's inputs.
//!
//! Every convolution the architectures use is a "same" convolution: stride 1, one group, a 1×1 or
//! k×k kernel (k odd) with any dilation, padded so the output keeps the input's size. burn-flex
//! runs 2-D convolutions through a general 3-D path (a layout copy, im2col one value at a time
//! in tiles of 512 pixels, one small matrix product per tile, a strided scatter back) and their
//! gradients through a transposed convolution. Here, on a machine with AVX2 or AVX-512, each
//! image's k×k convolution is computed directly: the input copied once into a zero-padded band,
//! a block of output channels × vectors of pixels held in registers while every tap and input
//! channel is added into it, each output value written once (with a folded block's bias and ReLU
//! applied as it is written). The input gradient is itself a "same" convolution (of the output
//! gradient with the kernel turned half a turn) and runs the same way. The weight gradient is
//! computed directly too where the output channels are few and the rows long, or (on AVX2) with
//! vectors along the output channels where they come in whole blocks of 16, and otherwise as
//! matrix products: of each image's im2col band, or, where that im2col would outgrow L2 and the
//! channels are many, of an input band laid out pixel by pixel read shifted once per tap.
//! Without AVX2 the forward runs through those matrix products as well. BatchNorm with the
//! batch's statistics and the ReLU after it are one operation (three passes forward, two
//! backward, where burn's composition makes about a dozen). Up-sampling widens the input's rows
//! and then blends them, pooling reads its inputs through precomputed coordinates, a decoder's
//! convolution reads its two inputs where they lie (and writes its input gradient straight into
//! both), and the concatenation, where one is still made, and its gradient copy image by image.
//! Each image's part of an output is written by the worker thread that computes it, without a
//! zeroing pass first where the kernel writes every value, and [`keep_freed_memory`] keeps the
//! pages of freed outputs in the process from step to step. On other backends (the GPU) burn's
//! own operations run.
//!
//! Results never depend on the number of threads: each image is computed on one thread and every
//! sum over images runs in image order.

mod allocator;
mod autodiff;
mod channel_grad;
mod concat;
mod conv;
#[cfg(feature = "wgpu")]
mod cube;
mod direct;
mod flex;
mod im2col;
mod matmul;
mod norm;
mod pool;
mod resize;
mod shifted;

pub use allocator::{fill_new_memory_with_garbage, keep_freed_memory};
pub use matmul::{flops, gemm_gflops};

use std::mem::MaybeUninit;

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// A backend that runs the architectures' "same" convolutions, BatchNorm + ReLU, bilinear
/// up-sampling, 2×2 max-pooling and channel concatenation (see the crate documentation).
///
/// The default bodies are burn's own operations, so a backend without kernels of its own still
/// computes the same function.
#[backend_extension(Flex, Autodiff, Cube: cfg(feature = "wgpu"))]
pub trait KernelBackend: Backend {
    /// `x` [batch, in, h, w] convolved with `weight` [out, in, k, k], no bias: [batch, out, h, w].
    fn same_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, dilation: usize) -> FloatTensor<Self> {
        reference::same_conv2d::<Self>(x, weight, dilation)
    }

    /// [`same_conv2d`](Self::same_conv2d) plus `bias` [out] on every pixel, then ReLU: a folded
    /// block's whole inference in one pass over its output.
    fn same_conv2d_bias_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        reference::same_conv2d_bias_relu::<Self>(x, weight, bias, dilation)
    }

    /// The gradient of [`same_conv2d`](Self::same_conv2d)'s loss with respect to `x`.
    fn same_conv2d_x_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        reference::same_conv2d_x_grad::<Self>(x, weight, output_grad, dilation)
    }

    /// The gradient of [`same_conv2d`](Self::same_conv2d)'s loss with respect to `weight`.
    fn same_conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        reference::same_conv2d_weight_grad::<Self>(x, weight, output_grad, dilation)
    }

    /// [`same_conv2d`](Self::same_conv2d) of `a` [batch, ca, h, w] and `b` [batch, cb, h, w]
    /// concatenated along channels (a decoder's two inputs), `weight` [out, ca + cb, k, k].
    fn same_conv2d_pair(a: FloatTensor<Self>, b: FloatTensor<Self>, weight: FloatTensor<Self>, dilation: usize) -> FloatTensor<Self> {
        reference::same_conv2d_pair::<Self>(a, b, weight, dilation)
    }

    /// [`same_conv2d_pair`](Self::same_conv2d_pair) plus `bias` [out], then ReLU: a folded
    /// decoder block's whole inference.
    fn same_conv2d_pair_bias_relu(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        reference::same_conv2d_pair_bias_relu::<Self>(a, b, weight, bias, dilation)
    }

    /// The gradients of [`same_conv2d_pair`](Self::same_conv2d_pair)'s loss with respect to `a`
    /// and `b`.
    fn same_conv2d_pair_x_grad(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        dilation: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::same_conv2d_pair_x_grad::<Self>(a, b, weight, output_grad, dilation)
    }

    /// The gradient of [`same_conv2d_pair`](Self::same_conv2d_pair)'s loss with respect to
    /// `weight`.
    fn same_conv2d_pair_weight_grad(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        dilation: usize,
    ) -> FloatTensor<Self> {
        reference::same_conv2d_pair_weight_grad::<Self>(a, b, weight, output_grad, dilation)
    }

    /// `x` [batch, channels, h, w] resized bilinearly to `size`, corners aligned.
    fn resize_bilinear(x: FloatTensor<Self>, size: [usize; 2]) -> FloatTensor<Self> {
        reference::resize_bilinear::<Self>(x, size)
    }

    /// The gradient of [`resize_bilinear`](Self::resize_bilinear)'s loss with respect to `x`.
    fn resize_bilinear_grad(x: FloatTensor<Self>, output_grad: FloatTensor<Self>, size: [usize; 2]) -> FloatTensor<Self> {
        reference::resize_bilinear_grad::<Self>(x, output_grad, size)
    }

    /// BatchNorm of `x` [batch, channels, h, w] with the batch's own statistics, then ReLU:
    /// (output, mean, biased variance), the statistics per channel.
    fn batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        reference::batch_norm_relu_train::<Self>(x, gamma, beta, epsilon)
    }

    /// BatchNorm of `x` [batch, channels, h, w] with given statistics (inference), then ReLU.
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        reference::batch_norm_relu::<Self>(x, gamma, beta, (mean, variance), epsilon)
    }

    /// The gradients of [`batch_norm_relu_train`](Self::batch_norm_relu_train)'s loss with
    /// respect to `x`, `gamma` and `beta`, given the statistics it returned.
    fn batch_norm_relu_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        reference::batch_norm_relu_train_backward::<Self>(x, gamma, beta, (mean, variance), output_grad, epsilon)
    }

    /// `x` [batch, channels, h, w] max-pooled over 2×2 windows with stride 2: [.., h / 2, w / 2].
    fn max_pool2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::max_pool2::<Self>(x)
    }

    /// The gradient of [`max_pool2`](Self::max_pool2)'s loss with respect to `x`.
    fn max_pool2_grad(x: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::max_pool2_grad::<Self>(x, output_grad)
    }

    /// `a` [batch, ca, h, w] and `b` [batch, cb, h, w] side by side: [batch, ca + cb, h, w].
    fn concat_channels(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::concat_channels::<Self>(a, b)
    }

    /// `x` [batch, c, h, w] cut into its first `first` channels and the rest: the gradient of
    /// [`concat_channels`](Self::concat_channels) with respect to its two inputs.
    fn split_channels(x: FloatTensor<Self>, first: usize) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::split_channels::<Self>(x, first)
    }
}

/// burn's own operations computing the same functions: the default bodies, and what the CPU
/// kernels fall back to where they do not apply (another dtype, an even kernel).
pub(crate) mod reference {
    use burn::backend::Backend;
    use burn::backend::TensorMetadata;
    use burn::backend::ops::{InterpolateMode, InterpolateOptions};
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::{IntDType, Slice};

    use crate::{KernelBackend, conv_options};

    pub fn same_conv2d<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, dilation: usize) -> FloatTensor<B> {
        let options = conv_options(&weight, dilation);
        B::conv2d(x, weight, None, options)
    }

    pub fn same_conv2d_bias_relu<B: Backend>(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        bias: FloatTensor<B>,
        dilation: usize,
    ) -> FloatTensor<B> {
        let options = conv_options(&weight, dilation);
        B::relu(B::conv2d(x, weight, Some(bias), options))
    }

    pub fn same_conv2d_x_grad<B: Backend>(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
        dilation: usize,
    ) -> FloatTensor<B> {
        let options = conv_options(&weight, dilation);
        B::conv2d_x_backward(x, weight, grad, options)
    }

    pub fn same_conv2d_weight_grad<B: Backend>(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
        dilation: usize,
    ) -> FloatTensor<B> {
        let options = conv_options(&weight, dilation);
        B::conv2d_weight_backward(x, weight, grad, options)
    }

    // A pair is concatenated first and convolved as one input: through the backend's own
    // operations, so the gradients are those of `same_conv2d` cut in two.
    pub fn same_conv2d_pair<B: KernelBackend>(
        a: FloatTensor<B>,
        b: FloatTensor<B>,
        weight: FloatTensor<B>,
        dilation: usize,
    ) -> FloatTensor<B> {
        B::same_conv2d(B::concat_channels(a, b), weight, dilation)
    }

    pub fn same_conv2d_pair_bias_relu<B: KernelBackend>(
        a: FloatTensor<B>,
        b: FloatTensor<B>,
        weight: FloatTensor<B>,
        bias: FloatTensor<B>,
        dilation: usize,
    ) -> FloatTensor<B> {
        B::same_conv2d_bias_relu(B::concat_channels(a, b), weight, bias, dilation)
    }

    pub fn same_conv2d_pair_x_grad<B: KernelBackend>(
        a: FloatTensor<B>,
        b: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
        dilation: usize,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        let first = a.shape()[1];
        B::split_channels(B::same_conv2d_x_grad(B::concat_channels(a, b), weight, grad, dilation), first)
    }

    pub fn same_conv2d_pair_weight_grad<B: KernelBackend>(
        a: FloatTensor<B>,
        b: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
        dilation: usize,
    ) -> FloatTensor<B> {
        B::same_conv2d_weight_grad(B::concat_channels(a, b), weight, grad, dilation)
    }

    fn bilinear() -> InterpolateOptions {
        InterpolateOptions::new(InterpolateMode::Bilinear)
    }

    pub fn resize_bilinear<B: Backend>(x: FloatTensor<B>, size: [usize; 2]) -> FloatTensor<B> {
        B::interpolate(x, size, bilinear())
    }

    pub fn resize_bilinear_grad<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>, size: [usize; 2]) -> FloatTensor<B> {
        B::interpolate_backward(x, grad, size, bilinear())
    }

    pub fn batch_norm_relu_train<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        epsilon: f64,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        let normed = B::batch_norm_train(x, gamma, beta, epsilon);
        (B::relu(normed.output), normed.mean, normed.variance)
    }

    pub fn batch_norm_relu<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        (mean, variance): (FloatTensor<B>, FloatTensor<B>),
        epsilon: f64,
    ) -> FloatTensor<B> {
        B::relu(B::batch_norm(x, gamma, beta, mean, variance, epsilon))
    }

    pub fn batch_norm_relu_train_backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        (mean, variance): (FloatTensor<B>, FloatTensor<B>),
        grad: FloatTensor<B>,
        epsilon: f64,
    ) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
        // ReLU's mask is where its input is positive, which the normalised values recompute
        let normed = B::batch_norm(x.clone(), gamma.clone(), beta, mean.clone(), variance.clone(), epsilon);
        let grad = B::relu_backward(normed, grad);
        let grads = B::batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
        (grads.x_grad, grads.gamma_grad, grads.beta_grad)
    }

    pub fn concat_channels<B: Backend>(a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
        B::float_cat(vec![a, b], 1)
    }

    pub fn split_channels<B: Backend>(x: FloatTensor<B>, first: usize) -> (FloatTensor<B>, FloatTensor<B>) {
        let channels = x.shape()[1];
        let cut = |range: std::ops::Range<usize>| {
            let whole = Slice::full();
            B::float_slice(x.clone(), &[whole, Slice::new(range.start as isize, Some(range.end as isize), 1), whole, whole])
        };
        (cut(0..first), cut(first..channels))
    }

    pub fn max_pool2<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        B::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
    }

    pub fn max_pool2_grad<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        let pooled = B::max_pool2d_with_indices(x.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false, IntDType::I64);
        B::max_pool2d_with_indices_backward(x, [2, 2], [2, 2], [0, 0], [1, 1], false, grad, pooled.indices).x_grad
    }
}

/// A new buffer of `len` values cut into chunks of `chunk` values (the last may be shorter), each
/// handed with its index to `write` on a worker thread, uninitialised.
///
/// Outputs used to be zeroed in a pass of their own before kernels that write all of them: that
/// pass waits on memory for every line it touches, where a kernel's own stores overlap the wait
/// with its arithmetic (measured 2026-12-04 on a 2-core AMD EPYC Zen 3, `echoseg bench --arch
/// unet --steps 30`, three alternating pairs: 14.9–16.0 → 14.6–15.1 CPU-seconds per run).
///
/// # Safety
/// `write` must initialise every value of the chunk it is given.
#[allow(unsafe_code)]
pub(crate) unsafe fn written_by_chunks(len: usize, chunk: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    use rayon::prelude::*;
    let mut values = Vec::<f32>::with_capacity(len);
    values.spare_capacity_mut()[..len].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, part)| write(i, part));
    // SAFETY: the chunks cover `..len`, and the caller's `write` initialised each (a panic in it
    // never gets here).
    unsafe { values.set_len(len) };
    values
}

/// [`written_by_chunks`] for two new buffers of `images` chunks each (`chunks[0]` and `chunks[1]`
/// values, both more than none): image `i`'s chunk of each handed together to `write`.
///
/// # Safety
/// `write` must initialise every value of both chunks it is given.
#[allow(unsafe_code)]
pub(crate) unsafe fn written_by_chunk_pairs(
    images: usize,
    chunks: [usize; 2],
    write: impl Fn(usize, &mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>]) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    assert!(chunks.iter().all(|&c| c > 0), "each image has values in both buffers");
    let [mut first, mut second] = chunks.map(|c| Vec::<f32>::with_capacity(images * c));
    let a = first.spare_capacity_mut()[..images * chunks[0]].par_chunks_mut(chunks[0]);
    let b = second.spare_capacity_mut()[..images * chunks[1]].par_chunks_mut(chunks[1]);
    a.zip(b).enumerate().for_each(|(i, (a, b))| write(i, a, b));
    // SAFETY: the chunks cover `..images · chunk` of each buffer, and the caller's `write`
    // initialised each (a panic in it never gets here).
    unsafe {
        first.set_len(images * chunks[0]);
        second.set_len(images * chunks[1]);
    }
    (first, second)
}

/// [`written_by_chunks`] for kernels that add into their output or leave parts of it alone:
/// each chunk is zeroed just before `write` gets it, by the thread that runs `write`, so the
/// zeros are still in that core's cache when the kernel writes over them.
pub(crate) fn zeroed_by_chunks(len: usize, chunk: usize, write: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    // SAFETY: `zeroed` initialises every value of the chunk before `write` sees it.
    #[allow(unsafe_code)]
    unsafe {
        written_by_chunks(len, chunk, |i, part| write(i, zeroed(part)))
    }
}

/// `part` set to zeros, as initialised values.
pub(crate) fn zeroed(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    part.fill(MaybeUninit::new(0.0));
    // SAFETY: every value of `part` was initialised on the line above, and `MaybeUninit<f32>` has
    // the layout of `f32`.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(std::ptr::from_mut(part) as *mut [f32])
    }
}

/// The first `vectors` whole vectors of `from`, read in place.
#[inline(always)]
pub(crate) fn whole<S: pulp::Simd>(from: &[f32], vectors: usize) -> &[S::f32s] {
    &S::as_simd_f32s(&from[..vectors * S::F32_LANES]).0[..vectors]
}

/// The first `len` values of a reused scratch `buffer`, grown to hold them (contents arbitrary).
pub(crate) fn at_least(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// burn's options for a "same" convolution with this weight and dilation.
fn conv_options<P: burn::backend::TensorMetadata>(weight: &P, dilation: usize) -> ConvOptions<2> {
    let shape = weight.shape();
    let pad = |k: usize| dilation * (k - 1) / 2;
    ConvOptions::new([1, 1], [pad(shape[2]), pad(shape[3])], [dilation, dilation], 1)
}

/// `x` [batch, in, h, w] convolved with `weight` [out, in, k, k] (k odd) at `dilation`, stride 1,
/// zero padding that keeps the size, no bias; differentiable on an autodiff device.
pub fn same_conv2d(x: Tensor<4>, weight: Tensor<4>, dilation: usize) -> Tensor<4> {
    let out = <burn::backend::Dispatch as KernelBackend>::same_conv2d(x.into_dispatch(), weight.into_dispatch(), dilation);
    Tensor::from_dispatch(out)
}

/// [`same_conv2d`] of `a` [batch, ca, h, w] and `b` [batch, cb, h, w] concatenated along channels,
/// `weight` [out, ca + cb, k, k], with the same sums in the same order as on their concatenation;
/// differentiable. Where the CPU's direct convolution runs (AVX2 or AVX-512, a kernel wider than
/// one pixel) both are read where they lie; elsewhere, and for the weight gradient's
/// matrix-product paths, they are concatenated first.
pub fn same_conv2d_pair(a: Tensor<4>, b: Tensor<4>, weight: Tensor<4>, dilation: usize) -> Tensor<4> {
    let (a, b, weight) = (a.into_dispatch(), b.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(<burn::backend::Dispatch as KernelBackend>::same_conv2d_pair(a, b, weight, dilation))
}

/// `a` [batch, ca, h, w] and `b` [batch, cb, h, w] concatenated along channels:
/// `Tensor::cat(vec![a, b], 1)`, copied image by image by every worker thread; differentiable.
pub fn concat_channels(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<burn::backend::Dispatch as KernelBackend>::concat_channels(a.into_dispatch(), b.into_dispatch()))
}

/// `x` [batch, channels, h, w] resized bilinearly to `size` with corners aligned: burn's
/// `interpolate` with `InterpolateOptions::new(InterpolateMode::Bilinear)`; differentiable.
pub fn resize_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    Tensor::from_dispatch(<burn::backend::Dispatch as KernelBackend>::resize_bilinear(x.into_dispatch(), size))
}

/// Applies a burn `MaxPool2d` layer: through [`KernelBackend::max_pool2`] when it pools 2×2
/// windows with stride 2 and no padding, through the layer's own forward otherwise.
pub fn max_pool2d_forward(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let halves = pool.kernel_size == [2, 2] && pool.stride == [2, 2] && pool.dilation == [1, 1] && !pool.ceil_mode;
    if !halves || !matches!(pool.padding, PaddingConfig2d::Valid) {
        return pool.forward(x);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as KernelBackend>::max_pool2(x.into_dispatch()))
}

/// Applies a burn `BatchNorm` layer and then ReLU as one operation. On a training path (an
/// autodiff device and a layer in training mode) it has one backward and the running statistics
/// move as burn's layer moves them; otherwise it normalises with the running statistics.
pub fn batch_norm_relu_forward(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if !(device.is_autodiff() && norm.training.is_enabled()) {
        let (mean, variance) = (norm.running_mean.value().to_device(&device), norm.running_var.value().to_device(&device));
        let y = <burn::backend::Dispatch as KernelBackend>::batch_norm_relu(
            x.into_dispatch(),
            norm.gamma.val().into_dispatch(),
            norm.beta.val().into_dispatch(),
            mean.into_dispatch(),
            variance.into_dispatch(),
            norm.epsilon,
        );
        return Tensor::from_dispatch(y);
    }
    let (y, mean, variance) = <burn::backend::Dispatch as KernelBackend>::batch_norm_relu_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    let moved = |running: &RunningState<Tensor<1>>, batch: Tensor<1>| {
        let old = running.value_sync().to_device(&device);
        running.update(old.mul_scalar(1.0 - norm.momentum).add(batch.detach().mul_scalar(norm.momentum)).detach());
    };
    moved(&norm.running_mean, Tensor::from_dispatch(mean));
    moved(&norm.running_var, Tensor::from_dispatch(variance));
    Tensor::from_dispatch(y)
}

/// Applies a burn `Conv2d` layer: through [`same_conv2d`] (plus its bias) when the layer is a
/// "same" convolution, through the layer's own forward otherwise.
pub fn conv2d_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(dilation) = same_dilation(conv) else { return conv.forward(x) };
    with_bias(conv, same_conv2d(x, conv.weight.val(), dilation))
}

/// Applies a burn `Conv2d` layer to `a` and `b` concatenated along channels (a decoder's
/// up-sampled input and its skip): through [`same_conv2d_pair`] (plus its bias) when the layer is
/// a "same" convolution, so the direct convolution reads both where they lie; otherwise the
/// layer's own forward runs on [`concat_channels`]. Differentiable.
pub fn conv2d_pair_forward(conv: &Conv2d, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let Some(dilation) = same_dilation(conv) else { return conv.forward(concat_channels(a, b)) };
    with_bias(conv, same_conv2d_pair(a, b, conv.weight.val(), dilation))
}

/// `y` plus the layer's bias, if it has one, on every pixel.
fn with_bias(conv: &Conv2d, y: Tensor<4>) -> Tensor<4> {
    match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.val().reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// Applies a burn `Conv2d` layer and then ReLU, in one pass over the output when the layer is a
/// "same" convolution with a bias (a block with BatchNorm folded in).
pub fn conv2d_relu_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (Some(dilation), Some(bias)) = (same_dilation(conv), &conv.bias) else { return relu(conv2d_forward(conv, x)) };
    let out = <burn::backend::Dispatch as KernelBackend>::same_conv2d_bias_relu(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
        dilation,
    );
    Tensor::from_dispatch(out)
}

/// [`conv2d_relu_forward`] of `a` and `b` concatenated along channels, read where they lie when
/// the layer is a "same" convolution with a bias (a folded decoder block).
pub fn conv2d_relu_pair_forward(conv: &Conv2d, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let (Some(dilation), Some(bias)) = (same_dilation(conv), &conv.bias) else { return relu(conv2d_pair_forward(conv, a, b)) };
    let out = <burn::backend::Dispatch as KernelBackend>::same_conv2d_pair_bias_relu(
        a.into_dispatch(),
        b.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
        dilation,
    );
    Tensor::from_dispatch(out)
}

/// The layer's dilation when it is a "same" convolution: stride 1, one group, an odd square
/// kernel and the padding that keeps the size.
fn same_dilation(conv: &Conv2d) -> Option<usize> {
    let [kh, kw] = conv.kernel_size;
    let [dh, dw] = conv.dilation;
    let pad = dh * (kh.max(1) - 1) / 2;
    let padding_keeps_size = match &conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [*top, *left, *bottom, *right] == [pad; 4],
        PaddingConfig2d::Valid => pad == 0,
        _ => false,
    };
    let same = conv.stride == [1, 1] && conv.groups == 1 && kh == kw && kh % 2 == 1 && dh == dw && padding_keeps_size;
    same.then_some(dh)
}
