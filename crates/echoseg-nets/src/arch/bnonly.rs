//! `bnonly`: random convolution features that are never trained; only BatchNorm's per-channel
//! scale and shift learn (Frankle et al., "Training BatchNorm and only BatchNorm", 2021).
//! Inductive bias: the model can only re-weight and gate fixed random filters, so it leans on
//! whatever cue those filters happen to expose (colour, contrast) rather than learned shapes.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor};
use echoseg_kernels::conv2d_forward;

use super::SegmenterOutput;
use super::block::{ConvBnRelu, head};

/// `depth` frozen 3×3 blocks with dilations cycling 1, 2, 4 (for context without pooling), a
/// frozen 1×1 head, and a trainable BatchNorm on the logits so the classes can be re-scaled.
#[derive(Module, Debug)]
pub struct BnOnly {
    blocks: Vec<ConvBnRelu>,
    head: Conv2d,
    logit_norm: BatchNorm,
}

impl BnOnly {
    /// A bnonly network for `inputs` channels and `classes` classes.
    pub fn new(inputs: usize, classes: usize, width: usize, depth: usize, device: &Device) -> Self {
        let blocks =
            (0..depth).map(|l| ConvBnRelu::new(if l == 0 { inputs } else { width }, width, 1 << (l % 3), device).frozen_conv()).collect();
        Self { blocks, head: head(width, classes, device).no_grad(), logit_norm: BatchNormConfig::new(classes).init(device) }
    }

    /// The same network with BatchNorm folded into the convolutions (inference only).
    pub fn fused(self) -> Self {
        Self { blocks: self.blocks.into_iter().map(ConvBnRelu::fused).collect(), head: self.head, logit_norm: self.logit_norm }
    }

    /// Logits and the last block's features as embedding.
    pub fn forward(&self, x: Tensor<4>) -> SegmenterOutput {
        let h = self.blocks.iter().fold(x, |h, b| b.forward(h));
        SegmenterOutput { logits: self.logit_norm.forward(conv2d_forward(&self.head, h.clone())), embedding: h }
    }
}
