//! Named f32 tensors in a safetensors file, with string metadata: the format of `stats.safetensors`
//! here and of checkpoints in alexnet-run. Written atomically.
//!
//! Integrity: the metadata key `checksums` holds the CRC-32 of every tensor's stored bytes (JSON,
//! by tensor name), written with the file and verified when it is read, so a flipped bit names
//! its tensor instead of loading as a slightly different network; and a tensor holding NaN or an
//! infinity is refused, naming it. Files written before checksums existed (no `checksums` key)
//! are read unverified.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::atomic::write_atomic;
use crate::error::DataError;

/// The metadata key of the tensors' CRC-32 checksums.
const CHECKSUMS: &str = "checksums";

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

/// The metadata of the safetensors file at `path`, read from its header alone (a few KB, where
/// the tensors may be hundreds of MB); not verified against the tensors.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, DataError> {
    use std::io::Read;
    let unreadable = |reason: String| DataError::NotTensors {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| DataError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|e| unreadable(e.to_string()))?;
    let header_length = u64::from_le_bytes(length);
    // safetensors' own bound on a header: a damaged length cannot ask for gigabytes.
    if header_length > 100_000_000 {
        return Err(unreadable(format!("a header of {header_length} bytes")));
    }
    let mut bytes = length.to_vec();
    file.take(header_length)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..]).map_err(|e| unreadable(e.to_string()))?;
    serde_json::from_value(header["__metadata__"].clone()).map_err(|e| unreadable(e.to_string()))
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
    let checksums: BTreeMap<&str, u32> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, _, _), bytes)| (name.as_str(), crc32fast::hash(bytes)))
        .collect();
    let mut metadata = metadata;
    metadata.insert(
        CHECKSUMS.to_string(),
        serde_json::to_string(&checksums).expect("checksums serialize"),
    );
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

/// The metadata and tensors of safetensors `bytes` (all tensors must be f32, finite, and match
/// their checksums when the file has them).
pub fn tensors_from_bytes(
    bytes: &[u8],
) -> Result<(HashMap<String, String>, Vec<NamedTensor>), String> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let checksums: Option<HashMap<String, u32>> = metadata
        .remove(CHECKSUMS)
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| format!("its metadata `{CHECKSUMS}` cannot be read: {e}"))?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            if view.dtype() != Dtype::F32 {
                return Err(format!("tensor {name} is not f32"));
            }
            if let Some(checksums) = &checksums {
                match checksums.get(&name) {
                    Some(&sum) if sum == crc32fast::hash(view.data()) => {}
                    Some(_) => {
                        return Err(format!(
                            "tensor {name} does not match its checksum: the file is corrupt"
                        ));
                    }
                    None => return Err(format!("tensor {name} has no checksum")),
                }
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                return Err(format!(
                    "tensor {name} holds {} at index {index}: not a usable network",
                    values[index]
                ));
            }
            Ok(NamedTensor {
                name,
                shape: view.shape().to_vec(),
                values,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((metadata, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_tensors(second: f32) -> Vec<u8> {
        let (a, b) = (vec![1.0f32, 2.0, 3.0], vec![0.5f32, second]);
        tensors_to_bytes(
            &[("a".into(), &[3], &a), ("b".into(), &[2], &b)],
            HashMap::from([("format".into(), "test".into())]),
        )
        .unwrap()
    }

    #[test]
    fn a_flipped_bit_or_a_nan_is_refused_naming_its_tensor() {
        let bytes = two_tensors(-4.0);
        let (metadata, tensors) = tensors_from_bytes(&bytes).unwrap();
        assert_eq!(metadata.get("format").map(String::as_str), Some("test"));
        assert!(
            !metadata.contains_key(CHECKSUMS),
            "checksums are checked, not passed on"
        );
        assert_eq!(tensors.len(), 2);

        // The data section is the end of the file: its last byte is the last of tensor b.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x01;
        let err = tensors_from_bytes(&flipped).unwrap_err();
        assert!(
            err.contains("tensor b") && err.contains("checksum"),
            "{err}"
        );

        let err = tensors_from_bytes(&two_tensors(f32::NAN)).unwrap_err();
        assert!(err.contains("tensor b") && err.contains("NaN"), "{err}");

        // A file from before checksums: read, unverified (but still checked for finite values).
        let values = [1.0f32, f32::INFINITY];
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![2], &raw).unwrap();
        let old = safetensors::serialize([("c".to_string(), view)], None).unwrap();
        let err = tensors_from_bytes(&old).unwrap_err();
        assert!(err.contains("tensor c") && err.contains("inf"), "{err}");
    }
}
