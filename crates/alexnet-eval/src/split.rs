//! Which images a checkpoint is evaluated on: a folder of class folders, a split of a prepared
//! data set, or (by default) the validation split of the data set it was trained on. `alexnet
//! eval` and `alexnet report` read their split through this one function.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_data::{
    BadInputPolicy, DataError, DataFormat, DecodedSet, ImageFolder, Manifest, PatchSource,
    load_split,
};
use alexnet_run::recipe::DataRecipe;
use indicatif::ProgressBar;

/// The split `split` (default: the recipe's validation split) of `data` when it is a prepared
/// directory; the folder `data` itself when it is a folder of class folders; without `data`, of
/// the data set the recipe names. Patches are `side` x `side`. Returns where the split was read
/// from (for messages) and its images.
pub fn checkpoint_split(
    recipe: &DataRecipe,
    data: Option<&Path>,
    split: Option<&str>,
    side: usize,
    progress: &ProgressBar,
    policy: BadInputPolicy,
) -> Result<(PathBuf, Arc<dyn PatchSource>), DataError> {
    let split = split.unwrap_or(&recipe.val_split);
    Ok(match data {
        Some(dir) if Manifest::is_prepared(dir) => (
            dir.join(split),
            load_split(DataFormat::Shards, dir, split, side, progress, policy)?,
        ),
        Some(dir) => (
            dir.to_path_buf(),
            Arc::new(DecodedSet::load(
                &ImageFolder::scan(dir)?,
                side,
                progress,
                policy,
            )?),
        ),
        None => (
            recipe.dir.join(split),
            load_split(recipe.format, &recipe.dir, split, side, progress, policy)?,
        ),
    })
}
