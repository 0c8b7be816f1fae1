//! Named f32 tensors in a safetensors file, with string metadata: the format of `stats.safetensors`
//! here and of checkpoints in alexnet-train. Written atomically.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::atomic::write_atomic;
use crate::error::DataError;

/// A tensor by name, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// What [`write_tensors`] takes, stored as `<prefix>.<name>` (or `<name>` without a prefix).
    pub fn borrowed(&self, prefix: &str) -> (String, &[usize], &[f32]) {
        let name = if prefix.is_empty() {
            self.name.clone()
        } else {
            format!("{prefix}.{}", self.name)
        };
        (name, &self.shape, &self.values)
    }
}

/// Writes `tensors` (name, shape, values; borrowed, so a checkpoint's weights are not copied
/// twice) and `metadata` to `path`, atomically.
pub fn write_tensors(
    path: &Path,
    tensors: &[(String, &[usize], &[f32])],
    metadata: HashMap<String, String>,
) -> Result<(), DataError> {
    let file = tensors_to_bytes(tensors, metadata).map_err(|reason| DataError::Write {
        path: path.to_path_buf(),
        reason,
    })?;
    write_atomic(path, &file)
}

/// Reads what [`write_tensors`] wrote: the metadata and every tensor (all must be f32).
pub fn read_tensors(path: &Path) -> Result<(HashMap<String, String>, Vec<NamedTensor>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    tensors_from_bytes(&bytes).map_err(|reason| DataError::NotTensors {
        path: path.to_path_buf(),
        reason,
    })
}

/// The safetensors bytes of `tensors` and `metadata` (what [`write_tensors`] writes, and what a
/// data-parallel run sends its peers).
pub fn tensors_to_bytes(
    tensors: &[(String, &[usize], &[f32])],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), bytes)| {
            TensorView::new(Dtype::F32, shape.to_vec(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// The metadata and tensors of safetensors `bytes` (all tensors must be f32).
pub fn tensors_from_bytes(
    bytes: &[u8],
) -> Result<(HashMap<String, String>, Vec<NamedTensor>), String> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            if view.dtype() != Dtype::F32 {
                return Err(format!("tensor {name} is not f32"));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok(NamedTensor {
                name,
                shape: view.shape().to_vec(),
                values,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((metadata, tensors))
}
