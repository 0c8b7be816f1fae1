//! A split held in memory as square uint8 patches: decoded once, augmented every epoch.
//!
//! Imagenette's 9,469 training images at 256x256 take 1.9 GB; CIFAR-10's 50,000 at 32x32, 150 MB.

use std::path::PathBuf;

use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::decode::{load_square_patch, square_patch};
use crate::error::DataError;
use crate::formats::{DataFormat, cifar, idx, is_training_split};
use crate::image_folder::ImageFolder;

#[derive(Debug, Clone)]
pub struct DecodedSet {
    /// Side of every patch.
    pub side: usize,
    /// `[len, side, side, 3]` RGB bytes.
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    pub paths: Vec<PathBuf>,
}

impl DecodedSet {
    /// Decodes every file of `folder` on all cores. The first file that cannot be read or decoded
    /// is an error naming it.
    pub fn load(
        folder: &ImageFolder,
        side: usize,
        progress: &ProgressBar,
    ) -> Result<Self, DataError> {
        progress.set_length(folder.files.len() as u64);
        // Each patch is decoded straight into its slot: no second copy of the whole set.
        let patch_size = side * side * 3;
        let mut pixels = vec![0u8; folder.files.len() * patch_size];
        pixels
            .par_chunks_mut(patch_size)
            .zip(&folder.files)
            .try_for_each(|(slot, file)| {
                slot.copy_from_slice(&load_square_patch(&file.path, side)?);
                progress.inc(1);
                Ok::<(), DataError>(())
            })?;
        progress.finish_and_clear();
        Ok(Self {
            side,
            pixels,
            labels: folder.files.iter().map(|f| f.label).collect(),
            class_names: folder.class_names.clone(),
            paths: folder.files.iter().map(|f| f.path.clone()).collect(),
        })
    }

    /// Builds a set from patches already in memory (tests, other formats).
    pub fn from_patches(
        side: usize,
        pixels: Vec<u8>,
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * side * side * 3,
            "pixels and labels disagree"
        );
        let paths = (0..labels.len())
            .map(|i| PathBuf::from(format!("#{i}")))
            .collect();
        Self {
            side,
            pixels,
            labels,
            class_names,
            paths,
        }
    }

    /// Every patch rescaled to `side` x `side` (bilinear); the set itself when it already is.
    pub fn resized(self, side: usize) -> Self {
        if side == self.side {
            return self;
        }
        let from = self.side as u32;
        let pixels = self
            .pixels
            .par_chunks(self.side * self.side * 3)
            .flat_map_iter(|patch| {
                let image =
                    image::RgbImage::from_raw(from, from, patch.to_vec()).expect("a whole patch");
                square_patch(image, side).into_raw()
            })
            .collect();
        Self {
            side,
            pixels,
            ..self
        }
    }

    /// Checks that this split (read from `origin`) has exactly the classes `expected`, in order:
    /// a validation split against its training split, or a split against a checkpoint.
    pub fn expect_classes(
        &self,
        expected: &[String],
        origin: &std::path::Path,
    ) -> Result<(), DataError> {
        if self.class_names != expected {
            return Err(DataError::ClassMismatch {
                path: origin.to_path_buf(),
                found: self.class_names.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `[side, side, 3]` bytes of image `index`.
    pub fn patch(&self, index: usize) -> &[u8] {
        let size = self.side * self.side * 3;
        &self.pixels[index * size..(index + 1) * size]
    }
}

/// Split `split` of the data set in `dir` stored as `format`, as square patches of side `side`.
/// For an image folder the split is the sub-folder `dir/split`; the binary formats have a training
/// split (`train`) and a test split (any other name).
pub fn load_split(
    format: DataFormat,
    dir: &std::path::Path,
    split: &str,
    side: usize,
    progress: &ProgressBar,
) -> Result<DecodedSet, DataError> {
    let set = match format {
        DataFormat::ImageFolder => {
            return DecodedSet::load(&ImageFolder::scan(&dir.join(split))?, side, progress);
        }
        DataFormat::Cifar => cifar::load(dir, is_training_split(split))?,
        DataFormat::Idx => idx::load(dir, is_training_split(split))?,
    };
    Ok(set.resized(side))
}
