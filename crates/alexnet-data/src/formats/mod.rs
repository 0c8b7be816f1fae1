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

use serde::{Deserialize, Serialize};

/// How a data set is stored on disk (`data.format` in a recipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// `<dir>/<split>/<class>/<image>`.
    #[default]
    ImageFolder,
    /// `data_batch_*.bin` / `test_batch.bin` (CIFAR-10) or `train.bin` / `test.bin` (CIFAR-100).
    Cifar,
    /// `train-images-idx3-ubyte[.gz]` and friends (MNIST, Fashion-MNIST).
    Idx,
    /// Shards made by `alexnet prepare`: `<dir>/dataset.json` and `<dir>/<split>/shard-*.ash`.
    Shards,
}

/// Whether a split name means the training files (`train`) or the test files (anything else:
/// `test`, `val`, `t10k`), for formats that have just those two.
pub(crate) fn is_training_split(split: &str) -> bool {
    split == "train"
}
