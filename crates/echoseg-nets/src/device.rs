//! Device choice: always explicit, never `Device::default()`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::NetsError;

/// The compute backend a study runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// burn-flex on the CPU (always available).
    #[default]
    Flex,
    /// burn-wgpu on a GPU (needs the `wgpu` cargo feature and an adapter).
    Wgpu,
}

impl DeviceChoice {
    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::Wgpu => "wgpu",
        }
    }

    /// Parses a command-line or manifest name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "flex" => Some(DeviceChoice::Flex),
            "wgpu" => Some(DeviceChoice::Wgpu),
            _ => None,
        }
    }

    /// Opens the device, or says in one line why it cannot be used and what to do.
    pub fn open(self) -> Result<Device, NetsError> {
        match self {
            DeviceChoice::Flex => Ok(Device::flex()),
            DeviceChoice::Wgpu => open_wgpu(),
        }
    }
}

#[cfg(feature = "wgpu")]
fn open_wgpu() -> Result<Device, NetsError> {
    use burn::tensor::{DeviceKind, Tensor};
    // wgpu panics on first use when no adapter exists; probe once and turn that into an error.
    let probe = std::panic::catch_unwind(|| {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let sum = Tensor::<1>::ones([4], &device).sum().into_scalar::<f32>();
        (device, sum)
    });
    match probe {
        Ok((device, sum)) if (sum - 4.0).abs() < 1e-6 => Ok(device),
        _ => Err(NetsError::DeviceUnavailable(
            "no usable GPU adapter found for --device wgpu; use --device flex (CPU) or check the GPU driver (Vulkan/Metal)".into(),
        )),
    }
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu() -> Result<Device, NetsError> {
    Err(NetsError::DeviceUnavailable(
        "this echoseg was built without GPU support; rebuild with `cargo build --release --features wgpu` or use --device flex".into(),
    ))
}
