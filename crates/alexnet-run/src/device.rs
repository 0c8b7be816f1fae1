//! Devices are configuration (`run.backend`), not a second code path: the model and the loop are
//! the same on every backend.

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("run.backend `{0}` is unknown (expected flex, cuda or wgpu)")]
    Unknown(String),
    #[error("run.backend `{0}` is not in this build: rebuild with `--features {0}`")]
    NotBuilt(String),
}

/// Device number `index` of the backend named `name`, without autodiff. The CPU is one device
/// whatever the index (the ranks of a data-parallel run on one machine share it).
pub fn device(name: &str, index: usize) -> Result<burn::tensor::Device, BackendError> {
    let _ = index; // unused when only flex is built
    match name {
        "flex" => Ok(burn::tensor::Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(burn::tensor::Device::cuda(index)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(burn::tensor::Device::wgpu(match index {
            0 => burn::tensor::DeviceKind::DefaultDevice,
            i => burn::tensor::DeviceKind::DiscreteGpu(i),
        })),
        "cuda" | "wgpu" => Err(BackendError::NotBuilt(name.to_string())),
        other => Err(BackendError::Unknown(other.to_string())),
    }
}
