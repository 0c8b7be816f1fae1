//! A loader's batch (plain `Vec<f32>` from the data crate, which has no tensors) as the model's
//! input: the one place a batch becomes tensors, for training, evaluation, features and benchmarks.

use alexnet_data::Batch;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// The batch's images (every view), `[views, 3, crop, crop]`, on `device`.
pub fn batch_images(batch: &Batch, device: &Device) -> Tensor<4> {
    images_tensor(batch.images.clone(), batch.shape(), device)
}

/// The batch's labels as class indices, `[len]`, on `device`.
pub fn batch_targets(batch: &Batch, device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(labels, [batch.len()]), device)
}

/// Images and labels of a training batch, its pixels moved rather than copied (77 MB for the
/// paper's batch of 128).
pub fn batch_tensors(mut batch: Batch, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let targets = batch_targets(&batch, device);
    let shape = batch.shape();
    (
        images_tensor(std::mem::take(&mut batch.images), shape, device),
        targets,
    )
}

fn images_tensor(pixels: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(pixels, shape), device)
}
