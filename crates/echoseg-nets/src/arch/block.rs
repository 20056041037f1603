//! Layers shared by the architectures.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use echoseg_kernels::{batch_norm_relu_forward, conv2d_forward, conv2d_pair_forward, conv2d_relu_forward, conv2d_relu_pair_forward};

/// 3×3 convolution (optionally dilated), BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    /// `None` once folded into `conv` by [`ConvBnRelu::fused`].
    norm: Option<BatchNorm>,
}

impl ConvBnRelu {
    /// A block from `cin` to `cout` channels with the given dilation; padding keeps the size.
    pub fn new(cin: usize, cout: usize, dilation: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(dilation, dilation, dilation, dilation))
            .with_dilation([dilation, dilation])
            // BatchNorm follows, so a bias would be redundant.
            .with_bias(false)
            .init(device);
        Self { conv, norm: Some(BatchNormConfig::new(cout).init(device)) }
    }

    /// A 1×1 block from `cin` to `cout` channels: mixes channels, sees no neighbours.
    pub fn pointwise(cin: usize, cout: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [1, 1]).with_bias(false).init(device);
        Self { conv, norm: Some(BatchNormConfig::new(cout).init(device)) }
    }

    /// The same block with its convolution weights frozen at their random initial values.
    pub fn frozen_conv(self) -> Self {
        Self { conv: self.conv.no_grad(), norm: self.norm }
    }

    /// The block with BatchNorm's running statistics folded into the convolution's weights and
    /// bias: the same function in inference mode, one pass over the activations fewer.
    pub fn fused(self) -> Self {
        let Some(norm) = self.norm else { return self };
        let mut conv = self.conv;
        let scale = norm.gamma.val() / (norm.running_var.value() + norm.epsilon).sqrt();
        let shift = norm.beta.val() - norm.running_mean.value() * scale.clone();
        let channels = scale.dims()[0];
        let weight = conv.weight.val() * scale.clone().reshape([channels, 1, 1, 1]);
        let bias = match conv.bias.take() {
            Some(bias) => bias.val() * scale + shift,
            None => shift,
        };
        conv.weight = Param::from_tensor(weight);
        conv.bias = Some(Param::from_tensor(bias));
        Self { conv, norm: None }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.norm {
            Some(norm) => batch_norm_relu_forward(norm, conv2d_forward(&self.conv, x)),
            None => conv2d_relu_forward(&self.conv, x),
        }
    }

    /// Applies the block to `a` and `b` concatenated along channels (a decoder's up-sampled
    /// input and its skip), read where they lie wherever the kernels' direct convolution runs.
    pub fn forward_pair(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        match &self.norm {
            Some(norm) => batch_norm_relu_forward(norm, conv2d_pair_forward(&self.conv, a, b)),
            None => conv2d_relu_pair_forward(&self.conv, a, b),
        }
    }
}

/// Two [`ConvBnRelu`] blocks: the U-Net's unit.
#[derive(Module, Debug)]
pub struct DoubleConv {
    first: ConvBnRelu,
    second: ConvBnRelu,
}

impl DoubleConv {
    /// Two blocks `cin → cout → cout`.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self { first: ConvBnRelu::new(cin, cout, 1, device), second: ConvBnRelu::new(cout, cout, 1, device) }
    }

    /// Both blocks with BatchNorm folded in (inference only).
    pub fn fused(self) -> Self {
        Self { first: self.first.fused(), second: self.second.fused() }
    }

    /// Applies both blocks.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.second.forward(self.first.forward(x))
    }

    /// Applies both blocks to `a` and `b` concatenated along channels (see
    /// [`ConvBnRelu::forward_pair`]).
    pub fn forward_pair(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        self.second.forward(self.first.forward_pair(a, b))
    }
}

/// The 1×1 classification head from an embedding to class logits.
pub fn head(width: usize, classes: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([width, classes], [1, 1]).init(device)
}
