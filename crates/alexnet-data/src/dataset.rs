//! A split held in memory as square uint8 patches: decoded once, augmented every epoch.
//!
//! Imagenette's 9,469 training images at 256x256 take 1.9 GB; CIFAR-10's 50,000 at 32x32, 150 MB.

use std::path::PathBuf;

use indicatif::ProgressBar;
use rayon::prelude::*;

use std::borrow::Cow;

use crate::bad_input::{BadInputPolicy, SkippedFile};
use crate::decode::{load_square_patch, rescale_patch};
use crate::error::DataError;
use crate::image_folder::ImageFolder;
use crate::patch_source::PatchSource;

#[derive(Debug, Clone)]
pub struct DecodedSet {
    /// Side of every patch.
    pub side: usize,
    /// `[len, side, side, 3]` RGB bytes.
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    pub paths: Vec<PathBuf>,
    /// Files left out as bad input.
    pub skipped: Vec<SkippedFile>,
}

impl DecodedSet {
    /// Decodes every file of `folder` on all cores. A file that cannot be read or decoded is
    /// skipped and listed in `skipped`, or is an error naming it under [`BadInputPolicy::Strict`].
    pub fn load(
        folder: &ImageFolder,
        side: usize,
        progress: &ProgressBar,
        policy: BadInputPolicy,
    ) -> Result<Self, DataError> {
        let mut skipped = Vec::new();
        for dir in &folder.empty_classes {
            policy.handle::<()>(Err(DataError::EmptyClass(dir.clone())), &mut skipped)?;
        }
        progress.set_length(folder.files.len() as u64);
        // Each patch is decoded straight into its slot: no second copy of the whole set.
        let patch_size = side * side * 3;
        let mut pixels = vec![0u8; folder.files.len() * patch_size];
        let results: Vec<Result<(), DataError>> = pixels
            .par_chunks_mut(patch_size)
            .zip(&folder.files)
            .map(|(slot, file)| {
                let patch = load_square_patch(&file.path, side);
                progress.inc(1);
                slot.copy_from_slice(&patch?);
                Ok(())
            })
            .collect();
        progress.finish_and_clear();
        // Keep the good patches in file order, moving each down over the gaps the bad ones left.
        let mut kept = 0;
        let mut labels = Vec::new();
        let mut paths = Vec::new();
        for (index, (result, file)) in results.into_iter().zip(&folder.files).enumerate() {
            if policy.handle(result, &mut skipped)?.is_some() {
                if kept != index {
                    pixels.copy_within(
                        index * patch_size..(index + 1) * patch_size,
                        kept * patch_size,
                    );
                }
                kept += 1;
                labels.push(file.label);
                paths.push(file.path.clone());
            }
        }
        if kept == 0 {
            return Err(DataError::NothingLeft(folder.root.clone()));
        }
        pixels.truncate(kept * patch_size);
        Ok(Self {
            side,
            pixels,
            labels,
            class_names: folder.class_names.clone(),
            paths,
            skipped,
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
            skipped: Vec::new(),
        }
    }

    /// Every patch rescaled to `side` x `side` (bilinear); the set itself when it already is.
    pub fn resized(self, side: usize) -> Self {
        if side == self.side {
            return self;
        }
        let from = self.side;
        let pixels = self
            .pixels
            .par_chunks(from * from * 3)
            .flat_map_iter(|patch| rescale_patch(patch, from, side))
            .collect();
        Self {
            side,
            pixels,
            ..self
        }
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

impl PatchSource for DecodedSet {
    fn side(&self) -> usize {
        self.side
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn patch(&self, index: usize) -> Result<Cow<'_, [u8]>, DataError> {
        Ok(Cow::Borrowed(DecodedSet::patch(self, index)))
    }
    fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
    }
    fn name(&self, index: usize) -> String {
        self.paths[index].display().to_string()
    }
}
