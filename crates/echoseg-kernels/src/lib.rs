//! The CPU kernels of echoseg's architectures, forward and backward: their convolutions, their
//! bilinear up-sampling and their 2×2 max-pooling.
//!
//! Every convolution the architectures use is a "same" convolution: stride 1, one group, a 1×1 or
//! k×k kernel (k odd) with any dilation, padded so the output keeps the input's size. burn-flex
//! runs 2-D convolutions through a general 3-D path (a layout copy, im2col one value at a time
//! in tiles of 512 pixels, one small matrix product per tile, a strided scatter back) and their
//! gradients through a transposed convolution. Here each image's im2col is built by one copy per
//! tap into a reused band buffer and one matrix product per band writes straight into the
//! output; the gradients are two more products and the adjoint of the im2col. Up-sampling and
//! pooling read their inputs through precomputed coordinates. On other backends (the GPU)
//! burn's own operations run.
//!
//! Results never depend on the number of threads: each image is computed on one thread and every
//! sum over images runs in image order.

mod autodiff;
mod conv;
#[cfg(feature = "wgpu")]
mod cube;
mod flex;
mod im2col;
mod matmul;
mod pool;
mod resize;

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

/// A backend that runs the architectures' "same" convolutions, bilinear up-sampling and 2×2
/// max-pooling (see the crate documentation).
///
/// The default bodies are burn's own operations, so a backend without kernels of its own still
/// computes the same function.
#[backend_extension(Flex, Autodiff, Cube: cfg(feature = "wgpu"))]
pub trait KernelBackend: Backend {
    /// `x` [batch, in, h, w] convolved with `weight` [out, in, k, k], no bias: [batch, out, h, w].
    fn same_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, dilation: usize) -> FloatTensor<Self> {
        reference::same_conv2d::<Self>(x, weight, dilation)
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

    /// `x` [batch, channels, h, w] resized bilinearly to `size`, corners aligned.
    fn resize_bilinear(x: FloatTensor<Self>, size: [usize; 2]) -> FloatTensor<Self> {
        reference::resize_bilinear::<Self>(x, size)
    }

    /// The gradient of [`resize_bilinear`](Self::resize_bilinear)'s loss with respect to `x`.
    fn resize_bilinear_grad(x: FloatTensor<Self>, output_grad: FloatTensor<Self>, size: [usize; 2]) -> FloatTensor<Self> {
        reference::resize_bilinear_grad::<Self>(x, output_grad, size)
    }

    /// `x` [batch, channels, h, w] max-pooled over 2×2 windows with stride 2: [.., h / 2, w / 2].
    fn max_pool2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::max_pool2::<Self>(x)
    }

    /// The gradient of [`max_pool2`](Self::max_pool2)'s loss with respect to `x`.
    fn max_pool2_grad(x: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::max_pool2_grad::<Self>(x, output_grad)
    }
}

/// burn's own operations computing the same functions: the default bodies, and what the CPU
/// kernels fall back to where they do not apply (another dtype, an even kernel).
pub(crate) mod reference {
    use burn::backend::Backend;
    use burn::backend::ops::{InterpolateMode, InterpolateOptions};
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::IntDType;

    use crate::conv_options;

    pub fn same_conv2d<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, dilation: usize) -> FloatTensor<B> {
        let options = conv_options(&weight, dilation);
        B::conv2d(x, weight, None, options)
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

    fn bilinear() -> InterpolateOptions {
        InterpolateOptions::new(InterpolateMode::Bilinear)
    }

    pub fn resize_bilinear<B: Backend>(x: FloatTensor<B>, size: [usize; 2]) -> FloatTensor<B> {
        B::interpolate(x, size, bilinear())
    }

    pub fn resize_bilinear_grad<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>, size: [usize; 2]) -> FloatTensor<B> {
        B::interpolate_backward(x, grad, size, bilinear())
    }

    pub fn max_pool2<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        B::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
    }

    pub fn max_pool2_grad<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        let pooled = B::max_pool2d_with_indices(x.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false, IntDType::I64);
        B::max_pool2d_with_indices_backward(x, [2, 2], [2, 2], [0, 0], [1, 1], false, grad, pooled.indices).x_grad
    }
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

/// Applies a burn `Conv2d` layer: through [`same_conv2d`] (plus its bias) when the layer is a
/// "same" convolution, through the layer's own forward otherwise.
pub fn conv2d_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(dilation) = same_dilation(conv) else { return conv.forward(x) };
    let y = same_conv2d(x, conv.weight.val(), dilation);
    match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.val().reshape([1, channels, 1, 1])
        }
        None => y,
    }
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
