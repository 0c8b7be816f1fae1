//! The data side of the paper (Sections 2 and 4.1): images on disk become 256x256 patches in memory,
//! their mean image and RGB principal components are computed once, and training batches are random
//! 224x224 crops with reflections and PCA colour noise, built on worker threads ahead of the step.
//!
//! Flow: [`image_folder`] (which files, which labels) -> [`decode`] (file -> square patch) ->
//! [`dataset`] (all patches in memory) or [`shards`] (patches prepared once, read in place), both a
//! [`source::PatchSource`] -> [`stats`] (mean image, PCA) -> [`augment`] (one view of one patch) ->
//! [`loader`] (batches, prefetched). [`bad_input`] says what happens to files that cannot be used.

pub mod atomic;
pub mod augment;
pub mod bad_input;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod formats;
pub mod image_folder;
pub mod loader;
pub mod progress;
pub mod shards;
pub mod source;
pub mod stats;
pub mod tensor_file;

pub use atomic::{link_atomic, write_atomic};
pub use augment::{CropPosition, View, ten_crop_views};
pub use bad_input::{BadInputPolicy, SkippedFile, skipped_lines, write_report};
pub use dataset::{DecodedSet, load_split};
pub use error::DataError;
pub use formats::DataFormat;
pub use image_folder::{ImageFolder, LabelledFile};
pub use loader::{Batch, BatchLoader, ViewPlan};
pub use progress::progress_bar;
pub use shards::{Manifest, PatchEncoding, PrepareOptions, PrepareSummary, ShardSet, SourceFormat};
pub use source::PatchSource;
pub use stats::DatasetStats;
pub use tensor_file::{NamedTensor, read_tensors, write_tensors};
