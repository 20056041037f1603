//! `unet`: encoder–decoder with skip connections and bilinear up-sampling.
//! Inductive bias: multi-scale context plus full-resolution detail from the skips.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use echoseg_kernels::{conv2d_forward, max_pool2d_forward, resize_bilinear};

use super::SegmenterOutput;
use super::block::{DoubleConv, head};

/// A U-Net with `depth` levels; level `l` has `width · 2^l` channels.
#[derive(Module, Debug)]
pub struct Unet {
    down: Vec<DoubleConv>,
    up: Vec<DoubleConv>,
    pool: MaxPool2d,
    head: Conv2d,
}

impl Unet {
    /// A U-Net for `inputs` channels and `classes` classes.
    pub fn new(inputs: usize, classes: usize, width: usize, depth: usize, device: &Device) -> Self {
        let channels: Vec<usize> = (0..depth).map(|l| width << l).collect();
        let down = (0..depth).map(|l| DoubleConv::new(if l == 0 { inputs } else { channels[l - 1] }, channels[l], device)).collect();
        // up[i] merges level depth-1-i (coarser, up-sampled) with its skip at level depth-2-i
        let up = (0..depth.saturating_sub(1))
            .map(|i| {
                let level = depth - 2 - i;
                DoubleConv::new(channels[level + 1] + channels[level], channels[level], device)
            })
            .collect();
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        Self { down, up, pool, head: head(width, classes, device) }
    }

    /// The same network with BatchNorm folded into the convolutions (inference only).
    pub fn fused(self) -> Self {
        let fuse = |blocks: Vec<DoubleConv>| blocks.into_iter().map(DoubleConv::fused).collect();
        Self { down: fuse(self.down), up: fuse(self.up), pool: self.pool, head: self.head }
    }

    /// Logits and the full-resolution embedding of the last decoder block.
    pub fn forward(&self, x: Tensor<4>) -> SegmenterOutput {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut h = x;
        for (l, block) in self.down.iter().enumerate() {
            if l > 0 {
                h = max_pool2d_forward(&self.pool, h);
            }
            h = block.forward(h);
            skips.push(h.clone());
        }
        skips.pop();
        for block in &self.up {
            let skip = skips.pop().unwrap_or_else(|| h.clone());
            let [_, _, sh, sw] = skip.dims();
            let upsampled = resize_bilinear(h, [sh, sw]);
            h = block.forward_pair(upsampled, skip);
        }
        SegmenterOutput { logits: conv2d_forward(&self.head, h.clone()), embedding: h }
    }
}
