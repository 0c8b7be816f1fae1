//! Devices are configuration (`run.backend`), not a second code path: the model and the loop are
//! the same on every backend.

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("run.backend `{0}` is unknown (expected flex, cuda or wgpu)")]
    Unknown(String),
    #[error("run.backend `{0}` is not in this build: rebuild with `--features {0}`")]
    NotBuilt(String),
}

/// The device named `name`, without autodiff.
pub fn device(name: &str) -> Result<burn::tensor::Device, BackendError> {
    match name {
        "flex" => Ok(burn::tensor::Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(burn::tensor::Device::cuda(0)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(burn::tensor::Device::wgpu(
            burn::tensor::DeviceKind::DefaultDevice,
        )),
        "cuda" | "wgpu" => Err(BackendError::NotBuilt(name.to_string())),
        other => Err(BackendError::Unknown(other.to_string())),
    }
}
