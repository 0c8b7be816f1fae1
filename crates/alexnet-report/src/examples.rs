//! The validation images a report shows (some right, some wrong, chosen by a seed), as
//! thumbnails, and their last hidden layer for the neighbour search.

use std::sync::Arc;

use alexnet_data::PatchSource;
use alexnet_eval::{EvalReport, ImageOutcome};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::error::ReportError;
use crate::neighbours::patch_features;

/// `[side, side, 3]` bytes as a picture `size` pixels wide (nearest neighbour when enlarging, so
/// CIFAR's 32x32 images stay sharp-edged; a smooth filter when shrinking).
pub fn thumbnail(patch: &[u8], side: usize, size: u32) -> image::RgbImage {
    let image = image::RgbImage::from_raw(side as u32, side as u32, patch.to_vec())
        .expect("a patch is side x side x 3");
    let filter = if size >= side as u32 {
        image::imageops::FilterType::Nearest
    } else {
        image::imageops::FilterType::Triangle
    };
    image::imageops::resize(&image, size, size, filter)
}

/// `examples` images: about half wrong, half right (as many as there are of each), in a seeded
/// random choice; the right ones first.
pub fn choose_examples(outcomes: &[ImageOutcome], examples: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut right, mut wrong): (Vec<usize>, Vec<usize>) =
        (0..outcomes.len()).partition(|&i| outcomes[i].is_right());
    right.shuffle(&mut rng);
    wrong.shuffle(&mut rng);
    let wanted_wrong = examples.div_ceil(2).min(wrong.len());
    let wanted_right = (examples - wanted_wrong).min(right.len());
    let wanted_wrong = (examples - wanted_right).min(wrong.len());
    right.truncate(wanted_right);
    wrong.truncate(wanted_wrong);
    right.into_iter().chain(wrong).collect()
}

/// The last hidden layer of the chosen validation images' centre crops, row after row.
pub fn query_features(
    split: &Arc<dyn PatchSource>,
    chosen: &[usize],
    evaluation: &EvalReport,
    model: &alexnet_model::AlexNet,
    stats: &Arc<alexnet_data::DatasetStats>,
    crop: usize,
    device: &burn::tensor::Device,
) -> Result<Vec<f32>, ReportError> {
    let mut pixels = Vec::new();
    for &i in chosen {
        pixels.extend_from_slice(&split.patch(evaluation.outcomes[i].index)?);
    }
    Ok(patch_features(model, stats, crop, split.side(), pixels, device)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(index: usize, label: usize, best: usize) -> ImageOutcome {
        ImageOutcome {
            index,
            label,
            top: vec![(best, 0.9), ((best + 1) % 3, 0.1)],
        }
    }

    #[test]
    fn examples_mix_right_and_wrong_and_follow_the_seed() {
        let outcomes: Vec<_> = (0..20)
            .map(|i| outcome(i, i % 3, if i < 5 { (i + 1) % 3 } else { i % 3 }))
            .collect();
        let chosen = choose_examples(&outcomes, 6, 7);
        assert_eq!(chosen.len(), 6);
        let wrong = chosen.iter().filter(|&&i| !outcomes[i].is_right()).count();
        assert_eq!(wrong, 3);
        assert_eq!(chosen, choose_examples(&outcomes, 6, 7), "seeded");
        assert_ne!(
            chosen,
            choose_examples(&outcomes, 6, 8),
            "another seed, another choice"
        );
        // Only 5 wrong: asking for 12 gives all 5 wrong and 7 right.
        let chosen = choose_examples(&outcomes, 12, 1);
        assert_eq!(
            chosen.iter().filter(|&&i| !outcomes[i].is_right()).count(),
            5
        );
        assert_eq!(chosen.len(), 12);
    }
}
