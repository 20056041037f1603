//! What the kernels' tests share.

use burn::module::Param;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor, TensorData};

/// A BatchNorm layer whose scale (either sign) and shift put ReLU's threshold inside the values:
/// `sin(c · 0.37 + 0.3) · 1.5` and `sin(c · 0.37 + 1.1) · 0.8` per channel c, as
/// `bench/torch_kernels_reference.py` builds them.
pub fn ramped_norm(channels: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(channels).init(device);
    let ramp = |scale: f32, offset: f32| {
        let values: Vec<f32> = (0..channels).map(|c| (c as f32 * 0.37 + offset).sin() * scale).collect();
        Tensor::<1>::from_data(TensorData::new(values, [channels]), device)
    };
    norm.gamma = Param::from_tensor(ramp(1.5, 0.3));
    norm.beta = Param::from_tensor(ramp(0.8, 1.1));
    norm
}
