//! A split of a data set as the loader reads it, whatever its format: decoded into memory
//! ([`DecodedSet`]) or read in place from shards ([`ShardSet`]).

use std::sync::Arc;

use indicatif::ProgressBar;

use crate::bad_input::BadInputPolicy;
use crate::dataset::DecodedSet;
use crate::error::DataError;
use crate::formats::{DataFormat, cifar, idx, is_training_split};
use crate::image_folder::ImageFolder;
use crate::patch_source::PatchSource;
use crate::shards::ShardSet;

/// Split `split` of the data set in `dir` stored as `format`, as square patches of side `side`.
/// For an image folder the split is the sub-folder `dir/split`; prepared shards are read in place
/// (and must have been prepared at `side`); the binary formats have a training split (`train`) and
/// a test split (any other name).
pub fn load_split(
    format: DataFormat,
    dir: &std::path::Path,
    split: &str,
    side: usize,
    progress: &ProgressBar,
    policy: BadInputPolicy,
) -> Result<Arc<dyn PatchSource>, DataError> {
    let set = match format {
        DataFormat::ImageFolder => {
            let folder = ImageFolder::scan(&dir.join(split))?;
            return Ok(Arc::new(DecodedSet::load(&folder, side, progress, policy)?));
        }
        DataFormat::Shards => {
            let shards = ShardSet::open(dir, split)?;
            if shards.side() != side {
                return Err(DataError::SideMismatch {
                    dir: dir.to_path_buf(),
                    stored: shards.side(),
                    wanted: side,
                });
            }
            return Ok(Arc::new(shards));
        }
        DataFormat::Cifar => cifar::load(dir, is_training_split(split))?,
        DataFormat::Idx => idx::load(dir, is_training_split(split))?,
        DataFormat::Ilsvrc => return Err(DataError::PrepareFirst(dir.to_path_buf())),
    };
    Ok(Arc::new(set.resized(side)))
}
