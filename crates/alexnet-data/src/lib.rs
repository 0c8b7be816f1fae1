//! The data side of the paper (Sections 2 and 4.1): images on disk become 256x256 patches in memory,
//! their mean image and RGB principal components are computed once, and training batches are random
//! 224x224 crops with reflections and PCA colour noise, built on worker threads ahead of the step.
//!
//! Flow: [`image_folder`] (which files, which labels) -> [`decode`] (file -> square patch) ->
//! [`dataset`] (all patches in memory) -> [`stats`] (mean image, PCA) -> [`augment`] (one view of one
//! patch) -> [`loader`] (batches, prefetched).

pub mod augment;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod formats;
pub mod image_folder;
pub mod loader;
pub mod stats;

pub use augment::{CropPosition, View, ten_crop_views};
pub use dataset::{DecodedSet, load_split};
pub use error::DataError;
pub use formats::DataFormat;
pub use image_folder::{ImageFolder, LabelledFile};
pub use loader::{Batch, BatchLoader, ViewPlan};
pub use stats::DatasetStats;
