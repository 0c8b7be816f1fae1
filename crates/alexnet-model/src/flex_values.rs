//! What the flex operations (`conv_op.rs`, `lrn_op.rs`, `pool_op.rs`) do around their kernels:
//! read a 4-D tensor's shape and its values as a slice, and wrap a kernel's result as a tensor.

use burn::backend::TensorMetadata;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Element, TensorData};

/// `[batch, channels, height, width]`.
pub(crate) fn dims(tensor: &FlexTensor) -> [usize; 4] {
    let shape = tensor.shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

/// The values of a contiguous f32 tensor (from `to_contiguous`, after a dtype check).
pub(crate) fn floats(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// The values of a contiguous i32 tensor (from `to_contiguous`, after a dtype check).
pub(crate) fn ints(tensor: &FlexTensor) -> &[i32] {
    tensor.as_slice::<i32>().expect("a contiguous i32 tensor")
}

/// A kernel's result as a tensor of `shape`.
pub(crate) fn tensor<E: Element, const D: usize>(values: Vec<E>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
