//! The architecture zoo: differently-biased segmenters behind one [`Network`] type.

pub(crate) mod block;
mod bnonly;
mod dilated;
mod fcn;
mod unet;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use bnonly::BnOnly;
pub use dilated::Dilated;
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
    /// An atrous pyramid at half resolution (DeepLab-like).
    Dilated,
    /// Frozen random convolutions; only BatchNorm trains.
    Bnonly,
    /// 1×1 convolutions only: a per-pixel colour classifier.
    Pixel,
}

impl Architecture {
    /// Every architecture, in a fixed order.
    pub const ALL: [Architecture; 5] =
        [Architecture::Unet, Architecture::Fcn, Architecture::Dilated, Architecture::Bnonly, Architecture::Pixel];

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Unet => "unet",
            Architecture::Fcn => "fcn",
            Architecture::Dilated => "dilated",
            Architecture::Bnonly => "bnonly",
            Architecture::Pixel => "pixel",
        }
    }

    /// The default (width, depth) of this architecture.
    pub fn default_shape(self) -> (usize, usize) {
        match self {
            Architecture::Unet => (16, 3),
            Architecture::Fcn => (16, 6),
            Architecture::Dilated => (16, 3),
            Architecture::Bnonly => (32, 6),
            Architecture::Pixel => (32, 3),
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a network's weights start before supervised training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pretrain {
    /// BYOL on the unlabelled pool ([`crate::pretrain_byol`]).
    Byol,
}

impl Pretrain {
    /// The manifest name, also the suffix of the model's name (`unet+byol`).
    pub fn name(self) -> &'static str {
        match self {
            Pretrain::Byol => "byol",
        }
    }

    /// Every pre-training, for error messages.
    pub const ALL: [Pretrain; 1] = [Pretrain::Byol];
}

/// An architecture with its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Which architecture.
    pub architecture: Architecture,
    /// Channels of the first (or only) level.
    pub width: usize,
    /// Levels (unet), blocks (fcn, bnonly, pixel) or atrous branches (dilated).
    pub depth: usize,
    /// Input channels.
    pub inputs: usize,
    /// Output classes.
    pub classes: usize,
    /// How the weights start before supervised training (`None`: randomly initialised).
    // Left out of the serialised form when absent, so run ids from before the option stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<Pretrain>,
}

impl NetworkSpec {
    /// The model's name in manifests and reports: the architecture, then `+byol` when pre-trained.
    pub fn name(&self) -> String {
        match self.pretrain {
            None => self.architecture.name().to_string(),
            Some(p) => format!("{}+{}", self.architecture.name(), p.name()),
        }
    }

    /// Every problem with the size, as (key, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(1..=256).contains(&self.width) {
            out.push(("width".into(), format!("must be between 1 and 256, got {}", self.width)));
        }
        let max_depth = match self.architecture {
            // Dilation doubles per branch; beyond 6 the rates exceed any sensible image.
            Architecture::Unet | Architecture::Dilated => 6,
            Architecture::Fcn | Architecture::Bnonly | Architecture::Pixel => 32,
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
// One value exists per training run, so the size of the largest variant costs nothing worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// A [`Unet`].
    Unet(Unet),
    /// An [`Fcn`].
    Fcn(Fcn),
    /// A [`Dilated`].
    Dilated(Dilated),
    /// A [`BnOnly`].
    Bnonly(BnOnly),
    /// An [`Fcn`] of 1×1 convolutions ([`Fcn::pointwise`]).
    Pixel(Fcn),
}

impl Network {
    /// A freshly initialised network (parameters stay lazy until first use).
    pub fn new(spec: &NetworkSpec, device: &Device) -> Self {
        match spec.architecture {
            Architecture::Unet => Network::Unet(Unet::new(spec.inputs, spec.classes, spec.width, spec.depth, device)),
            Architecture::Fcn => Network::Fcn(Fcn::new(spec.inputs, spec.classes, spec.width, spec.depth, device)),
            Architecture::Dilated => Network::Dilated(Dilated::new(spec.inputs, spec.classes, spec.width, spec.depth, device)),
            Architecture::Bnonly => Network::Bnonly(BnOnly::new(spec.inputs, spec.classes, spec.width, spec.depth, device)),
            Architecture::Pixel => Network::Pixel(Fcn::pointwise(spec.inputs, spec.classes, spec.width, spec.depth, device)),
        }
    }

    /// The network for inference: inference mode, with BatchNorm folded into the convolutions.
    /// Training it further is not possible; keep the unfused network for that.
    pub fn for_inference(self) -> Self {
        match self.valid() {
            Network::Unet(n) => Network::Unet(n.fused()),
            Network::Fcn(n) => Network::Fcn(n.fused()),
            Network::Dilated(n) => Network::Dilated(n.fused()),
            Network::Bnonly(n) => Network::Bnonly(n.fused()),
            Network::Pixel(n) => Network::Pixel(n.fused()),
        }
    }

    /// Logits and embedding for a batch of images `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> SegmenterOutput {
        match self {
            Network::Unet(n) => n.forward(x),
            Network::Fcn(n) => n.forward(x),
            Network::Dilated(n) => n.forward(x),
            Network::Bnonly(n) => n.forward(x),
            Network::Pixel(n) => n.forward(x),
        }
    }
}

/// One parameter tensor's values, read back for comparisons (determinism, frozen weights, EMA).
#[derive(Clone, Debug, PartialEq)]
pub struct ParameterValues {
    /// burn's stable parameter id (kept across checkpoints).
    pub id: u64,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// Whether the optimiser may change it.
    pub trainable: bool,
    /// The values, row-major.
    pub values: Vec<f32>,
}

impl Network {
    /// Every float parameter's current values, in module order.
    pub fn parameter_values(&self) -> Vec<ParameterValues> {
        struct Collect(Vec<ParameterValues>);
        impl burn::module::ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let tensor = param.val();
                self.0.push(ParameterValues {
                    id: param.id.val(),
                    shape: tensor.dims().to_vec(),
                    trainable: tensor.is_require_grad(),
                    values: tensor.into_data().try_to_vec::<f32>().unwrap_or_default(),
                });
            }
        }
        let mut collect = Collect(Vec::new());
        self.visit(&mut collect);
        collect.0
    }
}
