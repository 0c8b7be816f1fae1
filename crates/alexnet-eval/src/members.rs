//! An ensemble's members (Section 6: "averaging the predictions of five similar CNNs"): each
//! checkpoint's model with a loader over the same split, cut to its own crop and normalised with
//! its own training statistics. The split is decoded once for each patch side the members need.

use std::path::PathBuf;
use std::sync::Arc;

use alexnet_data::{BatchLoader, DataError, PatchSource, ViewPlan};
use alexnet_model::AlexNet;
use alexnet_run::{Checkpoint, CheckpointError, model_from_checkpoint};
use burn::tensor::Device;

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("{path}: {source}")]
    Checkpoint {
        path: PathBuf,
        source: CheckpointError,
    },
    #[error(transparent)]
    Data(#[from] DataError),
}

/// The members, and where the split was read from. `load_set(side)` reads the split at patch side
/// `side`; it is called once for each side.
pub fn ensemble_members(
    checkpoints: &[(PathBuf, Checkpoint)],
    device: &Device,
    plan: ViewPlan,
    batch_size: usize,
    mut load_set: impl FnMut(usize) -> Result<(PathBuf, Arc<dyn PatchSource>), DataError>,
) -> Result<(Vec<(AlexNet, BatchLoader)>, PathBuf), MemberError> {
    let mut members = Vec::new();
    // Each side read so far: (side, where it was read from, the set).
    let mut decoded: Vec<(usize, PathBuf, Arc<dyn PatchSource>)> = Vec::new();
    for (path, checkpoint) in checkpoints {
        let model = model_from_checkpoint(checkpoint, device).map_err(|source| {
            MemberError::Checkpoint {
                path: path.clone(),
                source,
            }
        })?;
        let side = checkpoint.recipe.data.resize;
        let set = match decoded.iter().find(|(s, _, _)| *s == side) {
            Some((_, _, set)) => set.clone(),
            None => {
                let (origin, set) = load_set(side)?;
                decoded.push((side, origin, set.clone()));
                set
            }
        };
        let crop = checkpoint.recipe.model.input_size();
        let loader = BatchLoader::new(
            set,
            Arc::new(checkpoint.stats.clone()),
            crop,
            batch_size,
            plan,
            0,
        )?;
        members.push((model, loader));
    }
    let origin = decoded
        .into_iter()
        .next()
        .map(|(_, origin, _)| origin)
        .unwrap_or_default();
    Ok((members, origin))
}
