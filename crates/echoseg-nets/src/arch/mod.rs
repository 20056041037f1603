//! The architecture zoo: differently-biased segmenters behind one [`Network`] type.

mod block;
mod fcn;
mod unet;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use fcn::Fcn;
pub use unet::Unet;

/// The name of an architecture, as written in manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Encoder–decoder with skip connections.
    Unet,
    /// Full-resolution stacked 3×3 convolutions.
    Fcn,
}

impl Architecture {
    /// Every architecture, in a fixed order.
    pub const ALL: [Architecture; 2] = [Architecture::Unet, Architecture::Fcn];

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Unet => "unet",
            Architecture::Fcn => "fcn",
        }
    }

    /// The default (width, depth) of this architecture.
    pub fn default_shape(self) -> (usize, usize) {
        match self {
            Architecture::Unet => (16, 3),
            Architecture::Fcn => (16, 6),
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An architecture with its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Which architecture.
    pub architecture: Architecture,
    /// Channels of the first (or only) level.
    pub width: usize,
    /// Levels (unet) or blocks (fcn).
    pub depth: usize,
    /// Input channels.
    pub inputs: usize,
    /// Output classes.
    pub classes: usize,
}

impl NetworkSpec {
    /// Every problem with the size, as (key, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(1..=256).contains(&self.width) {
            out.push(("width".into(), format!("must be between 1 and 256, got {}", self.width)));
        }
        let max_depth = match self.architecture {
            Architecture::Unet => 6,
            Architecture::Fcn => 32,
        };
        if !(1..=max_depth).contains(&self.depth) {
            out.push(("depth".into(), format!("for {} must be between 1 and {max_depth}, got {}", self.architecture, self.depth)));
        }
        out
    }
}

/// What every segmenter returns.
#[derive(Debug, Clone)]
pub struct SegmenterOutput {
    /// Class scores before softmax, `[batch, classes, height, width]`.
    pub logits: Tensor<4>,
    /// The per-pixel penultimate features, `[batch, channels, height, width]`.
    pub embedding: Tensor<4>,
}

/// One network of any architecture.
#[derive(Module, Debug)]
pub enum Network {
    /// A [`Unet`].
    Unet(Unet),
    /// An [`Fcn`].
    Fcn(Fcn),
}

impl Network {
    /// A freshly initialised network (parameters stay lazy until first use).
    pub fn new(spec: &NetworkSpec, device: &Device) -> Self {
        match spec.architecture {
            Architecture::Unet => Network::Unet(Unet::new(spec.inputs, spec.classes, spec.width, spec.depth, device)),
            Architecture::Fcn => Network::Fcn(Fcn::new(spec.inputs, spec.classes, spec.width, spec.depth, device)),
        }
    }

    /// Logits and embedding for a batch of images `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> SegmenterOutput {
        match self {
            Network::Unet(n) => n.forward(x),
            Network::Fcn(n) => n.forward(x),
        }
    }
}
