//! The data side of the paper (Sections 2 and 4.1): images on disk become 256x256 patches in memory,
//! their mean image and RGB principal components are computed once, and training batches are random
//! 224x224 crops with reflections and PCA colour noise, built on worker threads ahead of the step.
//!
//! Flow, each step importing only those before it:
//!
//! - [`image_folder`] (which files, which labels), [`decode`] (file -> square patch),
//!   [`dataset`] (patches in memory);
//! - [`formats`]: the layouts a data set comes in (CIFAR and IDX binaries, ILSVRC-2012), and
//!   [`formats::DataFormat`], the one name for a layout;
//! - [`sources`]: any layout as the classes and splits `prepare` reads;
//! - [`shards`]: sources prepared into packed shards, and read back in place;
//! - [`split`]: a split of any format as a [`patch_source::PatchSource`];
//! - [`stats`] (mean image, PCA) -> [`augment`] (one view of one patch), [`shuffle`] (an epoch's
//!   order) -> [`loader`] (batches, prefetched).
//!
//! [`bad_input`] says what happens to files that cannot be used.

pub mod atomic;
pub mod augment;
pub mod bad_input;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod formats;
pub mod image_folder;
pub mod loader;
pub mod lock;
pub mod mutate;
pub mod patch_source;
pub mod progress;
pub mod shards;
pub mod shuffle;
pub mod sources;
pub mod split;
pub mod stats;
pub mod tensor_file;

pub use atomic::{StagedFile, link_atomic, remove_temporaries, write_atomic};
pub use augment::{CropPosition, View, ten_crop_views};
pub use bad_input::{BadInputPolicy, SkippedFile, skipped_lines, write_report};
pub use dataset::DecodedSet;
pub use error::DataError;
pub use formats::DataFormat;
pub use image_folder::{ImageFolder, LabelledFile, LabelledSplit};
pub use loader::{Batch, BatchLoader, TestViews, ViewPlan};
pub use lock::DirLock;
pub use patch_source::{PatchSource, with_classes_of};
pub use progress::progress_bar;
pub use shards::{Manifest, PatchEncoding, PrepareOptions, PrepareSummary, ShardSet};
pub use shuffle::Shuffle;
pub use sources::{Source, scan_source};
pub use split::load_split;
pub use stats::DatasetStats;
pub use tensor_file::{NamedTensor, read_metadata, read_tensors, write_tensors};
