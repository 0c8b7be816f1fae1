//! Data sets that come as binary files rather than image folders. Each reader returns a
//! [`DecodedSet`](crate::DecodedSet) of square RGB patches at the set's own size.
//!
//! - [`cifar`]: the CIFAR-10 and CIFAR-100 binary versions.
//! - [`idx`]: MNIST-style IDX files (MNIST, Fashion-MNIST), gzip-compressed or not.
//! - [`ilsvrc`]: the ILSVRC-2012 train/val layout with its devkit labels (read by `prepare`).
//! - [`mat5`]: the little of the MAT-file format the devkit's `meta.mat` needs.

pub mod cifar;
pub mod idx;
pub mod ilsvrc;
pub mod mat5;

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// How a data set is stored on disk: `data.format` in a recipe, `--format` of `prepare`. Training
/// reads all but ILSVRC-2012 directly; `prepare` reads all but shards (its own output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// `<dir>/<split>/<class>/<image>` (or, for `prepare`, `<dir>/<class>/<image>` as `train`).
    #[default]
    ImageFolder,
    /// ILSVRC-2012: `train/<wnid>/*.JPEG` and a flat `val/` labelled by the devkit or
    /// `LOC_val_solution.csv`.
    Ilsvrc,
    /// `data_batch_*.bin` / `test_batch.bin` (CIFAR-10) or `train.bin` / `test.bin` (CIFAR-100).
    Cifar,
    /// `train-images-idx3-ubyte[.gz]` and friends (MNIST, Fashion-MNIST).
    Idx,
    /// Shards made by `alexnet prepare`: `<dir>/dataset.json` and `<dir>/<split>/shard-*.ash`.
    Shards,
}

impl DataFormat {
    pub const ALL: [DataFormat; 5] = [
        Self::ImageFolder,
        Self::Ilsvrc,
        Self::Cifar,
        Self::Idx,
        Self::Shards,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ImageFolder => "image-folder",
            Self::Ilsvrc => "ilsvrc",
            Self::Cifar => "cifar",
            Self::Idx => "idx",
            Self::Shards => "shards",
        }
    }

    /// Guesses the layout of `src` from the files it holds.
    pub fn detect(src: &Path) -> Self {
        let has = |name: &str| src.join(name).exists();
        if has("dataset.json") {
            Self::Shards
        } else if has("data_batch_1.bin") || has("train.bin") || has("test_batch.bin") {
            Self::Cifar
        } else if has("train-images-idx3-ubyte") || has("train-images-idx3-ubyte.gz") {
            Self::Idx
        } else if ilsvrc::has_flat_val(src) {
            Self::Ilsvrc
        } else {
            Self::ImageFolder
        }
    }
}

impl std::fmt::Display for DataFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataFormat {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        Self::ALL
            .into_iter()
            .find(|format| format.name() == s)
            .ok_or_else(|| DataError::UnknownFormat(s.to_string()))
    }
}

/// Whether a split name means the training files (`train`) or the test files (anything else:
/// `test`, `val`, `t10k`), for formats that have just those two.
pub(crate) fn is_training_split(split: &str) -> bool {
    split == "train"
}
