//! `dilated`: a DeepLab-like atrous pyramid on features at half resolution, with a light decoder.
//! Inductive bias: wide context at several scales from parallel dilated convolutions, and
//! boundaries recovered only from one full-resolution skip, so fine detail is smoothed.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use echoseg_kernels::{conv2d_forward, max_pool2d_forward, resize_bilinear};

use super::SegmenterOutput;
use super::block::{ConvBnRelu, head};

/// Stem at full resolution, an encoder block at half resolution, `depth` parallel atrous
/// branches with dilation 1, 2, 4, …, a 1×1 fusion, bilinear up-sampling and a decoder block.
#[derive(Module, Debug)]
pub struct Dilated {
    stem: ConvBnRelu,
    encoder: ConvBnRelu,
    pool: MaxPool2d,
    branches: Vec<ConvBnRelu>,
    fuse: ConvBnRelu,
    decoder: ConvBnRelu,
    head: Conv2d,
}

impl Dilated {
    /// A dilated network for `inputs` channels and `classes` classes.
    pub fn new(inputs: usize, classes: usize, width: usize, depth: usize, device: &Device) -> Self {
        let wide = 2 * width;
        let branches = (0..depth).map(|b| ConvBnRelu::new(wide, width, 1 << b, device)).collect();
        Self {
            stem: ConvBnRelu::new(inputs, width, 1, device),
            encoder: ConvBnRelu::new(width, wide, 1, device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            branches,
            fuse: ConvBnRelu::pointwise(depth * width, width, device),
            decoder: ConvBnRelu::new(2 * width, width, 1, device),
            head: head(width, classes, device),
        }
    }

    /// The same network with BatchNorm folded into the convolutions (inference only).
    pub fn fused(self) -> Self {
        Self {
            stem: self.stem.fused(),
            encoder: self.encoder.fused(),
            pool: self.pool,
            branches: self.branches.into_iter().map(ConvBnRelu::fused).collect(),
            fuse: self.fuse.fused(),
            decoder: self.decoder.fused(),
            head: self.head,
        }
    }

    /// Logits and the decoder's full-resolution features as embedding.
    pub fn forward(&self, x: Tensor<4>) -> SegmenterOutput {
        let skip = self.stem.forward(x);
        let [_, _, h, w] = skip.dims();
        let coarse = self.encoder.forward(max_pool2d_forward(&self.pool, skip.clone()));
        let pyramid = Tensor::cat(self.branches.iter().map(|b| b.forward(coarse.clone())).collect(), 1);
        let fused = self.fuse.forward(pyramid);
        let up = resize_bilinear(fused, [h, w]);
        let embedding = self.decoder.forward_pair(up, skip);
        SegmenterOutput { logits: conv2d_forward(&self.head, embedding.clone()), embedding }
    }
}
