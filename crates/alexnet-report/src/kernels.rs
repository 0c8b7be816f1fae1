//! The report's Figure 3: the conv1 kernel grids of a checkpoint, one per tower.

use std::path::Path;

use alexnet_run::Checkpoint;

use crate::canvas::save_picture;
use crate::error::ReportError;
use crate::filters::Kernels;
use crate::page::{KernelGrid, KernelSection};

/// The conv1 kernel grids, one per tower.
pub fn kernel_section(
    checkpoint: &Checkpoint,
    staging: &Path,
) -> Result<KernelSection, ReportError> {
    let weights = checkpoint
        .weights
        .iter()
        .find(|t| t.name == "features.0.conv.weight")
        .ok_or_else(|| {
            ReportError::Checkpoint(alexnet_run::CheckpointError::Mismatch(
                "no first-layer weights (features.0.conv.weight)".into(),
            ))
        })?;
    let kernels = Kernels::new(&weights.values, &weights.shape).ok_or_else(|| {
        ReportError::Checkpoint(alexnet_run::CheckpointError::Mismatch(format!(
            "features.0.conv.weight has shape {:?}, not [kernels, 3, k, k]",
            weights.shape
        )))
    })?;
    // A layer split in towers (conv2 grouped) takes the first half of conv1's maps into one
    // tower and the second half into the other (Section 3.2).
    let towers = checkpoint.recipe.model.towers().max(1);
    let per_tower = kernels.count / towers;
    // Tiles about 4 pixels per weight for 11x11 kernels, more for small ones.
    let scale = (48 / kernels.side as u32).clamp(2, 8);
    let mut grids = Vec::new();
    for tower in 0..towers {
        let range = tower * per_tower..(tower + 1) * per_tower;
        let grid = kernels.grid(range.clone(), 8, scale);
        let file = format!("conv1-tower{}.png", tower + 1);
        grids.push(KernelGrid {
            name: if towers > 1 {
                format!("tower {}", tower + 1)
            } else {
                "conv1".into()
            },
            first: range.start + 1,
            last: range.end,
            colour_share: format!("{:.2}", kernels.mean_colour_share(range)),
            picture: save_picture(&grid, staging, &file)?,
        });
    }
    Ok(KernelSection {
        count: kernels.count,
        side: kernels.side,
        grids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint of the paper's two-tower net whose first kernel is a known pattern: a green
    /// diagonal on black (green 1 where y = x, every other weight 0).
    fn patterned_checkpoint() -> Checkpoint {
        use alexnet_model::{AlexNet, Arch, ModelConfig};
        use alexnet_run::checkpoint::named_params;
        let device = burn::tensor::Device::flex();
        let recipe = alexnet_run::Recipe {
            model: ModelConfig::new(Arch::Alexnet, 3),
            ..Default::default()
        };
        let model = AlexNet::new(&recipe.model, &device).unwrap();
        let mut weights = named_params(&model);
        let conv1 = weights
            .iter_mut()
            .find(|t| t.name == "features.0.conv.weight")
            .unwrap();
        assert_eq!(conv1.shape, [96, 3, 11, 11]);
        conv1.values[..3 * 121].fill(0.0);
        for d in 0..11 {
            conv1.values[121 + d * 11 + d] = 1.0;
        }
        Checkpoint {
            recipe,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            progress: alexnet_run::Progress {
                epochs_done: 1,
                step: 1,
                schedule: alexnet_run::LrSchedule::new(0.01),
                wall_seconds: 1.0,
            },
            weights,
            velocities: Vec::new(),
            stats: alexnet_data::DatasetStats {
                side: 1,
                mean_image: vec![0.0; 3],
                eigenvalues: [1.0; 3],
                eigenvectors: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                input_scale: [1.0; 3],
            },
        }
    }

    #[test]
    fn a_checkpoints_first_kernel_is_drawn_as_its_pattern_one_grid_per_tower() {
        let dir = std::env::temp_dir().join(format!("alexnet-kernels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let section = kernel_section(&patterned_checkpoint(), &dir).unwrap();
        // Two towers of 48 kernels (Section 3.2).
        assert_eq!(section.grids.len(), 2);
        assert_eq!((section.grids[1].first, section.grids[1].last), (49, 96));
        let grid = image::open(dir.join(&section.grids[0].picture.file))
            .unwrap()
            .to_rgb8();
        assert_eq!(
            (grid.width(), grid.height()),
            (
                section.grids[0].picture.width,
                section.grids[0].picture.height
            )
        );
        // 11x11 kernels are drawn 4 pixels a weight, after a 4-pixel gap.
        let pixel = |x: u32, y: u32| grid.get_pixel(4 + 4 * x + 1, 4 + 4 * y + 1).0;
        for d in 0..11 {
            assert_eq!(pixel(d, d), [0, 255, 0], "the diagonal is pure green");
        }
        assert_eq!(pixel(3, 7), [0, 0, 0]);
        assert_eq!(pixel(10, 0), [0, 0, 0]);
        assert_eq!(section.grids[0].colour_share.len(), 4, "two decimals");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
