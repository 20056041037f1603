//! `fcn`: stacked 3×3 convolutions at full resolution, no down-sampling.
//! Inductive bias: local texture and edges; context limited to a (2·depth + 1)-pixel window.
//!
//! `pixel` is the same stack with 1×1 convolutions: no spatial context at all, so it reproduces
//! exactly what colour alone predicts — the strongest possible form of a threshold heuristic, and
//! blind to shape.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};
use echoseg_kernels::conv2d_forward;

use super::SegmenterOutput;
use super::block::{ConvBnRelu, head};

/// `depth` full-resolution blocks of `width` channels, then a 1×1 head (also the `pixel` network).
#[derive(Module, Debug)]
pub struct Fcn {
    blocks: Vec<ConvBnRelu>,
    head: Conv2d,
}

impl Fcn {
    /// An FCN for `inputs` channels and `classes` classes.
    pub fn new(inputs: usize, classes: usize, width: usize, depth: usize, device: &Device) -> Self {
        let blocks = (0..depth).map(|l| ConvBnRelu::new(if l == 0 { inputs } else { width }, width, 1, device)).collect();
        Self { blocks, head: head(width, classes, device) }
    }

    /// The `pixel` network: `depth` 1×1 blocks of `width` channels, then a 1×1 head.
    pub fn pointwise(inputs: usize, classes: usize, width: usize, depth: usize, device: &Device) -> Self {
        let blocks = (0..depth).map(|l| ConvBnRelu::pointwise(if l == 0 { inputs } else { width }, width, device)).collect();
        Self { blocks, head: head(width, classes, device) }
    }

    /// The same network with BatchNorm folded into the convolutions (inference only).
    pub fn fused(self) -> Self {
        Self { blocks: self.blocks.into_iter().map(ConvBnRelu::fused).collect(), head: self.head }
    }

    /// Logits and the last block's features as embedding.
    pub fn forward(&self, x: Tensor<4>) -> SegmenterOutput {
        let h = self.blocks.iter().fold(x, |h, b| b.forward(h));
        SegmenterOutput { logits: conv2d_forward(&self.head, h.clone()), embedding: h }
    }
}
