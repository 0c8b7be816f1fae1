//! Class probabilities: the softmax of the logits, averaged over the views of an image (Section
//! 4.1, "averaging the predictions made by the network's softmax layer on the ten patches") and
//! over the models of an ensemble (Section 6).

use alexnet_data::Batch;
use alexnet_model::AlexNet;
use alexnet_run::batch_images;
use burn::tensor::Device;

/// Row-wise softmax of `[n, classes]` logits, stable against large logits.
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        out.extend(exps.iter().map(|e| e / sum));
    }
    out
}

/// Averages each run of `views` consecutive rows: `[n * views, classes]` -> `[n, classes]`.
pub fn average_views(probabilities: &[f32], classes: usize, views: usize) -> Vec<f32> {
    probabilities
        .chunks_exact(classes * views)
        .flat_map(|group| {
            (0..classes).map(move |c| {
                group.chunks_exact(classes).map(|row| row[c]).sum::<f32>() / views as f32
            })
        })
        .collect()
}

/// `[batch.len(), classes]` probabilities of one model (in evaluation mode), views averaged.
pub fn model_probabilities(model: &AlexNet, batch: &Batch, device: &Device) -> Vec<f32> {
    let logits = model.forward(batch_images(batch, device));
    let [_, classes] = logits.dims();
    let logits = logits
        .into_data()
        .try_to_vec::<f32>()
        .expect("logits are f32");
    average_views(
        &softmax_rows(&logits, classes),
        classes,
        batch.views_per_image,
    )
}

/// The ensemble's probabilities: the mean over its members of each one's view-averaged softmax.
/// Each member sees the same images as its own batch (prepared with its own mean image).
pub fn ensemble_probabilities(members: &[(&AlexNet, &Batch)], device: &Device) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for (model, batch) in members {
        let p = model_probabilities(model, batch, device);
        if sum.is_empty() {
            sum = p;
        } else {
            sum.iter_mut().zip(&p).for_each(|(s, x)| *s += x);
        }
    }
    sum.iter_mut().for_each(|s| *s /= members.len() as f32);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_normalised_and_ordered() {
        let p = softmax_rows(&[1.0, 2.0, 3.0, 1000.0, 1000.0, 0.0], 3);
        assert!((p[0..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[2] - 0.665_240_9).abs() < 1e-6, "e^2 / (1 + e + e^2)");
        assert!((p[3] - 0.5).abs() < 1e-6 && p[5] < 1e-30);
    }

    #[test]
    fn views_are_averaged_in_consecutive_groups() {
        // Two images, two views each, two classes.
        let p = [1.0, 0.0, 0.5, 0.5, 0.2, 0.8, 0.0, 1.0];
        assert_eq!(average_views(&p, 2, 2), vec![0.75, 0.25, 0.1, 0.9]);
    }
}
