//! Layers shared by the architectures.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// 3×3 convolution (optionally dilated), BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    norm: BatchNorm,
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
        Self { conv, norm: BatchNormConfig::new(cout).init(device) }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
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

    /// Applies both blocks.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.second.forward(self.first.forward(x))
    }
}

/// The 1×1 classification head from an embedding to class logits.
pub fn head(width: usize, classes: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([width, classes], [1, 1]).init(device)
}
