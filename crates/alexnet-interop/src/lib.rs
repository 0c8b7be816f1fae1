//! Weights that travel between this project and the tools around it:
//!
//! - [`torch_names`]: our parameter paths and the names PyTorch gives the same network
//!   (torchvision's, for `alexnet-owt`);
//! - [`pytorch`]: PyTorch state dicts in (`.pth` parsed, never run; `.safetensors`) and out;
//! - [`onnx`]: an ONNX graph of any of our networks.

pub mod onnx;
pub mod pytorch;
pub mod torch_names;

/// The ONNX protobuf types, generated at build time from `proto/onnx.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use onnx::onnx_model;
pub use pytorch::{ImportOptions, InteropError, Preprocess, export_state_dict, import_state_dict};
pub use torch_names::{TorchLayer, torch_layers};
